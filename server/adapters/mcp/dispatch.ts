/**
 * The request path of one MCP session. The SDK's `Server` runs every request through its `Protocol`: the whole
 * request parsed with its zod schema (tools/call twice, and its result validated once more), an
 * `AbortController` and a closure-laden context made before the handler runs, three promise hops after it —
 * more than the work of a cheap tool call. Every method Toka serves (tools, resources, prompts, completion,
 * subscriptions, the log level) is dispatched here instead, straight to its handler; the SDK `Server` keeps
 * what is its own: `initialize`, `ping`, the client's answers to server-to-client requests (sampling,
 * elicitation, roots: `server.createMessage` and the like, sent with a request's id as `relatedRequestId`) and
 * the notifications it handles. Both revisions take this path: a 2025 session, and each 2026-07-28 request
 * served on a server of its own (modern.ts).
 *
 * Per request, as the SDK's `Protocol` does:
 * - params are decoded with the SDK's params schema of the method; a mismatch is InvalidParams (-32602)
 *   naming the fields (the SDK answered it with a bare InternalError);
 * - `notifications/cancelled` naming an open request aborts its signal, and the request is not answered
 *   (the transport is told, `settle`, so an HTTP POST waiting for it ends); the session closing aborts every
 *   open request;
 * - a thrown `McpError` is the JSON-RPC error (code, message, data); anything else is InternalError with its
 *   message (the transport normalises both: errors.ts `wireMessage`, and bounds results: result-bound.ts);
 * - notifications of a request (progress, log messages) go with it (`relatedRequestId`), so a Streamable
 *   HTTP POST turns into a stream for them;
 * - task augmentation (`params.task`) is ignored: Toka declares no tasks capability, and a receiver that does
 *   not processes the request normally.
 * A request's `AbortSignal` is made when its handler first reads it (most never do).
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type MessageExtraInfo,
  type ProgressToken,
  type RequestId,
  type ServerNotification,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';

/** What a handler gets of its request besides the params. */
export interface RequestExtra {
  readonly requestId: RequestId;
  /** Aborted when the client cancels the request (`notifications/cancelled`) or the session closes. */
  readonly signal: AbortSignal;
  /** The caller's `_meta.progressToken`, when it asked for progress. */
  readonly progressToken: ProgressToken | undefined;
  /** Send a notification tied to this request; dropped once the request is cancelled or the session closed. */
  sendNotification(notification: ServerNotification): Promise<void>;
}

/** A request handler: its decoded params and the request; returns the result or throws an `McpError`. */
export type RequestHandler<P> = (params: P, extra: RequestExtra) => Promise<Record<string, unknown>>;

/** A transport that can be told a request ends without an answer (http-transport.ts: its POST can then end). */
interface SettlingTransport extends Transport {
  settle?(id: RequestId): void;
}

interface Route {
  params: z.ZodType;
  handler: RequestHandler<never>;
}

export class RequestDispatcher {
  private readonly routes = new Map<string, Route>();
  private readonly open = new Map<RequestId, OpenRequest>();
  private transport: SettlingTransport | undefined;
  /** Where a failure to send an answer is reported (the session's error log). */
  onerror?: (error: Error) => void;

  /** Serve `method`: its params decoded with `params` (a missing `params` is `{}`), answered by `handler`. */
  handle<S extends z.ZodType>(method: string, params: S, handler: RequestHandler<z.output<S>>): void {
    if (this.routes.has(method)) throw new Error(`MCP method ${method} already has a handler`);
    this.routes.set(method, { params, handler: handler as RequestHandler<never> });
  }

  /**
   * The transport to connect the SDK `Server` to in place of `inner`: incoming requests for a method served
   * here, and cancellations of them, are dispatched here; every other message goes on to the SDK `Server`.
   */
  wrap(inner: SettlingTransport): Transport {
    this.transport = inner;
    const take = (message: JSONRPCMessage) => this.take(message);
    const abortAll = () => this.abortAll();
    return {
      start: () => inner.start(),
      close: () => inner.close(),
      send: (message: JSONRPCMessage, options?: TransportSendOptions) => inner.send(message, options),
      get sessionId() {
        return inner.sessionId;
      },
      set onmessage(handler: ((message: JSONRPCMessage, extra?: MessageExtraInfo) => void) | undefined) {
        inner.onmessage = handler && ((message, extra) => take(message) || handler(message, extra));
      },
      set onclose(handler: (() => void) | undefined) {
        inner.onclose = () => {
          abortAll();
          handler?.();
        };
      },
      set onerror(handler: ((error: Error) => void) | undefined) {
        inner.onerror = handler;
      },
    };
  }

  /** Dispatch `message` when it is ours (a request for a served method, or the cancellation of one); else false. */
  private take(message: JSONRPCMessage): boolean {
    if (!('method' in message)) return false;
    if ('id' in message) {
      const route = this.routes.get(message.method);
      if (!route) return false;
      void this.run(route, message as JSONRPCRequest);
      return true;
    }
    if (message.method !== 'notifications/cancelled') return false;
    const params = message.params as { requestId?: unknown; reason?: unknown } | undefined;
    const id = params?.requestId;
    const request = typeof id === 'string' || typeof id === 'number' ? this.open.get(id) : undefined;
    if (!request) return false;
    request.abort(params?.reason);
    return true;
  }

  private async run(route: Route, message: JSONRPCRequest): Promise<void> {
    const { id } = message;
    const transport = this.transport!;
    const decoded = route.params.safeParse(message.params ?? {});
    if (!decoded.success) {
      const where = decoded.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(params)'}: ${i.message}`).join('; ');
      return this.answer(transport, {
        jsonrpc: '2.0',
        id,
        error: { code: ErrorCode.InvalidParams, message: `Invalid params for ${message.method}: ${where}`, data: { name: 'InvalidParams' } },
      });
    }
    const token = (message.params?._meta as { progressToken?: ProgressToken } | undefined)?.progressToken;
    const request = new OpenRequest(id, token, transport);
    this.open.set(id, request);
    let answer: JSONRPCMessage;
    try {
      answer = { jsonrpc: '2.0', id, result: await route.handler(decoded.data as never, request) };
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown; data?: unknown };
      const code = Number.isSafeInteger(e?.code) ? (e.code as number) : ErrorCode.InternalError;
      const text = typeof e?.message === 'string' ? e.message : 'Internal error';
      answer = { jsonrpc: '2.0', id, error: { code, message: text, ...(e?.data !== undefined ? { data: e.data } : {}) } };
    } finally {
      if (this.open.get(id) === request) this.open.delete(id);
    }
    if (!request.aborted) return this.answer(transport, answer);
    transport.settle?.(id);
  }

  private answer(transport: Transport, answer: JSONRPCMessage): Promise<void> {
    return transport.send(answer).catch((err: unknown) => this.onerror?.(err instanceof Error ? err : new Error(String(err))));
  }

  private abortAll(): void {
    for (const request of this.open.values()) request.abort(undefined);
    this.open.clear();
  }
}

/** One request being answered. */
class OpenRequest implements RequestExtra {
  aborted = false;
  private controller: AbortController | undefined;
  private reason: unknown;

  constructor(
    readonly requestId: RequestId,
    readonly progressToken: ProgressToken | undefined,
    private readonly transport: Transport,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  async sendNotification(notification: ServerNotification): Promise<void> {
    if (this.aborted) return;
    await this.transport.send({ jsonrpc: '2.0', ...notification }, { relatedRequestId: this.requestId });
  }
}
