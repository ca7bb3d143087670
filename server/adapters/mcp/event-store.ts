/** The SSE event window behind `Last-Event-ID` resumption on MCP Streamable HTTP (one per session). */

/** A stored SSE event: its id and its data (JSON text; empty for a priming event, which only marks a position). */
export interface StoredEvent {
  id: string;
  data: string;
}

/**
 * A bounded, per-session SSE event window for `Last-Event-ID` resumption. Event ids are
 * `<streamId>.<n>`; the window holds at most `maxEvents` events and `maxBytes` bytes of their data, forgetting
 * the oldest first (a resume from a forgotten id replays nothing older than the window). Events are held as
 * their JSON text, so their size is exact and nothing else keeps the message objects alive. Synchronous, so
 * the transport writes each event in the order it was stored.
 */
export class WindowEventStore {
  private readonly events: { id: string; streamId: string; n: number; data: string; bytes: number }[] = [];
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

  /** Bytes of data held now. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Store an event of `streamId` (`data` empty for a priming event); its id. */
  store(streamId: string, data: string): string {
    const n = this.next++;
    const id = `${streamId}.${n}`;
    const bytes = Buffer.byteLength(data);
    this.events.push({ id, streamId, n, data, bytes });
    this.heldBytes += bytes;
    while (this.size > this.maxEvents || this.heldBytes > this.maxBytes) this.heldBytes -= this.events[this.head++].bytes;
    if (this.head > 64 && this.head * 2 > this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
    return id;
  }

  /** The stream an event id belongs to, or undefined when it is not an id of this store's form. */
  streamOf(eventId: string): string | undefined {
    const dot = eventId.lastIndexOf('.');
    return dot > 0 && /^\d+$/.test(eventId.slice(dot + 1)) ? eventId.slice(0, dot) : undefined;
  }

  /** The held events of `eventId`'s stream that followed it, oldest first, priming events left out. */
  after(eventId: string): StoredEvent[] {
    const streamId = this.streamOf(eventId);
    const after = Number(eventId.slice(eventId.lastIndexOf('.') + 1));
    const found: StoredEvent[] = [];
    for (let i = this.head; i < this.events.length; i++) {
      const e = this.events[i];
      if (e.streamId === streamId && e.n > after && e.data) found.push({ id: e.id, data: e.data });
    }
    return found;
  }
}
