/** Snapshot rules shared by every engine. */
import { canonicalJson } from '../../protocol/canonical.js';
import type { Snapshot } from './event-log.js';
import { digestOfCanonical } from './hash.js';

/** How many snapshots an engine keeps (the newest ones). */
export const SNAPSHOTS_KEPT = 3;

/**
 * Checks that `snapshot` may be written to a log whose head is `headSeq` — its seq is a committed position
 * and its digest is the digest of its state — and returns the state's canonical JSON to store.
 */
export function checkSnapshot(snapshot: Snapshot, headSeq: number): string {
  if (!Number.isSafeInteger(snapshot.seq) || snapshot.seq < 0 || snapshot.seq > headSeq) {
    throw new RangeError(`snapshot seq must be an integer in [0, ${headSeq}] (the head), got ${snapshot.seq}`);
  }
  const canonical = canonicalJson(snapshot.state);
  if (digestOfCanonical(canonical) !== snapshot.digest) {
    throw new Error(`snapshot at seq ${snapshot.seq}: digest does not match its state`);
  }
  return canonical;
}

/**
 * Rebuilds a stored snapshot, refusing one whose state no longer matches its digest. The state is stored as
 * its canonical JSON, so hashing the stored text is the check: any edit to it shows.
 */
export function loadSnapshot(seq: number, digest: string, stateJson: string): Snapshot {
  if (digestOfCanonical(stateJson) !== digest) throw new Error(`stored snapshot at seq ${seq} does not match its digest`);
  return { seq, digest, state: JSON.parse(stateJson) };
}
