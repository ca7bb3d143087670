/**
 * The host's inner parts and the two paths every call takes: authorise a session (verify + rate limit) and,
 * for a change, execute → durable append; for a read, answer only from durable state. The job modules
 * (sessions, queries, capabilities) work on a HostCore; only `Host` holds one, privately, so adapters and
 * the CLI cannot reach the log, the key ring or the token service.
 */
import { randomUUID } from 'node:crypto';
import { canonicalJson } from '../../protocol/canonical.js';
import { MAX_TOKEN_LIFETIME_S, permits, type CapabilityClaims } from '../../protocol/capability.js';
import type { LogRecord } from '../../protocol/events.js';
import { ID_BUDGET, type KernelEvent, type Operation, type OperationEnvelope, type WorldState } from '../../protocol/kernel.js';
import type { SubmitResult } from '../../protocol/rpc/kernel.js';
import type { KeyRing } from '../auth/keyring.js';
import type { RateLimiter } from '../auth/rate-limit.js';
import type { TokenService } from '../auth/tokens.js';
import type { Kernel, OpcodeHandler } from '../kernel/kernel.js';
import type { EventLog, SnapshotInput, Subscription } from '../store/event-log.js';
import { HostError } from './errors.js';
import type { DataDirLock } from './lock.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** A caller: a verified token bound to a connection. `principal` is the message origin for every op. */
export interface Session {
  readonly id: string;
  /** The subject that authenticated; the origin of every operation sent on this session. */
  readonly principal: string;
  /** The bearer token (never logged). Undefined for the in-process local admin. */
  token?: string;
  /** Claims as of the last verification. */
  claims: CapabilityClaims;
  /** True for the local admin (owner of the data dir): no token, no rate limit. */
  readonly local: boolean;
}


/**
 * Snapshot cadence for a large state: encoding a snapshot costs time proportional to its size, so the next
 * one waits for at least one event per this many characters of the last. That keeps snapshot encoding under
 * roughly a tenth of submit time however large the state grows (measured: ~4 ns per character encoded,
 * ~20 µs per submitted operation), while replay after a restart stays proportional to the state size.
 */
export const SNAPSHOT_CHARS_PER_EVENT = 512;

export interface CoreParts {
  kernel: Kernel;
  log: EventLog;
  keyRing: KeyRing;
  tokens: TokenService;
  limiter: RateLimiter | null;
  lock: DataDirLock | null;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  readOnly: boolean;
  snapshotEvery: number;
  handlers: OpcodeHandler[];
}

export type { SubmitResult };

/** An operation executed and queued in the group commit (`HostCore.stage`). */
export interface StagedOperation {
  opId: string;
  /** Its events as the kernel applied them, with the log positions they will have. */
  staged: { seq: number; event: KernelEvent }[];
  /** Settles when they are durable: resolves with the records, or rejects with `Unavailable`. */
  durable: Promise<SubmitResult>;
}

export class HostCore {
  readonly kernel: Kernel;
  readonly log: EventLog;
  readonly keyRing: KeyRing;
  readonly tokens: TokenService;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  readonly handlers: OpcodeHandler[];
  readonly subscriptions = new Set<Subscription>();
  readonly startedAt: number;
  private readonly limiter: RateLimiter | null;
  private readonly lock: DataDirLock | null;
  private readonly readOnly: boolean;
  private readonly snapshotEvery: number;
  /** Sequence number of the last event the kernel state reflects (durable or still in the group commit). */
  private queuedSeq: number;
  /** Sequence number up to which every event is durable. */
  private durableSeq: number;
  /** The newest append: once it settles, every event queued before it has settled too (group commit is in order). */
  private lastAppend: Promise<unknown> = Promise.resolve();
  private sinceSnapshot = 0;
  /** Length of the last snapshot written, which spaces out the next one (see `SNAPSHOT_CHARS_PER_EVENT`). */
  private lastSnapshotChars = 0;
  private failure: Error | null = null;
  private closing = false;

  constructor(parts: CoreParts) {
    this.kernel = parts.kernel;
    this.log = parts.log;
    this.keyRing = parts.keyRing;
    this.tokens = parts.tokens;
    this.limiter = parts.limiter;
    this.lock = parts.lock;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.now = parts.now;
    this.readOnly = parts.readOnly;
    this.snapshotEvery = parts.snapshotEvery;
    this.handlers = parts.handlers;
    this.queuedSeq = parts.log.head().seq;
    this.durableSeq = this.queuedSeq;
    this.startedAt = parts.now();
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Why the host cannot serve, or null when it can. */
  get outOfService(): string | null {
    if (this.failure) return 'event log append failed';
    if (this.closing) return 'shutting down';
    return null;
  }

  /** The durable head of the log. */
  get headSeq(): number {
    return this.durableSeq;
  }

  // ---- authorisation -------------------------------------------------------------------------------

  /** Re-verify the session's token (cached; revocation and expiry apply at once) and charge the rate limit. */
  async check(session: Session): Promise<CapabilityClaims> {
    const claims = await this.verified(session);
    if (!session.local && this.limiter) {
      try {
        this.limiter.take(principalKey(claims));
      } catch (err) {
        throw this.fail(err);
      }
    }
    return claims;
  }

  /** Re-verify the session's token (cached; revocation and expiry apply at once), without charging the rate limit. */
  async verified(session: Session): Promise<CapabilityClaims> {
    this.assertInService();
    if (session.local) {
      const iat = Math.floor(this.now() / 1000);
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

  require(claims: CapabilityClaims, permission: string): void {
    if (!permits(claims.permissions, permission)) {
      const err = new HostError('CapabilityDenied', `token lacks ${permission}`, { required: permission });
      this.metrics.error(err.errorName);
      throw err;
    }
  }

  // ---- changes -------------------------------------------------------------------------------------

  /** Execute `op` for an authorised caller and resolve once its events are durable. */
  execute(origin: string, claims: CapabilityClaims, op: Operation): Promise<SubmitResult> {
    return this.stage(origin, claims, op).durable;
  }

  /**
   * Execute `op` for an authorised caller now and queue its events in the group commit: the kernel's state
   * has them when this returns, the log once `durable` resolves. Throws the kernel's refusal at once.
   * `durable` rejects (and the host goes out of service) if the append fails; events staged after a failed
   * one are never durable either, since the group commit writes in order.
   */
  stage(origin: string, claims: CapabilityClaims, op: Operation): StagedOperation {
    if (this.readOnly) throw new HostError('Conflict', 'host opened read-only');
    this.assertInService();
    const started = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < ID_BUDGET; i++) ids.push(randomUUID());
    const envelope: OperationEnvelope = { id: randomUUID(), at: this.now(), origin, claims, ids, op };
    const opType = typeof op === 'object' && op !== null && typeof op.type === 'string' ? op.type : 'invalid';
    let events: KernelEvent[];
    try {
      events = this.kernel.execute(envelope);
    } catch (err) {
      throw this.fail(err, opType);
    }
    const firstSeq = this.queuedSeq + 1;
    this.queuedSeq += events.length;
    const snapshot = this.dueSnapshot(events.length);
    const append = this.log.append(events);
    this.lastAppend = append;
    const durable = append.then(
      (records) => {
        if (records.length > 0) this.durableSeq = Math.max(this.durableSeq, records[records.length - 1].seq);
        if (snapshot) void this.writeSnapshot(snapshot);
        this.metrics.operation(opType, performance.now() - started);
        return { opId: envelope.id, records };
      },
      (err: unknown) => {
        this.failure ??= err as Error;
        this.logger.error('event log append failed; host out of service', { err });
        throw this.fail(new HostError('Unavailable', 'event log append failed'), opType);
      },
    );
    // A caller that stages and goes on may not await every `durable`: the failure is logged above and every
    // later call is refused, so an unawaited rejection must not end the process.
    durable.catch(() => undefined);
    return { opId: envelope.id, staged: events.map((event, i) => ({ seq: firstSeq + i, event })), durable };
  }

  /**
   * Capture the state for a snapshot when one is due: encoded right here, synchronously, so it matches
   * `queuedSeq` (the encoding is the copy; nothing can change the state between).
   */
  private dueSnapshot(added: number): SnapshotInput | null {
    this.sinceSnapshot += added;
    if (this.sinceSnapshot < Math.max(this.snapshotEvery, Math.ceil(this.lastSnapshotChars / SNAPSHOT_CHARS_PER_EVENT))) {
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

  // ---- reads ---------------------------------------------------------------------------------------

  /**
   * Answer a read from durable state only. `read` runs now, against the state as of `queuedSeq`, and must
   * return values it owns (copies, not live state objects); the answer is released once every event up to
   * that seq is durable. After a failed append the state holds events the log lost, so reads are refused.
   * When nothing is pending (the common case) the value is returned as is, without a promise of its own:
   * callers await it.
   */
  readDurable<T>(read: (state: Readonly<WorldState>, seq: number) => T): T | Promise<T> {
    this.assertInService();
    const seq = this.queuedSeq;
    const value = read(this.kernel.state, seq);
    if (this.durableSeq >= seq) return value;
    const released = () => {
      this.assertInService();
      return value;
    };
    return this.lastAppend.then(released, released);
  }

  // ---- lifecycle and errors ------------------------------------------------------------------------

  assertInService(): void {
    if (this.failure) throw new HostError('Unavailable', 'host is out of service after a failed append; restart it');
    if (this.closing) throw new HostError('Unavailable', 'host is shutting down');
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

  fail(err: unknown, opType?: string): HostError {
    const hostError = HostError.from(err);
    if (hostError.errorName === 'InternalError') this.logger.error('internal error', { err, opType });
    this.metrics.error(hostError.errorName);
    return hostError;
  }
}

/**
 * The key of every per-principal limit: vault and subject together, so a subject named alike in another vault
 * (anyone may delegate to any `sub`) never shares a bucket with it. Length-prefixed, so it cannot be forged by
 * a name that contains a separator.
 */
export function principalKey(claims: Pick<CapabilityClaims, 'vault' | 'sub'>): string {
  return `${claims.vault.length}:${claims.vault}${claims.sub}`;
}

export function boundedInt(value: unknown, min: number, max: number, fallback: number, field: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new HostError('InvalidParams', `${field} must be an integer in ${min}..${max}`, { field });
  }
  return value;
}
