/**
 * The A2A face against the reference SDK's own client (JSON-RPC transport) over real sockets: an in-process
 * host and agent runtime (scripted LLM provider, real SQLite, real tools) behind the real HTTP server.
 * Card, send, stream, get, list, cancel, input-required round trip, resume after a disconnect, a restart,
 * and bad input at the door.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Role, TaskState, type StreamResponse } from '@a2a-js/sdk';
import WebSocket from 'ws';
import { toka } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { A2A_USER, a2aSpec, asTask, authFetch, readSse, sendRequest, streamSummary, textOf } from '../helpers/a2a.js';
import { Client, ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory } from '@a2a-js/sdk/client';
import { mountA2a, type A2aMount } from '../../server/adapters/a2a/http.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { parseTranscript, scriptedProvider, type ScriptedTranscript } from '../../server/runtime/llm/index.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { builtinTools, ToolRegistry } from '../../server/runtime/tools/index.js';

const quiet = createLogger({ level: 'silent' });

/** What each agent (by spec name) answers. */
const TRANSCRIPTS: Record<string, ScriptedTranscript> = {
  echo: { turns: [{ text: 'hello from echo' }] },
  asker: { turns: [{ toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo ok' } }] }, { text: 'shell ran' }] },
  slow: { turns: [{ delayMs: 30_000, text: 'too late' }] },
  stepper: {
    turns: [
      { text: 'step one', delayMs: 400, toolCalls: [{ id: 'l1', name: 'fs_list', arguments: { path: '.' } }] },
      { text: 'step two', delayMs: 400, toolCalls: [{ id: 'l2', name: 'fs_list', arguments: { path: '.' } }] },
      { text: 'all done', delayMs: 400 },
    ],
  },
};

interface World {
  host: Host;
  runtime: AgentRuntime;
  http: HttpServer;
  a2a: A2aMount;
  close(): Promise<void>;
}

async function open(dir: string, publish: string[]): Promise<World> {
  const host = await Host.open({ dataDir: join(dir, 'data'), logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
  const tools = new ToolRegistry();
  for (const tool of builtinTools()) tools.register(tool);
  const providers = new Map(Object.entries(TRANSCRIPTS).map(([name, t]) => [name, scriptedProvider(parseTranscript(t))]));
  const runtime = await AgentRuntime.start({
    host,
    provider: (agent) => providers.get(agent?.specName ?? '') ?? providers.get('echo')!,
    tools,
    workspaceRoot: join(dir, 'workspaces'),
    logger: quiet,
  });
  const http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: quiet, runtime });
  const a2a = mountA2a(http, host, { runtime, logger: quiet, config: { publish: { vault: 'v', agents: publish } } });
  return {
    host,
    runtime,
    http,
    a2a,
    async close() {
      await http.close();
      await runtime.close();
      await host.close();
    },
  };
}

async function sdkClient(url: string, token: string): Promise<Client> {
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch(token) })] }));
  return factory.createFromUrl(url);
}

/** SendMessage params as JSON, for a request sent without the SDK client. */
function sendRequestJson(text: string, skill: string): unknown {
  return { message: { messageId: `m-${Math.random().toString(36).slice(2)}`, role: 'ROLE_USER', parts: [{ text }], metadata: { skill } } };
}

/** JSON-RPC over fetch, for what the SDK client does not send (bad input, Last-Event-ID). */
async function rpc(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${url}/a2a/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text, headers: res.headers };
}

describe('A2A JSON-RPC binding (reference SDK client)', function () {
  this.timeout(60_000);
  let dir: string;
  let w: World;
  let token: string;
  const agents: Record<string, string> = {};

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-a2a-'));
    w = await open(dir, ['echo', 'asker']);
    ({ token } = await w.host.mint(w.host.localSession('v'), { subject: 'peer', permissions: A2A_USER, ttlSeconds: 1800 }));
    const dev = await w.host.authenticate(token);
    for (const name of Object.keys(TRANSCRIPTS)) {
      const analysis = analyzeSpecText(`${name}.agent.yaml`, a2aSpec(name));
      agents[name] = (await w.runtime.spawn(dev, { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document })).agent;
    }
  });
  afterEach(async () => {
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a public card with the published agents only, and the full list on the extended card', async () => {
    const res = await fetch(`${w.http.url}/.well-known/agent-card.json`);
    assert.equal(res.status, 200);
    const card = (await res.json()) as any;
    assert.deepEqual(card.skills.map((s: { id: string }) => s.id).sort(), [agents.echo, agents.asker].sort());
    assert.equal(card.skills.find((s: { id: string }) => s.id === agents.echo).name, 'echo agent');
    assert.deepEqual(
      card.supportedInterfaces.map((i: { protocolBinding: string }) => i.protocolBinding),
      ['JSONRPC', 'HTTP+JSON', 'https://toka.dev/a2a/bindings/websocket/v1'],
    );
    assert.equal(card.securitySchemes.tokaCapability.httpAuthSecurityScheme.scheme, 'Bearer');
    assert.equal(card.capabilities.extendedAgentCard, true);

    const client = await sdkClient(w.http.url, token);
    const extended = await client.getAgentCard();
    assert.deepEqual(extended.skills.map((s) => s.id).sort(), Object.values(agents).sort(), 'the extended card lists every agent of the vault');
  });

  it('sends a message: a run of the addressed agent, completed with its artifact; GetTask and ListTasks read it from the log', async () => {
    const client = await sdkClient(w.http.url, token);
    const task = asTask(await client.sendMessage(sendRequest('say hello', { skill: agents.echo })));
    assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED);
    assert.equal(task.contextId, task.id);
    assert.deepEqual(task.artifacts.map((a) => [a.name, a.parts[0].content?.value]), [['response', 'hello from echo']]);
    assert.deepEqual(textOf(task), ['say hello', 'hello from echo']);
    assert.equal(task.history[0].role, Role.ROLE_USER);

    const run = await w.runtime.getRun(await w.host.authenticate(token), task.id);
    assert.equal(run.agent, agents.echo);
    assert.equal(run.requestedBy, 'peer', 'the run was asked for with the caller\'s own token');

    const got = await client.getTask({ tenant: '', id: task.id, historyLength: 1 });
    assert.equal(got.status?.state, TaskState.TASK_STATE_COMPLETED);
    assert.deepEqual(textOf(got), ['hello from echo']);
    const listed = await client.listTasks({ tenant: '', contextId: '', status: TaskState.TASK_STATE_COMPLETED, pageToken: '', statusTimestampAfter: undefined, includeArtifacts: true });
    assert.deepEqual(listed.tasks.map((t) => t.id), [task.id]);
    assert.equal(listed.tasks[0].artifacts[0].name, 'response');
  });

  it('messages sent at once to one agent each get their own task, with the other runs\' records (tool calls and results included) interleaved in the log', async () => {
    const client = await sdkClient(w.http.url, token);
    const tasks = (await Promise.all(['a', 'b', 'c'].map((t) => client.sendMessage(sendRequest(`go ${t}`, { skill: agents.stepper }))))).map(asTask);
    assert.equal(new Set(tasks.map((t) => t.id)).size, 3);
    for (const [i, task] of tasks.entries()) {
      assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED);
      assert.deepEqual(textOf(task), [`go ${'abc'[i]}`, 'step one', 'step two', 'all done']);
      assert.deepEqual(task.artifacts.map((a) => a.parts[0].content?.value), ['all done']);
      const got = await client.getTask({ tenant: '', id: task.id, historyLength: 10 });
      assert.deepEqual(textOf(got), textOf(task));
    }
  });

  it('a blocking SendMessage whose caller hangs up stops following its task; an answered one leaves nothing open', async () => {
    const client = await sdkClient(w.http.url, token);
    asTask(await client.sendMessage(sendRequest('say hello', { skill: agents.echo })));
    assert.equal(w.a2a.following, 0, 'an answered SendMessage stops following its task');

    const hangUp = new AbortController();
    const pending = fetch(`${w.http.url}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: sendRequestJson('think', agents.slow) }),
      signal: hangUp.signal,
    });
    await waitFor(() => w.a2a.following === 1 || null, 10_000, 'the blocking SendMessage to follow its task');
    hangUp.abort();
    await assert.rejects(pending);
    await waitFor(() => w.a2a.following === 0 || null, 10_000, 'the cut-off SendMessage to stop following its task');
  });

  it('streams a task: the submitted task first, then status and artifact updates in order, ending completed', async () => {
    const client = await sdkClient(w.http.url, token);
    const events: StreamResponse[] = [];
    for await (const e of client.sendMessageStream(sendRequest('go', { skill: agents.stepper }))) events.push(e);
    const { kinds, said } = streamSummary(events);
    assert.equal(kinds[0], 'task');
    assert.deepEqual(kinds.slice(-2), ['artifactUpdate', 'status:TASK_STATE_COMPLETED']);
    assert.deepEqual(said, ['step one', 'step two', 'all done']);
  });

  it('input-required is the pending approval; a follow-up message on the task answers it', async () => {
    const client = await sdkClient(w.http.url, token);
    const asked = asTask(await client.sendMessage(sendRequest('use the shell', { skill: agents.asker })));
    assert.equal(asked.status?.state, TaskState.TASK_STATE_INPUT_REQUIRED);
    const question = asked.status?.message?.parts.find((p) => p.content?.$case === 'data')?.content?.value;
    assert.equal(question.tool, 'shell');
    assert.equal(question.permission, 'tool:shell');

    await assert.rejects(client.sendMessage(sendRequest('maybe', { taskId: asked.id })), /approve.*deny/);
    const done = asTask(await client.sendMessage(sendRequest('', { taskId: asked.id, data: { decision: 'approve', note: 'go ahead' } })));
    assert.equal(done.status?.state, TaskState.TASK_STATE_COMPLETED);
    assert.equal(done.artifacts[0].parts[0].content?.value, 'shell ran');
    await assert.rejects(client.sendMessage(sendRequest('approve', { taskId: asked.id })), /completed: it takes no more messages/);
  });

  it('cancels a working task; cancelling it again is TaskNotCancelable; an unknown task is TaskNotFound', async () => {
    const client = await sdkClient(w.http.url, token);
    const started = asTask(await client.sendMessage(sendRequest('think', { skill: agents.slow, returnImmediately: true })));
    assert.equal(started.status?.state, TaskState.TASK_STATE_SUBMITTED);
    const cancelled = await client.cancelTask({ tenant: '', id: started.id, metadata: undefined });
    assert.equal(cancelled.status?.state, TaskState.TASK_STATE_CANCELED);
    const again = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'CancelTask', params: { id: started.id } }, { authorization: `Bearer ${token}` });
    assert.equal(again.body.error.code, -32002);
    const unknown = await rpc(w.http.url, { jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: 'run-nope' } }, { authorization: `Bearer ${token}` });
    assert.equal(unknown.body.error.code, -32001);
  });

  it('SubscribeToTask resumes after a disconnect with Last-Event-ID: every later update once, in order', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const client = await sdkClient(w.http.url, token);
    const started = asTask(await client.sendMessage(sendRequest('go', { skill: agents.stepper, returnImmediately: true })));
    const subscribe = (headers: Record<string, string>) =>
      fetch(`${w.http.url}/a2a/jsonrpc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...auth, ...headers },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'sub', method: 'SubscribeToTask', params: { id: started.id } }),
      });
    // First connection: the snapshot, then read until the first "step" message, then drop it.
    const first = await readSse(await subscribe({}), (events) => events.some((e) => JSON.stringify(e.data).includes('step one')));
    assert.ok(first[0].data.result.task, 'a subscription starts with the task');
    const lastId = first[first.length - 1].id!;
    // Second connection, resuming: only what came after, ending at completion.
    const rest = await readSse(await subscribe({ 'last-event-id': lastId }));
    const ids = [...first, ...rest].map((e) => e.id!);
    assert.equal(new Set(ids).size, ids.length, 'no update twice');
    const num = (id: string) => id.split('.').map(Number);
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [num(ids[i - 1]), num(ids[i])];
      assert.ok(a[0] < b[0] || (a[0] === b[0] && (a[1] ?? 0) < (b[1] ?? 0)), `ids in order: ${ids.join(',')}`);
    }
    assert.equal(rest[rest.length - 1].data.result.statusUpdate.status.state, 'TASK_STATE_COMPLETED');
    const said = [...first, ...rest].flatMap((e) => e.data.result.statusUpdate?.status.message?.parts.map((p: { text?: string }) => p.text) ?? []);
    assert.deepEqual(said, ['step one', 'step two', 'all done']);
    // From the start of the log: every update of the task, the resumed ones as the tail.
    const replay = await readSse(await subscribe({ 'last-event-id': '0' }));
    assert.ok(replay[0].data.result.task, 'the first update of a task is the task as submitted');
    assert.deepEqual(replay.slice(-rest.length).map((e) => e.id), rest.map((e) => e.id));
  });

  it('ends a task stream once the token that opened it is revoked', async () => {
    const { token: short } = await w.host.mint(w.host.localSession('v'), { subject: 'peer2', permissions: A2A_USER, ttlSeconds: 1800 });
    const client = await sdkClient(w.http.url, short);
    const started = asTask(await client.sendMessage(sendRequest('go', { skill: agents.stepper, returnImmediately: true })));
    const res = await fetch(`${w.http.url}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${short}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'sub', method: 'SubscribeToTask', params: { id: started.id } }),
    });
    let revoked = false;
    const events = await readSse(res, (seen) => {
      if (!revoked && seen.length > 0) {
        revoked = true;
        void w.host.revoke(w.host.localSession('v'), { token: short });
      }
      return false;
    });
    assert.ok(revoked);
    const last = events[events.length - 1].data;
    assert.ok(last.error, `the stream ends with an error, not the task's end: ${JSON.stringify(last)}`);
    assert.ok(!events.some((e) => JSON.stringify(e.data).includes('TASK_STATE_COMPLETED')), 'no update after the revocation');
  });

  it('keeps tasks across a host restart: GetTask and ListTasks read them back from the log', async () => {
    const client = await sdkClient(w.http.url, token);
    const task = asTask(await client.sendMessage(sendRequest('say hello', { skill: agents.echo })));
    await w.close();
    w = await open(dir, ['echo']);
    const again = await sdkClient(w.http.url, token);
    const got = await again.getTask({ tenant: '', id: task.id, historyLength: undefined });
    assert.deepEqual(got, task);
  });

  it('refuses bad input with the right error and stays up', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const none = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } });
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const forged = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }, { authorization: 'Bearer abc.def.ghi' });
    assert.equal(forged.status, 401);
    const version = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }, { ...auth, 'a2a-version': '0.3' });
    assert.equal(version.body.error.code, -32009);
    const malformed = await rpc(w.http.url, '{"jsonrpc": "2.0", "id": 1, "method": ', auth);
    assert.equal(malformed.body.error.code, -32700);
    const method = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'NoSuchMethod', params: {} }, auth);
    assert.equal(method.body.error.code, -32601);
    const push = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'CreateTaskPushNotificationConfig', params: { taskId: 'x', url: 'http://127.0.0.1:1/' } }, auth);
    assert.equal(push.body.error.code, -32003);
    const file = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: 'f', role: 'ROLE_USER', parts: [{ url: 'http://x/y.png' }], metadata: { skill: agents.echo } } } }, auth);
    assert.equal(file.body.error.code, -32005);
    const bigPart = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: 'b', role: 'ROLE_USER', parts: [{ text: 'x'.repeat(70_000) }], metadata: { skill: agents.echo } } } }, auth);
    assert.equal(bigPart.body.error.code, -32602);
    assert.match(bigPart.body.error.message, /a2a\.maxPartBytes/);
    const huge = await rpc(w.http.url, { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { pad: 'x'.repeat(1_100_000) } }, auth);
    assert.equal(huge.status, 413);

    const { token: viewer } = await w.host.mint(w.host.localSession('v'), { subject: 'viewer', permissions: ['state:read'] });
    const denied = await rpc(w.http.url, { jsonrpc: '2.0', id: 7, method: 'SendMessage', params: { message: { messageId: 'd', role: 'ROLE_USER', parts: [{ text: 'hi' }], metadata: { skill: agents.echo } } } }, { authorization: `Bearer ${viewer}` });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.data.name, 'CapabilityDenied');

    const { token: other } = await w.host.mint(w.host.localSession('w'), { subject: 'stranger', permissions: A2A_USER });
    const client = await sdkClient(w.http.url, token);
    const mine = asTask(await client.sendMessage(sendRequest('say hello', { skill: agents.echo })));
    const foreign = await rpc(w.http.url, { jsonrpc: '2.0', id: 8, method: 'GetTask', params: { id: mine.id } }, { authorization: `Bearer ${other}` });
    assert.equal(foreign.body.error.code, -32001, 'a task of another vault does not exist for the caller');

    await w.host.revoke(w.host.localSession('v'), { token, reason: 'test' });
    const revoked = await rpc(w.http.url, { jsonrpc: '2.0', id: 9, method: 'GetTask', params: { id: mine.id } }, auth);
    assert.equal(revoked.status, 401);
    assert.equal((await fetch(`${w.http.url}/healthz`)).status, 200, 'the host is still up');
  });

  it('WebSocket binding: updates as StreamUpdate notifications with event ids, resume with lastEventId, auth at the upgrade', async () => {
    const wsUrl = `${w.http.url.replace(/^http/, 'ws')}/a2a/ws`;
    const refused = new WebSocket(wsUrl, { headers: { 'a2a-version': '1.0' } });
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 401);

    const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}`, 'a2a-version': '1.0' } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const frames: any[] = [];
    const waiters: (() => void)[] = [];
    ws.on('message', (data) => {
      frames.push(JSON.parse(String(data)));
      waiters.splice(0).forEach((w) => w());
    });
    const until = async (pred: () => boolean) => {
      while (!pred()) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'a', method: 'SendStreamingMessage', params: { message: { messageId: 'w1', role: 'ROLE_USER', parts: [{ text: 'go' }], metadata: { skill: agents.stepper } } } }));
    await until(() => frames.some((f) => f.id === 'a'));
    const updates = frames.filter((f) => f.method === 'StreamUpdate' && f.params.id === 'a');
    assert.ok(updates[0].params.result.task, 'the stream starts with the task');
    assert.equal(updates[updates.length - 1].params.result.statusUpdate.status.state, 'TASK_STATE_COMPLETED');
    const end = frames.find((f) => f.id === 'a');
    assert.equal(end.result.lastEventId, updates[updates.length - 1].params.eventId);
    const taskId = updates[0].params.result.task.id;

    // Resume from the third update: exactly the ones after it.
    const from = updates[2].params.eventId;
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'b', method: 'SubscribeToTask', params: { id: taskId, lastEventId: from } }));
    await until(() => frames.some((f) => f.id === 'b'));
    const resumed = frames.filter((f) => f.method === 'StreamUpdate' && f.params.id === 'b').map((f) => f.params.eventId);
    assert.deepEqual(resumed, updates.slice(3).map((f) => f.params.eventId));

    ws.send('not json');
    await until(() => frames.some((f) => f.error?.code === -32700));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'c', method: 'GetTask', params: { id: 'run-nope' } }));
    await until(() => frames.some((f) => f.id === 'c'));
    assert.equal(frames.find((f) => f.id === 'c').error.code, -32001);
    ws.close();
  });

  it('toka a2a card and send call a remote agent with the SDK client', async () => {
    const card = await toka(['a2a', 'card', w.http.url]);
    assert.equal(card.code, 0, card.stderr);
    assert.equal(JSON.parse(card.stdout).skills.length, 2);
    const sent = await toka(['a2a', 'send', w.http.url, 'say hello', '--skill', agents.echo], { env: { TOKA_TOKEN: token } });
    assert.equal(sent.code, 0, sent.stderr);
    const task = JSON.parse(sent.stdout);
    assert.equal(task.status.state, 'TASK_STATE_COMPLETED');
    assert.equal(task.artifacts[0].parts[0].text, 'hello from echo');
    const streamed = await toka(['a2a', 'send', w.http.url, 'say hello', '--skill', agents.echo, '--stream'], { env: { TOKA_TOKEN: token } });
    assert.equal(streamed.code, 0, streamed.stderr);
    const lines = streamed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines[0].task);
    assert.equal(lines[lines.length - 1].statusUpdate.status.state, 'TASK_STATE_COMPLETED');
    const bad = await toka(['a2a', 'send', 'ftp://x', 'hi'], { env: { TOKA_TOKEN: token } });
    assert.equal(bad.code, 2);
  });
});
