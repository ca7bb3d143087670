/**
 * Per-subject token-bucket rate limiting. Each subject's bucket holds up to `burst` tokens and refills
 * continuously at `ratePerSec`; a request costs `cost` tokens. At most `maxSubjects` buckets are tracked:
 * the least recently used is forgotten first (a forgotten bucket comes back full).
 */
import { AuthError } from './errors.js';

export const DEFAULT_MAX_SUBJECTS = 10_000;

export interface RateLimiterOptions {
  /** Refill rate, tokens per second (> 0). */
  ratePerSec: number;
  /** Bucket capacity (≥ 1): the most requests admitted at once after a quiet period. */
  burst: number;
  /** Clock, ms since the epoch. */
  now?: () => number;
  /** Most subjects tracked at once. Default 10 000. */
  maxSubjects?: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

export class RateLimiter {
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly maxSubjects: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: RateLimiterOptions) {
    if (!Number.isFinite(opts.ratePerSec) || opts.ratePerSec <= 0) throw new RangeError('ratePerSec must be > 0');
    if (!Number.isFinite(opts.burst) || opts.burst < 1) throw new RangeError('burst must be ≥ 1');
    const maxSubjects = opts.maxSubjects ?? DEFAULT_MAX_SUBJECTS;
    if (!Number.isInteger(maxSubjects) || maxSubjects < 1) throw new RangeError('maxSubjects must be an integer ≥ 1');
    this.ratePerMs = opts.ratePerSec / 1000;
    this.burst = opts.burst;
    this.now = opts.now ?? Date.now;
    this.maxSubjects = maxSubjects;
  }

  /**
   * Takes `cost` tokens from `subject`'s bucket, or throws AuthError ERR_RATE_LIMITED whose `retryAfterMs`
   * is the time until the bucket holds `cost` tokens. A refused request takes nothing.
   */
  take(subject: string, cost = 1): void {
    if (!Number.isFinite(cost) || cost <= 0 || cost > this.burst) {
      throw new RangeError(`cost must be > 0 and ≤ burst (${this.burst})`);
    }
    const at = this.now();
    const bucket = this.buckets.get(subject);
    let tokens = this.burst;
    if (bucket) {
      tokens = Math.min(this.burst, bucket.tokens + Math.max(0, at - bucket.at) * this.ratePerMs);
      this.buckets.delete(subject);
    } else if (this.buckets.size >= this.maxSubjects) {
      const lru = this.buckets.keys().next();
      if (!lru.done) this.buckets.delete(lru.value);
    }
    if (tokens >= cost) {
      this.buckets.set(subject, { tokens: tokens - cost, at });
      return;
    }
    this.buckets.set(subject, { tokens, at });
    // Subtract a rounding allowance so that floating-point noise never adds a whole millisecond.
    const retryAfterMs = Math.max(1, Math.ceil((cost - tokens) / this.ratePerMs - 1e-6));
    throw new AuthError('ERR_RATE_LIMITED', `rate limit exceeded; retry in ${retryAfterMs} ms`, { retryAfterMs });
  }

  /** Number of subjects currently tracked. */
  trackedSubjects(): number {
    return this.buckets.size;
  }
}
