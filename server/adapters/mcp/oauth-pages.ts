/**
 * The HTML pages of the authorization endpoint: sign in, consent, and errors that cannot go back to the
 * client. Every value is HTML-escaped; every page is sent with a strict Content-Security-Policy (no scripts,
 * no framing: the consent page cannot be clickjacked) and `no-store`.
 */
import type { ServerResponse } from 'node:http';
import { PERMISSIONS } from '../../../protocol/capability.js';

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.35rem}fieldset{border:1px solid #ccc;border-radius:6px;margin:1rem 0}label{display:block;margin:.2rem 0}
code{background:#f2f2f2;padding:0 .25rem;border-radius:3px}.perm small{color:#555;margin-left:1.6rem;display:block}
button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}.who{color:#555}.error{color:#a00}input[type=text],input[type=password]{width:100%;font-size:1rem}`;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Send a page. `formTargets`: origins a form on it may end up at (the client's redirect URI after consent). */
export function sendPage(res: ServerResponse, status: number, title: string, body: string, formTargets: string[] = []): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<meta name="viewport" content="width=device-width"><style>${STYLE}</style></head><body>${body}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${formTargets.join(' ')}; frame-ancestors 'none'; base-uri 'none'`,
    'x-frame-options': 'DENY',
    // same-origin, not no-referrer: with no-referrer, Chromium sends `Origin: null` on the page's own form posts.
    'referrer-policy': 'same-origin',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}

export function errorPage(res: ServerResponse, status: number, message: string): void {
  sendPage(res, status, 'Toka: authorization failed', `<h1>Authorization failed</h1><p class="error">${escapeHtml(message)}</p>`);
}

/** The sign-in form: a one-time code from `toka signin`, or a capability token. */
export function signinPage(res: ServerResponse, request: string, clientName: string, message?: string): void {
  sendPage(
    res,
    message ? 401 : 200,
    'Toka: sign in',
    `<h1>Sign in to Toka</h1>
<p><b>${escapeHtml(clientName)}</b> asks for access to this Toka host. Sign in to choose what it may do.</p>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/oauth/signin">
<input type="hidden" name="request" value="${escapeHtml(request)}">
<label for="credential">Sign-in code (run <code>toka signin</code> in a terminal) or a capability token</label>
<input type="password" id="credential" name="credential" autocomplete="off" autofocus required>
<p><button type="submit">Sign in</button></p>
</form>`,
  );
}

export interface ConsentView {
  request: string;
  csrf: string;
  clientName: string;
  clientId: string;
  redirectUri: string;
  resource: string;
  /** Who is signed in (shown). */
  who: string;
  /** The vault to grant in: fixed for a token sign-in, chosen by the owner. */
  vault: { fixed: string } | { choices: string[] };
  /** Permissions the user may grant (what they hold), and which of them the client asked for. */
  offered: string[];
  requested: Set<string>;
  message?: string;
}

export function consentPage(res: ServerResponse, v: ConsentView): void {
  const vault =
    'fixed' in v.vault
      ? `<p>Vault: <b>${escapeHtml(v.vault.fixed)}</b><input type="hidden" name="vault" value="${escapeHtml(v.vault.fixed)}"></p>`
      : `<label for="vault">Vault</label><input type="text" id="vault" name="vault" list="vaults" value="${escapeHtml(v.vault.choices[0] ?? 'default')}" required>
<datalist id="vaults">${v.vault.choices.map((c) => `<option value="${escapeHtml(c)}">`).join('')}</datalist>`;
  const perms = v.offered
    .map((p) => {
      const id = `perm-${p.replace(/[^a-z0-9-]/g, '_')}`;
      const text = Object.hasOwn(PERMISSIONS, p) ? PERMISSIONS[p as keyof typeof PERMISSIONS] : 'Every permission of this area.';
      return `<label class="perm" for="${id}"><input type="checkbox" id="${id}" name="permission" value="${escapeHtml(p)}"${v.requested.has(p) ? ' checked' : ''}> <code>${escapeHtml(p)}</code><small>${escapeHtml(text)}</small></label>`;
    })
    .join('\n');
  sendPage(
    res,
    v.message ? 400 : 200,
    'Toka: allow access?',
    `<h1>Allow <b>${escapeHtml(v.clientName)}</b> to use Toka?</h1>
<p class="who">Signed in as ${escapeHtml(v.who)}. Client <code>${escapeHtml(v.clientId)}</code> will be sent back to
<code>${escapeHtml(v.redirectUri)}</code> and may use <code>${escapeHtml(v.resource)}</code>.</p>
${v.message ? `<p class="error">${escapeHtml(v.message)}</p>` : ''}
<form method="post" action="/oauth/authorize">
<input type="hidden" name="request" value="${escapeHtml(v.request)}">
<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">
${vault}
<fieldset><legend>Permissions to grant</legend>
${perms}
</fieldset>
<p>The client gets a grant you can revoke at any time (<code>toka token revoke --grant &lt;id&gt;</code>); its tokens last at most 30 minutes and are renewed with a refresh token while the grant lives.</p>
<button type="submit" name="decision" value="allow">Allow</button><button type="submit" name="decision" value="deny">Deny</button>
</form>`,
    [new URL(v.redirectUri).origin],
  );
}
