import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../protocol/events.js';
import type { RunRecord } from '../../protocol/runtime.js';
import type { EventLog } from '../../server/store/event-log.js';
import { HostError } from '../../server/host/errors.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { parseTranscript, scriptedProvider, type ScriptedTranscript } from '../../server/runtime/llm/index.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { builtinTools, ToolRegistry } from '../../server/runtime/tools/index.js';
import { HeldLog } from '../helpers/held-log.js';
import { waitFor } from '../helpers/wait.js';

const quiet = createLogger({ level: 'silent' });

const SPEC = `
metadata:
  name: note-taker
  version: v0.1.0
  created: "2026-11-20"
  workstream: Runtime Tests
spec:
  name: Note Taker Agent
  domain: documentation
  priority: medium
capabilities:
  primary: [write-notes]
objectives:
  - description: Write the notes it is asked for
    deliverable: notes.md in the workspace
    validation: The file holds the notes
tasks:
  default:
    - description: Write hello into notes.md and report
      priority: high
dependencies:
  required: []
security:
  sandbox: true
  capabilities_required: [filesystem-read, filesystem-write, git-access]
  resource_limits: {max_memory: 256MB, max_cpu: 50%, timeout: 10m}
`;

function loadSpec() {
  const analysis = analyzeSpecText('note-taker.agent.yaml', SPEC);
  assert.deepEqual(analysis.diagnostics.filter((d) => d.severity === 'error'), []);
  return { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document };
}

/**
 * Everything a run needs, on a real SQLite data dir (or on `eventLog`), with the built-in tools unless `tools`
 * is given; `open` starts it again on the same dir.
 */
async function world(dir: string, transcript: ScriptedTranscript, options: { concurrency?: number; tools?: ToolRegistry; eventLog?: EventLog } = {}) {
  const open = async () => {
    const store = options.eventLog ? { dataDir: null, eventLog: options.eventLog } : { dataDir: join(dir, 'data') };
    const host = await Host.open({ ...store, logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    let tools = options.tools;
    if (tools === undefined) {
      tools = new ToolRegistry();
      for (const tool of builtinTools()) tools.register(tool);
    }
    const provider = scriptedProvider(parseTranscript(transcript));
    const runtime = await AgentRuntime.start({
      host,
      provider: () => provider,
      tools,
      workspaceRoot: join(dir, 'workspaces'),
      logger: quiet,
      concurrency: options.concurrency,
    });
    return { host, runtime };
  };
  return { ...(await open()), open };
}

async function userSession(host: Host, permissions: string[]): Promise<Session> {
  const { token } = await host.mint(host.localSession('v'), { subject: 'dev', permissions, ttlSeconds: 1800 });
  return host.authenticate(token);
}

const USER = [
  'agent:spawn',
  'capability:grant',
  'task:run',
  'task:schedule',
  'task:cancel',
  'task:approve',
  'state:read',
  'events:read',
  'tool:fs-read',
  'tool:fs-write',
];

async function runEvents(host: Host, session: Session, run: string): Promise<LogRecord[]> {
  const records = await host.queryEvents(session, { limit: 1000 });
  return records.filter((r) => (r.event as unknown as { run?: unknown }).run === run || (r.event as unknown as { run?: RunRecord }).run?.id === run);
}

describe('agent runtime', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-runtime-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a spec-spawned agent: real tool calls under its own token, a denied call the LLM sees, completion with artifacts', async () => {
    const { host, runtime } = await world(dir, {
      turns: [
        { expect: { userContains: 'notes.md', toolsOffered: ['fs_write', 'fs_read'] }, toolCalls: [{ id: 'c1', name: 'fs_write', arguments: { path: 'notes.md', content: 'hello' } }] },
        { expect: { toolResults: [{ callId: 'c1', isError: false }] }, toolCalls: [{ id: 'c2', name: 'shell', arguments: { command: 'echo hi' } }] },
        { expect: { toolResults: [{ callId: 'c2', isError: true, contains: 'denied' }] }, text: 'wrote notes.md', usage: { inputTokens: 10, outputTokens: 5 } },
      ],
    });
    try {
      const dev = await userSession(host, USER);
      const spawned = await runtime.spawn(dev, loadSpec());
      assert.deepEqual(spawned.withheld, ['tool:shell'], 'the spawner does not hold tool:shell, so the agent does not get it');
      assert.ok(!spawned.permissions.includes('tool:shell'));
      assert.equal(spawned.tasks.length, 1);
      const { runs } = await runtime.run(dev, { agent: spawned.agent });
      assert.equal(runs.length, 1);
      const run = await runtime.waitForEnd(dev, runs[0]);
      assert.equal(run.state, 'completed', JSON.stringify(run));
      assert.equal(run.text, 'wrote notes.md');
      assert.deepEqual(run.artifacts, [{ name: 'response', text: 'wrote notes.md' }]);
      assert.equal(run.turns, 3);
      assert.equal(run.toolCalls, 2);
      assert.equal(run.tokens, 15);
      assert.equal(readFileSync(join(dir, 'workspaces', spawned.agent, 'notes.md'), 'utf8'), 'hello');
      // The task left the queue; its run names it.
      assert.equal((await host.getState(dev, { agent: spawned.agent })).agents[0].queuedTasks, 0);
      assert.equal(run.task, spawned.tasks[0]);

      const events = await runEvents(host, dev, run.id);
      assert.deepEqual(
        events.map((r) => r.event.type),
        ['RunSubmitted', 'RunStarted', 'LlmTurnRecorded', 'ToolCallRequested', 'ToolResultRecorded', 'LlmTurnRecorded', 'ToolCallRequested', 'ToolResultRecorded', 'LlmTurnRecorded', 'RunCompleted'],
      );
      const decisions = events.filter((r) => r.event.type === 'ToolCallRequested').map((r) => (r.event as unknown as { decision: string }).decision);
      assert.deepEqual(decisions, ['allowed', 'denied']);
      // Every step after the submit was made with the agent's own token, not the user's.
      for (const r of events.slice(1)) assert.equal(r.event.by.sub, `agent:${spawned.agent}`);
      assert.equal(events[0].event.by.sub, 'dev');
      assert.equal((await host.verify()).ok, true);
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('pauses a privileged call for approval, resumes on approve, records a deny as an error the LLM sees', async () => {
    const transcript: ScriptedTranscript = {
      turns: [
        { toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo approved > out.txt' } }] },
        { toolCalls: [{ id: 's2', name: 'shell', arguments: { command: 'echo never > never.txt' } }] },
        { expect: { toolResults: [{ callId: 's2', isError: true, contains: 'declined' }] }, text: 'done' },
      ],
    };
    const { host, runtime } = await world(dir, transcript);
    try {
      const dev = await userSession(host, [...USER, 'tool:shell']);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const { runs } = await runtime.run(dev, { agent, input: 'use the shell' });
      const first = await waitFor(async () => (await runtime.approvals(dev))[0], 10_000, 'the first approval');
      assert.equal(first.call.name, 'shell');
      assert.equal(first.permission, 'tool:shell');
      assert.equal((await runtime.getRun(dev, runs[0])).state, 'input-required');
      assert.equal(existsSync(join(dir, 'workspaces', agent, 'out.txt')), false, 'nothing runs before the approval');
      await runtime.resolve(dev, { run: runs[0], approval: first.id, decision: 'approve' });
      const second = await waitFor(async () => (await runtime.approvals(dev)).find((a) => a.id !== first.id), 10_000, 'the second approval');
      assert.equal(readFileSync(join(dir, 'workspaces', agent, 'out.txt'), 'utf8'), 'approved\n');
      await runtime.resolve(dev, { run: runs[0], approval: second.id, decision: 'deny', note: 'no' });
      const run = await runtime.waitForEnd(dev, runs[0]);
      assert.equal(run.state, 'completed', JSON.stringify(run));
      assert.equal(existsSync(join(dir, 'workspaces', agent, 'never.txt')), false);
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('keeps a pending approval across a host restart, then finishes the run', async () => {
    const transcript: ScriptedTranscript = {
      turns: [{ toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo resumed > r.txt' } }] }, { text: 'done' }],
    };
    const w = await world(dir, transcript);
    const dev = await userSession(w.host, [...USER, 'tool:shell']);
    const { agent } = await w.runtime.spawn(dev, loadSpec());
    const { runs } = await w.runtime.run(dev, { agent, input: 'run after restart' });
    await waitFor(async () => (await w.runtime.approvals(dev)).length === 1, 10_000, 'the approval');
    await w.runtime.close();
    await w.host.close();

    const again = await w.open();
    try {
      const dev2 = await again.host.authenticate(dev.token!);
      const [pending] = await again.runtime.approvals(dev2);
      assert.ok(pending, 'the approval survived the restart');
      await again.runtime.resolve(dev2, { run: runs[0], approval: pending.id, decision: 'approve' });
      const run = await again.runtime.waitForEnd(dev2, runs[0]);
      assert.equal(run.state, 'completed', JSON.stringify(run));
      assert.equal(readFileSync(join(dir, 'workspaces', agent, 'r.txt'), 'utf8'), 'resumed\n');
    } finally {
      await again.runtime.close();
      await again.host.close();
    }
  });

  it('resumes runs of one agent from their own conversations, read across more than a page of the agent\'s events', async () => {
    const transcript: ScriptedTranscript = {
      turns: [
        { toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo ran' } }] },
        { expect: { toolResults: [{ callId: 's1', isError: false, contains: 'ran' }] }, text: 'done' },
      ],
    };
    const { host, runtime } = await world(dir, transcript);
    try {
      const dev = await userSession(host, [...USER, 'tool:shell', 'observation:emit']);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const { runs: [a] } = await runtime.run(dev, { agent, input: 'first' });
      const { runs: [b] } = await runtime.run(dev, { agent, input: 'second' });
      const pending = await waitFor(async () => {
        const list = await runtime.approvals(dev);
        return list.length === 2 ? list : null;
      }, 10_000, 'both approvals');
      // More of the agent's events than one page of a conversation read, between each run's start and its approval.
      let left = 1100;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (left-- > 0) await host.submit(dev, { type: 'EmitObservation', agent, data: { n: left } });
        }),
      );
      for (const approval of pending) await runtime.resolve(dev, { run: approval.run, approval: approval.id, decision: 'approve' });
      for (const id of [a, b]) {
        const run = await runtime.waitForEnd(dev, id);
        assert.equal(run.state, 'completed', JSON.stringify(run));
        assert.equal(run.text, 'done');
        assert.equal(run.turns, 2);
      }
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('ends a run at max turns with a typed reason naming the limit', async () => {
    const loop = { toolCalls: [{ id: 'l', name: 'fs_list', arguments: { path: '.' } }] };
    const { host, runtime } = await world(dir, { turns: [loop, loop, loop, loop] });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const { runs } = await runtime.run(dev, { agent, input: 'loop', limits: { maxTurns: 2 } });
      const run = await runtime.waitForEnd(dev, runs[0]);
      assert.equal(run.state, 'failed');
      assert.deepEqual(run.reason, { code: 'LimitExceeded', message: 'run reached 2 LLM turns', limit: 'maxTurns' });
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('cancels a run mid-LLM call within a second', async () => {
    const { host, runtime } = await world(dir, { turns: [{ delayMs: 30_000, text: 'too late' }] });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const { runs } = await runtime.run(dev, { agent, input: 'think slowly' });
      await waitFor(async () => (await runtime.getRun(dev, runs[0])).state === 'working', 10_000, 'the run to start');
      const started = Date.now();
      const cancelled = await runtime.cancel(dev, { run: runs[0], reason: 'changed my mind' });
      assert.equal(cancelled.state, 'canceled');
      await waitFor(() => !(runtime as unknown as { active: Map<string, unknown> }).active.has(runs[0]), 2000, 'the runner to stop');
      assert.ok(Date.now() - started < 1000, `stopped after ${Date.now() - started} ms`);
      await assert.rejects(runtime.cancel(dev, { run: runs[0] }), (err: unknown) => err instanceof HostError && err.errorName === 'InvalidOperation');
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('ends a run at its timeout, aborting the LLM call in flight, with the limit named', async () => {
    const { host, runtime } = await world(dir, { turns: [{ delayMs: 20_000, text: 'too late' }] });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const started = Date.now();
      const [id] = (await runtime.run(dev, { agent, input: 'slow', limits: { timeoutMs: 300 } })).runs;
      const run = await runtime.waitForEnd(dev, id);
      assert.equal(run.state, 'failed');
      assert.deepEqual(run.reason, { code: 'LimitExceeded', message: 'run took longer than 300 ms', limit: 'timeoutMs' });
      assert.ok(Date.now() - started < 5000, 'the 20 s LLM call was aborted at the deadline');
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('ends a run at its timeout during a tool call: the tool is aborted, the limit named, nothing after it recorded', async () => {
    let abortedWith: unknown = null;
    const tools = new ToolRegistry();
    tools.register({
      manifest: { name: 'wait', description: 'waits until aborted', inputSchema: { type: 'object' }, sideEffect: 'read_only', permission: 'tool:fs-read' },
      call: (_args, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            abortedWith = ctx.signal.reason;
            reject(new Error('aborted'));
          });
        }),
    });
    const { host, runtime } = await world(dir, { turns: [{ toolCalls: [{ id: 'w1', name: 'wait', arguments: {} }] }, { text: 'never' }] }, { tools });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const started = Date.now();
      const [id] = (await runtime.run(dev, { agent, input: 'wait', limits: { timeoutMs: 400 } })).runs;
      const run = await runtime.waitForEnd(dev, id);
      assert.ok(Date.now() - started < 3000, `ended after ${Date.now() - started} ms`);
      assert.deepEqual(run.reason, { code: 'LimitExceeded', message: 'run took longer than 400 ms', limit: 'timeoutMs' });
      assert.ok(abortedWith instanceof Error, 'the tool saw its signal abort');
      assert.deepEqual(
        (await runEvents(host, dev, id)).map((r) => r.event.type),
        ['RunSubmitted', 'RunStarted', 'LlmTurnRecorded', 'ToolCallRequested', 'RunFailed'],
      );
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('ends a run that spends its LLM token budget, before completing it', async () => {
    const { host, runtime } = await world(dir, { turns: [{ text: 'expensive', usage: { inputTokens: 100, outputTokens: 100 } }] });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const [id] = (await runtime.run(dev, { agent, input: 'spend', limits: { maxTokens: 150 } })).runs;
      const run = await runtime.waitForEnd(dev, id);
      assert.equal(run.state, 'failed');
      assert.equal(run.reason?.limit, 'maxTokens');
      assert.equal(run.tokens, 200);
      assert.equal(run.text, undefined);
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it("cancels a run mid-tool: the shell command's process group is killed within a second", async () => {
    const { host, runtime } = await world(dir, {
      turns: [{ toolCalls: [{ id: 's', name: 'shell', arguments: { command: 'echo $$ > pid; exec sleep 30' } }] }, { text: 'never' }],
    });
    try {
      const dev = await userSession(host, [...USER, 'tool:shell']);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const [id] = (await runtime.run(dev, { agent, input: 'sleep' })).runs;
      const approval = await waitFor(async () => (await runtime.approvals(dev))[0], 10_000, 'the approval');
      await runtime.resolve(dev, { run: id, approval: approval.id, decision: 'approve' });
      const pidFile = join(dir, 'workspaces', agent, 'pid');
      const pid = await waitFor(() => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()) || null, 10_000, 'the shell to start');
      const alive = (p: number) => {
        try {
          process.kill(p, 0);
          return true;
        } catch {
          return false;
        }
      };
      assert.ok(alive(Number(pid)));
      const started = Date.now();
      assert.equal((await runtime.cancel(dev, { run: id })).state, 'canceled');
      await waitFor(() => !alive(Number(pid)), 1000, 'the sleep to be killed');
      assert.ok(Date.now() - started <= 1000, `killed after ${Date.now() - started} ms`);
      const events = await runEvents(host, dev, id);
      assert.ok(!events.some((r) => r.event.type === 'ToolResultRecorded'), 'nothing is recorded after the cancellation');
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it("bounds runs by the spec's resource limits: the timeout defaults to the spec's and never exceeds it", async () => {
    const { host, runtime } = await world(dir, { turns: [{ text: 'ok' }] });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const [plain] = (await runtime.run(dev, { agent, input: 'a' })).runs;
      const [longer] = (await runtime.run(dev, { agent, input: 'b', limits: { timeoutMs: 3_600_000 } })).runs;
      const [shorter] = (await runtime.run(dev, { agent, input: 'c', limits: { timeoutMs: 1000 } })).runs;
      assert.equal((await runtime.getRun(dev, plain)).limits.timeoutMs, 600_000, 'the spec says timeout: 10m');
      assert.equal((await runtime.getRun(dev, longer)).limits.timeoutMs, 600_000, 'a request cannot exceed the spec');
      assert.equal((await runtime.getRun(dev, shorter)).limits.timeoutMs, 1000);
      for (const id of [plain, longer, shorter]) assert.equal((await runtime.waitForEnd(dev, id)).state, 'completed');
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('stages its steps: a run without tools commits with its submission, and a tool acts only once its call is in the log', async () => {
    // A run that needs no tool: its submission, start, turn and completion share one group commit.
    const quick = await world(join(dir, 'quick'), { turns: [{ text: 'done' }] });
    try {
      const dev = await userSession(quick.host, USER);
      const { agent } = await quick.runtime.spawn(dev, loadSpec());
      // The first run also mints the agent's token; measure the second.
      await quick.runtime.waitForEnd(dev, (await quick.runtime.run(dev, { agent, input: 'first' })).runs[0]);
      const before = quick.host.logStats();
      const { runs } = await quick.runtime.run(dev, { agent, input: 'second' });
      assert.equal((await quick.runtime.waitForEnd(dev, runs[0])).state, 'completed');
      const after = quick.host.logStats();
      assert.deepEqual(
        { commits: after.transactions - before.transactions, records: after.records - before.records },
        { commits: 1, records: 4 },
        'submission, start, turn and completion in one commit',
      );
    } finally {
      await quick.runtime.close();
      await quick.host.close();
    }

    // A tool call: the call and every step before it are durable before the tool runs.
    let host!: Host;
    const seenAtCall: string[][] = [];
    const tools = new ToolRegistry();
    tools.register({
      manifest: { name: 'probe', description: 'reports what the log holds', inputSchema: { type: 'object' }, sideEffect: 'read_only', permission: 'tool:fs-read' },
      call: async (_args, ctx) => {
        const durable = await host.queryEvents(host.localSession('v'), { agent: ctx.agentId, limit: 1000 });
        seenAtCall.push(durable.map((r) => r.event.type));
        return { content: 'probed', isError: false };
      },
    });
    const probed = await world(dir, { turns: [{ toolCalls: [{ id: 'p1', name: 'probe', arguments: {} }] }, { text: 'probed' }] }, { tools });
    host = probed.host;
    const runtime = probed.runtime;
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const { runs } = await runtime.run(dev, { agent, input: 'probe it' });
      assert.equal((await runtime.waitForEnd(dev, runs[0])).state, 'completed');
      assert.equal(seenAtCall.length, 1);
      assert.deepEqual(seenAtCall[0].slice(-4), ['RunSubmitted', 'RunStarted', 'LlmTurnRecorded', 'ToolCallRequested']);
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('tells a run request its run only once the submission is durable, though the run starts at once', async () => {
    const log = new HeldLog();
    const { host, runtime } = await world(dir, { turns: [{ text: 'done' }] }, { eventLog: log });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      log.hold();
      let answered = false;
      const requested = runtime.run(dev, { agent, input: 'held' }).then((r) => {
        answered = true;
        return r;
      });
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(answered, false, 'no run id before the submission is durable');
      assert.deepEqual(
        (await host.readAllEvents({ afterSeq: 0, limit: 1000 })).filter((r) => r.event.type === 'RunSubmitted'),
        [],
        'nothing of it is in the log yet',
      );
      log.releaseHeld();
      const { runs } = await requested;
      const run = await runtime.waitForEnd(dev, runs[0]);
      assert.equal(run.state, 'completed');
      const types = (await runEvents(host, dev, runs[0])).map((r) => r.event.type);
      assert.deepEqual(types, ['RunSubmitted', 'RunStarted', 'LlmTurnRecorded', 'RunCompleted'], 'each step recorded once, in order');
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('refuses run requests without task:run, and approvals without task:approve', async () => {
    const { host, runtime } = await world(dir, { turns: [{ text: 'x' }] });
    try {
      const dev = await userSession(host, USER);
      const { agent } = await runtime.spawn(dev, loadSpec());
      const { token } = await host.mint(host.localSession('v'), { subject: 'viewer', permissions: ['state:read'] });
      const viewer = await host.authenticate(token);
      await assert.rejects(runtime.run(viewer, { agent, input: 'x' }), (err: unknown) => err instanceof HostError && err.errorName === 'CapabilityDenied');
      await assert.rejects(runtime.approvals(viewer), (err: unknown) => err instanceof HostError && err.errorName === 'CapabilityDenied');
    } finally {
      await runtime.close();
      await host.close();
    }
  });
});
