/**
 * The OAuth authorization server of `/mcp` refusing bad input, on the real HTTP face of an in-process host
 * with a controllable clock (real sockets, real SQLite): registration bounds, redirect URI and PKCE checks,
 * sign-in and CSRF, consent beyond what the user holds, code replay and expiry, refresh after revocation,
 * audience binding. Each refusal is the OAuth error a client expects, and the host stays up.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { mountMcp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import { OAUTH_LIMITS } from '../../server/adapters/mcp/oauth.js';
import { createSigninCode } from '../../server/adapters/mcp/oauth-signin.js';
import { Host } from '../../server/host/host.js';
import type { HostError } from '../../server/host/errors.js';
import { createLogger } from '../../server/host/logger.js';
import { claimsOf, ConsentUser, hidden } from '../helpers/oauth.js';

const logger = createLogger({ level: 'silent' });
const REDIRECT = 'http://127.0.0.1:61998/cb';

describe('MCP OAuth: bad input gets the right OAuth error', function () {
  this.timeout(30_000);
  let dir: string;
  let data: string;
  let clock = Date.now();
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let base: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-oauth-err-'));
    data = join(dir, 'data');
    host = await Host.open({ dataDir: data, logger, now: () => clock, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = await mountMcp(http, host, { logger, dataDir: data, now: () => clock });
    base = http.url;
  });
  after(async () => {
    await mcp.close();
    await http.close();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

  async function register(metadata: Record<string, unknown>): Promise<Response> {
    return fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
  }
  async function client(redirect = REDIRECT): Promise<string> {
    const res = await register({ client_name: 'err client', redirect_uris: [redirect] });
    assert.equal(res.status, 201);
    return String((await json(res)).client_id);
  }
  function pkce() {
    const verifier = randomBytes(32).toString('base64url');
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  }
  function authorizeUrl(params: Record<string, string | undefined>): string {
    const url = new URL(`${base}/oauth/authorize`);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    return url.href;
  }
  function token(form: Record<string, string>): Promise<Response> {
    return fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  }

  /** Register, sign in as the owner, consent; returns what the token request needs. */
  async function codeFor(permissions = ['state:read'], user = new ConsentUser(base)) {
    const clientId = await client();
    const { verifier, challenge } = pkce();
    const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 's1' });
    const { request, csrf } = await user.signIn(url, createSigninCode(data, clock).code);
    const res = await user.consent(request, csrf, { vault: 'v1', permissions });
    assert.equal(res.status, 302, await res.text());
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    return { clientId, verifier, code, user };
  }
  const exchange = (c: { clientId: string; verifier: string; code: string }, extra: Record<string, string> = {}) =>
    token({ grant_type: 'authorization_code', client_id: c.clientId, code: c.code, code_verifier: c.verifier, redirect_uri: REDIRECT, ...extra });

  it('publishes RFC 8414 metadata and names itself in the resource metadata', async () => {
    const as = await json(await fetch(`${base}/.well-known/oauth-authorization-server`));
    assert.equal(as.issuer, base);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    assert.equal(as.token_endpoint, `${base}/oauth/token`);
    assert.equal(as.revocation_endpoint, `${base}/oauth/revoke`);
    const prm = await json(await fetch(`${base}/.well-known/oauth-protected-resource/mcp`));
    assert.deepEqual(prm.authorization_servers, [base]);
  });

  it('registration: https or loopback redirect URIs only, no fragment, bounded count and size, JSON only', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ redirect_uris: ['http://evil.example/cb'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://app.example/cb#frag'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['myapp://cb'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: [] }, 'invalid_redirect_uri'],
      [{ redirect_uris: Array.from({ length: 11 }, (_, i) => `https://a.example/${i}`) }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://a.example/cb'], grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
      [{ redirect_uris: ['https://a.example/cb'], client_name: 'x'.repeat(201) }, 'invalid_client_metadata'],
    ];
    for (const [metadata, error] of cases) {
      const res = await register(metadata);
      assert.equal(res.status, 400, JSON.stringify(metadata));
      assert.equal((await json(res)).error, error, JSON.stringify(metadata));
    }
    const notJson = await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    assert.equal(notJson.status, 400);
    const big = await fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://a.example/cb'], pad: 'x'.repeat(OAUTH_LIMITS.bodyBytes) }),
    });
    assert.equal(big.status, 413);
    const ok = await json(await register({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'client_secret_post' }));
    assert.equal(ok.token_endpoint_auth_method, 'none');
    assert.equal(ok.client_secret, undefined);
  });

  it('registration: at the per-host cap the oldest client without an authorization is forgotten', async () => {
    const ids: string[] = [];
    for (let i = 0; i < OAUTH_LIMITS.clientsPerHost + 1; i++) {
      const res = await register({ redirect_uris: [`https://cap.example/${i}`] });
      assert.equal(res.status, 201);
      ids.push(String((await json(res)).client_id));
    }
    const { challenge } = pkce();
    const forgotten = await fetch(authorizeUrl({ response_type: 'code', client_id: ids[0], redirect_uri: 'https://cap.example/0', code_challenge: challenge, code_challenge_method: 'S256' }));
    assert.equal(forgotten.status, 400);
    const kept = await fetch(authorizeUrl({ response_type: 'code', client_id: ids[1], redirect_uri: 'https://cap.example/1', code_challenge: challenge, code_challenge_method: 'S256' }));
    assert.equal(kept.status, 200);
  });

  it('authorize: unknown client or redirect URI not exactly registered → an error page, never a redirect', async () => {
    const clientId = await client();
    const { challenge } = pkce();
    for (const params of [
      { client_id: 'nope', redirect_uri: REDIRECT },
      { client_id: clientId, redirect_uri: `${REDIRECT}/` },
      { client_id: clientId, redirect_uri: 'http://127.0.0.1:61997/cb' },
      { client_id: clientId, redirect_uri: undefined },
    ]) {
      const res = await fetch(authorizeUrl({ response_type: 'code', code_challenge: challenge, code_challenge_method: 'S256', ...params }), { redirect: 'manual' });
      assert.equal(res.status, 400, JSON.stringify(params));
      assert.equal(res.headers.get('location'), null);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    }
  });

  it('authorize: missing or plain PKCE, wrong response_type or resource → redirected error with the state', async () => {
    const clientId = await client();
    const { challenge } = pkce();
    const cases: [Record<string, string | undefined>, string][] = [
      [{ code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
      [{ code_challenge: challenge, code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge: challenge, code_challenge_method: undefined }, 'invalid_request'],
      [{ code_challenge: 'short', code_challenge_method: 'S256' }, 'invalid_request'],
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ resource: 'http://127.0.0.1:1/mcp' }, 'invalid_target'],
    ];
    for (const [params, error] of cases) {
      const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'xyz', ...params });
      const res = await fetch(url, { redirect: 'manual' });
      assert.equal(res.status, 302, JSON.stringify(params));
      const back = new URL(res.headers.get('location')!);
      assert.equal(back.searchParams.get('error'), error, JSON.stringify(params));
      assert.equal(back.searchParams.get('state'), 'xyz');
      assert.equal(back.searchParams.get('code'), null);
    }
  });

  it('sign-in: a wrong or reused code and a post without this origin are refused', async () => {
    const clientId = await client();
    const { challenge } = pkce();
    const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
    const user = new ConsentUser(base);
    const request = hidden(await (await user.get(url)).text(), 'request');
    assert.equal((await user.post('/oauth/signin', { request, credential: 'A'.repeat(43) })).status, 401);
    const { code } = createSigninCode(data, clock);
    assert.equal((await user.post('/oauth/signin', { request, credential: code }, {})).status, 403, 'no Origin');
    assert.equal((await user.post('/oauth/signin', { request, credential: code })).status, 303);
    const again = new ConsentUser(base);
    assert.equal((await again.post('/oauth/signin', { request, credential: code })).status, 401, 'a code works once');
    const expired = createSigninCode(data, clock - 11 * 60_000).code;
    assert.equal((await again.post('/oauth/signin', { request, credential: expired })).status, 401, 'an expired code');
  });

  it('consent: a CSRF mismatch or no session is refused; deny goes back as access_denied', async () => {
    const clientId = await client();
    const { challenge } = pkce();
    const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st' });
    const user = new ConsentUser(base);
    const { request, csrf } = await user.signIn(url, createSigninCode(data, clock).code);
    const before = (await host.listGrants(host.localSession('v1'))).length;
    const forged = await user.consent(request, 'x'.repeat(csrf.length), { vault: 'v1', permissions: ['state:read'] });
    assert.equal(forged.status, 403);
    const stranger = new ConsentUser(base);
    const noSession = await stranger.consent(request, csrf, { vault: 'v1', permissions: ['state:read'] });
    assert.equal(noSession.status, 401, 'no cookie: the sign-in page again');
    assert.equal((await host.listGrants(host.localSession('v1'))).length, before, 'no grant was made');
    const denied = await user.consent(request, csrf, { vault: 'v1', permissions: ['state:read'], decision: 'deny' });
    assert.equal(denied.status, 302);
    const back = new URL(denied.headers.get('location')!);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'st');
  });

  it('consent: a token holder can grant only what the token holds, in its vault; the grant is a child of theirs', async () => {
    const alice = await host.mint(host.localSession('v1'), { subject: 'alice', permissions: ['state:read', 'capability:grant'], ttlSeconds: 1800 });
    const clientId = await client();
    const { verifier, challenge } = pkce();
    const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
    const user = new ConsentUser(base);
    const { request, csrf, html } = await user.signIn(url, alice.token);
    assert.match(html, /Vault: <b>v1<\/b>/);
    assert.doesNotMatch(html, /value="events:read"/, 'only held permissions are offered');
    const before = (await host.listGrants(host.localSession('v1'))).length;
    const wider = await user.consent(request, csrf, { permissions: ['state:read', 'events:read'] });
    assert.equal(wider.status, 400);
    assert.match(await wider.text(), /cannot grant more than you hold/);
    const otherVault = await user.consent(request, csrf, { vault: 'v2', permissions: ['state:read'] });
    const code = new URL(otherVault.headers.get('location')!).searchParams.get('code')!;
    assert.equal((await host.listGrants(host.localSession('v1'))).length, before + 1);
    const tokens = await json(await exchange({ clientId, verifier, code }));
    const claims = claimsOf(String(tokens.access_token));
    assert.equal(claims.vault, 'v1', 'the vault is the token’s, whatever the form says');
    const grant = (await host.listGrants(host.localSession('v1'))).find((g) => g.id === claims.grant)!;
    assert.equal(grant.parent, alice.grant);
    // Alice's grant revoked: the client's dies with it.
    await host.revoke(host.localSession('v1'), { grant: alice.grant });
    const refreshed = await token({ grant_type: 'refresh_token', client_id: clientId, refresh_token: String(tokens.refresh_token) });
    assert.equal((await json(refreshed)).error, 'invalid_grant');
  });

  it('token: wrong verifier, redirect URI or client, a reused code (revokes what it gave) and an expired code', async () => {
    const a = await codeFor();
    assert.equal((await json(await exchange(a, { code_verifier: pkce().verifier }))).error, 'invalid_grant');
    assert.equal((await json(await exchange(a))).error, 'invalid_grant', 'one attempt per code');

    const b = await codeFor();
    assert.equal((await json(await exchange(b, { code_verifier: '' }))).error, 'invalid_request');
    const c = await codeFor();
    assert.equal((await json(await exchange(c, { redirect_uri: `${REDIRECT}x` }))).error, 'invalid_grant');
    const d = await codeFor();
    const unknown = await exchange(d, { client_id: 'nobody' });
    assert.equal(unknown.status, 401);
    assert.equal((await json(unknown)).error, 'invalid_client');
    assert.equal((await json(await token({ grant_type: 'password', client_id: d.clientId }))).error, 'unsupported_grant_type');

    const e = await codeFor();
    const first = await json(await exchange(e));
    const access = String(first.access_token);
    await host.authenticate(access, `${base}/mcp`);
    const replay = await exchange(e);
    assert.equal(replay.status, 400);
    assert.equal((await json(replay)).error, 'invalid_grant');
    await assert.rejects(host.authenticate(access, `${base}/mcp`), (err: HostError) => err.details.reason === 'ERR_GRANT_REVOKED');

    const f = await codeFor();
    clock += OAUTH_LIMITS.codeMs + 1000;
    try {
      assert.equal((await json(await exchange(f))).error, 'invalid_grant');
    } finally {
      clock -= OAUTH_LIMITS.codeMs + 1000;
    }
  });

  it('access tokens are bound to /mcp (aud): refused by every other face; refresh families end', async () => {
    const g = await codeFor(['state:read']);
    const tokens = await json(await exchange(g));
    const access = String(tokens.access_token);
    await assert.rejects(host.authenticate(access), (err: HostError) => err.details.reason === 'ERR_AUDIENCE');
    await assert.rejects(host.authenticate(access, 'http://127.0.0.1:1/mcp'), (err: HostError) => err.details.reason === 'ERR_AUDIENCE');
    const revokeAsBearer = await fetch(`${base}/oauth/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: access }),
    });
    assert.equal(revokeAsBearer.status, 401, 'not a capability for the revocation face');
    // A refresh with another scope is refused; after the family's lifetime, refresh ends.
    assert.equal((await json(await token({ grant_type: 'refresh_token', client_id: g.clientId, refresh_token: String(tokens.refresh_token), scope: '*' }))).error, 'invalid_scope');
    clock += OAUTH_LIMITS.refreshFamilyMs + 1000;
    try {
      assert.equal((await json(await token({ grant_type: 'refresh_token', client_id: g.clientId, refresh_token: String(tokens.refresh_token) }))).error, 'invalid_grant');
    } finally {
      clock -= OAUTH_LIMITS.refreshFamilyMs + 1000;
    }
    // Another client cannot use or revoke this client's refresh token.
    const h = await codeFor(['state:read']);
    const other = await json(await exchange(h));
    const stranger = await client();
    assert.equal((await json(await token({ grant_type: 'refresh_token', client_id: stranger, refresh_token: String(other.refresh_token) }))).error, 'invalid_grant');
    const revoke = await fetch(`${base}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: String(other.refresh_token), client_id: stranger }),
    });
    assert.equal(revoke.status, 400);
    assert.equal((await json(revoke)).error, 'unauthorized_client');
    // The client revokes with its access token (RFC 7009): the grant, and with it the refresh token, ends.
    const byAccess = await fetch(`${base}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: String(other.access_token), token_type_hint: 'access_token', client_id: h.clientId }),
    });
    assert.equal(byAccess.status, 200);
    await assert.rejects(host.authenticate(String(other.access_token), `${base}/mcp`), (err: HostError) => err.details.reason === 'ERR_GRANT_REVOKED');
    assert.equal((await json(await token({ grant_type: 'refresh_token', client_id: h.clientId, refresh_token: String(other.refresh_token) }))).error, 'invalid_grant');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  it('sign-in pauses after 10 failures in a minute, even for a good code', async () => {
    clock += 60_000;
    const clientId = await client();
    const { challenge } = pkce();
    const user = new ConsentUser(base);
    const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
    const request = hidden(await (await user.get(url)).text(), 'request');
    for (let i = 0; i < OAUTH_LIMITS.signinFailuresPerMinute; i++) {
      assert.equal((await user.post('/oauth/signin', { request, credential: `wrong-${i}` })).status, 401);
    }
    const paused = await user.post('/oauth/signin', { request, credential: createSigninCode(data, clock).code });
    assert.equal(paused.status, 401);
    assert.match(await paused.text(), /too many failed sign-ins/);
    clock += 60_000;
    assert.equal((await user.post('/oauth/signin', { request, credential: createSigninCode(data, clock).code })).status, 303);
  });
});
