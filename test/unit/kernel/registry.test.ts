import assert from 'node:assert/strict';
import type { KernelEvent, WorldState } from '../../../protocol/kernel.js';
import { KernelError } from '../../../server/kernel/errors.js';
import { Kernel, type OpcodeHandler } from '../../../server/kernel/kernel.js';
import { claims, digest, envelope, throwsKernel } from './helpers.js';

interface PauseState {
  paused: Record<string, boolean>;
}

function pauseState(state: WorldState): PauseState {
  if (state.ext.lifecycle === undefined) state.ext.lifecycle = { paused: {} };
  return state.ext.lifecycle as PauseState;
}

/** The PauseAgent / ResumeAgent family: one namespace, `ext.lifecycle`. */
function lifecycle(opcode: 'PauseAgent' | 'ResumeAgent', event: string, paused: boolean): OpcodeHandler {
  return {
    opcode,
    permission: 'agent:pause',
    namespace: 'lifecycle',
    eventTypes: [event],
    validate(op) {
      if (typeof (op as { agent?: unknown }).agent !== 'string') throw KernelError.invalid('agent must be a string');
    },
    execute(env, view) {
      const agent = view.agent((env.op as { agent: string }).agent);
      const current = (view.ext('lifecycle') as PauseState | undefined)?.paused[agent.id] ?? false;
      if (current === paused) throw KernelError.invalid(paused ? 'already paused' : 'not paused');
      return [view.event(event, { agent: agent.id })];
    },
    apply(e, state) {
      pauseState(state).paused[e.agent as string] = paused;
    },
  };
}

const pause = lifecycle('PauseAgent', 'AgentPaused', true);
const resume = lifecycle('ResumeAgent', 'AgentResumed', false);
const withPause = claims({ permissions: ['agent:*', 'task:schedule'] });

describe('kernel handler registry', () => {
  it('runs a registered opcode family: execute, apply into ext, replay', () => {
    const kernel = new Kernel();
    kernel.register(pause);
    kernel.register(resume);
    assert.deepEqual(kernel.handlers().slice(-2), ['PauseAgent', 'ResumeAgent']);
    const log: KernelEvent[] = [];
    log.push(...kernel.execute(envelope({ type: 'PauseAgent', agent: 'root' }, withPause)));
    assert.deepEqual(log.map((e) => e.type), ['AgentSpawned', 'AgentPaused']);
    assert.deepEqual(kernel.state.ext, { lifecycle: { paused: { 'root:A': true } } });
    throwsKernel(() => kernel.execute(envelope({ type: 'PauseAgent', agent: 'root' }, withPause)), 'InvalidOperation', { reason: 'already paused' });
    log.push(...kernel.execute(envelope({ type: 'ResumeAgent', agent: 'root' }, withPause)));
    assert.deepEqual(kernel.state.ext, { lifecycle: { paused: { 'root:A': false } } });

    const replayed = new Kernel();
    replayed.register(pause);
    replayed.register(resume);
    for (const e of JSON.parse(JSON.stringify(log)) as KernelEvent[]) replayed.apply(e);
    assert.equal(digest(replayed.state), digest(kernel.state));
  });

  it('checks the handler permission', () => {
    const kernel = new Kernel();
    kernel.register(pause);
    throwsKernel(() => kernel.execute(envelope({ type: 'PauseAgent', agent: 'root' }, claims({ permissions: ['task:*'] }))), 'CapabilityDenied', { required: 'agent:pause' });
  });

  it('rejects duplicate opcodes, core ones included, and duplicate event types', () => {
    const kernel = new Kernel();
    kernel.register(pause);
    throwsKernel(() => kernel.register(pause), 'InvalidOperation');
    throwsKernel(() => kernel.register({ ...pause, opcode: 'SpawnSubAgent', eventTypes: ['X'] }), 'InvalidOperation');
    throwsKernel(() => kernel.register({ ...pause, opcode: 'Other', eventTypes: ['AgentPaused'] }), 'InvalidOperation');
    throwsKernel(() => kernel.register({ ...pause, opcode: 'Other2', eventTypes: ['TaskScheduled'] }), 'InvalidOperation');
    throwsKernel(() => kernel.register({ ...pause, opcode: 'Other3', eventTypes: ['Y'], permission: 'agent:*' }), 'InvalidOperation');
  });

  it('unregisters registered handlers but never core ones', () => {
    const kernel = new Kernel();
    kernel.register(pause);
    kernel.register(resume);
    assert.equal(kernel.unregister('SpawnSubAgent'), false);
    assert.equal(kernel.unregister('Nope'), false);
    assert.equal(kernel.unregister('PauseAgent'), true);
    assert.deepEqual(kernel.handlers(), [
      'ScheduleAgentTask', 'CancelTask', 'SpawnSubAgent', 'EmitObservation', 'CreateGrant', 'RevokeGrant', 'RevokeToken', 'DelegateCapability', 'ResumeAgent',
    ]);
    throwsKernel(() => kernel.execute(envelope({ type: 'PauseAgent', agent: 'root' }, withPause)), 'UnsupportedOperation');
    throwsKernel(() => kernel.apply({ type: 'AgentPaused', opId: 'o', at: 1, by: { sub: 's', jti: 'j' }, vault: 'A', agent: 'root:A' }), 'UnsupportedOperation');
    kernel.register(pause);
    assert.deepEqual(kernel.handlers().slice(-2), ['ResumeAgent', 'PauseAgent']);
  });

  it('a registered handler may not write outside its ext namespace', () => {
    const kernel = new Kernel();
    kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'x' } }, withPause));
    const before = digest(kernel.state);
    const rogue = (opcode: string, write: (s: WorldState) => void): OpcodeHandler => ({
      opcode, permission: 'agent:pause', eventTypes: [`${opcode}ed`],
      execute: (_env, view) => [view.event(`${opcode}ed`, {})],
      apply: (_e, s) => write(s),
    });
    const writes: Array<(s: WorldState) => void> = [
      (s) => { s.agents['root:A'].status = 'stopped'; },
      (s) => { s.tasks['root:A'].push(s.tasks['root:A'][0]); },
      (s) => { s.ext.someoneElse = 1; },
      (s) => { s.agents = {}; },
    ];
    writes.forEach((write, i) => {
      kernel.register(rogue(`Rogue${i}`, write));
      assert.throws(() => kernel.execute(envelope({ type: `Rogue${i}` }, withPause)), TypeError);
    });
    assert.equal(digest(kernel.state), before);
  });

  it('a handler whose apply throws leaves the state unchanged (atomicity)', () => {
    const kernel = new Kernel();
    kernel.register(pause);
    kernel.execute(envelope({ type: 'PauseAgent', agent: 'root' }, withPause));
    const before = digest(kernel.state);
    kernel.register({
      opcode: 'Half', permission: 'agent:pause', namespace: 'lifecycle', eventTypes: ['HalfA', 'HalfB'],
      execute: (_env, view) => [view.event('HalfA', {}), view.event('HalfB', {})],
      apply: (e, s) => {
        (s.ext.lifecycle as PauseState).paused['root:A'] = false;
        if (e.type === 'HalfB') throw new Error('boom');
      },
    });
    assert.throws(() => kernel.execute(envelope({ type: 'Half' }, withPause)), /boom/);
    assert.equal(digest(kernel.state), before);
    assert.deepEqual(kernel.state.ext, { lifecycle: { paused: { 'root:A': true } } });
  });

  it('a root created on first use is rolled back when a later event of the operation fails', () => {
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Doomed', permission: 'agent:pause', eventTypes: ['Doomed'],
      execute: (_env, view) => [view.event('Doomed', { agent: view.agent('root').id })],
      apply: () => {
        throw new Error('doomed');
      },
    });
    assert.throws(() => kernel.execute(envelope({ type: 'Doomed' }, withPause)), /doomed/);
    assert.deepEqual(kernel.state.agents, {});
    assert.deepEqual(kernel.state.roots, {});
  });

  it('rejects events a handler emits with foreign types or base fields', () => {
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Forge', permission: 'agent:pause', eventTypes: ['Forged'],
      execute: (env, view) => [{ ...view.event('Forged', {}), vault: (env.op as unknown as { vault: string }).vault }],
      apply: () => undefined,
    });
    kernel.register({
      opcode: 'Steal', permission: 'agent:pause', eventTypes: ['Stolen'],
      execute: (_env, view) => [view.event('TaskScheduled', {})],
      apply: () => undefined,
    });
    assert.throws(() => kernel.execute(envelope({ type: 'Forge', vault: 'B' }, withPause)), TypeError);
    assert.throws(() => kernel.execute(envelope({ type: 'Steal' }, withPause)), TypeError);
    kernel.execute(envelope({ type: 'Forge', vault: 'A' }, withPause));
  });

  it('restores from a snapshot by deep copy', () => {
    const kernel = new Kernel();
    kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'x' } }));
    const snap = kernel.snapshot();
    const restored = new Kernel({ state: snap });
    snap.tasks['root:A'].length = 0;
    assert.equal(restored.state.tasks['root:A'].length, 1);
    assert.equal(digest(restored.state), digest(kernel.state));
    throwsKernel(() => new Kernel({ state: { agents: {} } as unknown as WorldState }), 'InvalidOperation');
  });
});
