/** The bound on MCP results, applied by every transport: a response too large to send becomes LimitExceeded. */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCodes } from '../../../protocol/errors.js';

/**
 * Given an outgoing message and its JSON text, the LimitExceeded (-31905) error response that replaces a
 * response whose JSON exceeds `maxResultBytes` (naming the bound), else null.
 */
export function oversizeResult(message: JSONRPCMessage, text: string, maxResultBytes: number): JSONRPCMessage | null {
  if (text.length * 3 <= maxResultBytes || !('result' in message)) return null;
  const size = Buffer.byteLength(text);
  if (size <= maxResultBytes) return null;
  return {
    jsonrpc: '2.0',
    id: message.id,
    error: {
      code: ErrorCodes.LimitExceeded,
      message: `result of ${size} bytes exceeds the MCP result bound of ${maxResultBytes} bytes`,
      data: { name: 'LimitExceeded', limit: 'mcp.maxResultBytes', max: maxResultBytes, size },
    },
  };
}

/** Wraps a transport so responses over the result bound are refused (see `oversizeResult`). */
export class BoundedTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly maxResultBytes: number,
  ) {}
  set onclose(handler: (() => void) | undefined) {
    this.inner.onclose = handler;
  }
  set onerror(handler: ((error: Error) => void) | undefined) {
    this.inner.onerror = handler;
  }
  set onmessage(handler: Transport['onmessage']) {
    this.inner.onmessage = handler;
  }
  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }
  setProtocolVersion = (version: string): void => this.inner.setProtocolVersion?.(version);
  start(): Promise<void> {
    return this.inner.start();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (!('result' in message)) return this.inner.send(message, options);
    const refused = oversizeResult(message, JSON.stringify(message), this.maxResultBytes);
    return this.inner.send(refused ?? message, options);
  }
}
