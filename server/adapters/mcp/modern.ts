/**
 * MCP 2026-07-28: stateless. No `initialize` and no session: every request carries its protocol version,
 * client capabilities (and client info) in `params._meta`, and is answered on its own. On Streamable HTTP it
 * also carries its method (and tool, prompt or resource) in the `Mcp-Method`/`Mcp-Name` headers and is
 * answered on its own POST: http.ts routes here a POST without `mcp-session-id` whose `MCP-Protocol-Version`
 * header is not a 2025-era version. On a stream connection (stdio.ts) a request whose `_meta` names this
 * revision, or `server/discover`, is answered here, next to the connection's 2025 session.
 *
 * Each request runs on a server built for it from the same registry and handlers as a 2025 session
 * (server.ts), bound to the caller's verified token as a session is, and closed with the answer. On top of
 * what the handlers return, this revision's wire:
 * - `server/discover`: supported versions, capabilities, instructions; `serverInfo` in every result's `_meta`;
 * - `resultType` on every result, `ttlMs`/`cacheScope` caching hints on listings and reads;
 * - `input_required` results in place of server-to-client requests (input-rounds.ts);
 * - log messages only when the request's `_meta` sets a `logLevel`;
 * - errors: envelope problems are InvalidParams (400), a header that disagrees with the body HeaderMismatch
 *   (-32020, 400), an unsupported version UnsupportedProtocolVersion (-32022, 400, with the supported list),
 *   a missing client capability -32021 (400), a method this revision does not have (the 2025 lifecycle
 *   methods included) -32601 (404); an unknown resource is InvalidParams with its `uri` (SEP-2164).
 *
 * Bounds: a caller has at most `maxInFlight` requests of this revision open at once (429 with Retry-After
 * beyond); the body, result and rate bounds are the 2025 ones.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  LoggingLevelSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type LoggingLevel,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { TOKA_VERSION } from '../../host/version.js';
import { retryAfterSeconds, writeStream } from '../http-request.js';
import { invalidJsonRpcMessage } from '../jsonrpc-frames.js';
import type { LogRecord } from '../../../protocol/events.js';
import { HostError } from '../../host/errors.js';
import type { Subscription } from '../../store/event-log.js';
import { RESOURCE_NOT_FOUND } from './errors.js';
import { resourceUpdateTest } from './resource-updates.js';
import { InputRequired, InputRounds, MISSING_CLIENT_CAPABILITY, type RequestStateSigner } from './input-rounds.js';
import type { McpRegistry } from './registry.js';
import { outgoing } from './result-bound.js';
import { MCP_DEFAULTS, createMcpSession, type McpServerOptions } from './server.js';

/** The stateless revisions Toka serves. */
export const MODERN_VERSIONS = ['2026-07-28'] as const;
/** Every revision Toka serves, newest first (what `server/discover` and the version error list). */
export const ALL_VERSIONS: readonly string[] = [...MODERN_VERSIONS, ...SUPPORTED_PROTOCOL_VERSIONS];

export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

const LISTEN = 'subscriptions/listen';

export const HEADER_MISMATCH = -32020;
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

/** The methods this revision has, as served by the per-request server (discovery is answered here). */
const SERVED = new Set([
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
  'completion/complete',
]);
/** The methods whose results are listings or reads: they carry caching hints. */
const CACHEABLE = new Set(['tools/list', 'resources/list', 'resources/templates/list', 'prompts/list', 'resources/read']);
/**
 * How long a client may reuse a listing: the registry is fixed for the life of the process, and what it
 * shows depends on the token, so the hint is private. A resource is world state that changes with any
 * event: 0 (always re-read).
 */
const LIST_TTL_MS = 5 * 60_000;
/** The body field each name-carrying method mirrors in `Mcp-Name`. */
const NAME_FIELD = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
]);

const SERVER_INFO = { name: 'toka', version: TOKA_VERSION };
const LEVELS = new Set<string>(LoggingLevelSchema.options);

/** Whether a session-less POST belongs to the stateless revisions: its version header names no 2025-era one. */
export function isModernRequest(headers: IncomingHttpHeaders): boolean {
  const version = headers['mcp-protocol-version'];
  return typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version);
}

/**
 * Whether a message on a stream connection (stdio, `<data>/mcp.sock`) is a 2026-07-28 request: discovery, or
 * a request whose `_meta` names a version that is not 2025-era. Everything else belongs to the connection's
 * 2025 session.
 */
export function isModernMessage(message: JSONRPCMessage): message is JSONRPCRequest {
  if (!('method' in message) || !('id' in message)) return false;
  if (message.method === 'server/discover') return true;
  const version = (message.params?._meta as Record<string, unknown> | undefined)?.[META.protocolVersion];
  return typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version);
}

/** The sink of one request on a stream connection: every message is a line of its output. */
export function lineSink(output: Transport): ModernSink {
  const over: (() => void)[] = [];
  return {
    notify: (message) => void output.send(message),
    answer: (message) => void output.send(message).finally(() => over.splice(0).forEach((fn) => fn())),
    done: (fn) => void over.push(fn),
  };
}

export interface ModernOptions extends McpServerOptions {
  registry: McpRegistry;
  logger: Logger;
  signer: RequestStateSigner;
  /** Most requests of this revision one caller (vault + subject) has open at once. */
  maxInFlight: number;
  maxResultBytes?: number;
}

/**
 * Where one 2026-07-28 request's messages go: on HTTP its POST's response (a JSON body, or an SSE stream
 * once a notification comes first); on stdio the connection's output.
 */
export interface ModernSink {
  /** A notification tied to the request (progress, a log message). */
  notify(message: JSONRPCMessage): void;
  /**
   * The request's answer, bounded and serialised on the way out (result-bound.ts `outgoing`); `status` is the
   * HTTP status this revision gives it, `headers` extra HTTP headers.
   */
  answer(message: JSONRPCMessage, status: number, headers?: Record<string, string>): void;
  /** Call `fn` once the request is over (answered, or its client gone). */
  done(fn: () => void): void;
}

/** Serves 2026-07-28 requests; one per HTTP mount, one per stdio connection. */
export class ModernEndpoint {
  private readonly inFlight = new Map<string, number>();
  /** What ends each open `subscriptions/listen` stream. */
  private readonly listening = new Set<() => void>();

  constructor(
    private readonly host: Host,
    private readonly options: ModernOptions,
  ) {}

  /** The capabilities discovery advertises: what the per-request server handles on this revision. */
  static readonly capabilities = { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} };

  /** Answer one POST of `caller` whose body parsed as `body`. */
  handlePost(headers: IncomingHttpHeaders, res: ServerResponse, caller: Session, body: unknown): Promise<void> {
    const invalid = invalidJsonRpcMessage(body);
    const sink = httpSink(res, this.options.maxResultBytes ?? MCP_DEFAULTS.maxResultBytes);
    if (invalid) return Promise.resolve(fail(sink, 400, invalid.id, ErrorCode.InvalidRequest, `Invalid Request: ${invalid.reason}`, 'InvalidRequest'));
    const message = body as JSONRPCMessage;
    if (!('method' in message) || !('id' in message)) {
      // Notifications carry nothing a stateless server keeps; responses have no request to answer here.
      if ('method' in message) return Promise.resolve(void res.writeHead(202).end());
      return Promise.resolve(fail(sink, 400, null, ErrorCode.InvalidRequest, 'Invalid Request: this revision takes no responses from the client', 'InvalidRequest'));
    }
    return this.request(message as JSONRPCRequest, caller, sink, headers);
  }

  /**
   * Answer one request of `caller` on `sink`. `headers` are the HTTP request's (their Mcp-Method, Mcp-Name
   * and MCP-Protocol-Version must agree with the body); stdio has none.
   */
  async request(message: JSONRPCRequest, caller: Session, sink: ModernSink, headers?: IncomingHttpHeaders): Promise<void> {
    const { id, method } = message;
    const params = (message.params ?? {}) as Record<string, unknown>;
    const refusal = envelopeRefusal(headers, method, params);
    if (refusal) return fail(sink, 400, id, refusal.code, refusal.message, refusal.name, refusal.data);
    if (method === 'server/discover') {
      // Charged like a 2025 `initialize`: discovery re-verifies the token and counts against the rate limit.
      try {
        await this.host.check(caller);
      } catch (err) {
        return refuseHost(sink, id, err);
      }
      return sink.answer({ jsonrpc: '2.0', id, result: decorate(this.discover(), 'complete') }, 200);
    }
    if (!SERVED.has(method) && method !== LISTEN) {
      return fail(sink, 404, id, ErrorCode.MethodNotFound, `Method not found: ${method} (protocol revision ${MODERN_VERSIONS[0]})`, 'MethodNotFound');
    }

    const who = JSON.stringify([caller.claims.vault, caller.principal]);
    const open = this.inFlight.get(who) ?? 0;
    if (open >= this.options.maxInFlight) {
      return fail(sink, 429, id, -31906, `more than ${this.options.maxInFlight} MCP requests in flight for this subject`, 'RateLimited', { limit: 'mcp.maxInFlight', max: this.options.maxInFlight }, { 'retry-after': '1' });
    }
    this.inFlight.set(who, open + 1);
    sink.done(() => {
      const left = (this.inFlight.get(who) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(who);
      else this.inFlight.set(who, left);
    });

    if (method === LISTEN) return this.listen(id, params, caller, sink);

    const target = String(params[NAME_FIELD.get(method) ?? ''] ?? '');
    const binding = { session: caller, method, target };
    let answers = new Map<string, unknown>();
    try {
      if (params.requestState !== undefined) answers = this.options.signer.verify(binding, params.requestState);
    } catch (err) {
      const e = err as { code: number; message: string };
      return fail(sink, 400, id, e.code, e.message, 'InvalidParams');
    }
    const responses = params.inputResponses;
    if (responses !== undefined) {
      if (typeof responses !== 'object' || responses === null || Array.isArray(responses)) {
        return fail(sink, 400, id, ErrorCode.InvalidParams, 'Invalid params: inputResponses must be an object', 'InvalidParams');
      }
      for (const [key, value] of Object.entries(responses)) answers.set(key, value);
    }
    const meta = params._meta as Record<string, unknown>;
    const capabilities = meta[META.clientCapabilities] as Record<string, unknown>;
    const rounds = new InputRounds(answers, capabilities);
    const logLevel = (meta[META.logLevel] as LoggingLevel | undefined) ?? null;
    const mcp = createMcpSession(this.options.registry, this.host, caller, this.options, { logLevel, rounds });
    const exchange = new ModernExchange(sink, id, method, (result) => {
      if (!rounds.pending.size) return result;
      return {
        resultType: 'input_required',
        inputRequests: Object.fromEntries(rounds.pending),
        requestState: this.options.signer.sign(binding, rounds.known()),
      };
    });
    sink.done(() => void mcp.close());
    await mcp.connect(exchange, { error: (err) => this.options.logger.debug('MCP request error', { err }) });
    exchange.deliver(message);
  }

  /**
   * `subscriptions/listen`: a stream of the resource updates the client asked for (`resourceSubscriptions`;
   * Toka's listings never change, so no list-changed notifications are honoured). The acknowledgement says
   * which URIs are watched (those a resource or template serves, at most `maxSubscriptions`); each record of
   * the host log that touches one becomes `notifications/resources/updated`. Every message carries the
   * listen request's id as `subscriptionId`. The stream lasts until the client goes, the host subscription
   * ends (the token expired or was revoked) or the endpoint closes; then its result ends it.
   */
  private async listen(id: RequestId, params: Record<string, unknown>, caller: Session, sink: ModernSink): Promise<void> {
    const filter = params.notifications;
    if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
      return fail(sink, 400, id, ErrorCode.InvalidParams, 'Invalid params: notifications (a subscription filter) is required', 'InvalidParams');
    }
    const uris = (filter as { resourceSubscriptions?: unknown }).resourceSubscriptions ?? [];
    const max = this.options.maxSubscriptions ?? MCP_DEFAULTS.maxSubscriptions;
    if (!Array.isArray(uris) || uris.some((u) => typeof u !== 'string') || uris.length > max) {
      return fail(sink, 400, id, ErrorCode.InvalidParams, `Invalid params: resourceSubscriptions must be at most ${max} URIs`, 'InvalidParams');
    }
    const watched = new Map<string, (record: LogRecord) => boolean>();
    const honoured: string[] = [];
    for (const uri of uris as string[]) {
      const test = resourceUpdateTest(this.options.registry, uri);
      if (test === undefined) continue;
      honoured.push(uri);
      if (test) watched.set(uri, test);
    }
    const tag = { [META.subscriptionId]: id };
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      sink.answer({ jsonrpc: '2.0', id, result: decorate({ _meta: tag }, 'complete') }, 200);
    };
    let subscription: Promise<Subscription> | undefined;
    try {
      await this.host.check(caller);
      if (watched.size > 0) {
        subscription = this.host.subscribe(caller, { afterSeq: this.host.health().seq }, {
          onRecord: (record) => {
            if (ended) return;
            for (const [uri, touches] of watched) {
              if (touches(record)) sink.notify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri, _meta: tag } });
            }
          },
          onEnd: end,
        });
        await subscription;
      }
    } catch (err) {
      return refuseHost(sink, id, err);
    }
    sink.notify({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: { resourceSubscriptions: honoured }, _meta: tag },
    });
    this.listening.add(end);
    sink.done(() => {
      ended = true;
      this.listening.delete(end);
      void subscription?.then((s) => s.unsubscribe(), () => undefined);
    });
  }

  /** End every open `subscriptions/listen` stream with its result (before the HTTP server closes). */
  close(): void {
    for (const end of [...this.listening]) end();
  }

  private discover(): Record<string, unknown> {
    return {
      supportedVersions: ALL_VERSIONS,
      capabilities: ModernEndpoint.capabilities,
      instructions: INSTRUCTIONS,
      cacheScope: 'public',
      ttlMs: LIST_TTL_MS,
    };
  }
}

const INSTRUCTIONS =
  "Toka is a capability-secured agent kernel. Tools act on the world state of your token's vault; " +
  'read toka://state first, and use the write_agent_spec prompt before spawning agents.';

/** Why the request's envelope (headers and `_meta`) cannot be served, or null. */
function envelopeRefusal(
  headers: IncomingHttpHeaders | undefined,
  method: string,
  params: Record<string, unknown>,
): { code: number; message: string; name: string; data?: Record<string, unknown> } | null {
  const mismatch = (message: string) => ({ code: HEADER_MISMATCH, message: `Header mismatch: ${message}`, name: 'HeaderMismatch' });
  const invalid = (message: string) => ({ code: ErrorCode.InvalidParams, message: `Invalid params: ${message}`, name: 'InvalidParams' });
  if (headers && headers['mcp-method'] !== method) return mismatch(`the Mcp-Method header must be the request's method (${method})`);
  const nameField = NAME_FIELD.get(method);
  if (headers && nameField !== undefined && headers['mcp-name'] !== params[nameField]) {
    return mismatch(`the Mcp-Name header must be the request's params.${nameField}`);
  }
  const meta = params._meta;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return invalid('params._meta is required on this protocol revision');
  const m = meta as Record<string, unknown>;
  const version = m[META.protocolVersion];
  if (typeof version !== 'string') return invalid(`params._meta["${META.protocolVersion}"] is required`);
  const capabilities = m[META.clientCapabilities];
  if (typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities)) {
    return invalid(`params._meta["${META.clientCapabilities}"] is required (an object)`);
  }
  if (headers && headers['mcp-protocol-version'] !== version) {
    return mismatch(`the MCP-Protocol-Version header must be params._meta["${META.protocolVersion}"]`);
  }
  if (!(MODERN_VERSIONS as readonly string[]).includes(version)) {
    return {
      code: UNSUPPORTED_PROTOCOL_VERSION,
      message: `Unsupported protocol version: ${version.slice(0, 64)}`,
      name: 'UnsupportedProtocolVersion',
      data: { supported: [...ALL_VERSIONS], requested: version },
    };
  }
  const level = m[META.logLevel];
  if (level !== undefined && (typeof level !== 'string' || !LEVELS.has(level))) return invalid(`params._meta["${META.logLevel}"] is not a log level`);
  return null;
}

function fail(
  sink: ModernSink,
  status: number,
  id: RequestId | null,
  code: number,
  message: string,
  name: string,
  data: Record<string, unknown> = {},
  headers?: Record<string, string>,
): void {
  sink.answer({ jsonrpc: '2.0', id: id as RequestId, error: { code, message, data: { ...data, name } } }, status, headers);
}

/** A host refusal as the answer: RateLimited 429 with Retry-After, Unauthenticated 401, CapabilityDenied 403, else 503. */
function refuseHost(sink: ModernSink, id: RequestId, err: unknown): void {
  const e = HostError.from(err);
  const error = { jsonrpc: '2.0' as const, id, error: { code: e.code, message: e.message, data: e.data } };
  if (e.errorName === 'RateLimited') return sink.answer(error, 429, { 'retry-after': String(retryAfterSeconds(e)) });
  sink.answer(error, e.errorName === 'Unauthenticated' ? 401 : e.errorName === 'CapabilityDenied' ? 403 : 503);
}

/** The sink of a POST: a JSON body, or an SSE stream once a notification comes before the answer. */
function httpSink(res: ServerResponse, maxResultBytes: number): ModernSink {
  let streaming = false;
  return {
    notify(message) {
      if (!streaming) {
        streaming = true;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform' });
      }
      writeStream(res, `event: message\ndata: ${JSON.stringify(message)}\n\n`);
    },
    answer(message, status, headers) {
      const { text } = outgoing(message, maxResultBytes);
      if (streaming) return void res.end(`event: message\ndata: ${text}\n\n`);
      res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    },
    done: (fn) => void res.once('close', fn),
  };
}

/** A result as this revision sends it: `resultType` and the server's identity in `_meta`. */
function decorate(result: Record<string, unknown>, resultType: string): Record<string, unknown> {
  const meta = (result._meta ?? {}) as Record<string, unknown>;
  return { ...result, resultType: (result.resultType as string | undefined) ?? resultType, _meta: { ...meta, [META.serverInfo]: SERVER_INFO } };
}

/** The HTTP status of an error answer: the codes this revision pins to one, else 200. */
function statusOf(code: number): number {
  if (code === ErrorCode.MethodNotFound) return 404;
  if (code === HEADER_MISMATCH || code === UNSUPPORTED_PROTOCOL_VERSION || code === MISSING_CLIENT_CAPABILITY) return 400;
  return 200;
}

/**
 * The transport of one request's server: takes its answer, and the notifications tied to it, to the sink.
 */
class ModernExchange implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  private done = false;

  constructor(
    private readonly sink: ModernSink,
    private readonly id: RequestId,
    private readonly method: string,
    /** The result to send in place of the handler's: an input round while asks are open. */
    private readonly rounds: (result: Record<string, unknown>) => Record<string, unknown>,
  ) {}

  async start(): Promise<void> {}

  deliver(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  async send(message: JSONRPCMessage, _options?: TransportSendOptions): Promise<void> {
    if (this.done) return;
    if (!('result' in message) && !('error' in message)) {
      if ('id' in message) throw new Error('a server-to-client request cannot be sent on protocol revision 2026-07-28');
      return this.sink.notify(message);
    }
    this.done = true;
    const answer = this.answer(message);
    this.sink.answer(answer, 'error' in answer ? statusOf(answer.error.code) : 200);
  }

  /** The handler's answer in this revision's terms. */
  private answer(message: JSONRPCMessage): JSONRPCMessage {
    if ('error' in message) {
      const { code, data } = message.error;
      if ((data as { name?: unknown } | undefined)?.name === InputRequired.errorName) {
        return { jsonrpc: '2.0', id: this.id, result: decorate(this.rounds({}), 'input_required') };
      }
      if (code === RESOURCE_NOT_FOUND) return { ...message, error: { ...message.error, code: ErrorCode.InvalidParams } };
      return message;
    }
    if (!('result' in message)) return message;
    const result = this.rounds(message.result as Record<string, unknown>);
    const hints = CACHEABLE.has(this.method) ? { cacheScope: 'private', ttlMs: this.method === 'resources/read' ? 0 : LIST_TTL_MS } : {};
    return { ...message, result: decorate({ ...result, ...hints }, 'complete') };
  }

  async close(): Promise<void> {
    this.done = true;
    this.onclose?.();
  }
}
