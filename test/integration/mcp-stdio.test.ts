/**
 * `toka mcp` in a real process, driven by the SDK's own Client over stdio: tools, resources and
 * subscriptions, prompts and completion, logging, permission filtering, revocation mid-session, and the
 * raw wire (malformed input answered, stdout carries only JSON-RPC frames).
 * Build first: `node esbuild.mjs` (npm test does it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  LoggingMessageNotificationSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
  type JSONRPCMessage,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { LineTransport } from '../../server/adapters/mcp/stdio.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOKA = join(ROOT, 'dist', 'toka.js');
const ENV: Record<string, string> = {};
for (const [k, value] of Object.entries(process.env)) if (!k.startsWith('TOKA_') && value !== undefined) ENV[k] = value;

describe('toka mcp (stdio)', function () {
  this.timeout(30_000);
  let data: string;
  const tokens: Record<'full' | 'readOnly' | 'doomed', string> = { full: '', readOnly: '', doomed: '' };

  const mint = async (perm: string) =>
    (await run(process.execPath, [TOKA, 'token', 'mint', '--data', data, '--sub', 'alice', '--vault', 'v1', '--perm', perm, '--ttl', '30m'], { cwd: ROOT, env: ENV })).stdout.trim();

  const connect = async (token: string): Promise<Client> => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [TOKA, 'mcp', '--data', data],
      env: { ...ENV, TOKA_TOKEN: token },
      cwd: ROOT,
      stderr: 'ignore',
    });
    const client = new Client({ name: 'toka-test', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'toka-mcp-stdio-'));
    tokens.full = await mint('*');
    tokens.readOnly = await mint('state:read,events:read');
    tokens.doomed = await mint('state:read,capability:revoke');
  });

  after(() => rmSync(data, { recursive: true, force: true }));

  it('lists and calls tools, reads and subscribes resources, gets prompts, completes, logs', async () => {
    const client = await connect(tokens.full);
    try {
      const tools = (await client.listTools()).tools;
      assert.deepEqual(tools.map((t) => t.name).sort(), [
        'cancel_run', 'cancel_task', 'delegate_capability', 'emit_observation', 'get_run', 'get_state', 'get_task', 'list_approvals', 'list_runs',
        'query_events', 'resolve_approval', 'revoke_capability', 'run_agent', 'schedule_task', 'spawn_agent',
      ]);
      for (const t of tools) assert.ok(t.description && t.inputSchema.type === 'object' && t.outputSchema, t.name);

      const logs: LoggingMessageNotification['params'][] = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
      await client.setLoggingLevel('debug');
      const updated: string[] = [];
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
      await client.subscribeResource({ uri: 'toka://agents' });

      const spawned = await client.callTool({ name: 'spawn_agent', arguments: { name: 'planner' } });
      assert.ok(!spawned.isError, JSON.stringify(spawned));
      const agent = (spawned.structuredContent as { agent: string }).agent;
      assert.deepEqual(JSON.parse((spawned.content as { text: string }[])[0].text), spawned.structuredContent);
      const state = await client.callTool({ name: 'get_state', arguments: { agent } });
      assert.equal((state.structuredContent as { agents: { name: string }[] }).agents[0].name, 'planner');

      const read = await client.readResource({ uri: 'toka://state' });
      assert.match(String((read.contents[0] as { text: string }).text), /planner/);
      const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
      assert.deepEqual(templates, ['toka://agents/{id}']);

      const prompt = await client.getPrompt({ name: 'write_agent_spec', arguments: { goal: 'index the docs', parent: agent } });
      assert.match(JSON.stringify(prompt.messages), /index the docs/);
      const completion = await client.complete({
        ref: { type: 'ref/prompt', name: 'write_agent_spec' },
        argument: { name: 'parent', value: agent.slice(0, 4) },
      });
      assert.ok(completion.completion.values.includes(agent));

      await waitFor(() => updated.length > 0 && logs.length > 0, 5000, 'a resource update and a log message');
      assert.ok(updated.includes('toka://agents'), JSON.stringify(updated));
      assert.ok(logs.some((l) => l.level === 'debug' && JSON.stringify(l.data).includes('spawn_agent')), JSON.stringify(logs));
    } finally {
      await client.close();
    }
  });

  it('hides spawn_agent from a token without agent:spawn, and the host refuses a call to it', async () => {
    const client = await connect(tokens.readOnly);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.deepEqual(names.sort(), ['get_run', 'get_state', 'get_task', 'list_runs', 'query_events']);
      const refused = await client.callTool({ name: 'spawn_agent', arguments: { name: 'sneaky' } });
      assert.equal(refused.isError, true);
      assert.equal(refused.structuredContent, undefined);
      const refusedContent = refused.content as { type: string; text: string }[];
      assert.ok(refusedContent[0].text.startsWith('CapabilityDenied: '));
      assert.equal((JSON.parse(refusedContent[1].text) as { error: { name: string } }).error.name, 'CapabilityDenied');
      const invalid = await client.callTool({ name: 'get_state', arguments: { limit: 'ten' } });
      assert.equal(invalid.isError, true);
      assert.match((invalid.content as { text: string }[])[0].text, /^InvalidParams: invalid arguments for tool get_state: limit: /);
      await assert.rejects(client.callTool({ name: 'nope', arguments: {} }), (e: McpError) => {
        assert.equal(e.message, 'MCP error -32602: Unknown tool: nope');
        assert.equal((e.data as { name: string }).name, 'InvalidParams');
        return true;
      });
      await assert.rejects(client.readResource({ uri: 'toka://agents/nobody' }), (e: McpError) => e.code === -32002);
      assert.ok(!(await client.callTool({ name: 'get_state', arguments: {} })).isError);
    } finally {
      await client.close();
    }
  });

  it('refuses the next call once the session token is revoked', async () => {
    const client = await connect(tokens.doomed);
    try {
      const jti = String(decodeJwt(tokens.doomed).jti);
      const revoked = await client.callTool({ name: 'revoke_capability', arguments: { jti, reason: 'test' } });
      assert.ok(!revoked.isError, JSON.stringify(revoked));
      await assert.rejects(client.callTool({ name: 'get_state', arguments: {} }), (e: McpError) => {
        assert.equal(e.code, -31910);
        assert.equal((e.data as { reason: string }).reason, 'ERR_TOKEN_REVOKED');
        return true;
      });
    } finally {
      await client.close();
    }
  });

  it('answers malformed input on the wire and writes only JSON-RPC frames to stdout', async () => {
    const child = spawn(process.execPath, [TOKA, 'mcp', '--data', data], {
      cwd: ROOT,
      env: { ...ENV, TOKA_TOKEN: tokens.full, TOKA_LOG_LEVEL: 'debug' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const frames = async (n: number) => {
      await waitFor(() => stdout.split('\n').filter(Boolean).length >= n, 10_000, `${n} frames on stdout`);
      return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: unknown; error?: { code: number }; result?: unknown });
    };
    try {
      child.stdin.write('this is not json\n');
      child.stdin.write('{"jsonrpc":"2.0","id":5}\n');
      child.stdin.write(
        `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })}\n`,
      );
      const got = await frames(3);
      assert.deepEqual([got[0].id, got[0].error?.code], [null, -32700]);
      assert.deepEqual([got[1].id, got[1].error?.code], [5, -32600]);
      assert.equal(got[2].id, 1);
      assert.ok(got[2].result);
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'no/such' })}\n`);
      const more = await frames(4);
      assert.deepEqual([more[3].id, more[3].error?.code], [2, -32601]);
      // A line over the 4 MiB bound: one LimitExceeded, its tail discarded, and the next request answered.
      child.stdin.write(`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":"${'x'.repeat(4 * 1024 * 1024)}"}}\n`);
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' })}\n`);
      const after = await frames(6);
      assert.deepEqual([after[4].id, after[4].error?.code, (after[4].error as { data?: { limit: string } } | undefined)?.data?.limit], [null, -31905, 'mcp.maxStdioLineBytes']);
      assert.deepEqual([after[5].id, after[5].result], [3, {}]);
      child.stdin.end();
      assert.equal(await exited, 0);
      for (const line of stdout.split('\n').filter(Boolean)) assert.equal((JSON.parse(line) as { jsonrpc: string }).jsonrpc, '2.0');
      assert.match(stderr, /MCP stdio session open/);
    } finally {
      // A failed assertion must not leave the child running (and mocha waiting on it).
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

describe('toka mcp with its input piped and closed (printf … | toka mcp)', function () {
  this.timeout(30_000);
  let data: string;
  after(() => rmSync(data, { recursive: true, force: true }));

  it('answers every request it read before the input ended, then exits 0', async () => {
    data = mkdtempSync(join(tmpdir(), 'toka-mcp-pipe-'));
    const token = (await run(process.execPath, [TOKA, 'token', 'mint', '--data', data, '--sub', 'alice', '--vault', 'v1', '--perm', '*', '--ttl', '30m'], { cwd: ROOT, env: ENV })).stdout.trim();
    const child = spawn(process.execPath, [TOKA, 'mcp', '--data', data], { cwd: ROOT, env: { ...ENV, TOKA_TOKEN: token }, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const lines = [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'pipe', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'spawn_agent', arguments: { name: 'piped' } } },
      { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'toka://agents' } },
    ];
    child.stdin.end(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    assert.equal(await exited, 0);
    const answers = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: number; result?: { isError?: boolean } });
    assert.deepEqual(answers.map((a) => a.id).sort(), [1, 2, 3]);
    assert.ok(answers.every((a) => a.result && !a.result.isError), stdout);
  });
});

describe('MCP stdio line reader (LineTransport)', () => {
  const ping = (id: number) => `${JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' })}\n`;
  const reader = async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const transport = new LineTransport(input, output, 1024, 64);
    const received: JSONRPCMessage[] = [];
    transport.onmessage = (m) => void received.push(m);
    await transport.start();
    let written = '';
    output.setEncoding('utf8').on('data', (c: string) => (written += c));
    /** Feed chunks, one per tick, and wait until they have been read. */
    const feed = async (...chunks: string[]) => {
      for (const c of chunks) {
        input.write(c);
        await new Promise((r) => setImmediate(r));
      }
    };
    const answers = () => written.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: unknown; error: { code: number; data: { limit?: string } } });
    return { feed, received, answers };
  };

  it('answers a line over the bound once, discards the rest of it across chunks, and reads the next line', async () => {
    const { feed, received, answers } = await reader();
    await feed('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"', 'x'.repeat(40), 'x'.repeat(40), `${'x'.repeat(40)}"}}\n${ping(2)}`);
    assert.deepEqual(answers().map((a) => [a.id, a.error.code, a.error.data.limit]), [[null, -31905, 'mcp.maxStdioLineBytes']]);
    assert.deepEqual(received, [{ jsonrpc: '2.0', id: 2, method: 'ping' }]);
  });

  it('refuses a whole line over the bound that arrives with its newline, and counts bytes, not characters', async () => {
    const { feed, received, answers } = await reader();
    await feed(`"${'x'.repeat(100)}"\n${ping(3)}`);
    // 30 characters of 3 UTF-8 bytes each: 90 bytes, over the 64-byte bound.
    await feed(`"${'€'.repeat(30)}"\n`, ping(4));
    assert.deepEqual(answers().map((a) => [a.id, a.error.code]), [[null, -31905], [null, -31905]]);
    assert.deepEqual(received.map((m) => (m as { id: number }).id), [3, 4]);
  });
});
