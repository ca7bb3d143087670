/**
 * The durable event log: one SQLite file (WAL, synchronous=FULL), written by group commit.
 * See docs/event-log.md for the layout and the guarantees.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LogRecord } from '../../protocol/events.js';
import type { ReadOptions, Snapshot, SnapshotInput, VerifyReport } from './event-log.js';
import {
  ChainedEventLog,
  checkRecord,
  LogClosedError,
  normaliseRead,
  ReadOnlyLogError,
  type RecordRow,
  type StoredRecord,
  toLogRecord,
} from './chained-log.js';
import { GENESIS_HASH } from './hash.js';
import { loadSnapshot, snapshotDigest, SNAPSHOTS_KEPT } from './snapshots.js';

/** Schema version kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 1;
/** Rows per chunk when `verify()` walks the chain; it yields to the event loop between chunks. */
const VERIFY_CHUNK = 5_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq       INTEGER PRIMARY KEY,
  type      TEXT NOT NULL,
  vault     TEXT NOT NULL,
  agent     TEXT,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL,
  body      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_vault ON events (vault, seq);
CREATE INDEX IF NOT EXISTS events_by_agent ON events (agent, seq);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, seq);
CREATE INDEX IF NOT EXISTS run_submissions ON events (json_extract(body, '$.run.id')) WHERE type = 'RunSubmitted';
CREATE TABLE IF NOT EXISTS snapshots (
  seq    INTEGER PRIMARY KEY,
  digest TEXT NOT NULL,
  state  TEXT NOT NULL
);
`;

const COLUMNS = 'seq, prev_hash AS prevHash, hash, type, vault, agent, body';
/** What a read needs to build `LogRecord`s: the index columns are in the body already. */
const RECORD_COLUMNS = 'seq, prev_hash AS prevHash, hash, body';

export interface SqliteOpenOptions {
  /**
   * Open without writing (CLI reads while a server holds the log): appends and snapshots are refused,
   * `head()` reads the file each time. A missing file reads as an empty log.
   */
  readOnly?: boolean;
}

export class SqliteEventLog extends ChainedEventLog {
  readonly kind = 'sqlite';
  protected readonly isReadOnly: boolean;
  private readonly db: Database.Database;
  private readonly insertEvent: Database.Statement;
  private readonly maxSeq: Database.Statement;
  private readonly lastRow: Database.Statement;
  private readonly chunk: Database.Statement;
  private readonly insertSnapshot: Database.Statement;
  private readonly pruneSnapshots: Database.Statement;
  private readonly newestSnapshot: Database.Statement;
  private readonly submission: Database.Statement;
  /** Read statements by SQL text (one per filter shape: vault, agent, type present or not). */
  private readonly reads = new Map<string, Database.Statement>();
  private readonly writeRows: Database.Transaction<(rows: StoredRecord[]) => void>;

  /** Opens (creating the file and its directories) or, with `readOnly`, only reads the log at `path`. */
  static open(path: string, options: SqliteOpenOptions = {}): SqliteEventLog {
    const readOnly = options.readOnly ?? false;
    if (readOnly) {
      const db = existsSync(path) ? new Database(path, { readonly: true, fileMustExist: true }) : new Database(':memory:');
      return new SqliteEventLog(db, true);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create the file owner-only before SQLite opens it: its -wal and -shm files take the database file's mode.
    closeSync(openSync(path, 'a', 0o600));
    return new SqliteEventLog(new Database(path), false);
  }

  private constructor(db: Database.Database, readOnly: boolean) {
    super();
    this.db = db;
    this.isReadOnly = readOnly;
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new Error(`event log schema ${version} is newer than this build (${SCHEMA_VERSION})`);
      if (!readOnly || db.memory) {
        if (!readOnly) {
          db.pragma('journal_mode = WAL');
          db.pragma('synchronous = FULL');
        }
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
      this.insertEvent = db.prepare(
        'INSERT INTO events (seq, type, vault, agent, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      this.maxSeq = db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck();
      this.lastRow = db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1');
      this.chunk = db.prepare(`SELECT ${COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`);
      this.insertSnapshot = db.prepare('INSERT OR REPLACE INTO snapshots (seq, digest, state) VALUES (?, ?, ?)');
      this.pruneSnapshots = db.prepare(
        'DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)',
      );
      this.newestSnapshot = db.prepare('SELECT seq, digest, state FROM snapshots ORDER BY seq DESC LIMIT 1');
      // The expression and the type test are the index's own, so the lookup is one probe of run_submissions.
      this.submission = db.prepare(
        `SELECT ${RECORD_COLUMNS} FROM events WHERE type = 'RunSubmitted' AND json_extract(body, '$.run.id') = ? AND vault = ? ORDER BY seq LIMIT 1`,
      );
      this.writeRows = db.transaction((rows: StoredRecord[]) => {
        // The in-memory head must still be the file's head: refuse to fork the chain if another writer appended.
        const fileHead = this.maxSeq.get() as number;
        if (fileHead !== rows[0].seq - 1) {
          throw new Error(`event log head moved under us: file has seq ${fileHead}, expected ${rows[0].seq - 1}`);
        }
        for (const r of rows) this.insertEvent.run(r.seq, r.type, r.vault, r.agent, r.prevHash, r.hash, r.body);
      });
      const last = this.readHead();
      this.headSeq = last.seq;
      this.headHash = last.hash;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  override head(): { seq: number; hash: string } {
    if (this.isReadOnly && !this.closed) return this.readHead();
    return super.head();
  }

  protected persist(records: StoredRecord[]): void {
    // BEGIN IMMEDIATE: take the write lock up front; COMMIT fsyncs the WAL (synchronous=FULL).
    this.writeRows.immediate(records);
  }

  protected release(): void {
    this.db.close();
  }

  async read(options?: ReadOptions): Promise<LogRecord[]> {
    if (this.closed) throw new LogClosedError();
    const { afterSeq, limit, filter } = normaliseRead(options);
    const types = filter?.types === undefined ? undefined : [...new Set(filter.types)];
    if (types === undefined || types.length === 1) return this.readShape(afterSeq, limit, filter?.vault, filter?.agent, types?.[0]);
    // One index range per type (each ≤ limit rows), merged: no scan of every matching row.
    const merged = types.flatMap((type) => this.readShape(afterSeq, limit, filter?.vault, filter?.agent, type));
    return merged.sort((a, b) => a.seq - b.seq).slice(0, limit);
  }

  private readShape(afterSeq: number, limit: number, vault?: string, agent?: string, type?: string): LogRecord[] {
    const params: unknown[] = [afterSeq];
    const where = ['seq > ?'];
    if (vault !== undefined) {
      where.push('vault = ?');
      params.push(vault);
    }
    if (agent !== undefined) {
      where.push('agent = ?');
      params.push(agent);
    }
    if (type !== undefined) {
      where.push('type = ?');
      params.push(type);
    }
    params.push(limit);
    const sql = `SELECT ${RECORD_COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`;
    let statement = this.reads.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.reads.set(sql, statement);
    }
    return (statement.all(...params) as RecordRow[]).map(toLogRecord);
  }

  async runSubmission(vault: string, run: string): Promise<LogRecord | null> {
    if (this.closed) throw new LogClosedError();
    const row = this.submission.get(run, vault) as RecordRow | undefined;
    return row === undefined ? null : toLogRecord(row);
  }

  async verify(): Promise<VerifyReport> {
    if (this.closed) throw new LogClosedError();
    // Rows up to the head as of now must all be there; rows appended during the walk are checked too.
    const target = this.head().seq;
    const state = { seq: 0, hash: GENESIS_HASH };
    for (;;) {
      let rows = 0;
      for (const row of this.chunk.iterate(state.seq, VERIFY_CHUNK) as IterableIterator<StoredRecord>) {
        rows += 1;
        const bad = checkRecord(state, row);
        if (bad !== null) return { ok: false, checked: state.seq, headSeq: this.head().seq, firstBad: bad };
        state.seq = row.seq;
        state.hash = row.hash;
      }
      if (rows < VERIFY_CHUNK) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) throw new LogClosedError();
    }
    if (state.seq < target) return { ok: false, checked: state.seq, headSeq: target, firstBad: { seq: state.seq + 1, reason: 'gap' } };
    return { ok: true, checked: state.seq, headSeq: state.seq };
  }

  async writeSnapshot(snapshot: SnapshotInput): Promise<string> {
    if (this.closed) throw new LogClosedError();
    if (this.isReadOnly) throw new ReadOnlyLogError();
    const digest = snapshotDigest(snapshot, this.headSeq);
    this.db.transaction(() => {
      this.insertSnapshot.run(snapshot.seq, digest, snapshot.canonicalState);
      this.pruneSnapshots.run(SNAPSHOTS_KEPT);
    })();
    return digest;
  }

  async latestSnapshot(): Promise<Snapshot | null> {
    if (this.closed) throw new LogClosedError();
    const row = this.newestSnapshot.get() as { seq: number; digest: string; state: string } | undefined;
    return row === undefined ? null : loadSnapshot(row.seq, row.digest, row.state);
  }

  private readHead(): { seq: number; hash: string } {
    const row = this.lastRow.get() as { seq: number; hash: string } | undefined;
    return row ?? { seq: 0, hash: GENESIS_HASH };
  }
}
