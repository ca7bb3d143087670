/** The event log: pick an engine. Every engine implements the same `EventLog` contract (event-log.ts). */
import type { EventLog } from './event-log.js';
import { MemoryEventLog } from './memory-log.js';
import { SqliteEventLog } from './sqlite-log.js';

export type * from './event-log.js';
export { LogClosedError, ReadOnlyLogError } from './chained-log.js';
export { GENESIS_HASH, recordHash, stateDigest } from './hash.js';
export { MemoryEventLog } from './memory-log.js';
export { SNAPSHOTS_KEPT } from './snapshots.js';
export { SqliteEventLog, type SqliteOpenOptions } from './sqlite-log.js';
export { DEFAULT_BUFFER_LIMIT, MAX_READ_LIMIT } from './subscriptions.js';

export interface OpenEventLogOptions {
  kind: 'sqlite' | 'memory';
  /** SQLite file (required for `sqlite`); conventionally `<data dir>/events.db`. */
  path?: string;
  /** SQLite only: open without writing (see `SqliteOpenOptions.readOnly`). */
  readOnly?: boolean;
}

export function openEventLog(options: OpenEventLogOptions): EventLog {
  if (options.kind === 'memory') return new MemoryEventLog();
  if (options.path === undefined || options.path === '') throw new TypeError('openEventLog: kind "sqlite" needs a path');
  return SqliteEventLog.open(options.path, { readOnly: options.readOnly });
}
