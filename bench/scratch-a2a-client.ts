import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SendMessageRequest } from '@a2a-js/sdk';
import { AgentSpawnRequest } from '../protocol/rpc/index.js';
import { connectA2a, type A2aConnection } from '../server/runtime/a2a/client.js';
import { cliMint, connectWs, spawnServe } from '../test/helpers/ws-client.js';
const SPEC = `
metadata: {name: answerer, version: v0.1.0, created: "2026-12-03", workstream: Bench}
spec: {name: answerer, domain: bench, priority: medium}
capabilities: {primary: [answer]}
objectives:
  - {description: Answer at once, deliverable: the answer as the artifact, validation: it is there}
tasks: {default: [{description: Answer, priority: low}]}
security: {capabilities_required: []}
`;
const req = (skill?: string) => SendMessageRequest.fromJSON({ message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: 'ping' }], ...(skill ? { metadata: { skill } } : {}) } });
const dir = mkdtempSync(join(tmpdir(), 'scr-a2a-'));
writeFileSync(join(dir, 't.json'), JSON.stringify({ turns: [{ text: 'pong' }] }));
const serve = await spawnServe({ args: ['--rate-limit', 'off'], env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: join(dir, 't.json') } });
const token = await cliMint(serve.dataDir, { sub: 'bench', vault: 'bench', perm: 'agent:spawn,capability:grant,task:run,task:schedule,state:read', ttl: '30m' });
const admin = await connectWs(serve.wsUrl, token);
const { agent } = await admin.request(AgentSpawnRequest.type, { spec: SPEC, uri: 'answerer.agent.yaml' });
await admin.close();
const sdk = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/a2a/sdk-server.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const sdkUrl = (JSON.parse(await new Promise<string>((res) => createInterface({ input: sdk.stdout! }).once('line', res))) as { url: string }).url;
const base = await connectA2a(sdkUrl, { binding: 'jsonrpc' });
const toka = await connectA2a(serve.url, { token, binding: 'jsonrpc' });
async function loop(c: A2aConnection, skill: string | undefined, n: number) {
  let left = n; let bytes = 0;
  const cpu = process.cpuUsage(); const t = performance.now();
  await Promise.all(Array.from({ length: 8 }, async () => { while (left-- > 0) { const r = await c.client.sendMessage(req(skill)); bytes += JSON.stringify(r).length; } }));
  const u = process.cpuUsage(cpu); const s = (performance.now() - t) / 1000;
  return `${(n / s).toFixed(0)}/s client cpu ${((u.user + u.system) / n).toFixed(0)} µs/msg, result json ${(bytes / n).toFixed(0)} B`;
}
const body = (skill?: string) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: 'ping' }], ...(skill ? { metadata: { skill } } : {}) } } });
for (const [name, url, auth, skill] of [['toka', serve.url + '/a2a/jsonrpc', `Bearer ${token}`, agent], ['sdk', sdkUrl, undefined, undefined]] as const) {
  const card = await (await fetch(name === 'toka' ? serve.url + '/.well-known/agent-card.json' : new URL('/.well-known/agent-card.json', sdkUrl))).json() as any;
  console.log(name, 'card interfaces', JSON.stringify(card.supportedInterfaces ?? card.url));
  const target = name === 'toka' ? card.supportedInterfaces.find((i: any) => i.protocolBinding === 'JSONRPC').url : card.supportedInterfaces?.find((i: any) => i.protocolBinding === 'JSONRPC')?.url ?? card.url;
  const res = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...(auth ? { authorization: auth } : {}) }, body: body(skill) });
  console.log(name, res.status, JSON.stringify([...res.headers]));
  const text = await res.text(); console.log(name, text.length, text.slice(0, 300));
}
const tokaWs = await connectA2a(serve.url, { token, binding: 'ws' });
async function lat(c: A2aConnection, skill: string | undefined) {
  const xs: number[] = [];
  for (let i = 0; i < 60; i++) { const t = performance.now(); await c.client.sendMessage(req(skill)); xs.push(performance.now() - t); }
  xs.sort((a, b) => a - b); return `p50 ${xs[30].toFixed(1)} ms p90 ${xs[54].toFixed(1)} ms`;
}
const one = await toka.client.sendMessage(req(agent)) as any;
async function glat(c: A2aConnection) { const xs: number[] = []; for (let i = 0; i < 60; i++) { const t = performance.now(); await c.client.getTask({ id: one.id } as any); xs.push(performance.now() - t); } xs.sort((a, b) => a - b); return `p50 ${xs[30].toFixed(1)} ms p90 ${xs[54].toFixed(1)} ms`; }
for (let i = 0; i < 2; i++) { console.log('getTask jsonrpc', await glat(toka)); console.log('getTask ws', await glat(tokaWs)); }
for (let i = 0; i < 2; i++) { console.log('lat toka jsonrpc', await lat(toka, agent)); console.log('lat toka ws', await lat(tokaWs, agent)); console.log('lat sdk', await lat(base, undefined)); }
for (let i = 0; i < 0; i++) {
  console.log('toka', await loop(toka, agent, 300));
  console.log('sdk ', await loop(base, undefined, 300));
}
const r = await toka.client.sendMessage(req(agent)); console.log(JSON.stringify(r).slice(0, 1500));
const b = await base.client.sendMessage(req()); console.log(JSON.stringify(b).slice(0, 1500));
toka.close(); base.close(); sdk.kill(); await serve.stop();
