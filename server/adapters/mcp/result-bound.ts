/**
 * What every transport applies to an outgoing message: the result bound (a response too large to send
 * becomes LimitExceeded) and the error normalisation of errors.ts (`wireMessage`); and its JSON text, made
 * once. A tool result carries its `structuredContent` twice, as the object and as the JSON text of its first
 * content item (registry.ts `toolResult`): that JSON, which the result carries under `STRUCTURED_JSON` (a
 * symbol: never serialised), is spliced into the message's text instead of serialising the object again.
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

/** On a tool result (registry.ts `toolResult`): its `structuredContent` and that object's JSON text. */
export const STRUCTURED_JSON = Symbol('structuredContent JSON');

interface StructuredJson {
  of: object;
  json: string;
}

/** The JSON text of `message`, reusing the JSON its result carries of its `structuredContent`. */
function messageText(message: JSONRPCMessage): string {
  const result = 'result' in message ? (message.result as Record<string | symbol, unknown>) : undefined;
  const known = result?.[STRUCTURED_JSON] as StructuredJson | undefined;
  if (known === undefined || known.of !== result!.structuredContent) return JSON.stringify(message);
  const { structuredContent: _reused, ...rest } = result!;
  const others = JSON.stringify(rest);
  const body = others === '{}' ? `{"structuredContent":${known.json}}` : `${others.slice(0, -1)},"structuredContent":${known.json}}`;
  return `{"jsonrpc":"2.0","id":${JSON.stringify((message as { id: unknown }).id)},"result":${body}}`;
}

/** `message` as sent: bounded (`oversizeResult`) and with its error normalised (`wireMessage`); its JSON text. */
export function outgoing(message: JSONRPCMessage, maxResultBytes: number): { message: JSONRPCMessage; text: string } {
  const normal = wireMessage(message);
  const text = messageText(normal);
  const refused = oversizeResult(normal, text, maxResultBytes);
  return refused ? { message: refused, text: JSON.stringify(refused) } : { message: normal, text };
}
