/**
 * Sessions: who a caller is. A bearer token opens a session for its subject; the owner of the data dir gets
 * a local-admin session without one, but only on a channel only the owner can reach.
 */
import { randomUUID } from 'node:crypto';
import { isWellFormedText, MAX_TOKEN_LIFETIME_S, type CapabilityClaims } from '../../protocol/capability.js';
import type { HostCore, Session } from './core.js';
import { AuthError } from '../auth/errors.js';
import { HostError } from './errors.js';

/** The principal of local-admin sessions. */
export const LOCAL_ADMIN = 'local-admin';

/**
 * Where a caller connects from, which decides what a missing token means.
 * - `owner`: a channel only the data dir's owner can open — the stdio of a process the owner spawned, the
 *   admin socket (a 0600 socket inside the 0700 data dir), the CLI in process. No token ⇒ local admin.
 * - `network`: anything reachable over a socket by others (WebSocket, HTTP, MCP over HTTP). No token ⇒ refused.
 */
export type Channel = 'owner' | 'network';

/** What a caller presents when it connects. */
export interface Credentials {
  /** A capability token; when given it decides the session on every channel. */
  token?: string;
  /** For a tokenless owner session: the vault to act in (default `default`). */
  vault?: string;
}

/**
 * Verify a bearer token and open a session for it. `audience` is the resource the face serves (RFC 8707): a
 * token bound to an audience (`aud`) is accepted only by that resource, so a token issued to an OAuth client
 * for `/mcp` opens nothing on any other face.
 */
export async function authenticate(core: HostCore, token: string, audience?: string): Promise<Session> {
  core.assertInService();
  try {
    const claims = await core.tokens.verify(token);
    if (claims.aud !== undefined && claims.aud !== audience) {
      throw new AuthError('ERR_AUDIENCE', 'the token is for another resource (aud)');
    }
    return { id: randomUUID(), principal: claims.sub, token, claims, local: false };
  } catch (err) {
    throw core.fail(err);
  }
}

/** An in-process session for the owner of the data dir: every permission in `vault`. */
export function localSession(core: HostCore, vault: string): Session {
  if (typeof vault !== 'string' || vault.length === 0 || !isWellFormedText(vault)) {
    throw new HostError('InvalidParams', 'vault must be a non-empty, well-formed string', { field: 'vault' });
  }
  const iat = Math.floor(core.now() / 1000);
  const claims: CapabilityClaims = {
    sub: LOCAL_ADMIN,
    vault,
    permissions: ['*'],
    iat,
    exp: iat + MAX_TOKEN_LIFETIME_S,
    jti: LOCAL_ADMIN,
    grant: LOCAL_ADMIN,
  };
  return { id: randomUUID(), principal: LOCAL_ADMIN, claims, local: true };
}

/** The one policy for every face: a token authenticates; no token is local admin on an owner channel only. */
export async function openSession(core: HostCore, channel: Channel, credentials: Credentials): Promise<Session> {
  if (credentials.token !== undefined) {
    if (typeof credentials.token !== 'string') throw new HostError('InvalidParams', 'token must be a string', { field: 'token' });
    return authenticate(core, credentials.token);
  }
  if (channel !== 'owner') {
    throw core.fail(new HostError('Unauthenticated', 'a bearer token is required', { reason: 'ERR_TOKEN_MISSING' }));
  }
  core.assertInService();
  return localSession(core, credentials.vault ?? 'default');
}
