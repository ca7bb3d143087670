/**
 * One-time sign-in codes for the consent page. Only the owner of the data dir can make one: `toka signin`
 * writes `<data>/oauth-signin/<sha256 of the code>` (directory 0700, file 0600, holding the expiry) and prints
 * the code; the host accepts a code once, before it expires, by removing that file (the removal is the claim,
 * so two requests cannot both use it). The code itself is stored nowhere.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { secretHash } from './oauth-store.js';

export const SIGNIN_DIR = 'oauth-signin';
/** How long a sign-in code may be used. */
export const SIGNIN_CODE_TTL_MS = 10 * 60_000;
/** 32 random bytes, base64url. */
const CODE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** Make a sign-in code for the host on `dataDir` (the CLI, as the data dir's owner). */
export function createSigninCode(dataDir: string, now = Date.now()): { code: string; expiresAt: number } {
  const dir = join(dataDir, SIGNIN_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const code = randomBytes(32).toString('base64url');
  const expiresAt = now + SIGNIN_CODE_TTL_MS;
  writeFileSync(join(dir, hashName(code)), JSON.stringify({ expiresAt }), { mode: 0o600, flag: 'wx' });
  return { code, expiresAt };
}

/** Use a sign-in code: true once for a code `createSigninCode` made that has not expired; false otherwise. */
export function consumeSigninCode(dataDir: string, code: string, now: number): boolean {
  if (!CODE_SHAPE.test(code)) return false;
  const file = join(dataDir, SIGNIN_DIR, hashName(code));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
    unlinkSync(file);
  } catch {
    return false;
  }
  const expiresAt = (JSON.parse(text) as { expiresAt?: unknown }).expiresAt;
  return typeof expiresAt === 'number' && now <= expiresAt;
}

/** A file name for the code's hash (base64url has no path separators). */
function hashName(code: string): string {
  return `${secretHash(code)}.json`;
}
