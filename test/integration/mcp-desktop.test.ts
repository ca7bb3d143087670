/**
 * Desktop clients that stay connected: `toka mcp` with a grant credential renews its own short-lived tokens
 * (in process, on a moved clock, across several token lifetimes; and in real processes with 2-second tokens),
 * revoking the grant ends it, and `toka mcp` next to a running `toka serve` attaches to its `<data>/mcp.sock`
 * instead of failing with Conflict. `toka mcp config` prints a snippet that launches a working server.
 * Build first: `node esbuild.mjs` (npm test does it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { McpCredentialSession, type McpCredential } from '../../server/adapters/mcp/credential.js';
import { LineTransport, serveMcpStdio } from '../../server/adapters/mcp/stdio.js';
import { createTokaRegistry } from '../../server/adapters/mcp/toka.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOKA = join(ROOT, 'dist', 'toka.js');
const ENV: Record<string, string> = {};
for (const [k, value] of Object.entries(process.env)) if (!k.startsWith('TOKA_') && value !== undefined) ENV[k] = value;
const logger = createLogger({ level: 'silent' });
const MINUTE = 60_000;

const unauthenticated = (reason: string) => (e: McpError) => {
  assert.equal(e.code, -31910);
  assert.equal((e.data as { reason: string }).reason, reason);
  return true;
};

describe('toka mcp with a grant credential, in process on a moved clock', function () {
  this.timeout(20_000);
  let clock = Date.now();
  let host: Host;
  let grant: string;

  const serve = async (credential: McpCredential) => {
    const opened = await McpCredentialSession.open(host, credential);
    const toServer = new PassThrough();
    const fromServer = new PassThrough();
    const served = serveMcpStdio(host, { registry: createTokaRegistry(), credential: opened, input: toServer, output: fromServer });
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await client.connect(new LineTransport(fromServer, toServer));
    return { client, opened, served, end: () => toServer.end() };
  };

  before(async () => {
    host = await Host.open({ dataDir: null, logger, now: () => clock, rateLimit: false });
    grant = (await host.mint(host.localSession('v1'), { subject: 'claude', permissions: ['state:read', 'agent:spawn'], ttlSeconds: 60 })).grant;
  });

  after(() => host.close());

  it('keeps answering across three token lifetimes: each call finds a fresh token minted from the grant', async () => {
    const { client, opened, served, end } = await serve({ grant, vault: 'v1', ttlSeconds: 1800 });
    const tokens = new Set<string>();
    for (let lifetime = 0; lifetime < 3; lifetime++) {
      const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: `worker-${lifetime}` } });
      assert.ok(!spawned.isError, JSON.stringify(spawned));
      tokens.add(opened.session.token!);
      assert.equal(opened.session.claims.sub, 'claude');
      assert.deepEqual(opened.session.claims.permissions, ['state:read', 'agent:spawn']);
      clock += 40 * MINUTE;
    }
    const state = await client.callTool({ name: 'get_state', arguments: {} });
    const names = (state.structuredContent as { agents: { name: string }[] }).agents.map((a) => a.name).filter((n) => n.startsWith('worker-'));
    assert.deepEqual(names.sort(), ['worker-0', 'worker-1', 'worker-2']);
    assert.equal(tokens.size, 3);
    end();
    await served;
  });

  it('renews only when a third of the lifetime is left', async () => {
    const { client, opened, served, end } = await serve({ grant, vault: 'v1', ttlSeconds: 900 });
    const first = opened.session.token;
    clock += 9 * MINUTE;
    await client.callTool({ name: 'get_state', arguments: {} });
    assert.equal(opened.session.token, first);
    clock += 2 * MINUTE;
    await client.callTool({ name: 'get_state', arguments: {} });
    assert.notEqual(opened.session.token, first);
    end();
    await served;
  });

  it('a plain token credential dies with its token (what the grant credential fixes)', async () => {
    const { token } = await host.issueToken(host.localSession('v1'), { grant, ttlSeconds: 1800 });
    const { client, served, end } = await serve({ token });
    assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
    clock += 40 * MINUTE;
    await assert.rejects(client.callTool({ name: 'get_state', arguments: {} }), unauthenticated('ERR_TOKEN_EXPIRED'));
    end();
    await served;
  });

  it('revoking the grant ends the session: the next call is Unauthenticated, renewal included', async () => {
    const doomed = (await host.mint(host.localSession('v1'), { subject: 'claude', permissions: ['state:read'], ttlSeconds: 60 })).grant;
    const { client, served, end } = await serve({ grant: doomed, vault: 'v1', ttlSeconds: 600 });
    assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
    await host.revoke(host.localSession('v1'), { grant: doomed, reason: 'test' });
    await assert.rejects(client.callTool({ name: 'get_state', arguments: {} }), unauthenticated('ERR_GRANT_REVOKED'));
    // Past the token's lifetime: no renewal revives the revoked grant (the host refuses to mint from it, so
    // the last token expires).
    clock += 20 * MINUTE;
    await assert.rejects(client.callTool({ name: 'get_state', arguments: {} }), (e: McpError) => {
      assert.equal(e.code, -31910);
      assert.ok(['ERR_GRANT_REVOKED', 'ERR_TOKEN_EXPIRED'].includes((e.data as { reason: string }).reason), JSON.stringify(e.data));
      return true;
    });
    end();
    await served;
  });

  it('revoking the current token (not the grant) costs one call: the refusal makes the session renew at once', async () => {
    const { client, opened, served, end } = await serve({ grant, vault: 'v1', ttlSeconds: 1800 });
    const revoked = opened.session.token!;
    await host.revoke(host.localSession('v1'), { token: revoked, reason: 'test' });
    await assert.rejects(client.callTool({ name: 'get_state', arguments: {} }), unauthenticated('ERR_TOKEN_REVOKED'));
    await waitFor(() => opened.session.token !== revoked, 5000, 'a renewal after the refusal');
    assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
    end();
    await served;
  });

  it('renews on its own timer while the client is idle (real clock, 2-second tokens), so subscriptions keep a live token', async () => {
    const realHost = await Host.open({ dataDir: null, logger, rateLimit: false });
    try {
      const own = (await realHost.mint(realHost.localSession('v1'), { subject: 'idle', permissions: ['state:read'], ttlSeconds: 60 })).grant;
      const opened = await McpCredentialSession.open(realHost, { grant: own, vault: 'v1', ttlSeconds: 2 });
      const first = opened.session.token;
      const seen = new Set([first]);
      await new Promise((r) => setTimeout(r, 3500));
      seen.add(opened.session.token);
      assert.ok(seen.size >= 2, 'a new token was minted without any request');
      assert.ok(opened.session.claims.exp * 1000 > Date.now(), 'the current token is live');
      await realHost.check(opened.session);
      opened.close();
    } finally {
      await realHost.close();
    }
  });

  it('refuses a grant of another vault, an unknown grant and a malformed credential with typed errors', async () => {
    await assert.rejects(McpCredentialSession.open(host, { grant, vault: 'v2' }), (e: Error & { errorName?: string }) => e.errorName === 'UnknownEntity');
    await assert.rejects(McpCredentialSession.open(host, { grant: 'nope', vault: 'v1' }), (e: Error & { errorName?: string }) => e.errorName === 'UnknownEntity');
    assert.equal(host.health().ready, true);
  });
});

describe('toka mcp next to toka serve (attached over <data>/mcp.sock), real processes', function () {
  this.timeout(60_000);
  let data: string;
  let server: ChildProcess;
  let grant: string;
  const clients: Client[] = [];

  const toka = async (...args: string[]) => (await run(process.execPath, [TOKA, ...args], { cwd: ROOT, env: ENV })).stdout;

  const connect = async (args: string[], env: Record<string, string> = {}) => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [TOKA, 'mcp', '--data', data, ...args], env: { ...ENV, ...env }, cwd: ROOT, stderr: 'pipe' });
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return client;
  };

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'toka-mcp-desktop-'));
    grant = (JSON.parse(await toka('token', 'mint', '--data', data, '--sub', 'claude', '--vault', 'v1', '--perm', 'state:read,agent:spawn', '--ttl', '1m', '--json')) as { grant: string }).grant;
    server = spawn(process.execPath, [TOKA, 'serve', '--data', data, '--port', '0'], { cwd: ROOT, env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      server.stderr!.setEncoding('utf8').on('data', (c: string) => {
        seen += c;
        if (seen.includes('"msg":"listening"')) resolve();
      });
      server.once('exit', (code) => reject(new Error(`toka serve exited ${code}: ${seen}`)));
    });
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    if (server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(data, { recursive: true, force: true });
  });

  it('serves a desktop client while toka serve holds the data dir, renewing 2-second tokens for longer than they (and the 5 s skew) live', async () => {
    const renewing = await connect(['--grant', grant, '--vault', 'v1', '--token-ttl', '2s']);
    const token = (await toka('token', 'mint', '--data', data, '--sub', 'claude', '--vault', 'v1', '--perm', 'state:read', '--ttl', '2s')).trim();
    const expiring = await connect([], { TOKA_TOKEN: token });
    assert.ok(!(await expiring.callTool({ name: 'get_state', arguments: {} })).isError);
    const deadline = Date.now() + 9_000;
    let calls = 0;
    while (Date.now() < deadline) {
      const spawned = await renewing.callTool({ name: 'spawn_agent', arguments: { name: `w${calls}` } });
      assert.ok(!spawned.isError, JSON.stringify(spawned));
      calls++;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(calls >= 10);
    await assert.rejects(expiring.callTool({ name: 'get_state', arguments: {} }), unauthenticated('ERR_TOKEN_EXPIRED'));
    const state = await renewing.callTool({ name: 'get_state', arguments: {} });
    const spawnedNames = (state.structuredContent as { agents: { name: string }[] }).agents.filter((a) => /^w\d+$/.test(a.name));
    assert.equal(spawnedNames.length, calls);
  });

  it('exits 1 with the host\'s typed refusal for an unknown grant, and the host stays up', async () => {
    const refused = await run(process.execPath, [TOKA, 'mcp', '--data', data, '--grant', 'nope', '--vault', 'v1'], { cwd: ROOT, env: ENV }).then(
      () => assert.fail('toka mcp accepted an unknown grant'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /unknown grant \(UnknownEntity\)/);
    assert.equal(server.exitCode, null);
  });

  it('`toka mcp config` prints an mcpServers entry whose command and args start a working server', async () => {
    const config = JSON.parse(await toka('mcp', 'config', '--data', data, '--grant', grant, '--vault', 'v1')) as {
      mcpServers: { toka: { command: string; args: string[]; env: Record<string, string> } };
    };
    const { command, args, env } = config.mcpServers.toka;
    assert.equal(command, process.execPath);
    assert.deepEqual(args.slice(1), ['mcp', '--data', data, '--grant', grant, '--vault', 'v1']);
    const transport = new StdioClientTransport({ command, args, env: { ...ENV, ...env }, cwd: tmpdir(), stderr: 'pipe' });
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
    // toka serve mounts MCP with its agent runtime: the runtime's tools the grant permits are listed.
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('get_run') && names.includes('list_runs') && !names.includes('run_agent'), names.join(', '));
  });
});
