/**
 * The editor face over stdio: a language-server-style connection (Content-Length framed JSON-RPC on
 * stdin/stdout) that speaks the LSP lifecycle and serves `toka/*` through the shared binding.
 *
 * What vscode-languageserver's connection does on its own, and why some of it is replaced here:
 * - its `exit` handler and its stream-end hook call `process.exit()`, which would kill the process before the
 *   caller can close the host; this adapter registers its own `exit` (which replaces the library's handler)
 *   and passes reader/writer objects (not raw streams, so no stream-end hook) — `serveStdio` resolves instead;
 * - its `initialize` starts a never-unref'd parent-process watchdog that also calls `process.exit()`; the
 *   `initialize` here replaces it and watches `processId` itself;
 * - it does not reject requests before `initialize` or after `shutdown`, nor answer unparsable frames;
 *   a catch-all request handler and a guarding reader do.
 * Stdout is the wire: in stdio mode `console.*` is redirected to the logger (stderr) while serving.
 */
import {
  createConnection,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  ResponseError,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type Connection,
  type DataCallback,
  type Disposable,
  type InitializeParams,
  type InitializeResult,
  type MessageReader,
  type PartialMessageInfo,
  type ResponseMessage,
  WorkDoneProgress,
} from 'vscode-languageserver/node';
import type { WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport } from 'vscode-languageserver/node';

type WorkDoneProgressValue = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;
import { pipeline } from 'node:stream';
import { format } from 'node:util';
import { ErrorCodes, type ErrorName } from '../../protocol/errors.js';
import {
  initializationOptionsSchema,
  MAX_MESSAGE_BYTES,
  TOKA_PROTOCOL_VERSION,
  type TokaInitializationOptions,
  type TokaServerCapabilities,
} from '../../protocol/rpc/index.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import type { AgentRuntime } from '../runtime/runtime.js';
import { TOKA_VERSION } from '../host/version.js';
import { FrameGuard, frameProblemError, invalidJsonRpcMessage, type FrameProblem } from './jsonrpc-frames.js';
import { bindTokaProtocol, onTypedRequest, toResponseError, type RpcConnection, type TokaBinding } from './rpc.js';
import { serveSpecLanguage, type SpecLanguage } from './lsp/spec-language.js';

export interface StdioOptions {
  logger: Logger;
  /** The agent runtime behind `toka/agents/*`, `toka/tasks/*`, `toka/approvals/*` (Unavailable without one). */
  runtime?: AgentRuntime;
  /** Defaults to process.stdin. */
  input?: NodeJS.ReadableStream;
  /** Defaults to process.stdout. When it is process.stdout, `console.*` goes to the logger while serving. */
  output?: NodeJS.WritableStream;
}

export interface StdioExit {
  /** 0 after `shutdown` then `exit`; 1 for `exit` without `shutdown`, stdin closing, or the client process dying. */
  exitCode: number;
  /** What ended the session. */
  reason: 'exit' | 'input-closed' | 'output-error' | 'client-gone';
}

/** How often to check that the client process named by `processId` is alive. */
const CLIENT_WATCH_MS = 3000;

/**
 * Serve `host` over a stdio connection until the client sends `exit` or the input closes. The host is not
 * closed here (the caller opened it); subscriptions of the connection are ended.
 */
export function serveStdio(host: Host, options: StdioOptions): Promise<StdioExit> {
  const logger = options.logger.child({ face: 'stdio' });
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;

  const writer = new StreamMessageWriter(output);
  // The guard refuses an oversized body by its Content-Length, before the message reader buffers it.
  const guard = new FrameGuard({ maxBodyBytes: MAX_MESSAGE_BYTES, onDropped: (problem) => reader.refuse(problem) });
  pipeline(input, guard, () => undefined);
  const reader = new GuardedReader(new StreamMessageReader(guard), (response) => void writer.write(response).catch(() => undefined));
  const connection: Connection = createConnection(reader, writer);

  return new Promise<StdioExit>((resolve) => {
    let state: 'new' | 'initialized' | 'shutdown' | 'done' = 'new';
    let session: Session | null = null;
    let binding: TokaBinding | null = null;
    let specLanguage: SpecLanguage | null = null;
    let clientWatch: NodeJS.Timeout | undefined;
    const restoreConsole = output === process.stdout ? redirectConsole(logger) : () => undefined;
    const disposables: Disposable[] = [];

    const finish = (exit: StdioExit) => {
      if (state === 'done') return;
      state = 'done';
      logger.info('stdio session ended', { ...exit });
      if (clientWatch) clearInterval(clientWatch);
      binding?.dispose();
      binding = null;
      specLanguage?.dispose();
      specLanguage = null;
      for (const d of disposables) d.dispose();
      connection.dispose();
      if (input === process.stdin) process.stdin.pause();
      restoreConsole();
      resolve(exit);
    };

    disposables.push(
      reader.onError((err) => logger.warn('bad frame on stdin', { err })),
      reader.onClose(() => finish({ exitCode: state === 'shutdown' ? 0 : 1, reason: 'input-closed' })),
      writer.onError(([err]) => {
        logger.warn('stdout write failed', { err });
        finish({ exitCode: 1, reason: 'output-error' });
      }),
    );

    connection.onRequest(InitializeRequest.type, async (params: InitializeParams): Promise<InitializeResult> => {
      if (state !== 'new') throw wireError('InvalidRequest', 'initialize may be sent only once');
      const init = readInitOptions(params.initializationOptions);
      try {
        session = await host.openSession('owner', { token: init.token, vault: init.vault });
      } catch (err) {
        const e = HostError.from(err);
        logger.warn('initialize refused', { name: e.errorName, reason: e.details.reason });
        throw toResponseError(e);
      }
      const features: string[] = [];
      const recording: RpcConnection = {
        onRequest: (type, handler) => {
          features.push(type.method);
          return onTypedRequest(connection, type, handler);
        },
        sendNotification: (type, params) => connection.sendNotification(type, params),
        sendProgress: (token, value) => connection.sendProgress(WorkDoneProgress.type, token, value as WorkDoneProgressValue),
      };
      binding = bindTokaProtocol(recording, host, () => session!, options.runtime);
      specLanguage = serveSpecLanguage(connection, { logger, held: () => session?.claims.permissions ?? [] });
      state = 'initialized';
      watchClient(params.processId);
      logger.info('stdio session initialized', {
        principal: session.principal,
        vault: session.claims.vault,
        local: session.local,
        client: params.clientInfo?.name,
      });
      const toka: TokaServerCapabilities = { protocolVersion: TOKA_PROTOCOL_VERSION, features: features.sort() };
      return { capabilities: { ...specLanguage.capabilities, experimental: { toka } }, serverInfo: { name: 'toka', version: TOKA_VERSION } };
    });

    connection.onNotification(InitializedNotification.type, () => logger.debug('client initialized'));

    connection.onRequest(ShutdownRequest.type, () => {
      if (state === 'new') throw notInitialized(ShutdownRequest.method);
      if (state !== 'initialized') throw wireError('InvalidRequest', 'shutdown already received');
      state = 'shutdown';
      binding?.dispose();
      binding = null;
      specLanguage?.dispose();
      specLanguage = null;
    });

    connection.onNotification(ExitNotification.type, () =>
      finish({ exitCode: state === 'shutdown' ? 0 : 1, reason: 'exit' }),
    );

    // Anything not handled above or by the binding.
    connection.onRequest((method: string) => {
      if (state === 'new') throw notInitialized(method);
      if (state === 'shutdown') throw wireError('InvalidRequest', `${method}: the server is shut down`);
      throw wireError('MethodNotFound', `unknown method ${method}`, { method });
    });

    function watchClient(processId: number | null) {
      if (typeof processId !== 'number' || processId <= 0) return;
      clientWatch = setInterval(() => {
        try {
          process.kill(processId, 0);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EPERM') return;
          logger.warn('client process is gone', { processId });
          finish({ exitCode: state === 'shutdown' ? 0 : 1, reason: 'client-gone' });
        }
      }, CLIENT_WATCH_MS);
      clientWatch.unref();
    }

    connection.listen();
    logger.info('serving toka/* over stdio', { protocolVersion: TOKA_PROTOCOL_VERSION });
  });
}

function readInitOptions(value: unknown): TokaInitializationOptions {
  const decoded = initializationOptionsSchema.safeParse(value ?? {});
  if (decoded.success) return decoded.data;
  const path = ['initializationOptions', ...decoded.error.issues[0].path.slice(0, 1).map(String)].join('.');
  throw wireError('InvalidParams', `${path}: ${decoded.error.issues[0].message}`, { field: path });
}

function wireError(name: ErrorName, message: string, details: Record<string, unknown> = {}): ResponseError<unknown> {
  return toResponseError(new HostError(name, message, details));
}

function notInitialized(method: string): ResponseError<unknown> {
  return wireError('ServerNotInitialized', `${method}: the server is not initialized (send initialize first)`);
}

/**
 * A reader that answers what the connection would only log: an unparsable frame gets a ParseError response
 * with `id: null`, a frame refused by the FrameGuard (body over MAX_MESSAGE_BYTES, header block over 8 KiB or
 * malformed) LimitExceeded or ParseError with `id: null` (see `frameProblemError`), and a JSON value that is not a JSON-RPC
 * message gets InvalidRequest. Valid messages pass through untouched.
 */
class GuardedReader implements MessageReader {
  constructor(
    private readonly inner: MessageReader,
    private readonly respond: (response: ResponseMessage) => void,
  ) {
    inner.onError((err) => this.reject(null, ErrorCodes.ParseError, `parse error: ${err.message.split('\n')[0]}`, { name: 'ParseError' }));
  }

  /** Answer a frame the FrameGuard refused. */
  refuse(problem: FrameProblem): void {
    this.respond({ jsonrpc: '2.0', id: null, error: frameProblemError(problem) });
  }

  get onError() {
    return this.inner.onError;
  }

  get onClose() {
    return this.inner.onClose;
  }

  get onPartialMessage(): MessageReader['onPartialMessage'] {
    return this.inner.onPartialMessage as (listener: (e: PartialMessageInfo) => unknown) => Disposable;
  }

  listen(callback: DataCallback): Disposable {
    return this.inner.listen((message) => {
      const problem = invalidJsonRpcMessage(message);
      if (problem === null) callback(message);
      else this.reject(problem.id, ErrorCodes.InvalidRequest, `invalid request: ${problem.reason}`, { name: 'InvalidRequest' });
    });
  }

  dispose(): void {
    this.inner.dispose();
  }

  private reject(id: string | number | null, code: number, message: string, data: Record<string, unknown>): void {
    this.respond({ jsonrpc: '2.0', id, error: { code, message, data } });
  }
}

/** Send `console.*` to the logger while stdout is the wire; returns the restore function. */
function redirectConsole(logger: Logger): () => void {
  const names = ['log', 'info', 'debug', 'trace', 'dir', 'warn', 'error'] as const;
  const saved = names.map((name) => [name, console[name]] as const);
  const write = (level: 'info' | 'warn' | 'error') => (...args: unknown[]) => logger[level]('console', { text: format(...args) });
  console.log = console.info = console.debug = console.trace = console.dir = write('info');
  console.warn = write('warn');
  console.error = write('error');
  return () => {
    for (const [name, fn] of saved) (console as unknown as Record<string, unknown>)[name] = fn;
  };
}
