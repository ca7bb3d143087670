/**
 * Liveness of grants and tokens, as pure functions of the world state. The host's token verification asks
 * these (auth's `RevocationView`), and the kernel asks them before it lets a grant create a child grant.
 * Every lookup is an own-property lookup: ids come from the wire.
 */
import { KERNEL_LIMITS, type GrantRecord, type WorldState } from '../../protocol/kernel.js';

export type GrantStatus = 'live' | 'revoked' | 'expired' | 'unknown';

/** The grant `id`, or undefined (never an inherited property such as `toString`). */
export function findGrant(state: Readonly<WorldState>, id: string): Readonly<GrantRecord> | undefined {
  return Object.hasOwn(state.grants, id) ? state.grants[id] : undefined;
}

/**
 * The status of the grant `id` at `nowMs`, walking its ancestry: a grant is revoked when it or an ancestor
 * was revoked, expired when it or an ancestor has expired (revocation is reported first). `CreateGrant`
 * bounds lineages to `KERNEL_LIMITS.grantDepth`; a longer one is not trusted and reads as unknown.
 */
export function grantStatus(state: Readonly<WorldState>, id: string, nowMs: number): GrantStatus {
  let expired = false;
  let depth = 0;
  for (let grant = findGrant(state, id); grant !== undefined; grant = parentOf(state, grant)) {
    if (++depth > KERNEL_LIMITS.grantDepth) return 'unknown';
    if (grant.revoked) return 'revoked';
    if (grant.expiresAt !== undefined && grant.expiresAt <= nowMs) expired = true;
  }
  if (depth === 0) return 'unknown';
  return expired ? 'expired' : 'live';
}

/** Number of grants from the root of `id`'s lineage down to `id` (1 for a root grant), counted up to one past the bound. */
export function grantDepth(state: Readonly<WorldState>, id: string): number {
  let depth = 0;
  for (let grant = findGrant(state, id); grant !== undefined && depth <= KERNEL_LIMITS.grantDepth; grant = parentOf(state, grant)) depth++;
  return depth;
}

function parentOf(state: Readonly<WorldState>, grant: Readonly<GrantRecord>): Readonly<GrantRecord> | undefined {
  return grant.parent === undefined ? undefined : findGrant(state, grant.parent);
}

/**
 * Is the token `jti` of the vault `vault` revoked? Revoked in that vault, or by a revocation logged before
 * revocation was vault-scoped (those count in every vault).
 */
export function tokenRevoked(state: Readonly<WorldState>, jti: string, vault: string): boolean {
  if (Object.hasOwn(state.revokedTokens, jti)) return true;
  const byVault = state.revokedTokensByVault;
  return byVault !== undefined && Object.hasOwn(byVault, vault) && Object.hasOwn(byVault[vault], jti);
}
