import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair } from 'jose';
import { CLAIM_LIMITS } from '../../../protocol/capability.js';
import { AuthError } from '../../../server/auth/errors.js';
import { TokenService } from '../../../server/auth/tokens.js';
import { BASE, b64url, claimsAt, fixture, handSign, rejectsWith } from './helpers.js';

describe('auth/tokens: mint and verify', () => {
  it('mints an HS256 token with the Toka header and verifies it', async () => {
    const { tokens, ring, clock } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
    assert.deepEqual(header, { alg: 'HS256', typ: 'toka.cap+jwt', kid: ring.signingKey().kid });
    assert.equal(claims.iat, clock.seconds);
    assert.equal(claims.exp, clock.seconds + 600);
    assert.match(claims.jti, /^[0-9a-f-]{36}$/);
    assert.equal(claims.dlg, undefined);
    assert.deepEqual(await tokens.verify(token), claims);
  });

  it('mints and verifies an EdDSA token', async () => {
    const { tokens, ring } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60, alg: 'EdDSA', jti: 'ed-1' });
    const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
    assert.equal(header.alg, 'EdDSA');
    assert.equal(header.kid, ring.signingKey('EdDSA').kid);
    assert.equal(claims.jti, 'ed-1');
    assert.deepEqual(await tokens.verify(token), claims);
  });

  it('refuses to mint a lifetime over 30 minutes', async () => {
    const { tokens } = await fixture();
    await rejectsWith(tokens.mint({ ...BASE, ttlSeconds: 1801 }), 'ERR_LIFETIME_TOO_LONG');
  });

  it('refuses to mint a ttl below 1 second or fractional', async () => {
    const { tokens } = await fixture();
    await rejectsWith(tokens.mint({ ...BASE, ttlSeconds: 0 }), 'ERR_CLAIMS_INVALID');
    await rejectsWith(tokens.mint({ ...BASE, ttlSeconds: 1.5 }), 'ERR_CLAIMS_INVALID');
  });

  it('refuses to mint unknown permissions', async () => {
    const { tokens } = await fixture();
    await rejectsWith(tokens.mint({ ...BASE, permissions: ['state:write'], ttlSeconds: 60 }), 'ERR_CLAIMS_INVALID');
  });

  it('refuses to mint an oversize subject', async () => {
    const { tokens } = await fixture();
    await rejectsWith(tokens.mint({ ...BASE, sub: 'x'.repeat(257), ttlSeconds: 60 }), 'ERR_CLAIMS_INVALID');
  });
});

describe('auth/tokens: header and signature rejections', () => {
  it('rejects alg none (hand-built, unsigned)', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = `${b64url({ alg: 'none', typ: 'toka.cap+jwt', kid: ring.signingKey().kid })}.${b64url(claimsAt(clock))}.`;
    await rejectsWith(tokens.verify(token), 'ERR_ALG_NOT_ALLOWED', token);
  });

  it('rejects an HS256 token MACed with the EdDSA public key bytes (alg confusion)', async () => {
    const { tokens, ring, clock } = await fixture();
    const ed = ring.signingKey('EdDSA');
    const x = ring.jwks().keys.find((k) => k.kid === ed.kid)?.x;
    assert.ok(x);
    const token = await new SignJWT(claimsAt(clock))
      .setProtectedHeader({ alg: 'HS256', typ: 'toka.cap+jwt', kid: ed.kid })
      .sign(Buffer.from(x, 'base64url'));
    await rejectsWith(tokens.verify(token), 'ERR_ALG_NOT_ALLOWED', token);
  });

  it('rejects RS256', async () => {
    const { tokens, ring, clock } = await fixture();
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT(claimsAt(clock))
      .setProtectedHeader({ alg: 'RS256', typ: 'toka.cap+jwt', kid: ring.signingKey().kid })
      .sign(privateKey);
    await rejectsWith(tokens.verify(token), 'ERR_ALG_NOT_ALLOWED', token);
  });

  it('rejects a wrong typ', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock), { typ: 'JWT' });
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_TYPE', token);
  });

  it('rejects a missing typ', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock), { typ: undefined });
    assert.ok(!Buffer.from(token.split('.')[0], 'base64url').toString().includes('typ'));
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_TYPE', token);
  });

  it('rejects an unknown kid', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock), { kid: 'no-such-key' });
    await rejectsWith(tokens.verify(token), 'ERR_UNKNOWN_KID', token);
  });

  it('rejects a missing kid', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock), { kid: undefined });
    await rejectsWith(tokens.verify(token), 'ERR_UNKNOWN_KID', token);
  });

  it('rejects a tampered payload', async () => {
    const { tokens } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    const [h, , s] = token.split('.');
    const forged = `${h}.${b64url({ ...claims, permissions: ['*'] })}.${s}`;
    await rejectsWith(tokens.verify(forged), 'ERR_SIGNATURE_INVALID', forged);
  });

  it('rejects a tampered signature', async () => {
    const { tokens } = await fixture();
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    const [h, p, s] = token.split('.');
    const forged = `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`;
    await rejectsWith(tokens.verify(forged), 'ERR_SIGNATURE_INVALID', forged);
  });

  it('rejects a token signed by another ring under the same kid', async () => {
    const a = await fixture();
    const b = await fixture();
    const token = await handSign(b.ring, claimsAt(b.clock), { kid: a.ring.signingKey().kid });
    await rejectsWith(a.tokens.verify(token), 'ERR_SIGNATURE_INVALID', token);
  });

  it('rejects an oversize token before parsing it', async () => {
    const { tokens } = await fixture();
    await rejectsWith(tokens.verify('a'.repeat(CLAIM_LIMITS.tokenBytes + 1)), 'ERR_TOKEN_TOO_LARGE');
  });

  it('rejects a token that is not a compact JWS', async () => {
    const { tokens } = await fixture();
    await rejectsWith(tokens.verify('not-a-token'), 'ERR_TOKEN_MALFORMED');
    await rejectsWith(tokens.verify('a.b'), 'ERR_TOKEN_MALFORMED');
  });

  it('rejects a header that is not JSON', async () => {
    const { tokens } = await fixture();
    const token = `${Buffer.from('{nope').toString('base64url')}.${b64url({})}.sig`;
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_MALFORMED', token);
  });
});

describe('auth/tokens: claim shapes', () => {
  const long = (n: number) => 'x'.repeat(n);
  const cases: Array<[string, Record<string, unknown>]> = [
    ['empty sub', { sub: '' }],
    ['sub over 256 chars', { sub: long(CLAIM_LIMITS.subjectChars + 1) }],
    ['non-string sub', { sub: 42 }],
    ['missing vault', { vault: undefined }],
    ['vault over 256 chars', { vault: long(CLAIM_LIMITS.vaultChars + 1) }],
    ['permissions not an array', { permissions: 'state:read' }],
    ['more than 100 permissions', { permissions: Array(CLAIM_LIMITS.permissions + 1).fill('state:read') }],
    ['a permission over 64 chars', { permissions: [`state:${long(60)}`] }],
    ['an unknown permission', { permissions: ['state:write'] }],
    ['a malformed permission', { permissions: ['State Read'] }],
    ['a non-string permission', { permissions: [7] }],
    ['fractional iat', { iat: 1.5 }],
    ['string exp', { exp: '9999999999' }],
    ['exp not after iat', { exp: 'iat' }],
    ['missing jti', { jti: undefined }],
    ['jti over 256 chars', { jti: long(257) }],
    ['non-string grant', { grant: ['g1'] }],
    ['dlg not an array', { dlg: 'parent' }],
    ['dlg longer than 5', { dlg: ['a', 'b', 'c', 'd', 'e', 'f'] }],
    ['dlg with a non-string', { dlg: [1] }],
    ['empty aud', { aud: '' }],
    ['non-string aud', { aud: ['http://127.0.0.1:7420/mcp'] }],
    ['aud over 2048 chars', { aud: long(CLAIM_LIMITS.audienceChars + 1) }],
  ];
  for (const [name, over] of cases) {
    it(`rejects ${name}`, async () => {
      const { tokens, ring, clock } = await fixture();
      const claims = claimsAt(clock, over);
      if (over.exp === 'iat') claims.exp = claims.iat;
      const token = await handSign(ring, claims);
      await rejectsWith(tokens.verify(token), 'ERR_CLAIMS_INVALID', token);
    });
  }

  it('rejects a payload that is not a JSON object', async () => {
    const { tokens, ring } = await fixture();
    const key = ring.signingKey();
    const { CompactSign } = await import('jose');
    const token = await new CompactSign(new TextEncoder().encode('[1,2]'))
      .setProtectedHeader({ alg: 'HS256', typ: 'toka.cap+jwt', kid: key.kid })
      .sign(key.signKey);
    await rejectsWith(tokens.verify(token), 'ERR_CLAIMS_INVALID', token);
  });

  it('returns only the known claims', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock, { extra: 'ignored' }));
    const claims = await tokens.verify(token);
    assert.equal((claims as unknown as Record<string, unknown>).extra, undefined);
  });
});

describe('auth/tokens: time', () => {
  it('accepts a token 4 s past exp (skew)', async () => {
    const { tokens, clock } = await fixture({ cacheSize: 0 });
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    clock.ms = claims.exp * 1000 + 4000;
    assert.equal((await tokens.verify(token)).jti, claims.jti);
  });

  it('rejects a token 6 s past exp', async () => {
    const { tokens, clock } = await fixture({ cacheSize: 0 });
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    clock.ms = claims.exp * 1000 + 6000;
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_EXPIRED', token);
  });

  it('rejects an iat 6 s in the future', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock, { iat: clock.seconds + 6, exp: clock.seconds + 66 }));
    await rejectsWith(tokens.verify(token), 'ERR_IAT_IN_FUTURE', token);
  });

  it('accepts an iat 4 s in the future', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock, { iat: clock.seconds + 4, exp: clock.seconds + 64 }));
    assert.equal((await tokens.verify(token)).iat, clock.seconds + 4);
  });

  it('rejects a 31-minute lifetime signed with the ring key', async () => {
    const { tokens, ring, clock } = await fixture();
    const token = await handSign(ring, claimsAt(clock, { exp: clock.seconds + 31 * 60 }));
    await rejectsWith(tokens.verify(token), 'ERR_LIFETIME_TOO_LONG', token);
  });
});

describe('auth/tokens: revocation and grants', () => {
  it('rejects a revoked jti', async () => {
    const { tokens, revocation } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    revocation.revokedJtis.add(claims.jti);
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_REVOKED', token);
  });

  it('rejects a token of a revoked grant', async () => {
    const { tokens, revocation } = await fixture();
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    revocation.grants.set('g1', 'revoked');
    await rejectsWith(tokens.verify(token), 'ERR_GRANT_REVOKED', token);
  });

  it('rejects a token of an expired grant', async () => {
    const { tokens, revocation } = await fixture();
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    revocation.grants.set('g1', 'expired');
    await rejectsWith(tokens.verify(token), 'ERR_GRANT_EXPIRED', token);
  });

  it('rejects a token of an unknown grant', async () => {
    const { tokens } = await fixture();
    const { token } = await tokens.mint({ ...BASE, grant: 'g-missing', ttlSeconds: 60 });
    await rejectsWith(tokens.verify(token), 'ERR_GRANT_UNKNOWN', token);
  });

  it('passes the clock to grantState', async () => {
    const { tokens, revocation, clock } = await fixture();
    const seen: number[] = [];
    revocation.grantState = (_id: string, nowMs?: number) => {
      seen.push(nowMs ?? -1);
      return 'live';
    };
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    await tokens.verify(token);
    assert.deepEqual(seen, [clock.ms]);
  });
});

describe('auth/tokens: verification cache', () => {
  it('a second verify is a cache hit that skips the signature', async () => {
    const { tokens, ring } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    await tokens.verify(token);
    const key = ring.signingKey();
    const verifyKey = key.verifyKey;
    // Corrupt the key in place: only a path that skips the signature can still succeed.
    (key as { verifyKey: Uint8Array }).verifyKey = new Uint8Array(32);
    try {
      assert.deepEqual(await tokens.verify(token), claims);
    } finally {
      (key as { verifyKey: Uint8Array | typeof verifyKey }).verifyKey = verifyKey;
    }
    assert.deepEqual(tokens.cacheStats(), { size: 1, capacity: 10_000, hits: 1, misses: 1 });
  });

  it('revoking a cached token takes effect on the next verify', async () => {
    const { tokens, revocation } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    await tokens.verify(token);
    await tokens.verify(token);
    revocation.revokedJtis.add(claims.jti);
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_REVOKED', token);
    assert.equal(tokens.cacheStats().size, 0);
  });

  it('revoking the grant of a cached token takes effect on the next verify', async () => {
    const { tokens, revocation } = await fixture();
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    await tokens.verify(token);
    revocation.grants.set('g1', 'revoked');
    await rejectsWith(tokens.verify(token), 'ERR_GRANT_REVOKED', token);
  });

  it('a cached token still expires', async () => {
    const { tokens, clock } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    await tokens.verify(token);
    clock.ms = claims.exp * 1000 + 6000;
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_EXPIRED', token);
    assert.equal(tokens.cacheStats().hits, 1);
  });

  it('failed verifications are not cached', async () => {
    const { tokens, revocation } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    revocation.revokedJtis.add(claims.jti);
    await rejectsWith(tokens.verify(token), 'ERR_TOKEN_REVOKED');
    assert.equal(tokens.cacheStats().size, 0);
  });

  it('the cache is bounded and evicts the least recently used', async () => {
    const { tokens } = await fixture({ cacheSize: 3 });
    const minted = await Promise.all([1, 2, 3, 4, 5].map(() => tokens.mint({ ...BASE, ttlSeconds: 60 })));
    for (const m of minted.slice(0, 3)) await tokens.verify(m.token);
    await tokens.verify(minted[0].token); // hit: token 0 becomes most recent
    await tokens.verify(minted[3].token); // evicts token 1
    await tokens.verify(minted[4].token); // evicts token 2
    assert.equal(tokens.cacheStats().size, 3);
    await tokens.verify(minted[0].token);
    assert.equal(tokens.cacheStats().hits, 2);
    await tokens.verify(minted[1].token);
    assert.equal(tokens.cacheStats().misses, 6);
    assert.equal(tokens.cacheStats().size, 3);
  });

  it('callers cannot alter cached claims', async () => {
    const { tokens } = await fixture();
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    const first = await tokens.verify(token);
    assert.throws(() => first.permissions.push('*'), TypeError);
    assert.throws(() => {
      (first as { sub: string }).sub = 'mallory';
    }, TypeError);
    const again = await tokens.verify(token);
    assert.deepEqual(again.permissions, BASE.permissions);
    assert.equal(again.sub, BASE.sub);
  });
});

describe('auth/tokens: verifySignatureOnly', () => {
  it('returns the claims of an expired, revoked token with a valid signature', async () => {
    const { tokens, clock, revocation } = await fixture();
    const { token, claims } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    clock.advance(3_600_000);
    revocation.revokedJtis.add(claims.jti);
    assert.deepEqual(await tokens.verifySignatureOnly(token), claims);
  });

  it('still checks the signature', async () => {
    const { tokens } = await fixture();
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    const [h, p, s] = token.split('.');
    const forged = `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`;
    await rejectsWith(tokens.verifySignatureOnly(forged), 'ERR_SIGNATURE_INVALID');
  });
});

describe('auth/tokens: errors', () => {
  it('AuthError carries a stable code and name', () => {
    const err = new AuthError('ERR_TOKEN_EXPIRED', 'token has expired');
    assert.equal(err.code, 'ERR_TOKEN_EXPIRED');
    assert.equal(err.name, 'AuthError');
    assert.equal(err.retryAfterMs, undefined);
    assert.ok(err instanceof Error);
  });

  it('a token service with cacheSize 0 never caches', async () => {
    const { ring, revocation, clock } = await fixture();
    const tokens = new TokenService({ keyRing: ring, revocation, now: clock.now, cacheSize: 0 });
    const { token } = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    await tokens.verify(token);
    await tokens.verify(token);
    assert.deepEqual(tokens.cacheStats(), { size: 0, capacity: 0, hits: 0, misses: 2 });
  });
});

describe('auth/tokens: audience (aud)', () => {
  it('a minted aud is signed and verified; a delegated child keeps it', async () => {
    const { tokens } = await fixture();
    const aud = 'http://127.0.0.1:7420/mcp';
    const parent = await tokens.mint({ ...BASE, permissions: ['state:read', 'task:schedule'], ttlSeconds: 600, aud });
    assert.equal((await tokens.verify(parent.token)).aud, aud);
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'] });
    assert.equal(child.claims.aud, aud);
    assert.equal((await tokens.verify(child.token)).aud, aud);
    const plain = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    assert.equal('aud' in (await tokens.verify(plain.token)), false);
  });
});
