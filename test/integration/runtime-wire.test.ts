/**
 * The agents/tasks/approvals methods on a real `toka serve` (its runtime driven by the scripted provider the
 * environment configures), over the WebSocket face: spawn from spec text, run, watch the events, approve,
 * cancel, and bad input that gets typed errors while the host stays up.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResponseError } from 'vscode-jsonrpc';
import {
  AgentRunRequest,
  AgentSpawnRequest,
  ApprovalListRequest,
  ApprovalResolveRequest,
  EventsEventNotification,
  EventsSubscribeRequest,
  HostInfoRequest,
  TaskCancelRequest,
  TaskGetRequest,
  TaskListRequest,
} from '../../protocol/rpc/index.js';
import { cliMint, connectWs, spawnServe, type ServeProcess, type TokaWsClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

const SPEC = `metadata:
  name: wire-agent
  version: v0.1.0
  created: "2026-11-20"
  workstream: Wire Tests
spec:
  name: Wire Test Agent
  domain: testing
  priority: medium
capabilities:
  primary: [answer]
objectives:
  - description: Answer what it is asked
    deliverable: an answer in the task result
    validation: The answer is recorded
tasks:
  default:
    - description: Say hello through the shell
      priority: medium
dependencies:
  required: []
security:
  sandbox: true
  capabilities_required: [filesystem-read, git-access]
`;

async function rejectsWithName(p: Promise<unknown>, name: string): Promise<ResponseError<unknown>> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ResponseError, String(err));
    assert.equal((err.data as { name?: string }).name, name, err.message);
    return err;
  }
  assert.fail(`expected ${name}`);
}

describe('agents, tasks and approvals over toka/* (toka serve)', function () {
  this.timeout(60_000);
  let serve: ServeProcess;
  let scratch: string;
  let client: TokaWsClient;
  const types: string[] = [];

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'toka-wire-'));
    const transcript = join(scratch, 'transcript.json');
    writeFileSync(
      transcript,
      JSON.stringify({
        turns: [
          { toolCalls: [{ id: 'c1', name: 'shell', arguments: { command: 'echo hello' } }] },
          { expect: { toolResults: [{ callId: 'c1', isError: false, contains: 'hello' }] }, text: 'said hello' },
        ],
      }),
    );
    serve = await spawnServe({ env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: transcript } });
    const token = await cliMint(serve.dataDir, {
      sub: 'dev',
      vault: 'w',
      perm: 'agent:spawn,capability:grant,task:run,task:schedule,task:cancel,task:approve,state:read,events:read,tool:fs-read,tool:shell',
      ttl: '30m',
    });
    client = await connectWs(serve.wsUrl, token);
    client.connection.onNotification(EventsEventNotification.type, (p: unknown) => void types.push((p as { record: { event: { type: string } } }).record.event.type));
    await client.request(EventsSubscribeRequest.type, { afterSeq: 0 });
  });

  after(async () => {
    await client?.close();
    await serve?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('spawns from spec text, runs the queued task through an approval, and streams every step as events', async () => {
    const spawned = await client.request(AgentSpawnRequest.type, { spec: SPEC, uri: 'wire-agent.agent.yaml' });
    assert.deepEqual(spawned.withheld, []);
    assert.ok(spawned.permissions.includes('tool:shell'));
    const { tasks } = await client.request(AgentRunRequest.type, { agent: spawned.agent });
    assert.equal(tasks.length, 1);
    const approval = await waitFor(async () => (await client.request(ApprovalListRequest.type, {})).approvals[0], 15_000, 'the approval');
    assert.equal(approval.run, tasks[0]);
    assert.equal(approval.call.name, 'shell');
    const resumed = await client.request(ApprovalResolveRequest.type, { task: tasks[0], approval: approval.id, decision: 'approve' });
    assert.notEqual(resumed.state, 'input-required');
    const done = await waitFor(async () => {
      const t = await client.request(TaskGetRequest.type, { task: tasks[0] });
      return t.state === 'completed' ? t : null;
    }, 15_000, 'the task to complete');
    assert.equal(done.text, 'said hello');
    await waitFor(() => types.includes('RunCompleted'), 5000, 'RunCompleted on the subscription');
    for (const t of ['RunSubmitted', 'RunStarted', 'LlmTurnRecorded', 'ToolCallRequested', 'ApprovalResolved', 'ToolResultRecorded']) {
      assert.ok(types.includes(t), `${t} streamed`);
    }
    const listed = await client.request(TaskListRequest.type, { agent: spawned.agent, state: 'completed' });
    assert.deepEqual(listed.tasks.map((t) => t.id), tasks);
  });

  it('refuses bad input with typed errors and keeps serving', async () => {
    const bad = await rejectsWithName(client.request(AgentSpawnRequest.type, { spec: 'metadata: {name: X}\n', uri: 'bad.agent.yaml' }), 'InvalidParams');
    const diagnostics = (bad.data as { diagnostics: { line: number; rule: string }[] }).diagnostics;
    assert.ok(diagnostics.length > 0 && diagnostics.every((d) => d.line >= 1 && typeof d.rule === 'string'));
    await rejectsWithName(client.request(TaskGetRequest.type, { task: 'no-such-task' }), 'UnknownEntity');
    await rejectsWithName(client.request(AgentRunRequest.type, { agent: 'no-such-agent', input: 'x' }), 'UnknownEntity');
    await rejectsWithName(client.request(TaskListRequest.type, { limit: 0 } as never), 'InvalidParams');
    const [finished] = (await client.request(TaskListRequest.type, { state: 'completed' })).tasks;
    const notCancelable = await rejectsWithName(client.request(TaskCancelRequest.type, { task: finished.id }), 'InvalidOperation');
    assert.equal((notCancelable.data as { reason?: string }).reason, 'not cancelable');
    assert.equal((await client.request(HostInfoRequest.type, {})).ready, true);
  });
});

describe('a task survives a SIGKILL of toka serve mid-run', function () {
  this.timeout(60_000);
  let scratch: string;
  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'toka-wire-kill-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('resumes from the log after a restart: no recorded step is repeated, the task completes', async () => {
    const transcript = join(scratch, 'transcript.json');
    writeFileSync(
      transcript,
      JSON.stringify({
        turns: [
          { toolCalls: [{ id: 'l1', name: 'fs_list', arguments: { path: '.' } }] },
          // The host is killed while this turn is being awaited; after the restart it is asked again.
          { delayMs: 3000, text: 'finished after the restart' },
        ],
      }),
    );
    const env = { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: transcript };
    const first = await spawnServe({ env });
    const token = await cliMint(first.dataDir, {
      sub: 'dev',
      vault: 'k',
      perm: 'agent:spawn,capability:grant,task:run,task:schedule,task:cancel,state:read,events:read,tool:fs-read',
      ttl: '30m',
    });
    let task: string;
    {
      const c = await connectWs(first.wsUrl, token);
      const { agent } = await c.request(AgentSpawnRequest.type, { spec: SPEC, uri: 'wire-agent.agent.yaml' });
      [task] = (await c.request(AgentRunRequest.type, { agent, input: 'list the workspace' })).tasks;
      await waitFor(async () => (await c.request(TaskGetRequest.type, { task })).toolCalls === 1 || null, 15_000, 'the first tool call');
      await waitFor(async () => {
        const t = await c.request(TaskGetRequest.type, { task });
        return t.turns === 1 && t.state === 'working' ? t : null;
      }, 15_000, 'the second LLM call to be in flight');
      first.child.kill('SIGKILL');
      await first.stop({ keepData: true });
    }
    const second = await spawnServe({ env, dataDir: first.dataDir });
    try {
      const c = await connectWs(second.wsUrl, token);
      const done = await waitFor(async () => {
        const t = await c.request(TaskGetRequest.type, { task });
        return t.state === 'completed' ? t : null;
      }, 20_000, 'the task to complete after the restart');
      assert.equal(done.text, 'finished after the restart');
      assert.equal(done.turns, 2, 'the turn recorded before the kill is not asked for again');
      assert.equal(done.toolCalls, 1);
      await c.close();
    } finally {
      await second.stop();
    }
  });
});
