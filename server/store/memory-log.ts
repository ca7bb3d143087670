/**
 * The event log in memory, for tests: the same chain, group commit, reads and subscriptions as the SQLite
 * engine, nothing durable. Records are kept as canonical JSON so readers always get fresh copies.
 */
import type { LogRecord } from '../../protocol/events.js';
import type { ReadOptions, Snapshot, SnapshotInput, VerifyReport } from './event-log.js';
import { ChainedEventLog, checkRecord, LogClosedError, normaliseRead, type StoredRecord, toLogRecord } from './chained-log.js';
import { GENESIS_HASH } from './hash.js';
import { loadSnapshot, snapshotDigest, SNAPSHOTS_KEPT } from './snapshots.js';
import { matchesFilter } from './subscriptions.js';

export class MemoryEventLog extends ChainedEventLog {
  readonly kind = 'memory';
  protected readonly isReadOnly = false;
  private readonly rows: StoredRecord[] = [];
  /** Snapshots oldest first, each as its seq, digest and state JSON. */
  private snapshots: { seq: number; digest: string; state: string }[] = [];

  protected persist(records: StoredRecord[]): void {
    this.rows.push(...records);
  }

  protected release(): void {
    this.rows.length = 0;
    this.snapshots = [];
  }

  async read(options?: ReadOptions): Promise<LogRecord[]> {
    if (this.closed) throw new LogClosedError();
    const { afterSeq, limit, filter } = normaliseRead(options);
    const out: LogRecord[] = [];
    // rows[i] has seq i + 1, so the first candidate is rows[afterSeq].
    for (let i = afterSeq; i < this.rows.length && out.length < limit; i++) {
      const row = this.rows[i];
      if (matchesFilter(filter, row)) {
        out.push(toLogRecord(row));
      }
    }
    return out;
  }

  async runSubmission(vault: string, run: string): Promise<LogRecord | null> {
    if (this.closed) throw new LogClosedError();
    // Tests only: a scan of the RunSubmitted records.
    for (const row of this.rows) {
      if (row.type !== 'RunSubmitted' || row.vault !== vault) continue;
      const record = toLogRecord(row);
      if ((record.event as unknown as { run?: { id?: unknown } }).run?.id === run) return record;
    }
    return null;
  }

  async verify(): Promise<VerifyReport> {
    if (this.closed) throw new LogClosedError();
    const state = { seq: 0, hash: GENESIS_HASH };
    for (const row of this.rows) {
      const bad = checkRecord(state, row);
      if (bad !== null) return { ok: false, checked: state.seq, headSeq: this.headSeq, firstBad: bad };
      state.seq = row.seq;
      state.hash = row.hash;
    }
    return { ok: true, checked: state.seq, headSeq: this.headSeq };
  }

  async writeSnapshot(snapshot: SnapshotInput): Promise<string> {
    if (this.closed) throw new LogClosedError();
    const digest = snapshotDigest(snapshot, this.headSeq);
    this.snapshots = this.snapshots.filter((s) => s.seq !== snapshot.seq);
    this.snapshots.push({ seq: snapshot.seq, digest, state: snapshot.canonicalState });
    this.snapshots.sort((a, b) => a.seq - b.seq);
    this.snapshots = this.snapshots.slice(-SNAPSHOTS_KEPT);
    return digest;
  }

  async latestSnapshot(): Promise<Snapshot | null> {
    if (this.closed) throw new LogClosedError();
    const newest = this.snapshots[this.snapshots.length - 1];
    return newest === undefined ? null : loadSnapshot(newest.seq, newest.digest, newest.state);
  }
}
