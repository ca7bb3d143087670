/**
 * `toka/admin/*`: the data dir owner's local admin socket (`<data>/admin.sock`, mode 0600). Whoever can open
 * the socket can read `keys.json` too, so the socket grants exactly that trust. A connection must first bind
 * a session with `toka/admin/open`; then every `toka/*` request on it runs as that session.
 * See docs/operations.md.
 */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { MessageDirection } from './common.js';

export interface AdminOpenParams {
  /** Act as the local admin of this (non-empty) vault: every permission in it, no token, no rate limit. */
  vault?: string;
  /** Act as this token's subject instead (verified, rate-limited like any token). Exactly one of `vault`, `token`. */
  token?: string;
}

export interface AdminOpenResult {
  /** The origin of every operation sent on this connection. */
  principal: string;
  /** The vault the session acts in. */
  vault: string;
  /** The permissions held, `area:verb` with wildcards. */
  permissions: string[];
  /** True for a `vault` (local admin) session. */
  local: boolean;
}

/**
 * Bind the connection's session; must be the first request and is accepted once.
 * Errors: InvalidParams (neither or both of `vault`, `token`: `data.field: "vault"`), Unauthenticated (bad
 * token), Conflict (session already bound), Unavailable (host shutting down).
 */
export namespace AdminOpenRequest {
  export const method = 'toka/admin/open' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<AdminOpenParams, AdminOpenResult, ErrorData>(method);
  export const paramsSchema = z
    .object({ vault: z.string().min(1).optional(), token: z.string().optional() })
    .refine((p) => (p.vault === undefined) !== (p.token === undefined), { message: 'give exactly one of vault, token', path: ['vault'] });
}
