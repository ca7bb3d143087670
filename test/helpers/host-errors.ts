/** Asserting on the host's typed errors. */
import assert from 'node:assert/strict';
import { HostError } from '../../server/host/errors.js';

/** Await `p`, expect it to reject with a HostError named `name` (and, when given, `data.reason`); return the error. */
export async function rejectsWith(p: Promise<unknown>, name: string, reason?: string): Promise<HostError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HostError, `expected HostError, got ${err}`);
    assert.equal(err.errorName, name, err.message);
    if (reason !== undefined) assert.equal(err.details.reason, reason);
    return err;
  }
  assert.fail(`expected ${name}`);
}
