import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { WorldState } from '../../../protocol/kernel.js';
import { GENESIS_HASH, recordHash, stateDigest } from '../../../server/store/hash.js';
import { ev } from './helpers.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('store hash', () => {
  it('GENESIS_HASH is 64 zeros', () => {
    assert.equal(GENESIS_HASH, '0'.repeat(64));
  });

  it('recordHash = sha256(prevHash \\n seq \\n canonicalJson(event))', () => {
    const event = { type: 'T', vault: 'v', opId: 'o', at: 1, by: { sub: 's', jti: 'j' } };
    const expected = sha256(`${GENESIS_HASH}\n1\n{"at":1,"by":{"jti":"j","sub":"s"},"opId":"o","type":"T","vault":"v"}`);
    assert.equal(recordHash(GENESIS_HASH, 1, event), expected);
    assert.notEqual(recordHash(GENESIS_HASH, 2, event), expected);
    assert.equal(recordHash(GENESIS_HASH, 1, { ...ev(1), extra: undefined }), recordHash(GENESIS_HASH, 1, ev(1)));
  });

  it('stateDigest does not depend on key order', () => {
    const a: WorldState = { agents: {}, tasks: {}, observations: { x: 1, y: 2 }, roots: {}, grants: {}, revokedTokens: {}, ext: {} };
    const b = { ext: {}, revokedTokens: {}, grants: {}, roots: {}, observations: { y: 2, x: 1 }, tasks: {}, agents: {} } as WorldState;
    assert.equal(stateDigest(a), stateDigest(b));
    assert.match(stateDigest(a), /^[0-9a-f]{64}$/);
  });
});
