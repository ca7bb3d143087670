/**
 * A2A benchmark (issue 11): `SendMessage` round trips per second to a Toka agent that answers at once (a
 * `toka serve` process, scripted LLM provider with a one-turn transcript: each message is a run submitted,
 * started, its turn recorded and completed with its artifact — four durable log writes) against a bare
 * `@a2a-js/sdk` server with an equivalent executor (test/fixtures/a2a/sdk-server.ts: task, working, artifact,
 * completed, in its in-memory store), each in its own process, in the same run:
 * 1. over JSON-RPC, the SDK's own client transport on both sides;
 * 2. over Toka's WebSocket binding (Toka's client transport) against the same SDK baseline over JSON-RPC
 *    (the SDK has no WebSocket binding).
 * Clients run in this process, `IN_FLIGHT` requests at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SendMessageRequest } from '@a2a-js/sdk';
import { AgentSpawnRequest } from '../protocol/rpc/index.js';
import { connectA2a, type A2aBinding, type A2aConnection } from '../server/runtime/a2a/client.js';
import { cliMint, connectWs, spawnServe } from '../test/helpers/ws-client.js';
import { compare, comparisonRow, type Row } from './lib.js';

const ROUNDS = 5;
const REQUESTS = 400;
export const IN_FLIGHT = 8;

/** The answering agent both benchmarks spawn. */
export const SPEC = `
metadata: {name: answerer, version: v0.1.0, created: "2026-12-03", workstream: Bench}
spec: {name: answerer, domain: bench, priority: medium}
capabilities: {primary: [answer]}
objectives:
  - {description: Answer at once, deliverable: the answer as the artifact, validation: it is there}
tasks: {default: [{description: Answer, priority: low}]}
security: {capabilities_required: []}
`;

function request(skill: string | undefined): SendMessageRequest {
  return SendMessageRequest.fromJSON({
    message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: 'ping' }], ...(skill ? { metadata: { skill } } : {}) },
  });
}

/** `REQUESTS` blocking SendMessage calls, `IN_FLIGHT` at a time; each must come back completed. */
async function roundTrips(connection: A2aConnection, skill: string | undefined): Promise<number> {
  let left = REQUESTS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) {
        const result = await connection.client.sendMessage(request(skill));
        if (!('status' in result) || result.artifacts.length !== 1) throw new Error(`unexpected answer ${JSON.stringify(result).slice(0, 300)}`);
      }
    }),
  );
  return REQUESTS;
}

export async function benchA2a(): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'toka-bench-a2a-'));
  const transcript = join(dir, 'answer.json');
  writeFileSync(transcript, JSON.stringify({ turns: [{ text: 'pong' }] }));
  const serve = await spawnServe({ args: ['--rate-limit', 'off'], env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: transcript } });
  const children: ChildProcess[] = [];
  const connections: A2aConnection[] = [];
  try {
    const token = await cliMint(serve.dataDir, { sub: 'bench', vault: 'bench', perm: 'agent:spawn,capability:grant,task:run,task:schedule,state:read', ttl: '30m' });
    const admin = await connectWs(serve.wsUrl, token);
    const { agent } = await admin.request(AgentSpawnRequest.type, { spec: SPEC, uri: 'answerer.agent.yaml' });
    await admin.close();

    const sdk = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/a2a/sdk-server.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(sdk);
    const sdkUrl = (JSON.parse(await new Promise<string>((res) => createInterface({ input: sdk.stdout! }).once('line', res))) as { url: string }).url;
    const baseline = await connectA2a(sdkUrl, { binding: 'jsonrpc' });
    connections.push(baseline);

    for (const binding of ['jsonrpc', 'ws'] as A2aBinding[]) {
      const toka = await connectA2a(serve.url, { token, binding });
      connections.push(toka);
      const result = await compare(ROUNDS, () => roundTrips(toka, agent), () => roundTrips(baseline, undefined));
      rows.push(
        comparisonRow(
          `A2A SendMessage to a Toka agent that answers at once, ${binding === 'ws' ? "Toka's WebSocket binding" : 'JSON-RPC'} (${IN_FLIGHT} in flight)`,
          'bare @a2a-js/sdk server, equivalent executor, JSON-RPC',
          result,
          0.8,
        ),
      );
    }
  } finally {
    for (const c of connections) c.close();
    for (const child of children) child.kill('SIGTERM');
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
