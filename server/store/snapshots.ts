/** Snapshot rules shared by every engine. */
import type { Snapshot, SnapshotInput } from './event-log.js';
import { digestOfCanonical } from './hash.js';

/** How many snapshots an engine keeps (the newest ones). */
export const SNAPSHOTS_KEPT = 3;

/**
 * Checks that `snapshot` may be written to a log whose head is `headSeq` (its seq is a committed position)
 * and returns its digest: the hash of the canonical state text, which is also what is stored.
 */
export function snapshotDigest(snapshot: SnapshotInput, headSeq: number): string {
  if (!Number.isSafeInteger(snapshot.seq) || snapshot.seq < 0 || snapshot.seq > headSeq) {
    throw new RangeError(`snapshot seq must be an integer in [0, ${headSeq}] (the head), got ${snapshot.seq}`);
  }
  if (typeof snapshot.canonicalState !== 'string' || !snapshot.canonicalState.startsWith('{')) {
    throw new TypeError(`snapshot at seq ${snapshot.seq}: canonicalState must be the canonical JSON of a state object`);
  }
  return digestOfCanonical(snapshot.canonicalState);
}

/**
 * Rebuilds a stored snapshot, refusing one whose state no longer matches its digest. The state is stored as
 * its canonical JSON, so hashing the stored text is the check: any edit to it shows.
 */
export function loadSnapshot(seq: number, digest: string, stateJson: string): Snapshot {
  if (digestOfCanonical(stateJson) !== digest) throw new Error(`stored snapshot at seq ${seq} does not match its digest`);
  return { seq, digest, state: JSON.parse(stateJson) };
}
