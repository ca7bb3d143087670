/**
 * Token verification against the kernel's own revocation functions (the view the host wires in), plus the
 * issue-8 findings that reach auth: prototype names as grant, kid and jti; ill-formed Unicode in claims;
 * one set of delegation rules shared with the kernel.
 */
import assert from 'node:assert/strict';
import type { CapabilityClaims } from '../../../protocol/capability.js';
import type { GrantCreated } from '../../../protocol/kernel.js';
import { AuthError } from '../../../server/auth/errors.js';
import { KeyRing } from '../../../server/auth/keyring.js';
import { TokenService } from '../../../server/auth/tokens.js';
import { KernelError } from '../../../server/kernel/errors.js';
import { grantStatus, Kernel, tokenRevoked } from '../../../server/kernel/kernel.js';
import { Clock, claimsAt, handSign, rejectsWith } from './helpers.js';

const PROTOTYPE_NAMES = ['toString', '__proto__', 'constructor', 'valueOf'];

async function kernelBacked() {
  const clock = new Clock();
  const kernel = new Kernel();
  const ring = await KeyRing.open({ now: clock.now });
  const tokens = new TokenService({
    keyRing: ring,
    now: clock.now,
    revocation: {
      isTokenRevoked: (jti, vault) => tokenRevoked(kernel.state, jti, vault),
      grantState: (id, nowMs) => grantStatus(kernel.state, id, nowMs),
    },
  });
  const admin = (vault: string): CapabilityClaims => ({
    sub: 'local-admin', vault, permissions: ['*'], iat: clock.seconds, exp: clock.seconds + 1800, jti: 'local-admin', grant: 'local-admin',
  });
  let n = 0;
  const exec = (c: CapabilityClaims, op: Record<string, unknown>) => {
    n++;
    return kernel.execute({ id: `op${n}`, at: clock.ms, origin: c.sub, claims: c, ids: [`id${n}`], op: op as never });
  };
  /** A grant in `vault` and a token minted from it. */
  const grantAndToken = async (vault: string, jti?: string) => {
    const [event] = exec(admin(vault), { type: 'CreateGrant', subject: 'alice', permissions: ['state:read'] }) as GrantCreated[];
    return tokens.mint({ sub: 'alice', vault, permissions: ['state:read'], grant: event.grant.id, ttlSeconds: 600, jti });
  };
  return { clock, kernel, ring, tokens, admin, exec, grantAndToken };
}

describe('auth/tokens over the kernel revocation view', () => {
  it('a revocation in vault A does not revoke the same jti in vault B', async () => {
    const { tokens, admin, exec, grantAndToken } = await kernelBacked();
    const b = await grantAndToken('B', 'shared-jti');
    exec(admin('A'), { type: 'RevokeToken', jti: 'shared-jti', exp: b.claims.exp });
    assert.deepEqual(await tokens.verify(b.token), b.claims);
    exec(admin('B'), { type: 'RevokeToken', jti: 'shared-jti', exp: b.claims.exp });
    await rejectsWith(tokens.verify(b.token), 'ERR_TOKEN_REVOKED');
  });

  it('a token whose grant claim is a prototype name is refused as an unknown grant', async () => {
    const { ring, clock, tokens, grantAndToken } = await kernelBacked();
    await grantAndToken('A');
    for (const grant of PROTOTYPE_NAMES) {
      const token = await handSign(ring, claimsAt(clock, { grant, jti: `j-${grant}` }));
      await rejectsWith(tokens.verify(token), 'ERR_GRANT_UNKNOWN');
    }
  });

  it('a prototype name as jti is not revoked, and can be revoked like any other', async () => {
    const { tokens, admin, exec, grantAndToken } = await kernelBacked();
    for (const jti of PROTOTYPE_NAMES.filter((j) => j !== '__proto__')) {
      const t = await grantAndToken('A', jti);
      assert.equal((await tokens.verify(t.token)).jti, jti);
      exec(admin('A'), { type: 'RevokeToken', jti, exp: t.claims.exp });
      await rejectsWith(tokens.verify(t.token), 'ERR_TOKEN_REVOKED');
    }
  });

  it('a prototype name as kid is an unknown kid', async () => {
    const { ring, clock, tokens } = await kernelBacked();
    for (const kid of PROTOTYPE_NAMES) {
      const token = await handSign(ring, claimsAt(clock), { kid });
      await rejectsWith(tokens.verify(token), 'ERR_UNKNOWN_KID');
    }
  });
});

describe('auth/tokens: ill-formed Unicode in claims', () => {
  it('refuses a lone surrogate in sub, vault, jti, grant or a dlg entry', async () => {
    const { ring, clock, tokens } = await kernelBacked();
    const lone = 'x\ud800';
    for (const over of [{ sub: lone }, { vault: lone }, { jti: lone }, { grant: lone }, { dlg: [lone] }]) {
      const token = await handSign(ring, claimsAt(clock, over));
      await rejectsWith(tokens.verify(token), 'ERR_CLAIMS_INVALID');
    }
    await assert.rejects(tokens.mint({ sub: lone, vault: 'v', permissions: ['state:read'], grant: 'g', ttlSeconds: 60 }), (e: unknown) => e instanceof AuthError && e.code === 'ERR_CLAIMS_INVALID');
  });
});

describe('delegation: one set of rules for the kernel and auth', () => {
  it('refuses the same delegations with the same code', async () => {
    const { tokens, clock, exec, grantAndToken } = await kernelBacked();
    const parent = (await grantAndToken('A')).claims;
    const withDelegate = { ...parent, permissions: ['state:read', 'capability:delegate'] };
    const cases: Array<{ permissions: string[]; exp: number; dlg?: string[] }> = [
      { permissions: ['task:schedule'], exp: parent.exp },
      { permissions: ['state:*'], exp: parent.exp },
      { permissions: ['state:read'], exp: parent.exp + 1 },
      { permissions: ['state:read'], exp: clock.seconds },
      { permissions: ['state:read'], exp: parent.exp, dlg: ['a', 'b', 'c', 'd', 'e'] },
      { permissions: ['state:read'], exp: parent.exp },
    ];
    for (const c of cases) {
      const from = { ...withDelegate, ...(c.dlg ? { dlg: c.dlg } : {}) };
      let authCode: string | null = null;
      try {
        await tokens.delegate(from, { sub: 'bob', permissions: c.permissions, exp: c.exp });
      } catch (err) {
        assert.ok(err instanceof AuthError, String(err));
        authCode = err.code;
      }
      let kernelCode: string | null = null;
      try {
        exec(from, { type: 'DelegateCapability', subject: 'bob', permissions: c.permissions, exp: c.exp });
      } catch (err) {
        assert.ok(err instanceof KernelError, String(err));
        kernelCode = err.data.reason as string;
      }
      assert.equal(kernelCode, authCode, JSON.stringify(c));
    }
  });
});
