/**
 * The kernel's typed failure. Every rejection of an operation is a `KernelError` with a stable `code`
 * (one of the names of `protocol/errors.ts`) and a small JSON `data` object describing the failure.
 */
import { DELEGATION_RULES, type DelegationFault } from '../../protocol/capability.js';
import type { KernelErrorCode } from '../../protocol/kernel.js';
import { ErrorCodes, type ErrorData } from '../../protocol/errors.js';

/** Entities the kernel can fail to find. */
export type EntityKind = 'agent' | 'grant' | 'task';

export class KernelError extends Error {
  readonly code: KernelErrorCode;
  /**
   * Details by code. `LimitExceeded`: `{limit, max, actual}`; `InvalidOperation`: `{reason}`;
   * `UnknownEntity`: `{entity, id}`; `CapabilityDenied`: `{reason, required?}`; `UnsupportedOperation`: `{type}`.
   */
  readonly data: Record<string, unknown>;

  constructor(code: KernelErrorCode, message: string, data: Record<string, unknown>) {
    super(message);
    this.name = 'KernelError';
    this.code = code;
    this.data = data;
  }

  /** The JSON-RPC error code of `code` (from the one table in protocol/errors.ts). */
  get rpcCode(): number {
    return ErrorCodes[this.code];
  }

  /** The JSON-RPC `error.data` for this failure: `{ name, ...data }`. */
  toErrorData(): ErrorData {
    return { ...this.data, name: this.code };
  }

  static invalid(reason: string): KernelError {
    return new KernelError('InvalidOperation', `invalid operation: ${reason}`, { reason });
  }

  static limit(limit: string, max: number, actual: number): KernelError {
    return new KernelError('LimitExceeded', `limit ${limit} exceeded: ${actual} > ${max}`, { limit, max, actual });
  }

  static unknown(entity: EntityKind, id: string): KernelError {
    return new KernelError('UnknownEntity', `unknown ${entity} ${JSON.stringify(id)}`, { entity, id });
  }

  static denied(reason: string, required?: string): KernelError {
    const data: Record<string, unknown> = { reason };
    if (required !== undefined) data.required = required;
    return new KernelError('CapabilityDenied', `capability denied: ${reason}`, data);
  }

  /**
   * A refused delegation, with the vocabulary auth uses (`data.reason` = the rule's code): a depth beyond the
   * bound is `LimitExceeded` (with `extra` naming the limit), any other rule `CapabilityDenied`.
   */
  static delegation(fault: DelegationFault, extra: Record<string, unknown> = {}): KernelError {
    const code: KernelErrorCode = fault === 'ERR_DELEGATION_DEPTH' ? 'LimitExceeded' : 'CapabilityDenied';
    return new KernelError(code, `delegation refused: ${DELEGATION_RULES[fault]}`, { ...extra, reason: fault });
  }

  static unsupported(kind: 'operation' | 'event', type: string): KernelError {
    return new KernelError('UnsupportedOperation', `no handler for ${kind} type ${JSON.stringify(type)}`, { type });
  }
}
