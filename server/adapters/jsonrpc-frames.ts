/**
 * What the JSON-RPC readers of the stdio face, the admin socket and the WebSocket face share: a guard on
 * `Content-Length` framing that checks each header block before the message reader sees it (and refuses a
 * frame by its header before its body is buffered), and the check that a parsed JSON value is a JSON-RPC 2.0
 * message.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { ErrorCodes } from '../../protocol/errors.js';

/** Longest header block of one framed message. */
export const MAX_HEADER_BYTES = 8 * 1024;

const TERMINATOR = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
/** Bytes searched for the terminator: a header block of MAX_HEADER_BYTES plus the terminator itself. */
const HEADER_WINDOW = MAX_HEADER_BYTES + TERMINATOR.length;
/** `content-length:`, lower case: the header name (and colon) a resynchronising guard looks for. */
const LENGTH_NAME = Buffer.from('content-length:', 'latin1');
/** What a resynchronising guard holds once it found the name: the start of the next header block. */
const LENGTH_HEADER = Buffer.from('Content-Length:', 'latin1');
/** More digits than this in a Content-Length is not a length (2^53 has 16). */
const MAX_LENGTH_DIGITS = 15;

/** A frame the guard refused. */
export type FrameProblem =
  | { kind: 'bodyTooLarge'; declared: number; max: number }
  | { kind: 'noContentLength' }
  | { kind: 'duplicateContentLength' }
  | { kind: 'malformedHeader' }
  | { kind: 'headerTooLarge'; max: number };

export function describeFrameProblem(problem: FrameProblem): string {
  switch (problem.kind) {
    case 'bodyTooLarge':
      return `message of ${problem.declared} bytes over the ${problem.max}-byte limit`;
    case 'noContentLength':
      return 'message header without a numeric Content-Length';
    case 'duplicateContentLength':
      return 'message header with more than one Content-Length';
    case 'malformedHeader':
      return 'message header line is not "Name: value"';
    case 'headerTooLarge':
      return `message header over ${problem.max} bytes`;
  }
}

/** The JSON-RPC error a refused frame is answered with (the answer's id is null: the frame was not read). */
export function frameProblemError(problem: FrameProblem): { code: number; message: string; data: Record<string, unknown> } {
  const message = describeFrameProblem(problem);
  switch (problem.kind) {
    case 'bodyTooLarge':
      return { code: ErrorCodes.LimitExceeded, message, data: { name: 'LimitExceeded', limit: 'messageBytes', max: problem.max } };
    case 'headerTooLarge':
      return { code: ErrorCodes.LimitExceeded, message, data: { name: 'LimitExceeded', limit: 'headerBytes', max: problem.max } };
    default:
      return { code: ErrorCodes.ParseError, message: `parse error: ${message}`, data: { name: 'ParseError' } };
  }
}

export interface FrameGuardOptions {
  /** Largest body accepted, by its declared `Content-Length`. */
  maxBodyBytes: number;
  /** Called once for every frame the guard refuses; the stream goes on (see FrameGuard). */
  onDropped: (problem: FrameProblem) => void;
}

/**
 * Checks the `Content-Length` framing of an incoming byte stream before a message reader buffers anything,
 * so that the reader only ever sees well-formed frames and the two never disagree about where a frame starts.
 *
 * A header block is well-formed when every line is `Name: value` (a token, a colon, a value) and exactly one
 * line is a `Content-Length` of decimal digits. Accepted frames pass through byte for byte; a header block
 * is held back (at most MAX_HEADER_BYTES) until it is complete, a body streams through as it arrives.
 *
 * A refused frame is reported to `onDropped` and never reaches the reader:
 * - a well-formed header declaring more than `maxBodyBytes`: its body is skipped as it arrives, never buffered;
 * - any other problem (a malformed line, no or a non-numeric Content-Length, two Content-Length lines, a header
 *   block over MAX_HEADER_BYTES): where the frame ends is unknown, so the guard drops the header block and then
 *   every byte up to the next `Content-Length:` (any case), where it resynchronises: a header block starts there.
 */
export class FrameGuard extends Transform {
  /** Bytes of an incomplete header block. */
  private header: Buffer = Buffer.alloc(0);
  /** Body bytes still to pass (or to skip, when `skipping`). */
  private remaining = 0;
  private skipping = false;
  /** Resynchronising: dropping input up to the next `Content-Length:`, of which `matched` bytes are seen. */
  private resyncing = false;
  private matched = 0;

  constructor(private readonly options: FrameGuardOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Accepted bytes of this chunk that follow each other are passed on as one slice (`run`), so a chunk of
    // whole frames costs the reader downstream one append, not two per frame.
    let runStart = 0;
    let runEnd = 0;
    const flush = () => {
      if (runEnd > runStart) this.push(chunk.subarray(runStart, runEnd));
      runStart = runEnd;
    };
    const pass = (from: number, to: number) => {
      if (from !== runEnd) {
        flush();
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
      if (this.resyncing) {
        offset = this.resync(chunk, offset);
        continue;
      }
      const held = this.header.length;
      const window =
        held > 0
          ? Buffer.concat([this.header, chunk.subarray(offset, offset + HEADER_WINDOW - held)])
          : chunk.subarray(offset, offset + HEADER_WINDOW);
      const end = window.indexOf(TERMINATOR);
      if (end < 0) {
        if (window.length < HEADER_WINDOW) {
          this.header = Buffer.from(window);
          break;
        }
        offset += window.length - held;
        this.refuseFrame({ kind: 'headerTooLarge', max: MAX_HEADER_BYTES });
        continue;
      }
      const headerStart = offset;
      offset += end + TERMINATOR.length - held;
      this.header = Buffer.alloc(0);
      const length = contentLength(window, end);
      if (length < 0) {
        this.refuseFrame(
          length === NO_LENGTH ? { kind: 'noContentLength' } : length === DUPLICATE ? { kind: 'duplicateContentLength' } : { kind: 'malformedHeader' },
        );
        continue;
      }
      if (length > this.options.maxBodyBytes) {
        this.options.onDropped({ kind: 'bodyTooLarge', declared: length, max: this.options.maxBodyBytes });
        this.remaining = length;
        this.skipping = true;
        continue;
      }
      // A held header (begun in an earlier chunk, or the `Content-Length:` a resync found) goes on whole,
      // after the run so far; one found in this chunk joins the run.
      if (held > 0) {
        flush();
        this.push(window.subarray(0, end + TERMINATOR.length));
      } else pass(headerStart, offset);
      this.remaining = length;
      this.skipping = false;
    }
    flush();
    callback();
  }

  /** Report a frame whose end is unknown and resynchronise. */
  private refuseFrame(problem: FrameProblem): void {
    this.header = Buffer.alloc(0);
    this.resyncing = true;
    this.matched = 0;
    this.options.onDropped(problem);
  }

  /**
   * Drop bytes from `offset` up to the end of the next `Content-Length:` (matched in any case, also across
   * chunks); there a header block starts, held as `Content-Length:`. Returns the offset after what was used.
   */
  private resync(chunk: Buffer, offset: number): number {
    for (let at = offset; at < chunk.length; at++) {
      const byte = chunk[at];
      const lower = byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte;
      if (lower === LENGTH_NAME[this.matched]) {
        if (++this.matched === LENGTH_NAME.length) {
          this.resyncing = false;
          this.matched = 0;
          this.header = LENGTH_HEADER;
          return at + 1;
        }
      } else {
        // `c` occurs only first in the name, so a failed match restarts at this byte or the next.
        this.matched = lower === LENGTH_NAME[0] ? 1 : 0;
      }
    }
    return chunk.length;
  }
}

/** `contentLength` results that are not a length. */
const NO_LENGTH = -1;
const DUPLICATE = -2;
const MALFORMED = -3;

/**
 * The Content-Length of the header block `block[0, end)` (lines separated by CRLF), or NO_LENGTH, DUPLICATE
 * or MALFORMED. Reads bytes in place: no string, no match object.
 */
function contentLength(block: Buffer, end: number): number {
  let length = NO_LENGTH;
  let line = 0;
  while (line < end) {
    let colon = line;
    let named = true;
    while (colon < end && isTokenByte(block[colon])) {
      const byte = block[colon];
      named &&= colon - line < LENGTH_NAME.length - 1 && (byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte) === LENGTH_NAME[colon - line];
      colon++;
    }
    if (colon === line || colon >= end || block[colon] !== 0x3a) return MALFORMED;
    let lineEnd = block.indexOf(CRLF, colon);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    if (named && colon - line === LENGTH_NAME.length - 1) {
      if (length !== NO_LENGTH) return DUPLICATE;
      length = decimal(block, colon + 1, lineEnd);
      if (length === MALFORMED) return NO_LENGTH;
    }
    line = lineEnd + CRLF.length;
  }
  return length;
}

/** The decimal number in `block[from, to)`, spaces and tabs around it allowed; MALFORMED when there is none. */
function decimal(block: Buffer, from: number, to: number): number {
  let at = from;
  while (at < to && (block[at] === 0x20 || block[at] === 0x09)) at++;
  const digits = at;
  let value = 0;
  while (at < to && block[at] >= 0x30 && block[at] <= 0x39) value = value * 10 + (block[at++] - 0x30);
  if (at === digits || at - digits > MAX_LENGTH_DIGITS) return MALFORMED;
  while (at < to && (block[at] === 0x20 || block[at] === 0x09)) at++;
  return at === to ? value : MALFORMED;
}

/** The bytes of an RFC 9110 token (what a header name is made of): 1 where allowed. */
const TOKEN_BYTES = new Uint8Array(128);
for (const c of "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&'*+-.^_`|~") TOKEN_BYTES[c.charCodeAt(0)] = 1;

function isTokenByte(byte: number): boolean {
  return byte < 128 && TOKEN_BYTES[byte] === 1;
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
