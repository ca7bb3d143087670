/**
 * The host: the one application API every face calls (CLI, stdio, WebSocket, HTTP, MCP, A2A, runtime).
 * It owns the kernel, the event log and the token service, and it alone authorises, rate-limits and
 * appends. Flow of one operation: verify token (cached) → rate limit → assign id/time/new ids →
 * kernel.execute → durable append → answer (subscribers are fed by the log after commit).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../../protocol/canonical.js';
import { MAX_TOKEN_LIFETIME_S, permits, type CapabilityClaims } from '../../protocol/capability.js';
import type { EventFilter, LogRecord } from '../../protocol/events.js';
import {
  ID_BUDGET,
  type AgentRecord,
  type GrantRecord,
  type Operation,
  type OperationEnvelope,
  type WorldState,
} from '../../protocol/kernel.js';
import type { EventQuery, SubscribeParams } from '../../protocol/rpc/events.js';
import type { LogVerifyResult } from '../../protocol/rpc/host.js';
import type { DelegateParams, DelegateResult, MintParams, MintResult, RevokeParams } from '../../protocol/rpc/capability.js';
import type { SubmitResult } from '../../protocol/rpc/kernel.js';
import type { AgentView, StateQuery, StateResult } from '../../protocol/rpc/state.js';
import { KeyRing } from '../auth/keyring.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { TokenService, type RevocationView } from '../auth/tokens.js';
import { Kernel, type OpcodeHandler } from '../kernel/kernel.js';
import type { EventLog, SnapshotInput, Subscription, SubscriptionEnd } from '../store/event-log.js';
import { stateDigest } from '../store/hash.js';
import { openEventLog } from '../store/index.js';
import { HostError } from './errors.js';
import { DataDirLock } from './lock.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';

export interface HostOptions {
  /** Data dir (SQLite log `events.db`, key ring `keys.json`); null = memory log and an ephemeral key (tests). */
  dataDir: string | null;
  /** Open without the writer lock and refuse every write (CLI read commands next to a running host). */
  readOnly?: boolean;
  /** Clock, ms since the epoch. */
  now?: () => number;
  /** Environment (TOKA_HS256_SECRET ...). Defaults to process.env. */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** Per-subject rate limit; false disables it. Default 200/s, burst 400. */
  rateLimit?: { ratePerSec: number; burst: number } | false;
  /**
   * Write a snapshot after at least this many events (default 1000); for a large state, after at least one
   * event per `SNAPSHOT_CHARS_PER_EVENT` characters of the previous snapshot.
   */
  snapshotEvery?: number;
  /** Extra opcode handlers (registered before replay, in order). */
  handlers?: OpcodeHandler[];
}

/** A caller: a verified token bound to a connection. `principal` is the message origin for every op. */
export interface Session {
  readonly id: string;
  /** The subject that authenticated; the origin of every operation sent on this session. */
  readonly principal: string;
  /** The bearer token (never logged). Undefined for the in-process local admin. */
  token?: string;
  /** Claims as of the last verification. */
  claims: CapabilityClaims;
  /** True for the in-process local admin (owner of the data dir): no token, no rate limit. */
  readonly local: boolean;
}

export type { SubmitResult };

/** Progress reporting and cancellation for long host calls. */
export interface VerifyProgress {
  /** `fraction` in 0..1. */
  onProgress?(fraction: number, message: string): void;
  signal?: AbortSignal;
}

const LOCAL_ADMIN = 'local-admin';
/** Longest agent id or event type name a query may name. */
const MAX_ID_CHARS = 256;
/** Most event types one query or subscription may list. */
const MAX_EVENT_TYPES = 32;

/**
 * Records per read during replay. Small enough that a page's parsed events die young (a page of 10,000 kept
 * them alive long enough to be promoted, and replay spent its time in GC); large enough to amortise a query.
 */
const REPLAY_PAGE = 1_000;

/**
 * Snapshot cadence for a large state: encoding a snapshot costs time proportional to its size, so the next
 * one waits for at least one event per this many characters of the last. That keeps snapshot encoding under
 * roughly a tenth of submit time however large the state grows (measured: ~4 ns per character encoded,
 * ~20 µs per submitted operation), while replay after a restart stays proportional to the state size.
 */
export const SNAPSHOT_CHARS_PER_EVENT = 512;

export class Host {
  readonly metrics = new Metrics();
  private readonly subscriptions = new Set<Subscription>();
  private queuedSeq: number;
  private sinceSnapshot = 0;
  /** Length of the last snapshot written, which spaces out the next one (see `SNAPSHOT_CHARS_PER_EVENT`). */
  private lastSnapshotChars = 0;
  private failure: Error | null = null;
  private closing = false;

  private constructor(
    private readonly kernel: Kernel,
    readonly log: EventLog,
    readonly keyRing: KeyRing,
    readonly tokens: TokenService,
    private readonly limiter: RateLimiter | null,
    private readonly lock: DataDirLock | null,
    private readonly options: Required<Pick<HostOptions, 'now' | 'snapshotEvery'>> & HostOptions,
    readonly logger: Logger,
    readonly startedAt: number,
  ) {
    this.queuedSeq = log.head().seq;
  }

  static async open(options: HostOptions): Promise<Host> {
    const now = options.now ?? Date.now;
    const logger = options.logger ?? createLogger();
    const env = options.env ?? process.env;
    let lock: DataDirLock | null = null;
    let log: EventLog;
    let keyRing: KeyRing;
    if (options.dataDir === null) {
      log = openEventLog({ kind: 'memory' });
      keyRing = await KeyRing.open({
        env: { ...env, TOKA_HS256_SECRET: env.TOKA_HS256_SECRET ?? randomBytes(32).toString('base64url') },
        now,
      });
    } else {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      if (!options.readOnly) lock = DataDirLock.acquire(options.dataDir);
      try {
        log = openEventLog({ kind: 'sqlite', path: join(options.dataDir, 'events.db'), readOnly: options.readOnly });
        keyRing = await KeyRing.open({ file: join(options.dataDir, 'keys.json'), env, now });
      } catch (err) {
        lock?.release();
        throw err;
      }
    }
    const kernel = await Host.replay(log, options.handlers ?? [], 'snapshot', {}, logger);
    const revocation: RevocationView = {
      isTokenRevoked: (jti) => Object.hasOwn(kernel.state.revokedTokens, jti),
      grantState: (id, nowMs) => grantState(kernel.state.grants[id], nowMs),
    };
    const tokens = new TokenService({ keyRing, revocation, now });
    const rate = options.rateLimit ?? { ratePerSec: 200, burst: 400 };
    const limiter = rate === false ? null : new RateLimiter({ ...rate, now });
    const host = new Host(
      kernel,
      log,
      keyRing,
      tokens,
      limiter,
      lock,
      { ...options, now, snapshotEvery: options.snapshotEvery ?? 1000 },
      logger,
      now(),
    );
    return host;
  }

  /**
   * Rebuild a kernel from the log: from the newest snapshot whose digest checks out (`snapshot`),
   * or from the first record (`zero`).
   */
  static async replay(
    log: EventLog,
    handlers: OpcodeHandler[],
    from: 'snapshot' | 'zero',
    progress: VerifyProgress = {},
    logger?: Logger,
  ): Promise<Kernel> {
    let kernel = new Kernel();
    let afterSeq = 0;
    if (from === 'snapshot') {
      try {
        const snap = await log.latestSnapshot();
        if (snap) {
          kernel = new Kernel({ state: snap.state });
          afterSeq = snap.seq;
        }
      } catch (err) {
        // The log refuses a snapshot that no longer matches its digest: the log itself is the truth.
        logger?.warn('newest snapshot rejected; replaying from the first record', { err });
      }
    }
    for (const handler of handlers) kernel.register(handler);
    const headSeq = log.head().seq;
    for (;;) {
      if (progress.signal?.aborted) throw new HostError('RequestCancelled', 'replay cancelled');
      const page = await log.read({ afterSeq, limit: REPLAY_PAGE });
      for (const record of page) kernel.apply(record.event);
      if (page.length < REPLAY_PAGE) return kernel;
      afterSeq = page[page.length - 1].seq;
      progress.onProgress?.(afterSeq / Math.max(headSeq, 1), `replayed ${afterSeq} of ${headSeq}`);
      // A cancellable replay yields between pages so a cancellation (and other requests) can get in.
      if (progress.signal) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  // ---- sessions ------------------------------------------------------------------------------------

  /** Verify a bearer token and open a session for it. */
  async authenticate(token: string): Promise<Session> {
    try {
      const claims = await this.tokens.verify(token);
      return { id: randomUUID(), principal: claims.sub, token, claims, local: false };
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** An in-process session for the owner of the data dir (CLI, the stdio owner): every permission in `vault`. */
  localSession(vault: string): Session {
    const iat = Math.floor(this.options.now() / 1000);
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

  /** Re-verify the session's token (cached; revocation and expiry apply at once) and charge the rate limit. */
  async check(session: Session): Promise<CapabilityClaims> {
    const claims = await this.verified(session);
    if (!session.local) {
      try {
        this.limiter?.take(claims.sub);
      } catch (err) {
        throw this.fail(err);
      }
    }
    return claims;
  }

  /** Re-verify the session's token (cached; revocation and expiry apply at once), without charging the rate limit. */
  private async verified(session: Session): Promise<CapabilityClaims> {
    if (this.closing) throw new HostError('Unavailable', 'host is shutting down');
    if (session.local) {
      const iat = Math.floor(this.options.now() / 1000);
      session.claims = { ...session.claims, iat, exp: iat + MAX_TOKEN_LIFETIME_S };
      return session.claims;
    }
    try {
      session.claims = await this.tokens.verify(session.token!);
      return session.claims;
    } catch (err) {
      throw this.fail(err);
    }
  }

  // ---- operations ----------------------------------------------------------------------------------

  async submit(session: Session, op: Operation): Promise<SubmitResult> {
    const claims = await this.check(session);
    return this.execute(session.principal, claims, op);
  }

  private async execute(origin: string, claims: CapabilityClaims, op: Operation): Promise<SubmitResult> {
    if (this.options.readOnly) throw new HostError('Conflict', 'host opened read-only');
    if (this.failure) throw new HostError('Unavailable', 'host is out of service after a failed append; restart it');
    const started = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < ID_BUDGET; i++) ids.push(randomUUID());
    const envelope: OperationEnvelope = { id: randomUUID(), at: this.options.now(), origin, claims, ids, op };
    const opType = typeof op === 'object' && op !== null && typeof op.type === 'string' ? op.type : 'invalid';
    let events;
    try {
      events = this.kernel.execute(envelope);
    } catch (err) {
      throw this.fail(err, opType);
    }
    this.queuedSeq += events.length;
    const snapshot = this.dueSnapshot(events.length);
    let records: LogRecord[];
    try {
      records = await this.log.append(events);
    } catch (err) {
      this.failure = err as Error;
      this.logger.error('event log append failed; host out of service', { err });
      throw this.fail(new HostError('Unavailable', 'event log append failed'), opType);
    }
    if (snapshot) void this.writeSnapshot(snapshot);
    this.metrics.operation(opType, performance.now() - started);
    return { opId: envelope.id, records };
  }

  /**
   * Capture the state for a snapshot when one is due: encoded right here, synchronously, so it matches
   * `queuedSeq` (the encoding is the copy; nothing can change the state between).
   */
  private dueSnapshot(added: number): SnapshotInput | null {
    this.sinceSnapshot += added;
    if (this.sinceSnapshot < Math.max(this.options.snapshotEvery, Math.ceil(this.lastSnapshotChars / SNAPSHOT_CHARS_PER_EVENT))) {
      return null;
    }
    this.sinceSnapshot = 0;
    const canonicalState = canonicalJson(this.kernel.state);
    this.lastSnapshotChars = canonicalState.length;
    return { seq: this.queuedSeq, canonicalState };
  }

  private async writeSnapshot(snap: SnapshotInput): Promise<void> {
    try {
      await this.log.writeSnapshot(snap);
    } catch (err) {
      this.logger.warn('snapshot write failed', { err, seq: snap.seq });
    }
  }

  // ---- queries -------------------------------------------------------------------------------------

  async getState(session: Session, query: StateQuery = {}): Promise<StateResult> {
    const claims = await this.check(session);
    this.require(claims, 'state:read');
    const state = this.kernel.state;
    const limit = boundedInt(query.limit, 1, 500, 100, 'limit');
    const matching: AgentRecord[] = [];
    for (const a of Object.values(state.agents)) {
      if (a.vault !== claims.vault) continue;
      if (query.agent !== undefined && a.id !== query.agent) continue;
      if (query.parent !== undefined && a.parent !== query.parent) continue;
      if (query.status !== undefined && a.status !== query.status) continue;
      matching.push(a);
    }
    matching.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let start = 0;
    if (query.cursor !== undefined) {
      const idx = matching.findIndex((a) => a.id === query.cursor);
      if (idx < 0) throw new HostError('InvalidParams', 'unknown cursor', { field: 'cursor' });
      start = idx + 1;
    }
    const end = Math.min(start + limit, matching.length);
    const page: AgentView[] = [];
    for (let i = start; i < end; i++) {
      const a = matching[i];
      const queue = Object.hasOwn(state.tasks, a.id) ? state.tasks[a.id] : undefined;
      const summary: AgentView = {
        id: a.id,
        parent: a.parent,
        vault: a.vault,
        name: a.name,
        status: a.status,
        createdAt: a.createdAt,
        queuedTasks: queue?.length ?? 0,
        observations: Object.hasOwn(state.observations, a.id) ? state.observations[a.id] : 0,
      };
      if (query.includeTasks) summary.tasks = queue ? queue.slice() : [];
      page.push(summary);
    }
    const result: StateResult = { seq: this.queuedSeq, agents: page };
    if (end < matching.length) result.nextCursor = page[page.length - 1].id;
    return result;
  }

  async queryEvents(session: Session, query: EventQuery = {}): Promise<LogRecord[]> {
    const claims = await this.check(session);
    this.require(claims, 'events:read');
    const limit = boundedInt(query.limit, 1, 1000, 100, 'limit');
    const afterSeq = boundedInt(query.afterSeq, 0, Number.MAX_SAFE_INTEGER, 0, 'afterSeq');
    return this.log.read({ afterSeq, limit, filter: this.vaultFilter(claims, query) });
  }

  /**
   * Subscribe to the vault's events after `afterSeq`. The token is re-checked before each delivery:
   * once it expires or is revoked the subscription ends with reason `unauthenticated`.
   */
  async subscribe(
    session: Session,
    query: SubscribeParams & { bufferLimit?: number },
    listener: {
      onRecord(record: LogRecord): void | Promise<void>;
      onEnd(end: SubscriptionEnd | { reason: 'unauthenticated' }): void;
    },
  ): Promise<Subscription> {
    const claims = await this.check(session);
    this.require(claims, 'events:read');
    const afterSeq = boundedInt(query.afterSeq, 0, Number.MAX_SAFE_INTEGER, 0, 'afterSeq');
    let sub: Subscription | null = null;
    const end = () => {
      if (sub && this.subscriptions.delete(sub)) this.metrics.subscribers(-1);
    };
    sub = this.log.subscribe(
      { afterSeq, filter: this.vaultFilter(claims, query), bufferLimit: query.bufferLimit },
      {
        onRecord: async (record) => {
          if (!session.local) {
            try {
              await this.tokens.verify(session.token!);
            } catch {
              sub?.unsubscribe();
              end();
              listener.onEnd({ reason: 'unauthenticated' });
              return;
            }
          }
          await listener.onRecord(record);
        },
        onEnd: (e) => {
          end();
          listener.onEnd(e);
        },
      },
    );
    const handle: Subscription = {
      unsubscribe: () => {
        sub?.unsubscribe();
        end();
      },
    };
    this.subscriptions.add(sub);
    this.metrics.subscribers(+1);
    return handle;
  }

  // ---- capabilities --------------------------------------------------------------------------------

  /** Create a grant for `subject` (⊆ the caller's permissions) and mint a token from it. */
  async mint(session: Session, request: MintParams): Promise<MintResult> {
    const claims = await this.check(session);
    const result = await this.execute(session.principal, claims, {
      type: 'CreateGrant',
      subject: request.subject,
      permissions: request.permissions,
      expiresAt: request.grantExpiresAt,
      label: request.label,
    });
    const grant = (result.records[result.records.length - 1].event as unknown as { grant: GrantRecord }).grant;
    try {
      const minted = await this.tokens.mint({
        sub: grant.subject,
        vault: grant.vault,
        permissions: grant.permissions,
        grant: grant.id,
        ttlSeconds: request.ttlSeconds ?? 900,
        alg: request.alg,
      });
      return { ...minted, grant: grant.id };
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Mint a narrower child of the session's token (recorded as CapabilityDelegated). */
  async delegate(session: Session, request: DelegateParams): Promise<DelegateResult> {
    const claims = await this.check(session);
    const nowS = Math.floor(this.options.now() / 1000);
    const ttl = boundedInt(request.ttlSeconds, 1, MAX_TOKEN_LIFETIME_S, 900, 'ttlSeconds');
    const exp = Math.min(claims.exp, nowS + ttl);
    const result = await this.execute(session.principal, claims, {
      type: 'DelegateCapability',
      subject: request.subject,
      permissions: request.permissions,
      exp,
    });
    const jti = (result.records[result.records.length - 1].event as unknown as { jti: string }).jti;
    try {
      return await this.tokens.delegate(claims, { sub: request.subject, permissions: request.permissions, exp, jti, alg: request.alg });
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Revoke a token (by jti or in full) or a grant. */
  async revoke(session: Session, request: RevokeParams): Promise<SubmitResult> {
    const claims = await this.check(session);
    const given = [request.jti, request.token, request.grant].filter((v) => v !== undefined).length;
    if (given !== 1) throw new HostError('InvalidParams', 'give exactly one of jti, token, grant');
    if (request.grant !== undefined) {
      return this.execute(session.principal, claims, { type: 'RevokeGrant', grant: request.grant, reason: request.reason });
    }
    let jti = request.jti!;
    let exp = Math.floor(this.options.now() / 1000) + MAX_TOKEN_LIFETIME_S + 5;
    if (request.token !== undefined) {
      let target: CapabilityClaims;
      try {
        target = await this.tokens.verifySignatureOnly(request.token);
      } catch (err) {
        throw this.fail(err);
      }
      if (target.vault !== claims.vault) {
        throw new HostError('CapabilityDenied', 'token belongs to another vault', { reason: 'target outside the token vault' });
      }
      jti = target.jti;
      exp = target.exp;
    }
    return this.execute(session.principal, claims, { type: 'RevokeToken', jti, exp, reason: request.reason });
  }

  async listGrants(session: Session): Promise<GrantRecord[]> {
    const claims = await this.check(session);
    this.require(claims, 'capability:read');
    return Object.values(this.kernel.state.grants)
      .filter((g) => g.vault === claims.vault)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  // ---- host ----------------------------------------------------------------------------------------

  /** Liveness and readiness facts. */
  health(): { ok: boolean; ready: boolean; seq: number; store: string; reason?: string } {
    const ready = !this.closing && !this.failure;
    return {
      ok: !this.failure,
      ready,
      seq: this.log.head().seq,
      store: this.log.kind,
      ...(this.failure ? { reason: 'event log append failed' } : this.closing ? { reason: 'shutting down' } : {}),
    };
  }

  /** The whole world state (local/admin use: CLI `toka state`, `toka verify`). */
  worldState(): Readonly<WorldState> {
    return this.kernel.state;
  }

  /** Chain check plus replay check: replaying from zero must give the live (snapshot + tail) digest. */
  async verify(progress: VerifyProgress = {}): Promise<LogVerifyResult> {
    progress.onProgress?.(0, 'checking the hash chain');
    const chain = await this.log.verify();
    const liveDigest = stateDigest(this.kernel.state);
    let replayDigest = '';
    if (chain.ok) {
      progress.onProgress?.(0, 'replaying from zero');
      replayDigest = stateDigest((await Host.replay(this.log, this.options.handlers ?? [], 'zero', progress)).state);
    }
    return {
      ok: chain.ok && replayDigest === liveDigest,
      checked: chain.checked,
      headSeq: chain.headSeq,
      ...(chain.firstBad ? { firstBad: chain.firstBad } : {}),
      liveDigest,
      replayDigest,
    };
  }

  /** `verify` for a remote caller holding `log:verify`. */
  async verifyLog(session: Session, progress: VerifyProgress = {}): Promise<LogVerifyResult> {
    this.require(await this.check(session), 'log:verify');
    return this.verify(progress);
  }

  /** Stop accepting, let in-flight appends finish, end subscriptions, close the log, release the lock. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const sub of this.subscriptions) sub.unsubscribe();
    this.subscriptions.clear();
    await this.log.close();
    this.lock?.release();
  }

  get isClosing(): boolean {
    return this.closing;
  }

  // ---- helpers -------------------------------------------------------------------------------------

  /**
   * Check that the session may use `permission` (token re-verified), for faces that must refuse before they
   * reach the operation itself (MCP's HTTP 403 `insufficient_scope`). Throws CapabilityDenied. It does not
   * charge the rate limit: the operation that follows does, once.
   */
  async authorize(session: Session, permission: string): Promise<CapabilityClaims> {
    const claims = await this.verified(session);
    this.require(claims, permission);
    return claims;
  }

  private require(claims: CapabilityClaims, permission: string): void {
    if (!permits(claims.permissions, permission)) {
      const err = new HostError('CapabilityDenied', `token lacks ${permission}`, { required: permission });
      this.metrics.error(err.errorName);
      throw err;
    }
  }

  /** The caller's vault, plus the query's agent and types, checked against their bounds. */
  private vaultFilter(claims: CapabilityClaims, query: { agent?: string; types?: string[] }): EventFilter {
    if (query.agent !== undefined && (typeof query.agent !== 'string' || query.agent.length === 0 || query.agent.length > MAX_ID_CHARS)) {
      throw new HostError('InvalidParams', `agent must be a string of 1..${MAX_ID_CHARS} characters`, { field: 'agent' });
    }
    if (
      query.types !== undefined &&
      (!Array.isArray(query.types) ||
        query.types.length > MAX_EVENT_TYPES ||
        !query.types.every((t) => typeof t === 'string' && t.length > 0 && t.length <= MAX_ID_CHARS))
    ) {
      throw new HostError('InvalidParams', `types must be at most ${MAX_EVENT_TYPES} event type names`, { field: 'types' });
    }
    return { vault: claims.vault, agent: query.agent, types: query.types };
  }

  private fail(err: unknown, opType?: string): HostError {
    const hostError = HostError.from(err);
    if (hostError.errorName === 'InternalError') this.logger.error('internal error', { err, opType });
    this.metrics.error(hostError.errorName);
    return hostError;
  }
}

function grantState(grant: GrantRecord | undefined, nowMs: number): 'live' | 'revoked' | 'expired' | 'unknown' {
  if (!grant) return 'unknown';
  if (grant.revoked) return 'revoked';
  if (grant.expiresAt !== undefined && grant.expiresAt <= nowMs) return 'expired';
  return 'live';
}

function boundedInt(value: unknown, min: number, max: number, fallback: number, field: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new HostError('InvalidParams', `${field} must be an integer in ${min}..${max}`, { field });
  }
  return value;
}
