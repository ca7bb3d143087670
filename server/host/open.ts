/**
 * Opening a host: the data dir and its lock, the event log, the key ring, and the kernel rebuilt by replay.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing } from '../auth/keyring.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { TokenService, type RevocationView } from '../auth/tokens.js';
import { grantStatus, Kernel, tokenRevoked, type OpcodeHandler } from '../kernel/kernel.js';
import type { EventLog } from '../store/event-log.js';
import { openEventLog } from '../store/index.js';
import { HostCore } from './core.js';
import { HostError } from './errors.js';
import { DataDirLock } from './lock.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';

export interface HostOptions {
  /** Data dir (SQLite log `events.db`, key ring `keys.json`); null = memory log and an ephemeral key (tests). */
  dataDir: string | null;
  /**
   * An event log already opened by the embedder, used instead of the data dir's (which must then be null):
   * for tests that need to hold a commit open, and for engines other than SQLite.
   */
  eventLog?: EventLog;
  /** Open without the writer lock and refuse every write (CLI read commands next to a running host). */
  readOnly?: boolean;
  /** Clock, ms since the epoch. */
  now?: () => number;
  /** Environment (TOKA_HS256_SECRET ...). Defaults to process.env. */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** Per-principal (vault and subject) rate limit; false disables it. Default 200/s, burst 400. */
  rateLimit?: { ratePerSec: number; burst: number } | false;
  /**
   * Write a snapshot after at least this many events (default 1000); for a large state, after at least one
   * event per `SNAPSHOT_CHARS_PER_EVENT` characters of the previous snapshot.
   */
  snapshotEvery?: number;
  /** Extra opcode handlers (registered before replay, in order). */
  handlers?: OpcodeHandler[];
}

/** Progress reporting and cancellation for long host calls. */
export interface VerifyProgress {
  /** `fraction` in 0..1. */
  onProgress?(fraction: number, message: string): void;
  signal?: AbortSignal;
}

/**
 * Records per read during replay. Small enough that a page's parsed events die young (a page of 10,000 kept
 * them alive long enough to be promoted, and replay spent its time in GC); large enough to amortise a query.
 */
const REPLAY_PAGE = 1_000;

export async function openCore(options: HostOptions): Promise<HostCore> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createLogger();
  const env = options.env ?? process.env;
  let lock: DataDirLock | null = null;
  let log: EventLog;
  let keyRing: KeyRing;
  if (options.dataDir === null) {
    log = options.eventLog ?? openEventLog({ kind: 'memory' });
    keyRing = await KeyRing.open({
      env: { ...env, TOKA_HS256_SECRET: env.TOKA_HS256_SECRET ?? randomBytes(32).toString('base64url') },
      now,
    });
  } else {
    if (options.eventLog) throw new TypeError('HostOptions: give a data dir or an event log, not both');
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    if (!options.readOnly) lock = DataDirLock.acquire(options.dataDir);
    try {
      log = openEventLog({ kind: 'sqlite', path: join(options.dataDir, 'events.db'), readOnly: options.readOnly });
      keyRing = await KeyRing.open({ file: join(options.dataDir, 'keys.json'), env, now });
    } catch (err) {
      lock?.release();
      throw err;
    }
  }
  const handlers = options.handlers ?? [];
  const kernel = await replay(log, handlers, 'snapshot', {}, logger);
  const revocation: RevocationView = {
    isTokenRevoked: (jti, vault) => tokenRevoked(kernel.state, jti, vault),
    grantState: (id, nowMs) => grantStatus(kernel.state, id, nowMs),
  };
  const tokens = new TokenService({ keyRing, revocation, now });
  const rate = options.rateLimit ?? { ratePerSec: 200, burst: 400 };
  return new HostCore({
    kernel,
    log,
    keyRing,
    tokens,
    limiter: rate === false ? null : new RateLimiter({ ...rate, now }),
    lock,
    logger,
    metrics: new Metrics(),
    now,
    readOnly: options.readOnly ?? false,
    snapshotEvery: options.snapshotEvery ?? 1000,
    handlers,
  });
}

/**
 * Rebuild a kernel from the log: from the newest snapshot whose digest checks out (`snapshot`),
 * or from the first record (`zero`).
 */
export async function replay(
  log: EventLog,
  handlers: OpcodeHandler[],
  from: 'snapshot' | 'zero',
  progress: VerifyProgress = {},
  logger?: Logger,
): Promise<Kernel> {
  let kernel = new Kernel();
  let afterSeq = 0;
  if (from === 'snapshot') {
    try {
      const snap = await log.latestSnapshot();
      if (snap && handlers.some((h) => h.acceptsSnapshot?.(snap.state) === false)) {
        // Written by a version whose handlers kept their state in another layout: the log itself is the truth.
        logger?.warn('newest snapshot is in an older state layout; replaying from the first record', { seq: snap.seq });
      } else if (snap) {
        kernel = new Kernel({ state: snap.state, adopt: true });
        afterSeq = snap.seq;
      }
    } catch (err) {
      // The log refuses a snapshot that no longer matches its digest: the log itself is the truth.
      logger?.warn('newest snapshot rejected; replaying from the first record', { err });
    }
  }
  for (const handler of handlers) kernel.register(handler);
  const headSeq = log.head().seq;
  for (;;) {
    if (progress.signal?.aborted) throw new HostError('RequestCancelled', 'replay cancelled');
    const page = await log.read({ afterSeq, limit: REPLAY_PAGE });
    for (const record of page) kernel.apply(record.event);
    if (page.length < REPLAY_PAGE) return kernel;
    afterSeq = page[page.length - 1].seq;
    progress.onProgress?.(afterSeq / Math.max(headSeq, 1), `replayed ${afterSeq} of ${headSeq}`);
    // A cancellable replay yields between pages so a cancellation (and other requests) can get in.
    if (progress.signal) await new Promise((resolve) => setImmediate(resolve));
  }
}
