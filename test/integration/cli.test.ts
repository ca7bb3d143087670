/**
 * The `toka` CLI as a user runs it: the built bundle in a real process, a real data dir.
 * Results on stdout, one-line errors on stderr, exit 1 for a failed operation, 2 for bad usage.
 * Build first: `node esbuild.mjs` (npm test does it).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LogRecord } from '../../protocol/events.js';
import { DataDirLock } from '../../server/host/lock.js';
import { toka, TOKA_BIN, type CliRun } from '../helpers/cli.js';

/** Asserts a failed run: the exit code and exactly one `toka: ...` line on stderr matching `pattern`. */
function failed(run: CliRun, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code (stderr: ${run.stderr})`);
  const lines = run.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one stderr line, got: ${run.stderr}`);
  assert.match(lines[0], /^toka: /);
  assert.match(lines[0], pattern);
  assert.equal(run.stdout, '');
}

describe('toka CLI (issue 2 acceptance)', function () {
  this.timeout(30_000);
  let dir: string;
  let data: string;
  let opFile: string;
  /** Set up in before() so that every test runs alone (--grep): alice's token and the agent she spawned. */
  let token: string;
  let agentId: string;

  const d = (...args: string[]) => toka([...args, '--data', data]);

  /** The `worker` agent spawned by a `toka submit` of the op file. */
  function spawnedWorker(run: CliRun): string {
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { records: LogRecord[] };
    const spawned = result.records.map((r) => r.event as unknown as { type: string; agent: string; name: string }).find((e) => e.type === 'AgentSpawned' && e.name === 'worker');
    assert.ok(spawned, run.stdout);
    return spawned.agent;
  }

  before(async () => {
    assert.ok(existsSync(TOKA_BIN), 'dist/toka.js missing: run node esbuild.mjs');
    dir = mkdtempSync(join(tmpdir(), 'toka-cli-'));
    data = join(dir, 'data');
    opFile = join(dir, 'spawn.json');
    writeFileSync(opFile, JSON.stringify({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'worker' } }));
    const init = await d('init');
    assert.equal(init.code, 0, init.stderr);
    const mint = await d('token', 'mint', '--sub', 'alice', '--vault', 'v1', '--perm', 'agent:spawn,task:schedule');
    assert.equal(mint.code, 0, mint.stderr);
    token = mint.stdout.trim();
    agentId = spawnedWorker(await d('submit', opFile, '--token', token));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('init creates the data dir (0700), the key ring and the log', async () => {
    const fresh = join(dir, 'fresh');
    const run = await toka(['init', '--data', fresh]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statSync(fresh).mode & 0o777, 0o700);
    assert.ok(existsSync(join(fresh, 'events.db')));
    assert.equal(statSync(join(fresh, 'keys.json')).mode & 0o777, 0o600);
    assert.equal(DataDirLock.holder(fresh), null, 'lock released on exit');
  });

  it('token mint (HS256) then token inspect shows the claims and status valid', async () => {
    const mint = await d('token', 'mint', '--sub', 'alice', '--vault', 'v1', '--perm', 'agent:spawn,task:schedule');
    assert.equal(mint.code, 0, mint.stderr);
    const token = mint.stdout.trim();
    assert.equal(token.split('.').length, 3);
    const inspect = await d('token', 'inspect', token);
    assert.equal(inspect.code, 0, inspect.stderr);
    const shown = JSON.parse(inspect.stdout);
    assert.equal(shown.header.alg, 'HS256');
    assert.equal(shown.header.typ, 'toka.cap+jwt');
    assert.equal(shown.claims.sub, 'alice');
    assert.equal(shown.claims.vault, 'v1');
    assert.deepEqual(shown.claims.permissions, ['agent:spawn', 'task:schedule']);
    assert.equal(shown.status, 'valid');
  });

  it('token mint --alg EdDSA then token inspect', async () => {
    const mint = await d('token', 'mint', '--sub', 'bob', '--vault', 'v1', '--perm', 'state:read', '--alg', 'EdDSA', '--ttl', '5m');
    assert.equal(mint.code, 0, mint.stderr);
    const inspect = await d('token', 'inspect', mint.stdout.trim());
    assert.equal(inspect.code, 0, inspect.stderr);
    const shown = JSON.parse(inspect.stdout);
    assert.equal(shown.header.alg, 'EdDSA');
    assert.equal(shown.claims.sub, 'bob');
    assert.equal(shown.claims.exp - shown.claims.iat, 300);
    assert.equal(shown.status, 'valid');
  });

  it('submit an operation file with the token prints the JSON result', async () => {
    const run = await d('submit', opFile, '--token', token);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { opId: string; records: LogRecord[] };
    assert.equal(typeof result.opId, 'string');
    const events = result.records.map((r) => r.event as unknown as { type: string; opId: string; agent: string; name: string });
    for (const event of events) assert.equal(event.opId, result.opId);
    const spawned = events.find((e) => e.type === 'AgentSpawned' && e.name === 'worker');
    assert.ok(spawned, run.stdout);
    assert.notEqual(spawned.agent, agentId, 'a new agent');
  });

  it('state shows the agent', async () => {
    const run = await d('state');
    assert.equal(run.code, 0, run.stderr);
    const shown = JSON.parse(run.stdout);
    assert.equal(shown.state.agents[agentId].name, 'worker');
    assert.equal(shown.state.agents[agentId].vault, 'v1');
    assert.match(shown.digest, /^[0-9a-f]{64}$/);
  });

  it('events --after N prints exactly the records after N', async () => {
    const all = await d('events');
    assert.equal(all.code, 0, all.stderr);
    const records = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
    assert.ok(records.length >= 3, 'two grants and a spawn');
    assert.deepEqual(records.map((r) => r.seq), records.map((_, i) => i + 1));
    const n = records.length - 2;
    const after = await d('events', '--after', String(n));
    assert.equal(after.code, 0, after.stderr);
    const tail = after.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
    assert.deepEqual(tail, records.slice(n));
    const none = await d('events', '--after', String(records.length));
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
  });

  it('verify exits 0 on an intact log', async () => {
    const run = await d('verify');
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.liveDigest, report.replayDigest);
  });

  it('missing flags: exit 2 and one line', async () => {
    failed(await d('token', 'mint', '--vault', 'v1', '--perm', 'state:read'), 2, /missing --sub/);
    failed(await d('submit', opFile), 2, /no token/);
    failed(await d('token', 'mint', '--sub', 'a', '--vault', 'v1', '--perm', 'state:read', '--bogus'), 2, /bogus/);
  });

  it('an invalid JSON operation file: exit 2', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"type": "SpawnSubAgent",');
    failed(await d('submit', bad, '--token', token), 2, /not valid JSON/);
  });

  it('unknown command: exit 2', async () => {
    failed(await d('frobnicate'), 2, /unknown command "frobnicate/);
  });

  it('an operation the token does not cover: exit 1 CapabilityDenied', async () => {
    const mint = await d('token', 'mint', '--sub', 'carol', '--vault', 'v1', '--perm', 'task:schedule');
    assert.equal(mint.code, 0, mint.stderr);
    failed(await d('submit', opFile, '--token', mint.stdout.trim()), 1, /\(CapabilityDenied\b/);
  });

  it('a revoked token: submit fails Unauthenticated: ERR_TOKEN_REVOKED', async () => {
    const mint = await d('token', 'mint', '--sub', 'dave', '--vault', 'v1', '--perm', 'agent:spawn', '--json');
    assert.equal(mint.code, 0, mint.stderr);
    const minted = JSON.parse(mint.stdout) as { token: string; claims: { jti: string } };
    assert.equal((await d('submit', opFile, '--token', minted.token)).code, 0);
    const revoke = await d('token', 'revoke', minted.claims.jti, '--vault', 'v1');
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stderr, /^toka: revoked \(seq \d+\)\n$/);
    failed(await d('submit', opFile, '--token', minted.token), 1, /\(Unauthenticated: ERR_TOKEN_REVOKED\)$/);
    const inspect = await d('token', 'inspect', minted.token);
    assert.equal(inspect.code, 1);
    assert.equal(JSON.parse(inspect.stdout).status, 'ERR_TOKEN_REVOKED');
  });

  it('tampering with one stored record: verify exits 1 and names its seq', async () => {
    // On a copy, so the other tests keep an intact log whatever the order.
    const tampered = join(dir, 'tampered');
    cpSync(data, tampered, { recursive: true });
    const db = new Database(join(tampered, 'events.db'));
    let seq: number;
    try {
      const row = db.prepare(`SELECT seq, body FROM events WHERE type = 'AgentSpawned' AND body LIKE '%"worker"%' ORDER BY seq LIMIT 1`).get() as {
        seq: number;
        body: string;
      };
      seq = row.seq;
      assert.ok(row.body.includes('"worker"'));
      db.prepare('UPDATE events SET body = ? WHERE seq = ?').run(row.body.replace('"worker"', '"w0rker"'), seq);
    } finally {
      db.close();
    }
    const run = await toka(['verify', '--data', tampered]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(JSON.parse(run.stdout).ok, false);
    assert.match(run.stderr, new RegExp(`^toka: chain broken at seq ${seq}\\b`));
  });
});
