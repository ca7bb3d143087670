/**
 * Toka's A2A WebSocket binding at `/a2a/ws` (docs/a2a-websocket-binding.md): the A2A JSON-RPC methods over
 * one WebSocket, one JSON-RPC message per text frame. A streaming method's updates arrive as `StreamUpdate`
 * notifications naming the request, each with its event id (the log position); the stream's end is the
 * response to the request. `SubscribeToTask` with `lastEventId` resumes after that event. Auth is the Bearer
 * token at the upgrade (re-verified on every request, so revocation applies to open connections) and
 * `A2A-Version: 1.0` is required at the upgrade. Bounded: frame size, requests in flight, streams per
 * connection, bytes queued for a slow reader, connections; a client that misses a pong is terminated.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { JsonRpcTransportHandler, ServerCallContext } from '@a2a-js/sdk/server';
import { CANCEL_STREAM, STREAM_UPDATE } from '../../../protocol/a2a.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { bearerToken } from '../http-request.js';
import { writeRawResponse } from '../websocket.js';
import { A2A_VERSION } from './card.js';
import { A2A_LIMITS, Hangup, STATE, TokaUser } from './handler.js';
import { eventId, parseEventId, type UpdatePosition } from './tasks.js';


/** Bounds of the WebSocket binding. */
export const A2A_WS_LIMITS = {
  /** Open WebSocket connections. */
  maxConnections: 64,
  /** Requests of one connection being answered at once. */
  maxInFlight: 32,
  /** Open streams of one connection. */
  maxStreamsPerConnection: 16,
  /** Bytes queued for a client that does not read; beyond them it is cut off (1008). */
  maxBufferedBytes: 4 * 1024 * 1024,
  /** Ping interval; a client that misses a pong is terminated. */
  pingIntervalMs: 30_000,
} as const;

export interface A2aWebSocketOptions {
  jsonrpc: JsonRpcTransportHandler;
  logger: Logger;
  /** Every open stream of the face (shared with SSE), for its bound and for shutdown. */
  streams: Set<Hangup>;
  maxStreams: number;
  pingIntervalMs?: number;
}

type Id = string | number;
type RpcError = { code: number; message: string; data?: unknown };

export class A2aWebSocketEndpoint {
  private readonly wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: A2A_LIMITS.maxBodyBytes });
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly host: Host,
    private readonly options: A2aWebSocketOptions,
  ) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.upgrade(req, socket, head).catch((err: unknown) => {
      this.options.logger.error('a2a websocket upgrade failed', { err });
      writeRawResponse(socket, 500, { error: { name: 'InternalError', message: 'internal error' } });
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const token = bearerToken(req.headers.authorization);
    if (token === null) {
      return writeRawResponse(socket, 401, { error: { name: 'Unauthenticated', message: 'a Bearer capability token is required' } }, { 'WWW-Authenticate': 'Bearer realm="toka"' });
    }
    const version = req.headers['a2a-version'];
    if (version !== A2A_VERSION) {
      return writeRawResponse(socket, 400, { error: { name: 'VersionNotSupported', message: `send the A2A-Version: ${A2A_VERSION} header`, code: -32009 } });
    }
    let session: Session;
    try {
      session = await this.host.authenticate(token);
    } catch (err) {
      const e = HostError.from(err);
      return writeRawResponse(socket, 401, { error: { name: e.errorName, message: e.message } }, { 'WWW-Authenticate': 'Bearer realm="toka", error="invalid_token"' });
    }
    if (this.sockets.size >= A2A_WS_LIMITS.maxConnections) {
      return writeRawResponse(socket, 503, { error: { name: 'LimitExceeded', message: `${A2A_WS_LIMITS.maxConnections} A2A WebSocket connections are open` } }, { 'Retry-After': '1' });
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, session));
  }

  private serve(ws: WebSocket, session: Session): void {
    const { logger } = this.options;
    this.sockets.add(ws);
    const streams = new Map<Id, Hangup>();
    let inFlight = 0;
    let alive = true;
    const pinger = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, this.options.pingIntervalMs ?? A2A_WS_LIMITS.pingIntervalMs);
    ws.on('pong', () => (alive = true));

    const send = (message: unknown): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > A2A_WS_LIMITS.maxBufferedBytes) {
        ws.close(1008, 'client not reading');
        return;
      }
      ws.send(JSON.stringify(message));
    };
    const fail = (id: Id | null, error: RpcError) => send({ jsonrpc: '2.0', id, error });

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return fail(null, { code: ErrorCodes.InvalidRequest, message: 'send JSON-RPC as text frames', data: { name: 'InvalidRequest' } });
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(rawText(data)) as Record<string, unknown>;
      } catch {
        return fail(null, { code: ErrorCodes.ParseError, message: 'Parse error: the frame is not valid JSON', data: { name: 'ParseError' } });
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        return fail(null, { code: ErrorCodes.InvalidRequest, message: 'one JSON-RPC request object per frame (no batches)', data: { name: 'InvalidRequest' } });
      }
      const id = message.id;
      if (typeof id !== 'string' && !(typeof id === 'number' && Number.isInteger(id))) {
        return fail(null, { code: ErrorCodes.InvalidRequest, message: 'every request needs an id (string or integer)', data: { name: 'InvalidRequest' } });
      }
      if (message.method === CANCEL_STREAM) {
        const target = (message.params as { id?: unknown } | undefined)?.id;
        const stream = typeof target === 'string' || typeof target === 'number' ? streams.get(target) : undefined;
        stream?.hangUp();
        return send({ jsonrpc: '2.0', id, result: { cancelled: stream !== undefined } });
      }
      if (streams.has(id)) return fail(id, { code: ErrorCodes.InvalidRequest, message: `a stream with id ${JSON.stringify(id)} is open on this connection`, data: { name: 'InvalidRequest' } });
      if (inFlight >= A2A_WS_LIMITS.maxInFlight) {
        return fail(id, { code: ErrorCodes.LimitExceeded, message: `${A2A_WS_LIMITS.maxInFlight} requests are in flight`, data: { name: 'LimitExceeded', limit: 'a2a.ws.maxInFlight', max: A2A_WS_LIMITS.maxInFlight } });
      }
      inFlight++;
      void this.answer(message, id, session, streams, send, fail)
        .catch((err: unknown) => {
          logger.error('a2a websocket request failed', { err });
          fail(id, { code: ErrorCodes.InternalError, message: 'internal error' });
        })
        .finally(() => inFlight--);
    });
    ws.on('close', () => {
      clearInterval(pinger);
      this.sockets.delete(ws);
      for (const stream of streams.values()) stream.hangUp();
    });
    ws.on('error', (err) => logger.debug('a2a websocket error', { err }));
  }

  private async answer(
    message: Record<string, unknown>,
    id: Id,
    session: Session,
    streams: Map<Id, Hangup>,
    send: (m: unknown) => void,
    fail: (id: Id | null, e: RpcError) => void,
  ): Promise<void> {
    const hangup = new Hangup();
    const state = new Map<string, unknown>([[STATE.hangup, hangup]]);
    const params = message.params as Record<string, unknown> | undefined;
    if (message.method === 'SubscribeToTask' && params && typeof params === 'object' && params.lastEventId !== undefined) {
      const position = typeof params.lastEventId === 'string' ? parseEventId(params.lastEventId) : null;
      if (!position) return fail(id, { code: ErrorCodes.InvalidParams, message: 'lastEventId is not an event id of this host', data: { name: 'InvalidParams' } });
      state.set(STATE.resumeAfter, position satisfies UpdatePosition);
      const { lastEventId: _omitted, ...rest } = params;
      message = { ...message, params: rest };
    }
    const context = new ServerCallContext({ user: new TokaUser(session), requestedVersion: A2A_VERSION, state });
    const answer = await this.options.jsonrpc.handle(message, context);
    const refusalOf = (): RpcError | null => {
      const refusal = context.state.get(STATE.refusal) as HostError | undefined;
      return refusal ? { code: refusal.code, message: refusal.message, data: refusal.data } : null;
    };
    if (!(Symbol.asyncIterator in answer)) {
      const refusal = answer.error ? refusalOf() : null;
      if (refusal) return fail(id, refusal);
      if ((answer.error as RpcError | undefined)?.code === ErrorCodes.InternalError) {
        this.options.logger.error('a2a websocket request failed', { message: (answer.error as RpcError).message });
        return fail(id, { code: ErrorCodes.InternalError, message: 'internal error' });
      }
      return send(answer);
    }
    const { streams: all, maxStreams } = this.options;
    if (streams.size >= A2A_WS_LIMITS.maxStreamsPerConnection || all.size >= maxStreams) {
      await answer.return(undefined);
      return fail(id, { code: ErrorCodes.LimitExceeded, message: 'too many open streams', data: { name: 'LimitExceeded', limit: 'a2a.ws.maxStreamsPerConnection', max: A2A_WS_LIMITS.maxStreamsPerConnection } });
    }
    streams.set(id, hangup);
    all.add(hangup);
    let last: string | null = null;
    try {
      for (;;) {
        let step: IteratorResult<{ result?: unknown }, void>;
        try {
          step = await answer.next();
        } catch (err) {
          const refusal = refusalOf() ?? (err instanceof HostError ? { code: err.code, message: err.message, data: err.data } : null);
          const mapped = refusal ?? JsonRpcTransportHandler.mapToJSONRPCError(err);
          if (mapped.code === ErrorCodes.InternalError) this.options.logger.error('a2a websocket stream failed', { err });
          return fail(id, mapped.code === ErrorCodes.InternalError ? { code: mapped.code, message: 'internal error' } : mapped);
        }
        if (step.done || hangup.happened) break;
        last = eventId(context.state.get(STATE.position) as UpdatePosition);
        send({ jsonrpc: '2.0', method: STREAM_UPDATE, params: { id, eventId: last, result: step.value.result } });
      }
      send({ jsonrpc: '2.0', id, result: { lastEventId: last, cancelled: hangup.happened } });
    } finally {
      streams.delete(id);
      all.delete(hangup);
      await answer.return(undefined);
    }
  }

  /** Close every connection (1001) and stop. */
  async close(): Promise<void> {
    for (const ws of this.sockets) ws.close(1001, 'host shutting down');
    const deadline = Date.now() + 2000;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
