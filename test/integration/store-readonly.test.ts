/**
 * A read-only open (what `toka events` / `toka verify` use) reads and verifies the log while another
 * process is appending to it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteEventLog } from '../../server/store/sqlite-log.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = join(ROOT, 'test', 'fixtures', 'store', 'append-worker.ts');

describe('event log read-only access beside a writing process', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-ro-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads, follows the head and verifies while the writer appends', async () => {
    const dbPath = join(dir, 'events.db');
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, dbPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    let acked = 0;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (acked += chunk.split('\n').length - 1));
    try {
      await waitFor(() => acked >= 200 || child.exitCode !== null, 20_000, 'the writer to acknowledge 200 appends');
      assert.ok(acked >= 200, `the writer exited after ${acked} appends`);
      const reader = SqliteEventLog.open(dbPath, { readOnly: true });
      try {
        const first = reader.head().seq;
        assert.ok(first > 0);
        const report = await reader.verify();
        assert.equal(report.ok, true, JSON.stringify(report.firstBad));
        assert.ok(report.checked >= first);
        await waitFor(() => reader.head().seq > report.checked, 20_000, 'the reader to see the head move');
        const page = await reader.read({ afterSeq: first - 1, limit: 1 });
        assert.equal(page[0].seq, first);
        assert.equal((await reader.read({ filter: { vault: 'crash' }, limit: 10 })).length, 10);
      } finally {
        await reader.close();
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
