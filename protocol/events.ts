/**
 * Event log records as every face sees them.
 */
import type { KernelEvent } from './kernel.js';

/** One record of the hash-chained event log. */
export interface LogRecord {
  /** Sequence number, 1-based, gap-free. */
  seq: number;
  /** Hex SHA-256 of the previous record (64 zeros for seq 1). */
  prevHash: string;
  /** Hex SHA-256 over `prevHash`, `seq` and the canonical JSON of `event`. */
  hash: string;
  /** The event the record holds. */
  event: KernelEvent;
}

/** Which records a read or subscription wants. All given fields must match. */
export interface EventFilter {
  /** Only events about this agent id. */
  agent?: string;
  /** Only events of this vault. */
  vault?: string;
  /** Only these event types. */
  types?: string[];
}
