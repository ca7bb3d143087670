/**
 * The event log's hash chain and the world-state digest.
 * record hash = hex SHA-256 of `prevHash + "\n" + seq + "\n" + canonicalJson(event)`.
 */
import { hash } from 'node:crypto';
import { canonicalJson } from '../../protocol/canonical.js';
import type { KernelEvent, WorldState } from '../../protocol/kernel.js';

/** The `prevHash` of record 1, and the head hash of an empty log. */
export const GENESIS_HASH = '0'.repeat(64);

/** Hash of the record at `seq` whose predecessor hashed to `prevHash`. */
export function recordHash(prevHash: string, seq: number, event: KernelEvent): string {
  return hashBody(prevHash, seq, canonicalJson(event));
}

/** Same as `recordHash` for an event already encoded with `canonicalJson`. */
export function hashBody(prevHash: string, seq: number, body: string): string {
  return hash('sha256', `${prevHash}\n${seq}\n${body}`, 'hex');
}

/** Hex SHA-256 of `canonicalJson(state)`: equal states have equal digests. */
export function stateDigest(state: WorldState): string {
  return digestOfCanonical(canonicalJson(state));
}

/** The state digest of a state already encoded with `canonicalJson` (as snapshots are stored). */
export function digestOfCanonical(canonical: string): string {
  return hash('sha256', canonical, 'hex');
}
