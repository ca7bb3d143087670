/**
 * What every networked provider does around one model call, in one place: the client-side rate limit
 * (`LLM_RATE_LIMIT`), the per-request timeout (`LLM_TIMEOUT`), bounded retries of 429 / 5xx / network
 * errors (honouring `retry-after`), cancellation, the wire-size bound, and error messages scrubbed of keys.
 *
 * The SDKs are built with their own retries off, so there is exactly one retry policy for every provider.
 */
import { LIMITS, LlmError, type LlmErrorCode } from './provider.js';

export interface PolicyOptions {
  /** Requests per minute this provider may start (every attempt counts). */
  ratePerMinute: number;
  /** Milliseconds one HTTP request may take, streaming included. */
  timeoutMs: number;
  /** Retries after the first attempt for `RateLimited` and `Unavailable`. */
  maxRetries: number;
  /** Longest single wait between attempts; a `retry-after` longer than this ends the call instead. */
  maxRetryDelayMs: number;
  /** Strings that must never appear in an error message (the provider's key). */
  secrets: readonly string[];
}

/** Default policy (docs/llm-providers.md). */
export const DEFAULT_POLICY = {
  ratePerMinute: 60,
  timeoutMs: 30_000,
  maxRetries: 2,
  maxRetryDelayMs: 60_000,
} as const;

const RETRYABLE: ReadonlySet<LlmErrorCode> = new Set(['RateLimited', 'Unavailable']);
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 8_000;

/** Sleeps `ms`, or rejects with `Cancelled` as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(cancelled());
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function cancelled(): LlmError {
  return new LlmError('Cancelled', 'the LLM call was cancelled');
}

/**
 * At most `perMinute` starts in any 60-second window. A caller over the limit waits (abortably) until the
 * oldest start in the window is a minute old.
 */
export class RateLimiter {
  private readonly starts: number[] = [];
  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  async acquire(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw cancelled();
      const t = this.now();
      while (this.starts.length > 0 && this.starts[0] <= t - 60_000) this.starts.shift();
      if (this.starts.length < this.perMinute) {
        this.starts.push(t);
        return;
      }
      await sleep(this.starts[0] + 60_000 - t, signal);
    }
  }
}

/** Replaces every secret in `text` and keeps it short (server error bodies end up in messages). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('[redacted]');
  return out.length > 500 ? `${out.slice(0, 500)}…` : out;
}

/** Milliseconds a response asks us to wait: `retry-after-ms`, else `retry-after` (seconds or HTTP date). */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The error for an HTTP status a provider answered with. */
export function httpError(provider: string, status: number, message: string, headers?: Headers): LlmError {
  const text = `${provider}: HTTP ${status}${message ? `: ${message}` : ''}`;
  const wait = retryAfterMs(headers);
  const options = wait !== undefined ? { retryAfterMs: wait } : {};
  if (status === 401 || status === 403) return new LlmError('Unauthenticated', text);
  if (status === 429) return new LlmError('RateLimited', text, options);
  if (status === 408 || status >= 500) return new LlmError('Unavailable', text, options);
  return new LlmError('BadRequest', text);
}

/**
 * A `fetch` for the SDKs: joins the call's signal (the SDK may not pass one on every request) and caps the
 * response body at `LIMITS.wireBytes`.
 */
export function boundedFetch(signal: () => AbortSignal | undefined): typeof fetch {
  return async (input, init) => {
    const own = signal();
    const joined = own && init?.signal ? AbortSignal.any([own, init.signal]) : (own ?? init?.signal ?? undefined);
    const response = await fetch(input, { ...init, signal: joined });
    if (!response.body) return response;
    let seen = 0;
    const cap = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > LIMITS.wireBytes) {
          controller.error(new LlmError('LimitExceeded', `the response body passed ${LIMITS.wireBytes} bytes`));
          return;
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(cap), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** Finds an `LlmError` this module raised, however deep an SDK wrapped it (`cause` chains). */
export function ownError(err: unknown): LlmError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof LlmError) return e;
  }
  return undefined;
}

export interface Attempt {
  /** Aborts on the caller's cancel or this attempt's timeout; pass it to the SDK call. */
  signal: AbortSignal;
  /** Set once text has been handed to `onText`; such an attempt is not retried (text would repeat). */
  streamed: { value: boolean };
}

/**
 * Runs `attempt` under the policy. `classify` turns an SDK's error into an `LlmError` (it never sees
 * cancellation or timeout, which are decided here from the signals).
 */
export class Policy {
  private readonly limiter: RateLimiter;
  constructor(
    readonly options: PolicyOptions,
    readonly provider: string,
  ) {
    this.limiter = new RateLimiter(options.ratePerMinute);
  }

  async run<T>(signal: AbortSignal, attempt: (a: Attempt) => Promise<T>, classify: (err: unknown) => LlmError): Promise<T> {
    const { timeoutMs, maxRetries, maxRetryDelayMs, secrets } = this.options;
    for (let n = 0; ; n++) {
      await this.limiter.acquire(signal);
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), timeoutMs);
      const streamed = { value: false };
      let error: LlmError;
      try {
        return await attempt({ signal: AbortSignal.any([signal, timeout.signal]), streamed });
      } catch (err) {
        if (signal.aborted) throw cancelled();
        if (timeout.signal.aborted) {
          throw new LlmError('Timeout', `${this.provider}: no complete reply within ${timeoutMs} ms (LLM_TIMEOUT)`);
        }
        const own = ownError(err) ?? classify(err);
        error = new LlmError(own.code, scrub(own.message, secrets), own.retryAfterMs !== undefined ? { retryAfterMs: own.retryAfterMs } : {});
      } finally {
        clearTimeout(timer);
      }
      if (!RETRYABLE.has(error.code) || n >= maxRetries || streamed.value) throw error;
      const wait = error.retryAfterMs ?? Math.min(BACKOFF_BASE_MS * 2 ** n, BACKOFF_MAX_MS);
      if (wait > maxRetryDelayMs) throw error;
      await sleep(wait, signal);
    }
  }
}
