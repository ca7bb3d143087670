/**
 * The log's task records, followed once for the whole A2A face. One in-process watch hands each committed
 * record of a run (TASK_EVENT_TYPES) to the streams following that run and keeps the latest ones, so the stream
 * of a message, which starts right after its run is submitted, finds its first records here: no log read and
 * no watch of its own per message (both were a measurable part of a `SendMessage`'s cost: a read of the
 * agent's records, a catch-up read and a subscription, and every record handed to every open stream).
 * The watch starts with the first stream and lasts as long as the host (closing the host ends it).
 */
import type { LogRecord } from '../../../protocol/events.js';
import type { Host } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import type { Subscription } from '../../store/event-log.js';
import { TASK_EVENT_TYPES } from './tasks.js';

const TASK_EVENT_SET: ReadonlySet<string> = new Set(TASK_EVENT_TYPES);

/** Task records kept after delivery, for the streams that start just after their run's first records. */
export const FEED_RECENT = 256;

/** A stream following one run. */
export interface Following {
  /**
   * True when every record of the run after the `afterSeq` given to `follow` reaches the listener (kept ones
   * and live ones); false when some came before the feed's memory, so the caller reads them from the log
   * (the listener may then get some of them again: skip what the read covered, by seq).
   */
  readonly covered: boolean;
  /** Resolves once the listener has had every record of the run committed before `follow` was called. */
  readonly ready: Promise<void>;
  unsubscribe(): void;
}

interface Follower {
  vault: string;
  listener: (record: LogRecord) => void;
}

export class TaskFeed {
  private watching: Subscription | null = null;
  private readonly followers = new Map<string, Set<Follower>>();
  /** The last `keep` task records seen, oldest first, as a ring (`recent[next]` is the oldest once full). */
  private readonly recent: LogRecord[] = [];
  private next = 0;
  /** Every task record with a seq above this that the feed has seen is in `recent`. */
  private keptAfter = 0;
  /** Seq of the last record of any kind the feed has seen. */
  private through = 0;
  /** Streams waiting for the feed to reach a seq. */
  private readonly reaching: { seq: number; resolve: () => void }[] = [];

  constructor(
    private readonly host: Host,
    private readonly logger: Logger,
    /** Task records kept (default `FEED_RECENT`). */
    private readonly keep: number = FEED_RECENT,
  ) {
    if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`keep must be an integer ≥ 1, got ${keep}`);
  }

  /** Streams following a run now. */
  get following(): number {
    let n = 0;
    for (const set of this.followers.values()) n += set.size;
    return n;
  }

  /**
   * Hand `listener` every task record of `run` (in `vault`) with a seq above `afterSeq`, in seq order: first
   * the kept ones, at once, then each live one as it is committed, until `unsubscribe()`.
   */
  follow(vault: string, run: string, afterSeq: number, listener: (record: LogRecord) => void): Following {
    this.start();
    const follower: Follower = { vault, listener };
    let set = this.followers.get(run);
    if (!set) this.followers.set(run, (set = new Set()));
    set.add(follower);
    const covered = afterSeq >= this.keptAfter;
    if (covered) {
      // Newest first, down to `afterSeq` only: a stream starting right after its run's submission looks at
      // the few records since, not at every record kept.
      const kept: LogRecord[] = [];
      for (let i = this.recent.length - 1; i >= 0; i--) {
        const record = this.recent[(this.next + i) % this.recent.length];
        if (record.seq <= afterSeq) break;
        if (runOf(record) === run && record.event.vault === vault) kept.push(record);
      }
      for (let i = kept.length - 1; i >= 0; i--) listener(kept[i]);
    }
    const head = this.host.headSeq();
    const ready = this.through >= head || this.host.isClosing ? Promise.resolve() : new Promise<void>((resolve) => this.reaching.push({ seq: head, resolve }));
    return {
      covered,
      ready,
      unsubscribe: () => {
        set.delete(follower);
        if (set.size === 0 && this.followers.get(run) === set) this.followers.delete(run);
      },
    };
  }

  private start(): void {
    if (this.watching) return;
    const head = this.host.headSeq();
    this.keptAfter = head;
    this.through = head;
    this.watching = this.host.watch(head, (record) => this.take(record));
  }

  private take(record: LogRecord): void {
    this.through = record.seq;
    if (TASK_EVENT_SET.has(record.event.type)) {
      if (this.recent.length < this.keep) this.recent.push(record);
      else {
        this.keptAfter = this.recent[this.next].seq;
        this.recent[this.next] = record;
        this.next = (this.next + 1) % this.keep;
      }
      const set = this.followers.get(runOf(record));
      if (set) {
        for (const follower of set) {
          if (follower.vault !== record.event.vault) continue;
          try {
            follower.listener(record);
          } catch (err) {
            // A listener only queues the record; one that throws must not end the feed of every other stream.
            this.logger.error('a2a task feed listener failed', { err });
          }
        }
      }
    }
    while (this.reaching.length > 0 && this.reaching[0].seq <= record.seq) this.reaching.shift()!.resolve();
  }
}

/** The run a task record belongs to (`RunSubmitted` carries the whole run record). */
function runOf(record: LogRecord): string {
  const e = record.event as unknown as { type: string; run: string | { id: string } };
  return e.type === 'RunSubmitted' ? (e.run as { id: string }).id : (e.run as string);
}
