/**
 * Capability tokens: minting from a grant, delegation (attenuation only), and verification with a bounded
 * cache. See docs/security-model.md for the rules; the checks below run in the documented order and each
 * failure carries its own AuthError code.
 */
import { randomUUID } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, SignJWT } from 'jose';
import {
  CLAIM_LIMITS,
  CLOCK_SKEW_S,
  DELEGATION_RULES,
  MAX_DELEGATION_DEPTH,
  MAX_TOKEN_LIFETIME_S,
  TOKEN_TYPE,
  delegationFault,
  isKnownPermission,
  isWellFormedText,
  type CapabilityClaims,
} from '../../protocol/capability.js';
import { AuthError } from './errors.js';
import { SIGNING_ALGS, type KeyRing, type RingKey, type SigningAlg } from './keyring.js';

/** Longest `jti` and `grant` id accepted, in characters. */
export const ID_MAX_CHARS = 256;
/** Default number of verified tokens the cache holds. */
export const DEFAULT_CACHE_SIZE = 10_000;

/** What the verifier asks the event-log-backed state about revocation. Both lookups must be cheap. */
export interface RevocationView {
  /** Has the token `jti` of the vault `vault` been revoked (in that vault)? */
  isTokenRevoked(jti: string, vault: string): boolean;
  /** The state of a grant at `nowMs`, its ancestry included (a grant dies with its parent). */
  grantState(grantId: string, nowMs: number): 'live' | 'revoked' | 'expired' | 'unknown';
}

export interface TokenServiceOptions {
  keyRing: KeyRing;
  revocation: RevocationView;
  /** Clock, ms since the epoch. */
  now?: () => number;
  /** Verified tokens cached (LRU); 0 disables the cache. Default 10 000. */
  cacheSize?: number;
}

export interface MintInput {
  sub: string;
  vault: string;
  permissions: string[];
  /** The live grant the token is minted from. */
  grant: string;
  /** Lifetime, 1..1800 seconds. */
  ttlSeconds: number;
  /** Token id; a random UUID by default. */
  jti?: string;
  alg?: SigningAlg;
  /** The resource the token is for (`aud`, RFC 8707); absent = any face of the host. */
  aud?: string;
}

export interface DelegateInput {
  sub: string;
  /** ⊆ the parent's permissions. */
  permissions: string[];
  /** Lifetime in seconds (1..1800); the child still expires no later than its parent. */
  ttlSeconds?: number;
  /** Explicit expiry, seconds since the epoch; ≤ the parent's. Give `exp` or `ttlSeconds`, not both. */
  exp?: number;
  jti?: string;
  alg?: SigningAlg;
}

export interface MintResult {
  token: string;
  claims: CapabilityClaims;
}

export interface CacheStats {
  size: number;
  capacity: number;
  hits: number;
  misses: number;
}

interface CacheEntry {
  claims: CapabilityClaims;
  kid: string;
}

export class TokenService {
  private readonly keyRing: KeyRing;
  private readonly revocation: RevocationView;
  private readonly now: () => number;
  private readonly capacity: number;
  private readonly cache = new Map<string, CacheEntry>();
  private hits = 0;
  private misses = 0;

  constructor(opts: TokenServiceOptions) {
    const capacity = opts.cacheSize ?? DEFAULT_CACHE_SIZE;
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('cacheSize must be an integer ≥ 0');
    this.keyRing = opts.keyRing;
    this.revocation = opts.revocation;
    this.now = opts.now ?? Date.now;
    this.capacity = capacity;
  }

  /** Mints a token from a grant. The caller has checked that the grant is live and covers `permissions`. */
  async mint(input: MintInput): Promise<MintResult> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + checkTtl(input.ttlSeconds);
    const claims: CapabilityClaims = {
      sub: input.sub,
      vault: input.vault,
      permissions: [...input.permissions],
      iat,
      exp,
      jti: input.jti ?? randomUUID(),
      grant: input.grant,
      ...(input.aud !== undefined ? { aud: input.aud } : {}),
    };
    checkClaims(claims);
    return { token: await this.sign(claims, input.alg ?? 'HS256'), claims: copyClaims(claims) };
  }

  /**
   * Mints a child of verified `parent` claims: same vault and grant, permissions ⊆ parent, exp ≤ parent's,
   * `dlg` = [parent.jti, ...parent.dlg], at most MAX_DELEGATION_DEPTH deep.
   */
  async delegate(parent: CapabilityClaims, input: DelegateInput): Promise<MintResult> {
    checkClaims(parent);
    const iat = Math.floor(this.now() / 1000);
    let exp: number;
    if (input.exp !== undefined) {
      if (input.ttlSeconds !== undefined) {
        throw new AuthError('ERR_CLAIMS_INVALID', 'give exp or ttlSeconds for a delegation, not both');
      }
      if (!Number.isInteger(input.exp)) throw new AuthError('ERR_CLAIMS_INVALID', 'exp must be an integer');
      exp = input.exp;
    } else {
      exp = Math.min(parent.exp, iat + checkTtl(input.ttlSeconds ?? MAX_TOKEN_LIFETIME_S));
    }
    if (!Array.isArray(input.permissions)) throw new AuthError('ERR_CLAIMS_INVALID', 'permissions must be an array');
    const fault = delegationFault(parent, { permissions: input.permissions, exp }, iat);
    if (fault !== null) throw new AuthError(fault, DELEGATION_RULES[fault]);
    if (exp - iat > MAX_TOKEN_LIFETIME_S) {
      throw new AuthError('ERR_LIFETIME_TOO_LONG', `token lifetime exceeds ${MAX_TOKEN_LIFETIME_S} s`);
    }
    const dlg = [parent.jti, ...(parent.dlg ?? [])];
    const claims: CapabilityClaims = {
      sub: input.sub,
      vault: parent.vault,
      permissions: [...input.permissions],
      iat,
      exp,
      jti: input.jti ?? randomUUID(),
      grant: parent.grant,
      dlg,
      ...(parent.aud !== undefined ? { aud: parent.aud } : {}),
    };
    checkClaims(claims);
    return { token: await this.sign(claims, input.alg ?? 'HS256'), claims: copyClaims(claims) };
  }

  /**
   * Verifies a token: size, header, typ, alg, kid, signature, claims, time (±CLOCK_SKEW_S), revocation,
   * grant. A cached token skips the signature but is re-checked for expiry, key retirement and revocation.
   */
  async verify(token: string): Promise<CapabilityClaims> {
    const cached = this.capacity > 0 ? this.cache.get(token) : undefined;
    if (cached) {
      this.hits++;
      try {
        const key = this.keyRing.key(cached.kid);
        if (!key || this.keyRing.isRetired(key)) {
          throw new AuthError('ERR_KEY_RETIRED', 'the signing key has been retired');
        }
        this.checkLive(cached.claims);
      } catch (err) {
        this.cache.delete(token);
        throw err;
      }
      this.cache.delete(token);
      this.cache.set(token, cached);
      return cached.claims;
    }
    this.misses++;
    const checked = await this.checkSignature(token);
    const claims = frozenClaims(checked.claims);
    const kid = checked.kid;
    this.checkLive(claims);
    if (this.capacity > 0) {
      if (this.cache.size >= this.capacity) {
        const oldest = this.cache.keys().next();
        if (!oldest.done) this.cache.delete(oldest.value);
      }
      this.cache.set(token, { claims, kid });
    }
    return claims;
  }

  /**
   * Checks size, header (typ, alg, kid), signature and claim shapes only — not time, revocation or grant.
   * For revoking an expired token (RFC 7009) and `toka token inspect`. Never authorise with it.
   */
  async verifySignatureOnly(token: string): Promise<CapabilityClaims> {
    return copyClaims((await this.checkSignature(token)).claims);
  }

  /** Cache counters, for tests and metrics. */
  cacheStats(): CacheStats {
    return { size: this.cache.size, capacity: this.capacity, hits: this.hits, misses: this.misses };
  }

  private async sign(claims: CapabilityClaims, alg: SigningAlg): Promise<string> {
    if (!SIGNING_ALGS.includes(alg)) throw new AuthError('ERR_ALG_NOT_ALLOWED', 'alg must be HS256 or EdDSA');
    const key = this.keyRing.signingKey(alg);
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg, typ: TOKEN_TYPE, kid: key.kid })
      .sign(key.signKey);
  }

  private async checkSignature(token: string): Promise<{ claims: CapabilityClaims; kid: string }> {
    if (typeof token !== 'string') throw new AuthError('ERR_TOKEN_MALFORMED', 'token must be a string');
    if (token.length > CLAIM_LIMITS.tokenBytes || Buffer.byteLength(token, 'utf8') > CLAIM_LIMITS.tokenBytes) {
      throw new AuthError('ERR_TOKEN_TOO_LARGE', `token larger than ${CLAIM_LIMITS.tokenBytes} bytes`);
    }
    if (!COMPACT_JWS.test(token)) throw new AuthError('ERR_TOKEN_MALFORMED', 'token is not a compact JWS');
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
    } catch {
      throw new AuthError('ERR_TOKEN_MALFORMED', 'token header is not valid base64url JSON');
    }
    if (header.typ !== TOKEN_TYPE) throw new AuthError('ERR_TOKEN_TYPE', `token typ must be ${TOKEN_TYPE}`);
    const alg = header.alg;
    if (typeof alg !== 'string' || !(SIGNING_ALGS as readonly string[]).includes(alg)) {
      throw new AuthError('ERR_ALG_NOT_ALLOWED', 'token alg must be HS256 or EdDSA');
    }
    const kid = header.kid;
    const key: RingKey | undefined = typeof kid === 'string' && kid !== '' ? this.keyRing.key(kid) : undefined;
    if (!key) throw new AuthError('ERR_UNKNOWN_KID', 'token kid is missing or unknown');
    if (this.keyRing.isRetired(key)) throw new AuthError('ERR_KEY_RETIRED', 'the signing key has been retired');
    if (key.alg !== alg) throw new AuthError('ERR_ALG_NOT_ALLOWED', 'token alg does not match its key');
    let payload: Uint8Array;
    try {
      payload = (await compactVerify(token, key.verifyKey, { algorithms: [key.alg] })).payload;
    } catch {
      throw new AuthError('ERR_SIGNATURE_INVALID', 'token signature is invalid');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
    } catch {
      throw new AuthError('ERR_CLAIMS_INVALID', 'token payload is not JSON');
    }
    return { claims: checkClaims(parsed), kid: key.kid };
  }

  /** Is the token, or one of its delegation ancestors, revoked in its vault? */
  private isRevoked(claims: CapabilityClaims): boolean {
    if (this.revocation.isTokenRevoked(claims.jti, claims.vault)) return true;
    if (claims.dlg === undefined) return false;
    for (const jti of claims.dlg) if (this.revocation.isTokenRevoked(jti, claims.vault)) return true;
    return false;
  }

  /** Time and revocation checks, run on every verification, cached or not. */
  private checkLive(claims: CapabilityClaims): void {
    const nowMs = this.now();
    const nowS = nowMs / 1000;
    if (nowS > claims.exp + CLOCK_SKEW_S) throw new AuthError('ERR_TOKEN_EXPIRED', 'token has expired');
    if (claims.iat > nowS + CLOCK_SKEW_S) throw new AuthError('ERR_IAT_IN_FUTURE', 'token iat is in the future');
    if (claims.exp - claims.iat > MAX_TOKEN_LIFETIME_S) {
      throw new AuthError('ERR_LIFETIME_TOO_LONG', `token lifetime exceeds ${MAX_TOKEN_LIFETIME_S} s`);
    }
    if (this.isRevoked(claims)) {
      throw new AuthError('ERR_TOKEN_REVOKED', 'token or one of its delegation ancestors has been revoked');
    }
    switch (this.revocation.grantState(claims.grant, nowMs)) {
      case 'live':
        return;
      case 'revoked':
        throw new AuthError('ERR_GRANT_REVOKED', 'the grant behind this token has been revoked');
      case 'expired':
        throw new AuthError('ERR_GRANT_EXPIRED', 'the grant behind this token has expired');
      default:
        throw new AuthError('ERR_GRANT_UNKNOWN', 'the grant behind this token is unknown');
    }
  }
}

/** Three base64url segments; the signature may be empty so that `alg: none` is refused by the alg check. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function checkTtl(ttl: number): number {
  if (!Number.isInteger(ttl) || ttl < 1) throw new AuthError('ERR_CLAIMS_INVALID', 'ttlSeconds must be an integer ≥ 1');
  if (ttl > MAX_TOKEN_LIFETIME_S) {
    throw new AuthError('ERR_LIFETIME_TOO_LONG', `token lifetime exceeds ${MAX_TOKEN_LIFETIME_S} s`);
  }
  return ttl;
}

function invalid(what: string): AuthError {
  return new AuthError('ERR_CLAIMS_INVALID', `token claims invalid: ${what}`);
}

/** A well-formed string (no lone surrogate) of 1..max UTF-16 units. */
function isBoundedString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= max && isWellFormedText(v);
}

/** Checks claim shapes and returns a fresh object holding only the known claims. */
function checkClaims(raw: unknown): CapabilityClaims {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('not an object');
  const c = raw as Record<string, unknown>;
  if (!isBoundedString(c.sub, CLAIM_LIMITS.subjectChars)) throw invalid(`sub must be 1..${CLAIM_LIMITS.subjectChars} well-formed chars`);
  if (!isBoundedString(c.vault, CLAIM_LIMITS.vaultChars)) throw invalid(`vault must be 1..${CLAIM_LIMITS.vaultChars} well-formed chars`);
  const perms = c.permissions;
  if (!Array.isArray(perms) || perms.length > CLAIM_LIMITS.permissions) {
    throw invalid(`permissions must be an array of at most ${CLAIM_LIMITS.permissions}`);
  }
  for (const p of perms) {
    if (!isBoundedString(p, CLAIM_LIMITS.permissionChars) || !isKnownPermission(p)) {
      throw invalid(`permissions must be known permissions of at most ${CLAIM_LIMITS.permissionChars} chars`);
    }
  }
  if (!Number.isSafeInteger(c.iat) || (c.iat as number) < 0) throw invalid('iat must be an integer ≥ 0');
  if (!Number.isSafeInteger(c.exp) || (c.exp as number) <= (c.iat as number)) throw invalid('exp must be an integer > iat');
  if (!isBoundedString(c.jti, ID_MAX_CHARS)) throw invalid(`jti must be 1..${ID_MAX_CHARS} well-formed chars`);
  if (!isBoundedString(c.grant, ID_MAX_CHARS)) throw invalid(`grant must be 1..${ID_MAX_CHARS} well-formed chars`);
  const claims: CapabilityClaims = {
    sub: c.sub,
    vault: c.vault,
    permissions: [...(perms as string[])],
    iat: c.iat as number,
    exp: c.exp as number,
    jti: c.jti,
    grant: c.grant,
  };
  if (c.dlg !== undefined) {
    const dlg = c.dlg;
    if (!Array.isArray(dlg) || dlg.length > MAX_DELEGATION_DEPTH || !dlg.every((j) => isBoundedString(j, ID_MAX_CHARS))) {
      throw invalid(`dlg must be an array of at most ${MAX_DELEGATION_DEPTH} ids`);
    }
    if (dlg.length > 0) claims.dlg = [...(dlg as string[])];
  }
  if (c.aud !== undefined) {
    if (!isBoundedString(c.aud, CLAIM_LIMITS.audienceChars)) throw invalid(`aud must be 1..${CLAIM_LIMITS.audienceChars} well-formed chars`);
    claims.aud = c.aud;
  }
  return claims;
}

/**
 * Verified claims are shared between the cache and every caller, so they are frozen (arrays included):
 * a caller cannot change what the next one sees, and no copy is made per verification.
 */
function frozenClaims(c: CapabilityClaims): CapabilityClaims {
  Object.freeze(c.permissions);
  if (c.dlg) Object.freeze(c.dlg);
  return Object.freeze(c);
}

function copyClaims(c: CapabilityClaims): CapabilityClaims {
  const out: CapabilityClaims = { ...c, permissions: [...c.permissions] };
  if (c.dlg) out.dlg = [...c.dlg];
  return out;
}
