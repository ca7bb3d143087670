/**
 * Reading HTTP requests safely and answering them, shared by the HTTP, WebSocket-upgrade and MCP faces.
 * `sendJson` is the one writer of JSON answers (errors included) on the HTTP faces: every one carries the same
 * content type, exact length and `nosniff`; `sendError` and `sendJsonRpcError` are its two error shapes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostError } from '../host/errors.js';

/** The body was larger than the caller's bound (declared or actual). */
export class BodyTooLarge extends Error {}

/** Read the whole body as UTF-8, refusing more than `limit` bytes (by Content-Length, then by count). */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return m ? m[1] : null;
}

/** The HTTP status of a HostError. */
export function httpStatusOf(e: HostError): number {
  switch (e.errorName) {
    case 'Unauthenticated':
      return 401;
    case 'CapabilityDenied':
      return 403;
    case 'UnknownEntity':
      return 404;
    case 'Conflict':
      return 409;
    case 'LimitExceeded':
      return 413;
    case 'RateLimited':
      return 429;
    case 'Unavailable':
      return 503;
    case 'InternalError':
      return 500;
    default:
      return 400;
  }
}

/** The `Retry-After` seconds of a RateLimited HostError (at least 1). */
export function retryAfterSeconds(e: HostError): number {
  return Math.max(1, Math.ceil(Number(e.details.retryAfterMs ?? 1000) / 1000));
}

/** Write `body` as the JSON answer with `status`; `headers` add to (or override) the common ones. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** Toka's HTTP error answer: `{ error: { name, message } }`. */
export function sendError(res: ServerResponse, status: number, name: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { name, message } }, headers);
}

/** A host refusal as Toka's HTTP error answer: its status (`httpStatusOf`), and `Retry-After` when rate limited. */
export function sendHostError(res: ServerResponse, e: HostError): void {
  sendError(res, httpStatusOf(e), e.errorName, e.message, e.errorName === 'RateLimited' ? { 'retry-after': String(retryAfterSeconds(e)) } : {});
}

/** A JSON-RPC error response (`{ jsonrpc, id, error: { code, message, data } }`) as the answer with `status`. */
export function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  error: { code: number; message: string; data: Record<string, unknown> },
  options: { id?: string | number | null; headers?: Record<string, string> } = {},
): void {
  sendJson(res, status, { jsonrpc: '2.0', id: options.id ?? null, error }, options.headers);
}

/** Most bytes a streamed (SSE) response may have waiting for a slow reader before it is cut off. */
export const MAX_PENDING_STREAM_BYTES = 4 * 1024 * 1024;

/**
 * Write `chunk` to a streamed response. A reader that has let more than MAX_PENDING_STREAM_BYTES pile up is
 * cut off (the connection is destroyed) rather than buffered without bound: its client resumes or listens again.
 */
export function writeStream(res: ServerResponse, chunk: string): void {
  if (res.destroyed) return;
  if (res.writableLength > MAX_PENDING_STREAM_BYTES) {
    res.destroy();
    return;
  }
  res.write(chunk);
}
