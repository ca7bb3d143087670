/**
 * Sign in with OAuth against a real `toka serve` process, driven by the MCP SDK's own client OAuth support
 * (`auth()` with an OAuthClientProvider: discovery, dynamic registration, PKCE, code exchange, refresh),
 * the user's consent done over HTTP as a browser would, then MCP tool calls with the access token.
 * Revocation (by the client, RFC 7009, and by the owner with `toka token revoke --grant`) ends every token.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { cleanEnv, ROOT, toka, TOKA_BIN } from '../helpers/cli.js';
import { claimsOf, ConsentUser, MemoryOAuthProvider } from '../helpers/oauth.js';

interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

/** A port free right now (the restart test needs the same URL, hence the same port, twice). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `toka serve --port <port> --data <data>`, resolved on its `listening` log line. */
function serve(data: string, port: number): Promise<Served> {
  const child = spawn(process.execPath, [TOKA_BIN, 'serve', '--port', String(port), '--data', data], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`toka serve did not listen: ${stderr}`)), 15_000);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      for (const line of stderr.split('\n')) {
        if (!line.includes('"listening"')) continue;
        clearTimeout(timer);
        resolve({ child, url: String((JSON.parse(line) as { url: string }).url), stderr: () => stderr });
        return;
      }
    });
    child.on('exit', (code) => reject(new Error(`toka serve exited (${code}): ${stderr}`)));
  });
}

async function signinCode(data: string): Promise<string> {
  const run = await toka(['signin', '--data', data]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim();
}

describe('MCP OAuth against a real toka serve (SDK client auth)', function () {
  this.timeout(60_000);
  let dir: string;
  let data: string;
  let served: Served;
  let port: number;
  const redirect = 'http://127.0.0.1:61999/callback';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-oauth-'));
    data = join(dir, 'data');
    port = await freePort();
    served = await serve(data, port);
  });
  const stop = async () => {
    const closed = new Promise((resolve) => served.child.once('close', resolve));
    served.child.kill('SIGTERM');
    await closed;
  };
  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Run the SDK's `auth()` to the redirect, consent as the owner, and exchange the code; returns the grant. */
  async function authorize(provider: MemoryOAuthProvider, permissions: string[]): Promise<{ grant: string }> {
    const serverUrl = `${served.url}/mcp`;
    assert.equal(await auth(provider, { serverUrl }), 'REDIRECT');
    const url = provider.authorizationUrl!;
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('resource'), serverUrl);
    const user = new ConsentUser(served.url);
    const { request, csrf, html } = await user.signIn(url.href, await signinCode(data));
    assert.match(html, /Allow <b>Test MCP client<\/b>/);
    const done = await user.consent(request, csrf, { vault: 'v1', permissions });
    assert.equal(done.status, 302, await done.text());
    const back = new URL(done.headers.get('location')!);
    assert.equal(`${back.origin}${back.pathname}`, redirect);
    assert.equal(back.searchParams.get('state'), provider.stateValue);
    assert.equal(back.searchParams.get('iss'), served.url);
    assert.equal(await auth(provider, { serverUrl, authorizationCode: back.searchParams.get('code')! }), 'AUTHORIZED');
    const claims = claimsOf(provider.saved!.access_token);
    return { grant: String(claims.grant) };
  }

  async function mcpClient(provider: MemoryOAuthProvider): Promise<Client> {
    const client = new Client({ name: 'oauth-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${served.url}/mcp`), { authProvider: provider }));
    return client;
  }

  it('discovery → registration → PKCE → consent → token → MCP tool call; refresh rotates; a reused refresh token revokes all', async () => {
    const provider = new MemoryOAuthProvider(redirect);
    const { grant } = await authorize(provider, ['state:read', 'agent:spawn']);
    const tokens = provider.saved!;
    const claims = claimsOf(tokens.access_token);
    assert.equal(claims.aud, `${served.url}/mcp`);
    assert.equal(claims.vault, 'v1');
    assert.deepEqual(claims.permissions, ['state:read', 'agent:spawn']);
    assert.ok((claims.exp as number) - (claims.iat as number) <= 1800);
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.scope, 'state:read agent:spawn');
    assert.ok(tokens.refresh_token);

    const client = await mcpClient(provider);
    const spawned = await client.callTool({ name: 'spawn_agent', arguments: { parent: 'root', name: 'via-oauth' } });
    assert.ok(!spawned.isError, JSON.stringify(spawned));
    const state = await client.callTool({ name: 'get_state', arguments: {} });
    assert.match(JSON.stringify(state.structuredContent), /via-oauth/);
    await client.close();

    // The grant is an ordinary, logged one: the owner sees it in the state, for the client's subject.
    const state2 = await toka(['state', '--data', data]);
    assert.equal(state2.code, 0, state2.stderr);
    const grants = (JSON.parse(state2.stdout) as { state: { grants: Record<string, { subject: string; vault: string }> } }).state.grants;
    assert.equal(grants[grant].subject, `oauth:${provider.info!.client_id}`);
    assert.equal(grants[grant].vault, 'v1');

    // Refresh through the SDK: a new access token and a new refresh token.
    const first = tokens.refresh_token!;
    assert.equal(await auth(provider, { serverUrl: `${served.url}/mcp` }), 'AUTHORIZED');
    const second = provider.saved!;
    assert.notEqual(second.refresh_token, first);
    assert.notEqual(second.access_token, tokens.access_token);
    assert.equal(claimsOf(second.access_token).grant, grant);

    // The rotated-away refresh token comes back (a stolen copy): invalid_grant, and the whole authorization ends.
    const reuse = await tokenRequest({ grant_type: 'refresh_token', refresh_token: first, client_id: provider.info!.client_id });
    assert.equal(reuse.status, 400);
    assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant');
    const later = await tokenRequest({ grant_type: 'refresh_token', refresh_token: second.refresh_token!, client_id: provider.info!.client_id });
    assert.equal(((await later.json()) as { error: string }).error, 'invalid_grant');
    const refused = await mcpPost(second.access_token);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /invalid_token/);
  });

  it('RFC 7009 revocation by the client and `toka token revoke --grant` each end the access and refresh tokens', async () => {
    for (const how of ['client', 'cli'] as const) {
      const provider = new MemoryOAuthProvider(redirect);
      const { grant } = await authorize(provider, ['state:read']);
      const { access_token, refresh_token } = provider.saved!;
      assert.equal((await mcpPost(access_token)).status, 200);
      if (how === 'client') {
        const res = await fetch(`${served.url}/oauth/revoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: refresh_token!, token_type_hint: 'refresh_token', client_id: provider.info!.client_id }),
        });
        assert.equal(res.status, 200, await res.text());
      } else {
        const run = await toka(['token', 'revoke', '--data', data, '--vault', 'v1', '--grant', grant]);
        assert.equal(run.code, 0, run.stderr);
      }
      assert.equal((await mcpPost(access_token)).status, 401, how);
      const res = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refresh_token!, client_id: provider.info!.client_id });
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant', how);
    }
  });

  it('keeps clients and refresh tokens (hashed only) in an owner-only oauth.json', () => {
    const file = join(data, 'oauth.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /Test MCP client/);
    assert.doesNotMatch(served.stderr(), /refresh_token|access_token/);
  });

  it('a restarted host keeps the client and its refresh token: the SDK refreshes and calls a tool', async () => {
    const provider = new MemoryOAuthProvider(redirect);
    await authorize(provider, ['state:read']);
    const before = provider.saved!;
    await stop();
    served = await serve(data, port);
    assert.equal(await auth(provider, { serverUrl: `${served.url}/mcp` }), 'AUTHORIZED');
    assert.notEqual(provider.saved!.refresh_token, before.refresh_token);
    const client = await mcpClient(provider);
    const state = await client.callTool({ name: 'get_state', arguments: {} });
    assert.ok(!state.isError, JSON.stringify(state));
    await client.close();
  });

  function tokenRequest(form: Record<string, string>): Promise<Response> {
    return fetch(`${served.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  }

  /** An MCP initialize with `token`. */
  function mcpPost(token: string): Promise<Response> {
    return fetch(`${served.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
  }
});
