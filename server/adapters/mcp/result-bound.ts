/**
 * What every transport applies to an outgoing message: the result bound (a response too large to send
 * becomes LimitExceeded) and the error normalisation of errors.ts (`wireMessage`).
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { wireMessage } from './errors.js';

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

/** `message` as sent: bounded (`oversizeResult`) and with its error normalised (`wireMessage`); its JSON text. */
export function outgoing(message: JSONRPCMessage, maxResultBytes: number): { message: JSONRPCMessage; text: string } {
  const normal = wireMessage(message);
  const text = JSON.stringify(normal);
  const refused = oversizeResult(normal, text, maxResultBytes);
  return refused ? { message: refused, text: JSON.stringify(refused) } : { message: normal, text };
}
