/**
 * The data dir lock across real processes: of processes starting at the same instant exactly one wins and
 * the rest get Conflict; a SIGKILLed holder's lock is free at once; leftovers of a dead holder (its pid now
 * another live process's) do not hold the data dir; read-only opens work next to a holder.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostError } from '../../server/host/errors.js';
import { Host } from '../../server/host/host.js';
import { DataDirLock } from '../../server/host/lock.js';
import { createLogger } from '../../server/host/logger.js';
import { ROOT } from '../helpers/cli.js';

interface Holder {
  child: ChildProcessWithoutNullStreams;
  /** `won` or `conflict <message>`. */
  outcome: Promise<string>;
  exited: Promise<number | null>;
}

function holder(dataDir: string, startAt: number): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/lock/holder.ts', dataDir, String(startAt)], { cwd: ROOT });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const outcome = new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('\n')) resolve(out.trim());
    });
    void exited.then((code) => reject(new Error(`holder exited ${code} without an outcome: ${err}`)));
  });
  outcome.catch(() => undefined);
  return { child, outcome, exited };
}

const isConflict = (err: unknown) => err instanceof HostError && err.errorName === 'Conflict';

describe('data dir lock (real processes)', function () {
  this.timeout(60_000);
  let dir: string;
  let children: Holder[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-lock-'));
  });
  afterEach(async () => {
    for (const h of children) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
    await Promise.all(children.map((h) => h.exited));
    children = [];
    rmSync(dir, { recursive: true, force: true });
  });

  it('of processes starting at the same instant, exactly one wins and the others get Conflict', async () => {
    for (let round = 0; round < 3; round++) {
      const data = join(dir, `r${round}`);
      mkdirSync(data);
      const startAt = Date.now() + 1500;
      const round_ = [0, 1, 2].map(() => holder(data, startAt));
      children.push(...round_);
      const outcomes = await Promise.all(round_.map((h) => h.outcome));
      assert.equal(outcomes.filter((o) => o === 'won').length, 1, `round ${round}: ${outcomes.join(' | ')}`);
      for (const o of outcomes.filter((o) => o !== 'won')) assert.match(o, /^conflict data dir .* is in use by process \d+/);
      assert.throws(() => DataDirLock.acquire(data), isConflict, 'held while the winner lives');
      for (const h of round_) h.child.stdin.end();
      await Promise.all(round_.map((h) => h.exited));
      DataDirLock.acquire(data).release();
    }
  });

  it('a SIGKILLed holder leaves the lock free at once; a writer next to a live holder gets Conflict, readers work', async () => {
    const data = join(dir, 'd');
    await (await Host.open({ dataDir: data, logger: createLogger({ level: 'silent' }) })).close();
    const h = holder(data, 0);
    children.push(h);
    assert.equal(await h.outcome, 'won');
    assert.equal(DataDirLock.holder(data), h.child.pid);
    await assert.rejects(Host.open({ dataDir: data, logger: createLogger({ level: 'silent' }) }), (err: unknown) => {
      assert.ok(isConflict(err));
      assert.equal((err as HostError).details.pid, h.child.pid);
      return true;
    });
    // The instant between a holder's taking the lock and recording its pid (for the old pid-file lock: an
    // empty host.lock) is still held.
    unlinkSync(join(data, 'lock.pid'));
    writeFileSync(join(data, 'host.lock'), '');
    assert.equal(DataDirLock.holder(data), 0);
    assert.throws(() => DataDirLock.acquire(data), (err: unknown) => isConflict(err) && /in use by another process/.test((err as Error).message));
    const reader = await Host.open({ dataDir: data, readOnly: true, logger: createLogger({ level: 'silent' }) });
    await reader.close();
    h.child.kill('SIGKILL');
    await h.exited;
    assert.equal(DataDirLock.holder(data), null);
    const lock = DataDirLock.acquire(data);
    assert.throws(() => DataDirLock.acquire(data), isConflict, 'a second acquire in the same process');
    lock.release();
    lock.release();
  });

  it("a dead holder's leftover pid, now another live process's, does not hold the data dir", () => {
    // pid 1 is always alive. The old pid-file lock took a live recorded pid for a live holder.
    for (const name of ['host.lock', 'lock.pid']) writeFileSync(join(dir, name), '1');
    assert.equal(DataDirLock.holder(dir), null);
    DataDirLock.acquire(dir).release();
  });
});
