/**
 * The server side of one MCP Streamable HTTP session, written on node:http (the SDK's transport converts
 * every request and response to web `Request`/`Response` objects and streams, which cost more than the MCP
 * work of a cheap call). It implements the SDK's `Transport`, so the SDK `Server` runs on it unchanged.
 *
 * The caller (http.ts) has authenticated the request, found the session and parsed the body; this class
 * answers by the Streamable HTTP rules of the 2025-11-25 revision (and the older ones clients still send):
 * - POST of notifications and responses only: delivered, answered 202.
 * - POST with requests: answered when every request in it is answered. The answer is a JSON body when the
 *   server has nothing else to say first; it becomes an SSE stream the moment the server sends a message
 *   tied to one of those requests before the last answer (progress, logging, a sampling request): held
 *   answers go out first, then the stream carries everything up to the last answer and ends. One
 *   mechanism, so a cheap call costs one JSON write and a streaming one streams.
 * - GET: the session's standalone SSE stream (server messages tied to no request), one at a time (409); with
 *   `Last-Event-ID`, the resumption of any of the session's streams from its event store.
 * - DELETE: ends the session.
 * SSE events carry ids from the event store when the client takes resumable streams (protocol
 * ≥ 2025-11-25: a priming event with an id and no data starts each stream), so a client that lost a stream
 * resumes it with GET and `Last-Event-ID`.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  DEFAULT_NEGOTIATED_PROTOCOL_VERSION,
  LATEST_PROTOCOL_VERSION,
  ErrorCode,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { sendJsonRpcError, writeStream } from '../http-request.js';
import { invalidJsonRpcMessage } from '../jsonrpc-frames.js';
import type { WindowEventStore } from './event-store.js';
import { outgoing } from './result-bound.js';

/** Most messages in one POSTed batch (batches belong to revisions before 2025-06-18). */
export const MAX_BATCH = 100;
/** The event-store stream of the standalone GET stream. */
const STANDALONE = 'standalone';
/** The first revision whose clients take a priming event (an id with empty data). */
const PRIMING_REVISION = '2025-11-25';

/** A POST with requests, until all of them are answered. */
interface Exchange {
  readonly streamId: string;
  /** Its requests not answered yet. */
  readonly pending: Set<RequestId>;
  /** Answers held for the JSON body while it has not turned into a stream. */
  readonly answers: string[];
  /** The response to write to; null once the client has gone (a stream's messages then wait in the store). */
  res: ServerResponse | null;
  /** Whether the answer has become an SSE stream. */
  streaming: boolean;
  /** Whether its events get ids (the client can resume it). */
  readonly resumable: boolean;
}

export interface NodeHttpTransportOptions {
  sessionId: string;
  eventStore: WindowEventStore;
  /** Largest answer (JSON bytes) sent; a larger result is answered with LimitExceeded (result-bound.ts). */
  maxResultBytes: number;
  /** Called when the client ends the session with DELETE. */
  onSessionClosed?: () => void;
}

export class NodeHttpTransport implements Transport {
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  readonly sessionId: string;

  private readonly store: WindowEventStore;
  private readonly onSessionClosed?: () => void;
  private readonly maxResultBytes: number;
  private readonly byRequest = new Map<RequestId, Exchange>();
  /** Open SSE streams by event-store stream id: a POST's turned into a stream, the standalone GET stream. */
  private readonly streams = new Map<string, ServerResponse>();
  private initializedFlag = false;
  private closed = false;
  private nextStream = 0;
  private protocolVersion = DEFAULT_NEGOTIATED_PROTOCOL_VERSION;

  constructor(options: NodeHttpTransportOptions) {
    this.sessionId = options.sessionId;
    this.store = options.eventStore;
    this.onSessionClosed = options.onSessionClosed;
    this.maxResultBytes = options.maxResultBytes;
  }

  /** Whether an `initialize` has been accepted on this session. */
  get initialized(): boolean {
    return this.initializedFlag;
  }

  async start(): Promise<void> {}

  /** Answer a POST whose body parsed as `body`. */
  handlePost(headers: IncomingHttpHeaders, res: ServerResponse, body: unknown): void {
    if (this.closed) return this.refuse(res, 404, ErrorCode.ConnectionClosed, 'Session not found', 'UnknownEntity');
    const accept = headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return this.refuse(res, 406, ErrorCode.InvalidRequest, 'Not Acceptable: the client must accept application/json and text/event-stream', 'NotAcceptable');
    }
    if (!(headers['content-type'] ?? '').includes('application/json')) {
      return this.refuse(res, 415, ErrorCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json', 'UnsupportedMediaType');
    }
    const messages = (Array.isArray(body) ? body : [body]) as JSONRPCMessage[];
    if (messages.length === 0 || messages.length > MAX_BATCH) {
      return this.refuse(res, 400, ErrorCode.InvalidRequest, `Invalid Request: a batch holds 1 to ${MAX_BATCH} messages`, 'InvalidRequest');
    }
    for (const message of messages) {
      const invalid = invalidJsonRpcMessage(message);
      if (invalid) return this.refuse(res, 400, ErrorCode.InvalidRequest, `Invalid Request: ${invalid.reason}`, 'InvalidRequest', invalid.id);
    }
    const initialize = messages.find((m) => 'method' in m && m.method === 'initialize');
    let version: string;
    if (initialize) {
      if (this.initializedFlag) return this.refuse(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: the session is already initialized', 'InvalidRequest');
      if (messages.length > 1) return this.refuse(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: initialize must be sent alone', 'InvalidRequest');
      this.initializedFlag = true;
      const requested = (initialize as { params?: { protocolVersion?: unknown } }).params?.protocolVersion;
      // The revision the SDK `Server` answers with: the requested one when supported, else its newest.
      version = typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
      this.protocolVersion = version;
    } else {
      const refused = this.versionRefusal(headers);
      if (refused) return this.refuse(res, 400, ErrorCode.InvalidRequest, refused, 'UnsupportedProtocolVersion');
      version = headerVersion(headers) ?? this.protocolVersion;
    }

    const requests = messages.filter((m) => 'method' in m && 'id' in m) as (JSONRPCMessage & { id: RequestId })[];
    const extra: MessageExtraInfo = { requestInfo: { headers } };
    if (requests.length === 0) {
      res.writeHead(202, { 'mcp-session-id': this.sessionId }).end();
      for (const message of messages) this.onmessage?.(message, extra);
      return;
    }
    const exchange: Exchange = {
      streamId: `post-${this.nextStream++}`,
      pending: new Set(requests.map((r) => r.id)),
      answers: [],
      res,
      streaming: false,
      resumable: version >= PRIMING_REVISION,
    };
    for (const request of requests) this.byRequest.set(request.id, exchange);
    res.once('close', () => this.gone(exchange, res));
    for (const message of messages) this.onmessage?.(message, extra);
  }

  /** Answer a GET: the standalone stream, or the resumption of a stream after `Last-Event-ID`. */
  handleGet(headers: IncomingHttpHeaders, res: ServerResponse): void {
    if (this.closed) return this.refuse(res, 404, ErrorCode.ConnectionClosed, 'Session not found', 'UnknownEntity');
    if (!(headers.accept ?? '').includes('text/event-stream')) {
      return this.refuse(res, 406, ErrorCode.InvalidRequest, 'Not Acceptable: the client must accept text/event-stream', 'NotAcceptable');
    }
    const refused = this.versionRefusal(headers);
    if (refused) return this.refuse(res, 400, ErrorCode.InvalidRequest, refused, 'UnsupportedProtocolVersion');
    const lastEventId = headers['last-event-id'];
    const streamId = typeof lastEventId === 'string' ? this.store.streamOf(lastEventId) : STANDALONE;
    if (streamId === undefined) return this.refuse(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Last-Event-ID names no stream of this session', 'InvalidRequest');
    if (this.streams.has(streamId)) {
      return this.refuse(res, 409, ErrorCode.InvalidRequest, 'Conflict: this stream is already open on another connection', 'Conflict');
    }
    this.openStream(res);
    this.streams.set(streamId, res);
    res.once('close', () => {
      if (this.streams.get(streamId) === res) this.streams.delete(streamId);
    });
    if (typeof lastEventId === 'string') {
      for (const event of this.store.after(lastEventId)) writeStream(res, sseEvent(event.data, event.id));
      // A POST's stream whose requests are all answered has nothing more to carry.
      if (streamId !== STANDALONE && ![...this.byRequest.values()].some((e) => e.streamId === streamId)) {
        this.streams.delete(streamId);
        res.end();
      }
    } else if ((headerVersion(headers) ?? this.protocolVersion) >= PRIMING_REVISION) {
      writeStream(res, sseEvent('', this.store.store(STANDALONE, '')));
    }
  }

  /** Answer a DELETE: the session ends. */
  async handleDelete(headers: IncomingHttpHeaders, res: ServerResponse): Promise<void> {
    const refused = this.versionRefusal(headers);
    if (refused) return this.refuse(res, 400, ErrorCode.InvalidRequest, refused, 'UnsupportedProtocolVersion');
    this.onSessionClosed?.();
    res.writeHead(200, { 'mcp-session-id': this.sessionId }).end();
    await this.close();
  }

  /** Synchronous, so messages are written in the order they are sent. */
  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const isAnswer = 'result' in message || 'error' in message;
    const id = isAnswer ? (message as { id: RequestId }).id : options?.relatedRequestId;
    if (id === undefined) {
      const text = JSON.stringify(message);
      const eventId = this.store.store(STANDALONE, text);
      const stream = this.streams.get(STANDALONE);
      if (stream) writeStream(stream, sseEvent(text, eventId));
      return;
    }
    const exchange = this.byRequest.get(id);
    if (!exchange) {
      if (this.closed) return;
      throw new Error(`no open request ${String(id)} on MCP session ${this.sessionId}`);
    }
    // An answer is bounded and normalised here (result-bound.ts), serialised once.
    const text = isAnswer ? outgoing(message, this.maxResultBytes).text : JSON.stringify(message);
    if (isAnswer) {
      exchange.pending.delete(id);
      this.byRequest.delete(id);
    }
    if (!exchange.streaming) {
      if (isAnswer) {
        exchange.answers.push(text);
        if (exchange.pending.size === 0) this.answerJson(exchange);
        return;
      }
      this.startStreaming(exchange);
    }
    this.emit(exchange, text);
    if (exchange.pending.size === 0) this.finish(exchange);
  }

  /**
   * Request `id` ends without an answer (the client cancelled it, so none is sent): its exchange stops waiting
   * for it, and once nothing else is pending its POST ends (202 with no body, or the end of its stream) instead
   * of staying open, and held, until the session ends.
   */
  settle(id: RequestId): void {
    const exchange = this.byRequest.get(id);
    if (!exchange) return;
    exchange.pending.delete(id);
    this.byRequest.delete(id);
    if (exchange.pending.size > 0) return;
    if (exchange.streaming) this.finish(exchange);
    else this.answerJson(exchange);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const res of this.streams.values()) res.end();
    for (const exchange of new Set(this.byRequest.values())) exchange.res?.end();
    this.streams.clear();
    this.byRequest.clear();
    this.onclose?.();
  }

  /** The JSON body of an exchange whose requests are all settled and that never streamed (202 when none is answered). */
  private answerJson(exchange: Exchange): void {
    const res = exchange.res;
    if (!res) return;
    if (exchange.answers.length === 0) {
      res.writeHead(202, { 'mcp-session-id': this.sessionId }).end();
      return;
    }
    const body = exchange.answers.length === 1 ? exchange.answers[0] : `[${exchange.answers.join(',')}]`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'mcp-session-id': this.sessionId });
    res.end(body);
  }

  /** Turn an exchange's answer into an SSE stream: headers, priming event, the answers held so far. */
  private startStreaming(exchange: Exchange): void {
    exchange.streaming = true;
    const res = exchange.res;
    if (res) {
      this.openStream(res);
      this.streams.set(exchange.streamId, res);
    }
    if (exchange.resumable && res) writeStream(res, sseEvent('', this.store.store(exchange.streamId, '')));
    for (const text of exchange.answers.splice(0)) this.emit(exchange, text);
  }

  /** One event on an exchange's stream, kept in the store when the stream is resumable. */
  private emit(exchange: Exchange, text: string): void {
    const eventId = exchange.resumable ? this.store.store(exchange.streamId, text) : undefined;
    const stream = this.streams.get(exchange.streamId);
    if (stream) writeStream(stream, sseEvent(text, eventId));
  }

  /** The last answer of a streaming exchange is out: its stream ends. */
  private finish(exchange: Exchange): void {
    const res = this.streams.get(exchange.streamId);
    this.streams.delete(exchange.streamId);
    res?.end();
  }

  /** The client closed the connection of an exchange: what is still to come waits in the store (if resumable). */
  private gone(exchange: Exchange, res: ServerResponse): void {
    if (exchange.res === res) exchange.res = null;
    if (this.streams.get(exchange.streamId) === res) this.streams.delete(exchange.streamId);
  }

  private openStream(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'mcp-session-id': this.sessionId,
    });
    res.flushHeaders();
  }

  /** Why the request's `MCP-Protocol-Version` cannot be served, or null. */
  private versionRefusal(headers: IncomingHttpHeaders): string | null {
    const version = headerVersion(headers);
    if (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return null;
    return `Bad Request: unsupported protocol version ${version} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`;
  }

  private refuse(res: ServerResponse, status: number, code: number, message: string, name: string, id: RequestId | null = null): void {
    sendJsonRpcError(res, status, { code, message, data: { name } }, { id, headers: { 'mcp-session-id': this.sessionId } });
  }
}

function headerVersion(headers: IncomingHttpHeaders): string | undefined {
  const version = headers['mcp-protocol-version'];
  return typeof version === 'string' ? version : undefined;
}

/** One SSE event; an empty `data` is a priming event that only carries its id. */
function sseEvent(data: string, id?: string): string {
  return `${data ? 'event: message\n' : ''}${id === undefined ? '' : `id: ${id}\n`}data: ${data}\n\n`;
}
