/**
 * The consent flow in a real browser: Debian's chromium driven by playwright-core opens the authorization
 * URL, signs in with a `toka signin` code, picks the vault and permissions, clicks Allow and lands on the
 * client's loopback callback; the code it carries is exchanged and the access token calls an MCP tool.
 * The browser keeps the session cookie HttpOnly and SameSite=Strict. `TOKA_SCREENSHOTS=1` refreshes the
 * screenshot docs/mcp.md shows (docs/images/oauth-consent.png).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium, type Browser } from 'playwright-core';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { mountMcp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import { createSigninCode } from '../../server/adapters/mcp/oauth-signin.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { ROOT } from '../helpers/cli.js';
import { claimsOf } from '../helpers/oauth.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const logger = createLogger({ level: 'silent' });

describe('MCP OAuth consent in a real browser (chromium + playwright-core)', function () {
  this.timeout(60_000);
  let dir: string;
  let data: string;
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let browser: Browser;
  let callback: Server;
  let callbackUrl: string;
  const arrivals: URL[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM} (apt-get install chromium; .ci/run does)`);
    dir = mkdtempSync(join(tmpdir(), 'toka-oauth-browser-'));
    data = join(dir, 'data');
    host = await Host.open({ dataDir: data, logger, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = await mountMcp(http, host, { logger, dataDir: data });
    callback = createServer((req, res) => {
      arrivals.push(new URL(req.url ?? '/', 'http://127.0.0.1'));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Signed in: you can close this tab.</h1>');
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    callbackUrl = `http://127.0.0.1:${(callback.address() as { port: number }).port}/callback`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
  });
  after(async () => {
    await browser?.close();
    callback?.close();
    await mcp?.close();
    await http?.close();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sign in, choose vault and permissions, Allow → the callback gets code and state; the token calls a tool', async () => {
    const reg = (await (
      await fetch(`${http.url}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Example desktop client', redirect_uris: [callbackUrl] }),
      })
    ).json()) as { client_id: string };
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${http.url}/oauth/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: reg.client_id,
      redirect_uri: callbackUrl,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state: 'browser-state',
      scope: 'state:read agent:spawn events:read',
      resource: `${http.url}/mcp`,
    })) url.searchParams.set(k, v);

    const context = await browser.newContext({ viewport: { width: 760, height: 1000 } });
    const page = await context.newPage();
    await page.goto(url.href);
    assert.match(await page.textContent('h1') ?? '', /Sign in to Toka/);
    await page.fill('#credential', createSigninCode(data).code);
    await page.click('button[type=submit]');
    await page.waitForSelector('text=Permissions to grant');
    const cookie = (await context.cookies()).find((c) => c.name === 'toka_oauth');
    assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/oauth', JSON.stringify(cookie));

    assert.equal(await page.isChecked('#perm-state_read'), true, 'requested permissions start ticked');
    assert.equal(await page.isChecked('#perm-task_run'), false);
    await page.fill('#vault', 'v1');
    await page.uncheck('#perm-events_read');
    if (process.env.TOKA_SCREENSHOTS === '1') {
      mkdirSync(join(ROOT, 'docs/images'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'docs/images/oauth-consent.png'), fullPage: true });
    }
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbackUrl)), page.click('button[value=allow]')]);
    await context.close();

    const back = arrivals.filter((u) => u.pathname === '/callback').at(-1)!;
    assert.equal(back.searchParams.get('state'), 'browser-state');
    const tokens = (await (
      await fetch(`${http.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: reg.client_id, code: back.searchParams.get('code')!, code_verifier: verifier, redirect_uri: callbackUrl }),
      })
    ).json()) as { access_token: string; scope: string };
    assert.deepEqual(tokens.scope.split(' ').sort(), ['agent:spawn', 'state:read']);
    assert.equal(claimsOf(tokens.access_token).vault, 'v1');
    const client = new Client({ name: 'browser-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${http.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } } }));
    const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: 'from-browser' } });
    assert.ok(!spawned.isError, JSON.stringify(spawned));
    const denied = await client.callTool({ name: 'query_events', arguments: {} }).catch((err: Error) => err);
    assert.ok(denied instanceof Error && /403|insufficient_scope|events:read/.test(denied.message), String(denied));
    await client.close();
  });
});
