/**
 * The live MCP Streamable HTTP sessions of one mount: who owns each, the caps on how many may live, and
 * idleness measured on the injected clock.
 *
 * - A session belongs to the token that opened it: its vault, its subject and its grant lineage (the
 *   `grant` claim, shared by every token delegated below the grant's tokens). A request on it with a token
 *   of another vault, subject or lineage finds no session, exactly as for an unknown id.
 * - At most `maxSessions` live at once, and at most `maxPerPrincipal` of one (vault, subject): subjects are
 *   not global names, so a same-named subject of another vault has its own count.
 * - A session is quiet while none of its responses is open (a POST being answered, a GET stream); a session
 *   quiet for `idleMs` (on `now`) is closed: by the sweep, or at once when a request names it.
 * - Clients that never send DELETE leave sessions behind, so a cap never locks a subject out: at a cap, the
 *   session quiet the longest (of the subject, for the per-subject cap; of anyone, for the global cap) is
 *   reclaimed — closed to make room — once it has been quiet for `reclaimAfterMs`. Only when none has is the
 *   new session refused (429 or 503), with `Retry-After`: the seconds until one will have been.
 */
import { ErrorCodes } from '../../../protocol/errors.js';
import type { Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import type { NodeHttpTransport } from './http-transport.js';
import type { McpSessionServer } from './server.js';

export interface LiveSession {
  readonly transport: NodeHttpTransport;
  readonly mcp: McpSessionServer;
  /** The owner's host session; its token and claims follow the latest request of the owner. */
  readonly session: Session;
  /** When the last request named it or its last open response ended, on the table's clock. */
  lastSeen: number;
  /** Its responses now open (POSTs being answered, GET streams): while any is, the session is not quiet. */
  responses: number;
}

export interface SessionTableOptions {
  logger: Logger;
  maxSessions: number;
  maxPerPrincipal: number;
  idleMs: number;
  /** At a cap, a session quiet this long is closed to make room for a new one. */
  reclaimAfterMs: number;
  /** The clock idleness is measured on (ms since the epoch). */
  now: () => number;
}

/** Why an `initialize` may not open a session now: the HTTP status, the JSON-RPC error and when to retry. */
export interface Refusal {
  status: 429 | 503;
  error: { code: number; message: string; data: Record<string, unknown> };
  retryAfterSeconds: number;
}

export class SessionTable {
  private readonly live = new Map<string, LiveSession>();
  /** Callers whose initialize is in progress: they hold a slot until their session has registered (or failed). */
  private readonly opening = new Set<Session>();

  constructor(private readonly options: SessionTableOptions) {}

  get size(): number {
    return this.live.size;
  }

  /**
   * Why `caller` may not open another session now, or null when it may. Idle sessions are swept first; at a
   * cap, the session quiet the longest is reclaimed when it has been quiet for `reclaimAfterMs`.
   */
  admission(caller: Session): Refusal | null {
    const { maxSessions, maxPerPrincipal } = this.options;
    this.sweep();
    if (this.live.size + this.opening.size >= maxSessions && !this.reclaim([...this.live])) {
      return {
        status: 503,
        error: {
          code: ErrorCodes.LimitExceeded,
          message: `more than ${maxSessions} MCP sessions`,
          data: { name: 'LimitExceeded', limit: 'mcp.maxSessions', max: maxSessions },
        },
        retryAfterSeconds: this.secondsUntilReclaimable([...this.live.values()]),
      };
    }
    const own = [...this.live].filter(([, l]) => samePrincipal(l.session, caller));
    const openingOwn = [...this.opening].filter((s) => samePrincipal(s, caller)).length;
    if (own.length + openingOwn >= maxPerPrincipal && !this.reclaim(own)) {
      return {
        status: 429,
        error: {
          code: ErrorCodes.LimitExceeded,
          message: `more than ${maxPerPrincipal} MCP sessions of ${caller.principal} in vault ${caller.claims.vault}`,
          data: { name: 'LimitExceeded', limit: 'mcp.maxSessionsPerPrincipal', max: maxPerPrincipal },
        },
        retryAfterSeconds: this.secondsUntilReclaimable(own.map(([, l]) => l)),
      };
    }
    return null;
  }

  /** Close the session of `candidates` quiet the longest, if it has been quiet for `reclaimAfterMs`. */
  private reclaim(candidates: [string, LiveSession][]): boolean {
    const now = this.options.now();
    let oldest: [string, LiveSession] | undefined;
    for (const entry of candidates) {
      const live = entry[1];
      if (live.responses > 0 || now - live.lastSeen < this.options.reclaimAfterMs) continue;
      if (!oldest || live.lastSeen < oldest[1].lastSeen) oldest = entry;
    }
    if (!oldest) return false;
    this.options.logger.info('MCP session reclaimed at the session cap', { session: oldest[0], quietMs: now - oldest[1].lastSeen });
    void this.end(oldest[0], oldest[1]);
    return true;
  }

  /** Hold a slot for `caller` while its initialize runs; the returned function releases it. */
  reserve(caller: Session): () => void {
    this.opening.add(caller);
    return () => this.opening.delete(caller);
  }

  add(id: string, live: LiveSession): void {
    this.live.set(id, live);
  }

  /**
   * The live session `id` when `caller` owns it, marked as seen; undefined for an unknown id, a session of
   * another owner, or one idle past the timeout (which is closed now). The owner may present a fresher token
   * of the same lineage: later host calls verify that one.
   */
  claim(id: string, caller: Session): LiveSession | undefined {
    const live = this.live.get(id);
    if (!live || !sameLineage(live.session, caller)) return undefined;
    const now = this.options.now();
    if (this.idle(live, now)) {
      this.options.logger.info('MCP session idle: closing', { session: id });
      void this.end(id, live);
      return undefined;
    }
    live.session.token = caller.token;
    live.session.claims = caller.claims;
    live.lastSeen = now;
    return live;
  }

  /** Close every session idle past the timeout. */
  sweep(): void {
    const now = this.options.now();
    for (const [id, live] of this.live) {
      if (this.idle(live, now)) {
        this.options.logger.info('MCP session idle: closing', { session: id });
        void this.end(id, live);
      }
    }
  }

  /** Forget `live` (if `id` still names it) and close it. */
  async end(id: string, live: LiveSession): Promise<void> {
    if (this.live.get(id) !== live) return;
    this.live.delete(id);
    await live.mcp.close().catch((err: unknown) => this.options.logger.warn('MCP session close failed', { err }));
  }

  /** Close every session. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.live].map(([id, live]) => this.end(id, live)));
  }

  private idle(live: LiveSession, now: number): boolean {
    return live.responses === 0 && now - live.lastSeen > this.options.idleMs;
  }

  /**
   * Seconds (at least 1) until the first quiet session of `sessions` may be reclaimed; when none is quiet
   * now, the reclaim delay itself (a session can be reclaimed that long after its last response ends).
   */
  private secondsUntilReclaimable(sessions: LiveSession[]): number {
    const now = this.options.now();
    let soonest = this.options.reclaimAfterMs;
    for (const live of sessions) {
      if (live.responses === 0) soonest = Math.min(soonest, live.lastSeen + this.options.reclaimAfterMs - now);
    }
    return Math.max(1, Math.ceil(soonest / 1000));
  }
}

/** Same vault and subject: one principal (subjects are named per vault). */
function samePrincipal(a: Session, b: Session): boolean {
  return a.claims.vault === b.claims.vault && a.principal === b.principal;
}

/** Same principal and the same grant lineage. */
function sameLineage(a: Session, b: Session): boolean {
  return samePrincipal(a, b) && a.claims.grant === b.claims.grant;
}
