/**
 * MCP: `tools/call` of a cheap tool (get_state) per second, Toka's MCP face against a bare SDK `McpServer`
 * exposing an equivalent tool (same host call, same result) in the same run.
 * - stdio: both servers on in-memory pipes (Toka: `toka mcp`'s transport and session; bare: the SDK's
 *   StdioServerTransport), one SDK Client each over the same line transport.
 * - HTTP: Toka's /mcp on the HTTP face (bearer auth, sessions) vs a bare node:http server with the SDK's
 *   StreamableHTTPServerTransport, one SDK Client each.
 * Calls run 8 in flight. Target ratio ≥ 0.8.
 *
 * HTTP with every server in its own process (issue 12's speed target): `toka serve`'s /mcp against a bare
 * node:http JSON-RPC server (target ≥ 0.6×) and against a bare SDK server in JSON-response mode (target
 * ≥ 1.5×), each answering the same result (bench/fixtures/mcp-http-baselines.ts), all called by the same
 * lean node:http client, so the ratio is the servers'.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { startHttpServer } from '../server/adapters/http.js';
import { mountMcpHttp } from '../server/adapters/mcp/http.js';
import { createMcpSession } from '../server/adapters/mcp/server.js';
import { LineTransport } from '../server/adapters/mcp/stdio.js';
import { createTokaRegistry } from '../server/adapters/mcp/toka.js';
import { Host, type Session } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { cliMint, connectWs, spawnServe } from '../test/helpers/ws-client.js';
import { KernelSubmitRequest } from '../protocol/rpc/index.js';
import { compare, comparisonRow, printRows, type Row } from './lib.js';

const ROUNDS = 5;
const IN_FLIGHT = 8;
const STDIO_CALLS = 2000;
const HTTP_CALLS = 600;
const PROCESS_CALLS = 2000;

/** The bare SDK server: one `get_state` tool doing the same host call Toka's does. */
function bareServer(host: Host, session: Session): McpServer {
  const server = new McpServer({ name: 'bare', version: '1.0.0' });
  server.registerTool(
    'get_state',
    { description: 'Read the agents of the vault', inputSchema: { limit: z.number().int().min(1).max(500).optional() } },
    async (args) => {
      const state = await host.getState(session, args);
      return { content: [{ type: 'text', text: JSON.stringify(state) }], structuredContent: state as unknown as Record<string, unknown> };
    },
  );
  return server;
}

async function calls(client: Client, total: number): Promise<number> {
  let left = total;
  const worker = async () => {
    while (left-- > 0) {
      const result = await client.callTool({ name: 'get_state', arguments: { limit: 10 } });
      if (result.isError) throw new Error(JSON.stringify(result.content));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return total;
}

/** An SDK Client on an in-memory pipe pair; `serve` connects the server side to the other ends. */
async function pipeClient(serve: (input: PassThrough, output: PassThrough) => Promise<void>): Promise<Client> {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  await serve(toServer, toClient);
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new LineTransport(toClient, toServer));
  return client;
}

async function httpClient(url: URL, token?: string): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(url, token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {}),
  );
  return client;
}

/** A bare node:http server with the SDK's Streamable HTTP transport and a session map. */
async function bareHttp(host: Host, session: Session): Promise<{ url: URL; close(): Promise<void> }> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? transports.get(id) : undefined;
    if (!transport && isInitializeRequest(body)) {
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => void transports.set(sid, created),
      });
      transport = created;
      await bareServer(host, session).connect(transport);
    }
    if (!transport) {
      res.writeHead(404).end();
      return;
    }
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    close: async () => {
      await Promise.allSettled([...transports.values()].map((t) => t.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A lean Streamable HTTP client on node:http with a keep-alive agent (a connection per request in flight):
 * one session, requests posted with the headers a client sends, answers read as JSON or as an SSE stream
 * (whichever the server chose). Leaner than `fetch`, so more of each call's time is the server's.
 */
export class LeanMcpClient {
  private sessionId = '';
  private nextId = 1;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

  constructor(
    private readonly url: string,
    private readonly token?: string,
  ) {}

  async open(): Promise<void> {
    await this.post({ method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
    await this.post({ method: 'notifications/initialized' }, true);
  }

  async call(): Promise<void> {
    const answer = (await this.post({ method: 'tools/call', params: { name: 'get_state', arguments: { limit: 10 } } })) as { result?: { isError?: boolean } };
    if (!answer.result || answer.result.isError) throw new Error(`tools/call failed: ${JSON.stringify(answer)}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private async post(message: { method: string; params?: unknown }, notification = false): Promise<unknown> {
    const id = notification ? undefined : this.nextId++;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
    };
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const { status, type, session, text } = await new Promise<{ status: number; type: string; session: string; text: string }>((resolve, reject) => {
      const req = request(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), session: String(res.headers['mcp-session-id'] ?? ''), text }),
        );
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id, ...message }));
    });
    this.sessionId ||= session;
    if (notification) return undefined;
    if (status !== 200 || !text) throw new Error(`HTTP ${status} ${type}: ${text}`);
    if (type.startsWith('text/event-stream')) {
      for (const line of text.split('\n')) {
        if (!line.startsWith('data: ') || line.length === 6) continue;
        const event = JSON.parse(line.slice(6)) as { id?: unknown };
        if (event.id === id) return event;
      }
      throw new Error(`no answer to ${id} in the stream: ${text}`);
    }
    return JSON.parse(text);
  }
}

async function leanCalls(client: LeanMcpClient, total: number): Promise<number> {
  let left = total;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await client.call();
    }),
  );
  return total;
}

function baselineServer(mode: '--node-http' | '--sdk', resultFile: string): { child: ChildProcess; url: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fixtures/mcp-http-baselines.ts', mode, resultFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { child, url: new Promise((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)) };
}

/** Toka's /mcp on `toka serve` against the two baselines, every server in its own process. */
async function benchMcpProcesses(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'toka-bench-mcp-'));
  const serve = await spawnServe({ args: ['--rate-limit', 'off'] });
  const children: ChildProcess[] = [];
  try {
    const token = await cliMint(serve.dataDir, { sub: 'bench', vault: 'bench', perm: 'agent:spawn,state:read', ttl: '30m' });
    const ws = await connectWs(serve.wsUrl, token);
    for (let i = 0; i < 10; i++) await ws.request(KernelSubmitRequest.type, { op: { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } } });
    await ws.close();
    const toka = new LeanMcpClient(`${serve.url}/mcp`, token);
    await toka.open();
    // The baselines answer with what Toka answers.
    const sdkClient = await httpClient(new URL(`${serve.url}/mcp`), token);
    const resultFile = join(dir, 'result.json');
    writeFileSync(resultFile, JSON.stringify(await sdkClient.callTool({ name: 'get_state', arguments: { limit: 10 } })));
    await sdkClient.close();

    const rows: Row[] = [];
    for (const [mode, name, target] of [
      ['--node-http', 'bare node:http answering the same JSON-RPC bytes', 0.6],
      ['--sdk', 'bare SDK McpServer, StreamableHTTPServerTransport (JSON responses)', 1.5],
    ] as const) {
      const baseline = baselineServer(mode, resultFile);
      children.push(baseline.child);
      const client = new LeanMcpClient(await baseline.url);
      await client.open();
      const result = await compare(ROUNDS, () => leanCalls(toka, PROCESS_CALLS), () => leanCalls(client, PROCESS_CALLS));
      rows.push(comparisonRow('MCP tools/call get_state, `toka serve` /mcp in its own process (8 in flight, bearer auth)', name, result, target));
      client.close();
      baseline.child.kill();
    }
    toka.close();
    return rows;
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchMcp(): Promise<Row[]> {
  const logger = createLogger({ level: 'error' });
  const host = await Host.open({ dataDir: null, logger, rateLimit: false });
  const rows: Row[] = [];
  try {
    const { token } = await host.mint(host.localSession('bench'), { subject: 'bench', permissions: ['state:read', 'agent:spawn'], ttlSeconds: 1800 });
    const session = await host.authenticate(token);
    for (let i = 0; i < 10; i++) await host.submit(session, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } });
    const registry = createTokaRegistry();

    // --- stdio ---------------------------------------------------------------------------------------------
    const tokaStdio = await pipeClient(async (input, output) => {
      await createMcpSession(registry, host, await host.authenticate(token)).connect(new LineTransport(input, output));
    });
    const bareStdio = await pipeClient(async (input, output) => {
      await bareServer(host, await host.authenticate(token)).connect(new StdioServerTransport(input, output));
    });
    const stdio = await compare(ROUNDS, () => calls(tokaStdio, STDIO_CALLS), () => calls(bareStdio, STDIO_CALLS));
    rows.push(
      comparisonRow(
        'MCP tools/call get_state over stdio (8 in flight)',
        'bare SDK McpServer, same tool, SDK stdio transport',
        stdio,
        0.8,
      ),
    );
    await Promise.all([tokaStdio.close(), bareStdio.close()]);

    // --- Streamable HTTP ----------------------------------------------------------------------------------
    const http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    const mount = mountMcpHttp(http, host, { logger, registry });
    const bare = await bareHttp(host, await host.authenticate(token));
    try {
      const tokaHttp = await httpClient(new URL(`${http.url}/mcp`), token);
      const bareClient = await httpClient(bare.url);
      const result = await compare(ROUNDS, () => calls(tokaHttp, HTTP_CALLS), () => calls(bareClient, HTTP_CALLS));
      rows.push(
        comparisonRow(
          'MCP tools/call get_state over Streamable HTTP (8 in flight, bearer auth)',
          'bare SDK McpServer + StreamableHTTPServerTransport, no auth',
          result,
          0.8,
        ),
      );
      await Promise.all([tokaHttp.close(), bareClient.close()]);
    } finally {
      await mount.close();
      await bare.close();
      await http.close();
    }
    rows.push(...(await benchMcpProcesses()));
    return rows;
  } finally {
    await host.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRows('MCP', await benchMcp());
}
