/**
 * `toka spec check` and `toka spec schema` as a user runs them: the built CLI in a child process.
 * Build first: `node esbuild.mjs` (npm test does it).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_SPEC_SCHEMA } from '../../server/runtime/spec/index.js';
import { toka } from '../helpers/cli.js';

describe('toka spec (CLI)', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-spec-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts the examples workstream and prints its waves', async () => {
    const run = await toka(['spec', 'check', 'examples/release-notes']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /waves \[\["collect-changes"\],\["changelog-writer","release-notes-writer"\],\["release-announcer"\]\]/);
    assert.match(run.stderr, /4 specs checked: 0 errors, 0 warnings/);
  });

  it('prints diagnostics like a compiler and exits 1 on errors', async () => {
    const text = readFileSync('examples/release-notes/changelog-writer.yaml', 'utf8').replace('priority: high\ncapabilities', 'priority: urgent\ncapabilities');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, text);
    const run = await toka(['spec', 'check', file]);
    assert.equal(run.code, 1, run.stderr);
    const line = text.split('\n').indexOf('  priority: urgent') + 1;
    assert.equal(run.stdout, `${file}:${line}:13: error schema/enum: spec.priority: "urgent" is not one of critical, high, medium, low\n`);
    assert.match(run.stderr, /1 spec checked: 1 error, 0 warnings/);
  });

  it('--json: files with digests, diagnostics with ranges, waves', async () => {
    cpSync('examples/release-notes', dir, { recursive: true });
    const announcer = join(dir, 'release-announcer.yaml');
    writeFileSync(announcer, readFileSync(announcer, 'utf8').replace('    - release-notes-writer: summarises the release notes\n', '    - release-notes-writer: summarises the release notes\n    - translator: not in this workstream\n'));
    const line = readFileSync(announcer, 'utf8').split('\n').indexOf('    - translator: not in this workstream') + 1;
    const run = await toka(['spec', 'check', dir, '--json']);
    assert.equal(run.code, 1, run.stderr);
    const out = JSON.parse(run.stdout) as { ok: boolean; files: { file: string; digest?: string }[]; diagnostics: Record<string, unknown>[]; workstreams: { waves?: unknown }[] };
    assert.equal(out.ok, false);
    assert.equal(out.files.length, 4);
    for (const f of out.files) assert.match(f.digest ?? '', /^[0-9a-f]{64}$/);
    assert.equal(out.diagnostics.length, 1);
    assert.deepEqual(
      { ...out.diagnostics[0], message: undefined },
      { file: announcer, line, column: 7, endLine: line, endColumn: 41, severity: 'error', rule: 'workstream/unknown-dependency', message: undefined },
    );
    assert.equal(out.workstreams[0].waves, undefined);
  });

  it('a cycle across files is reported at each dependency entry', async () => {
    cpSync('examples/release-notes', dir, { recursive: true });
    const collector = join(dir, 'collect-changes.yaml');
    writeFileSync(collector, readFileSync(collector, 'utf8').replace('  required: {}\n', '  required:\n    release-announcer: loops back\n'));
    const at = readFileSync(collector, 'utf8').split('\n').indexOf('    release-announcer: loops back') + 1;
    const run = await toka(['spec', 'check', dir]);
    assert.equal(run.code, 1);
    const lines = run.stdout.trim().split('\n');
    // Every agent is in the cycle: each of the five dependency entries is reported.
    assert.equal(lines.length, 5, run.stdout);
    for (const l of lines) assert.match(l, /: error workstream\/cycle: dependency cycle among changelog-writer, collect-changes, release-announcer, release-notes-writer: /);
    assert.ok(lines.includes(`${collector}:${at}:5: error workstream/cycle: dependency cycle among changelog-writer, collect-changes, release-announcer, release-notes-writer: changelog-writer → collect-changes → release-announcer → changelog-writer`), run.stdout);
  });

  it('bad usage exits 2 with one line', async () => {
    const none = await toka(['spec', 'check']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^toka: spec check: give a spec file/);
    const missing = await toka(['spec', 'check', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.yaml \(ENOENT\)/);
  });

  it('spec schema prints the schema the loader validates with', async () => {
    const run = await toka(['spec', 'schema']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), JSON.parse(JSON.stringify(AGENT_SPEC_SCHEMA)));
  });
});
