/**
 * `toka serve --stdio` as a real process: the LSP lifecycle, the owner session, toka/* over the shared
 * binding, subscriptions, errors, cancellation, work-done progress, and that stdout carries only frames.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ProgressType, ResponseError } from 'vscode-jsonrpc/node';
import { ErrorCodes } from '../../protocol/errors.js';
import type { LogRecord } from '../../protocol/events.js';
import type { Operation } from '../../protocol/kernel.js';
import {
  EventsEventNotification,
  EventsQueryRequest,
  EventsSubscribeRequest,
  EventsUnsubscribeRequest,
  HostInfoRequest,
  KernelSubmitRequest,
  LogVerifyRequest,
  StateGetRequest,
  TOKA_PROTOCOL_VERSION,
  type SubmitResult,
} from '../../protocol/rpc/index.js';
import {
  encodeFrame,
  isJsonRpcMessage,
  parseFrames,
  spawnJsonRpcProcess,
  type JsonRpcProcess,
} from '../helpers/jsonrpc-process.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'dist', 'toka.js');
const run = promisify(execFile);

describe('toka serve --stdio', function () {
  let dir: string;
  let procs: JsonRpcProcess[] = [];

  before(function () {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node esbuild.mjs\` first (npm test does)`);
  });

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'toka-stdio-'));
    procs = [];
  });

  afterEach(async function () {
    try {
      // Stdout purity: every byte the host wrote is a Content-Length frame holding one JSON-RPC message.
      for (const proc of procs) {
        const { frames } = parseFrames(proc.stdout(), true);
        for (const frame of frames) assert.ok(isJsonRpcMessage(frame.message), `not a JSON-RPC message: ${frame.body}`);
      }
    } finally {
      for (const proc of procs) await proc.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  function start(): JsonRpcProcess {
    const proc = spawnJsonRpcProcess(process.execPath, [CLI, 'serve', '--stdio', '--data', dir], {
      env: { TOKA_LOG_LEVEL: 'debug' },
    });
    procs.push(proc);
    return proc;
  }

  function initialize(proc: JsonRpcProcess, initializationOptions?: unknown) {
    return proc.connection.sendRequest('initialize', {
      processId: process.pid,
      clientInfo: { name: 'stdio-test' },
      rootUri: null,
      capabilities: {},
      initializationOptions,
    }) as Promise<{ capabilities: { experimental: { toka: { protocolVersion: string; features: string[] } } }; serverInfo: { name: string; version: string } }>;
  }

  async function ready(initializationOptions?: unknown): Promise<JsonRpcProcess> {
    const proc = start();
    await initialize(proc, initializationOptions);
    await proc.connection.sendNotification('initialized', {});
    return proc;
  }

  async function rejectsWith(promise: Promise<unknown>, code: number, name?: string): Promise<ResponseError<unknown>> {
    try {
      await promise;
    } catch (err) {
      assert.ok(err instanceof ResponseError, `expected a ResponseError, got ${String(err)}`);
      assert.equal(err.code, code, `code of ${err.message}`);
      if (name !== undefined) assert.equal((err.data as { name?: string }).name, name);
      return err;
    }
    assert.fail(`expected an error with code ${code}`);
  }

  async function submit(proc: JsonRpcProcess, op: Operation): Promise<SubmitResult> {
    return proc.connection.sendRequest(KernelSubmitRequest.type, { op });
  }

  async function spawnAgent(proc: JsonRpcProcess, name: string): Promise<{ agent: string; records: LogRecord[] }> {
    const { records } = await submit(proc, { type: 'SpawnSubAgent', parent: 'root', spec: { name } });
    const spawned = records.map((r) => r.event).find((e) => e.type === 'AgentSpawned' && e.name === name);
    assert.ok(spawned && typeof spawned.agent === 'string');
    return { agent: spawned.agent, records };
  }

  it('runs the LSP lifecycle: not initialized → initialize → serve → shutdown → exit 0', async function () {
    const proc = start();
    await rejectsWith(proc.connection.sendRequest(HostInfoRequest.type, {}), ErrorCodes.ServerNotInitialized, 'ServerNotInitialized');

    const result = await initialize(proc);
    assert.deepEqual(result.serverInfo.name, 'toka');
    assert.equal(typeof result.serverInfo.version, 'string');
    const toka = result.capabilities.experimental.toka;
    assert.equal(toka.protocolVersion, TOKA_PROTOCOL_VERSION);
    for (const { method } of [KernelSubmitRequest, StateGetRequest, EventsSubscribeRequest, EventsQueryRequest, LogVerifyRequest, HostInfoRequest]) {
      assert.ok(toka.features.includes(method), `features lists ${method}`);
    }
    await rejectsWith(initialize(proc), ErrorCodes.InvalidRequest, 'InvalidRequest');
    await proc.connection.sendNotification('initialized', {});

    const info = (await proc.connection.sendRequest(HostInfoRequest.type, {})) as { session: { principal: string; vault: string; permissions: string[] } };
    assert.equal(info.session.principal, 'local-admin');
    assert.equal(info.session.vault, 'default');
    assert.deepEqual(info.session.permissions, ['*']);

    assert.equal(await proc.connection.sendRequest('shutdown'), null);
    await rejectsWith(proc.connection.sendRequest(StateGetRequest.type, {}), ErrorCodes.InvalidRequest, 'InvalidRequest');
    await proc.connection.sendNotification('exit');
    const exit = await proc.waitForExit();
    assert.equal(exit.code, 0, proc.stderr());
  });

  it('exits 1 on exit without shutdown, and when stdin closes', async function () {
    const a = await ready();
    await a.connection.sendNotification('exit');
    assert.equal((await a.waitForExit()).code, 1);

    const b = await ready();
    b.child.stdin.end();
    assert.equal((await b.waitForExit()).code, 1);
  });

  it('gives the owner the local admin of the chosen vault', async function () {
    const proc = await ready({ vault: 'team-a' });
    const info = (await proc.connection.sendRequest(HostInfoRequest.type, {})) as { session: { vault: string } };
    assert.equal(info.session.vault, 'team-a');
  });

  it('submits operations and shows them in toka/state/get', async function () {
    const proc = await ready();
    const { agent } = await spawnAgent(proc, 'worker');
    const scheduled = await submit(proc, { type: 'ScheduleAgentTask', agent, task: { description: 'index the repo', priority: 'high' } });
    assert.equal(scheduled.records[0].event.type, 'TaskScheduled');
    const observed = await submit(proc, { type: 'EmitObservation', agent, data: { files: 3 } });
    assert.equal(observed.records[0].event.type, 'ObservationEmitted');

    const state = (await proc.connection.sendRequest(StateGetRequest.type, { agent, includeTasks: true })) as {
      seq: number;
      agents: Array<{ id: string; name: string; queuedTasks: number; observations: number; tasks: Array<{ description: string }> }>;
    };
    assert.equal(state.seq, observed.records[observed.records.length - 1].seq);
    assert.equal(state.agents.length, 1);
    assert.equal(state.agents[0].name, 'worker');
    assert.equal(state.agents[0].queuedTasks, 1);
    assert.equal(state.agents[0].observations, 1);
    assert.equal(state.agents[0].tasks[0].description, 'index the repo');

    const children = (await proc.connection.sendRequest(StateGetRequest.type, { parent: state.agents[0].id })) as { agents: unknown[] };
    assert.equal(children.agents.length, 0);
  });

  it('delivers toka/events/event in seq order, stops after unsubscribe, and answers queries', async function () {
    const proc = await ready();
    const received = new Map<string, LogRecord[]>();
    proc.connection.onNotification(EventsEventNotification.type, (p: { subscription: string; record: LogRecord }) => {
      received.set(p.subscription, [...(received.get(p.subscription) ?? []), p.record]);
    });
    const first = (await proc.connection.sendRequest(EventsSubscribeRequest.type, {})) as { subscription: string; headSeq: number };
    const second = (await proc.connection.sendRequest(EventsSubscribeRequest.type, {})) as { subscription: string };
    assert.equal(first.headSeq, 0);
    assert.notEqual(first.subscription, second.subscription);

    const { agent, records: spawnRecords } = await spawnAgent(proc, 'watched');
    const task = await submit(proc, { type: 'ScheduleAgentTask', agent, task: { description: 'one' } });
    const obs = await submit(proc, { type: 'EmitObservation', agent, data: 'seen' });
    const expected = [...spawnRecords, ...task.records, ...obs.records].map((r) => r.seq);
    assert.deepEqual(expected, expected.map((_, i) => i + 1));

    const lastSeq = expected[expected.length - 1];
    const delivered = (id: string) => (received.get(id) ?? []).map((r) => r.seq);
    await waitFor(() => delivered(first.subscription).length >= expected.length && delivered(second.subscription).length >= expected.length, 5000, 'both subscriptions to deliver');
    assert.deepEqual(delivered(first.subscription), expected);
    assert.deepEqual(delivered(second.subscription), expected);

    assert.deepEqual(await proc.connection.sendRequest(EventsUnsubscribeRequest.type, { subscription: first.subscription }), { found: true });
    assert.deepEqual(await proc.connection.sendRequest(EventsUnsubscribeRequest.type, { subscription: first.subscription }), { found: false });
    await submit(proc, { type: 'EmitObservation', agent, data: 'after' });
    await waitFor(() => delivered(second.subscription).includes(lastSeq + 1), 5000, 'the live record');
    await proc.connection.sendRequest(HostInfoRequest.type, {});
    assert.deepEqual(delivered(first.subscription), expected, 'nothing after unsubscribe');

    const query = (await proc.connection.sendRequest(EventsQueryRequest.type, { afterSeq: 0, types: ['ObservationEmitted'] })) as { records: LogRecord[] };
    assert.deepEqual(query.records.map((r) => r.event.type), ['ObservationEmitted', 'ObservationEmitted']);
    const page = (await proc.connection.sendRequest(EventsQueryRequest.type, { afterSeq: 1, limit: 2 })) as { records: LogRecord[] };
    assert.deepEqual(page.records.map((r) => r.seq), [2, 3]);
  });

  it('reports CapabilityDenied for an initialize token lacking a permission, and refuses a bad token', async function () {
    const minted = await run(process.execPath, [CLI, 'token', 'mint', '--data', dir, '--sub', 'reader', '--vault', 'default', '--perm', 'state:read,events:read', '--ttl', '15m']);
    const token = minted.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const proc = start();
    await rejectsWith(initialize(proc, { token: 'not-a-token' }), ErrorCodes.Unauthenticated, 'Unauthenticated');
    await rejectsWith(initialize(proc, { token: 42 }), ErrorCodes.InvalidParams, 'InvalidParams');
    await initialize(proc, { token });
    await proc.connection.sendNotification('initialized', {});

    const info = (await proc.connection.sendRequest(HostInfoRequest.type, {})) as { session: { principal: string; permissions: string[] } };
    assert.equal(info.session.principal, 'reader');
    assert.deepEqual(info.session.permissions, ['state:read', 'events:read']);
    const denied = await rejectsWith(submit(proc, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'x' } }), ErrorCodes.CapabilityDenied, 'CapabilityDenied');
    assert.match(denied.message, /agent:spawn|permission|cover/i);
    await rejectsWith(proc.connection.sendRequest(LogVerifyRequest.type, {}), ErrorCodes.CapabilityDenied, 'CapabilityDenied');
    const state = (await proc.connection.sendRequest(StateGetRequest.type, {})) as { agents: unknown[] };
    assert.deepEqual(state.agents, []);
  });

  it('answers InvalidParams, MethodNotFound, ParseError and InvalidRequest and keeps serving', async function () {
    const proc = await ready();
    await rejectsWith(proc.connection.sendRequest(StateGetRequest.method, { limit: 'ten' }), ErrorCodes.InvalidParams, 'InvalidParams');
    await rejectsWith(proc.connection.sendRequest(KernelSubmitRequest.method, { op: 'spawn' }), ErrorCodes.InvalidParams, 'InvalidParams');
    await rejectsWith(proc.connection.sendRequest(EventsQueryRequest.method, { types: 'AgentSpawned' }), ErrorCodes.InvalidParams, 'InvalidParams');
    await rejectsWith(proc.connection.sendRequest('toka/no/such', {}), ErrorCodes.MethodNotFound, 'MethodNotFound');

    await proc.writeRaw(encodeFrame('{"jsonrpc":"2.0","id":7,"method":"toka/host/info",'));
    const parseError = await proc.waitForFrame((m) => m.id === null && (m.error as { code?: number })?.code === ErrorCodes.ParseError);
    assert.equal((parseError.error as { data: { name: string } }).data.name, 'ParseError');
    const info = (await proc.connection.sendRequest(HostInfoRequest.type, {})) as { ready: boolean };
    assert.equal(info.ready, true);

    await proc.writeRaw(encodeFrame({ jsonrpc: '2.0', id: 'raw-1', method: 42 }));
    const invalid = await proc.waitForFrame((m) => m.id === 'raw-1');
    assert.equal((invalid.error as { code: number }).code, ErrorCodes.InvalidRequest);
    await proc.writeRaw(encodeFrame([{ jsonrpc: '2.0', id: 'raw-2', method: HostInfoRequest.method }]));
    await proc.waitForFrame((m) => m.id === null && (m.error as { code?: number })?.code === ErrorCodes.InvalidRequest);
    assert.equal(((await proc.connection.sendRequest(HostInfoRequest.type, {})) as { ready: boolean }).ready, true);

    const huge = { jsonrpc: '2.0', id: 'raw-3', method: HostInfoRequest.method, params: { pad: 'x'.repeat(2 * 1024 * 1024) } };
    await proc.writeRaw(encodeFrame(huge));
    const tooLarge = await proc.waitForFrame((m) => m.id === null && (m.error as { code?: number })?.code === ErrorCodes.LimitExceeded);
    assert.deepEqual((tooLarge.error as { data: unknown }).data, { name: 'LimitExceeded', limit: 'messageBytes', max: 2 * 1024 * 1024 });
    assert.equal(((await proc.connection.sendRequest(HostInfoRequest.type, {})) as { ready: boolean }).ready, true);
    assert.ok(!proc.frames().some((f) => (f.message as { id?: unknown }).id === 'raw-3'), 'the oversized request was not run');
  });

  it('cancels toka/log/verify on $/cancelRequest', async function () {
    const proc = await ready();
    await spawnAgent(proc, 'a');
    // Request and cancellation in one write (< PIPE_BUF, so one read): the cancellation reaches the host
    // before the request runs, whatever the scheduling.
    await proc.writeRaw(
      Buffer.concat([
        encodeFrame({ jsonrpc: '2.0', id: 'verify-1', method: LogVerifyRequest.method, params: { workDoneToken: 'wd-cancel' } }),
        encodeFrame({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 'verify-1' } }),
      ]),
    );
    const answer = await proc.waitForFrame((m) => m.id === 'verify-1');
    assert.equal((answer.error as { code: number }).code, ErrorCodes.RequestCancelled, JSON.stringify(answer));
    await proc.waitForFrame((m) => m.method === '$/progress' && (m.params as { token: string; value: { kind: string } }).token === 'wd-cancel' && (m.params as { value: { kind: string } }).value.kind === 'end');

    const verified = (await proc.connection.sendRequest(LogVerifyRequest.type, {})) as { ok: boolean; headSeq: number };
    assert.equal(verified.ok, true);
    assert.equal(verified.headSeq, 2);
  });

  it('sends $/progress for toka/log/verify with a workDoneToken', async function () {
    const proc = await ready();
    const { agent } = await spawnAgent(proc, 'p');
    await submit(proc, { type: 'EmitObservation', agent, data: 1 });
    const values: Array<{ kind: string; title?: string; percentage?: number; message?: string }> = [];
    proc.connection.onProgress(new ProgressType<(typeof values)[number]>(), 'wd-1', (value) => {
      values.push(value);
    });
    const result = (await proc.connection.sendRequest(LogVerifyRequest.type, { workDoneToken: 'wd-1' })) as {
      ok: boolean;
      checked: number;
      liveDigest: string;
      replayDigest: string;
    };
    assert.equal(result.ok, true);
    assert.equal(result.checked, 3);
    assert.equal(result.liveDigest, result.replayDigest);
    assert.ok(values.length >= 2, JSON.stringify(values));
    assert.equal(values[0].kind, 'begin');
    assert.equal(typeof values[0].title, 'string');
    assert.equal(values[values.length - 1].kind, 'end');
    assert.ok(values.slice(1, -1).every((v) => v.kind === 'report'));
  });

  it('writes nothing but frames on stdout across a busy session', async function () {
    const proc = await ready();
    proc.connection.onNotification(EventsEventNotification.type, () => undefined);
    await proc.connection.sendRequest(EventsSubscribeRequest.type, { afterSeq: 0 });
    const { agent } = await spawnAgent(proc, 'busy');
    // Two waves of 25: a connection may have at most 32 requests in flight (MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION).
    for (const wave of [0, 25]) await Promise.all(Array.from({ length: 25 }, (_, i) => submit(proc, { type: 'EmitObservation', agent, data: { i: wave + i } })));
    await proc.writeRaw(encodeFrame('not json'));
    await proc.waitForFrame((m) => (m.error as { code?: number } | undefined)?.code === ErrorCodes.ParseError);
    await proc.connection.sendRequest(LogVerifyRequest.type, { workDoneToken: 'busy' });
    await proc.connection.sendRequest('shutdown');
    await proc.connection.sendNotification('exit');
    assert.equal((await proc.waitForExit()).code, 0);

    const { frames, rest } = parseFrames(proc.stdout(), true);
    assert.equal(rest.length, 0);
    assert.ok(frames.length > 100, `${frames.length} frames`);
    for (const frame of frames) {
      assert.ok(isJsonRpcMessage(frame.message), frame.body);
      assert.equal(Number(frame.headers['content-length']), Buffer.byteLength(frame.body));
    }
    assert.match(proc.stderr(), /"msg":"stdio session ended"/);
  });
});
