/** Shared fixtures for the auth unit tests: a settable clock, an in-memory revocation view, hand signing. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { AuthError, type AuthErrorCode } from '../../../server/auth/errors.js';
import { KeyRing } from '../../../server/auth/keyring.js';
import { TokenService, type RevocationView } from '../../../server/auth/tokens.js';

/** 2030-01-01T00:00:00Z, a whole second. */
export const T0 = Date.UTC(2030, 0, 1);

export class Clock {
  ms = T0;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
  get seconds(): number {
    return Math.floor(this.ms / 1000);
  }
}

export class FakeRevocation implements RevocationView {
  readonly revokedJtis = new Set<string>();
  readonly grants = new Map<string, 'live' | 'revoked' | 'expired'>([['g1', 'live']]);
  /** Revocations here are in every vault; vault scoping is tested against the kernel's view. */
  isTokenRevoked(jti: string): boolean {
    return this.revokedJtis.has(jti);
  }
  grantState(grantId: string): 'live' | 'revoked' | 'expired' | 'unknown' {
    return this.grants.get(grantId) ?? 'unknown';
  }
}

const tempDirs: string[] = [];

/** A fresh temporary dir, removed by the next `removeTempDirs()` (call it in an afterEach). */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'toka-auth-'));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface Fixture {
  clock: Clock;
  revocation: FakeRevocation;
  ring: KeyRing;
  tokens: TokenService;
}

export async function fixture(opts: { cacheSize?: number; file?: string } = {}): Promise<Fixture> {
  const clock = new Clock();
  const revocation = new FakeRevocation();
  const ring = await KeyRing.open({ file: opts.file, now: clock.now });
  const tokens = new TokenService({ keyRing: ring, revocation, now: clock.now, cacheSize: opts.cacheSize });
  return { clock, revocation, ring, tokens };
}

export const BASE = { sub: 'alice', vault: 'v1', permissions: ['state:read', 'task:schedule'], grant: 'g1' };

/** Valid claims at the clock's time, to be altered by a test. */
export function claimsAt(clock: Clock, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...BASE, iat: clock.seconds, exp: clock.seconds + 600, jti: 'jti-hand', ...over };
}

/** Signs `payload` with the ring's current HS256 key and a Toka header (overridable). */
export async function handSign(
  ring: KeyRing,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const key = ring.signingKey('HS256');
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'toka.cap+jwt', kid: key.kid, ...header } as { alg: string })
    .sign(key.signKey);
}

export function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Awaits `p` and asserts it rejects with an AuthError of `code` whose message does not leak `token`. */
export async function rejectsWith(p: Promise<unknown>, code: AuthErrorCode, token?: string): Promise<AuthError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (token !== undefined) {
      assert.ok(!err.message.includes(token), 'error message must not contain the token');
      for (const part of token.split('.')) if (part.length > 8) assert.ok(!err.message.includes(part));
    }
    return err;
  }
  assert.fail(`expected rejection with ${code}`);
}
