/**
 * The permission vocabulary of protocol/capability.ts is the one docs/security-model.md lists: every
 * permission has a row, no row names a permission that does not exist, and the listed wildcards are exactly
 * the ones `isKnownPermission` accepts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PERMISSIONS, isKnownPermission } from '../../../protocol/capability.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function permissionsSection(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'security-model.md'), 'utf8');
  const start = doc.indexOf('\n## Permissions');
  assert.ok(start >= 0, 'docs/security-model.md has a Permissions section');
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

describe('the permission vocabulary in docs/security-model.md', () => {
  it('has one row for every permission of PERMISSIONS, and none other', () => {
    const rows = [...permissionsSection().matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual([...rows].sort(), Object.keys(PERMISSIONS).sort());
    assert.equal(new Set(rows).size, rows.length, 'each permission listed once');
  });

  it('lists exactly the valid wildcards', () => {
    const line = permissionsSection().match(/^Valid wildcards: ([^]+?)\.\n\n/m);
    assert.ok(line, 'a "Valid wildcards:" sentence');
    const listed = [...line[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    const areas = [...new Set(Object.keys(PERMISSIONS).map((p) => p.slice(0, p.indexOf(':'))))];
    assert.deepEqual([...listed].sort(), ['*', ...areas.map((a) => `${a}:*`)].sort());
    for (const w of listed) assert.ok(isKnownPermission(w), w);
  });
});
