/**
 * MCP Streamable HTTP at `/mcp` on `toka serve`, mounted on the HTTP face's route hook (which has already
 * applied the Host/Origin DNS-rebinding check to every request).
 *
 * - Sessions: `initialize` without `mcp-session-id` opens one (an SDK transport + a Toka MCP session bound to
 *   the token's subject and vault); POST, GET (standalone SSE stream) and DELETE (end) route by the header.
 *   Idle sessions (no request for `idleTimeoutMs`) are closed; at most `maxSessions` live at once, and at most
 *   `maxSessionsPerPrincipal` of one subject. An `initialize` re-verifies the token and is charged to the
 *   caller's rate limit (`host.check`), so opening sessions is not free.
 * - Resumption: every SSE event gets an id; a GET with `Last-Event-ID` replays what followed it on that
 *   stream (a bounded in-memory window per session: `replayWindow` events, `maxReplayBytes` bytes).
 * - Auth: every request carries `Authorization: Bearer <capability token>`, verified by the host. Without a
 *   valid one: 401 with `WWW-Authenticate: Bearer resource_metadata="…/.well-known/oauth-protected-resource"`.
 *   A request for a session must come from the session's subject and vault (else 404, as for an unknown
 *   session). Before a `tools/call`, the host authorises the tool's permission (`host.authorize`); its refusal
 *   is answered 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="<permission>"`.
 * - `GET /.well-known/oauth-protected-resource` (RFC 9728) describes the resource and its scopes.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ErrorCode, isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { PERMISSIONS } from '../../../protocol/capability.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { BodyTooLarge, bearerToken, readBody } from '../http-request.js';
import { McpRegistry, type McpPlugin } from './registry.js';
import { BoundedTransport, MCP_DEFAULTS, createMcpSession, type McpServerOptions, type McpSessionServer } from './server.js';
import { createTokaRegistry } from './toka.js';

/** The route hook of the HTTP face (`HttpServer.route`). */
export interface RouteTarget {
  route(method: string, path: string, handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): void;
}

export interface McpHttpOptions extends McpServerOptions {
  logger: Logger;
  /** What to serve; default: Toka's own tools, resources and prompts. */
  registry?: McpRegistry;
  /** Close a session after this long without a request (default 15 min). */
  idleTimeoutMs?: number;
  /** Most live sessions (default 256); an initialize beyond it gets 503. */
  maxSessions?: number;
  /** Most live sessions of one subject (default 32); an initialize beyond it gets 429. */
  maxSessionsPerPrincipal?: number;
  /** Largest POST body (default 4 MiB); larger gets 413. */
  maxBodyBytes?: number;
  /** SSE events kept per session for `Last-Event-ID` resumption (default 1000). */
  replayWindow?: number;
  /** Bytes of SSE event JSON kept per session for resumption (default 8 MiB); the oldest are forgotten first. */
  maxReplayBytes?: number;
  /** Largest result (JSON bytes) sent; larger ones are refused with LimitExceeded. Default 1 MiB. */
  maxResultBytes?: number;
}

export interface McpHttpMount {
  readonly sessions: number;
  /** Close every session (ends their SSE streams); call before closing the HTTP server. */
  close(): Promise<void>;
}

export const MCP_PATH = '/mcp';
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

interface LiveSession {
  transport: StreamableHTTPServerTransport;
  mcp: McpSessionServer;
  session: Session;
  lastSeen: number;
}

/** Load an MCP plugin module (its default export is an `McpPlugin`); used for test fixtures. */
export async function loadMcpPlugin(path: string): Promise<McpPlugin> {
  const mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`${path}: default export is not an MCP plugin function`);
  return mod.default as McpPlugin;
}

export function mountMcpHttp(target: RouteTarget, host: Host, options: McpHttpOptions): McpHttpMount {
  const registry = options.registry ?? createTokaRegistry();
  const logger = options.logger;
  const idleMs = options.idleTimeoutMs ?? 15 * 60_000;
  const maxSessions = options.maxSessions ?? 256;
  const maxPerPrincipal = options.maxSessionsPerPrincipal ?? 32;
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const replayWindow = options.replayWindow ?? 1000;
  const maxReplayBytes = options.maxReplayBytes ?? 8 * 1024 * 1024;
  const sessions = new Map<string, LiveSession>();
  /** Callers whose initialize is in progress: they hold a session slot until it has registered (or failed). */
  const opening = new Set<Session>();
  const sessionsOf = (principal: string): number => {
    let n = 0;
    for (const live of sessions.values()) if (live.session.principal === principal) n++;
    for (const caller of opening) if (caller.principal === principal) n++;
    return n;
  };

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - idleMs;
    for (const [id, live] of sessions) {
      if (live.lastSeen < cutoff) {
        logger.info('MCP session idle: closing', { session: id });
        void end(id, live);
      }
    }
  }, Math.min(idleMs, 60_000));
  sweeper.unref();

  const end = async (id: string, live: LiveSession): Promise<void> => {
    if (sessions.get(id) !== live) return;
    sessions.delete(id);
    await live.mcp.close().catch((err: unknown) => logger.warn('MCP session close failed', { err }));
  };

  /** Verify the bearer token; on failure answer 401 and return null. */
  const authenticate = async (req: IncomingMessage, res: ServerResponse): Promise<Session | null> => {
    const token = bearerToken(req.headers.authorization);
    if (token === null) {
      req.resume();
      sendJsonRpcError(res, 401, ErrorCodes.Unauthenticated, 'a Bearer capability token is required', { name: 'Unauthenticated' }, {
        'www-authenticate': `Bearer realm="toka", resource_metadata="${baseUrl(req)}${RESOURCE_METADATA_PATH}"`,
      });
      return null;
    }
    try {
      return await host.authenticate(token);
    } catch (err) {
      req.resume();
      refuse(req, res, HostError.from(err));
      return null;
    }
  };

  /**
   * Answer a host refusal: 401 `invalid_token` (Unauthenticated), 403 `insufficient_scope` (CapabilityDenied),
   * 429 (RateLimited), else 503.
   */
  const refuse = (req: IncomingMessage, res: ServerResponse, e: HostError, id: string | number | null = null): void => {
    const metadata = `${baseUrl(req)}${RESOURCE_METADATA_PATH}`;
    if (e.errorName === 'Unauthenticated') {
      sendJsonRpcError(res, 401, e.code, e.message, e.data, {
        'www-authenticate': `Bearer realm="toka", error="invalid_token", error_description="${quoted(e.message)}", resource_metadata="${metadata}"`,
      }, id);
    } else if (e.errorName === 'CapabilityDenied') {
      const scope = typeof e.data.required === 'string' ? `, scope="${quoted(e.data.required)}"` : '';
      sendJsonRpcError(res, 403, e.code, e.message, e.data, {
        'www-authenticate': `Bearer realm="toka", error="insufficient_scope"${scope}, resource_metadata="${metadata}"`,
      }, id);
    } else {
      sendJsonRpcError(res, e.errorName === 'RateLimited' ? 429 : 503, e.code, e.message, e.data, {}, id);
    }
  };

  /** The live session named by the request, bound to the caller; answers 400/404 and returns null otherwise. */
  const sessionFor = (req: IncomingMessage, res: ServerResponse, caller: Session): LiveSession | null => {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '') {
      req.resume();
      sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: mcp-session-id header is required', { name: 'InvalidRequest' });
      return null;
    }
    const live = sessions.get(id);
    if (!live || live.session.principal !== caller.principal || live.session.claims.vault !== caller.claims.vault) {
      req.resume();
      sendJsonRpcError(res, 404, ErrorCodes.UnknownEntity, 'Session not found', { name: 'UnknownEntity', entity: 'mcp-session' });
      return null;
    }
    // The caller may present a fresher token of the same subject: later host calls verify that one.
    live.session.token = caller.token;
    live.session.claims = caller.claims;
    live.lastSeen = Date.now();
    return live;
  };

  const open = async (caller: Session): Promise<LiveSession> => {
    let live: LiveSession | undefined;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new WindowEventStore(replayWindow, maxReplayBytes),
      onsessioninitialized: (id) => {
        sessions.set(id, live!);
        logger.info('MCP session open', { session: id, principal: caller.principal, vault: caller.claims.vault });
      },
      onsessionclosed: (id) => {
        logger.info('MCP session ended by the client', { session: id });
        void end(id, live!);
      },
    });
    const mcp = createMcpSession(registry, host, caller, options);
    live = { transport, mcp, session: caller, lastSeen: Date.now() };
    mcp.server.onerror = (err) => logger.debug('MCP session error', { err });
    await mcp.server.connect(new BoundedTransport(transport, options.maxResultBytes ?? MCP_DEFAULTS.maxResultBytes));
    return live;
  };

  target.route('POST', MCP_PATH, async (req, res) => {
    const caller = await authenticate(req, res);
    if (!caller) return;
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, maxBody));
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        return sendJsonRpcError(res, 413, ErrorCodes.LimitExceeded, `body exceeds ${maxBody} bytes`, {
          name: 'LimitExceeded',
          limit: 'mcp.maxBodyBytes',
          max: maxBody,
        });
      }
      return sendJsonRpcError(res, 400, ErrorCode.ParseError, 'Parse error: body is not valid JSON', { name: 'ParseError' });
    }
    const messages = Array.isArray(body) ? body : [body];
    if (req.headers['mcp-session-id'] === undefined && messages.some((m) => isInitializeRequest(m))) {
      return initialize(req, res, caller, body);
    }
    const live = sessionFor(req, res, caller);
    if (!live) return;
    try {
      for (const permission of toolPermissions(messages)) await host.authorize(caller, permission);
    } catch (err) {
      return refuse(req, res, HostError.from(err), idOf(messages));
    }
    await live.transport.handleRequest(req, res, body);
  });

  /** Open a session for an `initialize`: charged to the caller, within the session caps. */
  const initialize = async (req: IncomingMessage, res: ServerResponse, caller: Session, body: unknown): Promise<void> => {
    try {
      await host.check(caller);
    } catch (err) {
      return refuse(req, res, HostError.from(err), idOf(Array.isArray(body) ? body : [body]));
    }
    if (sessions.size + opening.size >= maxSessions) {
      return sendJsonRpcError(res, 503, ErrorCodes.LimitExceeded, `more than ${maxSessions} MCP sessions`, {
        name: 'LimitExceeded',
        limit: 'mcp.maxSessions',
        max: maxSessions,
      });
    }
    if (sessionsOf(caller.principal) >= maxPerPrincipal) {
      return sendJsonRpcError(res, 429, ErrorCodes.LimitExceeded, `more than ${maxPerPrincipal} MCP sessions of ${caller.principal}`, {
        name: 'LimitExceeded',
        limit: 'mcp.maxSessionsPerPrincipal',
        max: maxPerPrincipal,
      });
    }
    opening.add(caller);
    let live: LiveSession;
    try {
      live = await open(caller);
      await live.transport.handleRequest(req, res, body);
    } finally {
      opening.delete(caller);
    }
    // An initialize the SDK refused registered no session: close what was opened for it.
    const id = live.transport.sessionId;
    if (id === undefined || sessions.get(id) !== live) await live.mcp.close();
  };

  const byHeader = async (req: IncomingMessage, res: ServerResponse) => {
    const caller = await authenticate(req, res);
    if (!caller) return;
    const live = sessionFor(req, res, caller);
    if (!live) return;
    await live.transport.handleRequest(req, res);
  };
  target.route('GET', MCP_PATH, byHeader);
  target.route('DELETE', MCP_PATH, byHeader);

  const metadata = (req: IncomingMessage, res: ServerResponse) => {
    const base = baseUrl(req);
    const text = JSON.stringify({
      resource: `${base}${MCP_PATH}`,
      resource_name: 'Toka MCP server',
      bearer_methods_supported: ['header'],
      scopes_supported: Object.keys(PERMISSIONS),
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-content-type-options': 'nosniff',
      'cache-control': 'max-age=300',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };
  target.route('GET', RESOURCE_METADATA_PATH, metadata);
  target.route('GET', `${RESOURCE_METADATA_PATH}${MCP_PATH}`, metadata);

  return {
    get sessions() {
      return sessions.size;
    },
    async close() {
      clearInterval(sweeper);
      await Promise.allSettled([...sessions].map(([id, live]) => end(id, live)));
    },
  };

  /** The permissions the `tools/call` requests in `messages` name (the host decides whether the token holds them). */
  function toolPermissions(messages: unknown[]): Set<string> {
    const needed = new Set<string>();
    for (const m of messages) {
      if (typeof m !== 'object' || m === null || (m as { method?: unknown }).method !== 'tools/call') continue;
      const name = (m as { params?: { name?: unknown } }).params?.name;
      const permission = typeof name === 'string' ? registry.tool(name)?.spec.permission : null;
      if (permission) needed.add(permission);
    }
    return needed;
  }
}

/**
 * A bounded, per-session SSE event window for `Last-Event-ID` resumption. Event ids are
 * `<streamId>.<n>`; the window holds at most `maxEvents` events and `maxBytes` bytes of their JSON, forgetting
 * the oldest first (a resume from a forgotten id replays nothing older than the window). Events are held as
 * their JSON text, so their size is exact and nothing else keeps the message objects alive.
 */
export class WindowEventStore implements EventStore {
  private readonly events: { id: string; streamId: string; n: number; text: string; bytes: number }[] = [];
  /** Index of the oldest held event: evicting moves it; the array is compacted once half of it is dead. */
  private head = 0;
  private next = 0;
  private heldBytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  /** Events held now. */
  get size(): number {
    return this.events.length - this.head;
  }

  /** Bytes of JSON held now. */
  get bytes(): number {
    return this.heldBytes;
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const n = this.next++;
    const id = `${streamId}.${n}`;
    const text = JSON.stringify(message);
    const bytes = Buffer.byteLength(text);
    this.events.push({ id, streamId, n, text, bytes });
    this.heldBytes += bytes;
    while (this.size > this.maxEvents || this.heldBytes > this.maxBytes) this.heldBytes -= this.events[this.head++].bytes;
    if (this.head > 64 && this.head * 2 > this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const dot = eventId.lastIndexOf('.');
    return dot > 0 && /^\d+$/.test(eventId.slice(dot + 1)) ? eventId.slice(0, dot) : undefined;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const streamId = (await this.getStreamIdForEventId(lastEventId)) ?? '';
    const after = Number(lastEventId.slice(lastEventId.lastIndexOf('.') + 1));
    // A copy: events stored (and evicted) while `send` awaits must not shift this walk.
    for (const e of this.events.slice(this.head)) {
      if (e.streamId !== streamId || e.n <= after) continue;
      const message = JSON.parse(e.text) as JSONRPCMessage;
      // Priming events carry an empty message: they only mark a position.
      if ('jsonrpc' in message) await send(e.id, message);
    }
    return streamId;
  }
}

/** `http://<Host>`: the Host header has passed the HTTP face's allow-list by the time a route runs. */
function baseUrl(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

function quoted(text: string): string {
  return text.replace(/["\\]/g, '');
}

function idOf(messages: unknown[]): string | number | null {
  const id = messages.length === 1 ? (messages[0] as { id?: unknown }).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  data: Record<string, unknown>,
  headers: Record<string, string> = {},
  id: string | number | null = null,
): void {
  const text = JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, data } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
