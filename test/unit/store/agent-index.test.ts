/**
 * The SQLite log's per-agent index (`agent_events`) is filled behind the head. An agent-filtered read must
 * answer exactly what a scan of the log answers (MemoryEventLog), wherever the indexed/unindexed boundary
 * falls, after reopening, after a crash left the index behind the log, and on a migrated version-1 file.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../../protocol/canonical.js';
import type { EventFilter, LogRecord } from '../../../protocol/events.js';
import type { KernelEvent } from '../../../protocol/kernel.js';
import type { ReadOptions } from '../../../server/store/event-log.js';
import { MemoryEventLog } from '../../../server/store/memory-log.js';
import { AGENT_INDEX_IDLE_MS, SCHEMA_VERSION, SqliteEventLog } from '../../../server/store/sqlite-log.js';
import { ev, nextTurn, range, seqs } from './helpers.js';

const VAULTS = ['v1', 'v2'] as const;
const AGENTS = ['a', 'b', 'c'] as const;
const TYPES = ['TaskScheduled', 'ObservationEmitted', 'AgentSpawned'] as const;

/** An event with the given columns; `agent: null` leaves the field out. */
function event(n: number, vault: string, agent: string | null, type: string): KernelEvent {
  const e = ev(n, { vault, type });
  if (agent === null) delete (e as { agent?: string }).agent;
  else e.agent = agent;
  return e;
}

const eventArb = fc.record({
  vault: fc.constantFrom(...VAULTS),
  agent: fc.constantFrom<string | null>(...AGENTS, null),
  type: fc.constantFrom(...TYPES),
});
const batchesArb = fc.array(fc.array(eventArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 });
const filterArb: fc.Arbitrary<EventFilter> = fc.record(
  {
    vault: fc.constantFrom(...VAULTS, 'none'),
    agent: fc.constantFrom(...AGENTS, 'none'),
    types: fc.uniqueArray(fc.constantFrom(...TYPES), { maxLength: 3 }),
  },
  { requiredKeys: ['agent'] },
);
const readArb: fc.Arbitrary<ReadOptions> = fc.record(
  { afterSeq: fc.nat({ max: 80 }), limit: fc.integer({ min: 1, max: 12 }), filter: filterArb },
  { requiredKeys: ['filter'] },
);

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'toka-agent-index-'));
}

/** The file's indexed-through seq and the agent_events rows, read through a second connection. */
function indexState(path: string): { through: number; rows: number; expected: number } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      through: db.prepare('SELECT seq FROM agent_events_through').pluck().get() as number,
      rows: db.prepare('SELECT count(*) FROM agent_events').pluck().get() as number,
      expected: db.prepare('SELECT count(*) FROM events WHERE agent IS NOT NULL').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

/** What a crash after commit and before the indexing leaves: agent_events covers only seq ≤ `through`. */
function rewindIndex(path: string, through: number): void {
  const db = new Database(path);
  db.prepare('DELETE FROM agent_events WHERE seq > ?').run(through);
  db.prepare('UPDATE agent_events_through SET seq = ?').run(through);
  db.close();
}

async function sameReads(log: SqliteEventLog, reference: MemoryEventLog, reads: ReadOptions[], where: string): Promise<void> {
  for (const options of reads) {
    const expected: LogRecord[] = await reference.read(options);
    assert.deepEqual(await log.read(options), expected, `${where}: read(${JSON.stringify(options)})`);
  }
}

describe('SqliteEventLog agent index (agent_events behind the head)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'events.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('agent-filtered reads equal a scan across the boundary, after reopen, and with the index behind the log', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        batchesArb,
        fc.integer({ min: 1, max: 10 }),
        fc.array(readArb, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        async (batches, agentIndexBatch, reads, lagSeed) => {
          const file = join(dir, `p${run++}.db`);
          const reference = new MemoryEventLog();
          const log = SqliteEventLog.open(file, { agentIndexBatch });
          let n = 0;
          for (const batch of batches) {
            const events = batch.map((e) => event(++n, e.vault, e.agent, e.type));
            assert.deepEqual(await log.append(events), await reference.append(events));
            // Read while the tail is unindexed (right after the commit) and after the indexing may have run.
            await sameReads(log, reference, reads, 'before indexing');
            await nextTurn();
            await sameReads(log, reference, reads, 'after a turn');
          }
          await log.close();
          assert.deepEqual(indexState(file).through, n, 'close indexes the tail');

          const reopened = SqliteEventLog.open(file, { agentIndexBatch });
          await sameReads(reopened, reference, reads, 'reopened');
          await reopened.close();

          // A crash between a commit and its indexing: readers of the file merge the lagging index with the
          // tail, and a writer's open indexes the tail before it serves.
          rewindIndex(file, lagSeed % (n + 1));
          const reader = SqliteEventLog.open(file, { readOnly: true });
          await sameReads(reader, reference, reads, `read-only, indexed through ${lagSeed % (n + 1)}`);
          await reader.close();
          const recovered = SqliteEventLog.open(file, { agentIndexBatch });
          const state = indexState(file);
          assert.equal(state.through, n);
          assert.equal(state.rows, state.expected);
          await sameReads(recovered, reference, reads, 'recovered');
          await recovered.close();
          await reference.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('indexes the tail once it is agentIndexBatch records long, after the commit that reached it', async () => {
    const log = SqliteEventLog.open(path, { agentIndexBatch: 4 });
    await log.append(range(1, 3).map((i) => ev(i)));
    await nextTurn();
    assert.equal(indexState(path).through, 0, 'three records are below the bound');
    await log.append([ev(4), ev(5)]);
    assert.equal(indexState(path).through, 0, 'the callers are answered before the indexing runs');
    await nextTurn();
    assert.deepEqual(indexState(path), { through: 5, rows: 5, expected: 5 });
    await log.close();
  });

  it('indexes a short tail once the log has been idle', async () => {
    const log = SqliteEventLog.open(path);
    await log.append([ev(1), ev(2, { agent: 'b' })]);
    assert.equal(indexState(path).through, 0);
    await new Promise((resolve) => setTimeout(resolve, AGENT_INDEX_IDLE_MS + 100));
    assert.deepEqual(indexState(path), { through: 2, rows: 2, expected: 2 });
    assert.deepEqual(seqs(await log.read({ filter: { agent: 'b' } })), [2]);
    await log.close();
  });

  it('verify names a record missing from agent_events and an entry that names no record of its agent', async () => {
    const log = SqliteEventLog.open(path);
    await log.append(range(1, 6).map((i) => ev(i, { agent: i % 2 === 0 ? 'even' : 'odd' })));
    await log.close();
    const edit = (sql: string, ...params: unknown[]) => {
      const db = new Database(path);
      db.prepare(sql).run(...params);
      db.close();
    };
    const verifyFile = async () => {
      const reader = SqliteEventLog.open(path, { readOnly: true });
      try {
        return await reader.verify();
      } finally {
        await reader.close();
      }
    };
    assert.deepEqual(await verifyFile(), { ok: true, checked: 6, headSeq: 6 });
    // Hiding record 4 from its agent's reads.
    edit("DELETE FROM agent_events WHERE agent = 'even' AND seq = 4");
    assert.deepEqual(await verifyFile(), { ok: false, checked: 3, headSeq: 6, firstBad: { seq: 4, reason: 'agent index mismatch' } });
    // Moving it to another agent instead.
    edit("INSERT INTO agent_events (agent, seq) VALUES ('odd', 4)");
    assert.deepEqual((await verifyFile()).firstBad, { seq: 4, reason: 'agent index mismatch' });
    edit("INSERT INTO agent_events (agent, seq) VALUES ('even', 4)");
    assert.deepEqual(await verifyFile(), { ok: false, checked: 3, headSeq: 6, firstBad: { seq: 4, reason: 'agent index mismatch' } });
    edit("DELETE FROM agent_events WHERE agent = 'odd' AND seq = 4");
    assert.deepEqual(await verifyFile(), { ok: true, checked: 6, headSeq: 6 });
    // Entries past agent_events_through are not read yet; rows the index does not cover are not checked.
    edit('UPDATE agent_events_through SET seq = 2');
    edit("DELETE FROM agent_events WHERE seq > 2");
    assert.deepEqual(await verifyFile(), { ok: true, checked: 6, headSeq: 6 });
  });

  it('refuses a batch bound that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => SqliteEventLog.open(path, { agentIndexBatch: bad }), RangeError);
    }
  });

  describe('a version-1 file', () => {
    /** The schema version 1 wrote, with its per-agent index on `events`. */
    const V1_SCHEMA = `
      CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, vault TEXT NOT NULL, agent TEXT,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL);
      CREATE INDEX events_by_vault ON events (vault, seq);
      CREATE INDEX events_by_agent ON events (agent, seq);
      CREATE INDEX events_by_type ON events (type, seq);
      CREATE INDEX run_submissions ON events (json_extract(body, '$.run.id')) WHERE type = 'RunSubmitted';
      CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, digest TEXT NOT NULL, state TEXT NOT NULL);
      PRAGMA user_version = 1;`;

    /** Writes a version-1 file holding `reference`'s records, as that version stored them. */
    async function writeV1(reference: MemoryEventLog): Promise<void> {
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec(V1_SCHEMA);
      const insert = db.prepare('INSERT INTO events (seq, type, vault, agent, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const r of await reference.read()) {
        insert.run(r.seq, r.event.type, r.event.vault, r.event.agent ?? null, r.prevHash, r.hash, canonicalJson(r.event));
      }
      db.close();
    }

    const reads: ReadOptions[] = [
      { filter: { agent: 'a' } },
      { filter: { agent: 'b', vault: 'v2' } },
      { afterSeq: 7, limit: 3, filter: { agent: 'c', types: ['TaskScheduled', 'AgentSpawned'] } },
      { filter: { agent: 'a', types: [] } },
      { afterSeq: 30, filter: { agent: 'a' } },
    ];

    async function referenceLog(): Promise<MemoryEventLog> {
      const reference = new MemoryEventLog();
      await reference.append(range(1, 40).map((i) => event(i, VAULTS[i % 2], i % 5 === 0 ? null : AGENTS[i % 3], TYPES[i % 3])));
      return reference;
    }

    it('is read as it is by a read-only open, and migrated by a writer: agent_events built, old index dropped', async () => {
      const reference = await referenceLog();
      await writeV1(reference);

      const reader = SqliteEventLog.open(path, { readOnly: true });
      await sameReads(reader, reference, reads, 'read-only v1');
      await reader.close();
      const untouched = new Database(path, { readonly: true });
      assert.equal(untouched.pragma('user_version', { simple: true }), 1, 'a reader does not migrate');
      untouched.close();

      const log = SqliteEventLog.open(path);
      const db = new Database(path, { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name").pluck().all();
      assert.deepEqual(indexes, ['events_by_type', 'events_by_vault', 'run_submissions']);
      db.close();
      assert.deepEqual(indexState(path), { through: 40, rows: 32, expected: 32 });
      await sameReads(log, reference, reads, 'migrated');
      assert.deepEqual(await log.verify(), { ok: true, checked: 40, headSeq: 40 });
      const [next] = await log.append([event(41, 'v1', 'a', 'TaskScheduled')]);
      assert.deepEqual(next, (await reference.append([event(41, 'v1', 'a', 'TaskScheduled')]))[0], 'the chain continues');
      await log.close();
      await reference.close();
    });
  });
});
