/**
 * Durability under SIGKILL: every append the worker saw resolve is in the log afterwards, with the event
 * the worker wrote, and the chain verifies with contiguous seqs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogRecord } from '../../protocol/events.js';
import { SqliteEventLog } from '../../server/store/sqlite-log.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = join(ROOT, 'test', 'fixtures', 'store', 'append-worker.ts');
const MIN_ACKS = 500;

function dataOf(record: LogRecord): unknown {
  return (record.event as { data?: unknown }).data;
}

/** Runs the worker until it has acknowledged at least MIN_ACKS records, then SIGKILLs it. */
function runAndKill(dbPath: string): Promise<Map<number, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, dbPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const acks = new Map<number, string>();
    let partial = '';
    let stderr = '';
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const [seq, id] = line.split(' ');
        acks.set(Number(seq), id);
      }
      if (!killed && acks.size >= MIN_ACKS) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    // A worker that stalls is killed, so a failing run never leaves a process behind.
    const stall = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // 'close' fires after stdout is drained, so every line written before the kill has been counted.
    child.on('close', (code, signal) => {
      clearTimeout(stall);
      if (signal === 'SIGKILL' && killed) resolve(acks);
      else reject(new Error(`worker exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
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
