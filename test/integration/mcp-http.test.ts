/**
 * MCP over Streamable HTTP at /mcp on the real HTTP face (in-process host with a controllable clock, real
 * sockets), driven by the SDK's own Client: auth (401 + resource metadata, 403 insufficient_scope, expiry
 * and revocation mid-session), tools/resources/prompts, progress and cancellation of a long call,
 * Last-Event-ID resumption, DELETE, the result bound, malformed input.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpError, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { WindowEventStore } from '../../server/adapters/mcp/event-store.js';
import { mountMcpHttp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import type { McpPlugin } from '../../server/adapters/mcp/registry.js';
import { createMcpSession } from '../../server/adapters/mcp/server.js';
import { createTokaRegistry } from '../../server/adapters/mcp/toka.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { toka } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const VAULT = 'v1';
const logger = createLogger({ level: 'silent' });

/** A 401 from /mcp carrying the host's Unauthenticated reason. */
const unauthorized = (reason: string) => (err: StreamableHTTPError) => err.code === 401 && err.message.includes(reason);

/** Test-only tools: a long call that reports progress and honours cancellation, and an oversized result. */
const aborted: string[] = [];
const testTools: McpPlugin = (r) => {
  r.registerTool({
    name: 'long_call',
    description: 'Counts to `steps`, 20 ms a step, reporting progress',
    permission: null,
    input: z.object({ steps: z.number().int().min(1).max(1000) }),
    run: async ({ steps }, ctx) => {
      for (let i = 1; i <= steps; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (ctx.signal.aborted) {
          aborted.push(String(ctx.signal.reason ?? 'aborted'));
          return { content: [{ type: 'text', text: 'cancelled' }] };
        }
        await ctx.progress(i, steps, `step ${i}`);
      }
      return { content: [{ type: 'text', text: `counted to ${steps}` }] };
    },
  });
  r.registerTool({
    name: 'big_result',
    description: 'Returns about 100 KB of text',
    permission: null,
    input: z.object({}),
    run: async () => ({ content: [{ type: 'text', text: 'x'.repeat(100_000) }] }),
  });
};

describe('MCP over Streamable HTTP (/mcp)', function () {
  this.timeout(20_000);
  let clock = Date.now();
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;
  const clients: Client[] = [];

  const mint = async (permissions: string[], ttlSeconds = 900) =>
    (await host.mint(host.localSession(VAULT), { subject: 'alice', permissions, ttlSeconds })).token;

  const connect = async (token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> => {
    const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'toka-test', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  };

  const post = (body: string, headers: Record<string, string>) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body,
    });

  before(async () => {
    host = await Host.open({ dataDir: null, logger, now: () => clock, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry([testTools]), maxResultBytes: 64 * 1024 });
    url = new URL(`${http.url}/mcp`);
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await mcp.close();
    await http.close();
    await host.close();
  });

  it('answers 401 with resource_metadata without a token, and serves RFC 9728 metadata', async () => {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), {});
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const challenge = res.headers.get('www-authenticate') ?? '';
    const m = /resource_metadata="([^"]+)"/.exec(challenge);
    assert.ok(m, challenge);
    const metaRes = await fetch(m[1]);
    assert.equal(metaRes.headers.get('x-content-type-options'), 'nosniff');
    const meta = (await metaRes.json()) as { resource: string; scopes_supported: string[] };
    assert.equal(meta.resource, url.href);
    assert.ok(meta.scopes_supported.includes('agent:spawn'));
    const bad = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), { authorization: 'Bearer not.a.token' });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { host: 'evil.example.com', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 403);
  });

  it('lists tool schemas a strict validator accepts: no empty schema {}, no type array', async () => {
    const { client } = await connect(await mint(['*']));
    const problems: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (Array.isArray(node)) return node.forEach((v, i) => walk(v, `${path}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      if (Object.keys(node).length === 0 && !path.endsWith('.properties')) problems.push(`${path} is {}`);
      if (Array.isArray((node as { type?: unknown }).type)) problems.push(`${path} has a type array`);
      for (const [k, v] of Object.entries(node)) walk(v, `${path}.${k}`);
    };
    for (const tool of (await client.listTools()).tools) {
      walk(tool.inputSchema, `${tool.name}.input`);
      walk(tool.outputSchema, `${tool.name}.output`);
    }
    assert.deepEqual(problems, []);
    const getState = (await client.listTools()).tools.find((t) => t.name === 'get_state')!;
    const parent = (getState.outputSchema as unknown as { properties: { agents: { items: { properties: { parent: unknown } } } } }).properties.agents.items.properties.parent;
    assert.deepEqual(parent, { anyOf: [{ type: 'string' }, { type: 'null' }] });
  });

  it('lists, calls tools and reads resources through the host', async () => {
    const { client } = await connect(await mint(['*']));
    const names = (await client.listTools()).tools.map((t) => t.name);
    for (const n of ['spawn_agent', 'schedule_task', 'cancel_task', 'emit_observation', 'get_state', 'get_task', 'query_events', 'delegate_capability', 'revoke_capability']) {
      assert.ok(names.includes(n), n);
    }
    const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: 'scout' } });
    assert.ok(!spawned.isError, JSON.stringify(spawned));
    const agent = (spawned.structuredContent as { agent: string }).agent;
    const scheduled = await client.callTool({ name: 'schedule_task', arguments: { agent, description: 'look around', priority: 'high' } });
    const task = (scheduled.structuredContent as { task: { id: string } }).task;
    const got = await client.callTool({ name: 'get_task', arguments: { agent, task: task.id } });
    assert.deepEqual((got.structuredContent as { position: number }).position, 0);
    const read = await client.readResource({ uri: `toka://agents/${agent}` });
    const body = JSON.parse(String((read.contents[0] as { text: string }).text)) as { agent: { name: string; queuedTasks: number } };
    assert.equal(body.agent.name, 'scout');
    assert.equal(body.agent.queuedTasks, 1);
    const events = await client.callTool({ name: 'query_events', arguments: { agent } });
    const types = (events.structuredContent as { records: { event: { type: string } }[] }).records.map((r) => r.event.type);
    assert.deepEqual(types, ['AgentSpawned', 'TaskScheduled']);
    const cancelled = await client.callTool({ name: 'cancel_task', arguments: { agent, task: task.id, reason: 'not needed' } });
    assert.ok(!cancelled.isError, JSON.stringify(cancelled));
    assert.equal((cancelled.structuredContent as { task: string }).task, task.id);
    const gone = await client.callTool({ name: 'get_task', arguments: { agent, task: task.id } });
    assert.ok(gone.isError);
    const again = await client.callTool({ name: 'cancel_task', arguments: { agent, task: task.id } });
    assert.ok(again.isError && JSON.stringify(again.content).includes('UnknownEntity'), JSON.stringify(again));
  });

  it('sends notifications/resources/updated when a kernel event touches a subscribed resource', async () => {
    const { client } = await connect(await mint(['*']));
    const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: 'watched' } });
    const agent = (spawned.structuredContent as { agent: string }).agent;
    const updated = new Promise<string>((resolve) =>
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => resolve(n.params.uri)),
    );
    await client.subscribeResource({ uri: `toka://agents/${agent}` });
    await client.callTool({ name: 'emit_observation', arguments: { agent, data: { seen: 'a bird' } } });
    assert.equal(await updated, `toka://agents/${agent}`);
    await client.unsubscribeResource({ uri: `toka://agents/${agent}` });
  });

  it('shares one host subscription between concurrent subscribes: one notification per update, none left after close', async () => {
    // In process (linked in-memory transports), so the subscribes really overlap inside the session.
    const subscribers = () => Number(/^toka_subscribers (\d+)$/m.exec(host.metrics.render({ logSeq: 0, ready: true }))?.[1]);
    const baseline = subscribers();
    const open = async () => {
      const session = createMcpSession(createTokaRegistry(), host, await host.authenticate(await mint(['*'])));
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await session.connect(serverSide);
      const client = new Client({ name: 'toka-test', version: '1.0.0' });
      await client.connect(clientSide);
      return { session, client };
    };
    const { session, client } = await open();
    try {
      const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: 'twice-watched' } });
      const agent = (spawned.structuredContent as { agent: string }).agent;
      const uri = `toka://agents/${agent}`;
      const updates: string[] = [];
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
      await Promise.all([client.subscribeResource({ uri }), client.subscribeResource({ uri }), client.subscribeResource({ uri: 'toka://agents' })]);
      assert.equal(subscribers(), baseline + 1, 'one host subscription for the session');
      // An observation touches both the agent and the agents list: one notification for each, per update.
      await client.callTool({ name: 'emit_observation', arguments: { agent, data: { n: 1 } } });
      await waitFor(() => updates.length >= 2, 5000, 'the first update');
      await client.callTool({ name: 'emit_observation', arguments: { agent, data: { n: 2 } } });
      await waitFor(() => updates.length >= 4, 5000, 'the second update');
      // A duplicate would follow its original at once; give it time to arrive.
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(updates.sort(), ['toka://agents', 'toka://agents', uri, uri]);
      await client.unsubscribeResource({ uri });
      await client.unsubscribeResource({ uri: 'toka://agents' });
      assert.equal(subscribers(), baseline);
    } finally {
      await session.close();
    }

    // A subscribe still awaiting its host subscription when the session closes leaves none behind.
    const second = await open();
    const pending = second.client.subscribeResource({ uri: 'toka://agents' }).catch(() => undefined);
    await second.session.close();
    await pending;
    await waitFor(() => subscribers() === baseline, 5000, 'the host subscription to end');
  });

  it('hides and refuses (403 insufficient_scope) a tool the token does not permit', async () => {
    const token = await mint(['state:read']);
    const { client, transport } = await connect(token);
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(!names.includes('spawn_agent'));
    assert.ok(names.includes('get_state'));
    const denials = () => Number(/toka_errors_total\{name="CapabilityDenied"\} (\d+)/.exec(host.metrics.render({ logSeq: 0, ready: true }))?.[1] ?? 0);
    const deniedBefore = denials();
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'spawn_agent', arguments: { name: 'x' } } }), {
      authorization: `Bearer ${token}`,
      'mcp-session-id': transport.sessionId!,
      'mcp-protocol-version': '2025-11-25',
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="agent:spawn"/);
    const refusal = (await res.json()) as { id: unknown; error: { code: number; data: { name: string; required: string } } };
    assert.equal(refusal.id, 7);
    assert.equal(refusal.error.code, -31901);
    assert.deepEqual(refusal.error.data, { name: 'CapabilityDenied', required: 'agent:spawn' });
    assert.equal(denials(), deniedBefore + 1, 'the host counted the refusal');
    const state = await client.callTool({ name: 'get_state', arguments: {} });
    assert.ok(!state.isError);
  });

  it('reports progress of a long call and delivers its cancellation to the tool as an AbortSignal', async () => {
    const { client } = await connect(await mint(['*']));
    const done = await client.callTool({ name: 'long_call', arguments: { steps: 3 } }, undefined, {
      onprogress: () => undefined,
    });
    assert.deepEqual(done.content, [{ type: 'text', text: 'counted to 3' }]);
    const progress: number[] = [];
    const controller = new AbortController();
    const call = client.callTool({ name: 'long_call', arguments: { steps: 500 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => {
        progress.push(p.progress);
        if (progress.length === 3) controller.abort('enough');
      },
    });
    await assert.rejects(call);
    assert.deepEqual(progress, [1, 2, 3]);
    await waitFor(() => aborted.length > 0, 5000, 'the tool to see its cancellation');
    assert.equal(aborted.length, 1);
  });

  it('resumes a broken SSE stream with Last-Event-ID', async () => {
    const token = await mint(['*']);
    const { transport } = await connect(token);
    const headers = { authorization: `Bearer ${token}`, 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-11-25' };
    const controller = new AbortController();
    const res = await fetch(url, {
      method: 'POST',
      signal: controller.signal,
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'long_call', arguments: { steps: 10 }, _meta: { progressToken: 'p' } } }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    /** Read SSE text until `until` matches; fail (not hang) if the stream ends first. */
    const readUntil = async (stream: ReadableStream<Uint8Array>, until: RegExp) => {
      const reader = stream.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!until.test(text)) {
        const { done, value } = await reader.read();
        if (done) assert.fail(`stream ended before ${until}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
      return { text, reader };
    };
    /** The SSE events in `text`: id and data, data parsed when it is JSON-RPC. */
    const events = (text: string) =>
      [...text.matchAll(/^id: (.+)\ndata: (.*)$/gm)].map((m) => ({ id: m[1], message: m[2] === '' ? null : (JSON.parse(m[2]) as { params?: { progress?: number } }) }));
    const progressOf = (evs: ReturnType<typeof events>) => evs.map((e) => e.message?.params?.progress).filter((p) => p !== undefined);

    const first = await readUntil(res.body!, /"progress":2\b/);
    controller.abort();
    const seen = events(first.text);
    assert.deepEqual(progressOf(seen), [1, 2]);
    const lastId = seen[seen.length - 1].id;
    await new Promise((r) => setTimeout(r, 300));
    const resumed = await fetch(url, { headers: { ...headers, accept: 'text/event-stream', 'last-event-id': lastId } });
    assert.equal(resumed.status, 200);
    const rest = await readUntil(resumed.body!, /"id":42/);
    await rest.reader.cancel();
    const replayed = events(rest.text);
    assert.match(rest.text, /counted to 10/);
    // The replay starts right after the last event seen: progress 3 onwards, nothing seen before.
    assert.deepEqual(progressOf(replayed), [3, 4, 5, 6, 7, 8, 9, 10]);
    const n = (id: string) => Number(id.slice(id.lastIndexOf('.') + 1));
    assert.ok(replayed.every((e) => n(e.id) > n(lastId) && e.id.slice(0, e.id.lastIndexOf('.')) === lastId.slice(0, lastId.lastIndexOf('.'))), JSON.stringify(replayed.map((e) => e.id)));
  });

  it('refuses a result over the size bound with LimitExceeded', async () => {
    const { client } = await connect(await mint(['*']));
    await assert.rejects(client.callTool({ name: 'big_result', arguments: {} }), (err: McpError) => {
      assert.equal(err.code, -31905);
      assert.equal((err.data as { limit: string }).limit, 'mcp.maxResultBytes');
      return true;
    });
  });

  it('answers protocol errors: malformed JSON, unknown tool, schema violation; the host stays healthy', async () => {
    const token = await mint(['*']);
    const { client, transport } = await connect(token);
    const res = await post('{"jsonrpc": "2.0", "id": 1, "method": ', { authorization: `Bearer ${token}`, 'mcp-session-id': transport.sessionId! });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32700);
    await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), (e: McpError) => {
      assert.equal(e.code, -32602);
      // Prefixed once, by the client: the wire message is not prefixed already.
      assert.equal(e.message, 'MCP error -32602: Unknown tool: no_such_tool');
      assert.equal((e.data as { name: string }).name, 'InvalidParams');
      return true;
    });
    // SEP-1303: arguments that do not match the schema are a tool result the model reads.
    const invalid = await client.callTool({ name: 'schedule_task', arguments: { agent: 7 } });
    assert.equal(invalid.isError, true);
    const invalidContent = invalid.content as { type: string; text: string }[];
    assert.match(invalidContent[0].text, /^InvalidParams: invalid arguments for tool schedule_task: agent: .+; description: /);
    const issues = (JSON.parse(invalidContent[1].text) as { error: { name: string; issues: { path: string[] }[] } }).error;
    assert.equal(issues.name, 'InvalidParams');
    assert.deepEqual(issues.issues.map((i) => i.path.join('.')).sort(), ['agent', 'description']);
    // An SDK-made error also arrives prefixed once and named.
    const raw = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'no/such/method' }), {
      authorization: `Bearer ${token}`,
      'mcp-session-id': transport.sessionId!,
      'mcp-protocol-version': '2025-11-25',
    });
    const rawText = await raw.text();
    const rawError = JSON.parse(/^data: (\{.*)$/m.exec(rawText)?.[1] ?? rawText) as { error: { code: number; message: string; data: { name: string } } };
    assert.deepEqual(rawError.error, { code: -32601, message: 'Method not found', data: { name: 'MethodNotFound' } });
    await assert.rejects(client.readResource({ uri: 'toka://agents/nobody' }), (e: McpError) => {
      assert.equal(e.code, -32002);
      assert.equal(e.message, 'MCP error -32002: Resource not found: toka://agents/nobody');
      assert.deepEqual(e.data, { name: 'ResourceNotFound', uri: 'toka://agents/nobody' });
      return true;
    });
    await assert.rejects(client.readResource({ uri: 'toka://nothing/here' }), (e: McpError) => e.code === -32002);
    const denied = await client.callTool({ name: 'schedule_task', arguments: { agent: 'nobody', description: 'x' } });
    assert.equal(denied.isError, true);
    assert.equal(denied.structuredContent, undefined);
    const deniedContent = denied.content as { type: string; text: string }[];
    assert.ok(deniedContent[0].text.startsWith('UnknownEntity: '));
    assert.equal((JSON.parse(deniedContent[1].text) as { error: { name: string } }).error.name, 'UnknownEntity');
    assert.equal(host.health().ready, true);
    assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
  });

  it('completes template variables by their own completers only (an inherited name like toString completes nothing)', async () => {
    const { client } = await connect(await mint(['*']));
    const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: 'completed' } });
    const agent = (spawned.structuredContent as { agent: string }).agent;
    const ref = { type: 'ref/resource' as const, uri: 'toka://agents/{id}' };
    const found = await client.complete({ ref, argument: { name: 'id', value: agent.slice(0, 4) } });
    assert.ok(found.completion.values.includes(agent), JSON.stringify(found));
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const none = await client.complete({ ref, argument: { name, value: '' } });
      assert.deepEqual(none.completion.values, [], name);
    }
  });

  it('refuses the next call once the token has expired, or been revoked, mid-session', async () => {
    const { client: expiring } = await connect(await mint(['*'], 60));
    assert.ok(!(await expiring.callTool({ name: 'get_state', arguments: {} })).isError);
    clock += 70_000;
    await assert.rejects(expiring.callTool({ name: 'get_state', arguments: {} }), unauthorized('ERR_TOKEN_EXPIRED'));

    const token = await mint(['*']);
    const { client: revoked } = await connect(token);
    assert.ok(!(await revoked.callTool({ name: 'get_state', arguments: {} })).isError);
    await host.revoke(host.localSession(VAULT), { token });
    await assert.rejects(revoked.callTool({ name: 'get_state', arguments: {} }), unauthorized('ERR_TOKEN_REVOKED'));
  });

  it('ends a session on DELETE', async () => {
    const token = await mint(['*']);
    const { transport } = await connect(token);
    const id = transport.sessionId!;
    const before = mcp.sessions;
    await transport.terminateSession();
    assert.equal(mcp.sessions, before - 1);
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), { authorization: `Bearer ${token}`, 'mcp-session-id': id });
    assert.equal(res.status, 404);
  });
});

describe('MCP over Streamable HTTP: opening sessions', function () {
  this.timeout(20_000);
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;

  before(async () => {
    const frozen = Date.now();
    // A frozen clock: the rate-limit bucket (burst 5) never refills, so every charge is counted exactly.
    host = await Host.open({ dataDir: null, logger, now: () => frozen, rateLimit: { ratePerSec: 1, burst: 5 } });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry(), maxSessionsPerPrincipal: 2 });
    url = new URL(`${http.url}/mcp`);
  });

  after(async () => {
    await mcp.close();
    await http.close();
    await host.close();
  });

  const mint = async (subject: string) =>
    (await host.mint(host.localSession(VAULT), { subject, permissions: ['*'], ttlSeconds: 900 })).token;

  const initialize = async (token: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    });
    const text = await res.text();
    const refusal = res.status === 200 ? null : ((JSON.parse(text) as { error: { data: { name: string; limit?: string } } }).error.data);
    return { status: res.status, session: res.headers.get('mcp-session-id'), retryAfter: res.headers.get('retry-after'), refusal };
  };

  it('caps the sessions of one subject (concurrent initializes included) and charges each initialize to its rate limit', async () => {
    const alice = await mint('alice');
    const first = await Promise.all([initialize(alice), initialize(alice), initialize(alice)]);
    assert.deepEqual(first.map((r) => r.status).sort(), [200, 200, 429]);
    assert.deepEqual(first.find((r) => r.status === 429)?.refusal, { name: 'LimitExceeded', limit: 'mcp.maxSessionsPerPrincipal', max: 2 });
    assert.match(first.find((r) => r.status === 429)?.retryAfter ?? '', /^[1-9]\d*$/, 'a capped initialize says when to retry');
    assert.equal(mcp.sessions, 2);

    const bob = await initialize(await mint('bob'));
    assert.equal(bob.status, 200, 'another subject has its own cap and bucket');

    const ended = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': first.find((r) => r.session)!.session! } });
    assert.equal(ended.status, 200);
    assert.equal((await initialize(alice)).status, 200, 'an ended session frees its slot');
    assert.equal((await initialize(alice)).refusal?.limit, 'mcp.maxSessionsPerPrincipal');
    // Five initializes charged alice's bucket of five: the sixth is refused by the rate limit itself.
    const limited = await initialize(alice);
    assert.equal(limited.status, 429);
    assert.equal(limited.refusal?.name, 'RateLimited');
    assert.match(limited.retryAfter ?? '', /^[1-9]\d*$/, 'a rate-limited initialize says when to retry');
    assert.equal(mcp.sessions, 3);
  });
});

describe('MCP resumption window (WindowEventStore)', () => {
  const note = (i: number, pad: number): string => JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: `${i}:${'x'.repeat(pad)}` } });

  it('holds at most maxReplayBytes of event data, forgetting the oldest first', () => {
    const max = 10_000;
    const store = new WindowEventStore(1000, max);
    const size = Buffer.byteLength(note(100, 950));
    const primer = store.store('s', '');
    const ids: string[] = [];
    for (let i = 100; i < 300; i++) {
      ids.push(store.store('s', note(i, 950)));
      assert.ok(store.bytes <= max, `${store.bytes} bytes held`);
    }
    const held = Math.floor(max / size);
    assert.equal(store.size, held);
    assert.ok(store.bytes > max - size, 'the window is not emptied further than it must be');
    assert.equal(store.streamOf(primer), 's');
    const sent = store.after(primer);
    assert.deepEqual(sent.map((e) => e.id), ids.slice(-held));
    assert.deepEqual(sent.map((e) => e.data), ids.slice(-held).map((_, k) => note(300 - held + k, 950)));
  });

  it('holds at most replayWindow events, and replays only what followed the id on its stream', () => {
    const store = new WindowEventStore(5, 1024 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(store.store(i % 2 === 0 ? 'a' : 'b', note(i, 0)));
    assert.equal(store.size, 5);
    assert.equal(store.streamOf(ids[196]), 'a');
    assert.deepEqual(store.after(ids[196]), [{ id: ids[198], data: note(198, 0) }]);
  });

  it('names no stream for an id not of its form', () => {
    const store = new WindowEventStore(5, 1024);
    for (const id of ['', 'abc', 'a.', '.1', 'a.1x']) assert.equal(store.streamOf(id), undefined, JSON.stringify(id));
  });
});

/** POST an `initialize` with `token`; the status, the session id, Retry-After and the refusal's `error.data`. */
async function initializeOver(url: URL, token: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  const text = await res.text();
  const refusal = res.status === 200 ? null : (JSON.parse(text) as { error: { data: { name: string; limit?: string } } }).error.data;
  return { status: res.status, session: res.headers.get('mcp-session-id'), retryAfter: res.headers.get('retry-after'), refusal };
}

/** POST a `ping` on `session` with `token`; the HTTP status. */
async function pingOver(url: URL, token: string, session: string): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('MCP over Streamable HTTP: sessions belong to (vault, subject, grant)', function () {
  this.timeout(20_000);
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;

  before(async () => {
    host = await Host.open({ dataDir: null, logger, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry(), maxSessionsPerPrincipal: 2 });
    url = new URL(`${http.url}/mcp`);
  });

  after(async () => {
    await mcp.close();
    await http.close();
    await host.close();
  });

  const mint = async (vault: string, subject: string) =>
    (await host.mint(host.localSession(vault), { subject, permissions: ['*'], ttlSeconds: 900 })).token;
  /** A token for `subject` delegated by another principal of `vault` (its own grant lineage). */
  const delegateAs = async (vault: string, subject: string) => {
    const mallory = await host.authenticate(await mint(vault, 'mallory'));
    return (await host.delegate(mallory, { subject, permissions: ['*'] })).token;
  };

  it('counts the session cap per (vault, subject): a same-named subject of another vault cannot exhaust it', async () => {
    const alice = await mint('vault-y', 'alice');
    const own = await initializeOver(url, alice);
    assert.equal(own.status, 200);
    const impostor = await delegateAs('vault-x', 'alice');
    const taken = await Promise.all([initializeOver(url, impostor), initializeOver(url, impostor), initializeOver(url, impostor)]);
    assert.deepEqual(taken.map((r) => r.status).sort(), [200, 200, 429], 'the vault-x alice has her own cap of 2');
    const capped = taken.find((r) => r.status === 429)!;
    assert.deepEqual(capped.refusal, { name: 'LimitExceeded', limit: 'mcp.maxSessionsPerPrincipal', max: 2 });
    assert.match(capped.retryAfter ?? '', /^[1-9]\d*$/, 'a 429 says when to retry');
    assert.equal((await initializeOver(url, alice)).status, 200, 'the vault-y alice still has her second slot');
  });

  it("refuses a request on a session from another vault's or another lineage's token of the same subject (404)", async () => {
    const carol = await mint('vault-y', 'carol');
    const opened = await initializeOver(url, carol);
    assert.equal(opened.status, 200);
    const session = opened.session!;
    assert.equal(await pingOver(url, carol, session), 200);
    assert.equal(await pingOver(url, await delegateAs('vault-x', 'carol'), session), 404, 'another vault');
    assert.equal(await pingOver(url, await delegateAs('vault-y', 'carol'), session), 404, 'same vault and subject, another grant');
    // A token of the session's own lineage (delegated from carol's token) may continue it.
    const child = await host.delegate(await host.authenticate(carol), { subject: 'carol', permissions: ['state:read'] });
    assert.equal(await pingOver(url, child.token, session), 200);
    assert.equal(await pingOver(url, carol, session), 200, 'the owner keeps the session');
  });
});

describe('MCP over Streamable HTTP: idle sessions on the injected clock', function () {
  this.timeout(20_000);
  let clock = Date.now();
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;
  const IDLE_MS = 60_000;

  before(async () => {
    host = await Host.open({ dataDir: null, logger, now: () => clock, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    // Swept every 20 ms of real time; idleness is measured on the injected clock only.
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry(), idleTimeoutMs: IDLE_MS, sweepIntervalMs: 20, now: () => clock });
    url = new URL(`${http.url}/mcp`);
  });

  after(async () => {
    await mcp.close();
    await http.close();
    await host.close();
  });

  it('closes a session idle longer than the timeout on the injected clock, and only then', async () => {
    const token = (await host.mint(host.localSession(VAULT), { subject: 'idler', permissions: ['*'], ttlSeconds: 1800 })).token;
    const idle = (await initializeOver(url, token)).session!;
    const busy = (await initializeOver(url, token)).session!;
    assert.equal(mcp.sessions, 2);
    // Real time passes, many sweeps run, the injected clock stands still: nothing is idle.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(mcp.sessions, 2);
    clock += IDLE_MS / 2;
    assert.equal(await pingOver(url, token, busy), 200);
    clock += IDLE_MS / 2 + 1;
    await waitFor(() => mcp.sessions === 1, 5000, 'the idle session to be swept');
    assert.equal(await pingOver(url, token, idle), 404, 'the idle session is gone');
    assert.equal(await pingOver(url, token, busy), 200, 'the session used within the timeout stays');
  });

  it('refuses a request on a session idle past the timeout even before a sweep has run', async () => {
    const ownHttp = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    const unswept = mountMcpHttp(ownHttp, host, { logger, registry: createTokaRegistry(), idleTimeoutMs: IDLE_MS, sweepIntervalMs: 3_600_000, now: () => clock });
    try {
      const ownUrl = new URL(`${ownHttp.url}/mcp`);
      const token = (await host.mint(host.localSession(VAULT), { subject: 'idler', permissions: ['*'], ttlSeconds: 1800 })).token;
      const session = (await initializeOver(ownUrl, token)).session!;
      clock += IDLE_MS + 1;
      assert.equal(await pingOver(ownUrl, token, session), 404);
      assert.equal(unswept.sessions, 0);
    } finally {
      await unswept.close();
      await ownHttp.close();
    }
  });
});

describe('MCP over Streamable HTTP: sessions left behind are reclaimed at the cap', function () {
  this.timeout(20_000);
  let clock = Date.now();
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;
  const RECLAIM_MS = 10_000;

  before(async () => {
    host = await Host.open({ dataDir: null, logger, now: () => clock, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry(), maxSessionsPerPrincipal: 2, reclaimAfterMs: RECLAIM_MS, now: () => clock });
    url = new URL(`${http.url}/mcp`);
  });

  after(async () => {
    await mcp.close();
    await http.close();
    await host.close();
  });

  it('never locks a subject out: at the cap the session quiet the longest is closed, and until one is quiet long enough the 429 says when', async () => {
    const token = (await host.mint(host.localSession(VAULT), { subject: 'leaver', permissions: ['*'], ttlSeconds: 1800 })).token;
    const oldest = (await initializeOver(url, token)).session!;
    clock += 1000;
    const newer = (await initializeOver(url, token)).session!;
    const refused = await initializeOver(url, token);
    assert.equal(refused.status, 429);
    assert.equal(refused.retryAfter, String(RECLAIM_MS / 1000 - 1), 'the oldest session may be reclaimed in 9 s');
    clock += RECLAIM_MS;
    const third = await initializeOver(url, token);
    assert.equal(third.status, 200, 'a session quiet for the reclaim delay made room');
    assert.equal(await pingOver(url, token, oldest), 404, 'the session quiet the longest was closed');
    assert.equal(await pingOver(url, token, newer), 200, 'the other one stays');
    assert.equal(mcp.sessions, 2);
  });

  it('primes the GET stream of a session initialized at 2025-11-25, also when the GET names no revision', async () => {
    const token = (await host.mint(host.localSession(VAULT), { subject: 'primed', permissions: ['*'], ttlSeconds: 1800 })).token;
    const session = (await initializeOver(url, token)).session!;
    const stream = new AbortController();
    const get = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': session, accept: 'text/event-stream' },
      signal: stream.signal,
    });
    assert.equal(get.status, 200);
    const first = await get.body!.getReader().read();
    assert.match(new TextDecoder().decode(first.value), /^id: \S+\ndata: \n\n/, 'a priming event: an id to resume from, no data');
    stream.abort();
  });

  it('does not reclaim a session with an open GET stream, however long ago its last request was', async () => {
    const token = (await host.mint(host.localSession(VAULT), { subject: 'listener', permissions: ['*'], ttlSeconds: 1800 })).token;
    const listening = (await initializeOver(url, token)).session!;
    const stream = new AbortController();
    const get = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': listening, 'mcp-protocol-version': '2025-11-25', accept: 'text/event-stream' },
      signal: stream.signal,
    });
    assert.equal(get.status, 200);
    clock += 1000;
    const quiet = (await initializeOver(url, token)).session!;
    clock += RECLAIM_MS + 1000;
    assert.equal((await initializeOver(url, token)).status, 200);
    assert.equal(await pingOver(url, token, quiet), 404, 'the quiet session was reclaimed');
    assert.equal(await pingOver(url, token, listening), 200, 'the listening one was not, although its last request is older');
    stream.abort();
  });
});

describe('toka serve and the MCP conformance fixtures', () => {
  it('does not know the test-only plugin flag: the fixtures are served by test/fixtures/mcp-conformance/serve.ts only', async () => {
    const data = mkdtempSync(join(tmpdir(), 'toka-mcp-flag-'));
    try {
      const run = await toka(['serve', '--data', data, '--port', '0', '--mcp-test-plugin', join(data, 'plugin.mjs')]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /Unknown option '--mcp-test-plugin'/);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
