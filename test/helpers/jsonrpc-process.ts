/**
 * Spawn a process that speaks Content-Length framed JSON-RPC on stdio (e.g. `toka serve --stdio`, `toka mcp`)
 * and talk to it with a vscode-jsonrpc client. Every stdout byte is also recorded, so a test can check the
 * raw frames (stdout purity, responses with `id: null`, answers to raw writes), and stderr is captured.
 *
 *   const proc = spawnJsonRpcProcess(process.execPath, ['dist/toka.js', 'serve', '--stdio', '--data', dir]);
 *   try { await proc.connection.sendRequest('initialize', {...}); } finally { await proc.close(); }
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';

export interface SpawnOptions {
  /** Extra environment (merged over process.env). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Default timeout of `waitForFrame` / `waitForExit`, ms (default 10000). */
  timeoutMs?: number;
}

/** One decoded frame of the recorded stdout. */
export interface Frame {
  headers: Record<string, string>;
  body: string;
  /** The parsed body (undefined when it is not JSON; `parseFrames` with `strict` throws instead). */
  message: unknown;
}

export interface JsonRpcProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** A listening vscode-jsonrpc connection over the child's stdout/stdin. */
  readonly connection: MessageConnection;
  /** Everything the child wrote on stderr so far. */
  stderr(): string;
  /** Every byte the child wrote on stdout so far. */
  stdout(): Buffer;
  /** The complete frames of `stdout()` so far. */
  frames(): Frame[];
  /** Resolve with the first recorded frame (past or future) whose message satisfies `match`. */
  waitForFrame(match: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Write raw bytes to the child's stdin in one write (resolves once handed to the OS). */
  writeRaw(data: string | Buffer): Promise<void>;
  /** Resolve when the child exits. */
  waitForExit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Dispose the connection and kill the child if it still runs. Idempotent. */
  close(): Promise<void>;
}

/** Encode one Content-Length frame (`message` is serialised unless it is already a string). */
export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(typeof message === 'string' ? message : JSON.stringify(message), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}

/**
 * Split `data` into Content-Length frames. `rest` is an incomplete trailing frame. With `strict`, anything
 * that is not a well-formed frame with a JSON body throws (used to assert stdout purity).
 */
export function parseFrames(data: Buffer, strict = false): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let offset = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset, 'ascii');
    if (end < 0) break;
    const headers: Record<string, string> = {};
    for (const line of data.subarray(offset, end).toString('ascii').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`malformed header line ${JSON.stringify(line)} at byte ${offset}`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length) || length < 0) throw new Error(`missing or bad Content-Length at byte ${offset}`);
    const start = end + 4;
    if (start + length > data.length) break;
    const body = data.subarray(start, start + length).toString('utf8');
    let message: unknown;
    try {
      message = JSON.parse(body);
    } catch (err) {
      if (strict) throw new Error(`frame at byte ${offset} is not JSON: ${(err as Error).message}`);
    }
    frames.push({ headers, body, message });
    offset = start + length;
  }
  const rest = data.subarray(offset);
  if (strict && rest.length > 0) throw new Error(`${rest.length} trailing bytes are not a complete frame: ${JSON.stringify(rest.toString('utf8').slice(0, 200))}`);
  return { frames, rest };
}

/** Whether `message` is a JSON-RPC 2.0 request, notification or response. */
export function isJsonRpcMessage(message: unknown): boolean {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return false;
  const m = message as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  const idOk = m.id === undefined || m.id === null || typeof m.id === 'string' || typeof m.id === 'number';
  if (typeof m.method === 'string') return idOk && m.id !== null;
  if (m.id === undefined) return false;
  if ('error' in m) {
    const e = m.error as Record<string, unknown> | null;
    return idOk && typeof e === 'object' && e !== null && typeof e.code === 'number' && typeof e.message === 'string';
  }
  return idOk && 'result' in m;
}

export function spawnJsonRpcProcess(command: string, args: string[], options: SpawnOptions = {}): JsonRpcProcess {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdoutChunks: Buffer[] = [];
  let stderrText = '';
  const watchers = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdoutChunks.push(chunk);
    for (const w of watchers) w();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderrText += chunk));
  // A write to a child that already exited must not crash the test process.
  child.stdin.on('error', () => undefined);

  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });

  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.listen();

  const stdout = () => Buffer.concat(stdoutChunks);
  const frames = () => parseFrames(stdout()).frames;
  let closed = false;

  return {
    child,
    connection,
    stderr: () => stderrText,
    stdout,
    frames,
    waitForFrame(match, ms = timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const frame of frames()) {
            const m = frame.message;
            if (typeof m === 'object' && m !== null && match(m as Record<string, unknown>)) {
              done();
              resolve(m as Record<string, unknown>);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching frame within ${ms} ms; stderr:\n${stderrText}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    writeRaw(data) {
      return new Promise((resolve, reject) => child.stdin.write(data, (err) => (err ? reject(err) : resolve())));
    },
    waitForExit(ms = timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`process did not exit within ${ms} ms; stderr:\n${stderrText}`)), ms);
        void exited.then((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      connection.dispose();
      if (exit === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
