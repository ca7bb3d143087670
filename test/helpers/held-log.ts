import type { LogRecord } from '../../protocol/events.js';
import type { KernelEvent } from '../../protocol/kernel.js';
import { MemoryEventLog } from '../../server/store/index.js';

/** A memory log whose appends wait while a commit is held open, and fail when the held commit fails. */
export class HeldLog extends MemoryEventLog {
  private held: { promise: Promise<void>; release(): void; fail(err: Error): void } | null = null;

  hold(): void {
    let release!: () => void;
    let fail!: (err: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    this.held = { promise, release, fail };
  }

  releaseHeld(): void {
    this.held?.release();
    this.held = null;
  }

  failHeld(): void {
    this.held?.fail(new Error('disk gone'));
    this.held = null;
  }

  override async append(events: KernelEvent[]): Promise<LogRecord[]> {
    if (this.held) await this.held.promise;
    return super.append(events);
  }
}

