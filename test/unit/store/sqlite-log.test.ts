import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../../protocol/canonical.js';
import { openEventLog } from '../../../server/store/index.js';
import { GENESIS_HASH } from '../../../server/store/hash.js';
import { SqliteEventLog } from '../../../server/store/sqlite-log.js';
import { describeEventLog } from './behaviour.js';
import { ev, nextTurn, range, seqs } from './helpers.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'toka-store-'));
}

describeEventLog('sqlite', async () => {
  const dir = tempDir();
  const log = SqliteEventLog.open(join(dir, 'events.db'));
  return {
    log,
    cleanup: async () => {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteEventLog', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'nested', 'data', 'events.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes `n` single-event batches and closes the log. */
  async function seed(n: number): Promise<void> {
    const log = SqliteEventLog.open(path);
    await log.append(range(1, n).map((i) => ev(i)));
    await log.close();
  }

  /** Runs `sql` on the file through a second connection, as an attacker or a bad disk would. */
  function tamper(sql: string, ...params: unknown[]): void {
    const db = new Database(path);
    db.prepare(sql).run(...params);
    db.close();
  }

  async function verifyFile() {
    const log = SqliteEventLog.open(path);
    try {
      return await log.verify();
    } finally {
      await log.close();
    }
  }

  it('keeps the log file and its WAL owner-only (0600) whatever the umask', async () => {
    const previous = process.umask(0o022);
    try {
      const log = SqliteEventLog.open(path);
      await log.append([ev(1)]);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
      await log.close();
    } finally {
      process.umask(previous);
    }
  });

  it('creates directories, uses WAL with synchronous=NORMAL (the log flushes the WAL itself) and the documented tables', async () => {
    const log = SqliteEventLog.open(path);
    await log.append([ev(1)]);
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const names = (db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").pluck().all() as string[]);
    assert.deepEqual(names, ['agent_events', 'agent_events_through', 'events', 'events_by_type', 'events_by_vault', 'run_submissions', 'snapshots']);
    const row = db.prepare('SELECT * FROM events').get() as Record<string, unknown>;
    assert.deepEqual(Object.keys(row), ['seq', 'type', 'vault', 'agent', 'prev_hash', 'hash', 'body']);
    assert.equal(row.prev_hash, GENESIS_HASH);
    db.close();
    assert.equal((log as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 1);
    await log.close();
  });

  describe('a commit is answered, published and read only once its WAL flush is done', () => {
    /** The log with its WAL flush held until `release` (or failed by `fail`): what the disk would take. */
    function heldSync(log: SqliteEventLog) {
      const held: { release(): void; fail(err: Error): void }[] = [];
      const real = (log as unknown as { syncPersisted(): Promise<void> }).syncPersisted.bind(log);
      (log as unknown as { syncPersisted(): Promise<void> }).syncPersisted = () =>
        new Promise<void>((resolve, reject) => held.push({ release: () => real().then(resolve, reject), fail: reject }));
      return held;
    }

    it('answers, publishes and shows reads in order, after the flush of each commit', async () => {
      const log = SqliteEventLog.open(path);
      const held = heldSync(log);
      const published: number[] = [];
      log.subscribe({ afterSeq: 0 }, { onRecord: (r) => void published.push(r.seq) });
      let answered = 0;
      const first = log.append([{ ...ev(1, { type: 'RunSubmitted' }), run: { id: 'r1' } }]).then(() => answered++);
      await nextTurn();
      const second = log.append([ev(2)]).then(() => answered++);
      await nextTurn();
      assert.equal(held.length, 2, 'two commits, each waiting for its flush');
      assert.equal(answered, 0);
      assert.deepEqual(await log.read(), [], 'rows written but not yet durable are not read');
      assert.equal(await log.runSubmission('v1', 'r1'), null);
      held[1].release();
      await nextTurn();
      assert.equal(answered, 0, 'the second commit waits for the first');
      held[0].release();
      await Promise.all([first, second]);
      assert.deepEqual(seqs(await log.read()), [1, 2]);
      assert.equal((await log.runSubmission('v1', 'r1'))?.seq, 1);
      await nextTurn();
      assert.deepEqual(published, [1, 2]);
      await log.close();
    });

    it('a flush that cannot start refuses its commit and every later append; the process stays up', async () => {
      const log = SqliteEventLog.open(path);
      (log as unknown as { syncPersisted(): Promise<void> }).syncPersisted = () => {
        throw new Error('EMFILE: too many open files');
      };
      await assert.rejects(log.append([ev(1)]), /EMFILE/);
      await assert.rejects(log.append([ev(2)]), /EMFILE/);
      assert.deepEqual(await log.read(), []);
      await log.close();
    });

    it('a flush that fails refuses its commit, every later one and every later append', async () => {
      const log = SqliteEventLog.open(path);
      const held = heldSync(log);
      const first = log.append([ev(1)]);
      await nextTurn();
      const second = log.append([ev(2)]);
      await nextTurn();
      held[0].fail(new Error('EIO'));
      held[1].release();
      await assert.rejects(first, /EIO/);
      await assert.rejects(second, /EIO/);
      await assert.rejects(log.append([ev(3)]), /EIO/);
      assert.deepEqual(await log.read(), []);
      await log.close();
    });
  });

  it('reopening keeps the head and continues the chain', async () => {
    const first = SqliteEventLog.open(path);
    await first.append(range(1, 20).map((i) => ev(i)));
    const head = first.head();
    await first.close();
    const second = SqliteEventLog.open(path);
    assert.deepEqual(second.head(), head);
    const [next] = await second.append([ev(21)]);
    assert.equal(next.seq, 21);
    assert.equal(next.prevHash, head.hash);
    assert.deepEqual(await second.verify(), { ok: true, checked: 21, headSeq: 21 });
    await second.close();
  });

  it('verify names an edited body', async () => {
    await seed(10);
    tamper("UPDATE events SET body = replace(body, '\"n\":4', '\"n\":40') WHERE seq = 4");
    assert.deepEqual(await verifyFile(), { ok: false, checked: 3, headSeq: 10, firstBad: { seq: 4, reason: 'hash mismatch' } });
  });

  it('verify names an edited hash, even when the next link is re-pointed', async () => {
    await seed(10);
    const forged = 'f'.repeat(64);
    tamper('UPDATE events SET hash = ? WHERE seq = 6', forged);
    tamper('UPDATE events SET prev_hash = ? WHERE seq = 7', forged);
    assert.deepEqual((await verifyFile()).firstBad, { seq: 6, reason: 'hash mismatch' });
  });

  it('verify names a broken link', async () => {
    await seed(10);
    tamper('UPDATE events SET prev_hash = ? WHERE seq = 5', 'a'.repeat(64));
    assert.deepEqual((await verifyFile()).firstBad, { seq: 5, reason: 'broken link' });
  });

  it('verify names the seq after a deleted row as a gap', async () => {
    await seed(10);
    tamper('DELETE FROM events WHERE seq = 7');
    assert.deepEqual(await verifyFile(), { ok: false, checked: 6, headSeq: 10, firstBad: { seq: 7, reason: 'gap' } });
  });

  it('verify names a body that is not JSON and an index column that disagrees with the body', async () => {
    await seed(10);
    tamper("UPDATE events SET body = '{not json' WHERE seq = 9");
    tamper("UPDATE events SET vault = 'elsewhere' WHERE seq = 8");
    assert.deepEqual((await verifyFile()).firstBad, { seq: 8, reason: 'index mismatch' });
    tamper("UPDATE events SET vault = 'v1' WHERE seq = 8");
    assert.deepEqual((await verifyFile()).firstBad, { seq: 9, reason: 'body not JSON' });
  });

  it('verify reports rows removed from the tail while open as a gap', async () => {
    const log = SqliteEventLog.open(path);
    await log.append(range(1, 5).map((i) => ev(i)));
    tamper('DELETE FROM events WHERE seq = 5');
    assert.deepEqual((await log.verify()).firstBad, { seq: 5, reason: 'gap' });
    await log.close();
  });

  it('a failed transaction rejects every caller of that flush and leaves the head unchanged', async () => {
    const log = SqliteEventLog.open(path);
    await log.append([ev(1)]);
    const head = log.head();
    // Another writer appends behind our back: the next flush must refuse to fork the chain.
    tamper("INSERT INTO events (seq, type, vault, agent, prev_hash, hash, body) VALUES (2, 'X', 'v1', NULL, ?, ?, '{}')", head.hash, 'b'.repeat(64));
    const calls = [log.append([ev(2)]), log.append([ev(3), ev(4)])];
    for (const call of calls) await assert.rejects(call, /head moved/);
    assert.deepEqual(log.head(), head);
    assert.equal(log.stats().transactions, 1);
    await log.close();
  });

  it('snapshots survive reopening; only the newest three are stored', async () => {
    const log = SqliteEventLog.open(path);
    await log.append(range(1, 5).map((i) => ev(i)));
    for (const seq of [1, 2, 3, 4, 5]) {
      const state = { agents: {}, tasks: {}, observations: { x: seq }, roots: {}, grants: {}, revokedTokens: {}, ext: {} };
      await log.writeSnapshot({ seq, canonicalState: canonicalJson(state) });
    }
    await log.close();
    const db = new Database(path, { readonly: true });
    assert.deepEqual(db.prepare('SELECT seq FROM snapshots ORDER BY seq').pluck().all(), [3, 4, 5]);
    db.close();
    const again = SqliteEventLog.open(path);
    assert.deepEqual((await again.latestSnapshot())?.state.observations, { x: 5 });
    await again.close();
    tamper("UPDATE snapshots SET state = replace(state, '\"x\":5', '\"x\":6') WHERE seq = 5");
    const third = SqliteEventLog.open(path);
    await assert.rejects(third.latestSnapshot(), /does not match its digest/);
    await third.close();
  });

  describe('read-only', () => {
    it('reads, verifies and follows the head while a writer holds the log', async () => {
      const writer = SqliteEventLog.open(path);
      await writer.append(range(1, 3).map((i) => ev(i)));
      const reader = openEventLog({ kind: 'sqlite', path, readOnly: true });
      assert.equal(reader.head().seq, 3);
      await writer.append([ev(4)]);
      assert.deepEqual(reader.head(), writer.head());
      assert.deepEqual(seqs(await reader.read({ afterSeq: 2 })), [3, 4]);
      assert.deepEqual(await reader.verify(), { ok: true, checked: 4, headSeq: 4 });
      await assert.rejects(reader.append([ev(5)]), { code: 'ReadOnlyLog' });
      await assert.rejects(reader.writeSnapshot({ seq: 0, canonicalState: '{}' }), { code: 'ReadOnlyLog' });
      await reader.close();
      await writer.close();
    });

    it('opens a closed log, and reads a missing file as empty without creating it', async () => {
      await seed(2);
      const reader = SqliteEventLog.open(path, { readOnly: true });
      assert.equal(reader.head().seq, 2);
      await reader.close();
      const missing = join(dir, 'absent', 'events.db');
      const empty = SqliteEventLog.open(missing, { readOnly: true });
      assert.deepEqual(empty.head(), { seq: 0, hash: GENESIS_HASH });
      assert.deepEqual(await empty.read(), []);
      assert.deepEqual(await empty.verify(), { ok: true, checked: 0, headSeq: 0 });
      await empty.close();
      assert.equal(existsSync(missing), false);
    });
  });

  it('openEventLog picks the engine', async () => {
    const memory = openEventLog({ kind: 'memory' });
    assert.equal(memory.kind, 'memory');
    await memory.close();
    assert.throws(() => openEventLog({ kind: 'sqlite' }), TypeError);
    const sqlite = openEventLog({ kind: 'sqlite', path });
    assert.equal(sqlite.kind, 'sqlite');
    await sqlite.close();
  });
});
