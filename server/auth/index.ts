/** Capability tokens, key ring, revocation view and rate limiting. See docs/security-model.md. */
export { AUTH_ERROR_CODES, AuthError, KeyRingError } from './errors.js';
export type { AuthErrorCode, KeyRingErrorCode } from './errors.js';
export {
  DEFAULT_ROTATION_OVERLAP_MS,
  HS256_SECRET_MIN_BYTES,
  KeyRing,
  SIGNING_ALGS,
} from './keyring.js';
export type { KeyInfo, KeyRingOptions, PublicJwk, RingKey, SigningAlg } from './keyring.js';
export { DEFAULT_CACHE_SIZE, ID_MAX_CHARS, TokenService } from './tokens.js';
export type {
  CacheStats,
  DelegateInput,
  MintInput,
  MintResult,
  RevocationView,
  TokenServiceOptions,
} from './tokens.js';
export { DEFAULT_MAX_SUBJECTS, RateLimiter } from './rate-limit.js';
export type { RateLimiterOptions } from './rate-limit.js';
