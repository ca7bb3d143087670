/**
 * `toka/workstreams/plan` and `toka/workstreams/run` on a real `toka serve` over the WebSocket face, its
 * runtime driven by a scripted transcript: turn 1 asks for a shell call, turn 2 answers. An agent without the
 * shell is refused the call and completes; an agent with it waits for an approval (a run that stays live
 * until cancelled); an agent offered no file tools does not match turn 1's expectation and fails.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancellationTokenSource, ProgressType, ResponseError } from 'vscode-jsonrpc';
import {
  ApprovalListRequest,
  HostInfoRequest,
  TaskGetRequest,
  WorkstreamPlanRequest,
  WorkstreamRunRequest,
  type WorkstreamSpec,
} from '../../protocol/rpc/index.js';
import { cliMint, connectWs, spawnServe, type ServeProcess, type TokaWsClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

/** A spec named `name` that requires `requires` and may use what `capabilities` give. */
function spec(name: string, requires: string[], capabilities: string[]): WorkstreamSpec {
  const required = requires.length === 0 ? '{}' : `\n${requires.map((r) => `    ${r}: needs its result`).join('\n')}`;
  return {
    uri: `${name}.agent.yaml`,
    text: `metadata:
  name: ${name}
  version: v0.1.0
  created: "2026-12-03"
  workstream: Wire Workstream
spec:
  name: Agent ${name}
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
    - description: Report what is in the workspace
      priority: medium
dependencies:
  required: ${required}
security:
  sandbox: true
  capabilities_required: [${capabilities.join(', ')}]
`,
  };
}

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

const progress = new ProgressType<{ kind: string; message?: string; percentage?: number; title?: string }>();

describe('workstreams over toka/* (toka serve)', function () {
  this.timeout(90_000);
  let serve: ServeProcess;
  let scratch: string;
  let token: string;
  let client: TokaWsClient;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'toka-ws-wire-'));
    const transcript = join(scratch, 'transcript.json');
    writeFileSync(
      transcript,
      JSON.stringify({
        turns: [
          { expect: { toolsOffered: ['fs_read'] }, toolCalls: [{ id: 'c1', name: 'shell', arguments: { command: 'echo hello' } }] },
          { text: 'done' },
        ],
      }),
    );
    serve = await spawnServe({ env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: transcript } });
    token = await cliMint(serve.dataDir, {
      sub: 'dev',
      vault: 'ws',
      perm: 'agent:spawn,capability:grant,task:run,task:schedule,task:cancel,task:approve,state:read,events:read,tool:fs-read,tool:shell',
      ttl: '30m',
    });
    client = await connectWs(serve.wsUrl, token);
  });

  after(async () => {
    await client?.close();
    await serve?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('plans waves from the required dependencies, critical first within a wave', async () => {
    const critical = spec('gamma', [], ['filesystem-read']);
    critical.text = critical.text.replace('priority: medium\ncapabilities', 'priority: critical\ncapabilities');
    const plan = await client.request(WorkstreamPlanRequest.type, {
      specs: [spec('alpha', [], ['filesystem-read']), spec('beta', ['alpha', 'gamma'], ['filesystem-read']), critical],
    });
    assert.equal(plan.ok, true);
    assert.deepEqual(plan.waves, [['gamma', 'alpha'], ['beta']]);
    assert.deepEqual(
      plan.agents.map((a) => [a.name, a.wave, a.priority, a.requires, a.uri]),
      [
        ['gamma', 0, 'critical', [], 'gamma.agent.yaml'],
        ['alpha', 0, 'medium', [], 'alpha.agent.yaml'],
        ['beta', 1, 'medium', ['alpha', 'gamma'], 'beta.agent.yaml'],
      ],
    );
  });

  it('reports unknown dependencies and cycles as diagnostics with ranges, not as errors', async () => {
    const plan = await client.request(WorkstreamPlanRequest.type, {
      specs: [spec('one', ['two'], []), spec('two', ['one'], []), spec('three', ['nobody'], [])],
    });
    assert.equal(plan.ok, false);
    assert.deepEqual(plan.waves, []);
    const rules = plan.diagnostics.map((d) => `${d.file} ${d.rule}`).sort();
    assert.deepEqual(rules, ['one.agent.yaml workstream/cycle', 'three.agent.yaml workstream/unknown-dependency', 'two.agent.yaml workstream/cycle']);
    const unknown = plan.diagnostics.find((d) => d.rule === 'workstream/unknown-dependency')!;
    assert.ok(unknown.line > 1 && unknown.endColumn > unknown.column, 'the range is the dependency entry');
    // Running it is refused with the same diagnostics, and nothing is spawned.
    const refused = await rejectsWithName(client.request(WorkstreamRunRequest.type, { specs: [spec('one', ['two'], []), spec('two', ['one'], [])] }), 'InvalidParams');
    assert.deepEqual((refused.data as { diagnostics: { rule: string }[] }).diagnostics.map((d) => d.rule), ['workstream/cycle', 'workstream/cycle']);
  });

  it('runs wave after wave with work-done progress; a failed agent skips its dependants', async () => {
    const reports: { kind: string; message?: string; percentage?: number }[] = [];
    const listening = client.connection.onProgress(progress, 'ws-1', (v) => void reports.push(v));
    const result = await client.request(WorkstreamRunRequest.type, {
      specs: [spec('first', [], ['filesystem-read']), spec('second', ['first'], ['filesystem-read']), spec('mute', [], []), spec('after-mute', ['mute'], ['filesystem-read'])],
      workDoneToken: 'ws-1',
    });
    listening.dispose();
    assert.equal(result.ok, false);
    assert.deepEqual(result.waves, [['first', 'mute'], ['after-mute', 'second']]);
    const status = Object.fromEntries(result.agents.map((a) => [a.name, a.status]));
    assert.deepEqual(status, { first: 'completed', mute: 'failed', 'after-mute': 'skipped', second: 'completed' });
    const second = result.agents.find((a) => a.name === 'second')!;
    assert.equal(second.runs.length, 1);
    assert.equal(second.runs[0].state, 'completed');
    assert.equal(second.runs[0].text, 'done');
    assert.equal(second.uri, 'second.agent.yaml');
    assert.match(result.agents.find((a) => a.name === 'after-mute')!.reason!, /required agent mute failed/);
    assert.equal(result.agents.find((a) => a.name === 'after-mute')!.agent, undefined, 'a skipped agent is never spawned');
    // Progress: begin, the waves in order, the agents' steps, 100 %, end.
    await waitFor(() => reports.some((r) => r.kind === 'end') || null, 5000, 'the end of the progress');
    assert.equal(reports[0].kind, 'begin');
    const messages = reports.map((r) => r.message ?? '');
    const wave1 = messages.indexOf('wave 1/2: first, mute');
    const wave2 = messages.indexOf('wave 2/2: after-mute, second');
    assert.ok(wave1 >= 0 && wave2 > wave1, messages.join('\n'));
    assert.ok(messages.includes('first: completed') && messages.includes('second: LLM turn: 1 tool call'), messages.join('\n'));
    assert.equal(reports.filter((r) => r.kind === 'report').at(-1)!.percentage, 100);
  });

  it('$/cancelRequest cancels the runs in flight and skips the agents not started', async () => {
    const source = new CancellationTokenSource();
    const running = client.connection.sendRequest(
      WorkstreamRunRequest.type,
      { specs: [spec('waiter', [], ['filesystem-read', 'git-access']), spec('later', ['waiter'], ['filesystem-read'])] },
      source.token,
    );
    // The waiter's shell call waits for an approval: its run stays live until something ends it.
    const approval = await waitFor(async () => (await client.request(ApprovalListRequest.type, {})).approvals[0], 20_000, 'the approval');
    source.cancel();
    const result = await running;
    assert.equal(result.ok, false);
    const waiter = result.agents.find((a) => a.name === 'waiter')!;
    assert.equal(waiter.status, 'cancelled');
    assert.equal(waiter.runs[0].state, 'canceled');
    assert.equal(waiter.runs[0].id, approval.run);
    assert.equal((await client.request(TaskGetRequest.type, { task: approval.run })).state, 'canceled');
    assert.deepEqual(
      result.agents.map((a) => [a.name, a.status]),
      [
        ['waiter', 'cancelled'],
        ['later', 'skipped'],
      ],
    );
  });

  it('cancels the runs of a workstream whose connection closes', async () => {
    const other = await connectWs(serve.wsUrl, token);
    void other.request(WorkstreamRunRequest.type, { specs: [spec('orphan', [], ['filesystem-read', 'git-access'])] }).catch(() => undefined);
    const approval = await waitFor(async () => (await client.request(ApprovalListRequest.type, {})).approvals[0], 20_000, 'the orphan waiting for approval');
    await other.close();
    await waitFor(async () => (await client.request(TaskGetRequest.type, { task: approval.run })).state === 'canceled' || null, 10_000, 'the run to be cancelled');
  });

  it('refuses bad params with InvalidParams naming the field, and keeps serving', async () => {
    const bad: [unknown, string][] = [
      [{ specs: [] }, 'specs'],
      [{ specs: [spec('a', [], []), { ...spec('b', [], []), uri: 'a.agent.yaml' }] }, 'specs'],
      [{ specs: [{ uri: 'x.yaml', text: 'a: 1', extra: true }] }, 'specs'],
      [{ specs: [spec('a', [], [])], concurrency: 0 }, 'concurrency'],
      [{ specs: [spec('a', [], [])], concurrency: 17 }, 'concurrency'],
      [{ specs: [spec('a', [], [])], limits: { maxTurns: -1 } }, 'limits'],
      [{ specs: [spec('a', [], [])], surprise: 1 }, 'surprise'],
      [{ specs: 'a.yaml' }, 'specs'],
    ];
    for (const [params, field] of bad) {
      const err = await rejectsWithName(client.connection.sendRequest(WorkstreamRunRequest.type, params as never), 'InvalidParams');
      assert.equal((err.data as { field?: string }).field, field, JSON.stringify(params));
    }
    const planBad = await rejectsWithName(client.connection.sendRequest(WorkstreamPlanRequest.type, { specs: [{ uri: '', text: 'x' }] } as never), 'InvalidParams');
    assert.equal((planBad.data as { field?: string }).field, 'specs');
    assert.equal((await client.request(HostInfoRequest.type, {})).ready, true);
  });

  it('acts with the caller\'s own permissions: a read-only token plans, and its run spawns nothing', async () => {
    const readOnly = await cliMint(serve.dataDir, { sub: 'viewer', vault: 'ws', perm: 'state:read,events:read', ttl: '5m' });
    const viewer = await connectWs(serve.wsUrl, readOnly);
    try {
      const plan = await viewer.request(WorkstreamPlanRequest.type, { specs: [spec('solo', [], [])] });
      assert.equal(plan.ok, true, 'planning reads and writes nothing');
      const result = await viewer.request(WorkstreamRunRequest.type, { specs: [spec('solo', [], [])] });
      assert.equal(result.agents[0].status, 'failed');
      assert.match(result.agents[0].reason!, /cannot give the agent task:run/);
      assert.equal(result.agents[0].agent, undefined);
    } finally {
      await viewer.close();
    }
  });
});
