/**
 * `toka serve`: run the host on a data dir until a signal (HTTP + WebSocket on a loopback port), or as a
 * language server on stdin/stdout (`--stdio`). Either way the owner's admin socket `<data>/admin.sock` is
 * open so the CLI's writing commands keep working next to it. Logs are JSON lines on stderr.
 *
 * Shutdown (SIGINT/SIGTERM, or the LSP `exit` in stdio mode): stop accepting (HTTP, admin socket), let
 * in-flight requests and appends finish, close the host (log flushed, lock released), exit 0. A second
 * signal exits 1 at once. An uncaught error is logged and the host is closed, exit 1. With `--clientProcessId`
 * (what a language client passes when it spawns a server) the host also stops, exit 1, once that process is gone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from '../host/host.js';
import { createLogger, parseLogLevel, type LogLevel, type Logger } from '../host/logger.js';
import { startAdminSocket, type AdminSocket } from '../adapters/admin-socket.js';
import { startHttpServer, type HttpServer } from '../adapters/http.js';
import { mountMcp, tokaMcpRegistry, type McpHttpMount } from '../adapters/mcp/http.js';
import { startMcpSocket, type McpSocket } from '../adapters/mcp/socket.js';
import { readA2aConfig } from '../adapters/a2a/card.js';
import { mountA2a } from '../adapters/a2a/http.js';
import { serveStdio } from '../adapters/stdio.js';
import { RUNTIME_HANDLERS, type AgentRuntime } from '../runtime/runtime.js';
import { startRuntime } from '../runtime/start.js';
import { DATA, UsageError, dataDir, parseInteger, parsePid } from './args.js';
import type { Command } from './commands.js';

export const DEFAULT_PORT = 7420;
export const DEFAULT_BIND = '127.0.0.1';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
/** After shutdown, handles still open (a client's idle stdin, a stuck socket) may delay exit this long. */
const EXIT_GRACE_MS = 1_000;
/** An uncaught error gives the orderly close this long before the process exits anyway. */
const CRASH_CLOSE_MS = 5_000;
/** How often `--clientProcessId` is checked. */
const CLIENT_WATCH_MS = 3_000;

/** True for names and addresses that only reach this machine. */
export function isLoopback(bind: string): boolean {
  const h = bind.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `--rate-limit`: `<per second>[:<burst>]` (burst defaults to twice the rate) or `off`; default 200:400. */
export function parseRateLimit(value: string | undefined): { ratePerSec: number; burst: number } | false {
  if (value === undefined) return { ratePerSec: 200, burst: 400 };
  if (value === 'off') return false;
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  const ratePerSec = m ? Number(m[1]) : 0;
  const burst = m?.[2] !== undefined ? Number(m[2]) : ratePerSec * 2;
  if (!m || ratePerSec < 1 || burst < 1) throw new UsageError(`--rate-limit: <per second>[:<burst>] (positive integers) or off, got "${value}"`);
  return { ratePerSec, burst };
}

/** What a config file (`--config <file>`, else `<data>/config.json`) may set. */
export interface ServeConfig {
  /** Browser origins allowed on HTTP and WebSocket besides same-origin loopback (`scheme://host[:port]`). */
  allowedOrigins?: string[];
}

/** Name of the config file read from the data dir when `--config` is absent. */
export const CONFIG_FILE = 'config.json';

/** An origin as a browser sends it: `http(s)://host[:port]`, nothing after. */
export function parseOrigin(value: string, what: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    url = null;
  }
  const origin = value.replace(/\/+$/, '');
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin.toLowerCase()) {
    throw new UsageError(`${what}: expected an origin like https://app.example or http://localhost:3000, got "${value}"`);
  }
  return url.origin;
}

/**
 * The config file: `--config <file>` when given (it must exist), else `<data>/config.json` when present, else
 * none. A JSON object whose only known key is `allowedOrigins`; an unknown key or a bad value is a usage error.
 */
export function readServeConfig(dir: string, configFlag: string | undefined): ServeConfig {
  const path = configFlag ?? join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (configFlag === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`config ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config ${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`config ${path}: expected a JSON object`);
  const config: ServeConfig = {};
  for (const [key, v] of Object.entries(value)) {
    if (key !== 'allowedOrigins') throw new UsageError(`config ${path}: unknown key "${key}" (known: allowedOrigins)`);
    if (!Array.isArray(v) || !v.every((o) => typeof o === 'string')) throw new UsageError(`config ${path}: allowedOrigins must be an array of strings`);
    config.allowedOrigins = v.map((o: string) => parseOrigin(o, `config ${path}: allowedOrigins`));
  }
  return config;
}

export const serveCommand: Command = {
  summary:
    'run the host: [--port 7420] [--host 127.0.0.1] [--allow-remote] [--stdio] [--allowed-origin O]... [--config F] [--clientProcessId PID] [--log-level info] [--rate-limit 200:400|off]',
  options: {
    ...DATA,
    port: { type: 'string', value: '<n>', help: 'TCP port of HTTP and WebSocket (0: any free port)', default: String(DEFAULT_PORT) },
    host: { type: 'string', value: '<addr>', help: 'address to listen on; a non-loopback one needs --allow-remote', default: DEFAULT_BIND },
    'allow-remote': { type: 'boolean', help: 'allow a --host that is not a loopback address (put TLS in front)', default: 'off' },
    stdio: { type: 'boolean', help: 'serve the language-server protocol on stdin/stdout instead of HTTP', default: 'off' },
    'allowed-origin': {
      type: 'string',
      multiple: true,
      value: '<origin>',
      help: 'a browser Origin allowed on HTTP and WebSocket besides same-origin loopback; replaces the config file list',
      default: `allowedOrigins of the config file, else none`,
    },
    config: { type: 'string', value: '<file>', help: 'JSON config file ({"allowedOrigins": [...]})', default: `<data>/${CONFIG_FILE} if present` },
    clientProcessId: {
      type: 'string',
      value: '<pid>',
      help: 'exit (closing the host) once this process is gone, checked every 3 s; language clients pass it',
      default: 'none',
    },
    'log-level': { type: 'string', value: '<level>', help: `log level on stderr: ${LOG_LEVELS.join(', ')}`, default: '$TOKA_LOG_LEVEL, else info' },
    'rate-limit': {
      type: 'string',
      value: '<rate[:burst]|off>',
      help: 'per-subject token bucket: requests per second and burst (twice the rate if omitted)',
      default: '200:400',
    },
  },
  async run(flags) {
    const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
    const stdio = flags.stdio === true;
    const levelFlag = str('log-level');
    if (levelFlag !== undefined && !LOG_LEVELS.includes(levelFlag as LogLevel)) {
      throw new UsageError(`--log-level: one of ${LOG_LEVELS.join(', ')}`);
    }
    const level = (levelFlag as LogLevel | undefined) ?? parseLogLevel(process.env.TOKA_LOG_LEVEL, 'info');
    if (stdio && (str('port') !== undefined || str('host') !== undefined)) {
      throw new UsageError('--stdio serves on stdin/stdout: drop --port and --host');
    }
    const port = parseInteger(str('port'), '--port', DEFAULT_PORT);
    if (port > 65535) throw new UsageError(`--port: 0..65535, got ${port}`);
    const bind = str('host') ?? DEFAULT_BIND;
    if (!stdio && !isLoopback(bind) && flags['allow-remote'] !== true) {
      throw new UsageError(
        `--host ${bind} is not a loopback address; pass --allow-remote to listen on it (put TLS in front; see docs/operations.md)`,
      );
    }
    const clientFlag = str('clientProcessId');
    const clientProcessId = clientFlag !== undefined ? parsePid(clientFlag, '--clientProcessId') : undefined;
    const dir = dataDir(str('data'));
    const originFlags = Array.isArray(flags['allowed-origin']) ? flags['allowed-origin'] : [];
    const config = readServeConfig(dir, str('config'));
    const allowedOrigins = originFlags.length > 0 ? originFlags.map((o) => parseOrigin(o, '--allowed-origin')) : (config.allowedOrigins ?? []);
    const logger = createLogger({ level });
    const host = await Host.open({ dataDir: dir, logger, rateLimit: parseRateLimit(str('rate-limit')), handlers: RUNTIME_HANDLERS });
    const code = await new Server(host, logger, dir, clientProcessId).run(
      stdio ? { stdio: true } : { stdio: false, bind, port, allowedOrigins },
    );
    // Nothing should keep the process alive now; if something does (an idle stdin, a stuck client), leave anyway.
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    return code;
  },
};

type Mode = { stdio: true } | { stdio: false; bind: string; port: number; allowedOrigins: string[] };

/** One serving run: start the faces, wait for the end, shut down in order. */
class Server {
  private admin: AdminSocket | null = null;
  private http: HttpServer | null = null;
  private mcp: McpHttpMount | null = null;
  /** `<data>/mcp.sock` in stdio mode (over HTTP the MCP mount opens it), so `toka mcp` can attach. */
  private mcpSocket: McpSocket | null = null;
  private runtime: AgentRuntime | null = null;
  private stopping: Promise<number> | null = null;
  private signals = 0;
  private finish!: (code: number) => void;
  private readonly finished = new Promise<number>((resolve) => (this.finish = resolve));
  private started: Promise<void> = Promise.resolve();
  private clientWatch: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: Host,
    private readonly logger: Logger,
    private readonly dataDir: string,
    /** The process that spawned this one (`--clientProcessId`): when it is gone, stop. */
    private readonly clientProcessId?: number,
  ) {}

  async run(mode: Mode): Promise<number> {
    const exit = process.exit;
    const onSignal = (signal: NodeJS.Signals) => {
      this.signals++;
      if (this.signals > 1) {
        this.logger.warn('second signal: exiting without a clean shutdown', { signal });
        exit(1);
      }
      void this.stop(0, { signal });
    };
    const onCrash = (err: unknown) => {
      this.logger.error('uncaught error', { err });
      setTimeout(() => process.exit(1), CRASH_CLOSE_MS).unref();
      void this.stop(1, { reason: 'uncaught error' });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    // vscode-languageserver/node, once loaded, starts its own watchdog on a `--clientProcessId` it finds in
    // process.argv, and it calls process.exit() without closing the host. While serving, such an exit becomes
    // an orderly stop with the same code (watchClient below notices the same death and logs it).
    process.exit = ((code?: number) => void this.stop(typeof code === 'number' ? code : 1, { reason: 'exit requested' })) as typeof process.exit;
    this.watchClient();
    try {
      this.started = this.start(mode);
      try {
        await this.started;
      } catch (err) {
        await this.stop(1, { reason: 'start failed' }, true);
        throw err;
      }
      return await this.finished;
    } finally {
      process.exit = exit;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    }
  }

  /**
   * Poll `--clientProcessId` as language servers do (`kill(pid, 0)`, on an unref'd timer so that it never keeps
   * the process alive); once it is gone, stop like on a signal, exit code 1 (LSP: no `shutdown` came first).
   */
  private watchClient(): void {
    const pid = this.clientProcessId;
    if (pid === undefined) return;
    this.clientWatch = setInterval(() => {
      if (this.stopping) return;
      try {
        process.kill(pid, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EPERM') return;
        this.logger.warn('client process is gone', { clientProcessId: pid });
        void this.stop(1, { reason: 'client process gone', clientProcessId: pid });
      }
    }, CLIENT_WATCH_MS);
    this.clientWatch.unref();
  }

  private async start(mode: Mode): Promise<void> {
    this.runtime = await startRuntime(this.host, { dataDir: this.dataDir, logger: this.logger });
    const runtime = this.runtime;
    this.admin = await startAdminSocket(this.host, { dataDir: this.dataDir, logger: this.logger, runtime });
    if (mode.stdio) {
      this.mcpSocket = await startMcpSocket(this.host, { dataDir: this.dataDir, logger: this.logger, registry: tokaMcpRegistry(runtime) });
      this.logger.info('serving on stdio', { dataDir: this.dataDir, adminSocket: this.admin.path });
      void serveStdio(this.host, { logger: this.logger, runtime }).then(
        (result: unknown) => void this.stop(exitCodeOf(result), { reason: 'language server exit' }),
        (err: unknown) => {
          this.logger.error('stdio server failed', { err });
          void this.stop(1, { reason: 'stdio server failed' });
        },
      );
      return;
    }
    if (this.stopping) return;
    this.http = await startHttpServer(this.host, { host: mode.bind, port: mode.port, logger: this.logger, allowedOrigins: mode.allowedOrigins, runtime });
    this.mcp = await mountMcp(this.http, this.host, { logger: this.logger, runtime, dataDir: this.dataDir });
    mountA2a(this.http, this.host, { runtime, logger: this.logger, config: readA2aConfig(this.dataDir) });
    this.logger.info('listening', {
      url: this.http.url,
      dataDir: this.dataDir,
      adminSocket: this.admin.path,
      hint: `get a first token: toka token mint --data ${shellQuote(this.dataDir)} --sub me --vault default --perm '*' --ttl 15m`,
    });
  }

  /**
   * Stop once: HTTP and admin socket stop accepting and drain their in-flight requests, then the host closes
   * (pending appends are flushed, the lock released). Resolves `run` with the exit code.
   */
  private stop(code: number, why: Record<string, unknown>, startFailed = false): Promise<number> {
    this.stopping ??= (async () => {
      clearInterval(this.clientWatch);
      if (!startFailed) {
        await this.started.catch(() => undefined);
        this.logger.info('shutting down', why);
      }
      await Promise.all([this.mcp?.close(), this.mcpSocket?.close()]);
      const faces = await Promise.allSettled([this.http?.close(), this.admin?.close()]);
      for (const face of faces) {
        if (face.status === 'rejected') {
          this.logger.error('closing a listener failed', { err: face.reason });
          code = code || 1;
        }
      }
      await this.runtime?.close();
      try {
        await this.host.close();
      } catch (err) {
        this.logger.error('closing the host failed', { err });
        code = code || 1;
      }
      if (!startFailed) this.logger.info('stopped', { exitCode: code });
      this.finish(code);
      return code;
    })();
    return this.stopping;
  }
}

function exitCodeOf(result: unknown): number {
  const code = typeof result === 'object' && result !== null ? (result as { exitCode?: unknown }).exitCode : undefined;
  return typeof code === 'number' && Number.isInteger(code) ? code : 0;
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
