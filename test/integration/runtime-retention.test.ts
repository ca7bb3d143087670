import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '../../protocol/canonical.js';
import type { KernelEvent } from '../../protocol/kernel.js';
import { ENDED_RUNS_KEPT, type RunRecord, type RuntimeState } from '../../protocol/runtime.js';
import { HostError } from '../../server/host/errors.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { RUNTIME_NAMESPACE } from '../../server/runtime/lifecycle.js';
import { parseTranscript, scriptedProvider } from '../../server/runtime/llm/index.js';
import { replayRun } from '../../server/runtime/replay.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { ToolRegistry } from '../../server/runtime/tools/index.js';
import { openEventLog } from '../../server/store/index.js';

const quiet = createLogger({ level: 'silent' });

const SPEC = `
metadata:
  name: retention-agent
  version: v0.1.0
  created: "2026-12-03"
  workstream: Runtime Tests
spec:
  name: Retention Agent
  domain: testing
  priority: medium
capabilities:
  primary: [answer]
objectives:
  - description: Answer at once
    deliverable: a reply saying done
    validation: The run completes
tasks:
  default:
    - description: Say done
      priority: medium
dependencies:
  required: []
security:
  sandbox: true
  capabilities_required: []
  resource_limits: {max_memory: 64MB, max_cpu: 10%, timeout: 1m}
`;

const USER = ['agent:spawn', 'capability:grant', 'task:run', 'task:schedule', 'task:cancel', 'state:read', 'events:read'];

function loadSpec() {
  const analysis = analyzeSpecText('retention.agent.yaml', SPEC);
  assert.deepEqual(analysis.diagnostics.filter((d) => d.severity === 'error'), []);
  return { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document };
}

/** A host (snapshots every 20 events, so restarts load one) and a runtime whose model answers `done`. */
async function open(dir: string) {
  const host = await Host.open({ dataDir: join(dir, 'data'), logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false, snapshotEvery: 20 });
  const provider = scriptedProvider(parseTranscript({ turns: [{ text: 'done', usage: { inputTokens: 1, outputTokens: 1 } }] }));
  const runtime = await AgentRuntime.start({ host, provider: () => provider, tools: new ToolRegistry(), workspaceRoot: join(dir, 'ws'), logger: quiet });
  return { host, runtime };
}

async function user(host: Host, vault: string, permissions = USER): Promise<Session> {
  const { token } = await host.mint(host.localSession(vault), { subject: 'dev', permissions, ttlSeconds: 1800 });
  return host.authenticate(token);
}

async function runOnce(runtime: AgentRuntime, session: Session, agent: string, input: string): Promise<RunRecord> {
  const { runs } = await runtime.run(session, { agent, input });
  return runtime.waitForEnd(session, runs[0]);
}

async function runtimeNamespace(host: Host): Promise<RuntimeState> {
  return (await host.worldState()).state.ext[RUNTIME_NAMESPACE] as RuntimeState;
}

async function rejects(work: Promise<unknown>, name: string): Promise<HostError> {
  const err = await work.then(
    () => assert.fail(`expected ${name}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HostError, String(err));
  assert.equal(err.errorName, name, err.message);
  return err;
}

describe('ended-run retention', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-retention-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps each agent's newest ended runs in the state; older ones leave it and still answer by id, from the log, in their vault only", async () => {
    let { host, runtime } = await open(dir);
    const dev = await user(host, 'v');
    const { agent } = await runtime.spawn(dev, loadSpec());
    const { agent: other } = await runtime.spawn(dev, loadSpec());
    const ended: RunRecord[] = [];
    for (let i = 0; i < ENDED_RUNS_KEPT + 3; i++) ended.push(await runOnce(runtime, dev, agent, `task ${i}`));
    const otherRun = await runOnce(runtime, dev, other, 'the other agent');

    const rt = await runtimeNamespace(host);
    assert.deepEqual(Object.values(rt.runs).flatMap((shard) => Object.keys(shard)), [], 'no live run is left');
    assert.deepEqual(Object.keys(rt.ended![agent]).sort(), ended.slice(3).map((r) => r.id).sort(), 'the agent keeps its newest ended runs');
    assert.deepEqual(Object.keys(rt.ended![other]), [otherRun.id], "another agent's runs are kept apart");

    // A run that left the state answers as it ended, rebuilt from the log.
    const first = ended[0];
    assert.equal(first.state, 'completed');
    assert.deepEqual(await runtime.getRun(dev, first.id), first);
    // Lists show the kept runs, newest first.
    assert.deepEqual((await runtime.listRuns(dev, { agent })).map((r) => r.id), ended.slice(3).reverse().map((r) => r.id));
    // Cancelling it says it has ended, as for a run the state still holds.
    const refused = await rejects(runtime.cancel(dev, { run: first.id }), 'InvalidOperation');
    assert.equal((refused.data as { reason?: string }).reason, 'not cancelable');
    const keptRefused = await rejects(runtime.cancel(dev, { run: ended[ENDED_RUNS_KEPT + 2].id }), 'InvalidOperation');
    assert.equal((keptRefused.data as { reason?: string }).reason, 'not cancelable');
    // Another vault finds neither the run nor its log records.
    const stranger = await user(host, 'w');
    await rejects(runtime.getRun(stranger, first.id), 'UnknownEntity');
    await rejects(runtime.getRun(dev, 'no-such-run'), 'UnknownEntity');
    assert.equal((await host.verify()).ok, true, 'replay from zero evicts exactly as the live kernel did');

    // After a restart from a snapshot, eviction goes on alike and old runs still answer.
    await runtime.close();
    await host.close();
    ({ host, runtime } = await open(dir));
    assert.deepEqual(await runtime.getRun(dev, first.id), first);
    for (let i = 0; i < 3; i++) ended.push(await runOnce(runtime, dev, agent, `after restart ${i}`));
    assert.deepEqual(Object.keys((await runtimeNamespace(host)).ended![agent]).sort(), ended.slice(6).map((r) => r.id).sort());
    assert.equal((await host.verify()).ok, true);
    await runtime.close();
    await host.close();

    // The evicted run replays from the log, event for event.
    const log = openEventLog({ kind: 'sqlite', path: join(dir, 'data', 'events.db'), readOnly: true });
    try {
      const report = await replayRun(log, first.id, { handlers: RUNTIME_HANDLERS, tools: new ToolRegistry(), logger: quiet });
      assert.equal(report.identical, true, JSON.stringify(report.difference));
      assert.equal(report.state, 'completed');
    } finally {
      await log.close();
    }
  });

  it('does not adopt a snapshot in the layout before retention (runs keyed by id): it replays from the first record', async () => {
    let { host, runtime } = await open(dir);
    const dev = await user(host, 'v');
    const { agent } = await runtime.spawn(dev, loadSpec());
    for (let i = 0; i < 3; i++) await runOnce(runtime, dev, agent, `task ${i}`);
    const { seq, state } = await host.worldState();
    const rt = state.ext[RUNTIME_NAMESPACE] as RuntimeState;
    await runtime.close();
    await host.close();

    // What a host of the version before wrote: every run, ended or not, under `runs` by its id; no `ended`.
    const older = structuredClone(state);
    const flat: Record<string, RunRecord> = {};
    for (const kept of Object.values(rt.ended ?? {})) Object.assign(flat, kept);
    older.ext[RUNTIME_NAMESPACE] = { agents: rt.agents, runs: flat };
    const log = openEventLog({ kind: 'sqlite', path: join(dir, 'data', 'events.db') });
    await log.writeSnapshot({ seq, canonicalState: canonicalJson(older) });
    assert.equal((await log.latestSnapshot())?.seq, seq, 'the older snapshot is the newest');
    await log.close();

    ({ host, runtime } = await open(dir));
    try {
      assert.deepEqual(await runtimeNamespace(host), rt, 'the state is the one the log replays to, not the snapshot');
      assert.equal((await host.verify()).ok, true);
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('finds where a run begins by index: the RunSubmitted record, in its vault only; bad ids are refused', async () => {
    const { host, runtime } = await open(dir);
    try {
      const dev = await user(host, 'v');
      const { agent } = await runtime.spawn(dev, loadSpec());
      const run = await runOnce(runtime, dev, agent, 'find me');
      const found = await host.runSubmission(dev, run.id);
      assert.equal(found?.event.type, 'RunSubmitted');
      assert.equal((found!.event as unknown as { run: RunRecord }).run.id, run.id);
      assert.equal(await host.runSubmission(await user(host, 'w'), run.id), null);
      assert.equal(await host.runSubmission(dev, 'no-such-run'), null);
      await rejects(host.runSubmission(dev, 'x'.repeat(129)), 'InvalidParams');
      await rejects(host.runSubmission(dev, 42 as unknown as string), 'InvalidParams');
      await rejects(host.runSubmission(dev, '\ud800'), 'InvalidParams');
      await rejects(host.runSubmission(await user(host, 'v', ['state:read']), run.id), 'CapabilityDenied');
    } finally {
      await runtime.close();
      await host.close();
    }
    // One probe of the partial index, not a scan of the log.
    const db = new Database(join(dir, 'data', 'events.db'), { readonly: true });
    try {
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN SELECT seq FROM events WHERE type = 'RunSubmitted' AND json_extract(body, '$.run.id') = ? AND vault = ? ORDER BY seq LIMIT 1`)
        .all('x', 'v') as { detail: string }[];
      assert.match(plan.map((p) => p.detail).join('\n'), /USING INDEX run_submissions/);
    } finally {
      db.close();
    }
  });

  it('the memory log finds the same RunSubmitted record', async () => {
    const log = openEventLog({ kind: 'memory' });
    const base = { at: 1, by: { sub: 's', jti: 'j' }, opId: 'o' };
    const submitted = (vault: string, id: string) => ({ ...base, type: 'RunSubmitted', vault, agent: 'a', run: { id } }) as unknown as KernelEvent;
    await log.append([submitted('v', 'r1'), { ...base, type: 'RunStarted', vault: 'v', agent: 'a', run: 'r2' } as unknown as KernelEvent, submitted('w', 'r2'), submitted('v', 'r2')]);
    assert.equal((await log.runSubmission('v', 'r2'))?.seq, 4);
    assert.equal((await log.runSubmission('w', 'r1')), null);
    await log.close();
  });
});
