/**
 * Toka's own request dispatch (server/adapters/mcp/dispatch.ts) over a real HTTP socket, driven by the SDK's
 * Client and by raw POSTs: what it does in place of the SDK `Server`'s Protocol — cancellation before and
 * after the handler looks at its signal, the session closing under a call, progress and log notifications
 * on the call's stream, malformed params as InvalidParams, task-augmented calls processed normally.
 */
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, McpError, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { mountMcpHttp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import type { McpPlugin } from '../../server/adapters/mcp/registry.js';
import { createTokaRegistry } from '../../server/adapters/mcp/toka.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { waitFor } from '../helpers/wait.js';

const logger = createLogger({ level: 'silent' });

/** A call held at a gate the test opens; what the handler saw of its signal once through. */
interface Gate {
  started: Promise<void>;
  open(): void;
  seen?: { aborted: boolean; reason: unknown };
}
const gates = new Map<string, Gate & { enter(): void; opened: Promise<void> }>();
function gate(key: string): Gate {
  let enter!: () => void;
  let open!: () => void;
  const started = new Promise<void>((resolve) => (enter = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  const g = { started, open, enter, opened } as Gate & { enter(): void; opened: Promise<void> };
  gates.set(key, g);
  return g;
}

/** The one object `shared_state` returns as its structured result, changed by every call. */
const shared = { calls: 0 };

const tools: McpPlugin = (r) => {
  r.registerTool({
    name: 'shared_state',
    description: 'Counts its calls in one shared object and returns that object; `explicit` gives its own text',
    permission: null,
    input: z.object({ explicit: z.boolean() }),
    run: async ({ explicit }) => {
      shared.calls++;
      return explicit ? { content: [{ type: 'text', text: `calls: ${shared.calls}` }], structured: shared } : { structured: shared };
    },
  });
  r.registerTool({
    name: 'gated',
    description: 'Waits at the gate named `key`, then reports whether its signal was aborted (read only then)',
    permission: null,
    input: z.object({ key: z.string() }),
    run: async ({ key }, ctx) => {
      const g = gates.get(key)!;
      g.enter();
      await g.opened;
      g.seen = { aborted: ctx.signal.aborted, reason: ctx.signal.reason };
      return { content: [{ type: 'text', text: 'through' }] };
    },
  });
  r.registerTool({
    name: 'ask_age',
    description: "Asks the user's age (an integer) and returns the answer",
    permission: null,
    input: z.object({}),
    run: async (_args, ctx) => {
      const answer = await ctx.elicit({
        message: 'How old are you?',
        requestedSchema: { type: 'object', properties: { age: { type: 'integer' } }, required: ['age'] },
      });
      return { structured: { action: answer.action, content: answer.content ?? null } };
    },
  });
  r.registerTool({
    name: 'big_result',
    description: 'Returns about 100 KB of structured data',
    permission: null,
    input: z.object({}),
    run: async () => ({ structured: { filler: 'x'.repeat(100_000) } }),
  });
  r.registerTool({
    name: 'chatty',
    description: 'Reports progress twice and logs once',
    permission: null,
    input: z.object({}),
    run: async (_args, ctx) => {
      await ctx.progress(1, 2, 'half');
      await ctx.log('info', { said: 'hello' });
      await ctx.progress(2, 2);
      return { structured: { done: true } };
    },
  });
};

describe('MCP request dispatch (Toka handlers without the SDK Protocol), real HTTP', function () {
  this.timeout(20_000);
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;
  let token: string;
  const clients: Client[] = [];

  /** A client; with `elicit`, one that declares elicitation and answers it so. */
  const connect = async (elicit?: () => ElicitResult): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> => {
    const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'dispatch-test', version: '1.0.0' }, { capabilities: elicit ? { elicitation: {} } : {} });
    if (elicit) client.setRequestHandler(ElicitRequestSchema, async () => elicit());
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  };

  /** POST one message on `session`; the JSON-RPC messages of the answer (a JSON body or an SSE stream). */
  const post = async (session: string, message: unknown): Promise<{ status: number; type: string; messages: Record<string, unknown>[] }> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        'mcp-session-id': session,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify(message),
    });
    const type = res.headers.get('content-type') ?? '';
    const text = await res.text();
    const messages = type.startsWith('text/event-stream')
      ? text
          .split('\n')
          .filter((line) => line.startsWith('data: ') && line.length > 6)
          .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>)
      : text
        ? [JSON.parse(text) as Record<string, unknown>]
        : [];
    return { status: res.status, type, messages };
  };

  before(async () => {
    host = await Host.open({ dataDir: null, logger, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry([tools]), maxResultBytes: 64 * 1024 });
    url = new URL(`${http.url}/mcp`);
    token = (await host.mint(host.localSession('v1'), { subject: 'alice', permissions: ['*'], ttlSeconds: 900 })).token;
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await mcp.close();
    await http.close();
    await host.close();
  });

  it('a cancellation that arrives before the handler looks at its signal still aborts it (with the reason); the session goes on', async () => {
    const { client } = await connect();
    const g = gate('early');
    const controller = new AbortController();
    const call = client.callTool({ name: 'gated', arguments: { key: 'early' } }, undefined, { signal: controller.signal });
    await g.started;
    controller.abort('changed my mind');
    await assert.rejects(call);
    // The cancellation notification travels on its own POST: wait until the server has taken it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    g.open();
    await waitFor(() => g.seen !== undefined, 5000, 'the handler to pass its gate');
    assert.deepEqual(g.seen, { aborted: true, reason: 'changed my mind' });
    const after = gate('after');
    after.open();
    const next = await client.callTool({ name: 'gated', arguments: { key: 'after' } });
    assert.deepEqual(next.content, [{ type: 'text', text: 'through' }]);
    assert.deepEqual(after.seen, { aborted: false, reason: undefined });
  });

  it('a cancelled call ends its POST (202, no body) instead of holding it open until the session ends', async () => {
    const { transport } = await connect();
    const session = transport.sessionId!;
    const g = gate('held');
    const call = post(session, { jsonrpc: '2.0', id: 'held-1', method: 'tools/call', params: { name: 'gated', arguments: { key: 'held' } } });
    await g.started;
    const cancel = await post(session, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'held-1', reason: 'no longer needed' } });
    assert.equal(cancel.status, 202);
    g.open();
    const ended = await Promise.race([call, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 3000))]);
    assert.notEqual(ended, 'hung', "the cancelled call's POST never ended");
    assert.deepEqual(ended, { status: 202, type: '', messages: [] });
    // The session goes on, and answers the same request id afresh.
    const again = gate('held-again');
    again.open();
    const next = await post(session, { jsonrpc: '2.0', id: 'held-1', method: 'tools/call', params: { name: 'gated', arguments: { key: 'held-again' } } });
    assert.deepEqual(next.messages.map((m) => m.id), ['held-1']);
  });

  it('the session ending under a call (DELETE) aborts the call', async () => {
    const { client, transport } = await connect();
    const g = gate('closing');
    const call = client.callTool({ name: 'gated', arguments: { key: 'closing' } }).catch((err: unknown) => err);
    await g.started;
    await transport.terminateSession();
    g.open();
    await waitFor(() => g.seen !== undefined, 5000, 'the handler to pass its gate');
    assert.equal(g.seen!.aborted, true);
    await client.close();
    await call;
  });

  it("progress and log notifications go on the call's stream, as JSON-RPC notifications, before its answer", async () => {
    const { client, transport } = await connect();
    await client.setLoggingLevel('info');
    const { status, type, messages } = await post(transport.sessionId!, {
      jsonrpc: '2.0',
      id: 'c1',
      method: 'tools/call',
      params: { name: 'chatty', arguments: {}, _meta: { progressToken: 'tok-1' } },
    });
    assert.equal(status, 200);
    assert.match(type, /^text\/event-stream/);
    assert.deepEqual(messages, [
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok-1', progress: 1, total: 2, message: 'half' } },
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'toka', data: { said: 'hello' } } },
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok-1', progress: 2, total: 2 } },
      { jsonrpc: '2.0', id: 'c1', result: { content: [{ type: 'text', text: '{"done":true}' }], structuredContent: { done: true } } },
    ]);
    // Without a progress token, no progress: a cheap call answers with one JSON body.
    await client.setLoggingLevel('error');
    const quiet = await post(transport.sessionId!, { jsonrpc: '2.0', id: 'c2', method: 'tools/call', params: { name: 'chatty', arguments: {} } });
    assert.match(quiet.type, /^application\/json/);
    assert.deepEqual(quiet.messages.map((m) => m.id), ['c2']);
  });

  it('malformed params are InvalidParams naming the field, prefixed once; the session keeps serving', async () => {
    const { client, transport } = await connect();
    const cases: [string, unknown, RegExp][] = [
      ['tools/call', { name: 5 }, /^Invalid params for tools\/call: name: /],
      ['tools/call', undefined, /^Invalid params for tools\/call: name: /],
      ['resources/read', { uri: ['toka://state'] }, /^Invalid params for resources\/read: uri: /],
      ['prompts/get', { name: 'write_agent_spec', arguments: { goal: 7 } }, /^Invalid params for prompts\/get: arguments\.goal: /],
      ['logging/setLevel', { level: 'loud' }, /^Invalid params for logging\/setLevel: level: /],
    ];
    for (const [method, params, message] of cases) {
      const { status, messages } = await post(transport.sessionId!, { jsonrpc: '2.0', id: 3, method, ...(params === undefined ? {} : { params }) });
      assert.equal(status, 200, method);
      const error = messages[0].error as { code: number; message: string; data: { name: string } };
      assert.equal(error.code, -32602, method);
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, /MCP error/);
      assert.deepEqual(error.data, { name: 'InvalidParams' });
    }
    // Through the SDK client: the client adds the one prefix.
    await assert.rejects(client.request({ method: 'resources/read', params: {} as { uri: string } }, z.object({})), (e: McpError) => {
      assert.equal(e.code, -32602);
      assert.match(e.message, /^MCP error -32602: Invalid params for resources\/read: uri: /);
      return true;
    });
    assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
  });

  it('a task-augmented call is processed normally (Toka declares no tasks capability)', async () => {
    const { transport } = await connect();
    const { messages } = await post(transport.sessionId!, {
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { name: 'chatty', arguments: {}, task: { ttl: 60_000 } },
    });
    assert.deepEqual(messages.at(-1), { jsonrpc: '2.0', id: 4, result: { content: [{ type: 'text', text: '{"done":true}' }], structuredContent: { done: true } } });
  });

  it('a structured result is sent as it is when returned, its JSON made once: an object returned again, changed, is sent changed', async () => {
    const { client } = await connect();
    const expect = [
      [false, { calls: 1 }, '{"calls":1}'],
      [true, { calls: 2 }, 'calls: 2'],
      [false, { calls: 3 }, '{"calls":3}'],
      [false, { calls: 4 }, '{"calls":4}'],
    ] as const;
    for (const [explicit, structured, text] of expect) {
      const result = await client.callTool({ name: 'shared_state', arguments: { explicit } });
      assert.deepEqual(result.structuredContent, structured);
      assert.deepEqual(result.content, [{ type: 'text', text }]);
    }
  });

  it("a handler's elicitation goes to the client on the call's stream, and an answer off the requested schema is refused", async () => {
    let age: unknown = 41;
    const { client } = await connect(() => ({ action: 'accept', content: { age } as Record<string, number> }));
    const ok = await client.callTool({ name: 'ask_age', arguments: {} });
    assert.deepEqual(ok.structuredContent, { action: 'accept', content: { age: 41 } });
    age = 'forty-one';
    await assert.rejects(client.callTool({ name: 'ask_age', arguments: {} }), (e: McpError) => {
      assert.equal(e.code, -32602);
      assert.match(e.message, /does not match requested schema/);
      return true;
    });
  });

  it('bounds results on both revisions: LimitExceeded in place of a result over the bound', async () => {
    const { client } = await connect();
    await assert.rejects(client.callTool({ name: 'big_result', arguments: {} }), (e: McpError) => {
      assert.equal(e.code, -31905);
      assert.equal((e.data as { limit: string }).limit, 'mcp.maxResultBytes');
      return true;
    });
    const modern = (name: string, args: Record<string, unknown> = {}) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': name,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 8,
          method: 'tools/call',
          params: {
            name,
            arguments: args,
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': {},
              'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
            },
          },
        }),
      });
    const big = await modern('big_result');
    assert.equal(big.status, 200);
    const refused = (await big.json()) as { error: { code: number; message: string; data: { name: string; limit: string; max: number } } };
    assert.equal(refused.error.code, -31905);
    assert.deepEqual([refused.error.data.name, refused.error.data.limit, refused.error.data.max], ['LimitExceeded', 'mcp.maxResultBytes', 64 * 1024]);
    const small = (await (await modern('shared_state', { explicit: false })).json()) as { result: Record<string, unknown> };
    assert.equal(small.result.resultType, 'complete');
    assert.equal((small.result.content as { text: string }[])[0].text, JSON.stringify(small.result.structuredContent));
  });

  it('a method no handler serves is still the SDK\'s MethodNotFound; ping is the SDK\'s', async () => {
    const { client, transport } = await connect();
    const { messages } = await post(transport.sessionId!, { jsonrpc: '2.0', id: 5, method: 'tools/nothing' });
    assert.deepEqual(messages[0], { jsonrpc: '2.0', id: 5, error: { code: -32601, message: 'Method not found', data: { name: 'MethodNotFound' } } });
    assert.deepEqual(await client.ping(), {});
  });
});
