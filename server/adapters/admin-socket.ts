/**
 * The local admin socket: `<data>/admin.sock`, a Unix domain socket (mode 0600 in a 0700 data dir) on which
 * the serving host speaks `toka/*` over vscode-jsonrpc. It lets the CLI's writing commands work while
 * `toka serve` holds the data dir lock. Whoever can open the socket is the data dir's owner — the same trust
 * as reading `keys.json` — so `toka/admin/open { vault }` binds the local admin session of that vault;
 * `{ token }` binds the token's own session instead (the caller acts as the token's subject).
 */
import { chmodSync, statSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ProgressType } from 'vscode-jsonrpc';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type ResponseMessage } from 'vscode-jsonrpc/node';
import { MAX_MESSAGE_BYTES } from '../../protocol/rpc/common.js';
import { AdminOpenRequest, type AdminOpenResult } from '../../protocol/rpc/admin.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import type { AgentRuntime } from '../runtime/runtime.js';
import { FrameGuard, frameProblemError } from './jsonrpc-frames.js';
import { checkSocketPath, listenOwnerOnly, removeStaleSocket } from './owner-socket.js';
import { bindTokaProtocol, decodeParams, onTypedRequest, toResponseError, type RpcConnection } from './rpc.js';

/** File name of the admin socket inside the data dir. */
export const ADMIN_SOCKET_NAME = 'admin.sock';
/** Most admin connections open at once; more are refused (closed at once). */
export const MAX_ADMIN_CONNECTIONS = 64;
/** How long `close()` waits for in-flight requests, then for connections to end. */
const DRAIN_TIMEOUT_MS = 10_000;
const END_TIMEOUT_MS = 2_000;

export interface AdminSocketOptions {
  dataDir: string;
  logger: Logger;
  /** The agent runtime behind `toka/agents/*`, `toka/tasks/*`, `toka/approvals/*` (Unavailable without one). */
  runtime?: AgentRuntime;
}

export interface AdminSocket {
  /** Absolute path of the socket. */
  readonly path: string;
  /**
   * Stop accepting connections and requests (new requests get `Unavailable`), wait for in-flight requests
   * to be answered, then end every connection and remove the socket file.
   */
  close(): Promise<void>;
}

/** The admin socket path of a data dir. */
export function adminSocketPath(dataDir: string): string {
  return join(dataDir, ADMIN_SOCKET_NAME);
}

/**
 * Listen on `<dataDir>/admin.sock` for `host`. Call only while holding the data dir lock: an existing socket
 * file is then stale and is removed.
 */
export async function startAdminSocket(host: Host, options: AdminSocketOptions): Promise<AdminSocket> {
  const { dataDir, logger } = options;
  const path = adminSocketPath(dataDir);
  checkSocketPath(path, 'admin socket');
  const mode = statSync(dataDir).mode & 0o777;
  if (mode & 0o077) {
    chmodSync(dataDir, 0o700);
    logger.warn('data dir was open to other users; set its mode to 0700', { dataDir, was: mode.toString(8) });
  }
  if (removeStaleSocket(path)) logger.info('removed a stale admin socket', { path });

  const sockets = new Set<Socket>();
  let draining = false;
  let inflight = 0;
  let idle: (() => void)[] = [];
  const settle = () => {
    if (inflight > 0) return;
    const waiting = idle;
    idle = [];
    for (const resolve of waiting) resolve();
  };
  const track = async <R>(fn: () => Promise<R> | R): Promise<R> => {
    if (draining) throw toResponseError(new HostError('Unavailable', 'host is shutting down'));
    inflight++;
    try {
      return await fn();
    } finally {
      inflight--;
      settle();
    }
  };

  const server: Server = createServer((socket) => {
    if (draining || sockets.size >= MAX_ADMIN_CONNECTIONS) {
      logger.warn('admin connection refused', { reason: draining ? 'shutting down' : 'too many connections', max: MAX_ADMIN_CONNECTIONS });
      socket.destroy();
      return;
    }
    sockets.add(socket);
    host.metrics.connections('admin', +1);
    serveConnection(socket);
  });

  function serveConnection(socket: Socket): void {
    const writer = new StreamMessageWriter(socket);
    // A refused frame is answered (id null) and the guard resynchronises; the reader sees only well-formed frames.
    const guard = new FrameGuard({
      maxBodyBytes: MAX_MESSAGE_BYTES,
      onDropped: (problem) => {
        logger.warn('admin frame refused', { problem: problem.kind });
        writer.write({ jsonrpc: '2.0', id: null, error: frameProblemError(problem) } as ResponseMessage).catch(() => undefined);
      },
    });
    socket.on('error', (err) => logger.debug('admin socket error', { err }));
    socket.pipe(guard);
    const connection = createMessageConnection(new StreamMessageReader(guard), writer);
    let session: Session | null = null;

    onTypedRequest(connection, AdminOpenRequest.type, (params) =>
      track(async (): Promise<AdminOpenResult> => {
        try {
          const actor = decodeParams(AdminOpenRequest, params);
          if (session) throw new HostError('Conflict', 'session already open on this connection');
          if (host.isClosing) throw new HostError('Unavailable', 'host is shutting down');
          session = await host.openSession('owner', { token: actor.token, vault: actor.vault });
          logger.debug('admin session open', { principal: session.principal, vault: session.claims.vault, local: session.local });
          return { principal: session.principal, vault: session.claims.vault, permissions: session.claims.permissions, local: session.local };
        } catch (err) {
          throw toResponseError(err);
        }
      }),
    );

    const progress = new ProgressType<unknown>();
    const rpc: RpcConnection = {
      onRequest: (type, handler) => onTypedRequest(connection, type, (params, token) => track(() => handler(params, token))),
      sendNotification: (type, params) => connection.sendNotification(type, params),
      sendProgress: (token, value) => connection.sendProgress(progress, token, value),
    };
    const binding = bindTokaProtocol(
      rpc,
      host,
      () => {
        if (!session) throw new HostError('Unauthenticated', 'send toka/admin/open first', { reason: 'no session' });
        return session;
      },
      options.runtime,
    );
    socket.on('close', () => {
      sockets.delete(socket);
      host.metrics.connections('admin', -1);
      binding.dispose();
      connection.dispose();
    });
    connection.listen();
  }

  await listenOwnerOnly(server, path);
  server.on('error', (err) => logger.error('admin socket error', { err }));
  logger.debug('admin socket listening', { path });

  let closing: Promise<void> | null = null;
  return {
    path,
    close() {
      closing ??= (async () => {
        draining = true;
        server.close();
        if (inflight > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
            idle.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        // Answers are written after their handler settles: let the writer run before ending the streams.
        await new Promise((resolve) => setImmediate(resolve));
        const ended = [...sockets].map(
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
              socket.end();
            }),
        );
        await Promise.all(ended);
        try {
          unlinkSync(path);
        } catch {
          // removed by server.close already
        }
      })();
      return closing;
    },
  };
}
