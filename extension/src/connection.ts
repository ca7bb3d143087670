/**
 * The extension's one connection to a Toka host, in either of two modes:
 * - `bundled` (default): the host shipped in dist/ started as a language server with vscode-languageclient
 *   (`toka serve --stdio --data <workspace>/.toka`), restarted by the client when it dies, its stderr in the
 *   "Toka Host" output channel; it also serves the spec-file language features;
 * - `remote` (`toka.server.url` set): a WebSocket to a running host's `/rpc`, authenticated with a capability
 *   token kept in SecretStorage and renewed before it expires (see `TokenKeeper`).
 * Either way the rest of the extension sees `TokaRpc`: requests and notifications bound by the protocol's
 * `type` objects.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, State, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import type { CancellationToken, Disposable, MessageConnection, NotificationType, ProgressType, RequestParam, RequestType } from 'vscode-jsonrpc';
import type { ErrorData } from '../../protocol/errors.js';
import { HostInfoRequest, type HostInfo } from '../../protocol/rpc/index.js';
import { openWebSocketConnection } from './websocket.js';
import { TokenKeeper } from './token.js';

/** What the views and commands use to talk to the host. */
export interface TokaRpc {
  request<P, R>(definition: { type: RequestType<P, R, ErrorData> }, params: P, token?: CancellationToken): Promise<R>;
  onNotification<P>(type: NotificationType<P>, handler: (params: P) => void): Disposable;
  onProgress<P>(type: ProgressType<P>, token: string, handler: (value: P) => void): Disposable;
}

export type ConnectionState = 'stopped' | 'starting' | 'running' | 'failed';

/** Spec documents the bundled host serves language features for (see docs/extension.md). */
export const SPEC_DOCUMENT_SELECTOR: vscode.DocumentSelector = [
  { scheme: 'file', pattern: '**/*.agent.{yaml,yml,json}' },
  { scheme: 'file', pattern: '**/agents/*.{yaml,yml,json}' },
];

interface Channel {
  rpc: TokaRpc;
  /** Resolves when the channel is closed for good (not restarted). */
  stop(): Promise<void>;
}

export class HostConnection implements TokaRpc, vscode.Disposable {
  private channel: Channel | undefined;
  private client: LanguageClient | undefined;
  private readonly notificationHandlers: { type: NotificationType<unknown>; handler: (p: unknown) => void; live?: Disposable }[] = [];
  private readonly stateEmitter = new vscode.EventEmitter<ConnectionState>();
  private readonly readyEmitter = new vscode.EventEmitter<HostInfo>();
  private current: ConnectionState = 'stopped';
  private info: HostInfo | undefined;
  private tokens: TokenKeeper | undefined;
  /** True while `start()` runs: the client's own restarts are announced by its state changes instead. */
  private booting = false;
  private restarting: Promise<void> = Promise.resolve();
  /** Why the last start failed, for the status bar tooltip. */
  lastError: string | undefined;

  /** Fires on every state change. */
  readonly onDidChangeState = this.stateEmitter.event;
  /** Fires each time a (re)started connection is ready, with `toka/host/info`. */
  readonly onDidBecomeReady = this.readyEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {}

  get state(): ConnectionState {
    return this.current;
  }

  get hostInfo(): HostInfo | undefined {
    return this.info;
  }

  /** Which host this is (`bundled:<data dir>` or `remote:<url>`), set when a connection starts. */
  target = '';

  /** `bundled` or `remote`, from the settings. */
  get mode(): 'bundled' | 'remote' {
    return remoteUrl() ? 'remote' : 'bundled';
  }

  /** The language client of the bundled host (tests and the restart command use it). */
  get languageClient(): LanguageClient | undefined {
    return this.client;
  }

  async start(): Promise<void> {
    if (this.channel) return;
    this.setState('starting');
    this.booting = true;
    try {
      this.channel = this.mode === 'remote' ? await this.startRemote() : await this.startBundled();
      for (const h of this.notificationHandlers) h.live = this.channel.rpc.onNotification(h.type, h.handler);
      await this.ready();
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.appendLine(`[toka] could not connect: ${this.lastError}`);
      this.setState('failed');
      await this.stop(true);
      throw err;
    } finally {
      this.booting = false;
    }
  }

  async stop(keepState = false): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.client = undefined;
    this.tokens?.dispose();
    this.tokens = undefined;
    for (const h of this.notificationHandlers) {
      h.live?.dispose();
      h.live = undefined;
    }
    if (channel) await channel.stop().catch((err) => this.log.appendLine(`[toka] stop: ${(err as Error).message}`));
    if (!keepState) this.setState('stopped');
  }

  /** Resolves (or rejects) with the last restart asked for. */
  settled(): Promise<void> {
    return this.restarting;
  }

  /** Stop and start again; concurrent calls run one after the other (never two connections at once). */
  restart(): Promise<void> {
    const next = this.restarting.catch(() => undefined).then(async () => {
      await this.stop();
      await this.start();
    });
    this.restarting = next;
    return next;
  }

  request<P, R>(definition: { type: RequestType<P, R, ErrorData> }, params: P, token?: CancellationToken): Promise<R> {
    if (!this.channel || this.current !== 'running') return Promise.reject(new Error('Toka: not connected to a host (Toka: Restart Host or Toka: Connect to Host)'));
    return this.channel.rpc.request(definition, params, token);
  }

  onNotification<P>(type: NotificationType<P>, handler: (params: P) => void): Disposable {
    const entry = { type: type as NotificationType<unknown>, handler: handler as (p: unknown) => void, live: undefined as Disposable | undefined };
    this.notificationHandlers.push(entry);
    if (this.channel) entry.live = this.channel.rpc.onNotification(entry.type, entry.handler);
    return {
      dispose: () => {
        entry.live?.dispose();
        this.notificationHandlers.splice(this.notificationHandlers.indexOf(entry), 1);
      },
    };
  }

  onProgress<P>(type: ProgressType<P>, token: string, handler: (value: P) => void): Disposable {
    if (!this.channel) return { dispose: () => undefined };
    return this.channel.rpc.onProgress(type, token, handler);
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.readyEmitter.dispose();
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.stateEmitter.fire(state);
  }

  /** Ask `toka/host/info`, then announce the connection as running. */
  private async ready(): Promise<void> {
    if (!this.channel) return;
    this.info = await this.channel.rpc.request(HostInfoRequest, {});
    this.lastError = undefined;
    this.setState('running');
    this.tokens?.schedule(this.info);
    this.readyEmitter.fire(this.info);
  }

  private async startBundled(): Promise<Channel> {
    const config = vscode.workspace.getConfiguration('toka');
    const hostScript = this.context.asAbsolutePath(path.join('dist', 'toka.mjs'));
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const dataSetting = config.get<string>('host.dataDir', '.toka');
    if (!folder && !path.isAbsolute(dataSetting)) throw new Error('open a folder (the host keeps its data dir in it), or set toka.host.dataDir to an absolute path');
    const dataDir = path.resolve(folder ?? '/', dataSetting);
    this.target = `bundled:${dataDir}`;
    const env = { ...process.env, ...config.get<Record<string, string>>('host.env', {}) };
    const serverOptions: ServerOptions = {
      command: config.get<string>('host.node', 'node'),
      args: [hostScript, 'serve', '--data', dataDir],
      transport: TransportKind.stdio,
      options: { env, cwd: folder },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: SPEC_DOCUMENT_SELECTOR as LanguageClientOptions['documentSelector'],
      outputChannel: this.log,
      initializationOptions: { vault: config.get<string>('vault', 'default') },
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher('**/*.{yaml,yml,json}') },
      connectionOptions: { maxRestartCount: 5 },
    };
    const client = new LanguageClient('toka', 'Toka Host', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState(({ oldState, newState }) => {
      if (this.client !== client) return;
      if (newState === State.Running && oldState !== State.Running && !this.booting) {
        // The client restarted a host that died: announce it again once it answers.
        this.log.appendLine('[toka] the host was restarted');
        void this.ready().catch((err) => this.log.appendLine(`[toka] host info after restart: ${(err as Error).message}`));
      } else if (newState === State.Starting) {
        this.setState('starting');
      } else if (newState === State.Stopped && this.channel) {
        this.setState('failed');
      }
    });
    await client.start();
    return {
      rpc: {
        request: (definition, params, token) => client.sendRequest(definition.type, params as RequestParam<typeof params>, token),
        onNotification: (type, handler) => client.onNotification(type, handler),
        onProgress: (type, token, handler) => client.onProgress(type, token, handler),
      },
      stop: async () => {
        if (client.isRunning()) await client.stop(5000);
        await client.dispose();
      },
    };
  }

  private async startRemote(): Promise<Channel> {
    const url = remoteUrl()!;
    this.target = `remote:${url}`;
    const keeper = new TokenKeeper(this.context.secrets, this.log, async () => {
      // A renewed token: reconnect with it, keeping the handlers.
      this.log.appendLine('[toka] token renewed: reconnecting');
      await this.restart();
    });
    const token = await keeper.current();
    if (!token) throw new Error('no token for the host: run "Toka: Connect to Host" and paste a capability token');
    const connection: MessageConnection = await openWebSocketConnection(url, token, this.log);
    this.tokens = keeper;
    keeper.bind((definition, params) => connection.sendRequest(definition.type, params as RequestParam<typeof params>));
    let closing = false;
    connection.onClose(() => {
      if (closing || this.channel?.rpc !== rpc) return;
      this.log.appendLine('[toka] the WebSocket closed');
      this.setState('failed');
    });
    const rpc: TokaRpc = {
      request: (definition, params, token) => connection.sendRequest(definition.type, params as RequestParam<typeof params>, token),
      onNotification: (type, handler) => connection.onNotification(type, handler),
      onProgress: (type, token, handler) => connection.onProgress(type, token, handler),
    };
    return {
      rpc,
      stop: async () => {
        closing = true;
        connection.dispose();
      },
    };
  }
}

function remoteUrl(): string | undefined {
  const url = vscode.workspace.getConfiguration('toka').get<string>('server.url', '').trim();
  return url === '' ? undefined : url;
}
