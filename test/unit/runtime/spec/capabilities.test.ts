/** The security bound of a spec: capability names → permissions, and the grant check against spec and spawner. */
import assert from 'node:assert/strict';
import { CAPABILITY_NAMES, checkGrant, parseCpu, parseDurationMs, parseSize, permissionsNotCovered, permissionsOf } from '../../../../server/runtime/spec/index.js';

describe('spec capabilities and units', () => {
  it('maps every Toka capability name of the format, accepts known permissions, refuses the rest', () => {
    assert.deepEqual([...CAPABILITY_NAMES.keys()].sort(), ['cargo-execution', 'ci-integration', 'filesystem-read', 'filesystem-write', 'git-access', 'network-access']);
    assert.deepEqual(permissionsOf('filesystem-read'), ['tool:fs-read']);
    assert.deepEqual(permissionsOf('state:read'), ['state:read']);
    assert.deepEqual(permissionsOf('task:*'), ['task:*']);
    assert.equal(permissionsOf('teleport'), undefined);
    assert.equal(permissionsOf('state:teleport'), undefined);
    assert.equal(permissionsOf('constructor'), undefined);
    assert.equal(permissionsOf('__proto__'), undefined);
  });

  it('a grant must stay within both the spec bound and what the spawner holds (wildcards honoured)', () => {
    assert.deepEqual(checkGrant(['state:read'], ['state:read', 'events:read'], ['*']), { ok: true, beyondSpec: [], beyondSpawner: [] });
    assert.deepEqual(checkGrant(['state:read', 'task:schedule'], ['state:read'], ['task:*', 'state:read']), { ok: false, beyondSpec: ['task:schedule'], beyondSpawner: [] });
    assert.deepEqual(checkGrant(['state:read', 'events:read'], ['*'], ['state:read']), { ok: false, beyondSpec: [], beyondSpawner: ['events:read'] });
    // A wildcard request is covered only by the same wildcard or `*`, never by its concrete members.
    assert.deepEqual(permissionsNotCovered(['task:*'], ['task:schedule', 'task:cancel']), ['task:*']);
    assert.deepEqual(permissionsNotCovered(['task:cancel'], ['task:*']), []);
  });

  it('parses sizes (1 KB = 1024 B), CPU shares and durations; refuses zero and overflow', () => {
    assert.equal(parseSize('100MB'), 100 * 1024 * 1024);
    assert.equal(parseSize('1024'), 1024);
    assert.equal(parseSize('7B'), 7);
    assert.equal(parseSize('1TB'), 1024 ** 4);
    assert.equal(parseSize('9999999TB'), undefined);
    assert.equal(parseSize('12 MB'), undefined);
    assert.equal(parseCpu('50%'), 500);
    assert.equal(parseCpu('0.75'), 750);
    assert.equal(parseCpu('90'), 900);
    assert.equal(parseCpu(1), 1000);
    assert.equal(parseCpu('200%'), 2000);
    assert.equal(parseCpu('0%'), undefined);
    assert.equal(parseCpu(0), undefined);
    assert.equal(parseDurationMs('5m'), 300_000);
    assert.equal(parseDurationMs('100ms'), 100);
    assert.equal(parseDurationMs('1000'), 1_000_000);
    assert.equal(parseDurationMs(30), 30_000);
    assert.equal(parseDurationMs('1d'), 86_400_000);
    assert.equal(parseDurationMs('0s'), undefined);
    assert.equal(parseDurationMs('5x'), undefined);
  });
});
