import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../protocol/events.js';
import type { KernelEvent } from '../../protocol/kernel.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { parseTranscript, scriptedProvider, type ScriptedTranscript } from '../../server/runtime/llm/index.js';
import type { ReplayReport } from '../../server/runtime/replay.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { runtimeTools } from '../../server/runtime/start.js';
import { openEventLog } from '../../server/store/index.js';
import { toka } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const quiet = createLogger({ level: 'silent' });

function spec(name: string): string {
  return `
metadata: {name: ${name}, version: v0.1.0, created: "2026-11-20", workstream: Replay Tests}
spec: {name: Replay Test Agent, domain: documentation, priority: medium}
capabilities: {primary: [write-notes]}
objectives:
  - {description: Write the notes it is asked for, deliverable: notes.md in the workspace, validation: The file holds the notes}
tasks:
  default:
    - {description: Write notes, priority: high}
security:
  capabilities_required: [filesystem-read, filesystem-write, git-access]
`;
}

function loaded(name: string) {
  const a = analyzeSpecText(`${name}.agent.yaml`, spec(name));
  assert.deepEqual(a.diagnostics.filter((d) => d.severity === 'error'), []);
  return { spec: a.spec!, digest: a.digest!, document: a.document };
}

/** Multi-turn: two calls in one turn (one allowed, one the agent's token does not cover), an approved and a denied privileged call. */
const WRITER: ScriptedTranscript = {
  turns: [
    {
      toolCalls: [
        { id: 'w1', name: 'fs_write', arguments: { path: 'notes.md', content: 'hello' } },
        { id: 'o1', name: 'emit_observation', arguments: { progress: 0.5, message: 'half' } },
      ],
      usage: { inputTokens: 7, outputTokens: 3 },
    },
    {
      expect: { toolResults: [{ callId: 'w1', isError: false }, { callId: 'o1', isError: true, contains: 'denied' }] },
      toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo approved > out.txt' } }],
    },
    { expect: { toolResults: [{ callId: 's1', isError: false }] }, toolCalls: [{ id: 's2', name: 'shell', arguments: { command: 'echo never > never.txt' } }] },
    { expect: { toolResults: [{ callId: 's2', isError: true, contains: 'declined' }] }, toolCalls: [{ id: 'r1', name: 'fs_read', arguments: { path: 'out.txt' } }] },
    { expect: { toolResults: [{ callId: 'r1', contains: 'approved' }] }, text: 'notes written, shell approved once' },
  ],
};

/** A second agent whose run interleaves with the first one's in the log. */
const LISTER: ScriptedTranscript = {
  turns: [{ toolCalls: [{ id: 'l1', name: 'fs_list', arguments: { path: '.' } }] }, { text: 'listed' }],
};

const USER = ['agent:spawn', 'capability:grant', 'task:run', 'task:schedule', 'task:cancel', 'task:approve', 'state:read', 'events:read', 'tool:fs-read', 'tool:fs-write', 'tool:shell'];

async function userSession(host: Host): Promise<Session> {
  const { token } = await host.mint(host.localSession('v'), { subject: 'dev', permissions: USER, ttlSeconds: 1800 });
  return host.authenticate(token);
}

/** Record two runs on a SQLite data dir: `writer` (approvals, a denied call) and `lister`, interleaved. */
async function recordRuns(data: string, workspaces: string): Promise<{ writer: string; lister: string }> {
  const host = await Host.open({ dataDir: data, logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
  const providers = { writer: scriptedProvider(parseTranscript(WRITER)), lister: scriptedProvider(parseTranscript(LISTER)) };
  const runtime = await AgentRuntime.start({
    host,
    provider: (agent) => (agent?.specName === 'lister' ? providers.lister : providers.writer),
    tools: runtimeTools(),
    workspaceRoot: workspaces,
    logger: quiet,
    concurrency: 2,
  });
  try {
    const dev = await userSession(host);
    const writer = await runtime.spawn(dev, loaded('writer'));
    const lister = await runtime.spawn(dev, loaded('lister'));
    const [writerRun] = (await runtime.run(dev, { agent: writer.agent, input: 'write notes.md' })).runs;
    const first = await waitFor(async () => (await runtime.approvals(dev))[0], 10_000, 'the first approval');
    // While the writer waits for a human, the lister runs: its steps land between the writer's.
    const [listerRun] = (await runtime.run(dev, { agent: lister.agent, input: 'list the workspace' })).runs;
    assert.equal((await runtime.waitForEnd(dev, listerRun)).state, 'completed');
    await runtime.resolve(dev, { run: writerRun, approval: first.id, decision: 'approve' });
    const second = await waitFor(async () => (await runtime.approvals(dev)).find((a) => a.id !== first.id), 10_000, 'the second approval');
    await runtime.resolve(dev, { run: writerRun, approval: second.id, decision: 'deny', note: 'not this one' });
    const run = await runtime.waitForEnd(dev, writerRun);
    assert.equal(run.state, 'completed', JSON.stringify(run));
    assert.equal(run.turns, 5);
    assert.equal(run.toolCalls, 5);
    assert.equal(readFileSync(join(workspaces, writer.agent, 'out.txt'), 'utf8'), 'approved\n');
    return { writer: writerRun, lister: listerRun };
  } finally {
    await runtime.close();
    await host.close();
  }
}

/** Copy a data dir's log into `to` (a fresh, valid chain), letting `edit` change events on the way. */
async function copyLog(from: string, to: string, edit: (event: KernelEvent) => void): Promise<void> {
  const source = openEventLog({ kind: 'sqlite', path: join(from, 'events.db'), readOnly: true });
  const target = openEventLog({ kind: 'sqlite', path: join(to, 'events.db') });
  try {
    const records: LogRecord[] = await source.read({ limit: 10_000 });
    let batch: KernelEvent[] = [];
    for (const r of records) {
      if (batch.length > 0 && batch[0].opId !== r.event.opId) {
        await target.append(batch);
        batch = [];
      }
      const event = structuredClone(r.event);
      edit(event);
      batch.push(event);
    }
    if (batch.length > 0) await target.append(batch);
    assert.equal((await target.verify()).ok, true, 'the copy is a valid chain');
  } finally {
    await source.close();
    await target.close();
  }
}

function report(stdout: string): ReplayReport {
  return JSON.parse(stdout) as ReplayReport;
}

describe('toka replay', function () {
  this.timeout(60_000);
  let dir: string;
  let runs: { writer: string; lister: string };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-replay-'));
    runs = await recordRuns(join(dir, 'data'), join(dir, 'workspaces'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('re-runs a multi-turn run (tool calls, a denied call, an approval and a refusal) with identical events and state digest', async () => {
    const out = await toka(['replay', '--task', runs.writer, '--data', join(dir, 'data'), '--json']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const r = report(out.stdout);
    assert.equal(r.identical, true, JSON.stringify(r.difference));
    assert.equal(r.state, 'completed');
    // StartRun, 5 turns, 5 decisions, 5 results, completion: every step re-produced by the runner and compared.
    assert.equal(r.compared, 17);
    assert.ok(r.applied >= 4, 'the approvals and the other run were applied at their positions');
    assert.equal(r.digest.replayed, r.digest.recorded);

    const text = await toka(['replay', '--task', runs.writer, '--data', join(dir, 'data')]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /identical: every step and the state digest [0-9a-f]{64}/);
  });

  it('replays the interleaved run too', async () => {
    const out = await toka(['replay', '--task', runs.lister, '--data', join(dir, 'data'), '--json']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.equal(report(out.stdout).compared, 6);
  });

  it('reports the first difference when a recorded step does not follow from the recorded inputs', async () => {
    const data = join(dir, 'edited-turn');
    // The recorded LLM turn now asks for another file than the recorded call names.
    await copyLog(join(dir, 'data'), data, (e) => {
      const turn = (e as unknown as { run?: string; turn?: { toolCalls: { arguments: { path?: string } }[] } }).turn;
      if (e.type === 'LlmTurnRecorded' && (e as unknown as { run: string }).run === runs.writer && turn?.toolCalls[0]?.arguments.path === 'notes.md') {
        turn.toolCalls[0].arguments.path = 'other.md';
      }
    });
    const out = await toka(['replay', '--task', runs.writer, '--data', data, '--json']);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    const r = report(out.stdout);
    assert.equal(r.identical, false);
    assert.equal(r.difference?.type, 'ToolCallRequested');
    assert.equal(r.difference?.field, 'call.arguments.path');
    assert.equal(r.difference?.recorded, '"notes.md"');
    assert.equal(r.difference?.replayed, '"other.md"');
    const text = await toka(['replay', '--task', runs.writer, '--data', data]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /DIFFERENT at seq \d+ \(ToolCallRequested\): the replayed event differs\n {2}field call\.arguments\.path/);
  });

  it('decides on the state the log had: a grant that held the denied permission changes the decision', async () => {
    const data = join(dir, 'edited-grant');
    await copyLog(join(dir, 'data'), data, (e) => {
      const grant = (e as unknown as { grant?: { subject?: string; permissions: string[] } }).grant;
      if (e.type === 'GrantCreated' && grant?.subject?.startsWith('agent:')) grant.permissions.push('observation:emit');
    });
    const out = await toka(['replay', '--task', runs.writer, '--data', data, '--json']);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    const r = report(out.stdout);
    assert.equal(r.difference?.type, 'ToolCallRequested');
    assert.equal(r.difference?.field, 'decision');
    assert.equal(r.difference?.recorded, '"denied"');
    assert.equal(r.difference?.replayed, '"allowed"');
  });

  it('replays a run resumed by another host process after a restart (a new agent token, recorded ids)', async () => {
    const data = join(dir, 'restarted');
    const transcript = parseTranscript({
      turns: [{ toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo resumed' } }] }, { text: 'done' }],
    });
    const open = async () => {
      const host = await Host.open({ dataDir: data, logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
      const provider = scriptedProvider(transcript);
      const runtime = await AgentRuntime.start({ host, provider: () => provider, tools: runtimeTools(), workspaceRoot: join(dir, 'ws-restarted'), logger: quiet });
      return { host, runtime };
    };
    const first = await open();
    const dev = await userSession(first.host);
    const { agent } = await first.runtime.spawn(dev, loaded('writer'));
    const [run] = (await first.runtime.run(dev, { agent, input: 'resume me' })).runs;
    await waitFor(async () => (await first.runtime.approvals(dev)).length === 1, 10_000, 'the approval');
    await first.runtime.close();
    await first.host.close();
    const second = await open();
    try {
      const again = await second.host.authenticate(dev.token!);
      const [pending] = await second.runtime.approvals(again);
      await second.runtime.resolve(again, { run, approval: pending.id, decision: 'approve' });
      assert.equal((await second.runtime.waitForEnd(again, run)).state, 'completed');
      const steps = (await second.host.queryEvents(again, { agent, limit: 100 })).filter((r) => r.event.by.sub === `agent:${agent}`);
      assert.ok(new Set(steps.map((r) => r.event.by.jti)).size >= 2, 'the restarted host ran the rest of the run with a new token');
    } finally {
      await second.runtime.close();
      await second.host.close();
    }
    const out = await toka(['replay', '--task', run, '--data', data, '--json']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.equal(report(out.stdout).compared, 6, 'start, two turns, the call, its result, completion');
  });

  it('refuses bad input with a clear error', async () => {
    const missing = await toka(['replay', '--data', join(dir, 'data')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing --task/);
    const unknown = await toka(['replay', '--task', 'no-such-run', '--data', join(dir, 'data')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no run no-such-run \(UnknownEntity\)/);
    const nowhere = await toka(['replay', '--task', runs.writer, '--data', join(dir, 'absent')]);
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.stderr, /no event log/);
  });
});
