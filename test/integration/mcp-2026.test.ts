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
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { toka } from '../helpers/cli.js';
import { spawnServe, type ServeProcess } from '../helpers/ws-client.js';

const REVISION = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': REVISION,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
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

  /** A raw 2026-07-28 POST: the headers a conforming client sends, overridable. */
  const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const params = (body.params ?? {}) as { name?: string; uri?: string };
    const res = await fetch(url, {
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
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, ...body }),
    });
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

  it('keeps serving after the bad input', async () => {
    const { tools } = await client.listTools();
    assert.ok(tools.length > 0);
  });
});
