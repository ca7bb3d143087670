/**
 * A client transport of Toka's A2A WebSocket binding (docs/a2a-websocket-binding.md) for the reference SDK's
 * `Client`: one WebSocket per transport, opened on first use with the Bearer token and `A2A-Version` at the
 * upgrade; requests are JSON-RPC with integer ids; a stream's updates are the `StreamUpdate` notifications
 * naming its request, and its end is the response to that request. Errors come out as the SDK's error
 * classes (`fromJsonRpcErrorResponse`), exactly as over the JSON-RPC binding, so callers handle one set.
 *
 * Bounds: frames of at most 1 MiB both ways, updates buffered for a consumer that does not read (the stream
 * is cancelled past them), one connect timeout. Aborting a request's signal rejects it; aborting a stream's
 * sends `CancelStream` (the remote task goes on: cancel it with `CancelTask`).
 */
import {
  A2A_PROTOCOL_VERSION,
  AgentCard,
  CancelTaskRequest,
  DeleteTaskPushNotificationConfigRequest,
  GetTaskPushNotificationConfigRequest,
  GetTaskRequest,
  ListTaskPushNotificationConfigsRequest,
  ListTaskPushNotificationConfigsResponse,
  ListTasksRequest,
  ListTasksResponse,
  Message,
  SendMessageRequest,
  SendMessageResponse,
  StreamResponse,
  SubscribeToTaskRequest,
  Task,
  TaskPushNotificationConfig,
} from '@a2a-js/sdk';
import type { RequestOptions, Transport, TransportFactory } from '@a2a-js/sdk/client';
import { fromJsonRpcErrorResponse } from '@a2a-js/sdk/errors';
import WebSocket, { type RawData } from 'ws';
import { CANCEL_STREAM, STREAM_UPDATE, WEBSOCKET_BINDING, WEBSOCKET_MAX_FRAME_BYTES } from '../../../protocol/a2a.js';

export interface WebSocketTransportOptions {
  /** Bearer credential sent at the upgrade (a capability token of the remote host). */
  token?: string;
  /** Bound on opening the connection, milliseconds. Default 10 s. */
  connectTimeoutMs?: number;
  /** Updates of one stream held for a consumer that has not taken them. Default 1000. */
  maxBufferedUpdates?: number;
}

/** A failure of the connection itself (refused upgrade, closed socket, a bound), not of a method. */
export class A2aConnectionError extends Error {
  override readonly name = 'A2aConnectionError';
  constructor(
    message: string,
    /** HTTP status of a refused upgrade, when there was one. */
    readonly status?: number,
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface StreamSink {
  push(result: unknown): void;
  end(err?: Error): void;
}

export class WebSocketTransport implements Transport {
  private socket: Promise<WebSocket> | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private readonly streams = new Map<number, StreamSink>();

  constructor(
    private readonly url: string,
    private readonly options: WebSocketTransportOptions = {},
  ) {}

  get protocolName(): string {
    return WEBSOCKET_BINDING;
  }

  get protocolVersion(): string {
    return A2A_PROTOCOL_VERSION;
  }

  async getExtendedAgentCard(_params: unknown, options?: RequestOptions): Promise<AgentCard> {
    return AgentCard.fromJSON(await this.call('GetExtendedAgentCard', {}, options));
  }

  async sendMessage(params: SendMessageRequest, options?: RequestOptions): Promise<Message | Task> {
    const payload = SendMessageResponse.fromJSON(await this.call('SendMessage', SendMessageRequest.toJSON(params), options)).payload;
    if (!payload) throw new A2aConnectionError('the SendMessage answer has neither a task nor a message');
    return payload.value;
  }

  sendMessageStream(params: SendMessageRequest, options?: RequestOptions): AsyncGenerator<StreamResponse, void, undefined> {
    return this.stream('SendStreamingMessage', SendMessageRequest.toJSON(params), options);
  }

  resubscribeTask(params: SubscribeToTaskRequest, options?: RequestOptions): AsyncGenerator<StreamResponse, void, undefined> {
    return this.stream('SubscribeToTask', SubscribeToTaskRequest.toJSON(params), options);
  }

  async getTask(params: GetTaskRequest, options?: RequestOptions): Promise<Task> {
    return Task.fromJSON(await this.call('GetTask', GetTaskRequest.toJSON(params), options));
  }

  async cancelTask(params: CancelTaskRequest, options?: RequestOptions): Promise<Task> {
    return Task.fromJSON(await this.call('CancelTask', CancelTaskRequest.toJSON(params), options));
  }

  async listTasks(params: ListTasksRequest, options?: RequestOptions): Promise<ListTasksResponse> {
    return ListTasksResponse.fromJSON(await this.call('ListTasks', ListTasksRequest.toJSON(params), options));
  }

  async createTaskPushNotificationConfig(params: TaskPushNotificationConfig, options?: RequestOptions): Promise<TaskPushNotificationConfig> {
    return TaskPushNotificationConfig.fromJSON(await this.call('CreateTaskPushNotificationConfig', TaskPushNotificationConfig.toJSON(params), options));
  }

  async getTaskPushNotificationConfig(params: GetTaskPushNotificationConfigRequest, options?: RequestOptions): Promise<TaskPushNotificationConfig> {
    return TaskPushNotificationConfig.fromJSON(await this.call('GetTaskPushNotificationConfig', GetTaskPushNotificationConfigRequest.toJSON(params), options));
  }

  async listTaskPushNotificationConfig(params: ListTaskPushNotificationConfigsRequest, options?: RequestOptions): Promise<ListTaskPushNotificationConfigsResponse> {
    return ListTaskPushNotificationConfigsResponse.fromJSON(await this.call('ListTaskPushNotificationConfigs', ListTaskPushNotificationConfigsRequest.toJSON(params), options));
  }

  async deleteTaskPushNotificationConfig(params: DeleteTaskPushNotificationConfigRequest, options?: RequestOptions): Promise<void> {
    await this.call('DeleteTaskPushNotificationConfig', DeleteTaskPushNotificationConfigRequest.toJSON(params), options);
  }

  /** Close the connection; calls in flight fail with `A2aConnectionError`. */
  close(): void {
    const socket = this.socket;
    this.socket = null;
    void socket?.then((ws) => ws.close(1000), () => undefined);
  }

  private connect(): Promise<WebSocket> {
    this.socket ??= new Promise<WebSocket>((resolve, reject) => {
      const headers: Record<string, string> = { 'A2A-Version': A2A_PROTOCOL_VERSION };
      if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
      const ws = new WebSocket(this.url, {
        headers,
        maxPayload: WEBSOCKET_MAX_FRAME_BYTES,
        perMessageDeflate: false,
        handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const refuse = () => reject(refusal(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= REFUSAL_BODY_BYTES) return void chunks.push(c);
          // A refusal body past the bound is not read on (a remote could send forever): refuse with what came.
          res.destroy();
          refuse();
        });
        res.on('end', refuse);
        res.on('error', () => reject(new A2aConnectionError(`the upgrade was refused with HTTP ${res.statusCode}`, res.statusCode)));
      });
      ws.on('error', (err) => reject(new A2aConnectionError(`cannot connect to ${this.url}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
      ws.on('message', (data, isBinary) => this.receive(data, isBinary));
      ws.on('close', (code, reason) => {
        if (this.socket !== null) this.socket = null;
        const err = new A2aConnectionError(`the connection closed (${code}${reason.length > 0 ? ` ${reason.toString('utf8').slice(0, 200)}` : ''})`);
        reject(err);
        for (const waiter of this.waiting.values()) waiter.reject(err);
        this.waiting.clear();
        for (const sink of this.streams.values()) sink.end(err);
        this.streams.clear();
      });
    });
    const opening = this.socket;
    opening.catch(() => {
      if (this.socket === opening) this.socket = null;
    });
    return opening;
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (isBinary) return;
    let message: { id?: unknown; method?: unknown; params?: { id?: unknown; result?: unknown }; result?: unknown; error?: unknown };
    try {
      message = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    if (message.method === STREAM_UPDATE) {
      const id = message.params?.id;
      if (typeof id === 'number') this.streams.get(id)?.push(message.params?.result);
      return;
    }
    if (typeof message.id !== 'number') return;
    const outcome = message.error !== undefined ? fromJsonRpcErrorResponse(message as Parameters<typeof fromJsonRpcErrorResponse>[0]) : undefined;
    const sink = this.streams.get(message.id);
    if (sink) {
      this.streams.delete(message.id);
      return sink.end(outcome);
    }
    const waiter = this.waiting.get(message.id);
    if (!waiter) return;
    this.waiting.delete(message.id);
    if (outcome) waiter.reject(outcome);
    else waiter.resolve(message.result);
  }

  private async send(ws: WebSocket, frame: unknown): Promise<void> {
    const text = JSON.stringify(frame);
    if (Buffer.byteLength(text) > WEBSOCKET_MAX_FRAME_BYTES) throw new A2aConnectionError(`the request is larger than ${WEBSOCKET_MAX_FRAME_BYTES} bytes (the binding's frame bound)`);
    await new Promise<void>((resolve, reject) => ws.send(text, (err) => (err ? reject(new A2aConnectionError(`sending failed: ${err.message}`)) : resolve())));
  }

  private async call(method: string, params: unknown, options?: RequestOptions): Promise<unknown> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const ws = await this.connect();
    const id = this.nextId++;
    const answer = new Promise<unknown>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    const onAbort = () => {
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      waiter?.reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.send(ws, { jsonrpc: '2.0', id, method, params });
      return await answer;
    } finally {
      this.waiting.delete(id);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private async *stream(method: string, params: unknown, options?: RequestOptions): AsyncGenerator<StreamResponse, void, undefined> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const ws = await this.connect();
    const id = this.nextId++;
    const max = this.options.maxBufferedUpdates ?? 1000;
    const queue: unknown[] = [];
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    const cancelRemote = () => {
      if (ws.readyState === WebSocket.OPEN) void this.send(ws, { jsonrpc: '2.0', id: this.nextId++, method: CANCEL_STREAM, params: { id } }).catch(() => undefined);
    };
    this.streams.set(id, {
      push: (result) => {
        if (ended) return;
        if (queue.length >= max) {
          ended = true;
          failure = new A2aConnectionError(`more than ${max} updates waited for the reader (maxBufferedUpdates); the stream was cancelled`);
          this.streams.delete(id);
          cancelRemote();
        } else queue.push(result);
        notify();
      },
      end: (err) => {
        ended = true;
        failure ??= err;
        notify();
      },
    });
    const onAbort = () => {
      if (ended) return;
      ended = true;
      failure = abortError(signal!);
      this.streams.delete(id);
      cancelRemote();
      notify();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.send(ws, { jsonrpc: '2.0', id, method, params });
      for (;;) {
        if (queue.length > 0) {
          yield StreamResponse.fromJSON(queue.shift());
          continue;
        }
        if (ended) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      if (failure) throw failure;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (this.streams.delete(id)) cancelRemote();
    }
  }
}

/** Creates `WebSocketTransport`s for the SDK's `ClientFactory` (matched by the binding URI on the card). */
export class WebSocketTransportFactory implements TransportFactory {
  constructor(private readonly options: WebSocketTransportOptions = {}) {}

  get protocolName(): string {
    return WEBSOCKET_BINDING;
  }

  async create(url: string): Promise<Transport> {
    return new WebSocketTransport(url, this.options);
  }
}

/** Most of a refused upgrade's body read for its error. */
const REFUSAL_BODY_BYTES = 64 * 1024;

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('the request was aborted', 'AbortError');
}

/** The error of a refused upgrade: the body's `{error: {name, message}}` when the server sent one. */
function refusal(status: number, body: string): A2aConnectionError {
  let detail = '';
  try {
    const parsed = JSON.parse(body) as { error?: { name?: unknown; message?: unknown } };
    if (typeof parsed.error?.name === 'string') detail = `: ${parsed.error.name}${typeof parsed.error.message === 'string' ? ` (${parsed.error.message.slice(0, 300)})` : ''}`;
  } catch {
    detail = '';
  }
  return new A2aConnectionError(`the WebSocket upgrade was refused with HTTP ${status}${detail}`, status);
}
