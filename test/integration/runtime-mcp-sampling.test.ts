/**
 * `mcp-sampling` runs on a real `toka serve`: an agent whose spec sets `llm.provider: mcp-sampling`, run with
 * `run_agent` by the MCP SDK's Client over Streamable HTTP, asks that client's model through
 * `sampling/createMessage` for every turn (here a handler that plays the model through a tool-use
 * conversation). A client without the sampling capability, or a request from another face, is refused with a
 * typed error and no run; a run whose session closes mid-run fails with a typed reason; the run replays.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, type CreateMessageRequest, type CreateMessageResult } from '@modelcontextprotocol/sdk/types.js';
import { ResponseError } from 'vscode-jsonrpc';
import type { RunRecord } from '../../protocol/runtime.js';
import { AgentRunRequest, AgentSpawnRequest, KernelSubmitRequest, TaskGetRequest } from '../../protocol/rpc/index.js';
import { toka } from '../helpers/cli.js';
import { cliMint, connectWs, spawnServe, type ServeProcess, type TokaWsClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

const SPEC = `metadata:
  name: client-model-agent
  version: v0.1.0
  created: "2026-11-20"
  workstream: Sampling Tests
spec:
  name: Client Model Agent
  domain: testing
  priority: medium
capabilities:
  primary: [write-notes]
objectives:
  - description: Write what it is asked into the workspace
    deliverable: a file in the workspace
    validation: The file holds the text
tasks:
  default:
    - description: Write a note
      priority: low
llm:
  provider: mcp-sampling
security:
  capabilities_required: [filesystem-read, filesystem-write]
`;

type Params = CreateMessageRequest['params'];
type Handler = (params: Params) => Promise<CreateMessageResult | Record<string, unknown>>;

describe('mcp-sampling runs requested over MCP (toka serve, SDK client over Streamable HTTP)', function () {
  this.timeout(60_000);
  let serve: ServeProcess;
  let token: string;
  let ws: TokaWsClient;
  let agent: string;
  const clients: Client[] = [];

  const connect = async (sampling: { tools: boolean } | null, handler?: Handler) => {
    const client = new Client({ name: 'sampling-client', version: '1.0.0' }, { capabilities: sampling ? { sampling: sampling.tools ? { tools: {} } : {} } : {} });
    if (handler) client.setRequestHandler(CreateMessageRequestSchema, async (req) => (await handler(req.params)) as never);
    const transport = new StreamableHTTPClientTransport(new URL(`${serve.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  };

  const getRun = (id: string): Promise<RunRecord> => ws.request(TaskGetRequest.type, { task: id });

  before(async () => {
    serve = await spawnServe();
    token = await cliMint(serve.dataDir, {
      sub: 'dev',
      vault: 's',
      perm: 'agent:spawn,capability:grant,task:run,task:schedule,task:cancel,state:read,events:read,tool:fs-read,tool:fs-write',
      ttl: '30m',
    });
    ws = await connectWs(serve.wsUrl, token);
    agent = (await ws.request(AgentSpawnRequest.type, { spec: SPEC, uri: 'client-model-agent.agent.yaml' })).agent;
  });

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  });

  after(async () => {
    await ws?.close();
    await serve?.stop();
  });

  it("every turn is asked of the requesting client's model, tools included, and the run replays from the log", async () => {
    const seen: Params[] = [];
    const { client } = await connect({ tools: true }, async (params) => {
      seen.push(params);
      const last = params.messages[params.messages.length - 1];
      const results = Array.isArray(last.content) ? last.content.filter((c) => c.type === 'tool_result') : [];
      if (seen.length === 1) {
        return { role: 'assistant', model: 'client-model', stopReason: 'toolUse', content: [{ type: 'tool_use', id: 'tu_1', name: 'fs_write', input: { path: 'note.md', content: 'from the client model' } }] };
      }
      if (seen.length === 2) {
        assert.deepEqual(results.map((r) => [r.type === 'tool_result' && r.toolUseId, r.type === 'tool_result' && r.isError]), [['tu_1', false]]);
        return { role: 'assistant', model: 'client-model', stopReason: 'toolUse', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'tu_2', name: 'fs_read', input: { path: 'note.md' } }] };
      }
      const text = results.map((r) => (r.type === 'tool_result' ? JSON.stringify(r.content) : '')).join('');
      assert.match(text, /from the client model/);
      return { role: 'assistant', model: 'client-model', stopReason: 'endTurn', content: { type: 'text', text: 'The note is written.' } };
    });
    const result = await client.callTool({ name: 'run_agent', arguments: { agent, input: 'write a note' } });
    assert.ok(!result.isError, JSON.stringify(result));
    const { runs } = result.structuredContent as { runs: RunRecord[] };
    assert.equal(runs[0].state, 'completed', JSON.stringify(runs[0].reason));
    assert.equal(runs[0].text, 'The note is written.');
    assert.equal(seen.length, 3);
    assert.ok(seen[0].tools?.some((t) => t.name === 'fs_write'), 'the tools are offered to a client that declared sampling.tools');
    assert.deepEqual(seen[0].messages[0], { role: 'user', content: { type: 'text', text: 'write a note' } });
    assert.equal(readFileSync(join(serve.dataDir, 'workspaces', agent, 'note.md'), 'utf8'), 'from the client model');

    const replay = await toka(['replay', '--data', serve.dataDir, '--task', runs[0].id, '--json'], { timeoutMs: 30_000 });
    assert.equal(replay.code, 0, replay.stdout + replay.stderr);
    const report = JSON.parse(replay.stdout) as { identical: boolean; compared: number };
    assert.equal(report.identical, true);
    assert.ok(report.compared >= 7, replay.stdout);
  });

  it('a client that did not declare sampling is refused with a typed error, and no run is made', async () => {
    const before = await listRuns();
    const { client } = await connect(null);
    const result = await client.callTool({ name: 'run_agent', arguments: { agent, input: 'write a note' } });
    assert.equal(result.isError, true);
    const [text, details] = result.content as { text: string }[];
    assert.match(text.text, /^InvalidOperation: .*did not declare the sampling capability/);
    assert.equal((JSON.parse(details.text) as { error: { reason: string } }).error.reason, 'SamplingUnavailable');
    assert.deepEqual(await listRuns(), before);
  });

  it('a run requested from another face is refused (toka/agents/run), or fails typed when submitted bare', async () => {
    const err = await ws.request(AgentRunRequest.type, { agent, input: 'write a note' }).catch((e: unknown) => e);
    assert.ok(err instanceof ResponseError);
    assert.equal((err.data as { name: string; reason: string }).name, 'InvalidOperation');
    assert.equal((err.data as { reason: string }).reason, 'SamplingUnavailable');
    // A SubmitRun straight into the kernel reaches the runtime with no MCP client behind it.
    const submitted = await ws.request(KernelSubmitRequest.type, { op: { type: 'SubmitRun', agent, input: 'bare' } });
    const id = (submitted.records.at(-1)!.event as unknown as { run: RunRecord }).run.id;
    const run = await waitFor(async () => {
      const task = await getRun(id);
      return task.state === 'failed' ? task : undefined;
    }, 20_000, 'the bare run to fail');
    assert.equal(run.reason?.code, 'LlmError');
    assert.match(run.reason!.message, /^SamplingUnavailable: mcp-sampling: the run was not requested from an MCP client session/);
  });

  it('a session that closes while its model is being asked fails the run with a typed reason', async () => {
    let asked = 0;
    let conn: { client: Client; transport: StreamableHTTPClientTransport } | undefined;
    let toolAnswered!: () => void;
    const answered = new Promise<void>((resolve) => (toolAnswered = resolve));
    conn = await connect({ tools: false }, async () => {
      asked++;
      // The user walks away once run_agent has answered (the run may ask the model before that): the session
      // ends (DELETE), this request is never answered.
      void answered.then(() => conn!.transport.terminateSession()).then(() => conn!.client.close());
      return new Promise(() => undefined);
    });
    const result = await conn.client.callTool({ name: 'run_agent', arguments: { agent, input: 'write a note', wait: false } });
    toolAnswered();
    assert.ok(!result.isError, JSON.stringify(result));
    const id = (result.structuredContent as { runs: RunRecord[] }).runs[0].id;
    const run = await waitFor(async () => {
      const task = await getRun(id);
      return task.state === 'failed' ? task : undefined;
    }, 20_000, 'the run to fail once its session closed');
    assert.equal(asked, 1);
    assert.equal(run.reason?.code, 'LlmError');
    assert.match(run.reason!.message, /^SamplingUnavailable: mcp-sampling: the MCP session that requested the run has closed/);
  });

  async function listRuns(): Promise<string[]> {
    const { client } = await connect(null);
    const out = await client.callTool({ name: 'list_runs', arguments: { agent } });
    return (out.structuredContent as { runs: RunRecord[] }).runs.map((r) => r.id);
  }
});
