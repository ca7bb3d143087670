/** Snapshot rules shared by every engine. */
import { canonicalJson } from '../../protocol/canonical.js';
import type { Snapshot } from './event-log.js';
import { stateDigest } from './hash.js';

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
  if (stateDigest(snapshot.state) !== snapshot.digest) {
    throw new Error(`snapshot at seq ${snapshot.seq}: digest does not match its state`);
  }
  return canonicalJson(snapshot.state);
}

/** Rebuilds a stored snapshot, refusing one whose state no longer matches its digest. */
export function loadSnapshot(seq: number, digest: string, stateJson: string): Snapshot {
  const snapshot: Snapshot = { seq, digest, state: JSON.parse(stateJson) };
  if (stateDigest(snapshot.state) !== digest) throw new Error(`stored snapshot at seq ${seq} does not match its digest`);
  return snapshot;
}
