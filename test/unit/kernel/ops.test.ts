import assert from 'node:assert/strict';
import { ErrorCodes } from '../../../protocol/errors.js';
import type { GrantCreated, KernelEvent, ObservationEmitted, TaskScheduled } from '../../../protocol/kernel.js';
import { KernelError } from '../../../server/kernel/errors.js';
import { Kernel, emptyState } from '../../../server/kernel/kernel.js';
import { claims, digest, envelope, throwsKernel } from './helpers.js';

/** A kernel whose vault A has its root and one child agent `worker`. */
function withWorker(): { kernel: Kernel; worker: string } {
  const kernel = new Kernel();
  const env = envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'worker' } });
  kernel.execute(env);
  return { kernel, worker: env.ids[0] };
}

describe('kernel core operations', () => {
  it('starts from the empty state', () => {
    assert.deepEqual(new Kernel().state, emptyState());
    assert.deepEqual(new Kernel().handlers(), [
      'ScheduleAgentTask', 'CancelTask', 'SpawnSubAgent', 'EmitObservation', 'CreateGrant', 'RevokeGrant', 'RevokeToken', 'DelegateCapability',
    ]);
  });

  it('SpawnSubAgent under root creates the root first, then the child', () => {
    const kernel = new Kernel();
    const env = envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'worker' } });
    const events = kernel.execute(env);
    const by = { sub: 'alice', jti: 'jti-alice' };
    assert.deepEqual(events, [
      { type: 'AgentSpawned', opId: env.id, at: env.at, by, vault: 'A', agent: 'root:A', parent: null, name: 'root' },
      { type: 'AgentSpawned', opId: env.id, at: env.at, by, vault: 'A', agent: env.ids[0], parent: 'root:A', name: 'worker' },
    ]);
    assert.deepEqual(kernel.state.agents[env.ids[0]], {
      id: env.ids[0], parent: 'root:A', vault: 'A', name: 'worker', status: 'active', createdAt: env.at,
    });
    assert.equal(kernel.state.roots.A, 'root:A');
    assert.equal(kernel.state.agents['root:A'].parent, null);
    assert.deepEqual(kernel.state.tasks[env.ids[0]], []);
    assert.equal(kernel.state.observations[env.ids[0]], 0);
  });

  it('creates the root exactly once, whether referenced by alias or id', () => {
    const kernel = new Kernel();
    const first = kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root:A', task: { description: 'one' } }));
    assert.deepEqual(first.map((e) => e.type), ['AgentSpawned', 'TaskScheduled']);
    const second = kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'two' } }));
    assert.deepEqual(second.map((e) => e.type), ['TaskScheduled']);
    assert.deepEqual(kernel.state.tasks['root:A'].map((t) => t.description), ['one', 'two']);
    assert.equal(Object.keys(kernel.state.agents).length, 1);
  });

  it('a failed operation on the root does not create it', () => {
    const kernel = new Kernel();
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'x' } }, claims(), { ids: [] })), 'InvalidOperation');
    assert.deepEqual(kernel.state, emptyState());
  });

  it('ScheduleAgentTask queues a task with default priority medium', () => {
    const { kernel, worker } = withWorker();
    const env = envelope({ type: 'ScheduleAgentTask', agent: worker, task: { description: 'index the repo' } });
    const [event] = kernel.execute(env) as TaskScheduled[];
    assert.equal(event.agent, worker);
    assert.deepEqual(event.task, { id: env.ids[0], description: 'index the repo', priority: 'medium', scheduledAt: env.at });
    kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: worker, task: { description: 'urgent', priority: 'critical' } }));
    assert.deepEqual(kernel.state.tasks[worker].map((t) => [t.description, t.priority]), [['index the repo', 'medium'], ['urgent', 'critical']]);
  });

  it('CancelTask removes exactly that task from the queue, and replays', () => {
    const kernel = new Kernel();
    const log: KernelEvent[] = [];
    const run = (op: Record<string, unknown>) => {
      const out = kernel.execute(envelope(op));
      log.push(...(JSON.parse(JSON.stringify(out)) as KernelEvent[]));
      return out;
    };
    const worker = run({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'worker' } })[1].agent!;
    const ids = ['one', 'two', 'three'].map((description) => {
      const [e] = run({ type: 'ScheduleAgentTask', agent: worker, task: { description } }) as TaskScheduled[];
      return e.task.id;
    });
    const events = run({ type: 'CancelTask', agent: worker, task: ids[1], reason: 'superseded' });
    assert.deepEqual(
      events.map((e) => [e.type, (e as { task?: string }).task, (e as { reason?: string }).reason]),
      [['TaskCancelled', ids[1], 'superseded']],
    );
    assert.deepEqual(kernel.state.tasks[worker].map((t) => t.description), ['one', 'three']);
    throwsKernel(() => kernel.execute(envelope({ type: 'CancelTask', agent: worker, task: ids[1] })), 'UnknownEntity', { entity: 'task', id: ids[1] });
    // Replaying the emitted events from zero reproduces the live state, the cancellation included.
    const replayed = new Kernel();
    for (const e of log) replayed.apply(e);
    assert.deepEqual(replayed.state.tasks[worker].map((t) => t.id), [ids[0], ids[2]]);
    assert.equal(digest(replayed.state), digest(kernel.state));
    // And the TaskCancelled event is what removes the task: without it the replay still holds it.
    const withoutCancel = new Kernel();
    for (const e of log.slice(0, -1)) withoutCancel.apply(e);
    assert.deepEqual(withoutCancel.state.tasks[worker].map((t) => t.id), ids);
  });

  it('CancelTask of a task queued on another agent is UnknownEntity', () => {
    const { kernel, worker } = withWorker();
    const [e] = kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'on root' } })) as TaskScheduled[];
    throwsKernel(() => kernel.execute(envelope({ type: 'CancelTask', agent: worker, task: e.task.id })), 'UnknownEntity', { entity: 'task', id: e.task.id });
    assert.equal(kernel.state.tasks['root:A'].length, 1);
  });

  it('EmitObservation counts observations and numbers them from 1', () => {
    const { kernel, worker } = withWorker();
    const a = kernel.execute(envelope({ type: 'EmitObservation', agent: worker, data: { cpu: 0.5, tags: ['x'] } })) as ObservationEmitted[];
    const b = kernel.execute(envelope({ type: 'EmitObservation', agent: worker, data: null })) as ObservationEmitted[];
    assert.equal(a[0].index, 1);
    assert.deepEqual(a[0].data, { cpu: 0.5, tags: ['x'] });
    assert.equal(b[0].index, 2);
    assert.equal(kernel.state.observations[worker], 2);
  });

  it('EmitObservation rejects data that is not JSON', () => {
    const { kernel, worker } = withWorker();
    for (const data of [Number.NaN, Infinity, undefined, { f: () => 1 }, [1, undefined], new Date(0)]) {
      throwsKernel(() => kernel.execute(envelope({ type: 'EmitObservation', agent: worker, data })), 'InvalidOperation');
    }
  });

  it('CreateGrant records the grant in the caller vault', () => {
    const kernel = new Kernel();
    const c = claims({ permissions: ['capability:grant', 'task:schedule', 'state:read'] });
    const env = envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['task:schedule'], label: 'ci', expiresAt: 1_800_000_000_000 }, c);
    const [event] = kernel.execute(env) as GrantCreated[];
    const grant = {
      id: env.ids[0], subject: 'bob', vault: 'A', permissions: ['task:schedule'], expiresAt: 1_800_000_000_000,
      createdAt: env.at, createdBy: 'alice', label: 'ci', revoked: false,
    };
    assert.deepEqual(event.grant, grant);
    assert.deepEqual(kernel.state.grants[env.ids[0]], grant);
  });

  it('CreateGrant cannot grant more than the caller holds, nor unknown or no permissions', () => {
    const kernel = new Kernel();
    const c = claims({ permissions: ['capability:grant', 'task:schedule'] });
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['agent:spawn'] }, c)), 'CapabilityDenied');
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['task:*'] }, c)), 'CapabilityDenied');
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['nope:never'] }, c)), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: 'bob', permissions: [] }, c)), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: ' ', permissions: ['task:schedule'] }, c)), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['task:schedule'], expiresAt: 5 }, c)), 'InvalidOperation');
    assert.deepEqual(kernel.state.grants, {});
  });

  it('RevokeGrant revokes once; unknown grants are UnknownEntity', () => {
    const kernel = new Kernel();
    const env = envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['task:schedule'] });
    kernel.execute(env);
    const grant = env.ids[0];
    const events = kernel.execute(envelope({ type: 'RevokeGrant', grant, reason: 'left' }));
    assert.equal(events[0].type, 'GrantRevoked');
    assert.equal(events[0].reason, 'left');
    assert.equal(kernel.state.grants[grant].revoked, true);
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeGrant', grant })), 'InvalidOperation', { reason: 'already revoked' });
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeGrant', grant: 'nope' })), 'UnknownEntity', { entity: 'grant', id: 'nope' });
  });

  it('RevokeToken records the revocation; a second one is InvalidOperation', () => {
    const kernel = new Kernel();
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'other', exp: 1_700_000_900 }));
    assert.deepEqual(kernel.state.revokedTokens, {});
    assert.deepEqual(kernel.state.revokedTokensByVault, { A: { other: 1_700_000_900 } });
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeToken', jti: 'other', exp: 1_700_000_900 })), 'InvalidOperation', { reason: 'already revoked' });
  });

  it('a token may revoke itself without capability:revoke, but no other token', () => {
    const kernel = new Kernel();
    const c = claims({ permissions: ['state:read'], jti: 'mine' });
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeToken', jti: 'theirs', exp: 1 }, c)), 'CapabilityDenied', { required: 'capability:revoke' });
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'mine', exp: c.exp }, c));
    assert.equal(kernel.state.revokedTokensByVault?.A.mine, c.exp);
  });

  it('unknown agents are UnknownEntity', () => {
    const kernel = new Kernel();
    throwsKernel(() => kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: 'ghost', task: { description: 'x' } })), 'UnknownEntity', { entity: 'agent', id: 'ghost' });
    throwsKernel(() => kernel.execute(envelope({ type: 'EmitObservation', agent: 'root:B', data: 1 })), 'UnknownEntity', { entity: 'agent', id: 'root:B' });
  });

  it('malformed operations are InvalidOperation, unknown types UnsupportedOperation', () => {
    const { kernel, worker } = withWorker();
    const before = digest(kernel.state);
    const bad: unknown[] = [
      null, 'SpawnSubAgent', [], {}, { type: 7 },
      { type: 'ScheduleAgentTask', agent: worker },
      { type: 'ScheduleAgentTask', agent: worker, task: { description: 5 } },
      { type: 'ScheduleAgentTask', agent: worker, task: { description: 'x', priority: 'urgent' } },
      { type: 'ScheduleAgentTask', agent: worker, task: { description: 'x' }, extra: true },
      { type: 'SpawnSubAgent', parent: worker, spec: { name: 'x', colour: 'red' } },
      { type: 'SpawnSubAgent', parent: 1, spec: { name: 'x' } },
      { type: 'RevokeToken', jti: 'j', exp: 1.5 },
      { type: 'RevokeToken', jti: '', exp: 1 },
      { type: 'DelegateCapability', subject: 'bob', permissions: 'task:schedule', exp: 1 },
      { type: 'EmitObservation', agent: '__proto__', data: 1 },
    ];
    for (const op of bad) throwsKernel(() => kernel.execute(envelope(op as Record<string, unknown>)), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'PauseAgent', agent: worker })), 'UnsupportedOperation', { type: 'PauseAgent' });
    assert.equal(digest(kernel.state), before);
  });

  it('missing fresh ids are InvalidOperation; ids are never reused', () => {
    const { kernel, worker } = withWorker();
    throwsKernel(() => kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: worker, task: { description: 'x' } }, claims(), { ids: [] })), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: worker, spec: { name: 'x' } }, claims(), { ids: [worker] })), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: worker, spec: { name: 'x' } }, claims(), { ids: ['root:Z'] })), 'InvalidOperation');
  });

  it('events carry by = {sub, jti} and never the token', () => {
    const { kernel, worker } = withWorker();
    const c = claims({ jti: 'j-9' });
    const [event] = kernel.execute(envelope({ type: 'EmitObservation', agent: worker, data: 'hi' }, c));
    assert.deepEqual(event.by, { sub: 'alice', jti: 'j-9' });
    assert.ok(!JSON.stringify(event).includes('permissions'));
  });

  it('KernelError maps to the JSON-RPC table', () => {
    const e = throwsKernel(() => new Kernel().execute(envelope({ type: 'Nope' })), 'UnsupportedOperation');
    assert.ok(e instanceof KernelError);
    assert.equal(e.rpcCode, ErrorCodes.UnsupportedOperation);
    assert.deepEqual(e.toErrorData(), { name: 'UnsupportedOperation', type: 'Nope' });
  });
});
