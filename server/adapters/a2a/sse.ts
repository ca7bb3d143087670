/**
 * Server-Sent Events for the A2A bindings over HTTP (JSON-RPC and HTTP+JSON): one writer, each binding gives
 * its framing. The first update decides between a stream and a plain error answer (a request refused before
 * anything happened gets the binding's HTTP status); after it, updates go out as `id: <log position>` +
 * `data:` events, honouring backpressure, with keep-alive comments, and a failure mid-stream ends the stream
 * with the binding's error event.
 */
import type { ServerResponse } from 'node:http';
import type { Hangup } from './handler.js';

export interface SseFraming<T> {
  /** Interval of keep-alive comments, ms. */
  keepAliveMs: number;
  /** Happens when the connection goes (or the face shuts down): the stream stops at the next update. */
  hangup: Hangup;
  /** The event id of the update just taken from the stream (its log position). */
  eventId(): string;
  /** The `data:` of one update (JSON, one line). */
  data(update: T): string;
  /** The whole last event when the stream fails after it started (`data:` and maybe `event:` lines). */
  errorEvent(err: unknown): string;
  /** Answer a failure before the first update, as the binding answers errors. */
  refuse(err: unknown): void;
}

export async function writeSse<T>(res: ServerResponse, stream: AsyncGenerator<T, void, undefined>, framing: SseFraming<T>): Promise<void> {
  let first: IteratorResult<T, void>;
  try {
    first = await stream.next();
  } catch (err) {
    await stream.return(undefined);
    return framing.refuse(err);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), framing.keepAliveMs);
  try {
    let step = first;
    while (!step.done && !framing.hangup.happened) {
      if (!res.write(`id: ${framing.eventId()}\ndata: ${framing.data(step.value)}\n\n`)) {
        await new Promise<void>((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      }
      try {
        step = await stream.next();
      } catch (err) {
        res.write(framing.errorEvent(err));
        break;
      }
    }
  } finally {
    clearInterval(keepAlive);
    await stream.return(undefined);
    res.end();
  }
}
