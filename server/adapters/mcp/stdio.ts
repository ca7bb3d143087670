/**
 * MCP over a pair of byte streams, newline-delimited: `toka mcp`'s stdin/stdout, and each connection of the
 * running host's `<data>/mcp.sock` (socket.ts). A connection is one 2025 session (`initialize`), and answers
 * 2026-07-28 requests (discovery, or a `_meta` naming that revision) statelessly next to it (modern.ts). The session authenticates with a credential (credential.ts):
 * a token, or a grant it renews its token from. Stdout carries only JSON-RPC frames; logs go to stderr.
 *
 * The transport answers what the SDK's stdio transport drops silently: a line that is not JSON gets a
 * ParseError (-32700), a JSON value that is not a JSON-RPC message gets InvalidRequest (-32600), and a
 * line longer than the bound gets LimitExceeded — each with `id: null`, and the connection stays up. When
 * the input ends, the session closes once every request received has been answered (or cancelled), so
 * `printf '<requests>' | toka mcp` gets every answer.
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, JSONRPCMessageSchema, type JSONRPCMessage, type JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import type { Host } from '../../host/host.js';
import { FreshTransport, type McpCredentialSession } from './credential.js';
import { RequestStateSigner } from './input-rounds.js';
import { ModernEndpoint, isModernMessage, lineSink } from './modern.js';
import type { McpRegistry } from './registry.js';
import { outgoing } from './result-bound.js';
import { MCP_DEFAULTS, createMcpSession, type McpServerOptions } from './server.js';

/** Longest accepted input line (one JSON-RPC message), bytes. */
export const MAX_STDIO_LINE_BYTES = 4 * 1024 * 1024;

/** Newline-delimited JSON-RPC over a pair of streams, answering malformed input instead of dropping it. */
export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** The line read so far (without its newline). */
  private buffer = '';
  /** UTF-8 bytes of `buffer`, counted once it is long enough to matter; -1 until then. */
  private bufferBytes = -1;
  /** After an oversized line: drop input up to the next newline. */
  private discarding = false;
  private closed = false;
  /** Ids of requests received and not yet answered: once the input has ended, the last answer closes. */
  private readonly unanswered = new Set<string | number>();
  private inputEnded = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    /** Responses whose JSON exceeds this are replaced by a LimitExceeded error (see `oversizeResult`). */
    private readonly maxResultBytes: number = MCP_DEFAULTS.maxResultBytes,
    private readonly maxLineBytes = MAX_STDIO_LINE_BYTES,
  ) {}

  async start(): Promise<void> {
    this.input.setEncoding('utf8');
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('error', this.onStreamError);
    // A stream paused by an earlier reader (the MCP socket's first line) stays paused when a listener is added.
    this.input.resume();
  }

  /**
   * Split input into lines, each measured once: only the new chunk is searched for a newline, and bytes are
   * counted exactly only once the pending line is past a third of the bound (a UTF-16 code unit is at most
   * 3 UTF-8 bytes). A line over the bound is answered once with LimitExceeded and the rest of it, up to its
   * newline, is discarded.
   */
  private readonly onData = (chunk: string) => {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', from);
      const piece = chunk.slice(from, nl < 0 ? chunk.length : nl);
      if (!this.discarding) this.append(piece);
      if (nl < 0) return;
      from = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      const line = this.buffer.replace(/\r$/, '');
      this.buffer = '';
      this.bufferBytes = -1;
      if (line.trim() !== '') this.receive(line);
    }
  };

  private append(piece: string): void {
    this.buffer += piece;
    if (this.buffer.length * 3 <= this.maxLineBytes) return;
    this.bufferBytes = this.bufferBytes < 0 ? Buffer.byteLength(this.buffer) : this.bufferBytes + Buffer.byteLength(piece);
    if (this.bufferBytes <= this.maxLineBytes) return;
    this.buffer = '';
    this.bufferBytes = -1;
    this.discarding = true;
    this.reject(ErrorCodes.LimitExceeded, `message longer than ${this.maxLineBytes} bytes`, {
      name: 'LimitExceeded',
      limit: 'mcp.maxStdioLineBytes',
      max: this.maxLineBytes,
    });
  }

  /** The input ended: close once every request received has been answered (nothing accepted is lost). */
  private readonly onEnd = () => {
    this.inputEnded = true;
    if (this.unanswered.size === 0) void this.close();
  };
  private readonly onStreamError = (err: Error) => this.onerror?.(err);

  private receive(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.reject(ErrorCode.ParseError, 'Parse error: not valid JSON', { name: 'ParseError' });
      return;
    }
    const parsed = JSONRPCMessageSchema.safeParse(value);
    if (!parsed.success) {
      const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
      this.reject(ErrorCode.InvalidRequest, 'Invalid Request: not a JSON-RPC 2.0 message', { name: 'InvalidRequest' }, id);
      return;
    }
    const message = parsed.data;
    if ('method' in message && 'id' in message) this.unanswered.add(message.id);
    this.onmessage?.(message);
    if ('method' in message && message.method === 'notifications/cancelled') {
      const id = (message.params as { requestId?: unknown } | undefined)?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.settle(id);
    }
  }

  private reject(code: number, message: string, data: Record<string, unknown>, id?: unknown): void {
    const replyId = typeof id === 'string' || typeof id === 'number' ? id : null;
    this.write(JSON.stringify({ jsonrpc: '2.0', id: replyId, error: { code, message, data } }));
  }

  private write(line: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.output.write(`${line}\n`)) resolve();
      else this.output.once('drain', resolve);
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    await this.write(outgoing(message, this.maxResultBytes).text);
    if (('result' in message || 'error' in message) && message.id !== undefined && message.id !== null) this.settle(message.id);
  }

  /**
   * `id` needs no answer any more (answered, or cancelled: no answer is sent to a cancelled request). The
   * request dispatcher (dispatch.ts) calls it too, for a cancelled request; settling twice is harmless.
   */
  settle(id: string | number): void {
    if (this.unanswered.delete(id) && this.inputEnded && this.unanswered.size === 0) void this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('error', this.onStreamError);
    this.buffer = '';
    this.bufferBytes = -1;
    this.onclose?.();
  }
}

/**
 * Routes a connection's incoming 2026-07-28 requests (`isModernMessage`) to `modern` and everything else to
 * the connection's 2025 session server, which it is the transport of.
 */
class EraRouter implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly modern: (message: JSONRPCRequest) => void,
  ) {}
  set onclose(handler: (() => void) | undefined) {
    this.inner.onclose = handler;
  }
  set onerror(handler: ((error: Error) => void) | undefined) {
    this.inner.onerror = handler;
  }
  set onmessage(handler: Transport['onmessage']) {
    this.inner.onmessage = handler && ((message, extra) => (isModernMessage(message) ? this.modern(message) : handler(message, extra)));
  }
  start(): Promise<void> {
    return this.inner.start();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(message, options);
  }
}

export interface StdioOptions extends McpServerOptions {
  registry: McpRegistry;
  /** Largest result (JSON bytes) sent; larger ones are refused with LimitExceeded. Default 1 MiB. */
  maxResultBytes?: number;
  /** The session's credential, opened (`McpCredentialSession.open`); closed with the session. */
  credential: McpCredentialSession;
  input?: Readable;
  output?: Writable;
}

/** Serve one MCP session over a pair of streams until the input ends. Resolves when the session is closed. */
export async function serveMcpStdio(host: Host, options: StdioOptions): Promise<void> {
  const { credential } = options;
  const { session } = credential;
  const mcp = createMcpSession(options.registry, host, session, options);
  const transport = new LineTransport(options.input ?? process.stdin, options.output ?? process.stdout, options.maxResultBytes);
  let ended!: () => void;
  const closed = new Promise<void>((resolve) => (ended = resolve));
  const modern = new ModernEndpoint(host, {
    ...options,
    logger: host.logger,
    signer: new RequestStateSigner(() => host.now()),
    maxInFlight: MCP_DEFAULTS.maxConcurrentCalls,
  });
  const fresh = new FreshTransport(transport, credential);
  await mcp.connect(new EraRouter(fresh, (message) => void modern.request(message, credential.session, lineSink(fresh))), {
    error: (err) => host.logger.warn('MCP stdio error', { err }),
    closed: () => ended(),
  });
  host.logger.info('MCP stdio session open', { principal: session.principal, vault: session.claims.vault, renews: credential.renews });
  await closed;
  modern.close();
  credential.close();
  await mcp.close();
}
