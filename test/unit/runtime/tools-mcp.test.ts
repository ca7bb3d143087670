import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { McpToolSource } from '../../../server/runtime/tools/mcp-source.js';
import { ToolRegistry } from '../../../server/runtime/tools/registry.js';
import { ctx, rejectsWith } from './tools-helpers.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/tools/mcp-tool-server.mjs', import.meta.url));

describe('runtime/tools: external MCP tool source over stdio', function () {
  this.timeout(20_000);
  let source: McpToolSource;
  let registry: ToolRegistry;
  let saved: string | undefined;

  before(async () => {
    saved = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'sk-fake-secret-for-test';
    source = await McpToolSource.connect({ name: 'fx', transport: { type: 'stdio', command: process.execPath, args: [FIXTURE], env: { FIXTURE_FLAG: '1' } } });
    registry = new ToolRegistry();
  });
  after(async () => {
    await source.close();
    if (saved === undefined) delete process.env.OPENAI_API_KEY;
    else process.env.OPENAI_API_KEY = saved;
  });

  it('offers the server tools namespaced, under tool:mcp, and reports the ones it cannot offer', () => {
    const report = source.register(registry);
    assert.deepEqual(report.registered, ['fx__echo', 'fx__fail', 'fx__throws', 'fx__slow', 'fx__env', 'fx__big', 'fx__secret_digest']);
    assert.equal(report.skipped.length, 1);
    assert.equal(report.skipped[0].name, 'fx__bad.name');
    assert.match(report.skipped[0].reason, /does not match/);
    const echo = registry.get('fx__echo');
    assert.equal(echo?.manifest.permission, 'tool:mcp');
    assert.equal(echo?.manifest.sideEffect, 'external');
    assert.equal(echo?.manifest.description, '[fx] Echo the text back.');
    assert.deepEqual(registry.list(['tool:fs-read']), []);
    assert.equal(registry.list(['tool:mcp']).length, 7);
  });

  it('calls a tool through the registry, validating arguments against the server schema first', async () => {
    const r = await registry.call('fx__echo', { text: 'hi' }, ctx('/'), ['tool:mcp']);
    assert.deepEqual(r, { content: 'echo: hi', isError: false });
    const e = await rejectsWith(registry.call('fx__echo', { text: 7 }, ctx('/'), ['tool:mcp']), 'InvalidArguments');
    assert.match(e.message, /\/text must be string \(rule type/);
    await rejectsWith(registry.call('fx__echo', { text: 'hi' }, ctx('/'), ['tool:shell']), 'Denied');
  });

  it('turns tool failures into error results', async () => {
    const fail = await registry.call('fx__fail', {}, ctx('/'), ['tool:*']);
    assert.deepEqual(fail, { content: 'it went wrong', isError: true });
    const thrown = await registry.call('fx__throws', {}, ctx('/'), ['tool:*']);
    assert.equal(thrown.isError, true);
    assert.match(thrown.content, /handler exploded/);
  });

  it('gives the server only a safe environment', async () => {
    const r = await registry.call('fx__env', {}, ctx('/'), ['*']);
    const names = r.content.split(',');
    assert.ok(names.includes('FIXTURE_FLAG'));
    assert.ok(!names.includes('OPENAI_API_KEY'));
  });

  it('caps the result, and stops a call on timeout or cancel', async () => {
    const big = await registry.call('fx__big', {}, ctx('/', { mcpOutputChars: 100 }), ['tool:mcp']);
    assert.match(big.content, /^z{100}\n\[result truncated at 100 characters \(limit mcpOutputChars\)\]$/);
    const e = await rejectsWith(registry.call('fx__slow', { ms: 10_000 }, ctx('/', { mcpTimeoutMs: 200 }), ['tool:mcp']), 'Timeout');
    assert.equal(e.data?.limit, 'mcpTimeoutMs');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const started = Date.now();
    await rejectsWith(registry.call('fx__slow', { ms: 10_000 }, ctx('/', {}, ac.signal), ['tool:mcp']), 'Cancelled');
    assert.ok(Date.now() - started < 1000);
    // The connection is still usable afterwards.
    assert.equal((await registry.call('fx__echo', { text: 'again' }, ctx('/'), ['tool:mcp'])).content, 'echo: again');
  });

  it('refuses a bad source name and reports a server that cannot start', async () => {
    await rejectsWith(McpToolSource.connect({ name: 'a__b', transport: { type: 'stdio', command: process.execPath } }), 'InvalidArguments');
    await rejectsWith(
      McpToolSource.connect({ name: 'dead', transport: { type: 'stdio', command: '/nonexistent/toka-mcp' }, connectTimeoutMs: 2000 }),
      'Failed',
    );
  });
});

describe('runtime/tools: external MCP tool source over Streamable HTTP', function () {
  this.timeout(20_000);

  it('lists and calls the tools of a real SDK server on a local socket', async () => {
    const mcp = new McpServer({ name: 'http-fixture', version: '1.0.0' });
    mcp.registerTool('add', { description: 'Add two numbers.', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
      content: [{ type: 'text', text: String(a + b) }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
    await mcp.connect(transport);
    const server = http.createServer((req, res) => void transport.handleRequest(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const source = await McpToolSource.connect({ name: 'calc', transport: { type: 'http', url: `http://127.0.0.1:${port}/mcp` } });
    try {
      const registry = new ToolRegistry();
      assert.deepEqual(source.register(registry), { registered: ['calc__add'], skipped: [] });
      assert.deepEqual(await registry.call('calc__add', { a: 2, b: 3 }, ctx('/'), ['tool:mcp']), { content: '5', isError: false });
      await rejectsWith(registry.call('calc__add', { a: 2 }, ctx('/'), ['tool:mcp']), 'InvalidArguments');
    } finally {
      await source.close();
      await mcp.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
