/**
 * A vscode-jsonrpc connection over a WebSocket to a host's `/rpc` (one JSON-RPC message per WebSocket
 * message), authenticated with `Authorization: Bearer <token>` on the upgrade. The token is never logged.
 */
import WebSocket from 'ws';
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  createMessageConnection,
  type DataCallback,
  type Disposable,
  type Message,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import * as vscode from 'vscode';
import { MAX_MESSAGE_BYTES } from '../../protocol/rpc/index.js';

class SocketReader extends AbstractMessageReader {
  private callback: DataCallback | undefined;
  private readonly early: Message[] = [];

  constructor(socket: WebSocket) {
    super();
    socket.on('message', (data) => {
      let message: Message;
      try {
        message = JSON.parse(data.toString()) as Message;
      } catch (err) {
        this.fireError(err);
        return;
      }
      if (this.callback) this.callback(message);
      else this.early.push(message);
    });
    socket.on('error', (err) => this.fireError(err));
    socket.on('close', () => this.fireClose());
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    for (const m of this.early.splice(0)) callback(m);
    return { dispose: () => (this.callback = undefined) };
  }
}

class SocketWriter extends AbstractMessageWriter {
  constructor(private readonly socket: WebSocket) {
    super();
  }

  write(message: Message): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(JSON.stringify(message), (err) => {
        if (err) {
          this.fireError([err, message, undefined]);
          reject(err);
        } else resolve();
      }),
    );
  }

  end(): void {
    this.socket.close();
  }
}

/** Open `url` (ws:// or wss://) with `token` and start listening; rejects when the upgrade is refused. */
export function openWebSocketConnection(url: string, token: string, log: vscode.LogOutputChannel): Promise<MessageConnection> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, maxPayload: MAX_MESSAGE_BYTES });
    socket.once('unexpected-response', (_req, res) => {
      reject(new Error(`the host refused the connection: HTTP ${res.statusCode}`));
      socket.terminate();
    });
    socket.once('error', (err) => reject(err));
    socket.once('open', () => {
      log.appendLine(`[toka] connected to ${url}`);
      const connection = createMessageConnection(new SocketReader(socket), new SocketWriter(socket));
      connection.onDispose(() => socket.close());
      connection.listen();
      resolve(connection);
    });
  });
}
