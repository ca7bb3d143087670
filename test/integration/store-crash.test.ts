/**
 * Durability under SIGKILL: every append the worker saw resolve is in the log afterwards, with the event
 * the worker wrote, and the chain verifies with contiguous seqs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../protocol/events.js';
import { SqliteEventLog } from '../../server/store/sqlite-log.js';
import { killAppendWorkerWhen } from '../helpers/append-worker.js';

const MIN_ACKS = 500;

function dataOf(record: LogRecord): unknown {
  return (record.event as { data?: unknown }).data;
}

/** Runs the worker until it has acknowledged at least MIN_ACKS records, then SIGKILLs it. */
async function runAndKill(dbPath: string): Promise<Map<number, string>> {
  const acks = new Map<number, string>();
  await killAppendWorkerWhen(dbPath, (line) => {
    const [seq, id] = line.split(' ');
    acks.set(Number(seq), id);
    return acks.size >= MIN_ACKS;
  });
  return acks;
}

describe('event log crash safety (SIGKILL)', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-crash-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged append, with its event, in a verifying contiguous chain', async () => {
    const dbPath = join(dir, 'events.db');
    const acks = await runAndKill(dbPath);
    assert.ok(acks.size >= MIN_ACKS, `only ${acks.size} acks`);

    const log = SqliteEventLog.open(dbPath);
    try {
      const report = await log.verify();
      assert.deepEqual(report, { ok: true, checked: log.head().seq, headSeq: log.head().seq });
      const maxAck = Math.max(...acks.keys());
      assert.ok(log.head().seq >= maxAck, `head ${log.head().seq} < acknowledged ${maxAck}`);

      const bySeq = new Map<number, LogRecord>();
      for (let after = 0; ; ) {
        const page = await log.read({ afterSeq: after });
        if (page.length === 0) break;
        for (const record of page) bySeq.set(record.seq, record);
        after = page[page.length - 1].seq;
      }
      assert.equal(bySeq.size, log.head().seq, 'seqs are contiguous from 1');
      for (const [seq, id] of acks) {
        const record = bySeq.get(seq);
        assert.ok(record, `acknowledged seq ${seq} is missing`);
        assert.deepEqual(dataOf(record), { id }, `seq ${seq} holds another event`);
      }
      const ids = [...bySeq.values()].map((r) => (dataOf(r) as { id: string }).id);
      assert.equal(new Set(ids).size, ids.length, 'no event stored twice');
      // The reopened log continues the chain.
      const [next] = await log.append([{ type: 'CrashProbe', opId: 'after', at: 0, by: { sub: 't', jti: 't' }, vault: 'crash' }]);
      assert.equal(next.seq, log.head().seq);
      assert.equal((await log.verify()).ok, true);
    } finally {
      await log.close();
    }
  });
});
