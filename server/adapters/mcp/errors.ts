/** How host refusals become MCP errors: JSON-RPC errors carrying Toka's `{ name, ...details }` as `data`. */
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { HostError } from '../../host/errors.js';

/** Host errors that make the whole session unusable: JSON-RPC errors even inside a tool call. */
export const SESSION_ERRORS = new Set(['Unauthenticated', 'Unavailable', 'InternalError', 'RequestCancelled']);

/** A JSON-RPC error carrying Toka's error name and details. */
export function mcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  const e = HostError.from(err);
  return new McpError(e.code, e.message, e.data);
}

export function invalidParams(message: string): McpError {
  return new McpError(ErrorCode.InvalidParams, message, { name: 'InvalidParams' });
}
