/** Shared bits of the `toka/*` JSON-RPC protocol. */
import type { RequestType } from 'vscode-jsonrpc';
import type { z } from 'zod';
import type { ErrorData } from '../errors.js';

/** Which side sends a message. */
export type MessageDirection = 'clientToServer' | 'serverToClient';

/** Version of the `toka/*` protocol, advertised at `initialize` and by `toka/host/info`. */
export const TOKA_PROTOCOL_VERSION = '0.1.0';

/** Largest JSON-RPC message a Toka endpoint accepts, in bytes (observations are ≤ 1 MiB plus envelope). */
export const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;

/**
 * What every request namespace of `protocol/rpc` exports: the method, who sends it, the `type` both sides
 * bind by, and the one zod schema that decodes its params. A server decodes with `paramsSchema` before
 * anything else runs (a mismatch is InvalidParams with `data.field`); a client may check its params with it
 * before sending.
 */
export interface RequestDefinition<P, R> {
  /** The JSON-RPC method name, `toka/<area>/<verb>`. */
  readonly method: string;
  /** Who sends the request. */
  readonly messageDirection: MessageDirection;
  /** The typed signature to pass to `onRequest` / `sendRequest`. */
  readonly type: RequestType<P, R, ErrorData>;
  /** Decodes (and bounds) the params; its output is exactly `P`. */
  readonly paramsSchema: z.ZodType<P>;
}

/** Params of a request that takes none: an empty object (unknown fields are ignored). */
export type NoParams = Record<string, never>;
