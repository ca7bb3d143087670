/**
 * The remote A2A agents this host's agents may delegate to, and the credential each is called with
 * (`<data>/a2a-peers.json`, docs/a2a.md "Delegating out"). The trust model (docs/security-model.md):
 *
 * - An agent names a peer by its URL; only configured peers can be called, so an agent can neither reach an
 *   arbitrary host through the tool nor send a credential anywhere the operator did not choose.
 * - The credential is the remote host's own: a token it minted for this host (its owner ran `toka token
 *   mint --sub <this host> ...`), kept in a 0600 file or an environment variable, read at each call (so a
 *   renewal process can replace it). The agent never sees it, and it is never logged.
 * - For a Toka peer (`perCallToken`, the default), each call first asks the remote host for a child of that
 *   credential (`toka/capability/delegate`): subject `<credential subject>/<calling agent>`, only the
 *   permissions a delegated task needs (`task:run`, `state:read`, `task:cancel`), living no longer than the
 *   call's time bound. The remote host records that delegation; the call uses only the child, and it is
 *   revoked (RFC 7009) once the call ends. Revoking the credential's grant on the remote host cuts this host
 *   off at once, including calls in flight.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { decodeJwt } from 'jose';
import WebSocket from 'ws';
import { CapabilityDelegateRequest } from '../../../protocol/rpc/capability.js';
import { ToolError } from '../tools/errors.js';
import { a2aBaseUrl, isA2aBinding, type A2aBinding } from './client.js';

export const A2A_PEERS_FILE = 'a2a-peers.json';

/** What a per-call token may do on the remote host: send the task, follow it, cancel it. */
export const PER_CALL_PERMISSIONS = ['task:run', 'state:read', 'task:cancel'] as const;

export interface A2aPeer {
  /** The peer's base URL (where its Agent Card is); a tool call names it exactly. */
  url: string;
  /** The binding to call it over; default: the first of the card's bindings Toka speaks. */
  binding?: A2aBinding;
  /** A file holding the remote credential (absolute, or relative to the data dir); no group/other access. */
  tokenFile?: string;
  /** An environment variable holding the remote credential. */
  tokenEnv?: string;
  /** Narrow the credential to a per-call child on the remote Toka host first. Default true. */
  perCallToken?: boolean;
}

/** Largest peers file read. */
const MAX_PEERS_FILE_BYTES = 256 * 1024;
/** Largest credential read from a file or the environment. */
const MAX_TOKEN_BYTES = 8192;
/** Bound on the delegation round trip to a remote Toka host. */
const DELEGATE_TIMEOUT_MS = 10_000;

/** The configured peer whose URL is `url` (compared after normalising), or a `Denied` tool error. */
export async function findPeer(dataDir: string | undefined, url: URL): Promise<A2aPeer> {
  const peers = dataDir === undefined ? [] : await readPeers(join(dataDir, A2A_PEERS_FILE));
  const peer = peers.find((p) => a2aBaseUrl(p.url).href === url.href);
  if (!peer) throw new ToolError('Denied', `${url.href} is not a configured A2A peer of this host (${A2A_PEERS_FILE})`, { url: url.href });
  return peer;
}

async function readPeers(path: string): Promise<A2aPeer[]> {
  let text: string;
  try {
    const info = await stat(path);
    if (info.size > MAX_PEERS_FILE_BYTES) throw new ToolError('Failed', `${A2A_PEERS_FILE} is larger than ${MAX_PEERS_FILE_BYTES} bytes`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof ToolError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ToolError('Failed', `cannot read ${A2A_PEERS_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return checkPeers(text);
}

/** Parses and checks a peers file; a bad one refuses every call (`Failed`, naming the fault). */
export function checkPeers(text: string): A2aPeer[] {
  const bad = (why: string) => new ToolError('Failed', `${A2A_PEERS_FILE}: ${why}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('not valid JSON');
  }
  const peers = (value as { peers?: unknown } | null)?.peers;
  if (typeof value !== 'object' || value === null || Object.keys(value).some((k) => k !== 'peers') || !Array.isArray(peers)) {
    throw bad('expected {"peers": [{"url", "binding"?, "tokenFile" | "tokenEnv", "perCallToken"?}, ...]}');
  }
  return peers.map((p: unknown, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw bad(`peers[${i}] is not an object`);
    const o = p as Record<string, unknown>;
    const unknown = Object.keys(o).find((k) => !['url', 'binding', 'tokenFile', 'tokenEnv', 'perCallToken'].includes(k));
    if (unknown !== undefined) throw bad(`peers[${i}] has an unknown key "${unknown.slice(0, 64)}"`);
    if (typeof o.url !== 'string') throw bad(`peers[${i}].url must be a string`);
    try {
      a2aBaseUrl(o.url);
    } catch (err) {
      throw bad(`peers[${i}].url: ${(err as Error).message}`);
    }
    if (o.binding !== undefined && (typeof o.binding !== 'string' || !isA2aBinding(o.binding))) throw bad(`peers[${i}].binding must be jsonrpc, rest or ws`);
    if ((o.tokenFile === undefined) === (o.tokenEnv === undefined)) throw bad(`peers[${i}] needs exactly one of tokenFile and tokenEnv`);
    if (o.tokenFile !== undefined && (typeof o.tokenFile !== 'string' || o.tokenFile === '')) throw bad(`peers[${i}].tokenFile must be a path`);
    if (o.tokenEnv !== undefined && (typeof o.tokenEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.tokenEnv))) throw bad(`peers[${i}].tokenEnv must be a variable name`);
    if (o.perCallToken !== undefined && typeof o.perCallToken !== 'boolean') throw bad(`peers[${i}].perCallToken must be true or false`);
    return o as unknown as A2aPeer;
  });
}

/** The peer's credential, read now. Never part of an error message. */
export async function peerCredential(dataDir: string, peer: A2aPeer): Promise<string> {
  let token: string | undefined;
  if (peer.tokenEnv !== undefined) {
    token = process.env[peer.tokenEnv];
    if (token === undefined) throw new ToolError('Failed', `the credential of ${peer.url} is not set (environment variable ${peer.tokenEnv})`);
  } else {
    const path = isAbsolute(peer.tokenFile!) ? peer.tokenFile! : join(dataDir, peer.tokenFile!);
    try {
      const info = await stat(path);
      if ((info.mode & 0o077) !== 0) throw new ToolError('Denied', `the credential file of ${peer.url} is readable by group or others (chmod 600 it)`);
      if (info.size > MAX_TOKEN_BYTES) throw new ToolError('Failed', `the credential file of ${peer.url} is larger than ${MAX_TOKEN_BYTES} bytes`);
      token = await readFile(path, 'utf8');
    } catch (err) {
      if (err instanceof ToolError) throw err;
      throw new ToolError('Failed', `cannot read the credential file of ${peer.url} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  token = token.trim();
  if (token === '' || Buffer.byteLength(token) > MAX_TOKEN_BYTES) throw new ToolError('Failed', `the credential of ${peer.url} is empty or too large`);
  return token;
}

/**
 * Asks the remote Toka host (its `toka/*` WebSocket at `/rpc`) for a child of `credential` for one call:
 * subject `<credential subject>/<agent>`, `PER_CALL_PERMISSIONS`, `ttlSeconds`.
 */
export async function perCallToken(base: URL, credential: string, agent: string, ttlSeconds: number, signal: AbortSignal): Promise<string> {
  let parentSubject: string;
  try {
    parentSubject = String(decodeJwt(credential).sub ?? 'peer');
  } catch {
    throw new ToolError('Failed', `the credential of ${base.href} is not a capability token (set perCallToken: false for a peer that is not Toka)`);
  }
  const rpc = new URL(base.href);
  rpc.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  rpc.pathname = '/rpc';
  const params = { subject: `${parentSubject}/${agent}`.slice(0, 256), permissions: [...PER_CALL_PERMISSIONS], ttlSeconds };
  const answer = await new Promise<{ result?: { token?: unknown }; error?: { message?: unknown; data?: { name?: unknown } } }>((resolve, reject) => {
    const ws = new WebSocket(rpc, { headers: { authorization: `Bearer ${credential}` }, maxPayload: 64 * 1024, handshakeTimeout: DELEGATE_TIMEOUT_MS, perMessageDeflate: false });
    const timer = setTimeout(() => ws.terminate(), DELEGATE_TIMEOUT_MS);
    const onAbort = () => ws.terminate();
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    ws.once('unexpected-response', (_req, res) => {
      done();
      res.resume();
      const code = res.statusCode === 401 || res.statusCode === 403 ? 'Denied' : 'Failed';
      reject(new ToolError(code, `${base.host} refused this host's credential (HTTP ${res.statusCode} at ${rpc.pathname})`, { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('open', () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: CapabilityDelegateRequest.method, params })));
    ws.once('message', (data) => {
      done();
      ws.close();
      try {
        resolve(JSON.parse(data.toString()));
      } catch {
        reject(new ToolError('Failed', `${base.host} answered the delegation with something that is not JSON`));
      }
    });
    ws.once('error', (err) => {
      done();
      reject(new ToolError('Failed', `cannot reach ${base.host} to narrow the credential: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    ws.once('close', () => {
      done();
      reject(signal.aborted ? new ToolError('Cancelled', 'the tool call was cancelled') : new ToolError('Failed', `${base.host} closed the connection before answering the delegation`));
    });
  });
  if (answer.error !== undefined || typeof answer.result?.token !== 'string') {
    const name = typeof answer.error?.data?.name === 'string' ? answer.error.data.name : 'error';
    const code = name === 'CapabilityDenied' || name === 'Unauthenticated' ? 'Denied' : 'Failed';
    throw new ToolError(code, `${base.host} refused a per-call token: ${name}: ${String(answer.error?.message ?? 'no token in the answer').slice(0, 300)}`, { remote: name });
  }
  return answer.result.token;
}

/** Revoke a per-call token on its host (RFC 7009, authenticated by itself); a refusal leaves it to expire. */
export async function revokePerCallToken(base: URL, token: string): Promise<void> {
  await fetch(new URL('/oauth/revoke', base), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    signal: AbortSignal.timeout(DELEGATE_TIMEOUT_MS),
  }).then((res) => res.body?.cancel(), () => undefined);
}
