/**
 * `<data>/mcp.sock`: the running host's MCP socket, so that `toka mcp` works next to `toka serve`. A Unix
 * domain socket (mode 0600 in the 0700 data dir: only the data dir's owner reaches it, the same trust as the
 * admin socket and `keys.json`). `toka mcp` finds the data dir held, connects here and becomes a pipe between
 * its stdin/stdout and this socket; each connection is one MCP session served by the host, exactly as
 * `toka mcp` would serve it in process.
 *
 * The wire: the client's first line is `{"open": <credential>}` (credential.ts: `{token}` or
 * `{grant, vault, ttlSeconds?}`, at most `MAX_HELLO_BYTES`, within `HELLO_TIMEOUT_MS`); the host answers one
 * line, `{"opened": {principal, vault, renews}}` or `{"refused": {name, message, details}}` (then closes). After
 * `opened`, both sides speak MCP as newline-delimited JSON-RPC, as on stdio.
 */
import { unlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { HostError } from '../../host/errors.js';
import type { Host } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { checkSocketPath, listenOwnerOnly, removeStaleSocket } from '../owner-socket.js';
import { McpCredentialSession, parseCredential, type McpCredential } from './credential.js';
import type { McpRegistry } from './registry.js';
import type { McpServerOptions } from './server.js';
import { serveMcpStdio } from './stdio.js';

export const MCP_SOCKET_NAME = 'mcp.sock';
/** Most connections (MCP sessions) at once; more are refused. */
export const MAX_MCP_SOCKET_CONNECTIONS = 64;
/** Longest first line. */
export const MAX_HELLO_BYTES = 64 * 1024;
/** How long a connection may take to send its first line. */
export const HELLO_TIMEOUT_MS = 10_000;
/** How long `close()` waits for a client to close its side after the host ended the connection. */
const END_TIMEOUT_MS = 2_000;

export function mcpSocketPath(dataDir: string): string {
  return join(dataDir, MCP_SOCKET_NAME);
}

export interface McpSocketOptions extends McpServerOptions {
  dataDir: string;
  logger: Logger;
  registry: McpRegistry;
  /** Largest result (JSON bytes) sent; larger ones are refused with LimitExceeded. Default 1 MiB. */
  maxResultBytes?: number;
}

export interface McpSocket {
  readonly path: string;
  readonly connections: number;
  /** Stop accepting, end every session, remove the socket file. */
  close(): Promise<void>;
}

/** Listen on `<dataDir>/mcp.sock`. Call only while holding the data dir lock: an existing file is then stale. */
export async function startMcpSocket(host: Host, options: McpSocketOptions): Promise<McpSocket> {
  const { logger } = options;
  const path = mcpSocketPath(options.dataDir);
  checkSocketPath(path, 'MCP socket');
  removeStaleSocket(path);
  const sockets = new Set<Socket>();
  let closing = false;

  const server: Server = createServer((socket) => {
    if (closing || sockets.size >= MAX_MCP_SOCKET_CONNECTIONS) {
      logger.warn('MCP socket connection refused', { reason: closing ? 'shutting down' : 'too many connections', max: MAX_MCP_SOCKET_CONNECTIONS });
      socket.end(`${JSON.stringify({ refused: { name: closing ? 'Unavailable' : 'LimitExceeded', message: closing ? 'host is shutting down' : `more than ${MAX_MCP_SOCKET_CONNECTIONS} MCP socket sessions` } })}\n`);
      return;
    }
    sockets.add(socket);
    socket.on('error', (err) => logger.debug('MCP socket error', { err }));
    socket.once('close', () => sockets.delete(socket));
    void serveConnection(socket);
  });

  async function serveConnection(socket: Socket): Promise<void> {
    let credential: McpCredentialSession;
    try {
      const hello = await readLine(socket, MAX_HELLO_BYTES, HELLO_TIMEOUT_MS);
      let parsed: unknown;
      try {
        parsed = JSON.parse(hello);
      } catch {
        throw new HostError('InvalidParams', 'first line must be JSON: {"open": <credential>}', { field: 'open' });
      }
      const open = typeof parsed === 'object' && parsed !== null && Object.hasOwn(parsed, 'open') ? (parsed as { open: unknown }).open : undefined;
      credential = await McpCredentialSession.open(host, parseCredential(open));
    } catch (err) {
      const e = HostError.from(err);
      logger.info('MCP socket session refused', { name: e.errorName, reason: e.data.reason });
      socket.end(`${JSON.stringify({ refused: { name: e.errorName, message: e.message, details: e.details } })}\n`);
      return;
    }
    const { session } = credential;
    socket.write(`${JSON.stringify({ opened: { principal: session.principal, vault: session.claims.vault, renews: credential.renews } })}\n`);
    try {
      await serveMcpStdio(host, { ...options, credential, input: socket, output: socket });
    } catch (err) {
      logger.warn('MCP socket session failed', { err });
    } finally {
      socket.end();
    }
  }

  await listenOwnerOnly(server, path);
  server.on('error', (err) => logger.error('MCP socket error', { err }));
  logger.debug('MCP socket listening', { path });

  let closed: Promise<void> | null = null;
  return {
    path,
    get connections() {
      return sockets.size;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        server.close();
        await Promise.all(
          [...sockets].map(
            (socket) =>
              new Promise<void>((resolve) => {
                const timer = setTimeout(() => {
                  socket.destroy();
                  resolve();
                }, END_TIMEOUT_MS);
                socket.once('close', () => {
                  clearTimeout(timer);
                  resolve();
                });
                // The client sees the end of its session (`toka mcp` then exits) and closes its side.
                socket.end();
              }),
          ),
        );
        try {
          unlinkSync(path);
        } catch {
          // removed by server.close already
        }
      })();
      return closed;
    },
  };
}

/**
 * `toka mcp` attached to a running host: connect to its MCP socket, open a session with `credential`, then
 * pipe `input` to the socket and the socket to `output` until either ends. Rejects with the host's refusal
 * (a HostError) before anything is piped; resolves when the session is over.
 */
export async function attachMcpSocket(dataDir: string, credential: McpCredential, input: Readable, output: Writable): Promise<{ principal: string; vault: string; renews: boolean }> {
  const path = mcpSocketPath(dataDir);
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path);
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(new HostError('Conflict', `data dir ${dataDir} is in use and its MCP socket ${path} is not reachable (${err.code ?? err.message}); is it served by toka serve --stdio?`, { reason: err.code ?? 'connect failed' })),
    );
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
  });
  socket.on('error', () => undefined);
  socket.write(`${JSON.stringify({ open: credential })}\n`);
  const reply = JSON.parse(await readLine(socket, MAX_HELLO_BYTES, HELLO_TIMEOUT_MS)) as {
    opened?: { principal: string; vault: string; renews: boolean };
    refused?: { name: string; message: string; details?: Record<string, unknown> };
  };
  if (!reply.opened) {
    socket.destroy();
    const refused = reply.refused ?? { name: 'InternalError', message: 'the host answered neither opened nor refused' };
    throw new HostError(refused.name as HostError['errorName'], refused.message, refused.details ?? {});
  }
  await new Promise<void>((resolve) => {
    input.pipe(socket);
    socket.pipe(output, { end: false });
    socket.once('close', () => {
      input.unpipe(socket);
      resolve();
    });
  });
  return reply.opened;
}

/**
 * The first line of `socket` (without its newline), read byte-exactly: whatever follows it is pushed back
 * so the next reader sees it. Refuses a line over `maxBytes`, a stream that ends first, and a slow sender.
 */
function readLine(socket: Socket, maxBytes: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > maxBytes) done(new HostError('LimitExceeded', `first line longer than ${maxBytes} bytes`, { limit: 'mcp.maxHelloBytes', max: maxBytes }));
        return;
      }
      chunks.push(chunk.subarray(0, nl));
      const rest = chunk.subarray(nl + 1);
      done(null, Buffer.concat(chunks).toString('utf8'));
      if (rest.length > 0) socket.unshift(rest);
    };
    const onEnd = () => done(new HostError('Unavailable', 'the connection ended before its first line'));
    const timer = setTimeout(() => done(new HostError('LimitExceeded', `no first line within ${timeoutMs} ms`, { limit: 'mcp.helloTimeoutMs', max: timeoutMs })), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.resume();
  });
}
