/**
 * The A2A face on the HTTP server of `toka serve`: the Agent Card at `/.well-known/agent-card.json` and the
 * bindings under `/a2a/` — JSON-RPC at `/a2a/jsonrpc` (streams as Server-Sent Events), HTTP+JSON at
 * `/a2a/rest` (rest.ts) and the WebSocket binding at `/a2a/ws`. Requests are decoded by the SDK's JSON-RPC
 * transport handler over Toka's own request handler (handler.ts); the other bindings map onto it. Every
 * binding request needs `Authorization: Bearer <capability token>` (401 without a valid one, 403 when the
 * token does not cover the method) and the `A2A-Version: 1.0` header. SSE events carry the log position as their `id`; a `SubscribeToTask` sent with
 * `Last-Event-ID` resumes after it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentCard } from '@a2a-js/sdk';
import { VersionNotSupportedError } from '@a2a-js/sdk/errors';
import { JsonRpcTransportHandler, ServerCallContext } from '@a2a-js/sdk/server';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import type { AgentRuntime } from '../../runtime/runtime.js';
import { BodyTooLarge, bearerToken, readBody, sendError, sendJson } from '../http-request.js';
import type { HttpServer } from '../http.js';
import { A2A_PREFIX, A2A_VERSION, CARD_PATH, CardBuilder, JSONRPC_PATH, REST_PATH, WEBSOCKET_PATH, type A2aConfig } from './card.js';
import { A2A_LIMITS, Hangup, STATE, TokaA2aHandler, TokaUser } from './handler.js';
import { refusalHeaders, refusalStatus } from './refusal.js';
import { restBinding } from './rest.js';
import { writeSse } from './sse.js';
import { eventId, parseEventId, type UpdatePosition } from './tasks.js';
import { A2aWebSocketEndpoint } from './websocket.js';

export interface A2aMountOptions {
  runtime: AgentRuntime;
  logger: Logger;
  /** The card's name, description and published agents (`<data>/a2a.json` in `toka serve`). */
  config: A2aConfig;
  /** Most streams (SSE and WebSocket subscriptions) open at once (default 256). */
  maxStreams?: number;
  /** Interval of SSE keep-alive comments, ms (default 15000). */
  keepAliveMs?: number;
  /** Task records kept for the streams just starting (default `FEED_RECENT`, feed.ts). */
  keptTaskRecords?: number;
}

export interface A2aMount {
  /** Streams open now. */
  readonly streams: number;
  /** Tasks followed now (blocking `SendMessage`s and streams waiting for their task's next update). */
  readonly following: number;
  /** End every stream and WebSocket connection. */
  close(): Promise<void>;
}

type JsonRpcError = { code: number; message: string; data?: unknown };

export function mountA2a(server: HttpServer, host: Host, options: A2aMountOptions): A2aMount {
  const logger = options.logger.child({ face: 'a2a' });
  const cards = new CardBuilder(host, options.config);
  const handler = new TokaA2aHandler({ host, runtime: options.runtime, cards, baseUrl: server.url, logger, keptTaskRecords: options.keptTaskRecords });
  const jsonrpc = new JsonRpcTransportHandler(handler);
  const maxStreams = options.maxStreams ?? 256;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const streams = new Set<Hangup>();

  const websocket = new A2aWebSocketEndpoint(host, { jsonrpc, logger, streams, maxStreams });

  server.route('GET', CARD_PATH, async (_req, res) => {
    sendJson(res, 200, toCardJson(await handler.getAgentCard()), { 'cache-control': 'max-age=60' });
  });

  server.routePrefix(A2A_PREFIX, async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== JSONRPC_PATH) {
      req.resume();
      return sendError(res, 404, 'NotFound', `no A2A endpoint at ${path}`);
    }
    if (req.method !== 'POST') {
      req.resume();
      return sendError(res, 405, 'MethodNotAllowed', `${req.method ?? ''} not allowed on ${path}`, { allow: 'POST' });
    }
    await serveJsonRpc(req, res);
  });

  server.routePrefix(REST_PATH, restBinding({ host, jsonrpc, logger, streams, maxStreams, keepAliveMs }));

  server.upgrade(WEBSOCKET_PATH, (req, socket, head) => websocket.handleUpgrade(req, socket, head), async () => {
    for (const stream of streams) stream.hangUp();
    await websocket.close();
  });

  /** The caller's session, or null after answering 401. */
  async function authenticate(req: IncomingMessage, res: ServerResponse): Promise<Session | null> {
    const token = bearerToken(req.headers.authorization);
    if (token === null) {
      req.resume();
      sendJson(res, 401, rpcError(null, { code: ErrorCodes.Unauthenticated, message: 'a Bearer capability token is required', data: { name: 'Unauthenticated' } }), {
        'www-authenticate': 'Bearer realm="toka"',
      });
      return null;
    }
    try {
      return await host.authenticate(token);
    } catch (err) {
      req.resume();
      const e = HostError.from(err);
      sendJson(res, refusalStatus(e) === 200 ? 401 : refusalStatus(e), rpcError(null, { code: e.code, message: e.message, data: e.data }), refusalHeaders(e));
      return null;
    }
  }

  async function serveJsonRpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const session = await authenticate(req, res);
    if (!session) return;
    const version = headerOf(req, 'a2a-version');
    if (version !== A2A_VERSION) {
      req.resume();
      const err = new VersionNotSupportedError(
        version === undefined ? `send the A2A-Version: ${A2A_VERSION} header (without it a request means 0.3)` : `A2A-Version ${version.slice(0, 32)} is not supported; use ${A2A_VERSION}`,
      );
      return sendJson(res, 200, rpcError(null, JsonRpcTransportHandler.mapToJSONRPCError(err)));
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json' && type !== 'application/a2a+json') {
      req.resume();
      return sendJson(res, 415, rpcError(null, { code: ErrorCodes.InvalidRequest, message: 'Content-Type must be application/json or application/a2a+json', data: { name: 'InvalidRequest' } }));
    }
    let body: string;
    try {
      body = await readBody(req, A2A_LIMITS.maxBodyBytes);
    } catch (err) {
      if (!(err instanceof BodyTooLarge)) throw err;
      return sendJson(
        res,
        413,
        rpcError(null, {
          code: ErrorCodes.LimitExceeded,
          message: `body exceeds ${A2A_LIMITS.maxBodyBytes} bytes`,
          data: { name: 'LimitExceeded', limit: 'a2a.maxBodyBytes', max: A2A_LIMITS.maxBodyBytes },
        }),
        { connection: 'close' },
      );
    }
    const hangup = Hangup.of(res);
    const state = new Map<string, unknown>([[STATE.hangup, hangup]]);
    const lastEventId = headerOf(req, 'last-event-id');
    if (lastEventId !== undefined) {
      const position = parseEventId(lastEventId);
      if (!position) {
        return sendJson(res, 200, rpcError(idOf(body), { code: ErrorCodes.InvalidParams, message: 'Last-Event-ID is not an event id of this host', data: { name: 'InvalidParams' } }));
      }
      state.set(STATE.resumeAfter, position satisfies UpdatePosition);
    }
    let request: unknown;
    try {
      request = JSON.parse(body);
    } catch {
      return sendJson(res, 200, rpcError(null, { code: ErrorCodes.ParseError, message: 'Parse error: the body is not valid JSON', data: { name: 'ParseError' } }));
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      return sendJson(res, 200, rpcError(null, { code: ErrorCodes.InvalidRequest, message: 'one JSON-RPC request object per body (no batches)', data: { name: 'InvalidRequest' } }));
    }
    const context = new ServerCallContext({ user: new TokaUser(session), requestedVersion: version, state });
    const answer = await jsonrpc.handle(request as Record<string, unknown>, context);
    if (!(Symbol.asyncIterator in answer)) {
      const refusal = context.state.get(STATE.refusal) as HostError | undefined;
      if (refusal && answer.error) {
        return sendJson(res, refusalStatus(refusal), rpcError(answer.id, { code: refusal.code, message: refusal.message, data: refusal.data }), refusalHeaders(refusal));
      }
      return sendJson(res, 200, scrubbed(answer, logger));
    }
    if (streams.size >= maxStreams) {
      await answer.return(undefined);
      return sendJson(
        res,
        503,
        rpcError(idOf(body), { code: ErrorCodes.LimitExceeded, message: `${maxStreams} streams are open; try again later`, data: { name: 'LimitExceeded', limit: 'a2a.maxStreams', max: maxStreams } }),
        { 'retry-after': '1' },
      );
    }
    streams.add(hangup);
    try {
      await streamSse(res, answer, context, idOf(body), hangup);
    } finally {
      streams.delete(hangup);
    }
  }

  /** Write a JSON-RPC stream as Server-Sent Events: each `data` a JSON-RPC response, a failure its error response. */
  function streamSse(
    res: ServerResponse,
    stream: AsyncGenerator<{ jsonrpc: string; id: string | number | null; result?: unknown; error?: unknown }, void, undefined>,
    context: ServerCallContext,
    id: string | number | null,
    hangup: Hangup,
  ): Promise<void> {
    const errorOf = (err: unknown): { status: number; error: JsonRpcError; headers: Record<string, string> } => {
      const refusal = context.state.get(STATE.refusal) as HostError | undefined;
      if (refusal ?? err instanceof HostError) {
        const e = (refusal ?? err) as HostError;
        return { status: refusalStatus(e), error: { code: e.code, message: e.message, data: e.data }, headers: refusalHeaders(e) };
      }
      const mapped = JsonRpcTransportHandler.mapToJSONRPCError(err);
      if (mapped.code === ErrorCodes.InternalError) {
        logger.error('a2a stream failed', { err });
        return { status: 200, error: { code: mapped.code, message: 'internal error' }, headers: {} };
      }
      return { status: 200, error: mapped, headers: {} };
    };
    return writeSse(res, stream, {
      keepAliveMs,
      hangup,
      eventId: () => eventId(context.state.get(STATE.position) as UpdatePosition),
      data: (update) => JSON.stringify(update),
      errorEvent: (err) => `data: ${JSON.stringify(rpcError(id, errorOf(err).error))}\n\n`,
      refuse: (err) => {
        const { status, error, headers } = errorOf(err);
        sendJson(res, status, rpcError(id, error), headers);
      },
    });
  }

  return {
    get streams() {
      return streams.size;
    },
    get following() {
      return handler.following;
    },
    async close() {
      for (const stream of streams) stream.hangUp();
      await websocket.close();
    },
  };
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function rpcError(id: string | number | null, error: JsonRpcError): { jsonrpc: '2.0'; id: string | number | null; error: JsonRpcError } {
  return { jsonrpc: '2.0', id, error };
}

/** The request id of a body, for answers given before the SDK has read it. */
function idOf(body: string): string | number | null {
  try {
    const id = (JSON.parse(body) as { id?: unknown }).id;
    return typeof id === 'string' || typeof id === 'number' ? id : null;
  } catch {
    return null;
  }
}

/** An answer with an internal error's message replaced (the details go to the host's log only). */
export function scrubbed<T extends { error?: unknown }>(answer: T, logger: Logger): T {
  const error = answer.error as JsonRpcError | undefined;
  if (!error || error.code !== ErrorCodes.InternalError) return answer;
  logger.error('a2a request failed', { message: error.message });
  return { ...answer, error: { code: error.code, message: 'internal error' } };
}

/** The card as JSON (the SDK's codec). */
export function toCardJson(card: AgentCard): unknown {
  return AgentCard.toJSON(card);
}
