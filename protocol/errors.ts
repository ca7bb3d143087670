/**
 * The one error-code table. Every face (CLI, stdio, WebSocket, HTTP, MCP, A2A) reports failures with these
 * names and JSON-RPC codes. A failure's JSON-RPC `error.data` is `{ name, ...details }`: match on
 * `data.name`, which is stable across faces; the number is what a generic JSON-RPC client sees.
 *
 * Toka's own (application) errors use the block `TOKA_ERROR_CODE_RANGE`, -31999..-31900: outside the range
 * JSON-RPC 2.0 reserves for itself and for implementations (-32768..-32000), where LSP
 * (ServerNotInitialized -32002, RequestCancelled -32800), MCP (resource not found -32002) and A2A
 * (-32001..-32009) put their codes. A Toka code therefore never means something else on a connection that
 * also speaks one of those protocols. The reserved-range codes below are used only with the meaning the
 * protocol that defines them gives them. See docs/protocol.md.
 */

/** The block of codes Toka's application errors use; JSON-RPC allows any code outside -32768..-32000. */
export const TOKA_ERROR_CODE_RANGE = {
  /** Lowest code of the block. */
  min: -31999,
  /** Highest code of the block. */
  max: -31900,
} as const;

/** The range JSON-RPC 2.0 reserves for pre-defined errors; no Toka application code lies in it. */
export const JSONRPC_RESERVED_CODE_RANGE = {
  /** Lowest reserved code. */
  min: -32768,
  /** Highest reserved code. */
  max: -32000,
} as const;

/** Toka's application errors, in `TOKA_ERROR_CODE_RANGE`. */
export const ApplicationErrorCodes = {
  /** Kernel: the token does not cover the operation, `sub` ≠ origin, or the target is outside the vault. */
  CapabilityDenied: -31901,
  /** Kernel: an agent, grant or task named by the operation does not exist. */
  UnknownEntity: -31902,
  /** Kernel: the operation is malformed; `data.reason` says how. */
  InvalidOperation: -31903,
  /** Kernel: no handler is registered for the operation type. */
  UnsupportedOperation: -31904,
  /** A documented bound was hit; `data.limit` names it, `data.max` gives it. */
  LimitExceeded: -31905,
  /** No valid token: missing, malformed, expired, revoked, bad signature; `data.reason` is a stable auth code. */
  Unauthenticated: -31910,
  /** The subject sent too many requests; `data.retryAfterMs` says when to retry. */
  RateLimited: -31911,
  /** The host is shutting down or not ready. */
  Unavailable: -31912,
  /** The request conflicts with current state (e.g. the data dir is held by another process). */
  Conflict: -31913,
} as const;

/** Codes defined by JSON-RPC 2.0 and LSP, used exactly with their defined meaning. */
export const ProtocolErrorCodes = {
  /** JSON-RPC: the frame is not valid JSON (answered with `id: null`). */
  ParseError: -32700,
  /** JSON-RPC: the JSON is not a valid request object, or the request is not allowed in this state. */
  InvalidRequest: -32600,
  /** JSON-RPC: no such method on this face. */
  MethodNotFound: -32601,
  /** JSON-RPC: the params do not match the method's schema; `data.field` names the offending field. */
  InvalidParams: -32602,
  /** JSON-RPC: an unexpected failure inside the host (details go to the host's log, not to the caller). */
  InternalError: -32603,
  /** LSP: a request other than `initialize` arrived before `initialize` (stdio face only). */
  ServerNotInitialized: -32002,
  /** LSP: the client cancelled the request. */
  RequestCancelled: -32800,
} as const;

/** Every error a Toka face reports, by name. */
export const ErrorCodes = { ...ApplicationErrorCodes, ...ProtocolErrorCodes } as const;

export type ErrorName = keyof typeof ErrorCodes;

/** The `error.data` carried by every Toka JSON-RPC error. */
export interface ErrorData {
  /** The error's stable name from `ErrorCodes`. */
  name: ErrorName;
  /** Details named per error in docs/protocol.md (`field`, `reason`, `limit`, `max`, `retryAfterMs`, ...). */
  [detail: string]: unknown;
}
