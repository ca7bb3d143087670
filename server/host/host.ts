/**
 * The host: the one application API every face calls (CLI, stdio, WebSocket, HTTP, MCP, A2A, runtime).
 * It owns the kernel, the event log and the token service — privately: a face can only go through the
 * methods below, so every change is authorised, rate-limited and appended here and nowhere else.
 * Flow of one operation: verify token (cached) → rate limit → assign id/time/new ids → kernel.execute →
 * durable append → answer (subscribers are fed by the log after commit). Reads answer from durable state.
 *
 * The jobs live in their own modules: open.ts (data dir, replay), core.ts (authorise, execute, durable
 * reads), sessions.ts, queries.ts, capabilities.ts.
 */
import type { CapabilityClaims } from '../../protocol/capability.js';
import type { LogRecord } from '../../protocol/events.js';
import type { GrantRecord, Operation, WorldState } from '../../protocol/kernel.js';
import type { DelegateParams, DelegateResult, MintParams, MintResult, RevokeParams } from '../../protocol/rpc/capability.js';
import type { EventQuery } from '../../protocol/rpc/events.js';
import type { LogVerifyResult } from '../../protocol/rpc/host.js';
import type { StateQuery, StateResult } from '../../protocol/rpc/state.js';
import type { Kernel, OpcodeHandler } from '../kernel/kernel.js';
import type { EventLog, LogStats, Subscription } from '../store/event-log.js';
import * as capabilities from './capabilities.js';
import type { HostCore, Session, StagedOperation, SubmitResult } from './core.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { openCore, replay, type HostOptions, type VerifyProgress } from './open.js';
import * as queries from './queries.js';
import * as sessions from './sessions.js';

export { SNAPSHOT_CHARS_PER_EVENT, type Session, type StagedOperation, type SubmitResult } from './core.js';
export type { HostOptions, VerifyProgress } from './open.js';
export type { SubscribeListener, SubscribeQuery } from './queries.js';
export { LOCAL_ADMIN, type Channel, type Credentials } from './sessions.js';

export class Host {
  private constructor(private readonly core: HostCore) {}

  static async open(options: HostOptions): Promise<Host> {
    return new Host(await openCore(options));
  }

  /**
   * Rebuild a kernel from a log: from the newest snapshot whose digest checks out (`snapshot`), or from the
   * first record (`zero`). For tools that read a log without a host (benchmarks, verification).
   */
  static replay(log: EventLog, handlers: OpcodeHandler[], from: 'snapshot' | 'zero', progress?: VerifyProgress): Promise<Kernel> {
    return replay(log, handlers, from, progress);
  }

  get metrics(): Metrics {
    return this.core.metrics;
  }

  get logger(): Logger {
    return this.core.logger;
  }

  get startedAt(): number {
    return this.core.startedAt;
  }

  /** The host's clock (ms since the epoch): faces that time things (idle sessions) use it, so tests can inject one. */
  now(): number {
    return this.core.now();
  }

  get isClosing(): boolean {
    return this.core.isClosing;
  }

  // ---- sessions ------------------------------------------------------------------------------------

  /** Open a session by the one policy: a token authenticates; no token is local admin on an owner channel only. */
  openSession(channel: sessions.Channel, credentials: sessions.Credentials): Promise<Session> {
    return sessions.openSession(this.core, channel, credentials);
  }

  /**
   * Verify a bearer token and open a session for it. `audience`: the resource URL of the face asking (RFC
   * 8707); a token bound to another audience, or to one when none is given, is refused (`ERR_AUDIENCE`).
   */
  authenticate(token: string, audience?: string): Promise<Session> {
    return sessions.authenticate(this.core, token, audience);
  }

  /** An in-process session for the owner of the data dir (the CLI): every permission in `vault`. */
  localSession(vault: string): Session {
    return sessions.localSession(this.core, vault);
  }

  /**
   * Check that the session may use `permission` (token re-verified), for faces that must refuse before they
   * reach the operation itself (MCP's HTTP 403 `insufficient_scope`). Throws CapabilityDenied. It does not
   * charge the rate limit: the operation that follows does, once.
   */
  async authorize(session: Session, permission: string): Promise<CapabilityClaims> {
    const claims = await this.core.verified(session);
    this.core.require(claims, permission);
    return claims;
  }

  /** Re-verify the session's token (revocation and expiry apply at once) and charge the rate limit. */
  check(session: Session): Promise<CapabilityClaims> {
    return this.core.check(session);
  }

  // ---- operations ----------------------------------------------------------------------------------

  /** Submit one operation; resolves once its events are durable. */
  async submit(session: Session, op: Operation): Promise<SubmitResult> {
    const claims = await this.core.check(session);
    return this.core.execute(session.principal, claims, op);
  }

  /**
   * Submit one operation without waiting for durability: resolves once the kernel has executed it (its events
   * and their log positions), with `durable` settling when they are in the log. For a caller that chains
   * steps of its own and must not act outside the host before they are durable (the agent runtime awaits
   * `durable` before running a tool or reporting a run's end). Reads and subscribers still see only durable
   * events.
   */
  async stage(session: Session, op: Operation): Promise<StagedOperation> {
    const claims = await this.core.check(session);
    return this.core.stage(session.principal, claims, op);
  }

  // ---- queries -------------------------------------------------------------------------------------

  getState(session: Session, query?: StateQuery): Promise<StateResult> {
    return queries.getState(this.core, session, query);
  }

  queryEvents(session: Session, query?: EventQuery): Promise<LogRecord[]> {
    return queries.queryEvents(this.core, session, query);
  }

  /** The `RunSubmitted` record of a run of the caller's vault (needs `events:read`), or null. */
  runSubmission(session: Session, run: string): Promise<LogRecord | null> {
    return queries.runSubmission(this.core, session, run);
  }

  subscribe(session: Session, query: queries.SubscribeQuery, listener: queries.SubscribeListener): Promise<Subscription> {
    return queries.subscribe(this.core, session, query, listener);
  }

  /** The whole world state as of a durable seq (the data dir's owner: CLI `toka state`). */
  worldState(): Promise<{ seq: number; state: WorldState }> {
    return queries.worldState(this.core);
  }

  /** Records of every vault (the data dir's owner: CLI `toka events`). */
  readAllEvents(query: { afterSeq: number; limit: number; vault?: string; agent?: string; types?: string[] }): Promise<LogRecord[]> {
    return queries.readAllEvents(this.core, query);
  }

  /** Every committed record of every vault after `afterSeq` (in-process parts of the host only: the runtime). */
  watch(afterSeq: number, listener: (record: LogRecord) => void): Subscription {
    return queries.watch(this.core, afterSeq, listener);
  }

  /** Read durable state with the caller's own reader after checking `permission` (in-process clients: the runtime). */
  read<T>(session: Session, permission: string, reader: (state: Readonly<WorldState>, claims: CapabilityClaims) => T): Promise<T> {
    return queries.read(this.core, session, permission, reader);
  }

  /** Sequence number of the newest durable record. */
  headSeq(): number {
    return this.core.headSeq;
  }

  // ---- capabilities --------------------------------------------------------------------------------

  mint(session: Session, request: MintParams): Promise<MintResult> {
    return capabilities.mint(this.core, session, request);
  }

  delegate(session: Session, request: DelegateParams): Promise<DelegateResult> {
    return capabilities.delegate(this.core, session, request);
  }

  revoke(session: Session, request: RevokeParams): Promise<SubmitResult> {
    return capabilities.revoke(this.core, session, request);
  }

  listGrants(session: Session): Promise<GrantRecord[]> {
    return capabilities.listGrants(this.core, session);
  }

  /**
   * Mint a fresh token from an existing live grant (the runtime renewing an agent's own token; the OAuth
   * token endpoint, with `audience` = the resource the client asked for).
   */
  issueToken(session: Session, request: { grant: string; ttlSeconds?: number; audience?: string }): Promise<MintResult> {
    return capabilities.issueToken(this.core, session, request);
  }

  /** The public keys that verify EdDSA tokens (JWKS). */
  jwks(): ReturnType<HostCore['keyRing']['jwks']> {
    return this.core.keyRing.jwks();
  }

  // ---- host ----------------------------------------------------------------------------------------

  /** Liveness and readiness facts. */
  health(): { ok: boolean; ready: boolean; seq: number; store: string; reason?: string } {
    const reason = this.core.outOfService;
    const failed = reason === 'event log append failed';
    return { ok: !failed, ready: reason === null, seq: this.core.headSeq, store: this.core.log.kind, ...(reason ? { reason } : {}) };
  }

  /** The log's group-commit counters since the host opened it. */
  logStats(): LogStats {
    return this.core.log.stats();
  }

  /** Chain check plus replay check (the data dir's owner: CLI `toka verify`). */
  verify(progress?: VerifyProgress): Promise<LogVerifyResult> {
    return queries.verify(this.core, progress);
  }

  /** `verify` for a remote caller holding `log:verify`. */
  async verifyLog(session: Session, progress?: VerifyProgress): Promise<LogVerifyResult> {
    this.core.require(await this.core.check(session), 'log:verify');
    return queries.verify(this.core, progress);
  }

  /** Stop accepting, let in-flight appends finish, end subscriptions, close the log, release the lock. */
  close(): Promise<void> {
    return this.core.close();
  }
}
