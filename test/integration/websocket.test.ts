/**
 * The WebSocket face of a real `toka serve` process (real sockets): authentication at the upgrade, origin
 * checks, payload and backpressure bounds, resumable subscriptions, JSON-RPC errors, concurrency, revocation
 * of an open connection's token, and shutdown (1001).
 */
import assert from 'node:assert/strict';
import { ResponseError } from 'vscode-jsonrpc';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { CLOCK_SKEW_S } from '../../protocol/capability.js';
import { startHttpServer } from '../../server/adapters/http.js';
import {
  cliMint,
  connectRaw,
  connectWs,
  spawnServe,
  tryUpgrade,
  type ServeProcess,
  type TokaWsClient,
} from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import {
  CapabilityMintRequest,
  CapabilityRevokeRequest,
  EventsEventNotification,
  EventsQueryRequest,
  EventsSubscribeRequest,
  HostInfoRequest,
  KernelSubmitRequest,
  StateGetRequest,
} from '../../protocol/rpc/index.js';

interface Rec {
  seq: number;
  event: { type: string; opId: string; [k: string]: unknown };
}

const VAULT = 'v1';

function onEvent(c: TokaWsClient, fn: (record: Rec) => void): void {
  c.connection.onNotification(EventsEventNotification.type, (p: unknown) => fn((p as { record: Rec }).record));
}

describe('websocket /rpc (toka serve)', function () {
  this.timeout(60_000);
  let serve: ServeProcess;
  let admin: string;
  let other: string;
  /** Tokens refused at an upgrade: they must not show up in the logs either. */
  const refusedTokens: string[] = [];
  const open: TokaWsClient[] = [];

  const client = async (token = admin) => {
    const c = await connectWs(serve.wsUrl, token);
    open.push(c);
    return c;
  };
  const mint = async (c: TokaWsClient, subject: string, permissions: string[], ttlSeconds?: number) =>
    c.request(CapabilityMintRequest.type, { subject, permissions, ttlSeconds });
  const submit = (c: TokaWsClient, op: unknown) => c.request(KernelSubmitRequest.type, { op });
  const task = (description: string) => ({ type: 'ScheduleAgentTask', agent: 'root', task: { description } });
  const healthy = async () => (await fetch(`${serve.url}/healthz`)).status === 200;

  before(async () => {
    serve = await spawnServe();
    [admin, other] = await Promise.all([
      cliMint(serve.dataDir, { sub: 'admin', vault: VAULT, perm: '*' }),
      cliMint(serve.dataDir, { sub: 'stranger', vault: 'v2', perm: '*' }),
    ]);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });

  after(async () => {
    if (serve) await serve.stop();
  });

  describe('upgrade', () => {
    it('refuses a missing or malformed token with 401 and WWW-Authenticate, without upgrading', async () => {
      const none = await tryUpgrade(serve.wsUrl);
      assert.equal(none.status, 401);
      assert.match(String(none.headers['www-authenticate']), /^Bearer/);
      const bad = await tryUpgrade(serve.wsUrl, { token: 'not.a.jwt' });
      assert.equal(bad.status, 401);
      assert.match(String(bad.headers['www-authenticate']), /error="invalid_token"/);
      assert.equal(JSON.parse(bad.body).error.name, 'Unauthenticated');
      assert.ok(await healthy());
    });

    it('refuses a revoked token with 401', async () => {
      const c = await client();
      const m = await mint(c, 'doomed', ['state:read']);
      await c.request(CapabilityRevokeRequest.type, { token: m.token });
      const r = await tryUpgrade(serve.wsUrl, { token: m.token });
      refusedTokens.push(m.token);
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /invalid_token/);
    });

    it('refuses a foreign Origin and a foreign Host with 403; accepts same-origin loopback', async () => {
      const origin = await tryUpgrade(serve.wsUrl, { token: admin, ws: { origin: 'https://evil.example' } });
      assert.equal(origin.status, 403);
      const hostHeader = await tryUpgrade(serve.wsUrl, { token: admin, headers: { host: `evil.com:${serve.port}` } });
      assert.equal(hostHeader.status, 403);
      const same = await connectWs(serve.wsUrl, admin, { ws: { origin: `http://localhost:${serve.port}` } });
      open.push(same);
      assert.equal((await same.request(HostInfoRequest.type, {})).name, 'toka');
    });

    it('accepts the token as a subprotocol (browsers) and selects "toka"', async () => {
      const c = await connectWs(serve.wsUrl, admin, { viaSubprotocol: true });
      open.push(c);
      assert.equal(c.ws.protocol, 'toka');
      const info = await c.request(HostInfoRequest.type, {});
      assert.deepEqual([info.session.principal, info.session.vault], ['admin', VAULT]);
    });
  });

  describe('JSON-RPC errors', () => {
    it('answers malformed JSON, batches, unknown methods and bad params, and keeps the connection', async () => {
      const raw = await connectRaw(serve.wsUrl, admin);
      raw.send('{"jsonrpc":"2.0","id":1,"method":');
      const parse = await raw.next();
      assert.equal(parse.id, null);
      assert.equal((parse.error as { code: number }).code, -32700);

      raw.send('[{"jsonrpc":"2.0","id":2,"method":"toka/host/info"}]');
      assert.equal(((await raw.next()).error as { code: number }).code, -32600);

      raw.send('{"jsonrpc":"2.0","id":null,"method":"toka/host/info"}');
      const nullId = await raw.next();
      assert.deepEqual([nullId.id, (nullId.error as { code: number }).code], [null, -32600]);

      raw.send('"just a string"');
      assert.equal(((await raw.next()).error as { code: number }).code, -32600);

      raw.send('{"jsonrpc":"2.0","id":3,"method":"toka/nope","params":{}}');
      const unknown = await raw.next();
      assert.equal(unknown.id, 3);
      assert.equal((unknown.error as { code: number }).code, -32601);

      raw.send('{"jsonrpc":"2.0","id":4,"method":"toka/events/query","params":{"limit":"ten"}}');
      const params = await raw.next();
      assert.equal(params.id, 4);
      assert.equal((params.error as { code: number }).code, -32602);
      assert.deepEqual((params.error as { data: unknown }).data, { name: 'InvalidParams', field: 'limit' });

      raw.send('{"jsonrpc":"2.0","id":5,"method":"toka/kernel/submit","params":{"op":"x"}}');
      assert.equal(((await raw.next()).error as { code: number }).code, -32602);

      raw.send('{"jsonrpc":"2.0","id":6,"method":"toka/host/info","params":{}}');
      const info = await raw.next();
      assert.equal(info.id, 6);
      assert.equal((info.result as { name: string }).name, 'toka');
      raw.ws.close();
      await raw.closed;
      assert.ok(await healthy());
    });

    it('closes a client that sends an oversized frame with 1009 and keeps serving others', async () => {
      const big = await connectRaw(serve.wsUrl, admin);
      const bystander = await client();
      big.send(Buffer.alloc(2 * 1024 * 1024 + 1, 0x20));
      const closed = await big.closed;
      assert.equal(closed.code, 1009);
      assert.equal((await bystander.request(HostInfoRequest.type, {})).name, 'toka');
      assert.ok(await healthy());
    });
  });

  describe('subscriptions', () => {
    it('resumes with afterSeq after a disconnect: exactly the missed events, no gap, no duplicate', async () => {
      const producer = await client();
      const sub1 = await client();
      const seen: number[] = [];
      onEvent(sub1, (r) => seen.push(r.seq));
      await sub1.request(EventsSubscribeRequest.type, { types: ['TaskScheduled'] });
      for (let i = 0; i < 5; i++) await submit(producer, task(`before-${i}`));
      await waitFor(() => seen.length === 5, 5000, 'five live events');
      const last = seen[seen.length - 1];
      await sub1.close();

      const missed: number[] = [];
      for (let i = 0; i < 7; i++) missed.push((await submit(producer, task(`while-away-${i}`))).records.at(-1)!.seq);

      const sub2 = await client();
      const resumed: number[] = [];
      onEvent(sub2, (r) => resumed.push(r.seq));
      await sub2.request(EventsSubscribeRequest.type, { afterSeq: last, types: ['TaskScheduled'] });
      const live = (await submit(producer, task('after'))).records.at(-1)!.seq;
      // Events arrive in log order: once a later sentinel arrived, any duplicate of the earlier ones would have too.
      const sentinel = (await submit(producer, task('sentinel'))).records.at(-1)!.seq;
      await waitFor(() => resumed.includes(sentinel), 5000, 'the missed, live and sentinel events');
      assert.deepEqual(resumed, [...missed, live, sentinel]);
    });

    it('cuts off a client that stops reading (1008) while another client keeps being served', async () => {
      const slow = await client();
      for (let i = 0; i < 8; i++) await slow.request(EventsSubscribeRequest.type, { types: ['ObservationEmitted'] });
      const producer = await client();
      const bystander = await client();
      const got: number[] = [];
      onEvent(bystander, (r) => got.push(r.seq));
      await bystander.request(EventsSubscribeRequest.type, { types: ['ObservationEmitted'] });
      (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

      const blob = 'x'.repeat(900 * 1024);
      const seqs: number[] = [];
      for (let i = 0; i < 16; i++) {
        seqs.push((await submit(producer, { type: 'EmitObservation', agent: 'root', data: { i, blob } })).records.at(-1)!.seq);
      }
      await waitFor(() => got.length === seqs.length, 20_000, 'the bystander to get every event');
      assert.deepEqual(got, seqs);
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      const closed = await slow.closed;
      assert.equal(closed.code, 1008);
      assert.equal(closed.reason, 'client not reading');
      // The server logs after closing: wait for the line rather than race the close.
      await waitFor(() => /client not reading; cut off/.test(serve.stderr()), 5000, 'the cut-off log line');
      assert.ok(await healthy());
    });
  });

  describe('load and revocation', () => {
    it('100 concurrent clients × 5 ops: every acknowledged op is in the log exactly once', async function () {
      this.timeout(60_000);
      const scheduled = async () => {
        const m = /^toka_operations_total\{type="ScheduleAgentTask"\} (\d+)$/m.exec(await (await fetch(`${serve.url}/metrics`)).text());
        return m ? Number(m[1]) : 0;
      };
      const countedBefore = await scheduled();
      const a = await client();
      const tokens: string[] = [];
      for (let i = 0; i < 100; i++) tokens.push((await mint(a, `c${i}`, ['task:schedule', 'events:read'])).token);
      const clients = await Promise.all(tokens.map((t) => connectWs(serve.wsUrl, t)));
      open.push(...clients);
      const acked = (
        await Promise.all(
          clients.map(async (c, i) => {
            const ids: string[] = [];
            for (let j = 0; j < 5; j++) ids.push((await submit(c, task(`c${i}-op${j}`))).opId);
            return ids;
          }),
        )
      ).flat();
      assert.equal(acked.length, 500);
      assert.equal(new Set(acked).size, 500);

      const count = new Map<string, number>();
      let after = 0;
      for (;;) {
        const { records } = await a.request(EventsQueryRequest.type, { afterSeq: after, limit: 1000, types: ['TaskScheduled'] });
        for (const r of records) count.set(r.event.opId, (count.get(r.event.opId) ?? 0) + 1);
        if (records.length < 1000) break;
        after = records[records.length - 1].seq;
      }
      for (const id of acked) assert.equal(count.get(id), 1, `op ${id} must be logged exactly once`);
      await Promise.all(clients.map((c) => c.close()));
      assert.equal((await scheduled()) - countedBefore, acked.length, 'toka_operations_total counts each acknowledged op once');
    });

    it('a token revoked via POST /oauth/revoke is refused on the next request of an open connection', async () => {
      const a = await client();
      const m = await mint(a, 'revokee', ['state:read', 'events:read']);
      const victim = await client(m.token);
      await victim.request(StateGetRequest.type, {});
      const res = await fetch(`${serve.url}/oauth/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${m.token}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: m.token, token_type_hint: 'access_token' }),
      });
      assert.equal(res.status, 200);
      await assert.rejects(victim.request(StateGetRequest.type, {}), (err: unknown) => {
        assert.ok(err instanceof ResponseError);
        assert.equal(err.code, -31910);
        assert.equal((err.data as { name: string }).name, 'Unauthenticated');
        return true;
      });
    });

    it('/oauth/revoke: 200 for unknown or already revoked tokens, 403 for another vault, 400 without token, 401 for a bad caller', async () => {
      const post = (auth: string | null, body: string) =>
        fetch(`${serve.url}/oauth/revoke`, {
          method: 'POST',
          headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
      const a = await client();
      const m = await mint(a, 'twice', ['state:read']);
      assert.equal((await post(admin, `token=${m.token}`)).status, 200);
      assert.equal((await post(admin, `token=${m.token}`)).status, 200);
      assert.equal((await post(admin, 'token=garbage')).status, 200);
      const foreign = await post(admin, `token=${other}`);
      assert.equal(foreign.status, 403);
      assert.equal(((await foreign.json()) as { error: string }).error, 'unauthorized_client');
      const missing = await post(admin, 'token_type_hint=access_token');
      assert.equal(missing.status, 400);
      assert.equal(((await missing.json()) as { error: string }).error, 'invalid_request');
      const anon = await post(null, `token=${m.token}`);
      assert.equal(anon.status, 401);
      assert.match(String(anon.headers.get('www-authenticate')), /^Bearer/);
      assert.equal((await post('bad.caller.token', `token=${other}`)).status, 401);
      const big = await post(admin, `token=${'a'.repeat(17 * 1024)}`);
      assert.equal(big.status, 413);
      // the foreign token was not revoked
      const c2 = await connectWs(serve.wsUrl, other);
      open.push(c2);
      assert.equal((await c2.request(HostInfoRequest.type, {})).name, 'toka');
    });

  });

  describe('last: shutdown', () => {
    it('on SIGTERM closes WebSocket clients with 1001 and exits 0', async () => {
      const c = await client();
      const code = await serve.stop();
      assert.equal((await c.closed).code, 1001);
      assert.equal(code, 0);
      for (const t of [admin, other, ...refusedTokens]) assert.ok(!serve.stderr().includes(t.split('.')[2]), 'a token leaked into the logs');
      assert.match(serve.stderr(), /"msg":"websocket closed".*"code":1001/);
    });
  });
});

describe('websocket /rpc limits (in process)', () => {
  let host: Host;
  /** The host's clock runs `skewMs` ahead of the real one. */
  let skewMs = 0;
  before(async () => {
    host = await Host.open({ dataDir: null, logger: createLogger({ level: 'silent' }), now: () => Date.now() + skewMs });
  });
  after(async () => host?.close());

  it('refuses an expired token with 401 at the upgrade (the host clock moved past exp + skew)', async () => {
    const lines: string[] = [];
    const server = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'info', write: (l) => void lines.push(l) }) });
    try {
      const { token, claims } = await host.mint(host.localSession('v'), { subject: 'brief', permissions: ['state:read'], ttlSeconds: 1 });
      const wsUrl = `${server.url.replace('http', 'ws')}/rpc`;
      // Inside the clock-skew leeway after exp the token is still accepted...
      skewMs = (claims.exp + CLOCK_SKEW_S) * 1000 - Date.now() - 2_000;
      await (await connectWs(wsUrl, token)).close();
      // ...and past it refused, for expiry.
      skewMs = (claims.exp + CLOCK_SKEW_S + 1) * 1000 - Date.now();
      const r = await tryUpgrade(wsUrl, { token });
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /invalid_token/);
      assert.ok(lines.some((l) => l.includes('websocket upgrade refused') && l.includes('ERR_TOKEN_EXPIRED')), lines.join(''));
    } finally {
      skewMs = 0;
      await server.close();
    }
  });

  it('refuses upgrades past maxConnections with 503 and frees the slot on close', async () => {
    const server = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }), maxConnections: 2 });
    try {
      const token = (await host.mint(host.localSession('v'), { subject: 'x', permissions: ['*'] })).token;
      const wsUrl = `${server.url.replace('http', 'ws')}/rpc`;
      const [c1, c2] = [await connectWs(wsUrl, token), await connectWs(wsUrl, token)];
      assert.equal(host.metrics.connectionCount('ws'), 2);
      const refused = await tryUpgrade(wsUrl, { token });
      assert.equal(refused.status, 503);
      await c1.close();
      await waitFor(() => host.metrics.connectionCount('ws') === 1, 5000, 'the slot to free');
      const c3 = await connectWs(wsUrl, token);
      await c3.request(HostInfoRequest.type, {});
      await Promise.all([c2.close(), c3.close()]);
    } finally {
      await server.close();
    }
  });

  it('terminates a client that misses a pong', async () => {
    const server = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }), pingIntervalMs: 100 });
    try {
      const token = (await host.mint(host.localSession('v'), { subject: 'y', permissions: ['*'] })).token;
      const c = await connectWs(`${server.url.replace('http', 'ws')}/rpc`, token);
      (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      await waitFor(() => host.metrics.connectionCount('ws') === 0, 5000, 'the silent client to be terminated');
      c.ws.terminate();
    } finally {
      await server.close();
    }
  });
});
