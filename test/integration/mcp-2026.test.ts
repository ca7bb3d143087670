/**
 * MCP protocol revision 2026-07-28 against a real `toka serve` (child process, real sockets), driven by the
 * 2.x SDK client (`@modelcontextprotocol/client`) pinned to that revision: discovery, tools, resources, a
 * tool call, with no session; then the bad input a client can send on that revision, with raw requests:
 * an unsupported version, no `_meta`, headers that disagree with the body, a removed 2025 method, a bad token,
 * a tampered `requestState`. Each gets its typed error and HTTP status, and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { z } from 'zod';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { mountMcpHttp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import type { McpPlugin } from '../../server/adapters/mcp/registry.js';
import { createTokaRegistry } from '../../server/adapters/mcp/toka.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { TOKA_BIN, cleanEnv, toka } from '../helpers/cli.js';
import { spawnServe, type ServeProcess } from '../helpers/ws-client.js';

const REVISION = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': REVISION,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

/** A raw 2026-07-28 POST: the headers a conforming client sends (Mcp-Name from params.name or .uri), overridable. */
const rawPost = (url: URL, token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const params = (body.params ?? {}) as { name?: string; uri?: string };
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': REVISION,
      'mcp-method': String(body.method),
      ...(params.name ?? params.uri ? { 'mcp-name': String(params.name ?? params.uri) } : {}),
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', ...body }),
  });
};

describe('MCP 2026-07-28 on toka serve (2.x SDK client, stateless HTTP)', function () {
  this.timeout(30_000);
  let serve: ServeProcess;
  let token: string;
  let url: URL;
  let client: Client;

  before(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'toka-mcp2026-'));
    const minted = await toka(['token', 'mint', '--data', dataDir, '--sub', 'alice', '--vault', 'v1', '--perm', '*', '--ttl', '30m']);
    assert.equal(minted.code, 0, minted.stderr);
    token = minted.stdout.trim();
    serve = await spawnServe({ dataDir });
    url = new URL('/mcp', serve.url);
    client = new Client({ name: 'toka-2026-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: REVISION } } });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  });

  after(async () => {
    await client?.close();
    await serve?.stop();
  });

  const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const res = await rawPost(url, token, { id: 7, ...body }, headers);
    return { status: res.status, headers: res.headers, json: (await res.json()) as { id: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data: Record<string, unknown> } } };
  };

  it('negotiates 2026-07-28 by server/discover: versions, capabilities, server identity', async () => {
    assert.equal(client.getNegotiatedProtocolVersion(), REVISION);
    const caps = client.getServerCapabilities();
    assert.ok(caps?.tools && caps.resources && caps.prompts, JSON.stringify(caps));
    const discovered = await post({ method: 'server/discover', params: { _meta: META } });
    assert.equal(discovered.status, 200);
    assert.deepEqual((discovered.json.result!.supportedVersions as string[]).slice(0, 2), [REVISION, '2025-11-25']);
    assert.equal(discovered.json.result!.resultType, 'complete');
    assert.equal((discovered.json.result!._meta as Record<string, { name: string }>)['io.modelcontextprotocol/serverInfo'].name, 'toka');
    assert.equal(discovered.headers.get('mcp-session-id'), null, 'no session on this revision');
  });

  it('lists tools with caching hints, calls one and reads a resource, with no session', async () => {
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'get_state'), tools.map((t) => t.name).join(', '));
    const called = await client.callTool({ name: 'get_state', arguments: {} });
    assert.equal(called.isError, undefined, JSON.stringify(called));
    assert.ok(called.structuredContent && typeof called.structuredContent === 'object');
    const read = await client.readResource({ uri: 'toka://state' });
    const first = read.contents[0] as { uri: string; text: string };
    assert.equal(first.uri, 'toka://state');
    assert.doesNotThrow(() => JSON.parse(first.text));

    const raw = await post({ method: 'tools/list', params: { _meta: META } });
    assert.equal(raw.json.result!.cacheScope, 'private');
    assert.equal(typeof raw.json.result!.ttlMs, 'number');
    const state = await post({ method: 'resources/read', params: { uri: 'toka://state', _meta: META } });
    assert.equal(state.json.result!.ttlMs, 0, 'world state is never served from a cache');
  });

  it('an unsupported version is -32022 with the supported list (400)', async () => {
    const res = await post({ method: 'tools/list', params: { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } }, { 'mcp-protocol-version': '2099-01-01' });
    assert.equal(res.status, 400);
    assert.equal(res.json.error!.code, -32022);
    assert.equal(res.json.error!.data.requested, '2099-01-01');
    assert.ok((res.json.error!.data.supported as string[]).includes(REVISION));
    assert.equal(res.json.id, 7);
  });

  it('a request without _meta, or without client capabilities, is InvalidParams (400)', async () => {
    for (const params of [{}, { _meta: { 'io.modelcontextprotocol/protocolVersion': REVISION } }]) {
      const res = await post({ method: 'tools/list', params });
      assert.equal(res.status, 400);
      assert.equal(res.json.error!.code, -32602);
      assert.equal(res.json.error!.data.name, 'InvalidParams');
    }
  });

  it('headers that disagree with the body are HeaderMismatch (-32020, 400)', async () => {
    const method = await post({ method: 'tools/list', params: { _meta: META } }, { 'mcp-method': 'prompts/list' });
    assert.equal(method.status, 400);
    assert.equal(method.json.error!.code, -32020);
    const name = await post({ method: 'tools/call', params: { name: 'get_state', arguments: {}, _meta: META } }, { 'mcp-name': 'spawn_agent' });
    assert.equal(name.json.error!.code, -32020);
    const version = await post({ method: 'tools/list', params: { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } });
    assert.equal(version.json.error!.code, -32020, 'the header says 2026-07-28, the body another version');
  });

  it('a 2025 lifecycle method or an unknown one is MethodNotFound (404)', async () => {
    for (const method of ['ping', 'logging/setLevel', 'resources/subscribe', 'no/such']) {
      const res = await post({ method, params: { _meta: META } });
      assert.equal(res.status, 404, method);
      assert.equal(res.json.error!.code, -32601, method);
    }
  });

  it('a bad or missing token is 401 with the resource metadata, before anything else is looked at', async () => {
    const bad = await post({ method: 'tools/list', params: { _meta: META } }, { authorization: 'Bearer not-a-token' });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token".*resource_metadata=/);
    const none = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'mcp-protocol-version': REVISION }, body: '{}' });
    assert.equal(none.status, 401);
  });

  it('subscriptions/listen: acknowledged first with the URIs served, then resources/updated tagged with the subscription id', async () => {
    const abort = new AbortController();
    const res = await fetch(url, {
      method: 'POST',
      signal: abort.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        'mcp-protocol-version': REVISION,
        'mcp-method': 'subscriptions/listen',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'listen-1',
        method: 'subscriptions/listen',
        params: { notifications: { resourceSubscriptions: ['toka://state', 'toka://no-such'], toolsListChanged: true }, _meta: META },
      }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    const next = async (): Promise<{ method: string; params: Record<string, any> }> => {
      for (;;) {
        const event = /^data: (.+)$/m.exec(buffered);
        if (event) {
          buffered = buffered.slice(event.index + event[0].length);
          return JSON.parse(event[1]);
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the listen stream ended');
        buffered += value;
      }
    };
    try {
      const ack = await next();
      assert.equal(ack.method, 'notifications/subscriptions/acknowledged');
      assert.deepEqual(ack.params.notifications, { resourceSubscriptions: ['toka://state'] }, 'only what is served and honoured');
      assert.equal(ack.params._meta['io.modelcontextprotocol/subscriptionId'], 'listen-1');
      await client.callTool({ name: 'spawn_agent', arguments: { name: 'listened' } });
      const updated = await next();
      assert.equal(updated.method, 'notifications/resources/updated');
      assert.equal(updated.params.uri, 'toka://state');
      assert.equal(updated.params._meta['io.modelcontextprotocol/subscriptionId'], 'listen-1');
    } finally {
      abort.abort();
    }
    const bad = await post({ method: 'subscriptions/listen', params: { notifications: { resourceSubscriptions: 'toka://state' }, _meta: META } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error!.code, -32602);
  });

  it('keeps serving after the bad input', async () => {
    const { tools } = await client.listTools();
    assert.ok(tools.length > 0);
  });

  it('stdio: toka mcp (attached to this toka serve) serves the pinned 2.x client without initialize', async () => {
    const stdio = new Client({ name: 'toka-2026-stdio', version: '1.0.0' }, { versionNegotiation: { mode: { pin: REVISION } } });
    await stdio.connect(new StdioClientTransport({ command: process.execPath, args: [TOKA_BIN, 'mcp', '--data', serve.dataDir], env: cleanEnv({ TOKA_TOKEN: token }) as Record<string, string> }));
    try {
      assert.equal(stdio.getNegotiatedProtocolVersion(), REVISION);
      const { tools } = await stdio.listTools();
      assert.ok(tools.some((t) => t.name === 'get_state'));
      const called = await stdio.callTool({ name: 'get_state', arguments: {} });
      assert.equal(called.isError, undefined, JSON.stringify(called));
      const read = await stdio.readResource({ uri: 'toka://state' });
      assert.equal((read.contents[0] as { uri: string }).uri, 'toka://state');
    } finally {
      await stdio.close();
    }
  });

  it('stdio: raw lines — bad envelope and unsupported version get typed errors; a 2025 session on the same connection still works', async () => {
    const child = spawn(process.execPath, [TOKA_BIN, 'mcp', '--data', serve.dataDir], { env: cleanEnv({ TOKA_TOKEN: token }), stdio: ['pipe', 'pipe', 'ignore'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const ask = async (message: Record<string, unknown>) => {
      child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
      return JSON.parse((await lines.next()).value as string) as { id: unknown; result?: Record<string, unknown>; error?: { code: number; data: Record<string, unknown> } };
    };
    try {
      const discovered = await ask({ id: 1, method: 'server/discover', params: { _meta: META } });
      assert.equal((discovered.result!.supportedVersions as string[])[0], REVISION);
      const noCaps = await ask({ id: 2, method: 'server/discover', params: {} });
      assert.equal(noCaps.error!.code, -32602);
      const future = await ask({ id: 3, method: 'tools/list', params: { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } });
      assert.equal(future.error!.code, -32022);
      assert.equal(future.error!.data.requested, '2099-01-01');
      const removed = await ask({ id: 4, method: 'ping', params: { _meta: META } });
      assert.equal(removed.error!.code, -32601);
      const listed = await ask({ id: 5, method: 'tools/list', params: { _meta: META } });
      assert.equal(listed.result!.resultType, 'complete');
      assert.equal(listed.result!.cacheScope, 'private');
      const init = await ask({ id: 6, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '1' } } });
      assert.equal((init.result as { protocolVersion: string }).protocolVersion, '2025-11-25');
      const legacy = await ask({ id: 7, method: 'tools/list', params: {} });
      assert.ok(Array.isArray(legacy.result!.tools));
      assert.equal(legacy.result!.resultType, undefined, 'the 2025 session answers in 2025 terms');
    } finally {
      child.stdin!.end();
      child.kill();
    }
  });
});

describe('MCP 2026-07-28 bounds and input rounds (in-process host, real HTTP)', function () {
  this.timeout(20_000);
  const logger = createLogger({ level: 'silent' });
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;
  const waiting: (() => void)[] = [];
  /** Let every held call answer. */
  const release = () => waiting.splice(0).forEach((resolve) => resolve());

  const plugin: McpPlugin = (r) => {
    r.registerTool({
      name: 'held',
      description: 'Answers when the test releases it',
      permission: null,
      input: z.object({}),
      run: async () => {
        await new Promise<void>((resolve) => waiting.push(resolve));
        return { content: [{ type: 'text', text: 'released' }] };
      },
    });
    r.registerTool({
      name: 'confirm',
      description: 'Asks the user to confirm',
      permission: null,
      input: z.object({}),
      run: async (_args, ctx) => {
        const answer = await ctx.elicit({ message: 'Sure?', requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } } } }, { key: 'sure' });
        const more = await ctx.elicit({ message: 'Really?', requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } } } }, { key: 'really' });
        return { content: [{ type: 'text', text: `${answer.action}/${more.action}` }] };
      },
    });
  };

  before(async () => {
    host = await Host.open({ dataDir: null, logger });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry([plugin]), maxRequestsPerPrincipal: 1 });
    url = new URL('/mcp', http.url);
  });

  after(async () => {
    release();
    await mcp.close();
    await http.close();
    await host.close();
  });

  const mint = async (subject: string) => (await host.mint(host.localSession('v1'), { subject, permissions: ['*'], ttlSeconds: 600 })).token;
  const call = async (token: string, name: string, extra: Record<string, unknown> = {}, capabilities: Record<string, unknown> = { elicitation: {} }) => {
    const res = await rawPost(url, token, { id: 1, method: 'tools/call', params: { name, arguments: {}, ...extra, _meta: { ...META, 'io.modelcontextprotocol/clientCapabilities': capabilities } } });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), json: (await res.json()) as { result?: Record<string, any>; error?: { code: number; data: Record<string, unknown> } } };
  };

  it('a subject with maxRequestsPerPrincipal requests open gets 429 with Retry-After; others and later ones are served', async () => {
    const alice = await mint('alice');
    const first = call(alice, 'held');
    await new Promise((r) => setTimeout(r, 200));
    const second = await call(alice, 'held');
    assert.equal(second.status, 429);
    assert.equal(second.retryAfter, '1');
    assert.equal(second.json.error!.data.name, 'RateLimited');
    const bob = call(await mint('bob'), 'held');
    await new Promise((r) => setTimeout(r, 200));
    release();
    assert.equal((await first).json.result!.content[0].text, 'released');
    assert.equal((await bob).status, 200, 'the cap is per subject');
    const third = call(alice, 'held');
    await new Promise((r) => setTimeout(r, 200));
    release();
    assert.equal((await third).status, 200);
  });

  it('input rounds: answers carried in the signed requestState; altered or another caller\'s state is refused', async () => {
    const alice = await mint('alice');
    const round1 = await call(alice, 'confirm');
    assert.equal(round1.json.result!.resultType, 'input_required');
    assert.deepEqual(Object.keys(round1.json.result!.inputRequests), ['sure']);
    const state1 = round1.json.result!.requestState as string;
    const accept = { action: 'accept', content: { ok: true } };
    const round2 = await call(alice, 'confirm', { inputResponses: { sure: accept }, requestState: state1 });
    assert.deepEqual(Object.keys(round2.json.result!.inputRequests), ['really']);
    const state2 = round2.json.result!.requestState as string;
    const done = await call(alice, 'confirm', { inputResponses: { really: { action: 'decline' } }, requestState: state2 });
    assert.equal(done.json.result!.resultType, 'complete');
    assert.equal(done.json.result!.content[0].text, 'accept/decline', 'the first answer came back through the state');

    const altered = `${state2.slice(0, 5)}${state2[5] === 'A' ? 'B' : 'A'}${state2.slice(6)}`;
    const tampered = await call(alice, 'confirm', { inputResponses: { really: accept }, requestState: altered });
    assert.equal(tampered.status, 400);
    assert.equal(tampered.json.error!.code, -32602);
    const stolen = await call(await mint('mallory'), 'confirm', { inputResponses: { really: accept }, requestState: state2 });
    assert.equal(stolen.json.error!.code, -32602, "another subject cannot replay alice's state");
    const wrongShape = await call(alice, 'confirm', { inputResponses: { sure: { action: 'maybe' } } });
    assert.equal(wrongShape.json.error!.code, -32602, 'an answer that is not an elicitation result');
  });

  it('discovery is charged to the rate limit like an initialize: past the burst, 429 with Retry-After', async () => {
    const limited = await Host.open({ dataDir: null, logger, now: () => 1_700_000_000_000, rateLimit: { ratePerSec: 1, burst: 3 } });
    const face = await startHttpServer(limited, { host: '127.0.0.1', port: 0, logger });
    const mount = mountMcpHttp(face, limited, { logger });
    try {
      const carol = (await limited.mint(limited.localSession('v1'), { subject: 'carol', permissions: ['*'], ttlSeconds: 600 })).token;
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 6; i++) {
        const res = await fetch(new URL('/mcp', face.url), {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${carol}`, 'mcp-protocol-version': REVISION, 'mcp-method': 'server/discover' },
          body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'server/discover', params: { _meta: META } }),
        });
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers.get('retry-after');
        await res.body?.cancel();
      }
      assert.ok(statuses.includes(200) && statuses.at(-1) === 429, statuses.join(','));
      assert.match(retryAfter ?? '', /^\d+$/);
    } finally {
      await mount.close();
      await face.close();
      await limited.close();
    }
  });

  it('an ask the client declared no capability for is MissingRequiredClientCapability (-32021, 400)', async () => {
    const res = await call(await mint('alice'), 'confirm', {}, {});
    assert.equal(res.status, 400);
    assert.equal(res.json.error!.code, -32021);
    assert.deepEqual(res.json.error!.data.requiredCapabilities, { elicitation: {} });
  });
});
