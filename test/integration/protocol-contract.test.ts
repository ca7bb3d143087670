/**
 * Every request of protocol/rpc against the three stream faces of one in-process host (stdio over in-memory
 * streams, WebSocket /rpc, the admin socket): each face serves every method meant for it, and a request with
 * wrong params for any method is InvalidParams naming the field, writes nothing, and leaves the connection
 * usable. The method list comes from protocol/rpc itself, so a method added there without a server handler
 * (or without a wrong-params case here) fails this file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ResponseError } from 'vscode-jsonrpc';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { ErrorCodes } from '../../protocol/errors.js';
import {
  AdminOpenRequest,
  AgentRunRequest,
  AgentSpawnRequest,
  AgentTerminateRequest,
  ApprovalListRequest,
  ApprovalResolveRequest,
  TaskCancelRequest,
  TaskGetRequest,
  TaskListRequest,
  CapabilityDelegateRequest,
  CapabilityListRequest,
  CapabilityMintRequest,
  CapabilityRevokeRequest,
  EventsQueryRequest,
  EventsSubscribeRequest,
  EventsUnsubscribeRequest,
  HostInfoRequest,
  KernelSubmitRequest,
  LogVerifyRequest,
  StateGetRequest,
  WorkstreamPlanRequest,
  WorkstreamRunRequest,
  type TokaServerCapabilities,
} from '../../protocol/rpc/index.js';
import { startAdminSocket, type AdminSocket } from '../../server/adapters/admin-socket.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { serveStdio, type StdioExit } from '../../server/adapters/stdio.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { requestDefinitions } from '../helpers/protocol.js';
import { connectRaw, connectWs, type TokaWsClient } from '../helpers/ws-client.js';

/** For each method: params that its schema refuses, and the field the refusal must name. */
const WRONG_PARAMS: Record<string, { params: unknown; field: string }> = {
  [KernelSubmitRequest.method]: { params: { op: 'spawn' }, field: 'op' },
  [StateGetRequest.method]: { params: { limit: 0 }, field: 'limit' },
  [EventsQueryRequest.method]: { params: { types: 'AgentSpawned' }, field: 'types' },
  [EventsSubscribeRequest.method]: { params: { afterSeq: -1 }, field: 'afterSeq' },
  [EventsUnsubscribeRequest.method]: { params: {}, field: 'subscription' },
  [CapabilityMintRequest.method]: { params: { subject: 'x', permissions: ['state:read'], ttlSeconds: 1801 }, field: 'ttlSeconds' },
  [CapabilityDelegateRequest.method]: { params: { subject: 'x', permissions: 'state:read' }, field: 'permissions' },
  [CapabilityRevokeRequest.method]: { params: { jti: 'a', grant: 'b' }, field: 'jti' },
  [CapabilityListRequest.method]: { params: [1, 2], field: 'params' },
  [HostInfoRequest.method]: { params: ['not', 'an', 'object'], field: 'params' },
  [LogVerifyRequest.method]: { params: { workDoneToken: true }, field: 'workDoneToken' },
  [AdminOpenRequest.method]: { params: { vault: 'v', token: 'both' }, field: 'vault' },
  [AgentSpawnRequest.method]: { params: { spec: 42 }, field: 'spec' },
  [AgentRunRequest.method]: { params: { agent: 'a', limits: { maxTurns: 0 } }, field: 'limits' },
  [AgentTerminateRequest.method]: { params: { agent: '' }, field: 'agent' },
  [TaskGetRequest.method]: { params: {}, field: 'task' },
  [TaskListRequest.method]: { params: { state: 'sleeping' }, field: 'state' },
  [TaskCancelRequest.method]: { params: { task: 'x', reason: 7 }, field: 'reason' },
  [ApprovalListRequest.method]: { params: { extra: true }, field: 'extra' },
  [ApprovalResolveRequest.method]: { params: { task: 't', approval: 'a', decision: 'maybe' }, field: 'decision' },
  [WorkstreamPlanRequest.method]: { params: { specs: [] }, field: 'specs' },
  [WorkstreamRunRequest.method]: { params: { specs: [{ uri: 'a.yaml', text: 'x' }], concurrency: 0 }, field: 'concurrency' },
};

interface Face {
  name: string;
  connection: MessageConnection;
  /** The methods of protocol/rpc this face must serve. */
  methods: string[];
}

async function answer(connection: MessageConnection, method: string, params: unknown): Promise<{ code?: number; data?: unknown }> {
  try {
    await connection.sendRequest(method, params);
    return {};
  } catch (err) {
    assert.ok(err instanceof ResponseError, `${method}: not a ResponseError: ${String(err)}`);
    return { code: err.code, data: err.data };
  }
}

describe('protocol/rpc on every stream face (in process)', () => {
  const silent = createLogger({ level: 'silent' });
  const all = requestDefinitions().filter((d) => d.messageDirection === 'clientToServer').map((d) => d.method);
  const editorMethods = all.filter((m) => m !== AdminOpenRequest.method);
  let dir: string;
  let host: Host;
  let http: HttpServer;
  let admin: AdminSocket;
  let ws: TokaWsClient;
  let stdio: { connection: MessageConnection; input: PassThrough; exited: Promise<StdioExit>; capabilities: TokaServerCapabilities };
  let adminConnection: MessageConnection;
  let faces: Face[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-contract-'));
    host = await Host.open({ dataDir: null, logger: silent });
    const token = (await host.mint(host.localSession('v'), { subject: 'contract', permissions: ['*'] })).token;

    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: silent });
    ws = await connectWs(`${http.url.replace('http', 'ws')}/rpc`, token);

    admin = await startAdminSocket(host, { dataDir: dir, logger: silent });
    const socket = connect(admin.path);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    adminConnection = createMessageConnection(new StreamMessageReader(socket), new StreamMessageWriter(socket));
    adminConnection.listen();

    const input = new PassThrough();
    const output = new PassThrough();
    const exited = serveStdio(host, { logger: silent, input, output });
    const connection = createMessageConnection(new StreamMessageReader(output), new StreamMessageWriter(input));
    connection.listen();
    const init = (await connection.sendRequest('initialize', {
      processId: null,
      rootUri: null,
      capabilities: {},
      initializationOptions: { vault: 'v' },
    })) as { capabilities: { experimental: { toka: TokaServerCapabilities } } };
    stdio = { connection, input, exited, capabilities: init.capabilities.experimental.toka };

    faces = [
      { name: 'stdio', connection, methods: editorMethods },
      { name: 'websocket', connection: ws.connection, methods: editorMethods },
      { name: 'admin socket', connection: adminConnection, methods: all },
    ];
  });

  after(async () => {
    stdio?.input.end();
    await stdio?.exited;
    adminConnection?.dispose();
    await admin?.close();
    await ws?.close();
    await http?.close();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every protocol request except toka/admin/open in the stdio initialize result', () => {
    assert.deepEqual(stdio.capabilities.features, [...editorMethods].sort());
  });

  it('has a wrong-params case for every request method of protocol/rpc', () => {
    assert.deepEqual(Object.keys(WRONG_PARAMS).sort(), [...all].sort());
  });

  it('serves every request method meant for each face (anything but MethodNotFound)', async () => {
    // The admin socket serves toka/* only after toka/admin/open: open it first.
    await adminConnection.sendRequest(AdminOpenRequest.type, { vault: 'v' });
    for (const face of faces) {
      assert.equal((await answer(face.connection, 'toka/no/such', {})).code, ErrorCodes.MethodNotFound, `${face.name} answers MethodNotFound at all`);
      for (const method of face.methods) {
        const params = method === AdminOpenRequest.method ? { vault: 'v' } : {};
        const { code } = await answer(face.connection, method, params);
        assert.notEqual(code, ErrorCodes.MethodNotFound, `${face.name} serves ${method}`);
      }
    }
  });

  it('answers wrong params for every method with InvalidParams naming the field, writes nothing, and stays usable', async () => {
    const headBefore = host.health().seq;
    for (const face of faces) {
      for (const method of face.methods) {
        const wrong = WRONG_PARAMS[method];
        const { code, data } = await answer(face.connection, method, wrong.params);
        assert.equal(code, ErrorCodes.InvalidParams, `${face.name} ${method} ${JSON.stringify(wrong.params)}`);
        assert.deepEqual(data, { name: 'InvalidParams', field: wrong.field }, `${face.name} ${method}`);
        const info = await face.connection.sendRequest(HostInfoRequest.type, {});
        assert.equal(info.name, 'toka', `${face.name} still answers after ${method}`);
      }
    }
    assert.equal(host.health().seq, headBefore, 'no refused request wrote to the log');
  });

  it('takes absent params as {} and refuses params given by position', async () => {
    const raw = await connectRaw(`${http.url.replace('http', 'ws')}/rpc`, (await host.mint(host.localSession('v'), { subject: 'raw', permissions: ['*'] })).token);
    try {
      raw.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: HostInfoRequest.method }));
      const info = await raw.next();
      assert.equal((info.result as { name: string }).name, 'toka', JSON.stringify(info));

      raw.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: EventsUnsubscribeRequest.method }));
      const missing = await raw.next();
      assert.deepEqual([missing.id, (missing.error as { data: unknown }).data], [2, { name: 'InvalidParams', field: 'subscription' }]);

      raw.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: StateGetRequest.method, params: [{ limit: 1 }, 2] }));
      const byPosition = await raw.next();
      assert.equal((byPosition.error as { code: number }).code, ErrorCodes.InvalidParams);
      assert.deepEqual((byPosition.error as { data: unknown }).data, { name: 'InvalidParams', field: 'params' });

      raw.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: LogVerifyRequest.method, params: [] }));
      const empty = await raw.next();
      assert.equal((empty.result as { ok: boolean }).ok, true, JSON.stringify(empty));
    } finally {
      raw.ws.close();
      await raw.closed;
    }
  });
});
