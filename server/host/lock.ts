/**
 * One writer per data dir: `toka serve` and the CLI's writing commands hold `<data>/lock`, a lock the
 * operating system releases when the holder dies, however it dies.
 *
 * `<data>/lock` is an empty SQLite database. The holder keeps a `BEGIN IMMEDIATE` transaction open on it for
 * as long as it holds the lock: SQLite takes its RESERVED lock, a POSIX `fcntl` byte-range lock, which the
 * kernel drops when the process exits or is killed. A second process (or a second connection in the same
 * process: SQLite tracks its locks per file, not per descriptor) cannot begin one: SQLITE_BUSY, a Conflict.
 * There is no stale state to judge and no pid to trust. Nothing is ever written to the database, and the file
 * stays in place (removing a lock file another process may have just opened would split the lock in two).
 *
 * `<data>/lock.pid` holds the holder's pid, written after the lock is taken and removed before it is
 * released. It is only ever read for messages (who holds the data dir) — never to decide whether it is held.
 */
import { chmodSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { HostError } from './errors.js';

/** File name of the lock inside the data dir. */
export const LOCK_FILE = 'lock';
/** File name of the holder's pid inside the data dir. */
export const LOCK_PID_FILE = 'lock.pid';
/**
 * How long `acquire` waits for a lock that is held. Only `holder()` holds it for an instant (it tests the lock
 * by taking and dropping it); a real holder keeps it, and the wait ends in Conflict.
 */
const ACQUIRE_WAIT_MS = 250;

export class DataDirLock {
  private constructor(
    readonly path: string,
    private readonly pidPath: string,
    private db: Database.Database | null,
  ) {}

  /** Take the data dir's lock, or fail with Conflict (naming the holder's pid) while another holds it. */
  static acquire(dataDir: string): DataDirLock {
    const path = join(dataDir, LOCK_FILE);
    const db = new Database(path, { timeout: ACQUIRE_WAIT_MS });
    try {
      chmodSync(path, 0o600);
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      db.close();
      if (!isBusy(err)) throw err;
      const pid = recordedPid(dataDir);
      throw new HostError('Conflict', `data dir ${dataDir} is in use by ${pid !== null ? `process ${pid}` : 'another process'} (is toka serve running?)`, {
        ...(pid !== null ? { pid } : {}),
      });
    }
    const pidPath = join(dataDir, LOCK_PID_FILE);
    const temporary = `${pidPath}.${process.pid}`;
    writeFileSync(temporary, String(process.pid), { mode: 0o600 });
    renameSync(temporary, pidPath);
    return new DataDirLock(path, pidPath, db);
  }

  /**
   * Whether a process holds the data dir: null when none does, else the pid the holder recorded (0 in the
   * instant between its taking the lock and recording its pid). Tests the lock itself, by taking it without
   * waiting and dropping it at once.
   */
  static holder(dataDir: string): number | null {
    let db: Database.Database;
    try {
      db = new Database(join(dataDir, LOCK_FILE), { fileMustExist: true, timeout: 0 });
    } catch {
      return null;
    }
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      return null;
    } catch (err) {
      if (!isBusy(err)) throw err;
      return recordedPid(dataDir) ?? 0;
    } finally {
      db.close();
    }
  }

  /** Release the lock (idempotent). The pid file goes first, so it never names a later holder's lock as ours. */
  release(): void {
    if (!this.db) return;
    try {
      unlinkSync(this.pidPath);
    } catch {
      // not there: nothing to remove
    }
    this.db.exec('ROLLBACK');
    this.db.close();
    this.db = null;
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function recordedPid(dataDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, LOCK_PID_FILE), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
