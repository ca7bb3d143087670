/**
 * `toka serve` in a real process: the listening line, /healthz, the CLI's writing commands through
 * `<data>/admin.sock`, read commands next to the running host, graceful SIGTERM under load (every
 * acknowledged operation durable, the log verifies), one writer per data dir, loopback by default.
 * Build first: `node esbuild.mjs` (npm test does it).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { LogRecord } from '../../protocol/events.js';
import { KernelSubmitRequest, type SubmitResult } from '../../protocol/rpc/index.js';
import { AdminClient } from '../../server/cli/remote.js';
import type { HostError } from '../../server/host/errors.js';
import { DataDirLock } from '../../server/host/lock.js';
import { cleanEnv, ROOT, toka, TOKA_BIN, type CliRun } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

interface Served {
  child: ChildProcess;
  url: string;
  /** Every JSON log line so far, parsed. */
  logs: Record<string, unknown>[];
  /** Lines on stderr that are not JSON (must stay empty: the host logs JSON lines only). */
  unparsed: string[];
  /** Everything written to stdout (must stay empty). */
  stdout: () => string;
  /** Resolves on 'close': the process exited and its output has been read to the end. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL the process if it still runs and wait for it (for `finally`: never leave a child behind). */
  kill(): Promise<void>;
}

/** Starts `toka serve --port 0 --data <data>` and resolves once it logs `listening` (killed if it does not in time). */
function serve(data: string, timeoutMs = 10_000): Promise<Served> {
  const child = spawn(process.execPath, [TOKA_BIN, 'serve', '--port', '0', '--data', data], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const unparsed: string[] = [];
  let out = '';
  let partial = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('close', (code, signal) => done({ code, signal })),
  );
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return new Promise<Served>((resolve, reject) => {
    const fail = (err: Error) => {
      clearTimeout(timer);
      void kill().then(() => reject(err));
    };
    const timer = setTimeout(() => fail(new Error(`toka serve did not listen within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          unparsed.push(line);
          continue;
        }
        logs.push(entry);
        if (entry.msg === 'listening') {
          clearTimeout(timer);
          resolve({ child, url: String(entry.url), logs, unparsed, stdout: () => out, exited, kill });
        }
      }
    });
    child.on('error', fail);
    void exited.then(({ code, signal }) => fail(new Error(`toka serve exited early (${code ?? signal}): ${stderr}`)));
  });
}

const spawnOp = (name: string) => ({ type: 'SpawnSubAgent', parent: 'root', spec: { name } });

function records(run: CliRun): LogRecord[] {
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim() === '' ? [] : run.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
}

describe('toka serve', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    assert.ok(existsSync(TOKA_BIN), 'dist/toka.js missing: run node esbuild.mjs');
    dir = mkdtempSync(join(tmpdir(), 'toka-serve-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('a running host', () => {
    let data: string;
    let served: Served | undefined;
    /** A token for vault `default` with every permission, minted through the admin socket. */
    let token: string;
    /** An operation file (SpawnSubAgent) every test may submit. */
    let op: string;

    before(async () => {
      data = join(dir, 'a');
      served = await serve(data);
      const mint = await toka(['token', 'mint', '--data', data, '--sub', 'setup', '--vault', 'default', '--perm', '*', '--ttl', '15m']);
      assert.equal(mint.code, 0, mint.stderr);
      token = mint.stdout.trim();
      op = join(dir, 'op.json');
      writeFileSync(op, JSON.stringify(spawnOp('via-socket')));
    });
    after(async () => {
      if (!served) return;
      served.child.kill('SIGTERM');
      const killer = setTimeout(() => served?.child.kill('SIGKILL'), 10_000);
      await served.exited;
      clearTimeout(killer);
    });

    const running = (): Served => {
      assert.ok(served, 'toka serve is running');
      return served;
    };

    it('logs the listening line on stderr with the url, data dir and a first-token hint; /healthz is 200', async () => {
      const served = running();
      const line = served.logs.find((l) => l.msg === 'listening')!;
      assert.equal(line.level, 'info');
      assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(line.dataDir, data);
      assert.match(String(line.hint), /toka token mint .*--sub me --vault default --perm '\*' --ttl 15m/);
      const res = await fetch(`${served.url}/healthz`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal(served.stdout(), '');
      assert.deepEqual(served.unparsed, [], 'every stderr line is JSON');
    });

    it('opens the admin socket 0600 in a 0700 data dir', () => {
      assert.equal(statSync(data).mode & 0o777, 0o700);
      const sock = statSync(join(data, 'admin.sock'));
      assert.ok(sock.isSocket());
      assert.equal(sock.mode & 0o777, 0o600);
    });

    it('token mint works through the admin socket, and the token works for submit', async () => {
      const mint = await toka(['token', 'mint', '--data', data, '--sub', 'me', '--vault', 'default', '--perm', '*', '--ttl', '15m']);
      assert.equal(mint.code, 0, mint.stderr);
      const minted = mint.stdout.trim();
      assert.equal(minted.split('.').length, 3);
      const submit = await toka(['submit', op, '--token', minted, '--data', data]);
      assert.equal(submit.code, 0, submit.stderr);
      const result = JSON.parse(submit.stdout) as SubmitResult;
      assert.ok(result.records.some((r) => (r.event as unknown as { name?: string }).name === 'via-socket'));
      for (const r of result.records) assert.equal(r.event.opId, result.opId);
    });

    it('errors through the admin socket read as in process', async () => {
      const narrow = await toka(['token', 'mint', '--data', data, '--sub', 'n', '--vault', 'default', '--perm', 'task:schedule', '--json']);
      assert.equal(narrow.code, 0, narrow.stderr);
      const minted = JSON.parse(narrow.stdout) as { token: string; claims: { jti: string } };
      const denied = await toka(['submit', op, '--token', minted.token, '--data', data]);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /^toka: .*\(CapabilityDenied[^)]*\)\n$/);
      const revoke = await toka(['token', 'revoke', minted.claims.jti, '--vault', 'default', '--data', data]);
      assert.equal(revoke.code, 0, revoke.stderr);
      const revoked = await toka(['submit', op, '--token', minted.token, '--data', data]);
      assert.equal(revoked.code, 1);
      assert.match(revoked.stderr, /^toka: .*\(Unauthenticated: ERR_TOKEN_REVOKED\)\n$/);
      const delegate = await toka(['token', 'delegate', '--token', token, '--sub', 'kid', '--perm', 'agent:spawn', '--data', data, '--json']);
      assert.equal(delegate.code, 0, delegate.stderr);
      assert.equal(JSON.parse(delegate.stdout).claims.sub, 'kid');
    });

    it('events, state and verify work read-only next to it', async () => {
      const submit = await toka(['submit', op, '--token', token, '--data', data]);
      assert.equal(submit.code, 0, submit.stderr);
      const all = records(await toka(['events', '--data', data]));
      assert.ok(all.some((r) => (r.event as unknown as { name?: string }).name === 'via-socket'));
      assert.deepEqual(all.map((r) => r.seq), all.map((_, i) => i + 1));
      const state = await toka(['state', '--data', data]);
      assert.equal(state.code, 0, state.stderr);
      const agents = Object.values(JSON.parse(state.stdout).state.agents) as { name: string }[];
      assert.ok(agents.some((a) => a.name === 'via-socket'));
      const verify = await toka(['verify', '--data', data]);
      assert.equal(verify.code, 0, verify.stderr);
    });

    it('admin socket: toka/* before toka/admin/open is Unauthenticated; an oversized frame is refused, the connection goes on', async () => {
      const client = await AdminClient.connect(data);
      try {
        await assert.rejects(client.request(KernelSubmitRequest.type, { op: spawnOp('early') }), (err: HostError) => {
          assert.equal(err.errorName, 'Unauthenticated');
          return true;
        });
        await client.open({ vault: 'default' });
        await assert.rejects(client.open({ vault: 'default' }), (err: HostError) => err.errorName === 'Conflict');
      } finally {
        client.close();
      }
      const raw = connect(join(data, 'admin.sock'));
      raw.on('error', () => undefined);
      let answers = '';
      raw.setEncoding('latin1').on('data', (c: string) => (answers += c));
      raw.write(`Content-Length: ${3 * 1024 * 1024}\r\n\r\n{`);
      await waitFor(() => answers.includes('"limit":"messageBytes"'), 5000, 'the LimitExceeded answer');
      const served = running();
      await waitFor(() => served.logs.some((l) => l.msg === 'admin frame refused'), 5000, 'the refused frame to be logged');
      raw.destroy();
    });

    it('a second toka serve on the same data dir fails with a Conflict line', async () => {
      const second = await toka(['serve', '--port', '0', '--data', data]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /^toka: data dir .* is in use by process \d+ .*\(Conflict\)\n$/);
      assert.equal(second.stdout, '');
      assert.equal(running().child.exitCode, null, 'the first host keeps running');
    });
  });

  it('SIGTERM under load: exits 0, every acknowledged operation is durable, the log verifies', async () => {
    const data = join(dir, 'load');
    const served = await serve(data);
    try {
      const acked = new Set<string>();
      let signalled = false;
      const failures: string[] = [];
      const worker = async (n: number) => {
        const client = await AdminClient.connect(data);
        await client.open({ vault: 'load' });
        try {
          for (let i = 0; ; i++) {
            const result = await client.request(KernelSubmitRequest.type, { op: spawnOp(`w${n}-${i}`) });
            acked.add(result.opId);
            if (!signalled && acked.size >= 200) {
              signalled = true;
              served.child.kill('SIGTERM');
            }
          }
        } catch (err) {
          // After the signal a request is refused (Unavailable) or its connection closes; before it, nothing fails.
          if (!signalled) failures.push((err as Error).message);
        } finally {
          client.close();
        }
      };
      await Promise.all([0, 1, 2, 3].map(worker));
      assert.deepEqual(failures, []);
      const { code, signal } = await served.exited;
      assert.equal(signal, null);
      assert.equal(code, 0);
      assert.ok(served.logs.some((l) => l.msg === 'stopped'));
      assert.deepEqual(served.logs.filter((l) => l.level === 'error'), [], 'no append failed during shutdown');
      assert.equal(DataDirLock.holder(data), null, 'lock released');
      assert.ok(!existsSync(join(data, 'admin.sock')), 'socket removed');

      const logged = records(await toka(['events', '--data', data, '--vault', 'load']));
      const opIds = new Set(logged.map((r) => r.event.opId));
      const lost = [...acked].filter((id) => !opIds.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged operations missing`);
      const verify = await toka(['verify', '--data', data]);
      assert.equal(verify.code, 0, verify.stderr);
    } finally {
      // A failed assertion must not leave the host running (it would hold the run open).
      await served.kill();
    }
  });

  it('refuses a non-loopback --host unless --allow-remote', async () => {
    const run = await toka(['serve', '--host', '0.0.0.0', '--port', '0', '--data', join(dir, 'remote')]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^toka: --host 0\.0\.0\.0 is not a loopback address; pass --allow-remote/);
    assert.ok(!existsSync(join(dir, 'remote')), 'nothing opened');
  });
});
