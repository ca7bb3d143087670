/**
 * How failures become MCP errors: JSON-RPC errors carrying Toka's `{ name, ...details }` as `data`, and the
 * one normalisation every outgoing error passes (`wireMessage`, applied by the transports): the message
 * without the SDK's `MCP error <code>: ` prefix (a client adds its own, so it would read twice), and
 * `data.name` on every error, SDK-made ones included.
 */
import { ErrorCode, McpError, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';

/** Host errors that make the whole session unusable: JSON-RPC errors even inside a tool call. */
export const SESSION_ERRORS = new Set(['Unauthenticated', 'Unavailable', 'InternalError', 'RequestCancelled']);

/** MCP's resource-not-found code (server/resources, "Error Handling"). */
export const RESOURCE_NOT_FOUND = -32002;

/** Names of the codes MCP (and its SDK) use besides Toka's table, for `data.name`. */
const MCP_CODE_NAMES = new Map<number, string>([
  [RESOURCE_NOT_FOUND, 'ResourceNotFound'],
  [ErrorCode.RequestTimeout, 'RequestTimeout'],
  [ErrorCode.ConnectionClosed, 'ConnectionClosed'],
  [ErrorCode.UrlElicitationRequired, 'UrlElicitationRequired'],
]);
const TOKA_CODE_NAMES = new Map<number, string>(
  Object.entries(ErrorCodes)
    .filter(([name]) => name !== 'ServerNotInitialized')
    .map(([name, code]) => [code, name]),
);

/** A JSON-RPC error carrying Toka's error name and details. */
export function mcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  const e = HostError.from(err);
  return new McpError(e.code, e.message, e.data);
}

export function invalidParams(message: string): McpError {
  return new McpError(ErrorCode.InvalidParams, message, { name: 'InvalidParams' });
}

/** MCP's resource-not-found error for `uri`. */
export function resourceNotFound(uri: string): McpError {
  return new McpError(RESOURCE_NOT_FOUND, `Resource not found: ${uri}`, { name: 'ResourceNotFound', uri });
}

const PREFIX = /^MCP error -?\d+: /;

/** `message` as it goes on the wire: an error's message prefixed at most by nothing, and `data.name` set. */
export function wireMessage(message: JSONRPCMessage): JSONRPCMessage {
  if (!('error' in message)) return message;
  const { code, message: text, data } = message.error;
  let stripped = text;
  while (PREFIX.test(stripped)) stripped = stripped.replace(PREFIX, '');
  const hasName = typeof data === 'object' && data !== null && typeof (data as { name?: unknown }).name === 'string';
  if (stripped === text && hasName) return message;
  const name = MCP_CODE_NAMES.get(code) ?? TOKA_CODE_NAMES.get(code) ?? 'InternalError';
  const named = hasName ? data : { ...(typeof data === 'object' && data !== null && !Array.isArray(data) ? data : data === undefined ? {} : { detail: data }), name };
  return { ...message, error: { code, message: stripped, data: named } };
}
