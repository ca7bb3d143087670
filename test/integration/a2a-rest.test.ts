/**
 * The A2A HTTP+JSON (REST) binding against the reference SDK's own client (its REST transport), served by a
 * real `toka serve` child process whose agents think with a local server speaking Ollama's `/api/chat` wire
 * format (the one true external boundary). Card, send, stream, get, list, cancel, input-required round trip,
 * resume after a disconnect, and bad input at the door: each refusal with its HTTP status and the spec's
 * `google.rpc.Status` error body, the host healthy afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Role, TaskState, type StreamResponse } from '@a2a-js/sdk';
import { Client, ClientFactory, ClientFactoryOptions, RestTransportFactory } from '@a2a-js/sdk/client';
import { AgentSpawnRequest } from '../../protocol/rpc/runtime.js';
import { toka } from '../helpers/cli.js';
import { A2A_USER, a2aSpec, asTask, authFetch, readSse, sendRequest, streamSummary, textOf } from '../helpers/a2a.js';
import { cliMint, connectWs, spawnServe, type ServeProcess } from '../helpers/ws-client.js';

/** One model turn: text, tool calls, and how long the model "thinks" first. */
interface Turn {
  text: string;
  tools?: { name: string; arguments: Record<string, unknown> }[];
  delayMs?: number;
}

/** What the model answers, by the marker the task text starts with; turn n answers a conversation with n-1 replies. */
const SCRIPTS: Record<string, Turn[]> = {
  '[echo]': [{ text: 'hello from echo' }],
  '[ask]': [{ text: '', tools: [{ name: 'shell', arguments: { command: 'echo ok' } }] }, { text: 'shell ran' }],
  '[slow]': [{ text: 'too late', delayMs: 60_000 }],
  '[steps]': [
    { text: 'step one', tools: [{ name: 'fs_list', arguments: { path: '.' } }], delayMs: 400 },
    { text: 'step two', tools: [{ name: 'fs_list', arguments: { path: '.' } }], delayMs: 400 },
    { text: 'all done', delayMs: 400 },
  ],
  '[pause]': [{ text: 'first', tools: [{ name: 'fs_list', arguments: { path: '.' } }] }, { text: 'second', delayMs: 5000 }],
};

/** A local server speaking Ollama's `/api/chat` (JSON or NDJSON), answering by script. */
async function startModel(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean; messages: { role: string; content: string }[] };
      const task = body.messages.find((m) => m.role === 'user')?.content ?? '';
      const script = Object.entries(SCRIPTS).find(([marker]) => task.includes(marker))?.[1];
      const turn = script?.[body.messages.filter((m) => m.role === 'assistant').length];
      if (!turn) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no scripted turn for ${JSON.stringify(task.slice(0, 80))}` }));
        return;
      }
      const reply = {
        model: 'fake',
        created_at: '2026-01-01T00:00:00Z',
        message: { role: 'assistant', content: turn.text, ...(turn.tools ? { tool_calls: turn.tools.map((t) => ({ function: t })) } : {}) },
        done: true,
        done_reason: 'stop',
        prompt_eval_count: 10,
        eval_count: 5,
      };
      const timer = setTimeout(() => {
        if (body.stream) res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(`${JSON.stringify(reply)}\n`);
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
      }, turn.delayMs ?? 0);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function restClient(url: string, token: string): Promise<Client> {
  const factory = new ClientFactory({ ...ClientFactoryOptions.default, transports: [new RestTransportFactory({ fetchImpl: authFetch(token) })] });
  return factory.createFromUrl(url);
}

async function rest(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${base}/a2a/rest${path}`, {
    method,
    headers: {
      'a2a-version': '1.0',
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text, headers: res.headers };
}

/** The A2A error reason of a REST error body (its ErrorInfo), and that the body has the spec's shape. */
function reasonOf(body: any, status: number): string {
  assert.equal(body.error.code, status, JSON.stringify(body));
  assert.equal(typeof body.error.message, 'string');
  const info = body.error.details.find((d: { '@type': string }) => d['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo');
  assert.ok(info, `an ErrorInfo detail: ${JSON.stringify(body)}`);
  return `${info.domain}/${info.reason}`;
}

/** Read SSE events (`event`, `id`, parsed `data`) until `stop` says so or the stream ends. */
describe('A2A HTTP+JSON binding (reference SDK REST client against toka serve)', function () {
  this.timeout(90_000);
  let model: Awaited<ReturnType<typeof startModel>>;
  let serve: ServeProcess;
  let token: string;
  const agents: Record<string, string> = {};

  before(async () => {
    model = await startModel();
    const dataDir = mkdtempSync(join(tmpdir(), 'toka-a2a-rest-'));
    writeFileSync(join(dataDir, 'a2a.json'), JSON.stringify({ publish: { vault: 'v', agents: ['echo', 'asker'] } }));
    serve = await spawnServe({ dataDir, env: { LLM_PROVIDER: 'local', LOCAL_LLM_ENDPOINT: model.url, LLM_MODEL: 'fake' } });
    token = await cliMint(serve.dataDir, { sub: 'peer', vault: 'v', perm: A2A_USER.join(','), ttl: '30m' });
    const ws = await connectWs(serve.wsUrl, token);
    for (const name of ['echo', 'asker', 'slow', 'stepper']) {
      agents[name] = (await ws.request(AgentSpawnRequest.type, { spec: a2aSpec(name), uri: `${name}.agent.yaml` })).agent;
    }
    await ws.close();
  });
  after(async () => {
    await serve?.stop();
    await model?.close();
  });

  it('advertises HTTP+JSON under /a2a/rest on the card; the REST client reads the extended card', async () => {
    const card = (await (await fetch(`${serve.url}/.well-known/agent-card.json`)).json()) as any;
    const iface = card.supportedInterfaces.find((i: { protocolBinding: string }) => i.protocolBinding === 'HTTP+JSON');
    assert.deepEqual(iface, { url: `${serve.url}/a2a/rest`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' });
    assert.deepEqual(card.skills.map((s: { id: string }) => s.id).sort(), [agents.echo, agents.asker].sort());

    const client = await restClient(serve.url, token);
    const extended = await client.getAgentCard();
    assert.deepEqual(extended.skills.map((s) => s.id).sort(), Object.values(agents).sort(), 'the extended card lists every agent of the vault');
    const raw = await rest(serve.url, 'GET', '/extendedAgentCard', { token });
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type') ?? '', /^application\/a2a\+json/);
  });

  it('sends a message: the task completes with its artifact; GET /tasks/{id} and GET /tasks read it back', async () => {
    const client = await restClient(serve.url, token);
    const task = asTask(await client.sendMessage(sendRequest('[echo] say hello', { skill: agents.echo })));
    assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED);
    assert.deepEqual(task.artifacts.map((a) => [a.name, a.parts[0].content?.value]), [['response', 'hello from echo']]);
    assert.deepEqual(textOf(task), ['[echo] say hello', 'hello from echo']);
    assert.equal(task.history[0].role, Role.ROLE_USER);

    const got = await client.getTask({ tenant: '', id: task.id, historyLength: 1 });
    assert.equal(got.status?.state, TaskState.TASK_STATE_COMPLETED);
    assert.deepEqual(textOf(got), ['hello from echo'], 'historyLength keeps the newest message');
    const listed = await client.listTasks({ tenant: '', contextId: '', status: TaskState.TASK_STATE_COMPLETED, pageSize: 100, pageToken: '', statusTimestampAfter: undefined, includeArtifacts: true });
    assert.ok(listed.tasks.some((t) => t.id === task.id && t.artifacts[0]?.name === 'response'));
    assert.ok(listed.tasks.every((t) => t.status?.state === TaskState.TASK_STATE_COMPLETED), 'the status filter applies');
    const working = await rest(serve.url, 'GET', '/tasks?status=working&pageSize=5', { token });
    assert.equal(working.status, 200);
    assert.ok(!working.body.tasks.some((t: { id: string }) => t.id === task.id));

    // Pages: pageSize=1 then its nextPageToken walk the same listing (newest first).
    const second = asTask(await client.sendMessage(sendRequest('[echo] again', { skill: agents.echo })));
    const page1 = await rest(serve.url, 'GET', '/tasks?pageSize=1', { token });
    assert.deepEqual(page1.body.tasks.map((t: { id: string }) => t.id), [second.id]);
    assert.ok(page1.body.totalSize >= 2);
    const page2 = await rest(serve.url, 'GET', `/tasks?pageSize=1&pageToken=${encodeURIComponent(page1.body.nextPageToken)}`, { token });
    assert.deepEqual(page2.body.tasks.map((t: { id: string }) => t.id), [task.id]);

    // One mechanism: the JSON-RPC binding reads the same task, byte for byte.
    const viaRest = await rest(serve.url, 'GET', `/tasks/${encodeURIComponent(task.id)}?historyLength=1`, { token });
    const viaRpc = await fetch(`${serve.url}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: task.id, historyLength: 1 } }),
    });
    assert.deepEqual(((await viaRpc.json()) as { result: unknown }).result, viaRest.body);
  });

  it('streams a task (POST /message:stream): the submitted task first, then updates in order, ending completed', async () => {
    const client = await restClient(serve.url, token);
    const events: StreamResponse[] = [];
    for await (const e of client.sendMessageStream(sendRequest('[steps] go', { skill: agents.stepper }))) events.push(e);
    const { kinds, said } = streamSummary(events);
    assert.equal(kinds[0], 'task');
    assert.deepEqual(kinds.slice(-2), ['artifactUpdate', 'status:TASK_STATE_COMPLETED']);
    assert.deepEqual(said, ['step one', 'step two', 'all done']);
  });

  it('input-required is the pending approval; a follow-up message on the task answers it', async () => {
    const client = await restClient(serve.url, token);
    const asked = asTask(await client.sendMessage(sendRequest('[ask] use the shell', { skill: agents.asker })));
    assert.equal(asked.status?.state, TaskState.TASK_STATE_INPUT_REQUIRED);
    const question = asked.status?.message?.parts.find((p) => p.content?.$case === 'data')?.content?.value;
    assert.equal(question.tool, 'shell');

    await assert.rejects(client.sendMessage(sendRequest('maybe', { taskId: asked.id })), (err: any) => err.statusCode === 400 && /approve.*deny/.test(err.message));
    const done = asTask(await client.sendMessage(sendRequest('', { taskId: asked.id, data: { decision: 'approve', note: 'go ahead' } })));
    assert.equal(done.status?.state, TaskState.TASK_STATE_COMPLETED);
    assert.equal(done.artifacts[0].parts[0].content?.value, 'shell ran');
    await assert.rejects(client.sendMessage(sendRequest('approve', { taskId: asked.id })), (err: any) => err.name === 'UnsupportedOperationError' && err.statusCode === 400);
  });

  it('cancels a working task (POST /tasks/{id}:cancel); again is TaskNotCancelable; an unknown task is TaskNotFound', async () => {
    const client = await restClient(serve.url, token);
    const started = asTask(await client.sendMessage(sendRequest('[slow] think', { skill: agents.slow, returnImmediately: true })));
    assert.equal(started.status?.state, TaskState.TASK_STATE_SUBMITTED);
    const cancelled = await client.cancelTask({ tenant: '', id: started.id, metadata: undefined });
    assert.equal(cancelled.status?.state, TaskState.TASK_STATE_CANCELED);
    await assert.rejects(client.cancelTask({ tenant: '', id: started.id, metadata: undefined }), (err: any) => err.name === 'TaskNotCancelableError' && err.statusCode === 400);
    await assert.rejects(client.getTask({ tenant: '', id: 'run-nope', historyLength: undefined }), (err: any) => err.name === 'TaskNotFoundError' && err.statusCode === 404);
  });

  it('resubscribes after a disconnect: Last-Event-ID gives every later update once, in order (SDK client on the second leg)', async () => {
    const client = await restClient(serve.url, token);
    const started = asTask(await client.sendMessage(sendRequest('[steps] go', { skill: agents.stepper, returnImmediately: true })));
    // First leg, raw: the snapshot, then updates until "step one"; then the connection is dropped.
    const res = await fetch(`${serve.url}/a2a/rest/tasks/${encodeURIComponent(started.id)}:subscribe`, {
      method: 'POST',
      headers: { 'a2a-version': '1.0', authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const first = await readSse(res, (events) => events.some((e) => JSON.stringify(e.data).includes('step one')));
    assert.ok(first[0].data.task, 'a subscription starts with the task');
    assert.ok(first.every((e) => e.id !== undefined), 'every event carries its log position');
    const lastId = first[first.length - 1].id!;
    // Second leg, the SDK's REST client with Last-Event-ID: only what came after, ending at completion.
    const rest2: StreamResponse[] = [];
    for await (const e of client.resubscribeTask({ tenant: '', id: started.id }, { serviceParameters: { 'Last-Event-ID': lastId } })) rest2.push(e);
    assert.notEqual(rest2[0].payload?.$case, 'task', 'a resumed stream has no leading snapshot');
    const last = rest2[rest2.length - 1].payload;
    assert.equal(last?.$case === 'statusUpdate' && last.value.status?.state, TaskState.TASK_STATE_COMPLETED);
    const said = [
      ...first.flatMap((e) => e.data.statusUpdate?.status.message?.parts.map((p: { text?: string }) => p.text) ?? []),
      ...rest2.flatMap((e) => (e.payload?.$case === 'statusUpdate' ? (e.payload.value.status?.message?.parts ?? []).map((p) => p.content?.value) : [])),
    ];
    assert.deepEqual(said, ['step one', 'step two', 'all done'], 'each message once, in order, across the two legs');
    // The same resume, raw: its ids all come after the last one seen, strictly increasing.
    const replay = await readSse(await fetch(`${serve.url}/a2a/rest/tasks/${encodeURIComponent(started.id)}:subscribe`, { headers: { 'a2a-version': '1.0', authorization: `Bearer ${token}`, 'last-event-id': lastId } }));
    assert.equal(replay.length, rest2.length);
    const num = (id: string) => id.split('.').map(Number);
    const ids = [lastId, ...replay.map((e) => e.id!)];
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [num(ids[i - 1]), num(ids[i])];
      assert.ok(a[0] < b[0] || (a[0] === b[0] && (a[1] ?? 0) < (b[1] ?? 0)), `ids in order: ${ids.join(',')}`);
    }
    // Without Last-Event-ID a finished task has nothing to subscribe to.
    await assert.rejects(
      (async () => {
        for await (const _ of client.resubscribeTask({ tenant: '', id: started.id })) void _;
      })(),
      (err: any) => err.name === 'UnsupportedOperationError' && err.statusCode === 400,
    );
  });

  it('ends a stream with an `event: error` carrying the error body once its token is revoked; the SDK client throws it', async () => {
    const short = await cliMint(serve.dataDir, { sub: 'short', vault: 'v', perm: A2A_USER.join(',') });
    const client = await restClient(serve.url, short);
    const started = asTask(await client.sendMessage(sendRequest('[pause] go', { skill: agents.stepper, returnImmediately: true })));
    const seen: StreamResponse[] = [];
    let revoking: Promise<unknown> | null = null;
    await assert.rejects(
      (async () => {
        for await (const e of client.resubscribeTask({ tenant: '', id: started.id })) {
          seen.push(e);
          revoking ??= toka(['token', 'revoke', short, '--data', serve.dataDir]);
          await revoking;
        }
      })(),
      (err: any) => {
        assert.match(err.message, /revoked/i);
        return true;
      },
    );
    assert.ok(seen.length >= 1);
    assert.ok(
      !seen.some((e) => e.payload?.$case === 'statusUpdate' && e.payload.value.status?.state === TaskState.TASK_STATE_COMPLETED),
      'no update after the revocation',
    );
  });

  it('refuses bad input with the right status and error body, and stays up', async () => {
    const mine = asTask(await (await restClient(serve.url, token)).sendMessage(sendRequest('[echo] say hello', { skill: agents.echo })));
    const taskPath = `/tasks/${encodeURIComponent(mine.id)}`;

    const none = await rest(serve.url, 'GET', taskPath);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal(reasonOf(none.body, 401), 'toka.dev/UNAUTHENTICATED');
    const forged = await rest(serve.url, 'GET', taskPath, { token: 'abc.def.ghi' });
    assert.equal(forged.status, 401);

    const version = await rest(serve.url, 'GET', taskPath, { token, headers: { 'a2a-version': '0.3' } });
    assert.equal(version.status, 400);
    assert.equal(reasonOf(version.body, 400), 'a2a-protocol.org/VERSION_NOT_SUPPORTED');
    const noVersion = await fetch(`${serve.url}/a2a/rest${taskPath}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(noVersion.status, 400, 'no A2A-Version means 0.3');

    const malformed = await rest(serve.url, 'POST', '/message:send', { token, body: '{"message": ' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.status, 'INVALID_ARGUMENT');
    assert.equal(reasonOf(malformed.body, 400), 'a2a-protocol.org/INVALID_PARAMS');
    const array = await rest(serve.url, 'POST', '/message:send', { token, body: '[]' });
    assert.equal(array.status, 400);
    const textPlain = await rest(serve.url, 'POST', '/message:send', { token, body: '{}', headers: { 'content-type': 'text/plain' } });
    assert.equal(reasonOf(textPlain.body, 400), 'a2a-protocol.org/CONTENT_TYPE_NOT_SUPPORTED');

    const unknown = await rest(serve.url, 'GET', '/tasks/run-nope', { token });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.status, 'NOT_FOUND');
    assert.equal(reasonOf(unknown.body, 404), 'a2a-protocol.org/TASK_NOT_FOUND');
    const finished = await rest(serve.url, 'POST', `${taskPath}:cancel`, { token });
    assert.equal(finished.status, 400);
    assert.equal(reasonOf(finished.body, 400), 'a2a-protocol.org/TASK_NOT_CANCELABLE');

    const badHistory = await rest(serve.url, 'GET', `${taskPath}?historyLength=-1`, { token });
    assert.equal(reasonOf(badHistory.body, 400), 'a2a-protocol.org/INVALID_PARAMS');
    const badQuery = await rest(serve.url, 'GET', '/tasks?colour=red', { token });
    assert.equal(badQuery.status, 400);
    assert.match(badQuery.body.error.message, /unknown query parameter "colour"/);
    const badState = await rest(serve.url, 'GET', '/tasks?status=sleeping', { token });
    assert.equal(badState.status, 400);
    const badPage = await rest(serve.url, 'GET', '/tasks?pageSize=500', { token });
    assert.equal(reasonOf(badPage.body, 400), 'a2a-protocol.org/INVALID_PARAMS');
    const tenant = await rest(serve.url, 'GET', '/tasks?tenant=acme', { token });
    assert.equal(tenant.status, 400);

    const route = await rest(serve.url, 'GET', '/nothing/here', { token });
    assert.equal(route.status, 404);
    const verb = await rest(serve.url, 'DELETE', taskPath, { token });
    assert.equal(verb.status, 405);
    assert.equal(verb.headers.get('allow'), 'GET');
    const encoding = await rest(serve.url, 'GET', '/tasks/%E0%A4%A', { token });
    assert.equal(encoding.status, 400);

    for (const [method, path, body] of [
      ['POST', `${taskPath}/pushNotificationConfigs`, { url: 'http://127.0.0.1:1/hook' }],
      ['GET', `${taskPath}/pushNotificationConfigs`, undefined],
      ['GET', `${taskPath}/pushNotificationConfigs/c1`, undefined],
      ['DELETE', `${taskPath}/pushNotificationConfigs/c1`, undefined],
    ] as const) {
      const push = await rest(serve.url, method, path, { token, ...(body ? { body } : {}) });
      assert.equal(reasonOf(push.body, 400), 'a2a-protocol.org/PUSH_NOTIFICATION_NOT_SUPPORTED', `${method} ${path}`);
    }

    const message = (parts: unknown[]) => ({ message: { messageId: 'x', role: 'ROLE_USER', parts, metadata: { skill: agents.echo } } });
    const file = await rest(serve.url, 'POST', '/message:send', { token, body: message([{ url: 'http://x/y.png' }]) });
    assert.equal(reasonOf(file.body, 400), 'a2a-protocol.org/CONTENT_TYPE_NOT_SUPPORTED');
    const bigPart = await rest(serve.url, 'POST', '/message:send', { token, body: message([{ text: 'x'.repeat(70_000) }]) });
    assert.equal(bigPart.status, 400);
    assert.match(bigPart.body.error.message, /a2a\.maxPartBytes/);
    const huge = await rest(serve.url, 'POST', '/message:send', { token, body: { pad: 'x'.repeat(1_100_000) } });
    assert.equal(huge.status, 413);
    assert.equal(reasonOf(huge.body, 413), 'toka.dev/LIMIT_EXCEEDED');
    assert.equal(huge.body.error.details[0].metadata.limit, 'a2a.maxBodyBytes');

    const viewer = await cliMint(serve.dataDir, { sub: 'viewer', vault: 'v', perm: 'state:read' });
    const denied = await rest(serve.url, 'POST', '/message:send', { token: viewer, body: message([{ text: '[echo] hi' }]) });
    assert.equal(denied.status, 403);
    assert.equal(reasonOf(denied.body, 403), 'toka.dev/CAPABILITY_DENIED');
    assert.equal(denied.body.error.status, 'PERMISSION_DENIED');
    assert.equal((await rest(serve.url, 'GET', taskPath, { token: viewer })).status, 200, 'state:read is enough to read a task');

    const stranger = await cliMint(serve.dataDir, { sub: 'stranger', vault: 'w', perm: A2A_USER.join(',') });
    const foreign = await rest(serve.url, 'GET', taskPath, { token: stranger });
    assert.equal(reasonOf(foreign.body, 404), 'a2a-protocol.org/TASK_NOT_FOUND', 'a task of another vault does not exist for the caller');

    const doomed = await cliMint(serve.dataDir, { sub: 'doomed', vault: 'v', perm: A2A_USER.join(',') });
    assert.equal((await rest(serve.url, 'GET', taskPath, { token: doomed })).status, 200);
    const revoked = await toka(['token', 'revoke', doomed, '--data', serve.dataDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const afterRevoke = await rest(serve.url, 'GET', taskPath, { token: doomed });
    assert.equal(afterRevoke.status, 401);
    assert.equal(reasonOf(afterRevoke.body, 401), 'toka.dev/UNAUTHENTICATED');

    assert.equal((await fetch(`${serve.url}/healthz`)).status, 200, 'the host is still up');
    const again = await rest(serve.url, 'GET', taskPath, { token });
    assert.equal(again.status, 200);
    assert.equal(again.body.status.state, 'TASK_STATE_COMPLETED', 'nothing accepted was lost');
  });
});
