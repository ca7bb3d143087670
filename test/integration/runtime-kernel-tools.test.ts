import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GrantRecord } from '../../protocol/kernel.js';
import type { RunToolResult } from '../../protocol/runtime.js';
import { HostError } from '../../server/host/errors.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { runtimeState } from '../../server/runtime/lifecycle.js';
import { parseTranscript, scriptedProvider, type ScriptedTranscript } from '../../server/runtime/llm/index.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { replayRun } from '../../server/runtime/replay.js';
import { runtimeTools } from '../../server/runtime/start.js';
import { openEventLog } from '../../server/store/index.js';

const quiet = createLogger({ level: 'silent' });

const ORCHESTRATOR = `
metadata: {name: orchestrator, version: v0.1.0, created: "2026-11-20", workstream: Kernel Tools}
spec: {name: Orchestrator Agent, domain: coordination, priority: high}
capabilities: {primary: [delegation]}
objectives:
  - {description: Hand work to sub-agents, deliverable: sub-agents with their tasks, validation: The sub-agents exist}
tasks:
  default:
    - {description: Delegate, priority: high}
security:
  capabilities_required: [filesystem-read, agent:spawn, capability:grant, task:schedule, observation:emit]
`;

const HELPER_SPEC = `
metadata: {name: helper, version: v0.1.0, created: "2026-11-20", workstream: Kernel Tools}
spec: {name: Helper Agent, domain: documentation, priority: low}
capabilities: {primary: [reading]}
objectives:
  - {description: Read what it is told to, deliverable: a summary of the file, validation: The summary is there}
tasks:
  default:
    - {description: Read notes.md, priority: low}
security:
  capabilities_required: [filesystem-read]
`;

const TRANSCRIPT: ScriptedTranscript = {
  turns: [
    { toolCalls: [{ id: 'sp1', name: 'spawn_agent', arguments: { spec: HELPER_SPEC } }] },
    {
      expect: { toolResults: [{ callId: 'sp1', isError: false, contains: '"permissions":["task:run","tool:fs-read"]' }] },
      toolCalls: [{ id: 'sp2', name: 'spawn_agent', arguments: { name: 'writer', task: 'write things', capabilities_required: ['filesystem-write'] } }],
    },
    {
      expect: { toolResults: [{ callId: 'sp2', isError: true, contains: 'it does not hold tool:fs-write' }] },
      toolCalls: [
        { id: 'ob1', name: 'emit_observation', arguments: { progress: 0.75, message: 'helper spawned', state: 'delegating', metrics: { spawned: 1 } } },
        { id: 'sc1', name: 'schedule_task', arguments: { description: 'check on the helper', priority: 'high' } },
        { id: 'sc2', name: 'schedule_task', arguments: { agent: 'no-such-agent', description: 'lost' } },
        { id: 'sp3', name: 'spawn_agent', arguments: { name: 'Bad Name', task: 'x' } },
      ],
    },
    {
      expect: {
        toolResults: [
          { callId: 'ob1', isError: false },
          { callId: 'sc1', isError: false },
          { callId: 'sc2', isError: true, contains: 'UnknownEntity' },
          { callId: 'sp3', isError: true, contains: 'invalid arguments' },
        ],
      },
      text: 'delegated',
    },
  ],
};

const USER = ['agent:spawn', 'capability:grant', 'capability:revoke', 'task:run', 'task:schedule', 'task:approve', 'state:read', 'events:read', 'observation:emit', 'tool:fs-read', 'tool:fs-write'];

describe('kernel tools', function () {
  this.timeout(30_000);
  let dir: string;
  let host: Host;
  let runtime: AgentRuntime;
  let dev: Session;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-kernel-tools-'));
    host = await Host.open({ dataDir: join(dir, 'data'), logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    const provider = scriptedProvider(parseTranscript(TRANSCRIPT));
    runtime = await AgentRuntime.start({ host, provider: () => provider, tools: runtimeTools(), workspaceRoot: join(dir, 'workspaces'), logger: quiet });
    const { token } = await host.mint(host.localSession('v'), { subject: 'dev', permissions: USER, ttlSeconds: 1800 });
    dev = await host.authenticate(token);
  });
  afterEach(async () => {
    await runtime.close();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('spawns a sub-agent no wider than the agent, refuses a wider one with a typed error, schedules and observes; revoking the agent kills the sub-agent', async () => {
    const a = analyzeSpecText('orchestrator.agent.yaml', ORCHESTRATOR);
    assert.deepEqual(a.diagnostics.filter((d) => d.severity === 'error'), []);
    const orchestrator = await runtime.spawn(dev, { spec: a.spec!, digest: a.digest!, document: a.document });
    assert.deepEqual(orchestrator.withheld, []);
    const { runs } = await runtime.run(dev, { agent: orchestrator.agent, input: 'delegate the reading' });
    const run = await runtime.waitForEnd(dev, runs[0]);
    assert.equal(run.state, 'completed', JSON.stringify(run));

    const { state } = await host.worldState();
    const rt = runtimeState(state);
    const children = Object.values(state.agents).filter((x) => x.parent === orchestrator.agent);
    assert.deepEqual(children.map((c) => c.name), ['helper'], 'one sub-agent, under the calling agent; the wider one was never spawned');
    const helper = rt.agents[children[0].id];
    assert.deepEqual(helper.permissions, ['task:run', 'tool:fs-read']);
    const helperGrant: GrantRecord = state.grants[helper.grant];
    assert.equal(helperGrant.parent, orchestrator.grant, "the sub-agent's grant is a child of the agent's grant");
    assert.equal(helperGrant.createdBy, `agent:${orchestrator.agent}`);
    assert.deepEqual(state.tasks[helper.agent].map((t) => t.description), ['Read notes.md']);

    const results = (await host.queryEvents(dev, { types: ['ToolResultRecorded'], limit: 100 })).map((r) => (r.event as unknown as { result: RunToolResult }).result);
    const wider = results.find((r) => r.callId === 'sp2')!;
    assert.equal(wider.code, 'Denied');
    assert.match(wider.content, /may hold only what this agent holds; it does not hold tool:fs-write/);
    assert.equal(results.find((r) => r.callId === 'sc2')!.code, 'NotFound');
    assert.equal(results.find((r) => r.callId === 'sp3')!.code, 'InvalidArguments');

    const [observation] = await host.queryEvents(dev, { types: ['ObservationEmitted'], limit: 10 });
    assert.deepEqual((observation.event as unknown as { data: unknown }).data, {
      agent_id: orchestrator.agent,
      progress: 0.75,
      message: 'helper spawned',
      state: 'delegating',
      metrics: { spawned: 1 },
    });
    assert.equal(observation.event.by.sub, `agent:${orchestrator.agent}`, "emitted with the agent's own token");
    assert.deepEqual(
      state.tasks[orchestrator.agent].map((t) => [t.description, t.priority]),
      [['Delegate', 'high'], ['check on the helper', 'high']],
    );

    // The run replays identically: the kernel tools' own operations are applied from the log, not redone.
    const log = openEventLog({ kind: 'sqlite', path: join(dir, 'data', 'events.db'), readOnly: true });
    try {
      const replayed = await replayRun(log, run.id, { handlers: RUNTIME_HANDLERS, tools: runtimeTools(), logger: quiet });
      assert.equal(replayed.identical, true, JSON.stringify(replayed.difference));
    } finally {
      await log.close();
    }

    // The sub-agent's tokens die with the agent's grant.
    const { token } = await host.issueToken(host.localSession('v'), { grant: helper.grant });
    const helperSession = await host.authenticate(token);
    await host.revoke(dev, { grant: orchestrator.grant, reason: 'done' });
    await assert.rejects(host.check(helperSession), (err: unknown) => err instanceof HostError && err.errorName === 'Unauthenticated');
    await assert.rejects(host.authenticate(token), (err: unknown) => err instanceof HostError && err.errorName === 'Unauthenticated');
  });

  it('kernel tools are offered only to agents holding their permissions', () => {
    const tools = runtimeTools();
    const plain = tools.list(['task:run', 'tool:fs-read']).map((m) => m.name);
    for (const name of ['spawn_agent', 'schedule_task', 'emit_observation']) assert.ok(!plain.includes(name), `${name} is not offered`);
    const kernel = tools.list(['agent:spawn', 'task:schedule', 'observation:emit']).map((m) => [m.name, m.permission]);
    assert.deepEqual(kernel, [
      ['spawn_agent', 'agent:spawn'],
      ['schedule_task', 'task:schedule'],
      ['emit_observation', 'observation:emit'],
    ]);
  });

  it('a kernel tool called outside an agent run fails with a typed error', async () => {
    const tools = runtimeTools();
    await assert.rejects(
      tools.call('emit_observation', { progress: 0.1, message: 'x' }, { signal: new AbortController().signal, workspace: dir, limits: {} as never, agentId: 'a' }, ['observation:emit']),
      (err: unknown) => (err as { code?: string }).code === 'Failed' && /inside an agent run/.test((err as Error).message),
    );
    await assert.rejects(
      tools.call('emit_observation', { progress: 2, message: 'x' }, { signal: new AbortController().signal, workspace: dir, limits: {} as never, agentId: 'a' }, ['observation:emit']),
      (err: unknown) => (err as { code?: string }).code === 'InvalidArguments',
    );
  });
});
