/**
 * Per-connection bounds of the `toka/*` binding over real connections, with the host held at a gate where a
 * request awaits it (a proxy of a real in-process host): the subscription cap under concurrent subscribes, a
 * subscription whose connection closes while the host subscribes, the in-flight request bound, and the upgrade
 * answer for each way authentication can fail. Then the stdio face's frame guard on a real `toka serve --stdio`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ResponseError } from 'vscode-jsonrpc';
import { ErrorCodes } from '../../protocol/errors.js';
import { EventsSubscribeRequest, HostInfoRequest, MAX_MESSAGE_BYTES, StateGetRequest } from '../../protocol/rpc/index.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION, MAX_SUBSCRIPTIONS_PER_CONNECTION } from '../../server/adapters/rpc.js';
import { HostError } from '../../server/host/errors.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { encodeFrame, spawnJsonRpcProcess, type JsonRpcProcess } from '../helpers/jsonrpc-process.js';
import { connectWs, tryUpgrade, waitFor, type TokaWsClient } from '../helpers/ws-client.js';

type Gated = 'subscribe' | 'getState' | 'authenticate';

/** A view of `host` whose `method` waits for `release()` before running (or, with `fail`, throws). */
function gate(host: Host, method: Gated, fail?: () => unknown) {
  let release!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  const state = { waiting: 0, release };
  const proxy = new Proxy(host, {
    get(target, prop) {
      if (prop === method) {
        return async (...args: unknown[]) => {
          state.waiting++;
          if (fail) throw fail();
          await opened;
          return (target[method] as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { host: proxy, state };
}

function subscribers(host: Host): number {
  const m = /^toka_subscribers (\d+)$/m.exec(host.metrics.render({ logSeq: 0, ready: true }));
  return Number(m![1]);
}

async function rejection(promise: Promise<unknown>): Promise<ResponseError<{ name: string; [k: string]: unknown }>> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ResponseError, `not a ResponseError: ${String(err)}`);
    return err as ResponseError<{ name: string; [k: string]: unknown }>;
  }
  throw new Error('expected a rejection');
}

describe('toka/* per-connection limits (in process, WebSocket)', () => {
  const silent = createLogger({ level: 'silent' });
  let host: Host;
  let token: string;
  let server: HttpServer | null = null;
  let clients: TokaWsClient[] = [];

  before(async () => {
    host = await Host.open({ dataDir: null, logger: silent });
    token = (await host.mint(host.localSession('v'), { subject: 'limits', permissions: ['*'] })).token;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server?.close();
    server = null;
  });
  after(async () => host?.close());

  async function serveThrough(view: Host): Promise<string> {
    server = await startHttpServer(view, { host: '127.0.0.1', port: 0, logger: silent });
    return `${server.url.replace('http', 'ws')}/rpc`;
  }
  async function client(wsUrl: string): Promise<TokaWsClient> {
    const c = await connectWs(wsUrl, token);
    clients.push(c);
    return c;
  }

  it(`admits exactly ${MAX_SUBSCRIPTIONS_PER_CONNECTION} of many concurrent subscribes; the rest are LimitExceeded`, async () => {
    const { host: view, state } = gate(host, 'subscribe');
    const c = await client(await serveThrough(view));
    const attempts = Array.from({ length: MAX_SUBSCRIPTIONS_PER_CONNECTION + 4 }, () =>
      c.request(EventsSubscribeRequest.type, {}).then(
        (r) => ({ ok: r.subscription }),
        (err: ResponseError<{ limit?: string; max?: number }>) => ({ err }),
      ),
    );
    await waitFor(() => state.waiting === MAX_SUBSCRIPTIONS_PER_CONNECTION, 5000, 'the admitted subscribes to reach the host');
    state.release();
    const results = await Promise.all(attempts);
    const ok = results.filter((r): r is { ok: string } => 'ok' in r);
    const refused = results.filter((r): r is { err: ResponseError<{ limit?: string; max?: number }> } => 'err' in r);
    assert.equal(ok.length, MAX_SUBSCRIPTIONS_PER_CONNECTION);
    assert.equal(new Set(ok.map((r) => r.ok)).size, MAX_SUBSCRIPTIONS_PER_CONNECTION);
    assert.equal(refused.length, 4);
    for (const { err } of refused) {
      assert.equal(err.code, ErrorCodes.LimitExceeded);
      assert.deepEqual(err.data, { name: 'LimitExceeded', limit: 'subscriptionsPerConnection', max: MAX_SUBSCRIPTIONS_PER_CONNECTION });
    }
    assert.equal(state.waiting, MAX_SUBSCRIPTIONS_PER_CONNECTION, 'a refused subscribe reached the host');
    assert.equal(subscribers(host), MAX_SUBSCRIPTIONS_PER_CONNECTION);
    await c.close();
    await waitFor(() => subscribers(host) === 0, 5000, 'the subscriptions to end with the connection');
  });

  it('ends a subscription whose connection closed while the host was subscribing', async () => {
    const { host: view, state } = gate(host, 'subscribe');
    const c = await client(await serveThrough(view));
    void c.request(EventsSubscribeRequest.type, {}).catch(() => undefined);
    await waitFor(() => state.waiting === 1, 5000, 'the subscribe to reach the host');
    await c.close();
    await waitFor(() => host.metrics.connectionCount('ws') === 0, 5000, 'the connection to be gone');
    state.release();
    // The subscribe completes after the close: give it a few turns, then nothing may be left subscribed.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(subscribers(host), 0);
    assert.match(host.metrics.render({ logSeq: 0, ready: true }), /^toka_subscribers 0$/m);
  });

  it(`refuses request ${MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION + 1} in flight on one connection, and serves again once they are answered`, async () => {
    const { host: view, state } = gate(host, 'getState');
    const c = await client(await serveThrough(view));
    const held = Array.from({ length: MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION }, () => c.request(StateGetRequest.type, {}));
    await waitFor(() => state.waiting === MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION, 5000, 'the requests to reach the host');
    const refused = await rejection(c.request(HostInfoRequest.type, {}));
    assert.equal(refused.code, ErrorCodes.LimitExceeded);
    assert.deepEqual(refused.data, { name: 'LimitExceeded', limit: 'requestsInFlightPerConnection', max: MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION });
    // Another connection has its own bound.
    const other = await client(`${server!.url.replace('http', 'ws')}/rpc`);
    assert.equal((await other.request(HostInfoRequest.type, {})).name, 'toka');
    state.release();
    assert.equal((await Promise.all(held)).length, MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION);
    assert.equal((await c.request(HostInfoRequest.type, {})).name, 'toka');
  });

  it('answers a refused upgrade by why the host refused the token', async () => {
    const cases: { fail: () => unknown; status: number; name: string; header?: [string, string] }[] = [
      { fail: () => new HostError('Unauthenticated', 'bad', { reason: 'ERR_TOKEN_INVALID' }), status: 401, name: 'Unauthenticated', header: ['www-authenticate', 'Bearer realm="toka", error="invalid_token"'] },
      { fail: () => new HostError('RateLimited', 'slow down', { retryAfterMs: 1500 }), status: 429, name: 'RateLimited', header: ['retry-after', '2'] },
      { fail: () => new HostError('Unavailable', 'host is shutting down'), status: 503, name: 'Unavailable' },
      { fail: () => new Error('boom'), status: 500, name: 'InternalError' },
    ];
    for (const { fail, status, name, header } of cases) {
      const { host: view } = gate(host, 'authenticate', fail);
      const wsUrl = await serveThrough(view);
      const r = await tryUpgrade(wsUrl, { token });
      assert.equal(r.status, status, name);
      assert.equal((JSON.parse(r.body) as { error: { name: string } }).error.name, name);
      if (header) assert.equal(r.headers[header[0]], header[1]);
      await server!.close();
      server = null;
    }
  });
});

describe('toka serve --stdio frame guard', function () {
  const CLI = resolve('dist/toka.js');
  let dir: string;
  let proc: JsonRpcProcess | null = null;

  before(function () {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node esbuild.mjs\` first (npm test does)`);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-rpc-limits-'));
  });
  afterEach(async () => {
    try {
      await proc?.close();
    } finally {
      proc = null;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function ready(): Promise<JsonRpcProcess> {
    proc = spawnJsonRpcProcess(process.execPath, [CLI, 'serve', '--stdio', '--data', dir]);
    await proc.connection.sendRequest('initialize', { processId: null, rootUri: null, capabilities: {} });
    return proc;
  }
  const tooLarge = (m: Record<string, unknown>) => m.id === null && (m.error as { code?: number } | undefined)?.code === ErrorCodes.LimitExceeded;

  it('skips an oversized body and answers the request after it', async () => {
    const p = await ready();
    const body = Buffer.alloc(MAX_MESSAGE_BYTES + 1024, 0x20);
    await p.writeRaw(
      Buffer.concat([
        Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'),
        body,
        encodeFrame({ jsonrpc: '2.0', id: 'after', method: HostInfoRequest.method, params: {} }),
      ]),
    );
    const refused = await p.waitForFrame(tooLarge);
    assert.deepEqual((refused.error as { data: unknown }).data, { name: 'LimitExceeded', limit: 'messageBytes', max: MAX_MESSAGE_BYTES });
    const after = await p.waitForFrame((m) => m.id === 'after');
    assert.equal((after.result as { name: string }).name, 'toka');
  });

  it('answers LimitExceeded at the header, without waiting for the declared body', async () => {
    const p = await ready();
    await p.writeRaw(`Content-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    // Only a sliver of the 64 MiB ever arrives, slowly: the answer cannot be waiting for the rest.
    for (let i = 0; i < 4; i++) {
      await p.writeRaw(Buffer.alloc(16 * 1024, 0x20));
      await new Promise((r) => setTimeout(r, 20));
    }
    const refused = await p.waitForFrame(tooLarge, 5000);
    assert.deepEqual((refused.error as { data: unknown }).data, { name: 'LimitExceeded', limit: 'messageBytes', max: MAX_MESSAGE_BYTES });
  });
});
