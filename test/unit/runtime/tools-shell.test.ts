import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createShellTool } from '../../../server/runtime/tools/shell.js';
import { waitFor } from '../../helpers/wait.js';
import { ctx, rejectsWith, sandbox } from './tools-helpers.js';

/** True while `pid` is a live process (a zombie waiting to be reaped counts as dead). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitDead(pid: number, withinMs: number): Promise<void> {
  await waitFor(() => !alive(pid), withinMs, `process ${pid} to end within ${withinMs} ms`);
}

/** The first line of `path` once it is written in full (ends with a newline). */
async function waitForFile(path: string): Promise<string> {
  const complete = () => {
    try {
      const text = readFileSync(path, 'utf8');
      return text.endsWith('\n') ? text.trim() : null;
    } catch {
      return null;
    }
  };
  return waitFor(complete, 5000, `${path} to be written`);
}

describe('runtime/tools: shell', function () {
  this.timeout(20_000);
  let box: ReturnType<typeof sandbox>;
  beforeEach(() => {
    box = sandbox();
  });
  afterEach(() => box.cleanup());
  const shell = createShellTool();

  it('runs a command in the workspace with HOME set to it, and reports the exit code', async () => {
    mkdirSync(join(box.ws, 'sub'));
    const r = await shell.call({ command: 'pwd; echo "home=$HOME"; echo oops >&2; exit 3', cwd: 'sub' }, ctx(box.ws));
    assert.equal(r.isError, true);
    assert.equal(r.content, `exit code 3\n[stdout]\n${join(box.ws, 'sub')}\nhome=${box.ws}\n\n[stderr]\noops\n`);
    assert.deepEqual(r.data, { exitCode: 3, signal: null, truncated: false, droppedBytes: 0 });
    assert.equal(shell.manifest.sideEffect, 'privileged');
    assert.equal(shell.manifest.permission, 'tool:shell');
  });

  it('confines cwd to the workspace', async () => {
    await rejectsWith(shell.call({ command: 'pwd', cwd: '..' }, ctx(box.ws)), 'PathEscape');
    await rejectsWith(shell.call({ command: 'pwd', cwd: box.outside }, ctx(box.ws)), 'PathEscape');
    await rejectsWith(shell.call({ command: 'pwd', cwd: 'missing' }, ctx(box.ws)), 'NotFound');
  });

  it('scrubs the environment: a secret of the host never reaches the child', async () => {
    const saved = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'sk-fake-secret-for-test';
    process.env.TOKA_TEST_PLAIN = 'plain-value';
    try {
      const r = await createShellTool({ passEnv: ['TOKA_TEST_PLAIN'] }).call({ command: 'env' }, ctx(box.ws));
      assert.doesNotMatch(r.content, /OPENAI_API_KEY|sk-fake-secret/);
      const names = r.content.split('\n').filter((l) => l.includes('=')).map((l) => l.slice(0, l.indexOf('='))).sort();
      assert.deepEqual(names.filter((n) => n !== 'PWD'), ['HOME', 'LANG', 'PATH', 'TOKA_TEST_PLAIN']);
    } finally {
      if (saved === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = saved;
      delete process.env.TOKA_TEST_PLAIN;
    }
    assert.throws(() => createShellTool({ passEnv: ['OPENAI_API_KEY'] }), /looks like a secret/);
    assert.throws(() => createShellTool({ passEnv: ['A=B'] }), /not an environment variable name/);
  });

  it('caps the output with a marker naming the limit', async () => {
    const r = await shell.call({ command: "head -c 100000 /dev/zero | tr '\\0' x" }, ctx(box.ws, { shellOutputBytes: 1000 }));
    assert.equal(r.isError, false);
    assert.equal(r.content.split('\n')[2], 'x'.repeat(1000));
    assert.match(r.content, /\[output truncated: 99000 bytes dropped \(limit shellOutputBytes = 1000\)\]$/);
    assert.deepEqual(r.data, { exitCode: 0, signal: null, truncated: true, droppedBytes: 99000 });
  });

  it('kills the whole process group on timeout, grandchildren included', async () => {
    const started = Date.now();
    const e = await rejectsWith(
      shell.call({ command: 'sleep 30 & echo $! > pid; echo started; wait', timeoutMs: 500 }, ctx(box.ws)),
      'Timeout',
    );
    assert.ok(Date.now() - started < 3000);
    assert.equal(e.data?.limit, 'shellTimeoutMs');
    assert.match(String(e.data?.output), /started/);
    await waitDead(Number(await waitForFile(join(box.ws, 'pid'))), 1000);
  });

  it('on cancel, kills a group that ignores SIGTERM within a second', async () => {
    const ac = new AbortController();
    const call = shell.call({ command: 'trap "" TERM; sleep 30 & echo $! > pid; wait; wait' }, ctx(box.ws, {}, ac.signal));
    const pid = Number(await waitForFile(join(box.ws, 'pid')));
    assert.ok(alive(pid));
    const aborted = Date.now();
    ac.abort();
    await rejectsWith(call, 'Cancelled');
    assert.ok(Date.now() - aborted < 1000, `cancel took ${Date.now() - aborted} ms`);
    await waitDead(pid, 1000 - (Date.now() - aborted));
  });

  it('kills what the command left running when it exits', async () => {
    const r = await shell.call({ command: 'sleep 30 >/dev/null 2>&1 & echo $!' }, ctx(box.ws));
    await waitDead(Number(r.content.split('\n')[2]), 1000);
  });

  it('bounds the memory of the child', async () => {
    const alloc = { command: 'perl -e \'$x = "a" x 300_000_000; print length($x)\'' };
    const small = await shell.call(alloc, ctx(box.ws, { shellMemoryBytes: 64 * 1024 * 1024 }));
    assert.equal(small.isError, true);
    assert.match(small.content, /Out of memory/);
    const large = await shell.call(alloc, ctx(box.ws, { shellMemoryBytes: 2 * 1024 * 1024 * 1024 }));
    assert.equal(large.content, 'exit code 0\n[stdout]\n300000000');
  });

  it('bounds the CPU time of the child', async () => {
    const r = await shell.call({ command: 'while :; do :; done' }, ctx(box.ws, { shellCpuSeconds: 1 }));
    assert.equal(r.isError, true);
    // The kernel enforces the bound (SIGKILL when the soft and hard limits are equal); the 30 s timeout is far.
    assert.match(r.content, /^killed by SIG(XCPU|KILL)/);
  });

  it('refuses to start when already cancelled', async () => {
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(shell.call({ command: 'touch made' }, ctx(box.ws, {}, ac.signal)), 'Cancelled');
  });
});
