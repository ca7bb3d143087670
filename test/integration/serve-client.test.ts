/**
 * `toka serve` as a language client spawns it, and its command-line settings, in real processes:
 * `--clientProcessId=<pid> --stdio --stdio` exits (closing the host) once that client process is killed;
 * `--allowed-origin` and the config file set the allowed browser origins; `toka help serve` lists its flags.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLock } from '../../server/host/lock.js';
import { cleanEnv, toka, TOKA_BIN } from '../helpers/cli.js';
import { spawnJsonRpcProcess } from '../helpers/jsonrpc-process.js';
import { waitFor } from '../helpers/wait.js';
import { spawnServe } from '../helpers/ws-client.js';

/** Status of GET /healthz with this Origin header. */
function healthWithOrigin(url: string, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/healthz`, { headers: { origin } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('toka serve: language-client arguments and settings', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => assert.ok(existsSync(TOKA_BIN), 'dist/toka.js missing: run node esbuild.mjs'));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-serve-client-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const form of ['--clientProcessId=<pid>', '--clientProcessId <pid>']) {
    it(`accepts ${form} and --stdio twice, and exits, closing the host, once the client process is killed`, async () => {
      const client = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      const clientGone = new Promise((resolve) => client.once('exit', resolve));
      const pidArgs = form.includes('=') ? [`--clientProcessId=${client.pid}`] : ['--clientProcessId', String(client.pid)];
      const proc = spawnJsonRpcProcess(process.execPath, [TOKA_BIN, 'serve', '--stdio', ...pidArgs, '--stdio', '--data', dir], { env: cleanEnv() });
      try {
        await proc.connection.sendRequest('initialize', { processId: null, rootUri: null, capabilities: {} });
        assert.ok(DataDirLock.holder(dir), 'the host holds the data dir');
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(proc.child.exitCode, null, 'still serving while the client lives');
        client.kill('SIGKILL');
        await clientGone;
        // stdin stays open: only the client watch can end the process.
        const exit = await proc.waitForExit(15_000);
        assert.equal(exit.code, 1, proc.stderr());
        // 'exit' can come before the last of stderr is read.
        await waitFor(() => /"msg":"stopped"/.test(proc.stderr()), 5000, 'the stopped log line');
        // An orderly stop (host closed), whichever watchdog noticed first: ours or vscode-languageserver's.
        assert.match(proc.stderr(), /"msg":"stopped","exitCode":1/);
        assert.equal(DataDirLock.holder(dir), null, 'lock released');
      } finally {
        client.kill('SIGKILL');
        await proc.close();
      }
    });
  }

  it('refuses a --clientProcessId that is not a pid', async () => {
    const run = await toka(['serve', '--stdio', '--clientProcessId=abc', '--data', dir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--clientProcessId: expected a process id/);
  });

  it('allows the origins of --allowed-origin, else of the config file', async () => {
    const byFlag = await spawnServe({ args: ['--allowed-origin', 'https://app.example', '--allowed-origin', 'http://localhost:5173'] });
    try {
      assert.equal(await healthWithOrigin(byFlag.url, 'https://app.example'), 200);
      assert.equal(await healthWithOrigin(byFlag.url, 'http://localhost:5173'), 200);
      assert.equal(await healthWithOrigin(byFlag.url, 'https://evil.example'), 403);
    } finally {
      await byFlag.stop();
    }
    const config = join(dir, 'serve.json');
    writeFileSync(config, JSON.stringify({ allowedOrigins: ['https://from-config.example'] }));
    const byConfig = await spawnServe({ args: ['--config', config] });
    try {
      assert.equal(await healthWithOrigin(byConfig.url, 'https://from-config.example'), 200);
      assert.equal(await healthWithOrigin(byConfig.url, 'https://app.example'), 403);
    } finally {
      await byConfig.stop();
    }
    writeFileSync(config, '{"allowedOrigins": "https://x.example"}');
    const bad = await toka(['serve', '--port', '0', '--config', config, '--data', dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /allowedOrigins must be an array of strings/);
  });

  it('toka help serve lists every flag with its default; toka serve --help too', async () => {
    for (const args of [['help', 'serve'], ['serve', '--help']]) {
      const run = await toka(args);
      assert.equal(run.code, 0, run.stderr);
      for (const flag of ['--data <dir>', '--port <n>', '--allowed-origin <origin>', '--config <file>', '--clientProcessId <pid>', '--stdio', '--rate-limit']) {
        assert.ok(run.stdout.includes(flag), `${args.join(' ')}: ${flag}`);
      }
      assert.match(run.stdout, /--port <n> +TCP port .*\(default: 7420\)/);
    }
    const tokenHelp = await toka(['help', 'token', 'delegate']);
    assert.match(tokenHelp.stdout, /--token-file <file\|->/);
  });
});
