/**
 * Where the CLI's writing commands write. With no live holder of the data dir lock they open the host in
 * process; while `toka serve` holds it they send the same `toka/*` requests over `<data>/admin.sock`.
 * Both paths give the same results and the same HostErrors, so the commands print the same output.
 */
import { RUNTIME_HANDLERS } from '../runtime/lifecycle.js';
import { connect, type Socket } from 'node:net';
import { ResponseError, type Disposable, type NotificationType, type RequestParam, type RequestType } from 'vscode-jsonrpc';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { ErrorData, ErrorName } from '../../protocol/errors.js';
import type { Operation } from '../../protocol/kernel.js';
import {
  AdminOpenRequest,
  CapabilityDelegateRequest,
  CapabilityMintRequest,
  CapabilityRevokeRequest,
  KernelSubmitRequest,
  type AdminOpenParams,
  type AdminOpenResult,
  type DelegateParams,
  type DelegateResult,
  type MintParams,
  type MintResult,
  type RevokeParams,
  type RevokeResult,
  type SubmitResult,
} from '../../protocol/rpc/index.js';
import { adminSocketPath } from '../adapters/admin-socket.js';
import { HostError } from '../host/errors.js';
import { Host } from '../host/host.js';
import { DataDirLock } from '../host/lock.js';
import type { Logger } from '../host/logger.js';

/** Who a write acts as: the local admin of a vault (owner of the data dir), or a token's subject. */
export type Actor = { vault: string } | { token: string };

/** The writes the CLI makes. */
export interface Writer {
  mint(vault: string, request: MintParams): Promise<MintResult>;
  delegate(token: string, request: DelegateParams): Promise<DelegateResult>;
  revoke(vault: string, request: RevokeParams): Promise<RevokeResult>;
  submit(token: string, op: Operation): Promise<SubmitResult>;
}

/** Run `fn` with a writer for `dataDir`: over the admin socket when a live process holds the data dir. */
export async function withWriter<T>(dataDir: string, logger: Logger, fn: (writer: Writer) => Promise<T>): Promise<T> {
  const holder = DataDirLock.holder(dataDir);
  if (holder !== null && holder !== process.pid) {
    const writer = remoteWriter(dataDir, holder);
    return fn(writer);
  }
  const host = await Host.open({ dataDir, logger, rateLimit: false, handlers: RUNTIME_HANDLERS });
  try {
    return await fn(localWriter(host));
  } finally {
    await host.close();
  }
}

function localWriter(host: Host): Writer {
  return {
    mint: (vault, request) => host.mint(host.localSession(vault), request),
    delegate: async (token, request) => host.delegate(await host.authenticate(token), request),
    revoke: async (vault, request) => {
      const result = await host.revoke(host.localSession(vault), request);
      return { seq: result.records[result.records.length - 1].seq };
    },
    submit: async (token, op) => host.submit(await host.authenticate(token), op),
  };
}

function remoteWriter(dataDir: string, holder: number): Writer {
  const call = async <P, R>(actor: Actor, type: RequestType<P, R, ErrorData>, params: RequestParam<P>): Promise<R> => {
    const client = await AdminClient.connect(dataDir, holder);
    try {
      await client.open(actor);
      return await client.request(type, params);
    } finally {
      client.close();
    }
  };
  return {
    mint: (vault, request) => call({ vault }, CapabilityMintRequest.type, request),
    delegate: (token, request) => call({ token }, CapabilityDelegateRequest.type, request),
    revoke: (vault, request) => call({ vault }, CapabilityRevokeRequest.type, request),
    submit: (token, op) => call({ token }, KernelSubmitRequest.type, { op }),
  };
}

/** A `toka/*` client on a data dir's admin socket. Failures are HostErrors, as in process. */
export class AdminClient {
  /** Rejects once the host closes the connection, so a pending request does not wait forever. */
  private readonly closed: Promise<never>;

  private constructor(
    private readonly socket: Socket,
    private readonly connection: MessageConnection,
  ) {
    this.closed = new Promise<never>((_, reject) =>
      socket.once('close', () => reject(new HostError('Unavailable', 'the host closed the admin connection'))),
    );
    this.closed.catch(() => undefined);
  }

  /** Connect to `<dataDir>/admin.sock`; `holder` (the lock holder's pid) only improves the error message. */
  static connect(dataDir: string, holder?: number): Promise<AdminClient> {
    const path = adminSocketPath(dataDir);
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        const by = holder !== undefined ? `process ${holder}` : 'another process';
        reject(
          new HostError('Conflict', `data dir ${dataDir} is in use by ${by} and its admin socket ${path} is not reachable (${err.code ?? err.message})`, {
            reason: err.code ?? 'connect failed',
          }),
        );
      });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.on('error', () => undefined);
        const connection = createMessageConnection(new StreamMessageReader(socket), new StreamMessageWriter(socket));
        connection.listen();
        resolve(new AdminClient(socket, connection));
      });
    });
  }

  /** Bind the connection's session (must come first). */
  open(actor: Actor): Promise<AdminOpenResult> {
    return this.request(AdminOpenRequest.type, actor satisfies AdminOpenParams);
  }

  /** Send one `toka/*` request, bound by its protocol `type`. */
  async request<P, R>(type: RequestType<P, R, ErrorData>, params: RequestParam<P>): Promise<R> {
    try {
      return await Promise.race([this.connection.sendRequest(type, params), this.closed]);
    } catch (err) {
      throw toHostError(err);
    }
  }

  /** Handle a `toka/*` notification (e.g. `toka/events/event` after `toka/events/subscribe`). */
  onNotification<P>(type: NotificationType<P>, handler: (params: P) => void): Disposable {
    return this.connection.onNotification(type, handler);
  }

  close(): void {
    this.connection.dispose();
    this.socket.end();
  }
}

function toHostError(err: unknown): HostError {
  if (err instanceof HostError) return err;
  if (err instanceof ResponseError) {
    const data = (typeof err.data === 'object' && err.data !== null ? err.data : {}) as Record<string, unknown>;
    const { name, ...details } = data;
    if (typeof name === 'string') return new HostError(name as ErrorName, err.message, details);
    return new HostError('InternalError', err.message);
  }
  return new HostError('Unavailable', `admin connection failed: ${(err as Error)?.message ?? String(err)}`);
}
