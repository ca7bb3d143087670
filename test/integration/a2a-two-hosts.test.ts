/**
 * Two Toka hosts as two processes (`toka serve`, scripted LLM providers): an agent on host A calls
 * `a2a_delegate` to an agent on host B over Toka's A2A WebSocket binding. A's run records B's status updates
 * and artifact as they come and gets B's answer as the tool result; B's log records the per-call token it
 * minted for A's agent, the run it ran for it and that token's revocation. Cancelling A's run cancels B's.
 * Also: `toka a2a send --binding ws` against B.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../protocol/events.js';
import type { RunToolProgress, RunToolResult } from '../../protocol/runtime.js';
import { AgentRunRequest, AgentSpawnRequest, EventsQueryRequest, TaskCancelRequest, TaskGetRequest } from '../../protocol/rpc/index.js';
import { toka } from '../helpers/cli.js';
import { cliMint, connectWs, spawnServe, type ServeProcess, type TokaWsClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

const spec = (name: string, capabilities: string) => `
metadata: {name: ${name}, version: v0.1.0, created: "2026-12-03", workstream: Two Hosts}
spec: {name: ${name} agent, domain: testing, priority: medium}
capabilities: {primary: [work]}
objectives:
  - {description: Do what it is asked, deliverable: an answer to the caller, validation: the answer is there}
tasks: {default: [{description: Answer, priority: low}]}
security: {capabilities_required: [${capabilities}]}
`;

const DEV = 'agent:spawn,capability:grant,task:run,task:schedule,task:cancel,state:read,events:read,tool:fs-read,tool:a2a';
/** How long B's agent thinks before its answer: the window in which A cancels in the cancel test. */
const B_THINKS_MS = 4000;

async function events(client: TokaWsClient): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (;;) {
    const { records } = await client.request(EventsQueryRequest.type, { afterSeq: out.at(-1)?.seq ?? 0, limit: 1000 });
    out.push(...records);
    if (records.length < 1000) return out;
  }
}

const of = <T>(records: LogRecord[], type: string, run?: string) =>
  records.filter((r) => r.event.type === type && (run === undefined || (r.event as { run?: string }).run === run)).map((r) => r.event as unknown as T);

describe('two Toka hosts: a2a_delegate over the WebSocket binding (two processes)', function () {
  this.timeout(90_000);
  let scratch: string;
  let a: ServeProcess;
  let b: ServeProcess;
  let onA: TokaWsClient;
  let onB: TokaWsClient;
  let aAgent: string;
  let bAgent: string;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'toka-two-hosts-'));
    const bTranscript = join(scratch, 'b.json');
    writeFileSync(
      bTranscript,
      JSON.stringify({ turns: [{ text: 'B is looking', toolCalls: [{ id: 'b1', name: 'fs_list', arguments: { path: '.' } }] }, { delayMs: B_THINKS_MS, text: 'B result: 42' }] }),
    );
    b = await spawnServe({ env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: bTranscript } });
    onB = await connectWs(b.wsUrl, await cliMint(b.dataDir, { sub: 'dev-b', vault: 'v', perm: DEV, ttl: '30m' }));
    bAgent = (await onB.request(AgentSpawnRequest.type, { spec: spec('answerer', 'filesystem-read'), uri: 'answerer.agent.yaml' })).agent;
    // B's owner mints A's credential: what A's agents may do on B, and narrow per call.
    const credential = await cliMint(b.dataDir, { sub: 'host-a', vault: 'v', perm: 'task:run,state:read,task:cancel,capability:delegate', ttl: '30m' });

    const aData = mkdtempSync(join(tmpdir(), 'toka-host-a-'));
    writeFileSync(join(aData, 'host-b.token'), credential);
    chmodSync(join(aData, 'host-b.token'), 0o600);
    writeFileSync(join(aData, 'a2a-peers.json'), JSON.stringify({ peers: [{ url: b.url, binding: 'ws', tokenFile: 'host-b.token' }] }));
    const aTranscript = join(scratch, 'a.json');
    writeFileSync(
      aTranscript,
      JSON.stringify({
        turns: [
          { toolCalls: [{ id: 'd1', name: 'a2a_delegate', arguments: { url: b.url, message: 'compute the answer', skill: bAgent } }] },
          { expect: { toolResults: [{ callId: 'd1', isError: false, contains: 'B result: 42' }] }, text: 'A relayed: B result: 42' },
        ],
      }),
    );
    a = await spawnServe({ dataDir: aData, env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: aTranscript } });
    onA = await connectWs(a.wsUrl, await cliMint(a.dataDir, { sub: 'dev-a', vault: 'v', perm: DEV, ttl: '30m' }));
    aAgent = (await onA.request(AgentSpawnRequest.type, { spec: spec('delegator', 'tool:a2a'), uri: 'delegator.agent.yaml' })).agent;
  });

  after(async () => {
    await onA?.close();
    await onB?.close();
    await a?.stop();
    await b?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("A's agent delegates to B's: A's log records B's updates and answer, B's log records its side", async () => {
    const [run] = (await onA.request(AgentRunRequest.type, { agent: aAgent, input: 'ask host B' })).tasks;
    const done = await waitFor(async () => {
      const t = await onA.request(TaskGetRequest.type, { task: run });
      return ['completed', 'failed', 'canceled'].includes(t.state) ? t : null;
    }, 60_000, "A's run to end");
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.equal(done.text, 'A relayed: B result: 42');

    const aLog = await events(onA);
    const progress = of<{ progress: RunToolProgress }>(aLog, 'ToolProgressRecorded', run).map((e) => e.progress);
    const remote = progress[0].subject.replace('a2a task ', '');
    assert.ok(progress.every((p) => p.callId === 'd1' && p.subject === `a2a task ${remote}`));
    // B's run as A saw it: the task as submitted, started, B's two LLM turns (each a working status with its
    // text), the response artifact, completed.
    assert.deepEqual(
      progress.map((p) => `${p.kind} ${p.state ?? p.name}: ${p.text ?? ''}`),
      [
        'status submitted: ',
        'status working: ',
        'status working: B is looking',
        'status working: B result: 42',
        'artifact response: B result: 42',
        'status completed: ',
      ],
    );
    const [result] = of<{ result: RunToolResult }>(aLog, 'ToolResultRecorded', run).map((e) => e.result);
    assert.equal(result.isError, false);
    assert.match(result.content, new RegExp(`^remote task ${remote} at 127\\.0\\.0\\.1:${b.port}: completed`));

    const bLog = await events(onB);
    const [delegated] = of<{ subject: string; permissions: string[]; jti: string }>(bLog, 'CapabilityDelegated');
    assert.equal(delegated.subject, `host-a/${aAgent}`, "B minted a per-call token naming A's agent");
    assert.deepEqual([...delegated.permissions].sort(), ['state:read', 'task:cancel', 'task:run']);
    const [submitted] = of<{ run: { id: string; agent: string; requestedBy: string } }>(bLog, 'RunSubmitted');
    assert.deepEqual([submitted.run.id, submitted.run.agent, submitted.run.requestedBy], [remote, bAgent, `host-a/${aAgent}`]);
    assert.equal(of(bLog, 'RunCompleted', remote).length, 1);
    await waitFor(() => events(onB).then((l) => of<{ jti: string }>(l, 'TokenRevoked').some((e) => e.jti === delegated.jti) || null), 10_000, 'the per-call token to be revoked on B');

    // A's run replays from A's log alone: the recorded progress applies in place, the tool result is read back.
    const replay = await toka(['replay', '--task', run, '--data', a.dataDir, '--json'], { timeoutMs: 30_000 });
    assert.equal(replay.code, 0, replay.stdout + replay.stderr);
    assert.equal((JSON.parse(replay.stdout) as { identical: boolean }).identical, true);
  });

  it("cancelling A's run cancels B's task", async () => {
    const [run] = (await onA.request(AgentRunRequest.type, { agent: aAgent, input: 'ask host B, then change your mind' })).tasks;
    const remote = await waitFor(async () => {
      const working = of<{ progress: RunToolProgress }>(await events(onA), 'ToolProgressRecorded', run).find((e) => e.progress.text === 'B is looking');
      return working?.progress.subject.replace('a2a task ', '') ?? null;
    }, 30_000, "B's first update in A's log");
    await onA.request(TaskCancelRequest.type, { task: run, reason: 'not needed any more' });
    const bRun = await waitFor(async () => {
      const t = await onB.request(TaskGetRequest.type, { task: remote });
      return t.state === 'canceled' ? t : null;
    }, B_THINKS_MS, "B's run to be canceled (before it would have completed)");
    assert.equal(bRun.id, remote);
    assert.equal((await onA.request(TaskGetRequest.type, { task: run })).state, 'canceled');
  });

  it('toka a2a send --binding ws talks to B over the WebSocket binding', async () => {
    const token = await cliMint(b.dataDir, { sub: 'cli', vault: 'v', perm: 'task:run,state:read', ttl: '5m' });
    const run = await toka(['a2a', 'send', b.url, 'hello over ws', '--skill', bAgent, '--binding', 'ws', '--stream'], { env: { TOKA_TOKEN: token }, timeoutMs: 40_000 });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    assert.equal(Object.keys(lines[0])[0], 'task');
    assert.equal(lines.at(-1)!.statusUpdate?.status?.state, 'TASK_STATE_COMPLETED');
    assert.ok(lines.some((l) => l.artifactUpdate?.artifact?.parts?.[0]?.text === 'B result: 42'));

    const refused = await toka(['a2a', 'send', b.url, 'hello', '--skill', bAgent, '--binding', 'ws'], { env: { TOKA_TOKEN: 'not-a-token' }, timeoutMs: 40_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /the WebSocket upgrade was refused with HTTP 401: Unauthenticated/);
  });
});
