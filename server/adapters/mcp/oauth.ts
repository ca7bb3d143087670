/**
 * `toka serve` as the OAuth 2.1 authorization server of its own MCP resource (`/mcp`):
 * - `GET /.well-known/oauth-authorization-server` — RFC 8414 metadata (the resource metadata names it).
 * - `POST /oauth/register` — dynamic client registration (RFC 7591): public clients only, redirect URIs
 *   https or loopback http, bounded in size and in number per redirect host.
 * - `GET /oauth/authorize` — authorization code with PKCE (S256 only), exact redirect URI match, `state`
 *   passed through, `resource` (RFC 8707) = this host's `/mcp`. Loopback callers only. Shows the sign-in
 *   page, then the consent page where the signed-in user picks the vault and the permissions.
 * - `POST /oauth/signin` — a one-time code from `toka signin` (the data dir's owner) or a capability token
 *   (its holder) starts a browser session: an HttpOnly, SameSite=Strict cookie scoped to `/oauth`.
 * - `POST /oauth/authorize` — the consent form (same-origin, CSRF token of the browser session): the grant
 *   is created with `Host.mint` under the user's own session, so it is an ordinary logged, revocable grant
 *   that can never exceed what the user holds; then the code goes back to the client's redirect URI.
 * - `POST /oauth/token` — `authorization_code` and `refresh_token`. Access tokens are ordinary capability
 *   tokens minted from the grant, bound to the resource (`aud`); refresh tokens rotate on every use, a
 *   spent one presented again revokes the grant (and with it the whole family), and they die with the grant.
 * - `POST /oauth/revoke` without a bearer token — RFC 7009 for these public clients: revokes the grant.
 * Clients and refresh-token families persist in `<data>/oauth.json` (oauth-store.ts, hashes only); codes,
 * pending requests and browser sessions live in memory, bounded, and end with the process.
 */
import { randomBytes, randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CLAIM_LIMITS, isKnownPermission, isSubset, isWellFormedText, MAX_TOKEN_LIFETIME_S, PERMISSIONS, permits } from '../../../protocol/capability.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { BodyTooLarge, readBody, sendJson } from '../http-request.js';
import { consentPage, errorPage, signinPage } from './oauth-pages.js';
import { consumeSigninCode } from './oauth-signin.js';
import { OAuthStore, secretHash, type ClientRecord, type RefreshFamily } from './oauth-store.js';
import { baseUrl, type RouteTarget } from './resource-metadata.js';

export const AUTHORIZATION_SERVER_METADATA_PATH = '/.well-known/oauth-authorization-server';

/** The limits of the authorization server (all bounded; each refusal names its limit). */
export const OAUTH_LIMITS = {
  /** Largest registration, token, revocation or form body. */
  bodyBytes: 16 * 1024,
  redirectUris: 10,
  uriChars: 2000,
  clientNameChars: 200,
  /** Registered clients per redirect host; at the cap the oldest one without an authorization is forgotten. */
  clientsPerHost: 50,
  clients: 1000,
  /** Authorization requests waiting for sign-in or consent. */
  pendingRequests: 1000,
  pendingRequestMs: 10 * 60_000,
  /** Authorization codes outstanding (used ones are kept until they expire, to catch a replay). */
  codes: 1000,
  codeMs: 60_000,
  browserSessions: 100,
  browserSessionMs: 30 * 60_000,
  /** Failed sign-ins tolerated per minute before sign-in pauses for the rest of it. */
  signinFailuresPerMinute: 10,
  /** Access token lifetime (a capability token: at most MAX_TOKEN_LIFETIME_S). */
  accessTokenSeconds: 15 * 60,
  /** A refresh-token family ends this long after the consent. */
  refreshFamilyMs: 30 * 24 * 3600_000,
} as const;

export interface OAuthOptions {
  logger: Logger;
  /** The data dir: `oauth.json` and the sign-in codes of `toka signin` live there. */
  dataDir: string;
  /** The path of the protected resource (`/mcp`). */
  resourcePath: string;
  /** Clock (ms since the epoch); default the host's. */
  now?: () => number;
}

/** The HTTP face's hooks the authorization server mounts on (`HttpServer` has them). */
export interface OAuthTarget extends RouteTarget {
  revocation(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): void;
}

interface PendingRequest {
  client: ClientRecord;
  redirectUri: string;
  state?: string;
  challenge: string;
  resource: string;
  scope: Set<string>;
  expiresAt: number;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  resource: string;
  grant: string;
  vault: string;
  scope: string[];
  expiresAt: number;
  used: boolean;
}

/** Who signed in to the browser session: the data dir's owner (any vault) or a token holder (its vault). */
type SignedIn = { kind: 'owner' } | { kind: 'token'; session: Session };

interface BrowserSession {
  who: SignedIn;
  csrf: string;
  expiresAt: number;
}

const COOKIE = 'toka_oauth';
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const VERIFIER_SHAPE = /^[A-Za-z0-9._~-]{43,128}$/;
const CHALLENGE_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** An OAuth error answer (RFC 6749 §5.2 shape). */
class OAuthError extends Error {
  constructor(
    readonly error: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface OAuthServer {
  /** Registered clients (for tests and metrics). */
  readonly clients: number;
}

export function mountOAuth(target: OAuthTarget, host: Host, options: OAuthOptions): OAuthServer {
  const { logger, dataDir, resourcePath } = options;
  const now = options.now ?? (() => host.now());
  const store = OAuthStore.open(dataDir);
  const pending = new Map<string, PendingRequest>();
  const codes = new Map<string, IssuedCode>();
  const browsers = new Map<string, BrowserSession>();
  let signinFailures = { minute: 0, count: 0 };

  const issuerOf = (req: IncomingMessage) => baseUrl(req);
  const resourceOf = (req: IncomingMessage) => `${baseUrl(req)}${resourcePath}`;

  // ---- metadata (RFC 8414) ----------------------------------------------------------------------------
  target.route('GET', AUTHORIZATION_SERVER_METADATA_PATH, (req, res) => {
    const issuer = issuerOf(req);
    sendJson(
      res,
      200,
      {
        issuer,
        authorization_endpoint: `${issuer}/oauth/authorize`,
        token_endpoint: `${issuer}/oauth/token`,
        registration_endpoint: `${issuer}/oauth/register`,
        revocation_endpoint: `${issuer}/oauth/revoke`,
        response_types_supported: ['code'],
        response_modes_supported: ['query'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
        revocation_endpoint_auth_methods_supported: ['none'],
        scopes_supported: Object.keys(PERMISSIONS),
        authorization_response_iss_parameter_supported: true,
      },
      { 'cache-control': 'max-age=300' },
    );
  });

  // ---- registration (RFC 7591) ------------------------------------------------------------------------
  target.route('POST', '/oauth/register', async (req, res) => {
    try {
      const metadata = await jsonBody(req);
      const client = registration(metadata, now());
      admit(client);
      store.clients.set(client.client_id, client);
      store.save();
      logger.info('oauth client registered', { clientId: client.client_id, redirectHost: client.host });
      sendJson(
        res,
        201,
        {
          client_id: client.client_id,
          client_id_issued_at: client.client_id_issued_at,
          ...(client.client_name !== undefined ? { client_name: client.client_name } : {}),
          redirect_uris: client.redirect_uris,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        },
        NO_STORE,
      );
    } catch (err) {
      oauthFailure(res, err);
    }
  });

  /** Room for one more client of its host: forget the oldest one without an authorization, or refuse. */
  const admit = (client: ClientRecord): void => {
    const sameHost = [...store.clients.values()].filter((c) => c.host === client.host);
    const full = sameHost.length >= OAUTH_LIMITS.clientsPerHost ? sameHost : store.clients.size >= OAUTH_LIMITS.clients ? [...store.clients.values()] : null;
    if (full === null) return;
    const idle = full.filter((c) => store.familiesOf(c.client_id).length === 0).sort((a, b) => a.client_id_issued_at - b.client_id_issued_at)[0];
    if (!idle) {
      const limit = sameHost.length >= OAUTH_LIMITS.clientsPerHost ? `oauth.clientsPerHost (${OAUTH_LIMITS.clientsPerHost})` : `oauth.clients (${OAUTH_LIMITS.clients})`;
      throw new OAuthError('invalid_client_metadata', `too many registered clients with authorizations: limit ${limit}`);
    }
    store.clients.delete(idle.client_id);
    logger.info('oauth client forgotten to make room', { clientId: idle.client_id });
  };

  // ---- authorization endpoint -------------------------------------------------------------------------
  target.route('GET', '/oauth/authorize', (req, res) => {
    req.resume();
    if (!fromLoopback(req)) return errorPage(res, 403, 'the consent page is served to loopback callers only');
    sweep();
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const requestId = query.get('request');
    let id: string;
    if (requestId !== null) {
      if (!pending.has(requestId)) return errorPage(res, 400, 'this authorization request has expired or is unknown; start again from the client');
      id = requestId;
    } else {
      const started = startRequest(req, res, query);
      if (started === null) return;
      id = started;
    }
    showRequest(req, res, id);
  });

  /**
   * Validate a new authorization request. Until the client and its redirect URI are known to match, errors
   * are shown here (never redirected: RFC 6749 §4.1.2.1); after that, they go back to the client.
   */
  const startRequest = (req: IncomingMessage, res: ServerResponse, q: URLSearchParams): string | null => {
    const clientId = single(q, 'client_id');
    const client = clientId !== undefined ? store.clients.get(clientId) : undefined;
    if (!client) {
      errorPage(res, 400, 'unknown client_id: the client must register first');
      return null;
    }
    const redirectUri = single(q, 'redirect_uri');
    if (redirectUri === undefined || !client.redirect_uris.includes(redirectUri)) {
      errorPage(res, 400, 'redirect_uri does not exactly match a URI registered for this client');
      return null;
    }
    const state = single(q, 'state');
    const back = (error: string, description: string) => redirect(res, redirectUri, { error, error_description: description, state, iss: issuerOf(req) });
    if (single(q, 'response_type') !== 'code') return back('unsupported_response_type', 'response_type must be code'), null;
    const method = single(q, 'code_challenge_method');
    const challenge = single(q, 'code_challenge');
    if (challenge === undefined) return back('invalid_request', 'PKCE is required: code_challenge is missing'), null;
    if (method !== 'S256') return back('invalid_request', 'code_challenge_method must be S256'), null;
    if (!CHALLENGE_SHAPE.test(challenge)) return back('invalid_request', 'code_challenge must be a base64url SHA-256'), null;
    const resource = single(q, 'resource') ?? resourceOf(req);
    if (resource !== resourceOf(req)) return back('invalid_target', `resource must be ${resourceOf(req)}`), null;
    const scope = new Set((single(q, 'scope') ?? '').split(' ').filter((s) => s !== '' && isKnownPermission(s)));
    if (pending.size >= OAUTH_LIMITS.pendingRequests) return back('temporarily_unavailable', 'too many authorization requests in progress'), null;
    const id = randomUUID();
    pending.set(id, { client, redirectUri, state, challenge, resource, scope, expiresAt: now() + OAUTH_LIMITS.pendingRequestMs });
    return id;
  };

  /** The sign-in page, or the consent page for the signed-in user. */
  const showRequest = (req: IncomingMessage, res: ServerResponse, id: string, message?: string): void => {
    const request = pending.get(id)!;
    const browser = browserOf(req);
    const clientName = clientLabel(request.client);
    if (!browser) return signinPage(res, id, clientName, message);
    const held = heldBy(browser.who);
    consentPage(res, {
      request: id,
      csrf: browser.csrf,
      clientName,
      clientId: request.client.client_id,
      redirectUri: request.redirectUri,
      resource: request.resource,
      who: browser.who.kind === 'owner' ? 'the owner of this host (local admin)' : `${browser.who.session.principal} (capability token)`,
      vault: browser.who.kind === 'owner' ? { choices: ['default'] } : { fixed: browser.who.session.claims.vault },
      offered: Object.keys(PERMISSIONS).filter((p) => permits(held, p)),
      requested: request.scope,
      message,
    });
  };

  target.route('POST', '/oauth/signin', async (req, res) => {
    const form = await pageForm(req, res, 'sign-in is accepted from this host’s own pages on loopback only');
    if (form === null) return;
    const id = form.get('request') ?? '';
    if (!pending.has(id)) return errorPage(res, 400, 'this authorization request has expired or is unknown; start again from the client');
    const minute = Math.floor(now() / 60_000);
    if (signinFailures.minute === minute && signinFailures.count >= OAUTH_LIMITS.signinFailuresPerMinute) {
      return showRequest(req, res, id, 'too many failed sign-ins: wait a minute');
    }
    const credential = (form.get('credential') ?? '').trim();
    let who: SignedIn | null = null;
    if (credential.includes('.')) {
      try {
        who = { kind: 'token', session: await host.authenticate(credential) };
      } catch {
        who = null;
      }
    } else if (consumeSigninCode(dataDir, credential, now())) {
      who = { kind: 'owner' };
    }
    if (who === null) {
      signinFailures = signinFailures.minute === minute ? { minute, count: signinFailures.count + 1 } : { minute, count: 1 };
      logger.warn('oauth sign-in refused');
      return signinPage(res, id, clientLabel(pending.get(id)!.client), 'that sign-in code or token is not valid (a code works once, for 10 minutes)');
    }
    if (browsers.size >= OAUTH_LIMITS.browserSessions) browsers.delete(browsers.keys().next().value!);
    const sid = randomBytes(32).toString('base64url');
    browsers.set(secretHash(sid), { who, csrf: randomBytes(32).toString('base64url'), expiresAt: now() + OAUTH_LIMITS.browserSessionMs });
    logger.info('oauth sign-in', { as: who.kind === 'owner' ? 'owner' : who.session.principal });
    res.writeHead(303, {
      ...NO_STORE,
      location: `/oauth/authorize?request=${encodeURIComponent(id)}`,
      'set-cookie': `${COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/oauth; Max-Age=${OAUTH_LIMITS.browserSessionMs / 1000}`,
      'content-length': '0',
    });
    res.end();
  });

  target.route('POST', '/oauth/authorize', async (req, res) => {
    const form = await pageForm(req, res, 'consent is accepted from this host’s own pages on loopback only');
    if (form === null) return;
    const id = form.get('request') ?? '';
    const request = pending.get(id);
    if (!request) return errorPage(res, 400, 'this authorization request has expired or is unknown; start again from the client');
    const browser = browserOf(req);
    if (!browser) return showRequest(req, res, id, 'your sign-in has expired: sign in again');
    if (!equalSecrets(form.get('csrf') ?? '', browser.csrf)) return errorPage(res, 403, 'the form is stale or was not sent by this page (CSRF check failed)');
    pending.delete(id);
    const back = (params: Record<string, string | undefined>) => redirect(res, request.redirectUri, { ...params, state: request.state, iss: issuerOf(req) });
    if (form.get('decision') !== 'allow') return back({ error: 'access_denied', error_description: 'the user denied the request' });
    const permissions = [...new Set(form.getAll('permission'))];
    const vault = browser.who.kind === 'owner' ? (form.get('vault') ?? '').trim() : browser.who.session.claims.vault;
    const held = heldBy(browser.who);
    const refuse = (message: string) => {
      pending.set(id, request);
      showRequest(req, res, id, message);
    };
    if (permissions.length === 0) return refuse('choose at least one permission');
    if (!permissions.every(isKnownPermission)) return refuse('unknown permission');
    if (!isSubset(permissions, held)) return refuse('you cannot grant more than you hold');
    if (vault === '' || vault.length > CLAIM_LIMITS.vaultChars) return refuse(`choose a vault (1..${CLAIM_LIMITS.vaultChars} chars)`);
    let grant: string;
    try {
      const session = browser.who.kind === 'owner' ? host.localSession(vault) : browser.who.session;
      const minted = await host.mint(session, {
        subject: `oauth:${request.client.client_id}`,
        permissions,
        label: `OAuth client ${clientLabel(request.client)}`.slice(0, 200),
        ttlSeconds: 1,
      });
      grant = minted.grant;
    } catch (err) {
      const e = HostError.from(err);
      logger.info('oauth consent refused by the host', { reason: e.message });
      return refuse(`the host refused the grant: ${e.message}`);
    }
    const code = randomBytes(32).toString('base64url');
    if (codes.size >= OAUTH_LIMITS.codes) sweep();
    if (codes.size >= OAUTH_LIMITS.codes) codes.delete(codes.keys().next().value!);
    codes.set(secretHash(code), {
      clientId: request.client.client_id,
      redirectUri: request.redirectUri,
      challenge: request.challenge,
      resource: request.resource,
      grant,
      vault,
      scope: permissions,
      expiresAt: now() + OAUTH_LIMITS.codeMs,
      used: false,
    });
    logger.info('oauth consent given', { clientId: request.client.client_id, grant, vault });
    back({ code });
  });

  // ---- token endpoint ---------------------------------------------------------------------------------
  target.route('POST', '/oauth/token', async (req, res) => {
    try {
      const form = await formBody(req);
      const client = clientOf(form);
      const grantType = form.get('grant_type');
      const tokens =
        grantType === 'authorization_code'
          ? await exchangeCode(form, client)
          : grantType === 'refresh_token'
            ? await refresh(form, client)
            : fail('unsupported_grant_type', 'grant_type must be authorization_code or refresh_token');
      sendJson(res, 200, tokens, NO_STORE);
    } catch (err) {
      oauthFailure(res, err);
    }
  });

  const exchangeCode = async (form: URLSearchParams, client: ClientRecord) => {
    const code = form.get('code') ?? fail('invalid_request', 'code is required');
    const issued = codes.get(secretHash(code));
    if (!issued || issued.clientId !== client.client_id) return fail('invalid_grant', 'unknown authorization code');
    if (issued.used) {
      // A code presented twice was intercepted or replayed: end what was issued from it (RFC 6749 §4.1.2).
      const family = [...store.families.values()].find((f) => f.grant === issued.grant);
      if (family) await endFamily(family, 'OAuth authorization code reused');
      else await revokeGrant(issued.vault, issued.grant, 'OAuth authorization code reused');
      return fail('invalid_grant', 'authorization code already used: the authorization is revoked');
    }
    issued.used = true;
    if (now() > issued.expiresAt) return fail('invalid_grant', 'authorization code expired');
    if (form.get('redirect_uri') !== issued.redirectUri) return fail('invalid_grant', 'redirect_uri does not match the authorization request');
    const verifier = form.get('code_verifier') ?? '';
    if (!VERIFIER_SHAPE.test(verifier)) return fail('invalid_request', 'code_verifier is required (43..128 unreserved characters)');
    if (createHash('sha256').update(verifier).digest('base64url') !== issued.challenge) return fail('invalid_grant', 'code_verifier does not match the code_challenge');
    const resource = form.get('resource') ?? issued.resource;
    if (resource !== issued.resource) return fail('invalid_target', 'resource differs from the one authorized');
    const refreshToken = randomBytes(32).toString('base64url');
    const family: RefreshFamily = {
      id: randomUUID(),
      client_id: client.client_id,
      grant: issued.grant,
      vault: issued.vault,
      resource: issued.resource,
      scope: issued.scope,
      current: secretHash(refreshToken),
      spent: [],
      expiresAt: now() + OAUTH_LIMITS.refreshFamilyMs,
    };
    store.addFamily(family);
    store.save();
    return tokenResponse(family, refreshToken);
  };

  const refresh = async (form: URLSearchParams, client: ClientRecord) => {
    const presented = form.get('refresh_token') ?? fail('invalid_request', 'refresh_token is required');
    const found = store.familyOf(secretHash(presented));
    if (!found || found.family.client_id !== client.client_id) return fail('invalid_grant', 'unknown refresh token');
    const { family } = found;
    if (!found.current) {
      // A rotated-away refresh token came back: someone holds a copy. End the whole authorization.
      await endFamily(family, 'OAuth refresh token reused');
      return fail('invalid_grant', 'refresh token already used: the authorization is revoked');
    }
    if (now() > family.expiresAt) {
      await endFamily(family, 'OAuth refresh family expired');
      return fail('invalid_grant', 'refresh token expired: authorize again');
    }
    if (!(await grantLive(family.vault, family.grant))) {
      store.removeFamily(family);
      store.save();
      return fail('invalid_grant', 'the grant behind this refresh token was revoked or has expired');
    }
    const resource = form.get('resource') ?? family.resource;
    if (resource !== family.resource) return fail('invalid_target', 'resource differs from the one authorized');
    const scope = form.get('scope');
    if (scope !== null && scope.split(' ').filter(Boolean).sort().join(' ') !== [...family.scope].sort().join(' ')) {
      return fail('invalid_scope', 'a refresh carries the granted scope or none');
    }
    const next = randomBytes(32).toString('base64url');
    store.rotate(family, secretHash(next));
    store.save();
    return tokenResponse(family, next);
  };

  const tokenResponse = async (family: RefreshFamily, refreshToken: string) => {
    let access: { token: string };
    try {
      access = await host.issueToken(host.localSession(family.vault), {
        grant: family.grant,
        ttlSeconds: Math.min(OAUTH_LIMITS.accessTokenSeconds, MAX_TOKEN_LIFETIME_S),
        audience: family.resource,
      });
    } catch (err) {
      const e = HostError.from(err);
      if (e.errorName === 'UnknownEntity') return fail('invalid_grant', 'the grant is gone');
      throw err;
    }
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: Math.min(OAUTH_LIMITS.accessTokenSeconds, MAX_TOKEN_LIFETIME_S),
      refresh_token: refreshToken,
      scope: family.scope.join(' '),
    };
  };

  // ---- revocation (RFC 7009), public clients ------------------------------------------------------------
  target.revocation(async (req, res) => {
    try {
      const form = await formBody(req);
      const client = clientOf(form);
      const token = form.get('token') ?? fail('invalid_request', 'token is required');
      const family = await familyOfToken(req, token);
      if (family && family.client_id !== client.client_id) return fail('unauthorized_client', 'the token was not issued to this client');
      if (family) await endFamily(family, 'RFC 7009 revocation by the OAuth client');
      logger.info('oauth token revocation', { clientId: client.client_id, revoked: family !== undefined });
      res.writeHead(200, { ...NO_STORE, 'content-length': '0' });
      res.end();
    } catch (err) {
      oauthFailure(res, err);
    }
  });

  /** The family a refresh token or a live access token of this resource belongs to. */
  const familyOfToken = async (req: IncomingMessage, token: string): Promise<RefreshFamily | undefined> => {
    const byRefresh = store.familyOf(secretHash(token));
    if (byRefresh) return byRefresh.family;
    if (!token.includes('.')) return undefined;
    let grant: string;
    try {
      grant = (await host.authenticate(token, resourceOf(req))).claims.grant;
    } catch {
      return undefined; // expired, revoked or not ours: nothing (more) to revoke (RFC 7009 §2.2)
    }
    return [...store.families.values()].find((f) => f.grant === grant);
  };

  // ---- helpers ------------------------------------------------------------------------------------------
  const clientOf = (form: URLSearchParams): ClientRecord => {
    const clientId = form.get('client_id');
    const client = clientId !== null ? store.clients.get(clientId) : undefined;
    if (!client) throw new OAuthError('invalid_client', 'unknown client_id (public clients send it in the body)', 401);
    return client;
  };

  /** End an authorization: revoke its grant (every access token dies with it) and forget its refresh tokens. */
  const endFamily = async (family: RefreshFamily, reason: string): Promise<void> => {
    await revokeGrant(family.vault, family.grant, reason);
    store.removeFamily(family);
    store.save();
  };

  const revokeGrant = async (vault: string, grant: string, reason: string): Promise<void> => {
    try {
      await host.revoke(host.localSession(vault), { grant, reason });
      logger.warn('oauth grant revoked', { grant, reason });
    } catch (err) {
      const e = HostError.from(err);
      // Already revoked (or gone): the outcome wanted.
      if (e.errorName !== 'InvalidOperation' && e.errorName !== 'UnknownEntity') throw err;
    }
  };

  const grantLive = async (vault: string, grant: string): Promise<boolean> => {
    const grants = await host.listGrants(host.localSession(vault));
    const record = grants.find((g) => g.id === grant);
    return record !== undefined && !record.revoked && (record.expiresAt === undefined || record.expiresAt > now());
  };

  const browserOf = (req: IncomingMessage): BrowserSession | undefined => {
    const sid = cookie(req.headers.cookie, COOKIE);
    if (sid === undefined) return undefined;
    const key = secretHash(sid);
    const browser = browsers.get(key);
    if (!browser) return undefined;
    if (now() > browser.expiresAt || (browser.who.kind === 'token' && browser.who.session.claims.exp * 1000 < now())) {
      browsers.delete(key);
      return undefined;
    }
    return browser;
  };

  /** Drop expired pending requests, codes and browser sessions. */
  const sweep = (): void => {
    const t = now();
    for (const [k, v] of pending) if (t > v.expiresAt) pending.delete(k);
    for (const [k, v] of codes) if (t > v.expiresAt) codes.delete(k);
    for (const [k, v] of browsers) if (t > v.expiresAt) browsers.delete(k);
  };

  /** A form or JSON failure as RFC 6749 §5.2 JSON; host failures as 503 / 500 without detail. */
  const oauthFailure = (res: ServerResponse, err: unknown): void => {
    if (err instanceof OAuthError) {
      return sendJson(res, err.status, { error: err.error, error_description: err.message }, {
        ...NO_STORE,
        ...(err.status === 401 ? { 'www-authenticate': 'Bearer realm="toka"' } : {}),
        ...(err.status === 413 ? { connection: 'close' } : {}),
      });
    }
    const e = HostError.from(err);
    if (e.errorName === 'Unavailable' || e.errorName === 'Conflict' || e.errorName === 'RateLimited') {
      return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: e.message }, NO_STORE);
    }
    logger.error('oauth endpoint failed', { err });
    sendJson(res, 500, { error: 'server_error', error_description: 'internal error' }, NO_STORE);
  };

  return {
    get clients() {
      return store.clients.size;
    },
  };
}

// ---- request parsing --------------------------------------------------------------------------------------

function fail(error: string, message: string): never {
  throw new OAuthError(error, message);
}

async function bodyOf(req: IncomingMessage, type: string): Promise<string> {
  const given = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (given !== type) {
    req.resume();
    throw new OAuthError('invalid_request', `body must be ${type}`);
  }
  try {
    return await readBody(req, OAUTH_LIMITS.bodyBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new OAuthError('invalid_request', `body exceeds ${OAUTH_LIMITS.bodyBytes} bytes (oauth.bodyBytes)`, 413);
    throw err;
  }
}

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  const form = new URLSearchParams(await bodyOf(req, 'application/x-www-form-urlencoded'));
  for (const key of new Set(form.keys())) {
    if (key !== 'permission' && form.getAll(key).length > 1) throw new OAuthError('invalid_request', `parameter ${key} given more than once`);
  }
  return form;
}

/** The form a page of this host posted from loopback; null once the refusal page (403 or 400) is sent. */
async function pageForm(req: IncomingMessage, res: ServerResponse, refusal: string): Promise<URLSearchParams | null> {
  if (!fromLoopback(req) || !sameOrigin(req)) {
    req.resume();
    errorPage(res, 403, refusal);
    return null;
  }
  try {
    return await formBody(req);
  } catch (err) {
    errorPage(res, 400, err instanceof Error ? err.message : 'bad form');
    return null;
  }
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await bodyOf(req, 'application/json'));
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    throw new OAuthError('invalid_client_metadata', 'body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new OAuthError('invalid_client_metadata', 'body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** Check a registration request (RFC 7591 §2) and make the client record. */
function registration(m: Record<string, unknown>, nowMs: number): ClientRecord {
  const uris = m.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || uris.length > OAUTH_LIMITS.redirectUris) {
    throw new OAuthError('invalid_redirect_uri', `redirect_uris must list 1..${OAUTH_LIMITS.redirectUris} URIs`);
  }
  const hosts: string[] = [];
  for (const uri of uris) {
    if (typeof uri !== 'string' || uri.length > OAUTH_LIMITS.uriChars) throw new OAuthError('invalid_redirect_uri', `each redirect URI is a string of at most ${OAUTH_LIMITS.uriChars} chars`);
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new OAuthError('invalid_redirect_uri', `not an absolute URI: ${uri.slice(0, 100)}`);
    }
    if (url.hash !== '' || uri.includes('#')) throw new OAuthError('invalid_redirect_uri', 'a redirect URI must not have a fragment');
    if (url.username !== '' || url.password !== '') throw new OAuthError('invalid_redirect_uri', 'a redirect URI must not carry credentials');
    const loopback = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
    if (url.protocol !== 'https:' && !loopback) throw new OAuthError('invalid_redirect_uri', 'a redirect URI must be https, or http on a loopback address');
    hosts.push(url.hostname);
  }
  for (const [field, allowed] of [
    ['grant_types', ['authorization_code', 'refresh_token']],
    ['response_types', ['code']],
  ] as const) {
    const v = m[field];
    if (v !== undefined && (!Array.isArray(v) || !v.every((x) => (allowed as readonly unknown[]).includes(x)))) {
      throw new OAuthError('invalid_client_metadata', `${field} may only contain ${allowed.join(', ')}`);
    }
  }
  const name = m.client_name;
  if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > OAUTH_LIMITS.clientNameChars || !isWellFormedText(name))) {
    throw new OAuthError('invalid_client_metadata', `client_name must be 1..${OAUTH_LIMITS.clientNameChars} well-formed chars`);
  }
  return {
    client_id: randomUUID(),
    ...(typeof name === 'string' ? { client_name: name } : {}),
    redirect_uris: [...new Set(uris as string[])],
    client_id_issued_at: Math.floor(nowMs / 1000),
    host: hosts[0],
  };
}

/** How a client is named to the user: its registered name, else its id. */
function clientLabel(client: ClientRecord): string {
  return client.client_name ?? client.client_id;
}

/** What the signed-in user holds: every permission for the owner, the token's for a token holder. */
function heldBy(who: SignedIn): readonly string[] {
  return who.kind === 'owner' ? ['*'] : who.session.claims.permissions;
}

/** The one value of a query parameter; undefined when absent, given twice, or empty. */
function single(q: URLSearchParams, key: string): string | undefined {
  const all = q.getAll(key);
  return all.length === 1 && all[0] !== '' ? all[0] : undefined;
}

function redirect(res: ServerResponse, to: string, params: Record<string, string | undefined>): void {
  const url = new URL(to);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  res.writeHead(302, { ...NO_STORE, location: url.href, 'content-length': '0' });
  res.end();
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function equalSecrets(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function fromLoopback(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? '';
  return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1';
}

/**
 * A form post from this host's own page: `Origin` (which browsers send on every form POST) must be this
 * origin exactly, not merely one the HTTP face allows; a request without one is not from a browser page.
 */
function sameOrigin(req: IncomingMessage): boolean {
  return req.headers.origin === baseUrl(req);
}
