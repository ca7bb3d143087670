/**
 * The Unix sockets only the data dir's owner may open (`admin.sock`, `mcp.sock`): their path bound, the
 * removal of a stale file left by a dead host, and listening with mode 0600 from the first instant.
 */
import { chmodSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { HostError } from '../host/errors.js';

/** Longest Unix socket path, in bytes (`sun_path` is 108 on Linux, 104 on macOS; one for the NUL). */
export const MAX_SOCKET_PATH_BYTES = 103;

/** Refuse a socket path the OS cannot bind (LimitExceeded naming `socketPathBytes`). */
export function checkSocketPath(path: string, what: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new HostError(
      'LimitExceeded',
      `${what} path ${path} is ${bytes} bytes, Unix sockets allow ${MAX_SOCKET_PATH_BYTES}: use a shorter --data path`,
      { limit: 'socketPathBytes', max: MAX_SOCKET_PATH_BYTES },
    );
  }
}

/**
 * Remove a socket file left by a host that died; true when there was one. Call only while holding the data
 * dir lock, which makes any existing file stale.
 */
export function removeStaleSocket(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return false;
  }
}

/** Listen on `path` with the socket created 0600 (umask while binding, then chmod to be sure). */
export async function listenOwnerOnly(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  chmodSync(path, 0o600);
}
