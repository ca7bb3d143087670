/**
 * The durable event log: one SQLite file (WAL, synchronous=FULL), written by group commit.
 * See docs/event-log.md for the layout and the guarantees.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, fdatasync, mkdirSync, openSync } from 'node:fs';
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

/**
 * Schema version kept in `PRAGMA user_version`. 2: the per-agent index is the `agent_events` table, filled
 * behind the head, instead of an index on `events` written by every commit (1). A version-1 file is migrated
 * when a writer opens it.
 */
export const SCHEMA_VERSION = 2;
/** Rows per chunk when `verify()` walks the chain; it yields to the event loop between chunks. */
const VERIFY_CHUNK = 5_000;
/**
 * Records appended past `agent_events` before they are indexed in one transaction: each agent's page of the
 * index is then written once per this many records instead of once per group commit. It also bounds the
 * tail an agent-filtered read scans by primary key (plus the commits made before the indexing runs).
 */
export const AGENT_INDEX_BATCH = 4_096;
/** After this long without a commit, the unindexed tail is indexed whatever its length. */
export const AGENT_INDEX_IDLE_MS = 200;

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
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, seq);
CREATE INDEX IF NOT EXISTS run_submissions ON events (json_extract(body, '$.run.id')) WHERE type = 'RunSubmitted';
CREATE TABLE IF NOT EXISTS agent_events (
  agent TEXT NOT NULL,
  seq   INTEGER NOT NULL,
  PRIMARY KEY (agent, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_events_through (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO agent_events_through (id, seq) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS snapshots (
  seq    INTEGER PRIMARY KEY,
  digest TEXT NOT NULL,
  state  TEXT NOT NULL
);
`;

const COLUMNS = 'seq, prev_hash AS prevHash, hash, type, vault, agent, body';
/** What a read needs to build `LogRecord`s: the index columns are in the body already. */
const RECORD_COLUMNS = 'seq, prev_hash AS prevHash, hash, body';

/** An agent_events row as `verify()` walks them; `stray` is 1 when no record of that agent has that seq. */
interface AgentEntry {
  agent: string;
  seq: number;
  stray: number;
}

export interface SqliteOpenOptions {
  /**
   * Open without writing (CLI reads while a server holds the log): appends and snapshots are refused,
   * `head()` reads the file each time. A missing file reads as an empty log.
   */
  readOnly?: boolean;
  /** Records appended past `agent_events` before they are indexed (default `AGENT_INDEX_BATCH`). */
  agentIndexBatch?: number;
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
  /** Reads `agent_events_through`. Null for a read-only open of a version-1 file, which has no agent_events. */
  private readonly agentsThroughRow: Database.Statement | null;
  /** Read statements by SQL text (one per filter shape: vault, agent, type present or not, and the range read). */
  private readonly reads = new Map<string, Database.Statement>();
  private readonly writeRows: Database.Transaction<(rows: StoredRecord[]) => void>;
  /** Whether agent_events holds (agent, seq); null without agent_events. */
  private readonly agentEntry: Database.Statement | null;
  /** agent_events rows from the first or after a key, each with whether it names a record of its agent. */
  private readonly agentEntries: { first: Database.Statement; after: Database.Statement } | null;
  /** Indexes the records in (from, to] into agent_events and records `to` as indexed through. */
  private readonly indexAgentsTo: Database.Transaction<(from: number, to: number) => void> | null;
  /** Writer: every record with seq ≤ this is in `agent_events` (the file's `agent_events_through`). */
  private agentsThrough = 0;
  private indexSoon: NodeJS.Immediate | null = null;
  /** The WAL file, opened at the first commit for `syncPersisted`. */
  private walFd: number | null = null;
  private indexWhenIdle: NodeJS.Timeout | null = null;

  /** Opens (creating the file and its directories) or, with `readOnly`, only reads the log at `path`. */
  static open(path: string, options: SqliteOpenOptions = {}): SqliteEventLog {
    const readOnly = options.readOnly ?? false;
    const agentIndexBatch = options.agentIndexBatch ?? AGENT_INDEX_BATCH;
    if (!Number.isSafeInteger(agentIndexBatch) || agentIndexBatch < 1) {
      throw new RangeError(`agentIndexBatch must be an integer ≥ 1, got ${agentIndexBatch}`);
    }
    if (readOnly) {
      const db = existsSync(path) ? new Database(path, { readonly: true, fileMustExist: true }) : new Database(':memory:');
      return new SqliteEventLog(db, path, true, agentIndexBatch);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create the file owner-only before SQLite opens it: its -wal and -shm files take the database file's mode.
    closeSync(openSync(path, 'a', 0o600));
    return new SqliteEventLog(new Database(path), path, false, agentIndexBatch);
  }

  private constructor(
    db: Database.Database,
    private readonly path: string,
    readOnly: boolean,
    private readonly agentIndexBatch: number,
  ) {
    super();
    this.db = db;
    this.isReadOnly = readOnly;
    try {
      let version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new Error(`event log schema ${version} is newer than this build (${SCHEMA_VERSION})`);
      if (!readOnly) {
        db.pragma('journal_mode = WAL');
        // A commit is written to the WAL without waiting for the disk; `syncPersisted` flushes the WAL off
        // the event loop and the log answers a commit only after that (see docs/event-log.md).
        db.pragma('synchronous = NORMAL');
      }
      if ((!readOnly || db.memory) && version < SCHEMA_VERSION) {
        // A new file gets the schema; a version-1 file gets `agent_events` (filled below, from the log) in
        // place of its per-agent index. One transaction: a crash leaves the file as it was.
        db.transaction(() => {
          db.exec(SCHEMA);
          db.exec('DROP INDEX IF EXISTS events_by_agent');
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
        version = SCHEMA_VERSION;
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
      if (version === SCHEMA_VERSION) {
        this.agentsThroughRow = db.prepare('SELECT seq FROM agent_events_through').pluck();
        // Sorted by key, so each agent's page of the index is written once per call.
        const insertAgents = db.prepare(
          'INSERT INTO agent_events (agent, seq) SELECT agent, seq FROM events WHERE seq > ? AND seq <= ? AND agent IS NOT NULL ORDER BY agent, seq',
        );
        const markThrough = db.prepare('UPDATE agent_events_through SET seq = ?');
        this.agentEntry = db.prepare('SELECT 1 FROM agent_events WHERE agent = ? AND seq = ?');
        const entries = 'SELECT a.agent, a.seq, e.seq IS NULL AS stray FROM agent_events a LEFT JOIN events e ON e.seq = a.seq AND e.agent = a.agent';
        this.agentEntries = {
          first: db.prepare(`${entries} ORDER BY a.agent, a.seq LIMIT ?`),
          after: db.prepare(`${entries} WHERE (a.agent, a.seq) > (?, ?) ORDER BY a.agent, a.seq LIMIT ?`),
        };
        this.indexAgentsTo = db.transaction((from: number, to: number) => {
          insertAgents.run(from, to);
          markThrough.run(to);
        });
      } else {
        // A read-only open of a version-1 file: every agent read takes the tail path, which SQLite answers
        // from that file's events_by_agent index.
        this.agentsThroughRow = null;
        this.agentEntry = null;
        this.agentEntries = null;
        this.indexAgentsTo = null;
      }
      const last = this.readHead();
      this.headSeq = last.seq;
      this.headHash = last.hash;
      this.durableSeq = last.seq;
      if (!readOnly) {
        this.agentsThrough = this.agentsThroughRow!.get() as number;
        // A crash between a commit and the indexing left a tail: index it before serving.
        this.indexAgents();
      }
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
    // BEGIN IMMEDIATE: take the write lock up front. COMMIT writes the WAL (synchronous=NORMAL: no fsync).
    this.writeRows.immediate(records);
  }

  /**
   * Flushes the WAL to disk on a thread of the pool (`fdatasync`), so the event loop goes on while the disk
   * works: every commit written before it is durable once it resolves. The WAL stays the same file while
   * this connection is open.
   */
  protected override syncPersisted(): Promise<void> {
    this.walFd ??= openSync(`${this.path}-wal`, 'r');
    const fd = this.walFd;
    const seq = this.headSeq;
    return new Promise((resolve, reject) =>
      fdatasync(fd, (err) => {
        if (err) return reject(err);
        resolve();
        // Scheduled once durable: the callers of this commit are answered first.
        this.scheduleAgentIndex(seq);
      }),
    );
  }

  protected release(): void {
    if (this.indexSoon !== null) clearImmediate(this.indexSoon);
    if (this.indexWhenIdle !== null) clearTimeout(this.indexWhenIdle);
    try {
      // Leave the file indexed, so the next open has no tail to index.
      if (!this.isReadOnly) this.indexAgents();
    } catch {
      // Derived data: the next writer's open indexes the tail. Closing must not fail on it.
    } finally {
      this.db.close();
      if (this.walFd !== null) closeSync(this.walFd);
    }
  }

  /**
   * After a commit up to `seq`: index the tail in its own transaction once it is `agentIndexBatch` long
   * (after the callers of this flush are answered), or when no commit has come for `AGENT_INDEX_IDLE_MS`.
   */
  private scheduleAgentIndex(seq: number): void {
    if (seq - this.agentsThrough >= this.agentIndexBatch) {
      this.indexSoon ??= setImmediate(() => {
        this.indexSoon = null;
        this.indexAgentsInBackground();
      });
    } else if (this.indexWhenIdle === null) {
      this.indexWhenIdle = setTimeout(() => this.indexAgentsInBackground(), AGENT_INDEX_IDLE_MS).unref();
    } else {
      this.indexWhenIdle.refresh();
    }
  }

  private indexAgentsInBackground(): void {
    if (this.closed) return;
    try {
      this.indexAgents();
    } catch {
      // Derived data: reads stay exact over a longer tail, and the next commit schedules the indexing again.
    }
  }

  /** Puts every record after `agentsThrough` up to the head into `agent_events`, in one durable transaction. */
  private indexAgents(): void {
    const to = this.headSeq;
    if (to <= this.agentsThrough || this.indexAgentsTo === null) return;
    this.indexAgentsTo.immediate(this.agentsThrough, to);
    this.agentsThrough = to;
  }

  /** Every record with seq ≤ this is in `agent_events`; later ones are read from `events` by seq. */
  private agentsIndexedThrough(): number {
    if (!this.isReadOnly) return this.agentsThrough;
    return this.agentsThroughRow === null ? 0 : (this.agentsThroughRow.get() as number);
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
    if (agent === undefined) return this.select(afterSeq, limit, vault, agent, type);
    // The agent's records up to `through` come from agent_events; the tail after it from events by seq.
    const through = this.agentsIndexedThrough();
    const records = afterSeq < through ? this.selectIndexed(afterSeq, through, limit, vault, agent, type) : [];
    if (records.length < limit) records.push(...this.select(Math.max(afterSeq, through), limit - records.length, vault, agent, type));
    return records;
  }

  /** Records after `afterSeq` matching the given columns, in seq order (an index range, or the tail by seq). */
  private select(afterSeq: number, limit: number, vault?: string, agent?: string, type?: string): LogRecord[] {
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
    return this.all(`SELECT ${RECORD_COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, params);
  }

  /** Records of `agent` in (afterSeq, through], in seq order, driven by agent_events. */
  private selectIndexed(afterSeq: number, through: number, limit: number, vault: string | undefined, agent: string, type?: string): LogRecord[] {
    const params: unknown[] = [agent, afterSeq, through];
    const where = ['a.agent = ?', 'a.seq > ?', 'a.seq <= ?'];
    if (vault !== undefined) {
      where.push('e.vault = ?');
      params.push(vault);
    }
    if (type !== undefined) {
      where.push('e.type = ?');
      params.push(type);
    }
    params.push(limit);
    // CROSS JOIN keeps agent_events the outer loop: its key order is the seq order the read returns.
    const columns = 'e.seq, e.prev_hash AS prevHash, e.hash, e.body';
    return this.all(`SELECT ${columns} FROM agent_events a CROSS JOIN events e ON e.seq = a.seq WHERE ${where.join(' AND ')} ORDER BY a.seq LIMIT ?`, params);
  }

  private all(sql: string, params: unknown[]): LogRecord[] {
    let statement = this.reads.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.reads.set(sql, statement);
    }
    const rows = statement.all(...params) as RecordRow[];
    // Rows of a commit not yet durable are in the file already: they are not shown before the log answers it.
    return (this.isReadOnly ? rows : rows.filter((r) => r.seq <= this.durableSeq)).map(toLogRecord);
  }

  async runSubmission(vault: string, run: string): Promise<LogRecord | null> {
    if (this.closed) throw new LogClosedError();
    const row = this.submission.get(run, vault) as RecordRow | undefined;
    return row === undefined || (!this.isReadOnly && row.seq > this.durableSeq) ? null : toLogRecord(row);
  }

  async verify(): Promise<VerifyReport> {
    if (this.closed) throw new LogClosedError();
    // Rows up to the head as of now must all be there; rows appended during the walk are checked too.
    const target = this.head().seq;
    // agent_events only grows: what it covered at the start must still match the log at the end.
    const through = this.agentsIndexedThrough();
    const state = { seq: 0, hash: GENESIS_HASH };
    for (;;) {
      let rows = 0;
      for (const row of this.chunk.iterate(state.seq, VERIFY_CHUNK) as IterableIterator<StoredRecord>) {
        rows += 1;
        const bad = checkRecord(state, row) ?? this.checkAgentEntry(row, through);
        if (bad !== null) return { ok: false, checked: state.seq, headSeq: this.head().seq, firstBad: bad };
        state.seq = row.seq;
        state.hash = row.hash;
      }
      if (rows < VERIFY_CHUNK) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) throw new LogClosedError();
    }
    if (state.seq < target) return { ok: false, checked: state.seq, headSeq: target, firstBad: { seq: state.seq + 1, reason: 'gap' } };
    const stray = await this.strayAgentEntry(through);
    if (stray !== null) {
      return { ok: false, checked: stray - 1, headSeq: state.seq, firstBad: { seq: stray, reason: 'agent index mismatch' } };
    }
    return { ok: true, checked: state.seq, headSeq: state.seq };
  }

  /**
   * The lowest seq ≤ `through` of an agent_events row that names no record of that agent (agent reads would
   * return a record that is not the agent's), or null. Walks the table in key order, a chunk per turn.
   */
  private async strayAgentEntry(through: number): Promise<number | null> {
    if (this.agentEntries === null) return null;
    let lowest: number | null = null;
    let last: AgentEntry | null = null;
    for (;;) {
      const chunk = (
        last === null ? this.agentEntries.first.all(VERIFY_CHUNK) : this.agentEntries.after.all(last.agent, last.seq, VERIFY_CHUNK)
      ) as AgentEntry[];
      for (const entry of chunk) {
        if (entry.stray === 1 && entry.seq <= through && (lowest === null || entry.seq < lowest)) lowest = entry.seq;
      }
      if (chunk.length < VERIFY_CHUNK) return lowest;
      last = chunk[chunk.length - 1];
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) throw new LogClosedError();
    }
  }

  /** A record the per-agent index covers must be in it under its own agent (else agent reads would miss it). */
  private checkAgentEntry(row: StoredRecord, through: number): { seq: number; reason: string } | null {
    if (row.agent === null || row.seq > through || this.agentEntry === null) return null;
    return this.agentEntry.get(row.agent, row.seq) === undefined ? { seq: row.seq, reason: 'agent index mismatch' } : null;
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
