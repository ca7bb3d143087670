/**
 * Subscriptions over an event log, shared by every engine.
 *
 * A subscriber first catches up from storage (in pages), then receives live records as the log publishes them
 * after commit. From the moment it subscribes, every published record it wants is buffered, so a record
 * committed while it catches up is either in a page it read or in that buffer — never neither (no gap);
 * buffered records the pages already covered are dropped at the switch to live (no duplicate).
 * Delivery is sequential: the next `onRecord` call waits for the promise the previous one returned.
 * Publishing never waits for a subscriber: a live subscriber whose undelivered queue exceeds its buffer
 * limit is ended with `overflow`; while catching up, an overflowing buffer is discarded instead and the
 * subscriber keeps reading from storage, which holds every committed record.
 */
import type { EventFilter, LogRecord } from '../../protocol/events.js';
import type { SubscribeOptions, Subscription, SubscriptionEnd, SubscriptionListener } from './event-log.js';

/** Default and maximum records per read. */
export const MAX_READ_LIMIT = 10_000;
/** Default most undelivered records a live subscriber may hold before it is ended with `overflow`. */
export const DEFAULT_BUFFER_LIMIT = 10_000;
/** Records read from storage per catch-up page. */
export const CATCH_UP_PAGE = 1_000;

/** Reads records with seq > afterSeq matching `filter`, in seq order, at most `limit` of them. */
export type PageReader = (afterSeq: number, limit: number, filter: EventFilter | undefined) => Promise<LogRecord[]>;

/** The fields a filter looks at. */
export interface FilterFields {
  type: string;
  vault: string;
  agent?: string | null;
}

/** Whether an event passes `filter` (every given field must match; `types: []` matches nothing). */
export function matchesFilter(filter: EventFilter | undefined, event: FilterFields): boolean {
  if (filter === undefined) return true;
  if (filter.vault !== undefined && event.vault !== filter.vault) return false;
  if (filter.agent !== undefined && event.agent !== filter.agent) return false;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  return true;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SubscriptionHub {
  private readonly subscribers = new Set<Subscriber>();

  constructor(private readonly reader: PageReader) {}

  subscribe(options: SubscribeOptions, listener: SubscriptionListener): Subscription {
    const { afterSeq, filter, bufferLimit = DEFAULT_BUFFER_LIMIT } = options;
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new RangeError(`afterSeq must be an integer ≥ 0, got ${afterSeq}`);
    if (!Number.isSafeInteger(bufferLimit) || bufferLimit < 1) throw new RangeError(`bufferLimit must be an integer ≥ 1, got ${bufferLimit}`);
    const subscriber = new Subscriber(this, this.reader, afterSeq, filter, bufferLimit, listener);
    this.subscribers.add(subscriber);
    void subscriber.catchUp();
    return subscriber;
  }

  /** Hands newly committed records (in seq order) to every subscriber. Never waits for one. */
  publish(records: LogRecord[]): void {
    for (const subscriber of this.subscribers) subscriber.offer(records);
  }

  /** Ends every subscription with `{ reason: 'closed' }`. */
  closeAll(): void {
    for (const subscriber of [...this.subscribers]) subscriber.end({ reason: 'closed' });
  }

  /** @internal */
  remove(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
  }
}

class Subscriber implements Subscription {
  private active = true;
  private live = false;
  /** Undelivered records; `queue[head]` is the next one. */
  private queue: LogRecord[] = [];
  private head = 0;
  private draining = false;
  /** The buffer overflowed while catching up and was discarded: storage must be read again. */
  private discarded = false;
  /** Highest seq the storage reads have covered. */
  private caughtUpTo: number;
  /** Seq of the last record handed to `onRecord` that did not fail (the resume point). */
  private lastDelivered: number;

  constructor(
    private readonly hub: SubscriptionHub,
    private readonly reader: PageReader,
    afterSeq: number,
    private readonly filter: EventFilter | undefined,
    private readonly limit: number,
    private readonly listener: SubscriptionListener,
  ) {
    this.caughtUpTo = afterSeq;
    this.lastDelivered = afterSeq;
  }

  unsubscribe(): void {
    this.stop();
  }

  end(end: SubscriptionEnd): void {
    if (!this.active) return;
    this.stop();
    try {
      this.listener.onEnd?.(end);
    } catch {
      // onEnd is a notification; a throwing one must not reach the log or other subscribers.
    }
  }

  offer(records: LogRecord[]): void {
    if (!this.active) return;
    for (const record of records) {
      if (record.seq > this.caughtUpTo && matchesFilter(this.filter, record.event)) this.queue.push(record);
    }
    if (this.queue.length - this.head <= this.limit) {
      if (this.live && !this.draining && this.head < this.queue.length) {
        this.draining = true;
        queueMicrotask(() => void this.drain());
      }
    } else if (this.live) {
      this.end({ reason: 'overflow', lastDeliveredSeq: this.lastDelivered, limit: this.limit });
    } else {
      this.queue = [];
      this.head = 0;
      this.discarded = true;
    }
  }

  async catchUp(): Promise<void> {
    try {
      for (;;) {
        if (this.discarded) {
          // Buffering restarts before the read below, so that read plus the new buffer cover everything.
          this.discarded = false;
          this.queue = [];
          this.head = 0;
        }
        const page = await this.reader(this.caughtUpTo, CATCH_UP_PAGE, this.filter);
        if (!this.active) return;
        if (page.length > 0) this.caughtUpTo = page[page.length - 1].seq;
        for (const record of page) {
          if (!(await this.deliver(record))) return;
        }
        if (page.length < CATCH_UP_PAGE && !this.discarded) break;
      }
    } catch (err) {
      this.end({ reason: 'error', lastDeliveredSeq: this.lastDelivered, message: `catch-up read failed: ${message(err)}` });
      return;
    }
    while (this.head < this.queue.length && this.queue[this.head].seq <= this.caughtUpTo) this.head++;
    this.live = true;
    this.draining = true;
    await this.drain();
  }

  private async drain(): Promise<void> {
    while (this.active && this.head < this.queue.length) {
      const record = this.queue[this.head++];
      if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (!(await this.deliver(record))) return;
    }
    this.draining = false;
  }

  /** Hands one record to the listener; false when the subscription is (or just got) ended. */
  private async deliver(record: LogRecord): Promise<boolean> {
    if (!this.active) return false;
    const previous = this.lastDelivered;
    this.lastDelivered = record.seq;
    try {
      await this.listener.onRecord(record);
    } catch (err) {
      this.end({ reason: 'error', lastDeliveredSeq: previous, message: message(err) });
      return false;
    }
    return this.active;
  }

  private stop(): void {
    this.active = false;
    this.queue = [];
    this.head = 0;
    this.hub.remove(this);
  }
}
