/**
 * A local HTTP server (127.0.0.1, port 0) standing in for a hosted LLM API in tests: each request is
 * recorded (method, path, headers, parsed JSON body) and answered by the next scripted responder, which
 * writes the API's real wire format (JSON, SSE or NDJSON) with node:http. It also records whether each
 * response's connection was closed by the client before the response finished (cancellation).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

export type Responder = (res: ServerResponse, req: RecordedRequest) => void | Promise<void>;

export class WireServer {
  readonly requests: RecordedRequest[] = [];
  /** One entry per response: resolves `true` when the client closed the connection before the end. */
  readonly closedEarly: Promise<boolean>[] = [];
  private readonly responders: Responder[] = [];
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WireServer> {
    let wire: WireServer | undefined;
    const server = createServer((req, res) => void wire!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    wire = new WireServer(server, `http://127.0.0.1:${port}`);
    return wire;
  }

  /** Queue responders, used one per request in order. */
  reply(...responders: Responder[]): this {
    this.responders.push(...responders);
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    this.requests.push(recorded);
    this.open.add(res);
    this.closedEarly.push(
      new Promise((resolve) =>
        res.on('close', () => {
          this.open.delete(res);
          resolve(!res.writableFinished);
        }),
      ),
    );
    const responder = this.responders.shift();
    if (!responder) {
      res.writeHead(599, { 'content-type': 'text/plain' }).end('no responder queued');
      return;
    }
    await responder(res, recorded);
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Responder {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };
}

/** Server-sent events, written one by one; `hold` leaves the stream open after the events (cancel tests). */
export function sse(events: { event?: string; data: unknown }[], options: { hold?: boolean; raw?: string } = {}): Responder {
  return async (res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const e of events) {
      const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
      res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${data}\n\n`);
      await new Promise((r) => setImmediate(r));
    }
    if (options.raw !== undefined) res.write(options.raw);
    if (!options.hold) res.end();
  };
}

/** Newline-delimited JSON (Ollama's streaming format); `lines` may hold raw strings to send as they are. */
export function ndjson(lines: unknown[], options: { hold?: boolean } = {}): Responder {
  return async (res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const line of lines) {
      res.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`);
      await new Promise((r) => setImmediate(r));
    }
    if (!options.hold) res.end();
  };
}

/** Never answers (timeout tests); the connection stays open until the client gives up. */
export const silent: Responder = () => undefined;

/** Resolves with `true` if `p` settles to true within `ms`. */
export async function within(p: Promise<boolean>, ms: number): Promise<boolean> {
  return Promise.race([p, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

/** A conversation with an earlier tool call and its result, offering one tool: every mapping is exercised. */
export const sampleRequest = {
  system: 'You are a test agent.',
  messages: [
    { role: 'user' as const, text: 'What is in a.txt?' },
    { role: 'assistant' as const, text: 'Listing first.', toolCalls: [{ id: 'call_1', name: 'files_list', arguments: { path: '.' } }] },
    { role: 'tool' as const, results: [{ callId: 'call_1', content: 'a.txt\nb.txt', isError: false }] },
  ],
  tools: [
    {
      name: 'files_read',
      description: 'Read a file of the workspace',
      inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
    },
  ],
  maxOutputTokens: 512,
};

/** A key shaped like a real one; tests assert it never appears in errors or logs. */
export const TEST_KEY = 'sk-test-9f8e7d6c5b4a39281706fedcba';
