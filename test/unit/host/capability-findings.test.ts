/**
 * Security findings of issue 8, reproduced through the host's public API: cross-vault revocation by jti,
 * the revocation escape through `capability:grant`, and ill-formed Unicode that used to be stored and then
 * made `verify` cry tampering.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Host } from '../../../server/host/host.js';
import { createLogger } from '../../../server/host/logger.js';
import { rejectsWith } from '../../helpers/host-errors.js';

const quiet = createLogger({ level: 'silent' });

describe('host: capability findings', () => {
  let host: Host;
  let nowMs: number;
  beforeEach(async () => {
    nowMs = Date.UTC(2030, 0, 1);
    host = await Host.open({ dataDir: null, logger: quiet, rateLimit: false, now: () => nowMs });
  });
  afterEach(() => host.close());

  it('a vault-A token revoking a vault-B jti does not kill the vault-B token', async () => {
    const a = await host.mint(host.localSession('A'), { subject: 'alice', permissions: ['capability:revoke', 'state:read'] });
    const b = await host.mint(host.localSession('B'), { subject: 'bob', permissions: ['state:read'] });
    const alice = await host.authenticate(a.token);
    await host.revoke(alice, { jti: b.claims.jti });
    const bob = await host.authenticate(b.token);
    assert.deepEqual((await host.getState(bob)).agents, []);
    // Vault B's own revocation still works.
    await host.revoke(host.localSession('B'), { jti: b.claims.jti });
    await rejectsWith(host.getState(bob), 'Unauthenticated', 'ERR_TOKEN_REVOKED');
    await rejectsWith(host.authenticate(b.token), 'Unauthenticated', 'ERR_TOKEN_REVOKED');
  });

  it('revoking a grant kills the grants its holder minted for itself, and their tokens', async () => {
    const admin = host.localSession('A');
    const first = await host.mint(admin, { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    const mallory = await host.authenticate(first.token);
    const selfMinted = await host.mint(mallory, { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    const escaped = await host.authenticate(selfMinted.token);
    await host.getState(escaped);

    await host.revoke(admin, { grant: first.grant });
    await rejectsWith(host.getState(escaped), 'Unauthenticated', 'ERR_GRANT_REVOKED');
    await rejectsWith(host.authenticate(selfMinted.token), 'Unauthenticated', 'ERR_GRANT_REVOKED');
  });

  it('a self-minted grant expires with the grant of the token that created it', async () => {
    const admin = host.localSession('A');
    const first = await host.mint(admin, {
      subject: 'mallory',
      permissions: ['capability:grant', 'state:read'],
      grantExpiresAt: nowMs + 60_000,
    });
    const mallory = await host.authenticate(first.token);
    await rejectsWith(
      host.mint(mallory, { subject: 'mallory', permissions: ['state:read'], grantExpiresAt: nowMs + 120_000 }),
      'InvalidOperation',
    );
    const selfMinted = await host.mint(mallory, { subject: 'mallory', permissions: ['capability:grant', 'state:read'] });
    const escaped = await host.authenticate(selfMinted.token);
    nowMs += 61_000;
    await rejectsWith(host.getState(escaped), 'Unauthenticated', 'ERR_GRANT_EXPIRED');
    // Renewal from the dead lineage is refused too.
    await rejectsWith(host.mint(escaped, { subject: 'mallory', permissions: ['state:read'] }), 'Unauthenticated', 'ERR_GRANT_EXPIRED');
  });
});

describe('host: untrusted names never resolve through the prototype chain', () => {
  it('a validly signed token whose grant claim is a prototype name is refused as an unknown grant', async () => {
    // The HS256 key from the environment, with its documented kid, lets the test sign any claims it likes.
    const secret = randomBytes(32);
    const kid = `env-${createHash('sha256').update('toka.kid\0').update(secret).digest('base64url').slice(0, 16)}`;
    const nowS = Math.floor(Date.now() / 1000);
    const host = await Host.open({ dataDir: null, logger: quiet, env: { TOKA_HS256_SECRET: secret.toString('base64url') } });
    try {
      await host.mint(host.localSession('A'), { subject: 'alice', permissions: ['state:read'] });
      for (const grant of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
        const token = await new SignJWT({ sub: 'mallory', vault: 'A', permissions: ['*'], iat: nowS, exp: nowS + 600, jti: `j-${grant}`, grant })
          .setProtectedHeader({ alg: 'HS256', typ: 'toka.cap+jwt', kid })
          .sign(secret);
        await rejectsWith(host.authenticate(token), 'Unauthenticated', 'ERR_GRANT_UNKNOWN');
      }
    } finally {
      await host.close();
    }
  });
});

describe('host: ill-formed Unicode never reaches the log', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-unicode-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a lone surrogate in a vault, a subject or observation data, and verify stays ok', async () => {
    const host = await Host.open({ dataDir: dir, logger: quiet, rateLimit: false });
    try {
      // The session edge refuses an ill-formed vault before any operation is built.
      await rejectsWith(host.openSession('owner', { vault: 'v\ud800' }), 'InvalidParams');
      await rejectsWith(host.mint(host.localSession('A'), { subject: 'x\udc00', permissions: ['state:read'] }), 'InvalidOperation');
      const admin = host.localSession('A');
      await rejectsWith(host.submit(admin, { type: 'EmitObservation', agent: 'root', data: { ['k\ud800']: 'v' } }), 'InvalidOperation');
      await host.submit(admin, { type: 'EmitObservation', agent: 'root', data: { note: 'fine \ud83d\ude00' } });
      assert.equal((await host.verify()).ok, true);
    } finally {
      await host.close();
    }
    const reopened = await Host.open({ dataDir: dir, logger: quiet, rateLimit: false });
    try {
      const report = await reopened.verify();
      assert.equal(report.ok, true, JSON.stringify(report));
      assert.equal(report.headSeq, 2);
    } finally {
      await reopened.close();
    }
  });
});
