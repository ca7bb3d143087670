/** The SSE event store behind `Last-Event-ID` resumption on MCP Streamable HTTP (one per session). */
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * A bounded, per-session SSE event window for `Last-Event-ID` resumption. Event ids are
 * `<streamId>.<n>`; the window holds at most `maxEvents` events and `maxBytes` bytes of their JSON, forgetting
 * the oldest first (a resume from a forgotten id replays nothing older than the window). Events are held as
 * their JSON text, so their size is exact and nothing else keeps the message objects alive.
 */
export class WindowEventStore implements EventStore {
  private readonly events: { id: string; streamId: string; n: number; text: string; bytes: number }[] = [];
  /** Index of the oldest held event: evicting moves it; the array is compacted once half of it is dead. */
  private head = 0;
  private next = 0;
  private heldBytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  /** Events held now. */
  get size(): number {
    return this.events.length - this.head;
  }

  /** Bytes of JSON held now. */
  get bytes(): number {
    return this.heldBytes;
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const n = this.next++;
    const id = `${streamId}.${n}`;
    const text = JSON.stringify(message);
    const bytes = Buffer.byteLength(text);
    this.events.push({ id, streamId, n, text, bytes });
    this.heldBytes += bytes;
    while (this.size > this.maxEvents || this.heldBytes > this.maxBytes) this.heldBytes -= this.events[this.head++].bytes;
    if (this.head > 64 && this.head * 2 > this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const dot = eventId.lastIndexOf('.');
    return dot > 0 && /^\d+$/.test(eventId.slice(dot + 1)) ? eventId.slice(0, dot) : undefined;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const streamId = (await this.getStreamIdForEventId(lastEventId)) ?? '';
    const after = Number(lastEventId.slice(lastEventId.lastIndexOf('.') + 1));
    // A copy: events stored (and evicted) while `send` awaits must not shift this walk.
    for (const e of this.events.slice(this.head)) {
      if (e.streamId !== streamId || e.n <= after) continue;
      const message = JSON.parse(e.text) as JSONRPCMessage;
      // Priming events carry an empty message: they only mark a position.
      if ('jsonrpc' in message) await send(e.id, message);
    }
    return streamId;
  }
}
