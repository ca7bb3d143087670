/**
 * The one error-code table. Every face (CLI, stdio, WebSocket, HTTP, MCP, A2A) reports failures with these
 * names and JSON-RPC codes (server range -32000..-32099, plus the JSON-RPC standard codes).
 * A failure's JSON-RPC `error.data` is `{ name, ...details }`.
 */
export const ErrorCodes = {
  /** Kernel: the token does not cover the operation, `sub` ≠ origin, or the target is outside the vault. */
  CapabilityDenied: -32001,
  /** Kernel: an agent, grant or task named by the operation does not exist. */
  UnknownEntity: -32002,
  /** Kernel: the operation is malformed; `data.reason` says how. */
  InvalidOperation: -32003,
  /** Kernel: no handler is registered for the operation type. */
  UnsupportedOperation: -32004,
  /** A documented bound was hit; `data.limit` names it, `data.max` gives it. */
  LimitExceeded: -32005,
  /** No valid token: missing, malformed, expired, revoked, bad signature; `data.reason` is a stable auth code. */
  Unauthenticated: -32010,
  /** The subject sent too many requests; `data.retryAfterMs` says when to retry. */
  RateLimited: -32011,
  /** The host is shutting down or not ready. */
  Unavailable: -32012,
  /** The request conflicts with current state (e.g. the data dir is held by another process). */
  Conflict: -32013,
  /** JSON-RPC standard codes. */
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** LSP-style: the client cancelled the request. */
  RequestCancelled: -32800,
} as const;

export type ErrorName = keyof typeof ErrorCodes;

/** The `error.data` carried by every Toka JSON-RPC error. */
export interface ErrorData {
  name: ErrorName;
  [detail: string]: unknown;
}
