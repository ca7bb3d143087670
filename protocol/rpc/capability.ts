/** `toka/capability/*`: grants and tokens. See docs/security-model.md. */
import { RequestType } from 'vscode-jsonrpc';
import type { CapabilityClaims } from '../capability.js';
import type { ErrorData } from '../errors.js';
import type { GrantRecord } from '../kernel.js';
import type { MessageDirection } from './common.js';

export interface MintParams {
  /** Subject of the new grant and token. */
  subject: string;
  /** Must be covered by the caller's permissions. */
  permissions: string[];
  /** Token lifetime, 1..1800 s (default 900). */
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
  claims: CapabilityClaims;
  /** Id of the grant the token was minted from (revoke it to kill every token minted from it). */
  grant: string;
}

/** Create a grant and mint a token from it. Requires `capability:grant`. */
export namespace CapabilityMintRequest {
  export const method = 'toka/capability/mint' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<MintParams, MintResult, ErrorData>(method);
}

export interface DelegateParams {
  subject: string;
  /** ⊆ the caller's token permissions. */
  permissions: string[];
  /** 1..1800 s (default 900); never past the caller's own `exp`. */
  ttlSeconds?: number;
  alg?: 'HS256' | 'EdDSA';
}

export interface DelegateResult {
  token: string;
  claims: CapabilityClaims;
}

/** Mint a narrower child of the caller's token. Requires `capability:delegate`; depth ≤ 5. */
export namespace CapabilityDelegateRequest {
  export const method = 'toka/capability/delegate' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<DelegateParams, DelegateResult, ErrorData>(method);
}

export interface RevokeParams {
  /** Revoke a token by id. */
  jti?: string;
  /** Revoke a token given in full (must be of the caller's vault). */
  token?: string;
  /** Revoke a grant: every token minted from it and delegated below those dies. */
  grant?: string;
  reason?: string;
}

export interface RevokeResult {
  /** Log sequence number of the revocation record. */
  seq: number;
}

/** Revoke exactly one of: a token (by jti or in full) or a grant. Requires `capability:revoke` (a token may always revoke itself). */
export namespace CapabilityRevokeRequest {
  export const method = 'toka/capability/revoke' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<RevokeParams, RevokeResult, ErrorData>(method);
}

export interface ListResult {
  grants: GrantRecord[];
}

/** List the grants of the caller's vault. Requires `capability:read`. */
export namespace CapabilityListRequest {
  export const method = 'toka/capability/list' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<Record<string, never>, ListResult, ErrorData>(method);
}
