/**
 * Capability management: grants, tokens minted from them, delegation and revocation. Every change is a
 * kernel operation (the kernel decides what the caller may grant); a request the host would refuse is
 * refused before anything is written.
 */
import { MAX_TOKEN_LIFETIME_S, type CapabilityClaims } from '../../protocol/capability.js';
import type { GrantRecord } from '../../protocol/kernel.js';
import type { DelegateParams, DelegateResult, MintParams, MintResult, RevokeParams } from '../../protocol/rpc/capability.js';
import { grantStatus } from '../kernel/kernel.js';
import { boundedInt, type HostCore, type Session, type SubmitResult } from './core.js';
import { HostError } from './errors.js';

const SIGNING_ALGS = ['HS256', 'EdDSA'] as const;
/** Default token lifetime when a request names none. */
const DEFAULT_TTL_S = 900;

/** Create a grant for `subject` (⊆ the caller's permissions) and mint a token from it. */
export async function mint(core: HostCore, session: Session, request: MintParams): Promise<MintResult> {
  const claims = await core.check(session);
  const ttlSeconds = boundedInt(request.ttlSeconds, 1, MAX_TOKEN_LIFETIME_S, DEFAULT_TTL_S, 'ttlSeconds');
  const alg = signingAlg(request.alg);
  const result = await core.execute(session.principal, claims, {
    type: 'CreateGrant',
    subject: request.subject,
    permissions: request.permissions,
    expiresAt: request.grantExpiresAt,
    label: request.label,
  });
  const grant = (result.records[result.records.length - 1].event as unknown as { grant: GrantRecord }).grant;
  return tokenOf(core, grant, ttlSeconds, { alg });
}

/** A token of `grant` (its subject, vault and permissions) living `ttlSeconds`. */
async function tokenOf(core: HostCore, grant: GrantRecord, ttlSeconds: number, options: { alg?: (typeof SIGNING_ALGS)[number]; aud?: string }): Promise<MintResult> {
  try {
    const minted = await core.tokens.mint({ sub: grant.subject, vault: grant.vault, permissions: grant.permissions, grant: grant.id, ttlSeconds, ...options });
    return { ...minted, grant: grant.id };
  } catch (err) {
    throw core.fail(err);
  }
}

/**
 * Mint a narrower child of the session's token (recorded as CapabilityDelegated). The owner's local session
 * holds no token and no grant to chain a child to (a token "delegated" from it would name a grant that does
 * not exist and be refused on every use): its delegation is a grant of its own for the subject, expiring with
 * the token, and the token minted from it (recorded as GrantCreated; revoke the token or the grant).
 */
export async function delegate(core: HostCore, session: Session, request: DelegateParams): Promise<DelegateResult> {
  const claims = await core.check(session);
  const nowS = Math.floor(core.now() / 1000);
  const ttl = boundedInt(request.ttlSeconds, 1, MAX_TOKEN_LIFETIME_S, DEFAULT_TTL_S, 'ttlSeconds');
  const alg = signingAlg(request.alg);
  if (session.local) {
    const { token, claims: child } = await mint(core, session, {
      subject: request.subject,
      permissions: request.permissions,
      ttlSeconds: ttl,
      alg,
      grantExpiresAt: (nowS + ttl) * 1000,
      label: `delegated by ${session.principal}`,
    });
    return { token, claims: child };
  }
  const exp = Math.min(claims.exp, nowS + ttl);
  const result = await core.execute(session.principal, claims, {
    type: 'DelegateCapability',
    subject: request.subject,
    permissions: request.permissions,
    exp,
  });
  const jti = (result.records[result.records.length - 1].event as unknown as { jti: string }).jti;
  try {
    return await core.tokens.delegate(claims, { sub: request.subject, permissions: request.permissions, exp, jti, alg });
  } catch (err) {
    throw core.fail(err);
  }
}

/** Revoke a token (by jti or in full) or a grant. */
export async function revoke(core: HostCore, session: Session, request: RevokeParams): Promise<SubmitResult> {
  const claims = await core.check(session);
  const given = [request.jti, request.token, request.grant].filter((v) => v !== undefined).length;
  if (given !== 1) throw new HostError('InvalidParams', 'give exactly one of jti, token, grant');
  if (request.grant !== undefined) {
    return core.execute(session.principal, claims, { type: 'RevokeGrant', grant: request.grant, reason: request.reason });
  }
  let jti = request.jti!;
  let exp = Math.floor(core.now() / 1000) + MAX_TOKEN_LIFETIME_S + 5;
  if (request.token !== undefined) {
    let target: CapabilityClaims;
    try {
      target = await core.tokens.verifySignatureOnly(request.token);
    } catch (err) {
      throw core.fail(err);
    }
    if (target.vault !== claims.vault) {
      throw new HostError('CapabilityDenied', 'token belongs to another vault', { reason: 'target outside the token vault' });
    }
    jti = target.jti;
    exp = target.exp;
  }
  return core.execute(session.principal, claims, { type: 'RevokeToken', jti, exp, reason: request.reason });
}

/**
 * Mint a fresh token from an existing live grant of the caller's vault (how the runtime renews an agent's
 * own token). The local admin may use any grant of its vault; any other caller only a grant it created
 * itself, and must hold `capability:grant`.
 */
export async function issueToken(
  core: HostCore,
  session: Session,
  request: { grant: string; ttlSeconds?: number; audience?: string },
): Promise<MintResult> {
  const claims = await core.check(session);
  core.require(claims, 'capability:grant');
  const ttlSeconds = boundedInt(request.ttlSeconds, 1, MAX_TOKEN_LIFETIME_S, DEFAULT_TTL_S, 'ttlSeconds');
  const grant = await core.readDurable((state) =>
    typeof request.grant === 'string' && Object.hasOwn(state.grants, request.grant) ? structuredClone(state.grants[request.grant]) : undefined,
  );
  if (!grant || grant.vault !== claims.vault) throw new HostError('UnknownEntity', 'unknown grant', { entity: 'grant', id: request.grant });
  if (!session.local && grant.createdBy !== session.principal) {
    throw new HostError('CapabilityDenied', 'only the creator of a grant may issue tokens from it', { reason: 'not the grant creator' });
  }
  return tokenOf(core, grant, ttlSeconds, request.audience !== undefined ? { aud: request.audience } : {});
}

/**
 * The grants of the caller's vault, oldest first (copies of durable state). `revoked` is as the token check
 * sees it: a grant whose ancestor was revoked is reported revoked too (a child never outlives its parent's
 * expiry, so `expiresAt` needs no such help).
 */
export async function listGrants(core: HostCore, session: Session): Promise<GrantRecord[]> {
  const claims = await core.check(session);
  core.require(claims, 'capability:read');
  return core.readDurable((state) =>
    Object.values(state.grants)
      .filter((g) => g.vault === claims.vault)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
      .map((g) => {
        const copy = structuredClone(g);
        if (grantStatus(state, g.id, core.now()) === 'revoked') copy.revoked = true;
        return copy;
      }),
  );
}

function signingAlg(alg: unknown): (typeof SIGNING_ALGS)[number] {
  if (alg === undefined) return 'HS256';
  if (!(SIGNING_ALGS as readonly unknown[]).includes(alg)) {
    throw new HostError('InvalidParams', 'alg must be HS256 or EdDSA', { field: 'alg' });
  }
  return alg as (typeof SIGNING_ALGS)[number];
}
