import assert from 'node:assert/strict';
import { MAX_DELEGATION_DEPTH } from '../../../protocol/capability.js';
import type { CapabilityDelegated } from '../../../protocol/kernel.js';
import { Kernel } from '../../../server/kernel/kernel.js';
import { T0, claims, digest, envelope, throwsKernel } from './helpers.js';

const vaultA = claims({ sub: 'alice', vault: 'A', jti: 'ja' });
const vaultB = claims({ sub: 'bob', vault: 'B', jti: 'jb' });

function twoVaults(): { kernel: Kernel; agentA: string; grantA: string } {
  const kernel = new Kernel();
  const spawn = envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'a-worker' } }, vaultA);
  kernel.execute(spawn);
  const grant = envelope({ type: 'CreateGrant', subject: 'carol', permissions: ['state:read'] }, vaultA);
  kernel.execute(grant);
  kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'b-worker' } }, vaultB));
  return { kernel, agentA: spawn.ids[0], grantA: grant.ids[0] };
}

describe('kernel authorisation', () => {
  it('denies an operation whose origin is not the token subject', () => {
    const kernel = new Kernel();
    const env = envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'x' } }, vaultA, { origin: 'mallory' });
    throwsKernel(() => kernel.execute(env), 'CapabilityDenied', { reason: 'origin does not match the token subject' });
    assert.deepEqual(kernel.state.agents, {});
  });

  it('requires the permission of each core opcode', () => {
    const kernel = new Kernel();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'x' } }, 'task:schedule'],
      [{ type: 'CancelTask', agent: 'root', task: 't' }, 'task:cancel'],
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'x' } }, 'agent:spawn'],
      [{ type: 'EmitObservation', agent: 'root', data: 1 }, 'observation:emit'],
      [{ type: 'CreateGrant', subject: 'bob', permissions: ['state:read'] }, 'capability:grant'],
      [{ type: 'RevokeGrant', grant: 'g' }, 'capability:revoke'],
      [{ type: 'RevokeToken', jti: 'other', exp: 1 }, 'capability:revoke'],
      [{ type: 'DelegateCapability', subject: 'bob', permissions: ['state:read'], exp: T0 / 1000 + 60 }, 'capability:delegate'],
    ];
    const all = cases.map(([, p]) => p);
    for (const [op, required] of cases) {
      const without = claims({ permissions: [...all.filter((p) => p !== required), 'state:read'] });
      throwsKernel(() => kernel.execute(envelope(op, without)), 'CapabilityDenied', { required });
      const area = claims({ permissions: [`${required.split(':')[0]}:*`, 'state:read'] });
      // RevokeGrant and CancelTask name entities that do not exist here: holding the area passes authorisation.
      if (op.type === 'RevokeGrant' || op.type === 'CancelTask') throwsKernel(() => kernel.execute(envelope(op, area)), 'UnknownEntity');
      else kernel.execute(envelope(op, area));
    }
  });

  it('a vault-B token cannot touch vault A agents or grants', () => {
    const { kernel, agentA, grantA } = twoVaults();
    const before = digest(kernel.state);
    const denied = { reason: 'target outside the token vault' };
    throwsKernel(() => kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: agentA, task: { description: 'x' } }, vaultB)), 'CapabilityDenied', denied);
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root:A', spec: { name: 'x' } }, vaultB)), 'CapabilityDenied', denied);
    throwsKernel(() => kernel.execute(envelope({ type: 'EmitObservation', agent: agentA, data: 1 }, vaultB)), 'CapabilityDenied', denied);
    throwsKernel(() => kernel.execute(envelope({ type: 'CancelTask', agent: agentA, task: 'any' }, vaultB)), 'CapabilityDenied', denied);
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeGrant', grant: grantA }, vaultB)), 'CapabilityDenied', denied);
    assert.equal(digest(kernel.state), before);
  });

  it('root resolves to the token vault root', () => {
    const { kernel } = twoVaults();
    const env = envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'b2' } }, vaultB);
    const events = kernel.execute(env);
    assert.equal(events.length, 1);
    assert.equal(kernel.state.agents[env.ids[0]].parent, 'root:B');
    assert.equal(kernel.state.agents[env.ids[0]].vault, 'B');
    assert.deepEqual(kernel.state.roots, { A: 'root:A', B: 'root:B' });
  });

  describe('delegation', () => {
    const parent = claims({ permissions: ['capability:delegate', 'task:schedule', 'state:read'], jti: 'p1', dlg: ['p0'] });
    const exp = parent.exp - 60;

    it('records a narrower child one level deeper', () => {
      const kernel = new Kernel();
      const env = envelope({ type: 'DelegateCapability', subject: 'helper', permissions: ['task:schedule'], exp }, parent);
      const [event] = kernel.execute(env) as CapabilityDelegated[];
      assert.deepEqual(event, {
        type: 'CapabilityDelegated', opId: env.id, at: env.at, by: { sub: 'alice', jti: 'p1' }, vault: 'A',
        jti: env.ids[0], parentJti: 'p1', subject: 'helper', permissions: ['task:schedule'], exp, depth: 2,
      });
    });

    it('rejects widening', () => {
      const kernel = new Kernel();
      for (const permissions of [['agent:spawn'], ['task:*'], ['*']]) {
        throwsKernel(() => kernel.execute(envelope({ type: 'DelegateCapability', subject: 'h', permissions, exp }, parent)), 'CapabilityDenied', { reason: 'ERR_DELEGATION_WIDENS' });
      }
    });

    it('rejects exp beyond the parent token', () => {
      const kernel = new Kernel();
      throwsKernel(() => kernel.execute(envelope({ type: 'DelegateCapability', subject: 'h', permissions: ['state:read'], exp: parent.exp + 1 }, parent)), 'CapabilityDenied', { reason: 'ERR_DELEGATION_EXPIRY' });
      kernel.execute(envelope({ type: 'DelegateCapability', subject: 'h', permissions: ['state:read'], exp: parent.exp }, parent));
    });

    it('allows depth 5 and rejects depth 6', () => {
      const kernel = new Kernel();
      const at = (n: number) => claims({ ...parent, dlg: Array.from({ length: n }, (_, i) => `a${i}`) });
      const op = { type: 'DelegateCapability', subject: 'h', permissions: ['state:read'], exp };
      const [event] = kernel.execute(envelope(op, at(MAX_DELEGATION_DEPTH - 1))) as CapabilityDelegated[];
      assert.equal(event.depth, MAX_DELEGATION_DEPTH);
      throwsKernel(() => kernel.execute(envelope(op, at(MAX_DELEGATION_DEPTH))), 'LimitExceeded', { limit: 'delegationDepth', max: 5, actual: 6, reason: 'ERR_DELEGATION_DEPTH' });
    });
  });
});
