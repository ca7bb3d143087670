/**
 * What a stdio-style MCP session (`toka mcp`, in process or attached to a running host over `<data>/mcp.sock`)
 * authenticates with, and how it stays authenticated for as long as the client keeps it open.
 *
 * - `{ token }`: a capability token. It lives at most 30 minutes; once it expires every call is refused with
 *   Unauthenticated. Fine for a short session, or for a caller that is not the data dir's owner.
 * - `{ grant, vault }`: a grant of `vault`, named by id, used by the owner of the data dir (whoever can run
 *   `toka mcp` on it or reach its 0600 socket — the same trust as reading `keys.json`). The session mints a
 *   short-lived token from the grant (`host.issueToken`, as the agent runtime does for its agents) and mints the
 *   next one before the current one expires: before any message is handled when less than a third of its
 *   lifetime is left, and on a timer so that an idle session's resource subscriptions keep their token too.
 *   Revoking the grant ends it: tokens minted from a revoked grant are dead on arrival, so the next call is
 *   Unauthenticated (`ERR_TOKEN_REVOKED`). The grant id is a name, not a secret: the authority to mint is the
 *   owner's channel, and the session acts as the grant's subject with exactly the grant's permissions.
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';
import { MAX_TOKEN_LIFETIME_S } from '../../../protocol/capability.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';

/** Lifetime of the tokens a grant credential mints, seconds (default). */
export const DEFAULT_GRANT_TOKEN_TTL_S = 900;

export type McpCredential = { token: string } | { grant: string; vault: string; ttlSeconds?: number };

/** Check a credential decoded from outside (the socket handshake, flags): a typed error names what is wrong. */
export function parseCredential(value: unknown): McpCredential {
  if (typeof value !== 'object' || value === null) throw new HostError('InvalidParams', 'credential must be an object', { field: 'credential' });
  const v = value as Record<string, unknown>;
  const text = (field: string): string => {
    const x = v[field];
    if (typeof x !== 'string' || x === '' || x.length > 8192) throw new HostError('InvalidParams', `${field} must be a non-empty string`, { field });
    return x;
  };
  if (Object.hasOwn(v, 'token')) return { token: text('token') };
  if (!Object.hasOwn(v, 'grant')) throw new HostError('InvalidParams', 'give a token or a grant', { field: 'token' });
  const ttl = v.ttlSeconds;
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_LIFETIME_S)) {
    throw new HostError('InvalidParams', `ttlSeconds must be an integer 1..${MAX_TOKEN_LIFETIME_S}`, { field: 'ttlSeconds' });
  }
  return { grant: text('grant'), vault: text('vault'), ...(ttl !== undefined ? { ttlSeconds: ttl } : {}) };
}

/** A host session opened from a credential, kept fresh when the credential is a grant. */
export class McpCredentialSession {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | null = null;
  private closed = false;

  private constructor(
    private readonly host: Host,
    readonly session: Session,
    private readonly grant: { grant: string; vault: string; ttlSeconds: number } | null,
  ) {}

  static async open(host: Host, credential: McpCredential): Promise<McpCredentialSession> {
    if ('token' in credential) return new McpCredentialSession(host, await host.authenticate(credential.token), null);
    const grant = { grant: credential.grant, vault: credential.vault, ttlSeconds: credential.ttlSeconds ?? DEFAULT_GRANT_TOKEN_TTL_S };
    const issued = await host.issueToken(host.localSession(grant.vault), { grant: grant.grant, ttlSeconds: grant.ttlSeconds });
    const fresh = new McpCredentialSession(host, await host.authenticate(issued.token), grant);
    fresh.schedule();
    return fresh;
  }

  /** Whether the session renews itself (a grant credential). */
  get renews(): boolean {
    return this.grant !== null;
  }

  /**
   * Renew the token now if less than a third of its lifetime is left (grant credentials only). A failed
   * renewal is logged and the current token kept: the host then answers the next call as that token deserves.
   */
  fresh(): Promise<void> {
    if (!this.grant || this.closed || !this.due()) return Promise.resolve();
    this.renewing ??= this.renew().finally(() => (this.renewing = null));
    return this.renewing;
  }

  /**
   * The host refused the current token (revoked or expired before its renewal was due): renew now (grant
   * credentials only). A token minted from a revoked grant is refused in turn, so this never revives a grant.
   */
  refused(): Promise<void> {
    if (!this.grant || this.closed) return Promise.resolve();
    this.renewing ??= this.renew().finally(() => (this.renewing = null));
    return this.renewing;
  }

  /** Less than a third of the current token's lifetime is left. */
  private due(): boolean {
    const { exp, iat } = this.session.claims;
    return exp * 1000 - this.host.now() <= ((exp - iat) * 1000) / 3;
  }

  private async renew(): Promise<void> {
    const grant = this.grant!;
    try {
      const issued = await this.host.issueToken(this.host.localSession(grant.vault), { grant: grant.grant, ttlSeconds: grant.ttlSeconds });
      this.session.token = issued.token;
      this.session.claims = issued.claims;
      this.host.logger.debug('MCP session token renewed from its grant', { grant: grant.grant, exp: issued.claims.exp });
    } catch (err) {
      this.host.logger.warn('MCP session token renewal failed', { grant: grant.grant, err });
    }
    this.schedule();
  }

  /**
   * Renew on a (real-time, unref'd) timer at two thirds of the token's lifetime; a timer that finds the
   * renewal not yet due (the host's clock is not the timer's) sets the next one.
   */
  private schedule(): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    const { exp, iat } = this.session.claims;
    const dueMs = exp * 1000 - ((exp - iat) * 1000) / 3 - this.host.now();
    this.timer = setTimeout(() => (this.due() ? void this.fresh() : this.schedule()), Math.max(1000, dueMs));
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}

/**
 * Wraps a transport so that its session's credential stays fresh: each incoming message waits (in order) for
 * `credential.fresh()`, and an outgoing Unauthenticated error (a token revoked or expired before its renewal
 * was due) makes the credential renew at once, so the next call has a live token while the grant lives.
 */
export class FreshTransport implements Transport {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: Transport,
    private readonly credential: McpCredentialSession,
  ) {}

  set onclose(handler: (() => void) | undefined) {
    this.inner.onclose = handler;
  }
  set onerror(handler: ((error: Error) => void) | undefined) {
    this.inner.onerror = handler;
  }
  set onmessage(handler: ((message: JSONRPCMessage, extra?: MessageExtraInfo) => void) | undefined) {
    this.inner.onmessage =
      handler &&
      ((message, extra) => {
        this.queue = this.queue
          .then(() => this.credential.fresh())
          .then(() => handler(message, extra))
          .catch((err: unknown) => this.inner.onerror?.(err instanceof Error ? err : new Error(String(err))));
      });
  }
  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }
  start(): Promise<void> {
    return this.inner.start();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if ('error' in message && message.error.code === ErrorCodes.Unauthenticated) void this.credential.refused();
    return this.inner.send(message, options);
  }
}
