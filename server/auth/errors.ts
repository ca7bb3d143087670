/**
 * Errors of the auth layer. Every failure carries a stable `code` (jose-style) that faces report as
 * `error.data.reason`; messages never contain a token, a secret or key material.
 */

/** Stable codes of token, delegation and rate-limit failures. */
export const AUTH_ERROR_CODES = [
  'ERR_TOKEN_MALFORMED',
  'ERR_TOKEN_TOO_LARGE',
  'ERR_TOKEN_TYPE',
  'ERR_ALG_NOT_ALLOWED',
  'ERR_UNKNOWN_KID',
  'ERR_KEY_RETIRED',
  'ERR_SIGNATURE_INVALID',
  'ERR_TOKEN_EXPIRED',
  'ERR_IAT_IN_FUTURE',
  'ERR_LIFETIME_TOO_LONG',
  'ERR_CLAIMS_INVALID',
  'ERR_TOKEN_REVOKED',
  'ERR_GRANT_REVOKED',
  'ERR_GRANT_EXPIRED',
  'ERR_GRANT_UNKNOWN',
  'ERR_AUDIENCE',
  'ERR_DELEGATION_WIDENS',
  'ERR_DELEGATION_DEPTH',
  'ERR_DELEGATION_EXPIRY',
  'ERR_RATE_LIMITED',
] as const;

export type AuthErrorCode = (typeof AUTH_ERROR_CODES)[number];

/** A token was refused, a delegation was refused, or a subject was rate limited. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code: AuthErrorCode;
  /** Only for `ERR_RATE_LIMITED`: milliseconds until the request would be admitted. */
  readonly retryAfterMs?: number;

  constructor(code: AuthErrorCode, message: string, opts: { retryAfterMs?: number } = {}) {
    super(message);
    this.code = code;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Stable codes of key ring failures (configuration and key file problems, not token problems). */
export type KeyRingErrorCode =
  /** The key file is readable or writable by group or others. */
  | 'ERR_KEY_FILE_MODE'
  /** The key file is not a valid Toka key ring. */
  | 'ERR_KEY_FILE_INVALID'
  /** `TOKA_HS256_SECRET` is not base64url or decodes to fewer than 32 bytes. */
  | 'ERR_ENV_SECRET_INVALID'
  /** The operation needs a key the environment manages (rotate the env secret by changing it). */
  | 'ERR_KEY_ENV_MANAGED';

/** The key ring cannot be opened or changed. Messages name the file, never its contents. */
export class KeyRingError extends Error {
  override readonly name = 'KeyRingError';
  readonly code: KeyRingErrorCode;

  constructor(code: KeyRingErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
