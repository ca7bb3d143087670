/**
 * Security findings of issue 8 at the kernel: grants created with a token are children of that token's
 * grant (never wider, never longer-lived, dead with it); token revocation is scoped to the revoker's vault;
 * ill-formed Unicode is refused in every string of an operation; untrusted ids never resolve through the
 * prototype chain; delegation refusals use auth's vocabulary.
 */
import assert from 'node:assert/strict';
import { MAX_DELEGATION_DEPTH } from '../../../protocol/capability.js';
import { KERNEL_LIMITS, type GrantCreated, type KernelEvent, type TokenRevoked, type WorldState } from '../../../protocol/kernel.js';
import { grantStatus, Kernel, tokenRevoked } from '../../../server/kernel/kernel.js';
import { T0, claims, digest, envelope, throwsKernel } from './helpers.js';

/** The local admin's session: its token names no grant of the state, so its grants are roots. */
const admin = claims({ sub: 'local-admin', vault: 'A', jti: 'local-admin', grant: 'local-admin' });

function createGrant(kernel: Kernel, c: typeof admin, op: Record<string, unknown>): string {
  const env = envelope({ type: 'CreateGrant', ...op }, c);
  const events = kernel.execute(env);
  return (events[events.length - 1] as GrantCreated).grant.id;
}

/** Claims of a token minted from `grant` (as auth mints them: the grant's permissions, vault and subject). */
function tokenOf(kernel: Kernel, grant: string, jti = `jti-${grant}`) {
  const g = kernel.state.grants[grant];
  return claims({ sub: g.subject, vault: g.vault, permissions: [...g.permissions], jti, grant });
}

function replayed(events: KernelEvent[]): Kernel {
  const k = new Kernel();
  for (const e of events) k.apply(e);
  return k;
}

describe('kernel: grant lineage (no revocation escape through capability:grant)', () => {
  it('a grant created with a token records the token grant as its parent; the local admin creates roots', () => {
    const kernel = new Kernel();
    const root = createGrant(kernel, admin, { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    assert.equal(kernel.state.grants[root].parent, undefined);
    const child = createGrant(kernel, tokenOf(kernel, root), { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    assert.equal(kernel.state.grants[child].parent, root);
  });

  it('revoking a grant kills every descendant grant (the self-minted escape)', () => {
    const kernel = new Kernel();
    const root = createGrant(kernel, admin, { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    const child = createGrant(kernel, tokenOf(kernel, root), { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    const grandchild = createGrant(kernel, tokenOf(kernel, child), { subject: 'mallory', permissions: ['state:read'] });
    const now = T0 + 1_000_000;
    assert.equal(grantStatus(kernel.state, grandchild, now), 'live');
    kernel.execute(envelope({ type: 'RevokeGrant', grant: root }, admin));
    assert.equal(grantStatus(kernel.state, root, now), 'revoked');
    assert.equal(grantStatus(kernel.state, child, now), 'revoked');
    assert.equal(grantStatus(kernel.state, grandchild, now), 'revoked');
    // A revoked lineage cannot create more grants either.
    throwsKernel(() => createGrant(kernel, tokenOf(kernel, child), { subject: 'x', permissions: ['state:read'] }), 'CapabilityDenied', {
      reason: "the caller's grant is revoked",
    });
  });

  it('a child grant never outlives its parent: it inherits the expiry, a later one is refused', () => {
    const kernel = new Kernel();
    const expiresAt = T0 + 3_600_000;
    const root = createGrant(kernel, admin, { subject: 'mallory', permissions: ['capability:grant', 'state:read'], expiresAt });
    const inherited = createGrant(kernel, tokenOf(kernel, root), { subject: 'm', permissions: ['state:read'] });
    assert.equal(kernel.state.grants[inherited].expiresAt, expiresAt);
    const before = digest(kernel.state);
    throwsKernel(
      () => createGrant(kernel, tokenOf(kernel, root), { subject: 'm', permissions: ['state:read'], expiresAt: expiresAt + 1 }),
      'InvalidOperation',
      { reason: "expiresAt is after the caller's grant expires" },
    );
    assert.equal(digest(kernel.state), before);
    assert.equal(grantStatus(kernel.state, inherited, expiresAt - 1), 'live');
    assert.equal(grantStatus(kernel.state, inherited, expiresAt), 'expired');
  });

  it('a grant whose parent expires is expired, whatever its own record says', () => {
    const kernel = new Kernel();
    const root = createGrant(kernel, admin, { subject: 'mallory', permissions: ['capability:grant', 'state:read'], expiresAt: T0 + 60_000 });
    const child = createGrant(kernel, tokenOf(kernel, root), { subject: 'm', permissions: ['state:read'] });
    // Even a record without an expiry (as a hand-built state might hold) dies with its parent.
    const state = kernel.snapshot();
    delete state.grants[child].expiresAt;
    assert.equal(grantStatus(state, child, T0 + 60_000), 'expired');
  });

  it('a child grant is never wider than its parent grant, even if the token claims more', () => {
    const kernel = new Kernel();
    const root = createGrant(kernel, admin, { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    const wide = claims({ sub: 'mallory', vault: 'A', permissions: ['*'], jti: 'j', grant: root });
    throwsKernel(() => createGrant(kernel, wide, { subject: 'm', permissions: ['task:schedule'] }), 'CapabilityDenied', {
      reason: "grant widens the caller's grant",
    });
  });

  it(`lineages are at most ${KERNEL_LIMITS.grantDepth} grants deep`, () => {
    const kernel = new Kernel();
    let grant = createGrant(kernel, admin, { subject: 'm', permissions: ['capability:grant'] });
    for (let depth = 2; depth <= KERNEL_LIMITS.grantDepth; depth++) {
      grant = createGrant(kernel, tokenOf(kernel, grant), { subject: 'm', permissions: ['capability:grant'] });
    }
    throwsKernel(() => createGrant(kernel, tokenOf(kernel, grant), { subject: 'm', permissions: ['capability:grant'] }), 'LimitExceeded', {
      limit: 'grantDepth',
    });
  });

  it('replays lineage and revocation to the same state; a logged grant without parent replays as a root', () => {
    const kernel = new Kernel();
    const events: KernelEvent[] = [];
    const run = (env: ReturnType<typeof envelope>) => events.push(...kernel.execute(env));
    run(envelope({ type: 'CreateGrant', subject: 'm', permissions: ['capability:grant'] }, admin));
    const root = (events[0] as GrantCreated).grant.id;
    run(envelope({ type: 'CreateGrant', subject: 'm', permissions: ['capability:grant'] }, tokenOf(kernel, root)));
    run(envelope({ type: 'RevokeGrant', grant: root }, admin));
    assert.equal(digest(replayed(events).state), digest(kernel.state));

    const legacy = structuredClone(events[1]) as GrantCreated;
    delete legacy.grant.parent;
    const k = replayed([events[0], legacy, events[2]]);
    assert.equal(grantStatus(k.state, legacy.grant.id, T0), 'live');
  });
});

describe('kernel: token revocation is scoped to the revoker vault', () => {
  const revokerA = claims({ sub: 'alice', vault: 'A', jti: 'ja', permissions: ['capability:revoke'] });

  it('a vault-A revocation of a jti does not revoke that jti in vault B', () => {
    const kernel = new Kernel();
    const [event] = kernel.execute(envelope({ type: 'RevokeToken', jti: 'victim', exp: T0 / 1000 + 600 }, revokerA)) as TokenRevoked[];
    assert.equal(event.revokedIn, 'A');
    assert.equal(tokenRevoked(kernel.state, 'victim', 'A'), true);
    assert.equal(tokenRevoked(kernel.state, 'victim', 'B'), false);
    // Vault B can still revoke its own token of that id.
    const revokerB = claims({ sub: 'bob', vault: 'B', jti: 'jb', permissions: ['capability:revoke'] });
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'victim', exp: T0 / 1000 + 600 }, revokerB));
    assert.equal(tokenRevoked(kernel.state, 'victim', 'B'), true);
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeToken', jti: 'victim', exp: 1 }, revokerB)), 'InvalidOperation', {
      reason: 'already revoked',
    });
  });

  it('a revocation logged before scoping (no revokedIn) still counts in every vault, and replays to the same digest', () => {
    const legacy: TokenRevoked = { type: 'TokenRevoked', opId: 'o', at: T0, by: { sub: 'alice', jti: 'ja' }, vault: 'A', jti: 'old', exp: 1 };
    const kernel = replayed([legacy]);
    assert.equal(tokenRevoked(kernel.state, 'old', 'B'), true);
    const before: WorldState = { agents: {}, tasks: {}, observations: {}, roots: {}, grants: {}, revokedTokens: { old: 1 }, ext: {} };
    assert.equal(digest(kernel.state), digest(before));
  });

  it('restores a snapshot holding vault-scoped revocations', () => {
    const kernel = new Kernel();
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'victim', exp: 1 }, revokerA));
    const restored = new Kernel({ state: kernel.snapshot() });
    assert.equal(digest(restored.state), digest(kernel.state));
    assert.equal(tokenRevoked(restored.state, 'victim', 'A'), true);
    throwsKernel(() => new Kernel({ state: { ...kernel.snapshot(), revokedTokensByVault: { A: 1 } } as unknown as WorldState }), 'InvalidOperation');
  });
});

describe('kernel: ill-formed Unicode is refused in every string of an operation', () => {
  const lone = 'x\ud800';
  it('refuses a lone surrogate in ids, text, claims and observation data, and changes nothing', () => {
    const kernel = new Kernel();
    const before = digest(kernel.state);
    const cases: Array<[Record<string, unknown>, ReturnType<typeof claims>?]> = [
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok' } }, claims({ vault: lone })],
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok' } }, claims({ sub: lone })],
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok' } }, claims({ jti: lone })],
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok' } }, claims({ grant: lone })],
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok' } }, claims({ permissions: ['*', lone] })],
      [{ type: 'SpawnSubAgent', parent: 'root', spec: { name: lone } }],
      [{ type: 'SpawnSubAgent', parent: lone, spec: { name: 'ok' } }],
      [{ type: 'ScheduleAgentTask', agent: 'root', task: { description: lone } }],
      [{ type: 'EmitObservation', agent: 'root', data: { note: lone } }],
      [{ type: 'EmitObservation', agent: 'root', data: { [lone]: 1 } }],
      [{ type: 'EmitObservation', agent: 'root', data: ['\udc00'] }],
      [{ type: 'CreateGrant', subject: lone, permissions: ['state:read'] }],
      [{ type: 'CreateGrant', subject: 'bob', permissions: ['state:read'], label: lone }],
      [{ type: 'RevokeToken', jti: lone, exp: 1 }],
      [{ type: 'RevokeGrant', grant: 'g', reason: lone }],
      [{ type: 'DelegateCapability', subject: lone, permissions: ['state:read'], exp: T0 / 1000 + 60 }],
    ];
    for (const [op, c] of cases) {
      const env = c === undefined ? envelope(op) : { ...envelope(op, c), origin: c.sub };
      throwsKernel(() => kernel.execute(env), 'InvalidOperation');
    }
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok' } }, claims(), { origin: lone })), 'InvalidOperation');
    assert.equal(digest(kernel.state), before);
    // A well-formed astral character (a surrogate pair) is fine.
    kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'ok \ud83d\ude00' } }));
  });
});

describe('kernel: untrusted ids never resolve through the prototype chain', () => {
  const names = ['toString', '__proto__', 'constructor', 'hasOwnProperty'];

  it('grantStatus and tokenRevoked read own entries only', () => {
    const kernel = new Kernel();
    for (const id of names) {
      assert.equal(grantStatus(kernel.state, id, T0), 'unknown', id);
      assert.equal(tokenRevoked(kernel.state, id, 'A'), false, id);
      assert.equal(tokenRevoked(kernel.state, 'j', id), false, id);
    }
  });

  it('operations naming them as agent, grant or task find nothing', () => {
    const kernel = new Kernel();
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'j', exp: 1 }));
    for (const id of names.filter((n) => n !== '__proto__')) {
      throwsKernel(() => kernel.execute(envelope({ type: 'RevokeGrant', grant: id })), 'UnknownEntity', { entity: 'grant' });
      throwsKernel(() => kernel.execute(envelope({ type: 'ScheduleAgentTask', agent: id, task: { description: 'x' } })), 'UnknownEntity', { entity: 'agent' });
      throwsKernel(() => kernel.execute(envelope({ type: 'CancelTask', agent: 'root', task: id })), 'UnknownEntity', { entity: 'task' });
      // A token whose grant claim (or vault) is such a name names no grant: what it creates has no parent.
      const c = claims({ grant: id, vault: id });
      assert.equal(tokenRevoked(kernel.state, 'j', id), false);
      const env = envelope({ type: 'CreateGrant', subject: 's', permissions: ['state:read'] }, c);
      const [event] = kernel.execute(env) as GrantCreated[];
      assert.equal(event.grant.parent, undefined);
    }
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeGrant', grant: '__proto__' })), 'InvalidOperation');
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'x' } }, claims({ vault: '__proto__' }))), 'InvalidOperation');
  });
});

describe('kernel: delegation refusals use the one vocabulary (protocol DELEGATION_RULES)', () => {
  const parent = claims({ sub: 'alice', permissions: ['state:read', 'capability:delegate'], exp: T0 / 1000 + 600 });
  it('widening, expiry and depth carry the auth error codes as data.reason', () => {
    const kernel = new Kernel();
    const exp = T0 / 1000 + 60;
    throwsKernel(() => kernel.execute(envelope({ type: 'DelegateCapability', subject: 'b', permissions: ['task:schedule'], exp }, parent)), 'CapabilityDenied', {
      reason: 'ERR_DELEGATION_WIDENS',
    });
    throwsKernel(() => kernel.execute(envelope({ type: 'DelegateCapability', subject: 'b', permissions: ['state:read'], exp: parent.exp + 1 }, parent)), 'CapabilityDenied', {
      reason: 'ERR_DELEGATION_EXPIRY',
    });
    throwsKernel(() => kernel.execute(envelope({ type: 'DelegateCapability', subject: 'b', permissions: ['state:read'], exp: T0 / 1000 - 1 }, parent)), 'CapabilityDenied', {
      reason: 'ERR_DELEGATION_EXPIRY',
    });
    const deep = { ...parent, dlg: Array.from({ length: MAX_DELEGATION_DEPTH }, (_, i) => `a${i}`) };
    throwsKernel(() => kernel.execute(envelope({ type: 'DelegateCapability', subject: 'b', permissions: ['state:read'], exp }, deep)), 'LimitExceeded', {
      reason: 'ERR_DELEGATION_DEPTH',
      limit: 'delegationDepth',
    });
  });
});
