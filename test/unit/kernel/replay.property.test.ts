import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { CapabilityClaims } from '../../../protocol/capability.js';
import type { KernelEvent, WorldState } from '../../../protocol/kernel.js';
import { KernelError } from '../../../server/kernel/errors.js';
import { Kernel } from '../../../server/kernel/kernel.js';
import { T0, claims, digest } from './helpers.js';

const tokens: CapabilityClaims[] = [
  claims({ sub: 'alice', vault: 'A', jti: 'ja', permissions: ['*'] }),
  claims({ sub: 'bob', vault: 'B', jti: 'jb', permissions: ['*'] }),
  claims({ sub: 'carol', vault: 'A', jti: 'jc', permissions: ['task:schedule', 'observation:emit', 'capability:delegate'], dlg: ['ja'] }),
  claims({ sub: 'dan', vault: 'B', jti: 'jd', permissions: ['capability:delegate', 'state:read'], dlg: ['j4', 'j3', 'j2', 'j1', 'jb'] }),
];

/**
 * Entity references: aliases, both roots, a stranger, and `$agent<n>` / `$grant<n>`, which name the n-th
 * existing agent / grant (of either vault) when the step runs.
 */
const agentRef = fc.oneof(fc.constantFrom('root', 'root:A', 'root:B', 'ghost'), fc.nat({ max: 20 }).map((i) => `$agent${i}`));
/** `$task<n>`: the n-th task scheduled so far (queued or already cancelled), or a stranger. */
const taskRef = fc.oneof({ arbitrary: fc.nat({ max: 20 }).map((i) => `$task${i}`), weight: 4 }, fc.constant('ghost-task'));
const grantRef = fc.oneof(fc.constant('nope'), fc.nat({ max: 20 }).map((i) => `$grant${i}`));
const perms = fc.oneof(
  { arbitrary: fc.subarray(['task:schedule', 'agent:spawn', 'state:read', 'capability:grant', 'task:*'], { minLength: 1, maxLength: 3 }), weight: 4 },
  fc.subarray(['state:read', 'bogus:x'], { minLength: 0, maxLength: 2 }),
);

const op = fc.oneof(
  fc.record({ type: fc.constant('SpawnSubAgent'), parent: agentRef, spec: fc.record({ name: fc.oneof(fc.string({ maxLength: 8 }), fc.constant(' ')) }) }),
  fc.record({
    type: fc.constant('ScheduleAgentTask'),
    agent: agentRef,
    task: fc.record({ description: fc.string({ maxLength: 12 }), priority: fc.constantFrom('high', 'low', 'medium', 'bad') }, { requiredKeys: ['description'] }),
  }),
  fc.record({ type: fc.constant('EmitObservation'), agent: agentRef, data: fc.jsonValue({ maxDepth: 3 }) }),
  // `$owner` names the agent the task was scheduled on.
  fc.record(
    { type: fc.constant('CancelTask'), agent: fc.oneof({ arbitrary: fc.constant('$owner'), weight: 4 }, agentRef), task: taskRef, reason: fc.string({ maxLength: 6 }) },
    { requiredKeys: ['type', 'agent', 'task'] },
  ),
  fc.record({ type: fc.constant('CreateGrant'), subject: fc.constantFrom('dave', ''), permissions: perms, label: fc.string({ maxLength: 4 }) }, { requiredKeys: ['type', 'subject', 'permissions'] }),
  fc.record({ type: fc.constant('RevokeGrant'), grant: grantRef }),
  fc.record({ type: fc.constant('RevokeToken'), jti: fc.constantFrom('ja', 'jb', 'jc', 'x1'), exp: fc.nat({ max: 5 }) }),
  fc.record({ type: fc.constant('DelegateCapability'), subject: fc.constant('eve'), permissions: perms, exp: fc.constantFrom(T0 / 1000 + 60, T0 / 1000 + 99_999) }),
  fc.record({ type: fc.constantFrom('Nope', 7) }),
  fc.constant(null),
);

const step = fc.record({ token: fc.nat({ max: tokens.length - 1 }), op, spoof: fc.boolean() });

/**
 * Replace `$agent<n>` / `$grant<n>` references by ids existing in `state`, `$task<n>` by the n-th of the
 * `scheduled` tasks and `$owner` by the agent that task was scheduled on.
 */
function resolve(op: unknown, state: Readonly<WorldState>, scheduled: readonly { agent: string; task: string }[]): unknown {
  if (op === null || typeof op !== 'object') return op;
  const out: Record<string, unknown> = { ...(op as Record<string, unknown>) };
  let owner = 'none';
  for (const [key, v] of Object.entries(out)) {
    const t = typeof v === 'string' ? /^\$task(\d+)$/.exec(v) : null;
    if (!t) continue;
    const picked = scheduled.length === 0 ? undefined : scheduled[Number(t[1]) % scheduled.length];
    out[key] = picked?.task ?? 'none';
    owner = picked?.agent ?? 'none';
  }
  for (const [key, v] of Object.entries(out)) {
    if (v === '$owner') {
      out[key] = owner;
      continue;
    }
    const m = typeof v === 'string' ? /^\$(agent|grant)(\d+)$/.exec(v) : null;
    if (!m) continue;
    const ids = Object.keys(m[1] === 'agent' ? state.agents : state.grants);
    out[key] = ids.length === 0 ? 'none' : ids[Number(m[2]) % ids.length];
  }
  return out;
}

function replay(events: KernelEvent[], from?: WorldState): Kernel {
  const kernel = new Kernel(from === undefined ? {} : { state: from });
  for (const e of events) kernel.apply(e);
  return kernel;
}

describe('kernel replay (property)', () => {
  it('replaying the emitted events, from zero or from a mid-way snapshot, reproduces the state digest', () => {
    const seen = { accepted: new Set<string>(), rejected: new Set<string>() };
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60, size: 'medium' }), fc.nat(), (steps, cut) => {
        const live = new Kernel();
        const log: KernelEvent[] = [];
        const scheduled: { agent: string; task: string }[] = [];
        const cutAt = steps.length === 0 ? 0 : cut % (steps.length + 1);
        let snapshot: { state: WorldState; logLength: number } | undefined;
        steps.forEach((s, i) => {
          if (i === cutAt) snapshot = { state: JSON.parse(JSON.stringify(live.snapshot())), logLength: log.length };
          const c = tokens[s.token];
          const before = digest(live.state);
          try {
            const events = live.execute({
              id: `op-${i}`,
              at: T0 + i,
              origin: s.spoof && i % 7 === 0 ? 'mallory' : c.sub,
              claims: c,
              ids: [`n${i}-0`, `n${i}-1`],
              op: resolve(s.op, live.state, scheduled) as never,
            });
            log.push(...(JSON.parse(JSON.stringify(events)) as KernelEvent[]));
            for (const e of events) {
              seen.accepted.add(`${e.type}@${e.vault}`);
              if (e.type === 'TaskScheduled') scheduled.push({ agent: e.agent!, task: (e as { task: { id: string } }).task.id });
            }
          } catch (e) {
            if (!(e instanceof KernelError)) throw e;
            seen.rejected.add(e.code);
            assert.equal(digest(live.state), before, 'a rejected operation changed the state');
          }
        });
        snapshot ??= { state: JSON.parse(JSON.stringify(live.snapshot())), logLength: log.length };
        const expected = digest(live.state);
        assert.equal(digest(replay(log).state), expected);
        assert.equal(digest(replay(log.slice(snapshot.logLength), snapshot.state).state), expected);
        for (const agent of Object.values(live.state.agents)) {
          assert.ok(agent.vault === 'A' || agent.vault === 'B');
          if (agent.parent !== null) assert.equal(live.state.agents[agent.parent].vault, agent.vault, 'parent in another vault');
        }
      }),
      { numRuns: 300 },
    );
    // The generator must exercise both vaults, every core event and every error code.
    for (const t of ['AgentSpawned', 'TaskScheduled', 'TaskCancelled', 'ObservationEmitted', 'GrantCreated', 'GrantRevoked', 'TokenRevoked', 'CapabilityDelegated']) {
      assert.ok(seen.accepted.has(`${t}@A`) || seen.accepted.has(`${t}@B`), `never produced ${t}`);
    }
    assert.ok(seen.accepted.has('AgentSpawned@A') && seen.accepted.has('AgentSpawned@B'));
    assert.deepEqual([...seen.rejected].sort(), ['CapabilityDenied', 'InvalidOperation', 'LimitExceeded', 'UnknownEntity', 'UnsupportedOperation'].sort());
  });
});
