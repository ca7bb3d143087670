/**
 * OAuth test parts: an `OAuthClientProvider` for the SDK's client `auth()` that keeps everything in memory,
 * and the user's side of the consent flow done with plain HTTP (a cookie jar of one, the page's forms).
 */
import assert from 'node:assert/strict';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

export class MemoryOAuthProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  /** The authorization URL `auth()` sent the user to. */
  authorizationUrl: URL | undefined;

  constructor(
    readonly redirectUrl: string,
    readonly stateValue = 'st-' + Math.random().toString(36).slice(2),
  ) {}

  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'Test MCP client', redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  state(): string {
    return this.stateValue;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    return this.verifier;
  }
}

/** The user's browser, reduced to what the consent flow needs: one cookie, same-origin form posts. */
export class ConsentUser {
  private cookie: string | undefined;

  constructor(readonly origin: string) {}

  async get(url: string): Promise<Response> {
    return fetch(url, { redirect: 'manual', headers: this.cookie ? { cookie: this.cookie } : {} });
  }

  async post(path: string, form: Record<string, string | string[]>, headers: Record<string, string> = { origin: this.origin }): Promise<Response> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    const res = await fetch(`${this.origin}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(this.cookie ? { cookie: this.cookie } : {}), ...headers },
      body,
    });
    const set = res.headers.get('set-cookie');
    if (set) this.cookie = set.split(';')[0];
    return res;
  }

  /** Open the authorization URL and sign in with `credential`; returns the consent page's request id and CSRF token. */
  async signIn(authorizationUrl: string, credential: string): Promise<{ request: string; csrf: string; html: string }> {
    const first = await this.get(authorizationUrl);
    const page = await first.text();
    assert.equal(first.status, 200, page);
    const request = hidden(page, 'request');
    const signed = await this.post('/oauth/signin', { request, credential });
    assert.equal(signed.status, 303, await signed.text());
    const consent = await this.get(`${this.origin}${signed.headers.get('location')}`);
    const html = await consent.text();
    assert.equal(consent.status, 200, html);
    return { request, csrf: hidden(html, 'csrf'), html };
  }

  /** Submit the consent form; returns the redirect (302) or the page. */
  consent(request: string, csrf: string, choice: { vault?: string; permissions: string[]; decision?: 'allow' | 'deny' }): Promise<Response> {
    return this.post('/oauth/authorize', {
      request,
      csrf,
      ...(choice.vault !== undefined ? { vault: choice.vault } : {}),
      permission: choice.permissions,
      decision: choice.decision ?? 'allow',
    });
  }
}

/** The value of the hidden input `name` in a page. */
export function hidden(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  assert.ok(m, `no hidden ${name} in the page: ${html.slice(0, 500)}`);
  return m[1];
}

/** The claims of a JWT (not verified: for assertions on what the host issued). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}
