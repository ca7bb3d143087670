/**
 * MCP Streamable HTTP at `/mcp` on `toka serve`, mounted on the HTTP face's route hook (which has already
 * applied the Host/Origin DNS-rebinding check to every request). The routes live here; the parts they use
 * are named for their jobs: session-table.ts (who owns a session, caps, idleness), event-store.ts
 * (`Last-Event-ID` resumption), http-auth.ts (bearer auth and its challenges), resource-metadata.ts (RFC 9728).
 *
 * - Eras: a POST without `mcp-session-id` whose `MCP-Protocol-Version` names no 2025-era revision is a
 *   stateless 2026-07-28 request, answered by modern.ts on its own; everything else follows the 2025 rules below.
 * - Sessions: `initialize` without `mcp-session-id` opens one (an SDK transport + a Toka MCP session bound to
 *   the token's vault, subject and grant); POST, GET (standalone SSE stream) and DELETE (end) route by the
 *   header. An `initialize` re-verifies the token and is charged to the caller's rate limit (`host.check`),
 *   so opening sessions is not free.
 * - Auth: a request for a session must come from its owner (else 404, as for an unknown session). Before a
 *   `tools/call`, the host authorises the tool's permission (`host.authorize`); its refusal is answered 403
 *   with `WWW-Authenticate: Bearer error="insufficient_scope", scope="<permission>"`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import type { AgentRuntime } from '../../runtime/runtime.js';
import { BodyTooLarge, readBody, sendJsonRpcError } from '../http-request.js';
import { WindowEventStore } from './event-store.js';
import { authenticate, refuse, unknownSession } from './http-auth.js';
import { NodeHttpTransport } from './http-transport.js';
import type { McpRegistry } from './registry.js';
import { mountOAuth, type OAuthTarget } from './oauth.js';
import { MCP_PATH, mountResourceMetadata, type RouteTarget } from './resource-metadata.js';
import { RequestStateSigner } from './input-rounds.js';
import { ModernEndpoint, isModernRequest } from './modern.js';
import { MCP_DEFAULTS, createMcpSession, type McpServerOptions } from './server.js';
import { SessionTable, type LiveSession } from './session-table.js';
import { startMcpSocket } from './socket.js';
import { runtimeTools } from './runtime-tools.js';
import { createTokaRegistry } from './toka.js';

export interface McpHttpOptions extends McpServerOptions {
  logger: Logger;
  /** What to serve; default: Toka's own tools, resources and prompts. */
  registry?: McpRegistry;
  /** Close a session after this long without a request or an open response (default 15 min), measured on `now`. */
  idleTimeoutMs?: number;
  /** At a session cap, reclaim the session quiet the longest once it has been quiet this long (default 60 s). */
  reclaimAfterMs?: number;
  /** How often idle sessions are looked for, in real time (default: the idle timeout, at most 60 s). */
  sweepIntervalMs?: number;
  /** The clock idleness is measured on (ms since the epoch); pass the host's injected clock. Default `Date.now`. */
  now?: () => number;
  /** Most live sessions (default 256); an initialize beyond it reclaims a quiet session or gets 503. */
  maxSessions?: number;
  /** Most live sessions of one subject of one vault (default 32); beyond it, a quiet one is reclaimed, else 429. */
  maxSessionsPerPrincipal?: number;
  /** Most 2026-07-28 (stateless) requests of one subject of one vault open at once (default 32); beyond it, 429. */
  maxRequestsPerPrincipal?: number;
  /** Largest POST body (default 4 MiB); larger gets 413. */
  maxBodyBytes?: number;
  /** SSE events kept per session for `Last-Event-ID` resumption (default 1000). */
  replayWindow?: number;
  /** Bytes of SSE event JSON kept per session for resumption (default 8 MiB); the oldest are forgotten first. */
  maxReplayBytes?: number;
  /** Largest result (JSON bytes) sent; larger ones are refused with LimitExceeded. Default 1 MiB. */
  maxResultBytes?: number;
  /** The resource metadata names this host as the authorization server (true when oauth.ts is mounted). */
  authorizationServer?: boolean;
}

export interface McpHttpMount {
  readonly sessions: number;
  /** Close every session (ends their SSE streams); call before closing the HTTP server. */
  close(): Promise<void>;
}

export { MCP_PATH };

export interface McpMountOptions extends McpHttpOptions {
  /** The data dir the host holds: `<dataDir>/mcp.sock` serves `toka mcp` next to the host (socket.ts). */
  dataDir: string;
  /** The host's agent runtime: its tools (runtime-tools.ts) join Toka's when no `registry` is given. */
  runtime?: AgentRuntime;
}

/** Toka's MCP registry: its tools, resources and prompts, plus the agent runtime's tools when there is one. */
export function tokaMcpRegistry(runtime?: AgentRuntime): McpRegistry {
  return createTokaRegistry(runtime ? [runtimeTools(runtime)] : []);
}

/**
 * MCP on a serving host: `/mcp` on its HTTP face, the OAuth authorization server for it (oauth.ts), and
 * `<data>/mcp.sock` for `toka mcp`.
 */
export async function mountMcp(target: OAuthTarget, host: Host, options: McpMountOptions): Promise<McpHttpMount> {
  const registry = options.registry ?? tokaMcpRegistry(options.runtime);
  const socket = await startMcpSocket(host, { ...options, registry });
  mountOAuth(target, host, { logger: options.logger, dataDir: options.dataDir, resourcePath: MCP_PATH, now: options.now });
  const http = mountMcpHttp(target, host, { ...options, registry, authorizationServer: true });
  return {
    get sessions() {
      return http.sessions + socket.connections;
    },
    async close() {
      await Promise.all([http.close(), socket.close()]);
    },
  };
}

export function mountMcpHttp(target: RouteTarget, host: Host, options: McpHttpOptions): McpHttpMount {
  const registry = options.registry ?? createTokaRegistry();
  const logger = options.logger;
  const idleMs = options.idleTimeoutMs ?? 15 * 60_000;
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const replayWindow = options.replayWindow ?? 1000;
  const maxReplayBytes = options.maxReplayBytes ?? 8 * 1024 * 1024;
  const now = options.now ?? (() => host.now());
  const sessions = new SessionTable({
    logger,
    maxSessions: options.maxSessions ?? 256,
    maxPerPrincipal: options.maxSessionsPerPrincipal ?? 32,
    idleMs,
    reclaimAfterMs: options.reclaimAfterMs ?? 60_000,
    now,
  });

  /** Count `res` as an open response of `live` until it ends (a quiet session is one with none). */
  const answering = (live: LiveSession, res: ServerResponse): void => {
    live.responses++;
    res.once('close', () => {
      live.responses--;
      live.lastSeen = now();
    });
  };

  const modern = new ModernEndpoint(host, {
    ...options,
    registry,
    logger,
    signer: new RequestStateSigner(now),
    maxInFlight: options.maxRequestsPerPrincipal ?? 32,
  });

  const sweeper = setInterval(() => sessions.sweep(), options.sweepIntervalMs ?? Math.min(idleMs, 60_000));
  sweeper.unref();

  /** The live session named by the request, owned by the caller; answers 400/404 and returns undefined otherwise. */
  const sessionFor = (req: IncomingMessage, res: ServerResponse, caller: Session): LiveSession | undefined => {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '') {
      req.resume();
      sendJsonRpcError(res, 400, { code: ErrorCode.InvalidRequest, message: 'Bad Request: mcp-session-id header is required', data: { name: 'InvalidRequest' } });
      return undefined;
    }
    const live = sessions.claim(id, caller);
    if (!live) {
      req.resume();
      unknownSession(res);
    }
    return live;
  };

  /** A new session of `caller`, registered in the table. */
  const open = async (caller: Session): Promise<LiveSession> => {
    const id = randomUUID();
    const transport = new NodeHttpTransport({
      sessionId: id,
      eventStore: new WindowEventStore(replayWindow, maxReplayBytes),
      maxResultBytes: options.maxResultBytes ?? MCP_DEFAULTS.maxResultBytes,
      onSessionClosed: () => {
        logger.info('MCP session ended by the client', { session: id });
        void sessions.end(id, live);
      },
    });
    const mcp = createMcpSession(registry, host, caller, options);
    const live: LiveSession = { transport, mcp, session: caller, lastSeen: now(), responses: 0 };
    await mcp.connect(transport, { error: (err) => logger.debug('MCP session error', { err }) });
    sessions.add(id, live);
    logger.info('MCP session open', { session: id, principal: caller.principal, vault: caller.claims.vault });
    return live;
  };

  target.route('POST', MCP_PATH, async (req, res) => {
    const caller = await authenticate(host, req, res);
    if (!caller) return;
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, maxBody));
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        return sendJsonRpcError(
          res,
          413,
          { code: ErrorCodes.LimitExceeded, message: `body exceeds ${maxBody} bytes`, data: { name: 'LimitExceeded', limit: 'mcp.maxBodyBytes', max: maxBody } },
          { headers: { connection: 'close' } },
        );
      }
      return sendJsonRpcError(res, 400, { code: ErrorCode.ParseError, message: 'Parse error: body is not valid JSON', data: { name: 'ParseError' } });
    }
    const messages = Array.isArray(body) ? body : [body];
    if (req.headers['mcp-session-id'] === undefined) {
      if (messages.some((m) => isInitializeRequest(m))) return initialize(req, res, caller, body);
      if (isModernRequest(req.headers)) {
        if (!(await authorizeTools(req, res, caller, messages))) return;
        return modern.handlePost(req.headers, res, caller, body);
      }
    }
    const live = sessionFor(req, res, caller);
    if (!live) return;
    if (!(await authorizeTools(req, res, caller, messages))) return;
    answering(live, res);
    live.transport.handlePost(req.headers, res, body);
  });

  /** Authorise the permissions of the `tools/call` requests in `messages`; answers the refusal and returns false. */
  const authorizeTools = async (req: IncomingMessage, res: ServerResponse, caller: Session, messages: unknown[]): Promise<boolean> => {
    try {
      for (const permission of toolPermissions(messages)) await host.authorize(caller, permission);
      return true;
    } catch (err) {
      refuse(req, res, HostError.from(err), idOf(messages));
      return false;
    }
  };

  /** Open a session for an `initialize`: charged to the caller, within the session caps. */
  const initialize = async (req: IncomingMessage, res: ServerResponse, caller: Session, body: unknown): Promise<void> => {
    const id = idOf(Array.isArray(body) ? body : [body]);
    try {
      await host.check(caller);
    } catch (err) {
      return refuse(req, res, HostError.from(err), id);
    }
    const refusal = sessions.admission(caller);
    if (refusal) {
      return sendJsonRpcError(res, refusal.status, refusal.error, { id, headers: { 'retry-after': String(refusal.retryAfterSeconds) } });
    }
    const release = sessions.reserve(caller);
    let live: LiveSession;
    try {
      live = await open(caller);
    } finally {
      release();
    }
    answering(live, res);
    live.transport.handlePost(req.headers, res, body);
    // An initialize the transport refused (a batch, a bad message) opened nothing: close what was opened for it.
    if (!live.transport.initialized) await sessions.end(live.transport.sessionId, live);
  };

  const byHeader = (answer: (transport: NodeHttpTransport, req: IncomingMessage, res: ServerResponse) => void | Promise<void>) =>
    async (req: IncomingMessage, res: ServerResponse) => {
      const caller = await authenticate(host, req, res);
      if (!caller) return;
      const live = sessionFor(req, res, caller);
      if (!live) return;
      req.resume();
      answering(live, res);
      await answer(live.transport, req, res);
    };
  target.route('GET', MCP_PATH, byHeader((transport, req, res) => transport.handleGet(req.headers, res)));
  target.route('DELETE', MCP_PATH, byHeader((transport, req, res) => transport.handleDelete(req.headers, res)));
  mountResourceMetadata(target, MCP_PATH, options.authorizationServer === true);

  return {
    get sessions() {
      return sessions.size;
    },
    async close() {
      clearInterval(sweeper);
      modern.close();
      await sessions.close();
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

function idOf(messages: unknown[]): string | number | null {
  const id = messages.length === 1 ? (messages[0] as { id?: unknown }).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}
