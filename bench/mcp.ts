/**
 * MCP: `tools/call` of a cheap tool (get_state) per second, Toka's MCP face against a bare SDK `McpServer`
 * exposing an equivalent tool (same host call, same result) in the same run.
 * - stdio: both servers on in-memory pipes (Toka: `toka mcp`'s transport and session; bare: the SDK's
 *   StdioServerTransport), one SDK Client each over the same line transport.
 * - HTTP: Toka's /mcp on the HTTP face (bearer auth, sessions) vs a bare node:http server with the SDK's
 *   StreamableHTTPServerTransport, one SDK Client each.
 * Calls run 8 in flight. Target ratio ≥ 0.8.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
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
import { compare, comparisonRow, printRows, type Row } from './lib.js';

const ROUNDS = 5;
const IN_FLIGHT = 8;
const STDIO_CALLS = 2000;
const HTTP_CALLS = 600;

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
      await createMcpSession(registry, host, await host.authenticate(token)).server.connect(new LineTransport(input, output));
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
    return rows;
  } finally {
    await host.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRows('MCP', await benchMcp());
}
