// The extension's tests in a real VS Code (code-server on Node 24, driven by Debian's headless Chromium):
// 1. suite: the mocha suite in suite/ runs inside the extension host (extension loaded from extension/);
// 2. vsix:  the packaged .vsix is installed with --install-extension into an empty extensions dir, and the
//           UI smoke test drives that installed copy: the Toka container, "Toka: Grant Capability" through its
//           quick picks, an example agent run whose privileged tool call is approved from the notification.
// Needs test/e2e/setup.sh to have run, and `node esbuild.mjs` (npm run test:e2e does both checks' build).
// Prints `vscode-e2e: N passed, N failed` per phase; exit code 0 only when every phase passed.
// Screenshots go to test/e2e/artifacts/. Usage: node test/e2e/run.mjs [suite|vsix]...
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import util from 'node:util';
import { chromium } from 'playwright-core';
import { codeServerEntry as entry, completeMarker, node24 } from './paths.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const artifacts = path.join(here, 'artifacts');
const timeoutMs = Number(process.env.VSCODE_TEST_TIMEOUT_MS || 300000);
const phases = process.argv.slice(2).length ? process.argv.slice(2) : ['suite', 'vsix'];

for (const [what, file] of [['the e2e toolchain (Node 24, code-server)', completeMarker], ['chromium', chromiumPath], ['the extension bundle', path.join(root, 'extension/dist/extension.js')]]) {
  if (!existsSync(file)) {
    console.error(`${what} is missing (${file}): run test/e2e/setup.sh, then npm run test:e2e`);
    process.exit(1);
  }
}
mkdirSync(artifacts, { recursive: true });
const scratch = mkdtempSync(path.join(tmpdir(), 'toka-e2e-'));
const servers = [];
const cleanup = () => {
  for (const s of servers) {
    try {
      process.kill(-s.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  rmSync(scratch, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** A fresh copy of the test workspace whose settings point the bundled host at the scripted transcript. */
function workspace(name) {
  const ws = path.join(scratch, name);
  cpSync(path.join(here, 'workspace'), ws, { recursive: true });
  mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  writeFileSync(
    path.join(ws, '.vscode/settings.json'),
    JSON.stringify({ 'toka.host.node': process.execPath, 'toka.host.env': { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: path.join(ws, 'transcript.json') } }, null, 2),
  );
  return ws;
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Start code-server with its own user data and extensions dirs; resolves with its base URL. */
async function startCodeServer(name, extensionsDir, extra = []) {
  const port = await freePort();
  const data = path.join(scratch, `${name}-data`);
  mkdirSync(path.join(data, 'user/User'), { recursive: true });
  writeFileSync(
    path.join(data, 'user/User/settings.json'),
    JSON.stringify({
      'workbench.startupEditor': 'none',
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'chat.disableAIFeatures': true,
      'git.enabled': false,
      'security.workspace.trust.enabled': false,
    }),
  );
  const server = spawn(
    node24,
    [entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--config', path.join(data, 'config.yaml'), '--user-data-dir', path.join(data, 'user'),
      '--extensions-dir', extensionsDir, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
      '--ignore-last-opened', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, XDG_DATA_HOME: path.join(data, 'xdg-data'), XDG_CONFIG_HOME: path.join(data, 'xdg-config') } },
  );
  servers.push(server);
  let log = '';
  server.stdout.on('data', (d) => (log += d));
  server.stderr.on('data', (d) => (log += d));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`code-server did not start:\n${log}`)), 60000);
    const check = () => /HTTP server listening/.test(log) && (clearTimeout(t), resolve());
    server.stdout.on('data', check);
    server.stderr.on('data', check);
    server.on('exit', (c) => reject(new Error(`code-server exited ${c}:\n${log}`)));
  });
  return { base: `http://127.0.0.1:${port}`, port, log: () => log, stop: () => process.kill(-server.pid, 'SIGKILL') };
}

async function browser() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

const noise = /\[AgentHost|\[ChatModelSelection\]|AccountPolicyGate|open-vsx\.org|authentication provider 'github'|^\s+at /;

/** Phase 1: the mocha suite inside the extension host, the extension loaded from extension/. */
async function suite() {
  const ws = workspace('suite-ws');
  const server = await startCodeServer('suite', path.join(scratch, 'suite-ext'), ['--vscode-option', 'enable-smoke-test-driver']);
  const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
  const payload = JSON.stringify([['extensionDevelopmentPath', remote(path.join(root, 'extension'))], ['extensionTestsPath', remote(path.join(here, 'suite/index.cjs'))]]);
  const b = await browser();
  try {
    const ctx = await b.newContext({ viewport: { width: 1280, height: 800 } });
    let finish;
    const exited = new Promise((r) => (finish = r));
    let summarised = false;
    await ctx.exposeFunction('codeAutomationLog', (_type, args) => {
      const line = util.format(...args);
      if (/^vscode-e2e: \d+ passed, \d+ failed/.test(line)) summarised = true;
      if (process.env.VERBOSE || !noise.test(line)) console.log(line);
    });
    await ctx.exposeFunction('codeAutomationExit', (code) => finish(code));
    const page = await ctx.newPage();
    await page.goto(`${server.base}/?folder=${encodeURIComponent(ws)}&payload=${encodeURIComponent(payload)}`);
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), timeoutMs))]);
    await page.screenshot({ path: path.join(artifacts, 'suite-end.png') }).catch(() => undefined);
    if (code !== 0) console.log(`extension suite failed (exit ${code})${process.env.VERBOSE ? `\n${server.log()}` : ''}`);
    // A suite that never reported (it timed out, or the extension host died) counts as one failure.
    if (!summarised) console.log(`vscode-e2e: 0 passed, 1 failed (the suite did not report: exit ${code})`);
    return code === 0;
  } finally {
    await b.close();
    server.stop();
  }
}

/** Phase 2: package the .vsix, install it offline, and drive the installed extension through the UI. */
async function vsix() {
  const file = path.join(scratch, 'toka.vsix');
  execFileSync(path.join(root, 'node_modules/.bin/vsce'), ['package', '--no-dependencies', '--no-rewrite-relative-links', '-o', file], { cwd: path.join(root, 'extension'), stdio: 'pipe' });
  const extensionsDir = path.join(scratch, 'vsix-ext');
  const install = execFileSync(node24, [entry, '--extensions-dir', extensionsDir, '--user-data-dir', path.join(scratch, 'vsix-install'), '--install-extension', file], {
    encoding: 'utf8',
    env: { ...process.env, XDG_DATA_HOME: path.join(scratch, 'xdg-i'), XDG_CONFIG_HOME: path.join(scratch, 'xdg-i') },
  });
  if (!/successfully installed/i.test(install)) throw new Error(`--install-extension did not install: ${install}`);
  console.log('vsix: installed offline with --install-extension');
  const ws = workspace('vsix-ws');
  const server = await startCodeServer('vsix', extensionsDir);
  const b = await browser();
  const page = await b.newPage({ viewport: { width: 1400, height: 860 } });
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  const step = (text) => console.log(`vsix: ${text}`);
  let passed = 0;
  const check = async (name, fn) => {
    await fn();
    passed++;
    step(`ok - ${name}`);
  };
  try {
    await page.goto(`${server.base}/?folder=${encodeURIComponent(ws)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });

    await check('the installed extension activates and its host runs (status bar)', async () => {
      await page.locator('.statusbar-item', { hasText: /Toka \d+ agents/ }).first().waitFor({ timeout: 90000 });
    });

    const palette = async (title) => {
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
      for (let i = 0; ; i++) {
        await page.keyboard.press('F1');
        await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
        await page.keyboard.type(title);
        if (await row.waitFor({ timeout: 2000 }).then(() => true, () => false)) break;
        if (i > 30) throw new Error(`${title} never appeared in the palette`);
        await page.keyboard.press('Escape');
      }
      await row.click();
    };
    const input = page.locator('.quick-input-widget input.input');

    await check('Toka: Grant Capability through its quick picks', async () => {
      await palette('Toka: Grant Capability');
      await input.waitFor({ state: 'visible' });
      await input.fill('ui-bot');
      await page.keyboard.press('Enter');
      // The permissions multi-select: filter, tick the row, accept.
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'state:read' }).first().waitFor();
      await input.fill('state:read');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'state:read' }).first().locator('.quick-input-list-checkbox, input[type=checkbox], .monaco-custom-toggle').first().click();
      await page.locator('.quick-input-widget .monaco-button', { hasText: 'OK' }).first().click();
      await page.locator('.quick-input-widget', { hasText: 'token lifetime' }).waitFor();
      await page.keyboard.press('Enter'); // default lifetime 900 s
      await page.locator('.notification-toast', { hasText: 'granted state:read to ui-bot' }).waitFor({ timeout: 20000 });
    });

    await check('the Toka container shows the grant in Capabilities', async () => {
      await page.locator('.activitybar [aria-label="Toka"], .activitybar a[aria-label^="Toka"]').first().click();
      await page.locator('.pane-header', { hasText: 'Capabilities' }).first().waitFor();
      await page.locator('.monaco-list-row', { hasText: 'token for ui-bot' }).first().waitFor({ timeout: 20000 });
      await page.screenshot({ path: path.join(artifacts, 'grant.png') });
    });

    await check('an example agent runs and its privileged tool call is approved from the notification', async () => {
      await page.keyboard.press('Escape');
      await palette('Toka: Spawn Agent from Spec');
      await input.waitFor({ state: 'visible' });
      await input.fill('sheller');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'sheller.yaml' }).first().click();
      await page.locator('.monaco-list-row', { hasText: 'e2e-sheller' }).first().waitFor({ timeout: 20000 });
      await palette('Toka: Run Agent');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'e2e-sheller' }).first().click();
      await input.waitFor({ state: 'visible' });
      await input.fill('List the workspace');
      await page.keyboard.press('Enter');
      const toast = page.locator('.notification-toast', { hasText: 'asks to call shell' }).first();
      await toast.waitFor({ timeout: 30000 });
      const approvals = page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Approvals' }) });
      await approvals.locator('.monaco-list-row', { hasText: 'shell (tool:shell)' }).first().waitFor({ timeout: 10000 });
      await page.screenshot({ path: path.join(artifacts, 'approval.png') });
      await toast.locator('.monaco-button', { hasText: 'Approve' }).click();
      await page.locator('.monaco-list-row', { hasText: 'List the workspace' }).filter({ hasText: 'completed' }).first().waitFor({ timeout: 30000 });
      await page.screenshot({ path: path.join(artifacts, 'completed.png') });
    });
    await check("Run Agent's progress notification: Cancel cancels the run", async () => {
      await palette('Toka: Run Agent');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'e2e-sheller' }).first().click();
      await input.waitFor({ state: 'visible' });
      await input.fill('Count the files');
      await page.keyboard.press('Enter');
      const progress = page.locator('.notification-toast', { hasText: 'Running e2e-sheller' }).filter({ hasText: 'input-required' }).first();
      await progress.waitFor({ timeout: 30000 });
      await progress.locator('.monaco-button', { hasText: 'Cancel' }).click();
      await page.locator('.monaco-list-row', { hasText: 'Count the files' }).filter({ hasText: 'canceled' }).first().waitFor({ timeout: 30000 });
    });
    await check("Run Workstream's progress notification follows the waves; Cancel cancels the runs", async () => {
      await palette('Toka: Run Workstream');
      await input.waitFor({ state: 'visible' });
      await input.fill('pipeline');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'pipeline/agents' }).first().click();
      await page.locator('.quick-input-widget', { hasText: 'task text for every agent' }).waitFor();
      await page.keyboard.press('Enter'); // empty: the agents' default tasks
      const progress = page.locator('.notification-toast', { hasText: 'Running workstream pipeline/agents' }).filter({ hasText: 'waiting for approval' }).first();
      await progress.waitFor({ timeout: 30000 });
      await page.screenshot({ path: path.join(artifacts, 'workstream.png') });
      await progress.locator('.monaco-button', { hasText: 'Cancel' }).click();
      await page.locator('.notification-toast', { hasText: 'workstream pipeline/agents: 1 cancelled, 1 skipped' }).first().waitFor({ timeout: 30000 });
      await page.locator('.monaco-list-row', { hasText: 'Report what is in the workspace' }).filter({ hasText: 'canceled' }).first().waitFor({ timeout: 30000 });
    });
    await check('the Events webview shows the live log and filters it by type', async () => {
      const header = page.locator('.pane-header', { hasText: 'Events' }).first();
      if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
      const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
      await frame.locator('#list li[data-type="RunCancelled"]').first().waitFor({ timeout: 30000 });
      await frame.locator('#type').selectOption('RunCancelled');
      // The extension answers the filter with the filtered list: wait until only that type is shown.
      let types = [];
      for (let i = 0; i < 50; i++) {
        types = await frame.locator('#list li').evaluateAll((rows) => [...new Set(rows.map((r) => r.dataset.type))]);
        if (types.length === 1 && types[0] === 'RunCancelled') break;
        await page.waitForTimeout(200);
      }
      if (types.length !== 1 || types[0] !== 'RunCancelled') throw new Error(`the type filter shows ${types.join(', ')}`);
      await frame.locator('#list li').first().click();
      await frame.locator('#list li pre', { hasText: '"type": "RunCancelled"' }).first().waitFor();
      await page.screenshot({ path: path.join(artifacts, 'events.png') });
    });
    console.log(`vscode-e2e: ${passed} passed, 0 failed (vsix + UI)`);
    return true;
  } catch (err) {
    await page.screenshot({ path: path.join(artifacts, 'vsix-failure.png') }).catch(() => undefined);
    console.log(`vsix: FAIL ${err.message}`);
    console.log(`vscode-e2e: ${passed} passed, 1 failed (vsix + UI)`);
    return false;
  } finally {
    await b.close();
    server.stop();
  }
}

let ok = true;
for (const phase of phases) {
  const run = { suite, vsix }[phase];
  if (!run) throw new Error(`unknown phase ${phase} (suite, vsix)`);
  console.log(`== ${phase}`);
  try {
    ok = (await run()) && ok;
  } catch (err) {
    // A phase that could not run at all (code-server did not start, packaging failed) counts as one failure.
    console.log(`${phase}: FAIL ${err.stack ?? err}`);
    console.log(`vscode-e2e: 0 passed, 1 failed (${phase} did not run)`);
    ok = false;
  }
}
process.exit(ok ? 0 : 1);
