/** Shared helpers for the event-log tests. */
import type { LogRecord } from '../../../protocol/events.js';
import type { KernelEvent } from '../../../protocol/kernel.js';

/** A well-formed event; `n` makes it unique. */
export function ev(n: number, fields: { type?: string; vault?: string; agent?: string; data?: unknown } = {}): KernelEvent {
  return {
    type: fields.type ?? 'ObservationEmitted',
    opId: `op-${n}`,
    at: 1_700_000_000_000 + n,
    by: { sub: 'alice', jti: 'jti-1' },
    vault: fields.vault ?? 'v1',
    agent: fields.agent ?? 'agent-1',
    index: n,
    data: fields.data ?? { n },
  };
}

export function seqs(records: LogRecord[]): number[] {
  return records.map((r) => r.seq);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Resolves after the current macrotask turn (past any setImmediate flush scheduled before it). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A promise plus its resolver. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
