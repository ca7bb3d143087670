/**
 * What the JSON-RPC readers of the stdio face, the admin socket and the WebSocket face share: a guard on
 * `Content-Length` framing that refuses a frame by its header before its body is buffered, and the check that
 * a parsed JSON value is a JSON-RPC 2.0 message.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Longest header block of one framed message. */
export const MAX_HEADER_BYTES = 8 * 1024;

const TERMINATOR = Buffer.from('\r\n\r\n', 'latin1');
/** Bytes searched for the terminator: a header block of MAX_HEADER_BYTES plus the terminator itself. */
const HEADER_WINDOW = MAX_HEADER_BYTES + TERMINATOR.length;

/** A frame the guard refused. */
export type FrameProblem =
  | { kind: 'bodyTooLarge'; declared: number; max: number }
  | { kind: 'noContentLength' }
  | { kind: 'headerTooLarge'; max: number };

/** The error a FrameGuard fails its stream with. */
export class FrameError extends Error {
  constructor(readonly problem: FrameProblem) {
    super(describeFrameProblem(problem));
  }
}

export function describeFrameProblem(problem: FrameProblem): string {
  switch (problem.kind) {
    case 'bodyTooLarge':
      return `message of ${problem.declared} bytes over the ${problem.max}-byte limit`;
    case 'noContentLength':
      return 'message header without a numeric Content-Length';
    case 'headerTooLarge':
      return `message header over ${problem.max} bytes`;
  }
}

export interface FrameGuardOptions {
  /** Largest body accepted, by its declared `Content-Length`. */
  maxBodyBytes: number;
  /**
   * Without it, every refused frame fails the stream with a FrameError. With it, a frame the guard can step
   * over — a body over `maxBodyBytes` (skipped as it arrives, never buffered) or a header block without
   * `Content-Length` — is dropped and reported here, and the stream goes on. A header block over
   * MAX_HEADER_BYTES always fails the stream: where the next frame starts is unknown.
   */
  onDropped?: (problem: FrameProblem) => void;
}

/**
 * Checks the `Content-Length` framing of an incoming byte stream before a message reader buffers anything.
 * Accepted frames pass through byte for byte; a header block is held back (at most MAX_HEADER_BYTES) until
 * it is complete, a body streams through as it arrives.
 */
export class FrameGuard extends Transform {
  /** Bytes of an incomplete header block. */
  private header: Buffer = Buffer.alloc(0);
  /** Body bytes still to pass (or to skip, when `skipping`). */
  private remaining = 0;
  private skipping = false;

  constructor(private readonly options: FrameGuardOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Accepted bytes of this chunk that follow each other are passed on as one slice (`run`), so a chunk of
    // whole frames costs the reader downstream one append, not two per frame.
    let runStart = 0;
    let runEnd = 0;
    const pass = (from: number, to: number) => {
      if (from !== runEnd) {
        if (runEnd > runStart) this.push(chunk.subarray(runStart, runEnd));
        runStart = from;
      }
      runEnd = to;
    };
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - offset);
        if (!this.skipping) pass(offset, offset + n);
        offset += n;
        this.remaining -= n;
        continue;
      }
      const held = this.header.length;
      const window =
        held > 0
          ? Buffer.concat([this.header, chunk.subarray(offset, offset + HEADER_WINDOW - held)])
          : chunk.subarray(offset, offset + HEADER_WINDOW);
      const end = window.indexOf(TERMINATOR);
      if (end < 0) {
        if (window.length >= HEADER_WINDOW) return callback(new FrameError({ kind: 'headerTooLarge', max: MAX_HEADER_BYTES }));
        this.header = Buffer.from(window);
        break;
      }
      const headerStart = offset;
      offset += end + TERMINATOR.length - held;
      this.header = Buffer.alloc(0);
      const match = /(?:^|\r\n)content-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)/i.exec(window.toString('latin1', 0, end));
      const problem: FrameProblem | null = !match
        ? { kind: 'noContentLength' }
        : Number(match[1]) > this.options.maxBodyBytes
          ? { kind: 'bodyTooLarge', declared: Number(match[1]), max: this.options.maxBodyBytes }
          : null;
      if (problem === null) {
        // A header that began in the previous chunk (this one starts with its rest; the run is still empty)
        // goes on whole; one found in this chunk joins the run.
        if (held > 0) this.push(window.subarray(0, end + TERMINATOR.length));
        else pass(headerStart, offset);
        this.remaining = Number(match![1]);
        this.skipping = false;
        continue;
      }
      if (!this.options.onDropped) {
        if (runEnd > runStart) this.push(chunk.subarray(runStart, runEnd));
        return callback(new FrameError(problem));
      }
      this.options.onDropped(problem);
      this.remaining = problem.kind === 'bodyTooLarge' ? problem.declared : 0;
      this.skipping = true;
    }
    if (runEnd > runStart) this.push(chunk.subarray(runStart, runEnd));
    callback();
  }
}

/** Why a parsed JSON value is not a JSON-RPC 2.0 message, with the id to answer with; null when it is one. */
export interface InvalidMessage {
  id: string | number | null;
  reason: string;
}

/**
 * Check one parsed JSON value against JSON-RPC 2.0: an object with `jsonrpc: "2.0"` that is a request or
 * notification (string `method`; `id`, when present, a string or a number; `params`, when present, an object
 * or an array) or a response (a string or number `id` and exactly one of `result` and an `error` object with
 * a numeric `code` and a string `message`). Batches are not supported.
 */
export function invalidJsonRpcMessage(message: unknown): InvalidMessage | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return { id: null, reason: Array.isArray(message) ? 'batches are not supported' : 'a JSON-RPC message must be an object' };
  }
  const m = message as Record<string, unknown>;
  const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  if (m.jsonrpc !== '2.0') return { id, reason: 'jsonrpc must be "2.0"' };
  if ('method' in m) {
    if (typeof m.method !== 'string') return { id, reason: 'method must be a string' };
    if ('id' in m && id === null) return { id, reason: 'id must be a string or a number' };
    if ('params' in m && (typeof m.params !== 'object' || m.params === null)) return { id, reason: 'params must be an object or an array' };
    return null;
  }
  if (!('result' in m) && !('error' in m)) return { id, reason: 'neither a request, a notification nor a response' };
  if (id === null) return { id, reason: 'a response id must be a string or a number' };
  if ('result' in m && 'error' in m) return { id, reason: 'a response has either result or error, not both' };
  if ('error' in m) {
    const e = m.error;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return { id, reason: 'error must be an object' };
    const { code, message: text } = e as Record<string, unknown>;
    if (typeof code !== 'number' || !Number.isInteger(code) || typeof text !== 'string') {
      return { id, reason: 'error must have an integer code and a string message' };
    }
  }
  return null;
}
