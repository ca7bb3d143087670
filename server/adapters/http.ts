/**
 * The HTTP face of `toka serve`: health, Prometheus metrics, the JWKS, RFC 7009 token revocation, and the
 * WebSocket upgrade to `/rpc` (see websocket.ts). A tiny router lets every face mount itself the same way:
 * `route` (exact path + method), `routePrefix` (every path under a prefix, any method: the face routes
 * within it) and `upgrade` (a WebSocket endpoint at an exact path). `/rpc` mounts through the same hook.
 * Exact routes win over prefixes; the longest prefix wins. Every request and upgrade passes the Host/Origin
 * check first (DNS rebinding). The adapter never authorises or writes the log itself: it calls the host.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MAX_MESSAGE_BYTES } from '../../protocol/rpc/common.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import { BodyTooLarge, bearerToken, readBody, retryAfterSeconds, sendError, sendHostError, sendJson } from './http-request.js';
import type { AgentRuntime } from '../runtime/runtime.js';
import { WebSocketEndpoint, writeRawResponse } from './websocket.js';

export interface HttpServerOptions {
  /** Interface to bind (default 127.0.0.1). */
  host: string;
  /** Port (7420 by default in `toka serve`; 0 = any free port). */
  port: number;
  logger: Logger;
  /** The agent runtime served on the WebSocket `/rpc` (Unavailable without one). */
  runtime?: AgentRuntime;
  /** Browser origins (e.g. `https://app.example`) allowed besides same-origin loopback. */
  allowedOrigins?: string[];
  /** Most open WebSocket connections (default 256). */
  maxConnections?: number;
  /**
   * Most open TCP connections of every kind (HTTP keep-alive, SSE streams, WebSockets), default
   * `DEFAULT_MAX_HTTP_CONNECTIONS`; a connection beyond it is closed as soon as it is accepted.
   */
  maxHttpConnections?: number;
  /** Largest WebSocket message (default MAX_MESSAGE_BYTES). */
  maxPayloadBytes?: number;
  /** Bytes queued for one WebSocket client before it is cut off (default 4 MiB). */
  maxBufferedBytes?: number;
  /** WebSocket ping interval; a client that misses a pong is terminated (default 30000). */
  pingIntervalMs?: number;
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  /** stop accepting, close WS connections with 1001, wait for in-flight requests (at most 10 s, then cut) */
  close(): Promise<void>;
  /** Register a route at an exact path for one method (HEAD falls back to GET). */
  route(
    method: string,
    path: string,
    handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
  ): void;
  /**
   * Register a handler for every request whose path is `prefix` or starts with `prefix/` (any method; the
   * handler answers 404/405 itself). `prefix` starts with `/` and does not end with one.
   */
  routePrefix(prefix: string, handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): void;
  /**
   * Register the WebSocket endpoint at an exact path: the handler gets upgrade requests that passed the
   * Host/Origin check (while the server is not closing) and completes or refuses the handshake itself.
   * `onClose` runs when the server closes, before in-flight HTTP requests are drained.
   */
  upgrade(path: string, handler: UpgradeHandler, onClose?: () => Promise<void>): void;
  /**
   * Register who answers `POST /oauth/revoke` requests without a bearer token: the OAuth authorization
   * server's public clients, which name themselves with `client_id` in the body (RFC 7009 §2.1). Without
   * one, such requests get 401 `invalid_client`.
   */
  revocation(handler: Handler): void;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
/** Completes or refuses one WebSocket handshake (`writeRawResponse` to refuse). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Default of `HttpServerOptions.maxHttpConnections`: room for the 256 WebSockets and as many HTTP clients again. */
export const DEFAULT_MAX_HTTP_CONNECTIONS = 512;
/** Refused connections are logged at most once per this interval. */
const DROP_LOG_INTERVAL_MS = 10_000;
/** Largest form body accepted by POST /oauth/revoke. */
export const MAX_REVOKE_BODY_BYTES = 16 * 1024;
/** How long close() waits for in-flight HTTP requests before cutting their connections. */
const DRAIN_TIMEOUT_MS = 10_000;
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

export async function startHttpServer(host: Host, options: HttpServerOptions): Promise<HttpServer> {
  const logger = options.logger;
  const routes = new Map<string, Map<string, Handler>>();
  const prefixes = new Map<string, Handler>();
  const upgrades = new Map<string, UpgradeHandler>();
  const upgradeClosers: (() => Promise<void>)[] = [];
  const inFlight = new Set<Promise<void>>();
  const allowedOrigins = new Set((options.allowedOrigins ?? []).map((o) => o.replace(/\/+$/, '').toLowerCase()));
  let allowedHosts = new Set<string>();
  let closing = false;

  const ws = new WebSocketEndpoint(host, {
    logger,
    runtime: options.runtime,
    maxConnections: options.maxConnections ?? 256,
    maxPayloadBytes: options.maxPayloadBytes ?? MAX_MESSAGE_BYTES,
    maxBufferedBytes: options.maxBufferedBytes ?? 4 * 1024 * 1024,
    pingIntervalMs: options.pingIntervalMs ?? 30_000,
  });

  const route = (method: string, path: string, handler: Handler): void => {
    if (!path.startsWith('/')) throw new TypeError(`route path must start with "/": ${path}`);
    const byMethod = routes.get(path) ?? new Map<string, Handler>();
    const m = method.toUpperCase();
    if (byMethod.has(m)) throw new TypeError(`route ${m} ${path} is already registered`);
    byMethod.set(m, handler);
    routes.set(path, byMethod);
  };

  const routePrefix = (prefix: string, handler: Handler): void => {
    if (!prefix.startsWith('/') || prefix.endsWith('/')) throw new TypeError(`route prefix must start and not end with "/": ${prefix}`);
    if (prefixes.has(prefix)) throw new TypeError(`route prefix ${prefix} is already registered`);
    prefixes.set(prefix, handler);
  };

  /** The handler of the longest registered prefix of `path`, if any. */
  const prefixHandler = (path: string): Handler | undefined => {
    let best: string | undefined;
    for (const prefix of prefixes.keys()) {
      if ((path === prefix || path.startsWith(`${prefix}/`)) && (best === undefined || prefix.length > best.length)) best = prefix;
    }
    return best === undefined ? undefined : prefixes.get(best);
  };

  const upgrade = (path: string, handler: UpgradeHandler, onClose?: () => Promise<void>): void => {
    if (!path.startsWith('/')) throw new TypeError(`upgrade path must start with "/": ${path}`);
    if (upgrades.has(path)) throw new TypeError(`upgrade ${path} is already registered`);
    upgrades.set(path, handler);
    if (onClose) upgradeClosers.push(onClose);
  };
  upgrade('/rpc', (req, socket, head) => ws.handleUpgrade(req, socket, head), () => ws.close());

  /** The DNS-rebinding check: null when the request may proceed, else why not. */
  const refuse = (req: IncomingMessage): string | null => {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (!allowedHosts.has(hostHeader)) return 'Host header not allowed';
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const o = origin.replace(/\/+$/, '').toLowerCase();
      if (!allowedOrigins.has(o)) return 'Origin not allowed';
    }
    return null;
  };

  route('GET', '/healthz', (_req, res) => {
    const health = host.health();
    sendJson(res, health.ready ? 200 : 503, health);
  });

  route('GET', '/metrics', (_req, res) => {
    const health = host.health();
    const body = host.metrics.render({ logSeq: health.seq, ready: health.ready, log: host.logStats() });
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  });

  route('GET', '/_internal/.well-known/jwks.json', (_req, res) => {
    sendJson(res, 200, host.jwks(), { 'cache-control': 'max-age=60' });
  });

  let publicRevocation: Handler | undefined;
  route('POST', '/oauth/revoke', (req, res) =>
    publicRevocation !== undefined && bearerToken(req.headers.authorization) === null
      ? publicRevocation(req, res)
      : revokeEndpoint(host, logger, req, res),
  );

  const server: Server = createServer({ requestTimeout: 30_000, headersTimeout: 15_000 }, (req, res) => {
    const done = handle(req, res).catch((err: unknown) => {
      logger.error('http handler failed', { err, method: req.method, path: pathOf(req) });
      if (!res.headersSent) sendHostError(res, HostError.from(err));
      else res.destroy();
    });
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  // Node closes a connection beyond the cap as soon as it is accepted, before reading a byte of it.
  server.maxConnections = options.maxHttpConnections ?? DEFAULT_MAX_HTTP_CONNECTIONS;
  // One warning per DROP_LOG_INTERVAL_MS at most, counting the refusals since the last one (no log flood).
  let dropped = 0;
  let droppedLoggedAt = -Infinity;
  server.on('drop', () => {
    dropped++;
    if (Date.now() - droppedLoggedAt < DROP_LOG_INTERVAL_MS) return;
    droppedLoggedAt = Date.now();
    logger.warn('http connections refused: too many open connections', { limit: 'http.maxHttpConnections', max: server.maxConnections, dropped });
    dropped = 0;
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (closing) res.setHeader('connection', 'close');
    const why = refuse(req);
    if (why) {
      logger.warn('http request refused', { reason: why, method: req.method, path: pathOf(req), origin: req.headers.origin, hostHeader: req.headers.host });
      req.resume();
      return sendError(res, 403, 'Forbidden', why);
    }
    const path = pathOf(req);
    const byMethod = routes.get(path);
    if (!byMethod) {
      const face = prefixHandler(path);
      if (face) return face(req, res);
      req.resume();
      return sendError(res, 404, 'NotFound', `no route for ${path}`);
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const handler = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined);
    if (!handler) {
      req.resume();
      return sendError(res, 405, 'MethodNotAllowed', `${method} not allowed on ${path}`, {
        allow: [...byMethod.keys(), ...(byMethod.has('GET') && !byMethod.has('HEAD') ? ['HEAD'] : [])].join(', '),
      });
    }
    await handler(req, res);
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (closing) return writeRawResponse(socket, 503, { error: { name: 'Unavailable', message: 'host is shutting down' } });
    const why = refuse(req);
    if (why) {
      logger.warn('websocket upgrade refused', { reason: why, origin: req.headers.origin, hostHeader: req.headers.host });
      return writeRawResponse(socket, 403, { error: { name: 'Forbidden', message: why } });
    }
    const endpoint = upgrades.get(pathOf(req));
    if (!endpoint) {
      return writeRawResponse(socket, 404, { error: { name: 'NotFound', message: `no WebSocket endpoint at ${pathOf(req)}` } });
    }
    endpoint(req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if ((socket as Socket).writable && !(socket as Socket).destroyed) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else socket.destroy();
    logger.debug('http client error', { code: err.code });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host || '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const names = new Set(LOOPBACK_NAMES);
  const bound = (options.host || '127.0.0.1').toLowerCase();
  if (!WILDCARD_HOSTS.has(bound)) names.add(bound.includes(':') && !bound.startsWith('[') ? `[${bound}]` : bound);
  allowedHosts = new Set([...names].map((n) => `${n}:${port}`));
  // Same-origin loopback pages may call in besides the configured origins.
  for (const name of LOOPBACK_NAMES) allowedOrigins.add(`http://${name}:${port}`);
  const urlHost = bound.includes(':') && !bound.startsWith('[') ? `[${bound}]` : WILDCARD_HOSTS.has(bound) ? '127.0.0.1' : bound;
  const url = `http://${urlHost}:${port}`;
  logger.info('http listening', { url, wsUrl: `ws://${urlHost}:${port}/rpc` });

  let closed: Promise<void> | null = null;
  return {
    url,
    port,
    route,
    routePrefix,
    upgrade,
    revocation(handler) {
      if (publicRevocation !== undefined) throw new TypeError('the public revocation handler is already registered');
      publicRevocation = handler;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all(upgradeClosers.map((close) => close()));
        server.closeIdleConnections();
        // In-flight requests finish; a long-lived one (a stream held open by a mounted face) gets a bounded wait.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
        server.closeAllConnections();
        await stopped;
        logger.info('http closed', { url });
      })();
      return closed;
    },
  };
}

// ---- POST /oauth/revoke (RFC 7009) -------------------------------------------------------------------

async function revokeEndpoint(host: Host, logger: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const noStore = { 'cache-control': 'no-store' };
  const bearer = bearerToken(req.headers.authorization);
  if (bearer === null) {
    req.resume();
    return sendJson(res, 401, { error: 'invalid_client', error_description: 'a Bearer capability token is required' }, {
      ...noStore,
      'www-authenticate': 'Bearer realm="toka"',
    });
  }
  let session: Session;
  try {
    session = await host.authenticate(bearer);
  } catch {
    req.resume();
    return sendJson(res, 401, { error: 'invalid_client', error_description: 'the Bearer token is not valid' }, {
      ...noStore,
      'www-authenticate': 'Bearer realm="toka", error="invalid_token"',
    });
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'body must be application/x-www-form-urlencoded' }, noStore);
  }
  let body: string;
  try {
    body = await readBody(req, MAX_REVOKE_BODY_BYTES);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      res.setHeader('connection', 'close');
      return sendJson(res, 413, { error: 'invalid_request', error_description: `body exceeds ${MAX_REVOKE_BODY_BYTES} bytes` }, noStore);
    }
    throw err;
  }
  const form = new URLSearchParams(body);
  const tokens = form.getAll('token');
  if (tokens.length !== 1 || tokens[0] === '') {
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'exactly one token parameter is required' }, noStore);
  }
  // token_type_hint is advisory (RFC 7009 §2.1): every token here is a capability token, so it is ignored.
  let revoked = false;
  try {
    await host.revoke(session, { token: tokens[0], reason: 'RFC 7009 revocation request' });
    revoked = true;
  } catch (err) {
    const e = HostError.from(err);
    switch (e.errorName) {
      // An unreadable, foreign-key, expired or already-revoked token: nothing (more) to revoke — 200 per RFC 7009 §2.2.
      case 'Unauthenticated':
      case 'InvalidOperation':
      case 'UnknownEntity':
        break;
      case 'CapabilityDenied':
        logger.info('token revocation refused', { principal: session.principal, reason: e.details.reason ?? e.message });
        return sendJson(res, 403, { error: 'unauthorized_client', error_description: 'the caller may not revoke this token' }, noStore);
      case 'RateLimited': {
        return sendJson(res, 429, { error: 'slow_down', error_description: e.message }, { ...noStore, 'retry-after': String(retryAfterSeconds(e)) });
      }
      case 'Unavailable':
      case 'Conflict':
        return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: e.message }, noStore);
      default:
        return sendJson(res, 500, { error: 'server_error', error_description: 'internal error' }, noStore);
    }
  }
  logger.info('token revocation', { principal: session.principal, revoked });
  res.writeHead(200, { ...noStore, 'content-length': '0' });
  res.end();
}

// ---- helpers -------------------------------------------------------------------------------------------

function pathOf(req: IncomingMessage): string {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? raw : raw.slice(0, q);
}
