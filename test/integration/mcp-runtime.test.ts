/**
 * The agent runtime over MCP (runtime-tools.ts), driven by the SDK's Client over Streamable HTTP against a
 * real host and runtime on a SQLite data dir, the LLM scripted: run_agent waits with progress notifications,
 * get_run/list_runs/cancel_run, approvals listed and resolved by the MCP client, and every tool listed only
 * to tokens that permit it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { mountMcpHttp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import { runtimeTools } from '../../server/adapters/mcp/runtime-tools.js';
import { createTokaRegistry } from '../../server/adapters/mcp/toka.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { parseTranscript, scriptedProvider, type ScriptedTranscript } from '../../server/runtime/llm/index.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { builtinTools, ToolRegistry } from '../../server/runtime/tools/index.js';
import { waitFor } from '../helpers/wait.js';

const quiet = createLogger({ level: 'silent' });
const RUN_TOOLS = ['cancel_run', 'get_run', 'list_approvals', 'list_runs', 'resolve_approval', 'run_agent'];
const USER = ['agent:spawn', 'capability:grant', 'task:run', 'task:schedule', 'task:cancel', 'task:approve', 'state:read', 'events:read', 'tool:fs-read', 'tool:fs-write', 'tool:shell'];

const SPEC = `
metadata:
  name: note-taker
  version: v0.1.0
  created: "2026-11-20"
  workstream: MCP Runtime Tests
spec:
  name: Note Taker Agent
  domain: documentation
  priority: medium
capabilities:
  primary: [write-notes]
objectives:
  - description: Write the notes it is asked for
    deliverable: notes.md in the workspace
    validation: The file holds the notes
tasks:
  default:
    - description: Keep notes
      priority: low
dependencies:
  required: []
security:
  sandbox: true
  capabilities_required: [filesystem-read, filesystem-write, git-access]
  resource_limits: {max_memory: 256MB, max_cpu: 50%, timeout: 10m}
`;

describe('MCP runtime tools (run_agent, get_run, list_runs, cancel_run, list_approvals, resolve_approval)', function () {
  this.timeout(30_000);
  let dir: string;
  let host: Host;
  let runtime: AgentRuntime;
  let http: HttpServer;
  let mcp: McpHttpMount;
  const clients: Client[] = [];

  const open = async (transcript: ScriptedTranscript) => {
    host = await Host.open({ dataDir: join(dir, 'data'), logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    const tools = new ToolRegistry();
    for (const tool of builtinTools()) tools.register(tool);
    const provider = scriptedProvider(parseTranscript(transcript));
    runtime = await AgentRuntime.start({ host, provider: () => provider, tools, workspaceRoot: join(dir, 'workspaces'), logger: quiet });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: quiet });
    mcp = mountMcpHttp(http, host, { logger: quiet, registry: createTokaRegistry([runtimeTools(runtime)]) });
  };

  const mint = async (permissions: string[]) => (await host.mint(host.localSession('v'), { subject: 'dev', permissions, ttlSeconds: 1800 })).token;

  const connect = async (token: string) => {
    const client = new Client({ name: 'toka-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${http.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  };

  const spawnAgent = async (token: string) => {
    const analysis = analyzeSpecText('note-taker.agent.yaml', SPEC);
    assert.deepEqual(analysis.diagnostics.filter((d) => d.severity === 'error'), []);
    return (await runtime.spawn(await host.authenticate(token), { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document })).agent;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-mcp-runtime-'));
  });

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await mcp?.close();
    await http?.close();
    await runtime?.close();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists each runtime tool only to tokens that permit it', async () => {
    await open({ turns: [{ text: 'unused' }] });
    const names = async (permissions: string[]) =>
      (await (await connect(await mint(permissions))).listTools()).tools.map((t) => t.name).filter((n) => RUN_TOOLS.includes(n)).sort();
    assert.deepEqual(await names(USER), RUN_TOOLS);
    assert.deepEqual(await names(['state:read']), ['get_run', 'list_runs']);
    assert.deepEqual(await names(['state:read', 'task:run']), ['get_run', 'list_runs', 'run_agent']);
    assert.deepEqual(await names(['task:approve']), ['list_approvals', 'resolve_approval']);
    assert.deepEqual(await names(['events:read']), []);
  });

  it('run_agent waits for the run, reporting progress as it goes, and returns the finished run', async () => {
    await open({
      turns: [
        { toolCalls: [{ id: 'c1', name: 'fs_write', arguments: { path: 'notes.md', content: 'hello' } }] },
        { expect: { toolResults: [{ callId: 'c1', isError: false }] }, toolCalls: [{ id: 'c2', name: 'fs_read', arguments: { path: 'notes.md' } }] },
        { expect: { toolResults: [{ callId: 'c2', isError: false, contains: 'hello' }] }, text: 'notes written' },
      ],
    });
    const token = await mint(USER);
    const agent = await spawnAgent(token);
    const client = await connect(token);
    const progress: Progress[] = [];
    const result = await client.callTool({ name: 'run_agent', arguments: { agent, input: 'write hello into notes.md' } }, undefined, {
      onprogress: (p) => void progress.push(p),
    });
    assert.ok(!result.isError, JSON.stringify(result));
    const out = result.structuredContent as { ended: boolean; runs: { id: string; state: string; text: string; turns: number; toolCalls: number }[] };
    assert.equal(out.ended, true);
    assert.equal(out.runs.length, 1);
    assert.equal(out.runs[0].state, 'completed');
    assert.equal(out.runs[0].text, 'notes written');
    assert.equal(readFileSync(join(dir, 'workspaces', agent, 'notes.md'), 'utf8'), 'hello');
    assert.ok(progress.length >= 2, JSON.stringify(progress));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress, JSON.stringify(progress));
    assert.equal(progress.at(-1)!.progress, out.runs[0].turns + out.runs[0].toolCalls);
    assert.match(progress.at(-1)!.message ?? "", new RegExp(`^${out.runs[0].id}: (working|completed), ${out.runs[0].turns} turns, ${out.runs[0].toolCalls} tool calls$`));

    const got = await client.callTool({ name: 'get_run', arguments: { run: out.runs[0].id } });
    assert.equal((got.structuredContent as { run: { state: string } }).run.state, 'completed');
    const listed = await client.callTool({ name: 'list_runs', arguments: { agent } });
    assert.deepEqual((listed.structuredContent as { runs: { id: string }[] }).runs.map((r) => r.id), [out.runs[0].id]);
    const unknown = await client.callTool({ name: 'get_run', arguments: { run: 'no-such-run' } });
    assert.equal(unknown.isError, true);
    assert.match((unknown.content as { text: string }[])[0].text, /^UnknownEntity: /);
    const again = await client.callTool({ name: 'cancel_run', arguments: { run: out.runs[0].id } });
    assert.equal(again.isError, true, 'an ended run cannot be cancelled');
  });

  it('approvals: the MCP client lists a paused call, approves it, denies the next, and cancels a waiting run', async () => {
    await open({
      turns: [
        { toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo approved > out.txt' } }] },
        { toolCalls: [{ id: 's2', name: 'shell', arguments: { command: 'echo never > never.txt' } }] },
        { expect: { toolResults: [{ callId: 's2', isError: true, contains: 'declined' }] }, text: 'done' },
        { toolCalls: [{ id: 's3', name: 'shell', arguments: { command: 'echo later > later.txt' } }] },
      ],
    });
    const token = await mint(USER);
    const agent = await spawnAgent(token);
    const client = await connect(token);
    const started = await client.callTool({ name: 'run_agent', arguments: { agent, input: 'use the shell', wait: false } });
    const run = (started.structuredContent as { runs: { id: string }[]; ended: boolean }).runs[0].id;
    assert.equal((started.structuredContent as { ended: boolean }).ended, false);

    const pending = async () => (await client.callTool({ name: 'list_approvals', arguments: {} })).structuredContent as { approvals: { id: string; run: string; call: { name: string }; permission: string }[] };
    const first = await waitFor(async () => (await pending()).approvals[0], 10_000, 'the first approval');
    assert.equal(first.run, run);
    assert.equal(first.call.name, 'shell');
    assert.equal(first.permission, 'tool:shell');
    const approved = await client.callTool({ name: 'resolve_approval', arguments: { run, approval: first.id, decision: 'approve' } });
    assert.ok(!approved.isError, JSON.stringify(approved));
    const second = await waitFor(async () => (await pending()).approvals.find((a) => a.id !== first.id), 10_000, 'the second approval');
    assert.equal(readFileSync(join(dir, 'workspaces', agent, 'out.txt'), 'utf8'), 'approved\n');
    await client.callTool({ name: 'resolve_approval', arguments: { run, approval: second.id, decision: 'deny', note: 'no' } });
    const ended = await client.callTool({ name: 'run_agent', arguments: { agent, input: 'again', wait: false } });
    const next = (ended.structuredContent as { runs: { id: string }[] }).runs[0].id;
    await waitFor(async () => (await pending()).approvals.some((a) => a.run === next), 10_000, 'the approval of the next run');
    const cancelled = await client.callTool({ name: 'cancel_run', arguments: { run: next, reason: 'not now' } });
    assert.equal((cancelled.structuredContent as { run: { state: string } }).run.state, 'canceled');
    assert.equal(existsSync(join(dir, 'workspaces', agent, 'never.txt')), false);
    assert.equal(existsSync(join(dir, 'workspaces', agent, 'later.txt')), false);
    const first2 = await client.callTool({ name: 'get_run', arguments: { run } });
    assert.equal((first2.structuredContent as { run: { state: string } }).run.state, 'completed');
  });

  it('a token without task:run is refused run_agent by the host (403 insufficient_scope over HTTP)', async () => {
    await open({ turns: [{ text: 'unused' }] });
    const agent = await spawnAgent(await mint(USER));
    const viewer = await connect(await mint(['state:read']));
    await assert.rejects(viewer.callTool({ name: 'run_agent', arguments: { agent, input: 'x' } }), /403|insufficient_scope|CapabilityDenied/);
  });
});
