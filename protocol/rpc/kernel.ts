/** `toka/kernel/*`: submitting operations. */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { LogRecord } from '../events.js';
import type { Operation } from '../kernel.js';
import type { MessageDirection } from './common.js';

export interface SubmitParams {
  /** The operation; see docs/kernel.md for every type. The kernel validates its fields (InvalidOperation). */
  op: Operation;
}

export interface SubmitResult {
  /** The id the host assigned to the operation (it is in every resulting event as `opId`). */
  opId: string;
  /** The durable log records the operation produced, in order. */
  records: LogRecord[];
}

/**
 * Submit one operation. Answered only once its events are durable in the log.
 * Errors: InvalidParams (`op` not an object), CapabilityDenied, UnknownEntity, InvalidOperation,
 * UnsupportedOperation, LimitExceeded, Unauthenticated, RateLimited, Unavailable.
 */
export namespace KernelSubmitRequest {
  export const method = 'toka/kernel/submit' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<SubmitParams, SubmitResult, ErrorData>(method);
  export const paramsSchema = z.object({
    op: z.custom<Operation>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), { message: 'op must be an object' }),
  });
}
