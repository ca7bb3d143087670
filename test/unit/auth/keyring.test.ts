import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRingError } from '../../../server/auth/errors.js';
import { KeyRing } from '../../../server/auth/keyring.js';
import { TokenService } from '../../../server/auth/tokens.js';
import { BASE, Clock, FakeRevocation, fixture, rejectsWith, removeTempDirs, tempDir } from './helpers.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('auth/keyring: key file', () => {
  afterEach(removeTempDirs);

  it('creates the key file 0600 in a 0700 dir with one HS256 key', async () => {
    const dir = join(tempDir(), 'data');
    const file = join(dir, 'keys.json');
    const ring = await KeyRing.open({ file });
    assert.equal(mode(file), 0o600);
    assert.equal(mode(dir), 0o700);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(stored.keys.length, 1);
    assert.equal(stored.keys[0].alg, 'HS256');
    assert.equal(stored.keys[0].kid, ring.signingKey().kid);
    assert.equal(Buffer.from(stored.keys[0].secret, 'base64url').length, 32);
  });

  it('reopens the same keys: a token minted before a restart verifies after it', async () => {
    const file = join(tempDir(), 'keys.json');
    const a = await fixture({ file });
    const { token } = await a.tokens.mint({ ...BASE, ttlSeconds: 60, alg: 'EdDSA' });
    const ring = await KeyRing.open({ file, now: a.clock.now });
    const tokens = new TokenService({ keyRing: ring, revocation: a.revocation, now: a.clock.now });
    assert.equal((await tokens.verify(token)).sub, BASE.sub);
    assert.equal(ring.signingKey().kid, a.ring.signingKey().kid);
  });

  it('refuses a key file readable by group and others (0644)', async () => {
    const file = join(tempDir(), 'keys.json');
    await KeyRing.open({ file });
    chmodSync(file, 0o644);
    await assert.rejects(KeyRing.open({ file }), (err: unknown) => {
      assert.ok(err instanceof KeyRingError);
      assert.equal(err.code, 'ERR_KEY_FILE_MODE');
      assert.match(err.message, /0644/);
      assert.ok(!err.message.includes(JSON.parse(readFileSync(file, 'utf8')).keys[0].secret));
      return true;
    });
  });

  it('refuses a key file that is not a key ring, without echoing it', async () => {
    const file = join(tempDir(), 'keys.json');
    writeFileSync(file, '{"secret":"hunter2"}', { mode: 0o600 });
    await assert.rejects(KeyRing.open({ file }), (err: unknown) => {
      assert.ok(err instanceof KeyRingError);
      assert.equal(err.code, 'ERR_KEY_FILE_INVALID');
      assert.ok(!err.message.includes('hunter2'));
      return true;
    });
  });

  it('refuses a key file with a short HS256 secret', async () => {
    const file = join(tempDir(), 'keys.json');
    const keys = [{ kid: 'k1', alg: 'HS256', createdAt: 0, secret: randomBytes(16).toString('base64url') }];
    writeFileSync(file, JSON.stringify({ format: 'toka.keyring', version: 1, keys }), { mode: 0o600 });
    await assert.rejects(KeyRing.open({ file }), (err: unknown) => err instanceof KeyRingError && err.code === 'ERR_KEY_FILE_INVALID');
  });

  it('persists a new EdDSA key on first need, still 0600', async () => {
    const file = join(tempDir(), 'keys.json');
    const ring = await KeyRing.open({ file });
    const ed = ring.signingKey('EdDSA');
    assert.equal(ring.signingKey('EdDSA').kid, ed.kid);
    assert.equal(mode(file), 0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(stored.keys.map((k: { alg: string }) => k.alg).sort(), ['EdDSA', 'HS256']);
  });
});

describe('auth/keyring: rotation', () => {
  afterEach(removeTempDirs);

  it('the old kid verifies inside the overlap window and fails with ERR_KEY_RETIRED after it', async () => {
    const file = join(tempDir(), 'keys.json');
    const { tokens, ring, clock } = await fixture({ file, cacheSize: 0 });
    const before = await tokens.mint({ ...BASE, ttlSeconds: 1800 });
    const oldKid = ring.signingKey().kid;
    const rotated = await ring.rotate({ overlapMs: 10 * 60_000 });
    assert.notEqual(rotated.kid, oldKid);
    assert.equal(ring.signingKey().kid, rotated.kid);
    assert.equal(ring.key(oldKid)?.retiresAt, clock.ms + 10 * 60_000);
    assert.equal(mode(file), 0o600);

    clock.advance(9 * 60_000);
    assert.equal((await tokens.verify(before.token)).jti, before.claims.jti);
    const after = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    assert.equal(JSON.parse(Buffer.from(after.token.split('.')[0], 'base64url').toString()).kid, rotated.kid);

    clock.advance(60_000);
    await rejectsWith(tokens.verify(before.token), 'ERR_KEY_RETIRED', before.token);
    assert.equal((await tokens.verify(after.token)).jti, after.claims.jti);
  });

  it('a cached token of a retired key is rejected too', async () => {
    const { tokens, ring, clock } = await fixture();
    const before = await tokens.mint({ ...BASE, ttlSeconds: 1800 });
    await tokens.verify(before.token);
    await ring.rotate({ overlapMs: 1000 });
    clock.advance(1000);
    await rejectsWith(tokens.verify(before.token), 'ERR_KEY_RETIRED', before.token);
  });

  it('drops a retired key from the file on the next write', async () => {
    const file = join(tempDir(), 'keys.json');
    const clock = new Clock();
    const ring = await KeyRing.open({ file, now: clock.now });
    const oldKid = ring.signingKey().kid;
    await ring.rotate({ overlapMs: 1000 });
    const kids = () => JSON.parse(readFileSync(file, 'utf8')).keys.map((k: { kid: string }) => k.kid);
    assert.ok(kids().includes(oldKid));
    clock.advance(1000);
    ring.signingKey('EdDSA');
    assert.ok(!kids().includes(oldKid));
    assert.equal(kids().length, 2);
  });

  it('rotates EdDSA keys and publishes both during the overlap', async () => {
    const { ring, clock } = await fixture();
    const first = ring.signingKey('EdDSA');
    const second = await ring.rotate({ alg: 'EdDSA' });
    assert.deepEqual(ring.jwks().keys.map((k) => k.kid).sort(), [first.kid, second.kid].sort());
    clock.advance(10 * 60_000);
    assert.deepEqual(ring.jwks().keys.map((k) => k.kid), [second.kid]);
  });

  it('rotating one alg leaves the other current', async () => {
    const { ring } = await fixture();
    const hs = ring.signingKey('HS256');
    await ring.rotate({ alg: 'EdDSA' });
    assert.equal(ring.signingKey('HS256').kid, hs.kid);
    assert.equal(ring.key(hs.kid)?.retiresAt, undefined);
  });
});

describe('auth/keyring: JWKS', () => {
  afterEach(removeTempDirs);

  it('publishes only public EdDSA keys, never HS256 material', async () => {
    const file = join(tempDir(), 'keys.json');
    const ring = await KeyRing.open({ file });
    assert.deepEqual(ring.jwks(), { keys: [] });
    const ed = ring.signingKey('EdDSA');
    const jwks = ring.jwks();
    assert.equal(jwks.keys.length, 1);
    assert.deepEqual(Object.keys(jwks.keys[0]).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    assert.equal(jwks.keys[0].kid, ed.kid);
    assert.equal(jwks.keys[0].alg, 'EdDSA');
    assert.equal(jwks.keys[0].use, 'sig');
    const text = JSON.stringify(jwks);
    for (const stored of JSON.parse(readFileSync(file, 'utf8')).keys) {
      if (stored.secret) assert.ok(!text.includes(stored.secret));
      if (stored.jwk) assert.ok(!text.includes(stored.jwk.d));
    }
    assert.ok(!text.includes(ring.signingKey('HS256').kid));
  });
});

describe('auth/keyring: TOKA_HS256_SECRET', () => {
  afterEach(removeTempDirs);

  const secret = randomBytes(32).toString('base64url');

  it('uses the env secret in memory: no file, kid derived from a hash', async () => {
    const file = join(tempDir(), 'keys.json');
    const ring = await KeyRing.open({ file, env: { TOKA_HS256_SECRET: secret } });
    const key = ring.signingKey();
    assert.match(key.kid, /^env-[A-Za-z0-9_-]{16}$/);
    assert.ok(!secret.includes(key.kid.slice(4)));
    assert.deepEqual(Buffer.from(key.signKey as Uint8Array), Buffer.from(secret, 'base64url'));
    assert.equal(existsSync(file), false);
  });

  it('two rings with the same env secret verify each other', async () => {
    const clock = new Clock();
    const revocation = new FakeRevocation();
    const env = { TOKA_HS256_SECRET: secret };
    const a = new TokenService({ keyRing: await KeyRing.open({ env, now: clock.now }), revocation, now: clock.now });
    const b = new TokenService({ keyRing: await KeyRing.open({ env, now: clock.now }), revocation, now: clock.now });
    const { token } = await a.mint({ ...BASE, ttlSeconds: 60 });
    assert.equal((await b.verify(token)).sub, BASE.sub);
  });

  it('refuses a secret shorter than 32 bytes without echoing it', async () => {
    const short = randomBytes(31).toString('base64url');
    await assert.rejects(KeyRing.open({ env: { TOKA_HS256_SECRET: short } }), (err: unknown) => {
      assert.ok(err instanceof KeyRingError);
      assert.equal(err.code, 'ERR_ENV_SECRET_INVALID');
      assert.ok(!err.message.includes(short));
      return true;
    });
  });

  it('refuses a secret that is not base64url', async () => {
    await assert.rejects(
      KeyRing.open({ env: { TOKA_HS256_SECRET: `${secret}+/=` } }),
      (err: unknown) => err instanceof KeyRingError && err.code === 'ERR_ENV_SECRET_INVALID',
    );
  });

  it('refuses to rotate the env-managed HS256 key', async () => {
    const ring = await KeyRing.open({ env: { TOKA_HS256_SECRET: secret } });
    await assert.rejects(ring.rotate(), (err: unknown) => err instanceof KeyRingError && err.code === 'ERR_KEY_ENV_MANAGED');
  });
});
