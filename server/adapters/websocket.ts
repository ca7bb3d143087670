/**
 * WebSocket face: the `toka/*` JSON-RPC protocol at `/rpc`, one JSON-RPC message per WebSocket message.
 * The bearer token is checked before the upgrade (401, no upgrade, on failure); after it, a vscode-jsonrpc
 * MessageConnection runs over the socket and `bindTokaProtocol` serves it, so every request goes through
 * the host's checks (the token is re-verified per request: revocation applies to open connections).
 * Bounded: payload size (1009), bytes queued per client (1008 "client not reading"), connection count
 * (503 at upgrade), liveness (ping; a client that misses a pong is terminated).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  Disposable,
  ProgressType,
  createMessageConnection,
  type DataCallback,
  type Message,
  type MessageReader,
  type MessageWriter,
} from 'vscode-jsonrpc/node';
import { ErrorCodes } from '../../protocol/errors.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import type { AgentRuntime } from '../runtime/runtime.js';
import { bearerToken, httpStatusOf, retryAfterSeconds } from './http-request.js';
import { invalidJsonRpcMessage } from './jsonrpc-frames.js';
import { bindTokaProtocol, onTypedRequest, type RpcConnection } from './rpc.js';
import { WebSocketServer, WebSocket, type RawData } from 'ws';

export interface WebSocketEndpointOptions {
  logger: Logger;
  /** The agent runtime behind `toka/agents/*`, `toka/tasks/*`, `toka/approvals/*` (Unavailable without one). */
  runtime?: AgentRuntime;
  maxConnections: number;
  maxPayloadBytes: number;
  maxBufferedBytes: number;
  pingIntervalMs: number;
}

/** Subprotocol a browser offers (with `toka.bearer.<token>`) to authenticate without an Authorization header. */
export const WS_SUBPROTOCOL = 'toka';
/** Prefix of the subprotocol that carries the bearer token for browsers. */
export const WS_BEARER_PROTOCOL_PREFIX = 'toka.bearer.';
/** Close codes used by the host. */
export const WsCloseCodes = {
  /** The host is shutting down. */
  GoingAway: 1001,
  /** The client did not read fast enough (`maxBufferedBytes` exceeded), or missed a pong. */
  PolicyViolation: 1008,
  /** A message larger than `maxPayloadBytes` (sent by ws itself). */
  MessageTooBig: 1009,
} as const;
/** How long a cut-off client may take to read its close frame before its socket is destroyed. */
const CUTOFF_GRACE_MS = 5000;
/** How long `close()` waits for clients to answer the 1001 close before terminating them. */
const SHUTDOWN_GRACE_MS = 2000;

interface Client {
  readonly ws: WebSocket;
  readonly session: Session;
  alive: boolean;
}

export class WebSocketEndpoint {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private pending = 0;
  private closing = false;
  private readonly pinger: NodeJS.Timeout;

  constructor(
    private readonly host: Host,
    private readonly options: WebSocketEndpointOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxPayloadBytes,
      handleProtocols: (protocols: Set<string>) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    });
    this.pinger = setInterval(() => this.ping(), options.pingIntervalMs);
    this.pinger.unref();
  }

  /** Authenticate and upgrade (the caller has done the Host/Origin and path checks). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.upgrade(req, socket, head).catch((err: unknown) => {
      this.options.logger.error('websocket upgrade failed', { err });
      writeRawResponse(socket, 500, { error: { name: 'InternalError', message: 'internal error' } });
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const log = this.options.logger;
    if (this.closing) return writeRawResponse(socket, 503, { error: { name: 'Unavailable', message: 'host is shutting down' } });
    if (this.clients.size + this.pending >= this.options.maxConnections) {
      log.warn('websocket upgrade refused', { reason: 'connection limit', max: this.options.maxConnections });
      return writeRawResponse(
        socket,
        503,
        { error: { name: 'LimitExceeded', message: `at most ${this.options.maxConnections} WebSocket connections` } },
        { 'Retry-After': '1' },
      );
    }
    const token = bearerToken(req.headers.authorization) ?? protocolBearer(req.headers['sec-websocket-protocol']);
    if (token === null) {
      return writeRawResponse(socket, 401, { error: { name: 'Unauthenticated', message: 'a Bearer capability token is required' } }, {
        'WWW-Authenticate': 'Bearer realm="toka"',
      });
    }
    let session: Session;
    this.pending++;
    try {
      session = await this.host.authenticate(token);
    } catch (err) {
      return this.refuseAuthentication(socket, err);
    } finally {
      this.pending--;
    }
    if (socket.destroyed) return;
    if (this.closing) return writeRawResponse(socket, 503, { error: { name: 'Unavailable', message: 'host is shutting down' } });
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, session, req));
  }

  /** Answer an upgrade whose token the host did not accept, by why it did not. */
  private refuseAuthentication(socket: Duplex, err: unknown): void {
    const log = this.options.logger;
    const e = HostError.from(err);
    const status = httpStatusOf(e);
    switch (status) {
      case 401:
        log.info('websocket upgrade refused', { reason: 'invalid token', code: e.details.reason });
        return writeRawResponse(socket, 401, { error: { name: 'Unauthenticated', message: 'invalid token' } }, {
          'WWW-Authenticate': 'Bearer realm="toka", error="invalid_token"',
        });
      case 429:
        log.info('websocket upgrade refused', { reason: 'rate limited', retryAfterMs: e.details.retryAfterMs });
        return writeRawResponse(socket, 429, { error: { name: e.errorName, message: e.message } }, {
          'Retry-After': String(retryAfterSeconds(e)),
        });
      case 503:
        log.warn('websocket upgrade refused', { reason: 'host unavailable', message: e.message });
        return writeRawResponse(socket, 503, { error: { name: e.errorName, message: e.message } });
      default:
        log.error('websocket upgrade failed', { err });
        return writeRawResponse(socket, 500, { error: { name: 'InternalError', message: 'internal error' } });
    }
  }

  private attach(ws: WebSocket, session: Session, req: IncomingMessage): void {
    const log = this.options.logger.child({ conn: session.id, principal: session.principal });
    const client: Client = { ws, session, alive: true };
    this.clients.add(client);
    this.host.metrics.connections('ws', +1);
    log.info('websocket connected', { remote: req.socket.remoteAddress });

    let cutOff = false;
    const cutOffClient = (buffered: number) => {
      if (cutOff) return;
      cutOff = true;
      log.warn('websocket client not reading; cut off', { bufferedBytes: buffered, max: this.options.maxBufferedBytes });
      ws.close(WsCloseCodes.PolicyViolation, 'client not reading');
      setTimeout(() => ws.terminate(), CUTOFF_GRACE_MS).unref();
    };
    const writer = new WsMessageWriter(ws, this.options.maxBufferedBytes, cutOffClient);
    const reader = new WsMessageReader(ws, writer);
    const connection = createMessageConnection(reader, writer, {
      error: (m) => log.debug('jsonrpc', { detail: m }),
      warn: (m) => log.debug('jsonrpc', { detail: m }),
      info: () => undefined,
      log: () => undefined,
    });
    const progress = new ProgressType<unknown>();
    const rpc: RpcConnection = {
      onRequest: (type, handler) => onTypedRequest(connection, type, handler),
      sendNotification: (type, params) => connection.sendNotification(type, params),
      sendProgress: (token, value) => connection.sendProgress(progress, token, value),
    };
    const binding = bindTokaProtocol(rpc, this.host, () => session, this.options.runtime);
    connection.listen();

    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      log.info('websocket error', { code: err.code, message: err.message });
    });
    ws.once('close', (code: number, reason: Buffer) => {
      this.clients.delete(client);
      this.host.metrics.connections('ws', -1);
      binding.dispose();
      connection.dispose();
      reader.closed();
      log.info('websocket closed', { code, reason: reason.toString('utf8').slice(0, 123) });
    });
  }

  private ping(): void {
    for (const client of this.clients) {
      if (client.ws.readyState !== WebSocket.OPEN) continue;
      if (!client.alive) {
        this.options.logger.info('websocket client missed a pong; terminated', { conn: client.session.id });
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }

  /** Close every connection with 1001 and wait (bounded) for them to go. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.pinger);
    const gone = [...this.clients].map(
      (client) =>
        new Promise<void>((resolve) => {
          if (client.ws.readyState === WebSocket.CLOSED) return resolve();
          client.ws.once('close', () => resolve());
          client.ws.close(WsCloseCodes.GoingAway, 'host shutting down');
          setTimeout(() => client.ws.terminate(), SHUTDOWN_GRACE_MS).unref();
        }),
    );
    await Promise.all(gone);
    this.wss.close();
  }
}

/**
 * Reads one JSON-RPC message per WebSocket message. Malformed input is answered here (the connection
 * stays open): invalid JSON → ParseError, a batch or a non-message → InvalidRequest, both with id null
 * unless the id could be read.
 */
export class WsMessageReader extends AbstractMessageReader implements MessageReader {
  private callback: DataCallback | null = null;

  constructor(
    ws: WebSocket,
    private readonly writer: WsMessageWriter,
  ) {
    super();
    // With binaryType 'nodebuffer' ws hands every message, text or binary, fragmented or not, as one Buffer.
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: RawData) => this.receive(data as Buffer));
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    return Disposable.create(() => {
      this.callback = null;
    });
  }

  closed(): void {
    this.fireClose();
  }

  private receive(data: Buffer): void {
    const text = data.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.reject(null, 'ParseError', 'Parse error: not valid JSON');
    }
    const problem = invalidJsonRpcMessage(parsed);
    if (problem !== null) return this.reject(problem.id, 'InvalidRequest', `invalid request: ${problem.reason}`);
    this.callback?.(parsed as Message);
  }

  private reject(id: string | number | null, name: 'ParseError' | 'InvalidRequest', message: string): void {
    const response = { jsonrpc: '2.0', id, error: { code: ErrorCodes[name], message, data: { name } } };
    void this.writer.write(response as unknown as Message).catch(() => undefined);
  }
}

/**
 * Writes one JSON-RPC message per WebSocket text message. The promise settles on the `ws.send` callback,
 * so a caller that awaits it (subscription delivery) moves at the client's pace. A client with more than
 * `maxBufferedBytes` queued when the next message is written is cut off (1008 "client not reading").
 */
export class WsMessageWriter extends AbstractMessageWriter implements MessageWriter {
  private errors = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly maxBufferedBytes: number,
    private readonly onCutOff: (bufferedBytes: number) => void,
  ) {
    super();
  }

  write(message: Message): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('WebSocket is not open'));
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.maxBufferedBytes) {
      this.onCutOff(buffered);
      return Promise.reject(new Error('client not reading'));
    }
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (err) {
      this.fireError(err, message, ++this.errors);
      return Promise.reject(err as Error);
    }
    return new Promise<void>((resolve, reject) => {
      this.ws.send(text, (err?: Error) => (err ? reject(err) : resolve()));
    });
  }

  end(): void {}
}

// ---- upgrade helpers ---------------------------------------------------------------------------------

function protocolBearer(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  for (const p of header.split(',')) {
    const name = p.trim();
    if (name.startsWith(WS_BEARER_PROTOCOL_PREFIX) && name.length > WS_BEARER_PROTOCOL_PREFIX.length) {
      return name.slice(WS_BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return null;
}

/** Answer an upgrade request without upgrading: a plain HTTP response, then the socket is closed. */
export function writeRawResponse(socket: Duplex, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(text)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
}
