/** `toka/capability/*`: grants and tokens. See docs/security-model.md. */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import { MAX_TOKEN_LIFETIME_S, type CapabilityClaims } from '../capability.js';
import type { ErrorData } from '../errors.js';
import type { GrantRecord } from '../kernel.js';
import type { MessageDirection, NoParams } from './common.js';

const ttlSeconds = z.number().int().min(1).max(MAX_TOKEN_LIFETIME_S).optional();
const alg = z.enum(['HS256', 'EdDSA']).optional();

export interface MintParams {
  /** Subject of the new grant and token. */
  subject: string;
  /** Must be covered by the caller's permissions. */
  permissions: string[];
  /** Token lifetime, an integer 1..1800 s (default 900). */
  ttlSeconds?: number;
  /** Signing algorithm (default HS256). */
  alg?: 'HS256' | 'EdDSA';
  /** Grant expiry, ms since the epoch (default: none). */
  grantExpiresAt?: number;
  /** Label shown in `toka/capability/list`. */
  label?: string;
}

export interface MintResult {
  /** The new token. Shown once; the host never logs it. */
  token: string;
  /** The new token's claims. */
  claims: CapabilityClaims;
  /** Id of the grant the token was minted from (revoke it to kill every token minted from it). */
  grant: string;
}

/** Create a grant and mint a token from it. Requires `capability:grant`. */
export namespace CapabilityMintRequest {
  export const method = 'toka/capability/mint' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<MintParams, MintResult, ErrorData>(method);
  export const paramsSchema = z.object({
    subject: z.string(),
    permissions: z.array(z.string()),
    ttlSeconds,
    alg,
    grantExpiresAt: z.number().optional(),
    label: z.string().optional(),
  });
}

export interface DelegateParams {
  /** Subject of the child token. */
  subject: string;
  /** ⊆ the caller's token permissions. */
  permissions: string[];
  /** An integer 1..1800 s (default 900); never past the caller's own `exp`. */
  ttlSeconds?: number;
  /** Signing algorithm (default HS256). */
  alg?: 'HS256' | 'EdDSA';
}

export interface DelegateResult {
  /** The child token. Shown once; the host never logs it. */
  token: string;
  /** The child token's claims. */
  claims: CapabilityClaims;
}

/** Mint a narrower child of the caller's token. Requires `capability:delegate`; depth ≤ 5. */
export namespace CapabilityDelegateRequest {
  export const method = 'toka/capability/delegate' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<DelegateParams, DelegateResult, ErrorData>(method);
  export const paramsSchema = z.object({ subject: z.string(), permissions: z.array(z.string()), ttlSeconds, alg });
}

export interface RevokeParams {
  /** Revoke a token by id. */
  jti?: string;
  /** Revoke a token given in full (must be of the caller's vault). */
  token?: string;
  /** Revoke a grant: every token minted from it and delegated below those dies. */
  grant?: string;
  /** Why, kept in the revocation record. */
  reason?: string;
}

export interface RevokeResult {
  /** Log sequence number of the revocation record. */
  seq: number;
}

/**
 * Revoke exactly one of: a token (by jti or in full) or a grant. Requires `capability:revoke` (a token may
 * always revoke itself). Giving none or several is InvalidParams with `data.field: "jti"`.
 */
export namespace CapabilityRevokeRequest {
  export const method = 'toka/capability/revoke' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<RevokeParams, RevokeResult, ErrorData>(method);
  export const paramsSchema = z
    .object({ jti: z.string().optional(), token: z.string().optional(), grant: z.string().optional(), reason: z.string().optional() })
    .refine((p) => [p.jti, p.token, p.grant].filter((v) => v !== undefined).length === 1, {
      message: 'give exactly one of jti, token, grant',
      path: ['jti'],
    });
}

export interface ListResult {
  /** The grants of the caller's vault, oldest first. */
  grants: GrantRecord[];
}

/** List the grants of the caller's vault. Requires `capability:read`. */
export namespace CapabilityListRequest {
  export const method = 'toka/capability/list' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<NoParams, ListResult, ErrorData>(method);
  export const paramsSchema = z.object({});
}
