/**
 * What every engine shares: the hash chain, group commit, the in-memory head, subscriptions and close.
 * An engine supplies `persist` (write records atomically and durably, or throw) and the reads.
 */
import { canonicalJson } from '../../protocol/canonical.js';
import type { EventFilter, LogRecord } from '../../protocol/events.js';
import type { KernelEvent } from '../../protocol/kernel.js';
import type {
  EventLog,
  LogStats,
  ReadOptions,
  Snapshot,
  SnapshotInput,
  SubscribeOptions,
  Subscription,
  SubscriptionListener,
  VerifyReport,
} from './event-log.js';
import { GENESIS_HASH, hashBody } from './hash.js';
import { MAX_READ_LIMIT, SubscriptionHub } from './subscriptions.js';

/** A record as stored: the event is kept as its canonical JSON (`body`), which is what the hash covers. */
export interface StoredRecord {
  seq: number;
  prevHash: string;
  hash: string;
  type: string;
  vault: string;
  agent: string | null;
  body: string;
}

/** Reads validated and normalised: afterSeq ≥ 0, 1 ≤ limit ≤ 10,000. */
export interface ReadQuery {
  afterSeq: number;
  limit: number;
  filter?: EventFilter;
}

interface EncodedEvent {
  type: string;
  vault: string;
  agent: string | null;
  body: string;
}

interface PendingBatch {
  events: EncodedEvent[];
  resolve(records: LogRecord[]): void;
  reject(err: unknown): void;
}

export class LogClosedError extends Error {
  readonly code = 'LogClosed';
  constructor() {
    super('event log is closed');
    this.name = 'LogClosedError';
  }
}

export class ReadOnlyLogError extends Error {
  readonly code = 'ReadOnlyLog';
  constructor() {
    super('event log is open read-only');
    this.name = 'ReadOnlyLogError';
  }
}

/** A stored row as read back for a `LogRecord`: the index columns are not needed (they are in the body). */
export type RecordRow = Pick<StoredRecord, 'seq' | 'prevHash' | 'hash' | 'body'>;

export function toLogRecord(stored: RecordRow): LogRecord {
  return { seq: stored.seq, prevHash: stored.prevHash, hash: stored.hash, event: JSON.parse(stored.body) as KernelEvent };
}

function encodeEvent(event: KernelEvent): EncodedEvent {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new TypeError('event must be an object');
  if (typeof event.type !== 'string' || event.type === '') throw new TypeError('event.type must be a non-empty string');
  if (typeof event.vault !== 'string') throw new TypeError(`event ${event.type}: vault must be a string`);
  if (event.agent !== undefined && typeof event.agent !== 'string') throw new TypeError(`event ${event.type}: agent must be a string when set`);
  return { type: event.type, vault: event.vault, agent: event.agent ?? null, body: canonicalJson(event) };
}

export function normaliseRead(options: ReadOptions | undefined): ReadQuery {
  const afterSeq = options?.afterSeq ?? 0;
  const limit = options?.limit ?? MAX_READ_LIMIT;
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new RangeError(`afterSeq must be an integer ≥ 0, got ${afterSeq}`);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer ≥ 1, got ${limit}`);
  return { afterSeq, limit: Math.min(limit, MAX_READ_LIMIT), filter: options?.filter };
}

/**
 * Checks stored records in seq order, continuing from `state` (the previous record's seq and hash).
 * Returns the first problem found, or null.
 */
export function checkRecord(
  state: { seq: number; hash: string },
  row: StoredRecord,
): { seq: number; reason: string } | null {
  if (row.seq !== state.seq + 1) return { seq: state.seq + 1, reason: 'gap' };
  if (row.prevHash !== state.hash) return { seq: row.seq, reason: 'broken link' };
  let event: unknown;
  try {
    event = JSON.parse(row.body);
  } catch {
    return { seq: row.seq, reason: 'body not JSON' };
  }
  if (event === null || typeof event !== 'object') return { seq: row.seq, reason: 'body not JSON' };
  if (hashBody(row.prevHash, row.seq, canonicalJson(event)) !== row.hash) return { seq: row.seq, reason: 'hash mismatch' };
  const e = event as KernelEvent;
  if (e.type !== row.type || e.vault !== row.vault || (e.agent ?? null) !== row.agent) {
    return { seq: row.seq, reason: 'index mismatch' };
  }
  return null;
}

export abstract class ChainedEventLog implements EventLog {
  abstract readonly kind: string;
  protected headSeq = 0;
  protected headHash = GENESIS_HASH;
  protected closed = false;
  protected readonly hub = new SubscriptionHub((afterSeq, limit, filter) => this.read({ afterSeq, limit, filter }));
  /** Seq up to which records are durable: answered and published. Reads show nothing after it. */
  protected durableSeq = 0;
  private pending: PendingBatch[] = [];
  private flushTimer: NodeJS.Immediate | null = null;
  /** Settles once every commit made so far is answered (or refused): commits are answered in order. */
  private answered: Promise<void> = Promise.resolve();
  /** Why the log refuses appends: a commit it could not make durable. */
  private broken: unknown = null;
  private readonly counters: LogStats = { transactions: 0, batches: 0, records: 0 };

  /**
   * Writes `records` (continuing the chain from the head) in one atomic transaction, or throws. Durable on
   * return, unless the engine makes it durable in `syncPersisted`.
   */
  protected abstract persist(records: StoredRecord[]): void;
  /**
   * For an engine whose `persist` leaves the disk flush to be done: start it, resolving once everything
   * persisted so far is durable. Null (the default): `persist` is durable on return.
   */
  protected syncPersisted(): Promise<void> | null {
    return null;
  }
  /** Releases the storage; called once by `close()` after pending appends are settled. */
  protected abstract release(): void;
  /** Whether appends and snapshots are refused. */
  protected abstract readonly isReadOnly: boolean;

  abstract read(options?: ReadOptions): Promise<LogRecord[]>;
  abstract runSubmission(vault: string, run: string): Promise<LogRecord | null>;
  abstract verify(): Promise<VerifyReport>;
  abstract writeSnapshot(snapshot: SnapshotInput): Promise<string>;
  abstract latestSnapshot(): Promise<Snapshot | null>;

  append(events: KernelEvent[]): Promise<LogRecord[]> {
    if (this.closed) return Promise.reject(new LogClosedError());
    if (this.isReadOnly) return Promise.reject(new ReadOnlyLogError());
    if (this.broken !== null) return Promise.reject(this.broken);
    if (!Array.isArray(events)) return Promise.reject(new TypeError('append expects an array of events'));
    let encoded: EncodedEvent[];
    try {
      encoded = events.map(encodeEvent);
    } catch (err) {
      return Promise.reject(err);
    }
    if (encoded.length === 0) return Promise.resolve([]);
    return new Promise<LogRecord[]>((resolve, reject) => {
      this.pending.push({ events: encoded, resolve, reject });
      this.flushTimer ??= setImmediate(() => this.flush());
    });
  }

  head(): { seq: number; hash: string } {
    return { seq: this.headSeq, hash: this.headHash };
  }

  subscribe(options: SubscribeOptions, listener: SubscriptionListener): Subscription {
    if (this.closed) throw new LogClosedError();
    return this.hub.subscribe(options, listener);
  }

  stats(): LogStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await this.answered;
    this.hub.closeAll();
    this.release();
  }

  /**
   * Commits every pending batch in one transaction, then answers the callers and publishes once it is durable
   * (at once, or when the engine's `syncPersisted` resolves: commits are answered in order, and a commit that
   * cannot be made durable is refused with every later one).
   */
  private flush(): void {
    if (this.flushTimer !== null) clearImmediate(this.flushTimer);
    this.flushTimer = null;
    const batches = this.pending;
    this.pending = [];
    if (batches.length === 0) return;

    let seq = this.headSeq;
    let hash = this.headHash;
    const rows: StoredRecord[] = [];
    const perBatch: StoredRecord[][] = [];
    for (const batch of batches) {
      const own: StoredRecord[] = [];
      for (const e of batch.events) {
        seq += 1;
        const next = hashBody(hash, seq, e.body);
        const row: StoredRecord = { seq, prevHash: hash, hash: next, type: e.type, vault: e.vault, agent: e.agent, body: e.body };
        hash = next;
        rows.push(row);
        own.push(row);
      }
      perBatch.push(own);
    }

    try {
      this.persist(rows);
    } catch (err) {
      for (const batch of batches) batch.reject(err);
      return;
    }
    this.headSeq = seq;
    this.headHash = hash;
    this.counters.transactions += 1;
    this.counters.batches += batches.length;
    this.counters.records += rows.length;

    const answer = () => {
      this.durableSeq = seq;
      const published: LogRecord[] = [];
      batches.forEach((batch, i) => {
        const records = perBatch[i].map(toLogRecord);
        published.push(...records);
        batch.resolve(records);
      });
      this.hub.publish(published);
    };
    let syncing: Promise<void> | null;
    try {
      syncing = this.syncPersisted();
    } catch (err) {
      // Could not even start the flush (the WAL file would not open): the same as a flush that failed.
      syncing = Promise.reject(err);
    }
    if (syncing === null) return answer();
    this.answered = Promise.all([this.answered, syncing]).then(
      () => {
        if (this.broken !== null) throw this.broken;
        answer();
      },
      (err: unknown) => {
        throw (this.broken ??= err);
      },
    ).catch((err: unknown) => {
      for (const batch of batches) batch.reject(err);
    });
  }
}
