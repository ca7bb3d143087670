/**
 * The key ring: the keys capability tokens are signed with.
 *
 * Keys live in one JSON file in the data dir (mode 0600, dir 0700, rewritten atomically), or — for HS256 —
 * come from `TOKA_HS256_SECRET`, in which case the ring is in memory only and no file is read or written.
 * HS256 is the default algorithm; an EdDSA (Ed25519) key is created the first time one is needed, and only
 * EdDSA public keys are ever published (JWKS).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { KeyRingError } from './errors.js';

/** The signature algorithms Toka signs and accepts. Nothing else, ever. */
export type SigningAlg = 'HS256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['HS256', 'EdDSA'];

/** Default time an old key keeps verifying after a rotation. */
export const DEFAULT_ROTATION_OVERLAP_MS = 10 * 60 * 1000;
/** Fewest bytes an HS256 secret may have (from the file or the environment). */
export const HS256_SECRET_MIN_BYTES = 32;
/** Retired keys remembered in memory (so their tokens fail with ERR_KEY_RETIRED, not ERR_UNKNOWN_KID). */
const RETIRED_KEYS_REMEMBERED = 64;
const FILE_FORMAT = 'toka.keyring';
const FILE_VERSION = 1;
const KID_MAX_CHARS = 128;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Public facts about a key. */
export interface KeyInfo {
  kid: string;
  alg: SigningAlg;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; from then on the key no longer verifies. Absent for a current key. */
  retiresAt?: number;
}

/** A key with its material. The material is secret (except an EdDSA `verifyKey`): never log it. */
export interface RingKey extends KeyInfo {
  /** HMAC secret bytes (HS256) or the Ed25519 private key (EdDSA). */
  readonly signKey: Uint8Array | KeyObject;
  /** HMAC secret bytes (HS256) or the Ed25519 public key (EdDSA). */
  readonly verifyKey: Uint8Array | KeyObject;
}

/** One published verification key (RFC 7517), EdDSA only. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** A key as stored in the key file. */
interface StoredKey {
  kid: string;
  alg: SigningAlg;
  createdAt: number;
  retiresAt?: number;
  /** HS256: the secret, base64url. */
  secret?: string;
  /** EdDSA: the private JWK. */
  jwk?: { kty: 'OKP'; crv: 'Ed25519'; x: string; d: string };
}

interface Entry {
  key: RingKey;
  stored: StoredKey;
}

export interface KeyRingOptions {
  /** Key file path, e.g. `<data>/keys.json`. Without it (and without an env secret) the ring is in memory. */
  file?: string;
  /** Environment to read `TOKA_HS256_SECRET` from (pass `process.env`). */
  env?: Record<string, string | undefined>;
  /** Clock, ms since the epoch. */
  now?: () => number;
}

export class KeyRing {
  private readonly entries = new Map<string, Entry>();
  private readonly file: string | undefined;
  private readonly envManaged: boolean;
  private readonly now: () => number;

  private constructor(file: string | undefined, envManaged: boolean, now: () => number) {
    this.file = file;
    this.envManaged = envManaged;
    this.now = now;
  }

  /**
   * Opens the ring. With `env.TOKA_HS256_SECRET` the HS256 key comes from the environment and the ring is
   * in memory (the file is neither read nor written). Otherwise the file is loaded, or created with one
   * HS256 key. A key file readable or writable by group or others is refused.
   */
  static async open(opts: KeyRingOptions = {}): Promise<KeyRing> {
    const now = opts.now ?? Date.now;
    const envSecret = opts.env?.TOKA_HS256_SECRET;
    if (envSecret !== undefined && envSecret !== '') {
      const ring = new KeyRing(undefined, true, now);
      ring.add(envKey(envSecret, now()));
      return ring;
    }
    const ring = new KeyRing(opts.file, false, now);
    if (opts.file !== undefined && existsSync(opts.file)) {
      ring.load(opts.file);
    } else {
      ring.add(newKey('HS256', now()));
      ring.persist();
    }
    return ring;
  }

  /** The current key for `alg`, creating (and persisting) one on first need. */
  signingKey(alg: SigningAlg = 'HS256'): RingKey {
    const current = this.current(alg);
    if (current) return current;
    const created = newKey(alg, this.now());
    this.add(created);
    this.persist();
    return created.key;
  }

  /** The key named `kid`, including a retired key still remembered; undefined if unknown. */
  key(kid: string): RingKey | undefined {
    return this.entries.get(kid)?.key;
  }

  /**
   * Makes a fresh key current for `alg`. Earlier keys of that alg keep verifying for `overlapMs`
   * (default 10 min), then fail with ERR_KEY_RETIRED and leave the file on its next write.
   */
  async rotate(opts: { alg?: SigningAlg; overlapMs?: number } = {}): Promise<KeyInfo> {
    const alg = opts.alg ?? 'HS256';
    const overlapMs = opts.overlapMs ?? DEFAULT_ROTATION_OVERLAP_MS;
    if (!Number.isFinite(overlapMs) || overlapMs < 0) {
      throw new RangeError('overlapMs must be a finite number ≥ 0');
    }
    if (this.envManaged && alg === 'HS256') {
      throw new KeyRingError(
        'ERR_KEY_ENV_MANAGED',
        'the HS256 key comes from TOKA_HS256_SECRET; rotate it by changing the variable and restarting',
      );
    }
    const at = this.now();
    for (const { key, stored } of this.entries.values()) {
      if (key.alg === alg && key.retiresAt === undefined) {
        key.retiresAt = at + overlapMs;
        stored.retiresAt = at + overlapMs;
      }
    }
    const created = newKey(alg, at);
    this.add(created);
    this.persist();
    return info(created.key);
  }

  /** True when the key no longer verifies. */
  isRetired(key: KeyInfo): boolean {
    return key.retiresAt !== undefined && key.retiresAt <= this.now();
  }

  /** The JWKS to publish: public EdDSA keys that still verify. Never any HS256 material. */
  jwks(): { keys: PublicJwk[] } {
    const keys: PublicJwk[] = [];
    for (const { key, stored } of this.entries.values()) {
      if (key.alg !== 'EdDSA' || this.isRetired(key) || !stored.jwk) continue;
      keys.push({ kty: 'OKP', crv: 'Ed25519', x: stored.jwk.x, kid: key.kid, alg: 'EdDSA', use: 'sig' });
    }
    return { keys };
  }

  private current(alg: SigningAlg): RingKey | undefined {
    let best: RingKey | undefined;
    for (const { key } of this.entries.values()) {
      if (key.alg !== alg || key.retiresAt !== undefined) continue;
      if (!best || key.createdAt >= best.createdAt) best = key;
    }
    return best;
  }

  private add(entry: Entry): void {
    this.entries.set(entry.key.kid, entry);
    const retired = [...this.entries.values()].filter((e) => this.isRetired(e.key));
    retired.sort((a, b) => (a.key.retiresAt ?? 0) - (b.key.retiresAt ?? 0));
    for (const e of retired.slice(0, Math.max(0, retired.length - RETIRED_KEYS_REMEMBERED))) {
      this.entries.delete(e.key.kid);
    }
  }

  private load(file: string): void {
    const st = statSync(file);
    if (!st.isFile()) throw new KeyRingError('ERR_KEY_FILE_INVALID', `key file ${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new KeyRingError(
        'ERR_KEY_FILE_MODE',
        `key file ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; ` +
          `it must not be accessible to group or others (chmod 600 it)`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      throw new KeyRingError('ERR_KEY_FILE_INVALID', `key file ${file} is not valid JSON`);
    }
    if (
      !isRecord(parsed) ||
      parsed.format !== FILE_FORMAT ||
      parsed.version !== FILE_VERSION ||
      !Array.isArray(parsed.keys)
    ) {
      throw new KeyRingError('ERR_KEY_FILE_INVALID', `key file ${file} is not a Toka key ring (version ${FILE_VERSION})`);
    }
    parsed.keys.forEach((raw, i) => {
      const entry = fromStored(raw);
      if (!entry || this.entries.has(entry.key.kid)) {
        throw new KeyRingError('ERR_KEY_FILE_INVALID', `key file ${file}: key #${i} is invalid or duplicated`);
      }
      this.add(entry);
    });
  }

  /** Writes every key that still verifies to the file (tmp + fsync + rename, mode 0600). */
  private persist(): void {
    if (this.file === undefined || this.envManaged) return;
    const keys = [...this.entries.values()].filter((e) => !this.isRetired(e.key)).map((e) => e.stored);
    const body = `${JSON.stringify({ format: FILE_FORMAT, version: FILE_VERSION, keys }, null, 2)}\n`;
    writeFileAtomic(this.file, body);
  }
}

/** Replace `file` durably: a fresh 0600 temporary file, fsync, rename, fsync the directory. */
export function writeFileAtomic(file: string, body: string): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  if (process.platform !== 'win32') {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}

function info(key: RingKey): KeyInfo {
  const out: KeyInfo = { kid: key.kid, alg: key.alg, createdAt: key.createdAt };
  if (key.retiresAt !== undefined) out.retiresAt = key.retiresAt;
  return out;
}

function newKid(): string {
  return randomBytes(12).toString('base64url');
}

function newKey(alg: SigningAlg, createdAt: number): Entry {
  if (alg === 'HS256') {
    return hs256Entry(newKid(), randomBytes(HS256_SECRET_MIN_BYTES), createdAt);
  }
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return ed25519Entry(newKid(), { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x), d: String(jwk.d) }, createdAt);
}

function hs256Entry(kid: string, secret: Uint8Array, createdAt: number, retiresAt?: number): Entry {
  const bytes = new Uint8Array(secret);
  const key: RingKey = { kid, alg: 'HS256', createdAt, signKey: bytes, verifyKey: bytes };
  const stored: StoredKey = { kid, alg: 'HS256', createdAt, secret: Buffer.from(bytes).toString('base64url') };
  if (retiresAt !== undefined) {
    key.retiresAt = retiresAt;
    stored.retiresAt = retiresAt;
  }
  return { key, stored };
}

function ed25519Entry(
  kid: string,
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; d: string },
  createdAt: number,
  retiresAt?: number,
): Entry {
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  const x = String(publicKey.export({ format: 'jwk' }).x);
  if (x !== jwk.x) throw new Error('Ed25519 public key does not match its private key');
  const key: RingKey = { kid, alg: 'EdDSA', createdAt, signKey: privateKey, verifyKey: publicKey };
  const stored: StoredKey = { kid, alg: 'EdDSA', createdAt, jwk: { ...jwk } };
  if (retiresAt !== undefined) {
    key.retiresAt = retiresAt;
    stored.retiresAt = retiresAt;
  }
  return { key, stored };
}

/** The in-memory key from `TOKA_HS256_SECRET`; its kid is derived from a hash of the secret. */
function envKey(secret: string, createdAt: number): Entry {
  const bytes = BASE64URL.test(secret) ? Buffer.from(secret, 'base64url') : Buffer.alloc(0);
  if (bytes.length < HS256_SECRET_MIN_BYTES) {
    throw new KeyRingError(
      'ERR_ENV_SECRET_INVALID',
      `TOKA_HS256_SECRET must be base64url encoding at least ${HS256_SECRET_MIN_BYTES} bytes`,
    );
  }
  const digest = createHash('sha256').update('toka.kid\0').update(bytes).digest('base64url');
  return hs256Entry(`env-${digest.slice(0, 16)}`, bytes, createdAt);
}

function fromStored(raw: unknown): Entry | undefined {
  if (!isRecord(raw)) return undefined;
  const { kid, alg, createdAt, retiresAt } = raw;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > KID_MAX_CHARS) return undefined;
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined;
  if (retiresAt !== undefined && (typeof retiresAt !== 'number' || !Number.isFinite(retiresAt))) return undefined;
  try {
    if (alg === 'HS256') {
      const { secret } = raw;
      if (typeof secret !== 'string' || !BASE64URL.test(secret)) return undefined;
      const bytes = Buffer.from(secret, 'base64url');
      if (bytes.length < HS256_SECRET_MIN_BYTES) return undefined;
      return hs256Entry(kid, bytes, createdAt, retiresAt);
    }
    if (alg === 'EdDSA') {
      const { jwk } = raw;
      if (!isRecord(jwk) || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') return undefined;
      if (typeof jwk.x !== 'string' || typeof jwk.d !== 'string') return undefined;
      return ed25519Entry(kid, { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, createdAt, retiresAt);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
