/**
 * Test helpers for the network faces of `toka serve`:
 * - `spawnServe()`: run `node dist/toka.js serve --port 0 --data <tmp>` and learn its URL from the `listening` log line;
 * - `cliMint()`: mint a token with `toka token mint` (goes through the running host's admin socket);
 * - `connectWs()`: a WebSocket to `/rpc` with a vscode-jsonrpc MessageConnection over it;
 * - `connectRaw()`: a WebSocket without JSON-RPC, to send raw frames and read raw answers;
 * - `tryUpgrade()`: attempt an upgrade and return the refusal (status, headers, body).
 *
 *   const serve = await spawnServe();
 *   const token = await cliMint(serve.dataDir, { sub: 'me', vault: 'v', perm: '*' });
 *   const client = await connectWs(serve.wsUrl, token);
 *   await client.request(HostInfoRequest.type, {});
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  Disposable,
  createMessageConnection,
  type DataCallback,
  type Message,
  type MessageConnection,
  type RequestParam,
  type RequestType,
} from 'vscode-jsonrpc/node';
import WebSocket, { type ClientOptions, type RawData } from 'ws';
import type { ErrorData } from '../../protocol/errors.js';
import { cleanEnv, toka, TOKA_BIN } from './cli.js';

export { TOKA_BIN };
/** Re-exported for the test files that import it from here; new code imports it from './wait.js'. */
export { waitFor } from './wait.js';

export interface ServeProcess {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/rpc` */
  readonly wsUrl: string;
  readonly port: number;
  readonly dataDir: string;
  /** Everything written on stderr so far (JSON log lines). */
  stderr(): string;
  /** SIGTERM (SIGKILL after 10 s) and wait for the exit code with stderr fully read; removes the data dir unless `keepData`. */
  stop(opts?: { keepData?: boolean }): Promise<number | null>;
}

/** Start `toka serve` on a fresh data dir and wait until it listens (the child is killed if it does not). */
export async function spawnServe(opts: { args?: string[]; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ServeProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'toka-serve-'));
  const child = spawn(process.execPath, [TOKA_BIN, 'serve', '--port', '0', '--data', dataDir, '--log-level', 'info', ...(opts.args ?? [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: cleanEnv(opts.env),
  });
  let stderr = '';
  // 'close', not 'exit': stderr has been read to its end, so the last log lines are in `stderr`.
  const exited = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
  const listening = new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`toka serve did not listen in time:\n${stderr}`)), opts.timeoutMs ?? 10_000);
    child.stderr!.setEncoding('utf8');
    // Only complete lines not looked at yet are parsed, and none once the host listens: a long run's stderr
    // is not re-split on every chunk.
    let scanned = 0;
    let found = false;
    child.stderr!.on('data', (chunk: string) => {
      stderr += chunk;
      if (found) return;
      const end = stderr.lastIndexOf('\n');
      if (end < scanned) return;
      const lines = stderr.slice(scanned, end).split('\n');
      scanned = end + 1;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        let rec: { msg?: string; url?: string };
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          continue; // a complete line that is not a log record
        }
        if (rec.msg === 'listening' && rec.url) {
          found = true;
          clearTimeout(timer);
          res(rec.url);
          return;
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`toka serve exited (${code}) before listening:\n${stderr}`));
    });
  });
  let url: string;
  try {
    url = await listening;
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = Number(new URL(url).port);
  let stopped: Promise<number | null> | null = null;
  return {
    child,
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/rpc`,
    port,
    dataDir,
    stderr: () => stderr,
    stop({ keepData = false } = {}) {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(kill);
        if (!keepData) rmSync(dataDir, { recursive: true, force: true });
        return code;
      })();
      return stopped;
    },
  };
}

/** Run the `toka` CLI; resolves with stdout, rejects with stderr on a non-zero exit. */
export async function runCli(args: string[]): Promise<string> {
  const run = await toka(args, { env: { TOKA_LOG_LEVEL: 'warn' } });
  if (run.code !== 0) throw new Error(`toka ${args.join(' ')} failed (${run.code ?? run.signal}): ${run.stderr}`);
  return run.stdout;
}

/** `toka token mint` against a data dir (through the admin socket when a host is serving it). */
export async function cliMint(dataDir: string, o: { sub: string; vault: string; perm: string; ttl?: string }): Promise<string> {
  const out = await runCli(['token', 'mint', '--data', dataDir, '--sub', o.sub, '--vault', o.vault, '--perm', o.perm, '--ttl', o.ttl ?? '15m']);
  return out.trim();
}

export interface Closed {
  code: number;
  reason: string;
}

export interface TokaWsClient {
  readonly ws: WebSocket;
  /** A listening vscode-jsonrpc connection over `ws`. */
  readonly connection: MessageConnection;
  /** Resolves when the socket closes. */
  readonly closed: Promise<Closed>;
  /** Shorthand for `connection.sendRequest(type, params)`: a `toka/*` request bound by its protocol `type`. */
  request<P, R>(type: RequestType<P, R, ErrorData>, params: RequestParam<P>): Promise<R>;
  /** Close (1000) and wait for the close to complete. */
  close(): Promise<Closed>;
}

export interface ConnectOptions {
  /** Send the token as `Sec-WebSocket-Protocol: toka, toka.bearer.<token>` instead of Authorization. */
  viaSubprotocol?: boolean;
  headers?: Record<string, string>;
  /** ws client options (e.g. `origin`, `maxPayload`). */
  ws?: ClientOptions;
}

function openSocket(url: string, token: string | undefined, opts: ConnectOptions): Promise<{ ws: WebSocket; closed: Promise<Closed> }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let protocols: string[] | undefined;
  if (token !== undefined && opts.viaSubprotocol) protocols = ['toka', `toka.bearer.${token}`];
  else if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const ws = new WebSocket(url, protocols, { ...opts.ws, headers, maxPayload: 64 * 1024 * 1024 });
  const closed = new Promise<Closed>((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString('utf8') })));
  return new Promise((res, rej) => {
    ws.once('open', () => {
      ws.off('error', rej);
      ws.on('error', () => undefined);
      res({ ws, closed });
    });
    ws.once('error', rej);
  });
}

/** Connect to `/rpc` with a bearer token and start a JSON-RPC connection over it. */
export async function connectWs(url: string, token: string, opts: ConnectOptions = {}): Promise<TokaWsClient> {
  const { ws, closed } = await openSocket(url, token, opts);
  const connection = createMessageConnection(new ClientReader(ws), new ClientWriter(ws));
  connection.listen();
  void closed.then(() => connection.dispose());
  return {
    ws,
    connection,
    closed,
    request: (type, params) => connection.sendRequest(type, params),
    close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      return closed;
    },
  };
}

export interface RawWsClient {
  readonly ws: WebSocket;
  readonly closed: Promise<Closed>;
  send(data: string | Buffer): void;
  /** The next message the server sends, parsed as JSON. */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** A WebSocket to `/rpc` without JSON-RPC on top: raw frames in, parsed messages out. */
export async function connectRaw(url: string, token: string, opts: ConnectOptions = {}): Promise<RawWsClient> {
  const { ws, closed } = await openSocket(url, token, opts);
  const queue: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown>) => void)[] = [];
  ws.on('message', (data: RawData) => {
    const msg = JSON.parse(data.toString()) as Record<string, unknown>;
    const w = waiters.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  return {
    ws,
    closed,
    send: (data) => ws.send(data),
    next(timeoutMs = 5000) {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error('no message in time')), timeoutMs);
        waiters.push((m) => {
          clearTimeout(timer);
          res(m);
        });
      });
    },
  };
}

export interface Refusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Attempt an upgrade that should be refused; resolves with the HTTP answer (rejects if it upgrades). */
export function tryUpgrade(url: string, opts: ConnectOptions & { token?: string } = {}): Promise<Refusal> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token !== undefined && !opts.viaSubprotocol) headers.authorization = `Bearer ${opts.token}`;
  const protocols = opts.token !== undefined && opts.viaSubprotocol ? ['toka', `toka.bearer.${opts.token}`] : undefined;
  const ws = new WebSocket(url, protocols, { ...opts.ws, headers });
  return new Promise((res, rej) => {
    ws.once('unexpected-response', (_req, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (c: string) => (body += c));
      response.on('end', () => res({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', rej);
    });
    ws.once('open', () => {
      ws.terminate();
      rej(new Error('the upgrade was accepted'));
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) rej(err);
    });
  });
}

/** Client side of one-JSON-RPC-message-per-WebSocket-message. */
class ClientReader extends AbstractMessageReader {
  private callback: DataCallback | null = null;
  constructor(ws: WebSocket) {
    super();
    ws.on('message', (data: RawData) => {
      let msg: Message;
      try {
        msg = JSON.parse(data.toString()) as Message;
      } catch (err) {
        this.fireError(err);
        return;
      }
      this.callback?.(msg);
    });
    ws.on('close', () => this.fireClose());
  }
  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    return Disposable.create(() => (this.callback = null));
  }
}

class ClientWriter extends AbstractMessageWriter {
  constructor(private readonly ws: WebSocket) {
    super();
  }
  write(msg: Message): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('socket not open'));
    return new Promise((res, rej) => this.ws.send(JSON.stringify(msg), (err) => (err ? rej(err) : res())));
  }
  end(): void {}
}
