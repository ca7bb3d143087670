/**
 * Durability is proved, not assumed: the SIGKILL test alone would pass with `synchronous=OFF`, because the
 * page cache outlives a killed process. Here the append worker runs under an LD_PRELOAD shim
 * (test/fixtures/store/fsync-shim.c, built with the machine's gcc) that reports, in order on the worker's
 * stdout, every write to the log file or its WAL and every fsync of them. Every acknowledged append must
 * come after an fsync that covers every write before it: no acknowledgement while a write is unsynced.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAppendWorkerWhen } from '../helpers/append-worker.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIM_SOURCE = join(ROOT, 'test', 'fixtures', 'store', 'fsync-shim.c');
const MIN_ACKS = 300;

/** Builds the shim into `dir`; a machine without gcc fails the test with a message saying so. */
function buildShim(dir: string): string {
  const out = join(dir, 'fsync-shim.so');
  try {
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', out, SHIM_SOURCE, '-ldl'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('gcc is required to build the fsync shim of this test (install gcc)');
    throw new Error(`building the fsync shim failed: ${e.stderr?.toString() ?? e.message}`);
  }
  return out;
}

interface Trace {
  acks: number;
  writes: number;
  syncs: number;
  /** Acknowledgements written while some write to the log or its WAL had no fsync after it. */
  unsyncedAcks: Array<{ ack: string; dirty: string[] }>;
}

/** Runs the worker under the shim until it acknowledged MIN_ACKS records, and reads the ordered trace. */
async function traceWorker(dbPath: string, shim: string): Promise<Trace> {
  const trace: Trace = { acks: 0, writes: 0, syncs: 0, unsyncedAcks: [] };
  const dirty = new Set<string>();
  const env = { ...process.env, LD_PRELOAD: shim, TOKA_SHIM_WATCH: dbPath };
  await killAppendWorkerWhen(dbPath, (line) => {
    if (line.startsWith('W ')) {
      trace.writes++;
      dirty.add(line.slice(2));
    } else if (line.startsWith('F ')) {
      trace.syncs++;
      dirty.delete(line.slice(2));
    } else {
      trace.acks++;
      if (dirty.size > 0) trace.unsyncedAcks.push({ ack: line, dirty: [...dirty] });
    }
    return trace.acks >= MIN_ACKS;
  }, env);
  return trace;
}

describe('event log durability (fsync before acknowledgement)', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'toka-fsync-')));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('acknowledges no append while a write to the log or its WAL is not yet fsynced', async () => {
    const shim = buildShim(dir);
    const dbPath = join(dir, 'events.db');
    const trace = await traceWorker(dbPath, shim);
    assert.ok(trace.acks >= MIN_ACKS, `only ${trace.acks} acks`);
    // The shim must have seen the log being written, or the assertion below would hold vacuously. Group commit
    // folds however many appends arrive during one fsync into one transaction, so writes per ack depend on the
    // machine's load; a few dozen transactions at least are certain.
    assert.ok(trace.writes >= 20, `the shim saw only ${trace.writes} writes for ${trace.acks} acks`);
    assert.ok(trace.syncs > 0, 'no fsync of the log or its WAL at all');
    assert.deepEqual(trace.unsyncedAcks.slice(0, 3), [], `${trace.unsyncedAcks.length} of ${trace.acks} acks came before an fsync`);
  });
});
