/**
 * The event log behind one interface. Implementations: SQLite (default, durable) and memory (tests).
 * Nothing here is SQLite-specific, so a distributed engine can implement it later.
 */
import type { EventFilter, LogRecord } from '../../protocol/events.js';
import type { KernelEvent, WorldState } from '../../protocol/kernel.js';

export interface ReadOptions {
  /** Records with seq > afterSeq (default 0). */
  afterSeq?: number;
  /** At most this many records (default and maximum: 10,000). */
  limit?: number;
  filter?: EventFilter;
}

/** A state snapshot: the state after applying every record up to and including `seq`. */
export interface Snapshot {
  seq: number;
  /** Hex SHA-256 of canonicalJson(state). */
  digest: string;
  state: WorldState;
}

/** A snapshot to store: the state as its canonical JSON, which is what the stored digest covers. */
export interface SnapshotInput {
  seq: number;
  /** `canonicalJson(state)`, encoded once by the caller at the moment the state matched `seq`. */
  canonicalState: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Records checked. */
  checked: number;
  /** Highest sequence number in the log. */
  headSeq: number;
  /** The first record that does not verify, and why. */
  firstBad?: { seq: number; reason: string };
}

/**
 * Why a subscription ended. `overflow`: the subscriber fell more than its buffer behind.
 * `error`: its `onRecord` threw or rejected; `lastDeliveredSeq` is the last record it took, so the failed one follows it.
 */
export type SubscriptionEnd =
  | { reason: 'closed' }
  | { reason: 'overflow'; lastDeliveredSeq: number; limit: number }
  | { reason: 'error'; lastDeliveredSeq: number; message: string };

export interface SubscribeOptions {
  /** Deliver records with seq > afterSeq: stored ones first, then live ones, no gap, no duplicate. */
  afterSeq: number;
  filter?: EventFilter;
  /** Most undelivered records held for this subscriber before it is ended with `overflow` (default 10,000). */
  bufferLimit?: number;
}

export interface SubscriptionListener {
  /** Called once per record, in seq order; the next call waits for a returned promise. */
  onRecord(record: LogRecord): void | Promise<void>;
  /** Called once when the subscription ends for any reason other than `unsubscribe()`. */
  onEnd?(end: SubscriptionEnd): void;
}

export interface Subscription {
  unsubscribe(): void;
}

/** Group-commit counters since the log was opened (tests, metrics, benchmarks). */
export interface LogStats {
  /** Transactions committed by group commit (one per flush, one fsync on a durable engine). */
  transactions: number;
  /** `append` calls committed. */
  batches: number;
  /** Records committed. */
  records: number;
}

export interface EventLog {
  readonly kind: string;
  /**
   * Appends `events` as one atomic batch and resolves with their records once they are durable.
   * Appends issued in the same tick share one transaction (group commit).
   */
  append(events: KernelEvent[]): Promise<LogRecord[]>;
  /** Sequence number and hash of the last record (0 and 64 zeros when empty). */
  head(): { seq: number; hash: string };
  /** Group-commit counters since open. */
  stats(): LogStats;
  read(options?: ReadOptions): Promise<LogRecord[]>;
  /**
   * The `RunSubmitted` record of run `run` in `vault` (the record whose `run.id` is `run`), or null: where a
   * run's events begin once its record has left the world state (an index lookup, not a scan, on SQLite).
   */
  runSubmission(vault: string, run: string): Promise<LogRecord | null>;
  /** Walk the whole chain: recompute every hash and link. */
  verify(): Promise<VerifyReport>;
  /** Stores a snapshot (the newest few are kept) and resolves with its digest. */
  writeSnapshot(snapshot: SnapshotInput): Promise<string>;
  /** The newest snapshot, or null. */
  latestSnapshot(): Promise<Snapshot | null>;
  subscribe(options: SubscribeOptions, listener: SubscriptionListener): Subscription;
  /** Waits for pending appends, ends subscriptions, releases the storage. */
  close(): Promise<void>;
}
