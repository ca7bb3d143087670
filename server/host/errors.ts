/**
 * HostError: the one error every face reports. Kernel and auth errors are translated here, once,
 * into a name from protocol/errors.ts plus details; adapters only map `name` to their wire.
 */
import { ErrorCodes, type ErrorData, type ErrorName } from '../../protocol/errors.js';
import { AuthError } from '../auth/errors.js';
import { KernelError } from '../kernel/errors.js';

export class HostError extends Error {
  constructor(
    readonly errorName: ErrorName,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HostError';
  }

  get code(): number {
    return ErrorCodes[this.errorName];
  }

  /** The JSON-RPC `error.data` for this error. */
  get data(): ErrorData {
    return { name: this.errorName, ...this.details };
  }

  /** Translate anything thrown below the host into a HostError (unknown errors become InternalError). */
  static from(err: unknown): HostError {
    if (err instanceof HostError) return err;
    if (err instanceof KernelError) return new HostError(err.code, err.message, err.data);
    if (err instanceof AuthError) {
      if (err.code === 'ERR_RATE_LIMITED') {
        return new HostError('RateLimited', err.message, { retryAfterMs: err.retryAfterMs ?? 0 });
      }
      if (err.code.startsWith('ERR_DELEGATION')) {
        return new HostError(err.code === 'ERR_DELEGATION_DEPTH' ? 'LimitExceeded' : 'CapabilityDenied', err.message, {
          reason: err.code,
        });
      }
      return new HostError('Unauthenticated', err.message, { reason: err.code });
    }
    return new HostError('InternalError', 'internal error');
  }
}
