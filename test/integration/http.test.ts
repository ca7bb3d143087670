/**
 * The HTTP face of a real `toka serve` process: /healthz, /metrics, the JWKS, the Host/Origin checks, 404/405;
 * plus in-process checks of the route() hook, allowedOrigins and readiness.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { startHttpServer } from '../../server/adapters/http.js';
import { waitFor } from '../helpers/wait.js';
import { cliMint, connectWs, spawnServe, type ServeProcess } from '../helpers/ws-client.js';
import { CapabilityMintRequest, KernelSubmitRequest } from '../../protocol/rpc/index.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request (fetch cannot set the Host header). */
function raw(url: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Parse Prometheus text format 0.0.4 strictly: every line is HELP, TYPE or a sample. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})?) (-?[0-9.e+]+|\+Inf|NaN)$/.exec(line);
    assert.ok(m, `not a Prometheus line: ${line}`);
    samples.set(m[1], Number(m[2]));
  }
  return samples;
}

describe('http (toka serve)', function () {
  this.timeout(30_000);
  let serve: ServeProcess;
  let token: string;

  before(async () => {
    serve = await spawnServe();
    token = await cliMint(serve.dataDir, { sub: 'ops', vault: 'v', perm: '*' });
  });
  after(async () => {
    if (serve) assert.equal(await serve.stop(), 0);
  });

  it('GET /healthz answers 200 with ok, ready, seq and store', async () => {
    const res = await fetch(`${serve.url}/healthz`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.ok, true);
    assert.equal(body.ready, true);
    assert.equal(body.store, 'sqlite');
    assert.equal(typeof body.seq, 'number');
  });

  it('GET /metrics is Prometheus text that counts operations and connections', async () => {
    const c = await connectWs(serve.wsUrl, token);
    try {
      await c.request(KernelSubmitRequest.type, { op: { type: 'ScheduleAgentTask', agent: 'root', task: { description: 'count me' } } });
      await c.request(KernelSubmitRequest.type, { op: { type: 'NoSuchOp' } }).catch(() => undefined);
      const res = await fetch(`${serve.url}/metrics`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      const m = parseMetrics(await res.text());
      assert.ok((m.get('toka_operations_total{type="ScheduleAgentTask"}') ?? 0) >= 1);
      assert.ok((m.get('toka_errors_total{name="UnsupportedOperation"}') ?? 0) >= 1);
      assert.equal(m.get('toka_connections{transport="ws"}'), 1);
      assert.equal(m.get('toka_ready'), 1);
      const health = (await (await fetch(`${serve.url}/healthz`)).json()) as { seq: number };
      assert.equal(m.get('toka_log_seq'), health.seq);
      // Group-commit counters: this host committed records, each commit held at least one append and record.
      const commits = m.get('toka_log_commits_total') ?? 0;
      assert.ok(commits >= 1, 'toka_log_commits_total');
      assert.ok((m.get('toka_log_appends_total') ?? 0) >= commits);
      assert.ok((m.get('toka_log_records_total') ?? 0) >= (m.get('toka_log_appends_total') ?? 0));
      assert.ok((m.get('toka_operation_duration_ms_count') ?? 0) >= 1);
    } finally {
      await c.close();
    }
  });

  it('GET /_internal/.well-known/jwks.json publishes the EdDSA public key and no secret', async () => {
    const c = await connectWs(serve.wsUrl, token);
    let eddsaKid: string;
    try {
      const minted = await c.request(CapabilityMintRequest.type, { subject: 'ed', permissions: ['state:read'], alg: 'EdDSA' });
      eddsaKid = decodeProtectedHeader(minted.token).kid!;
    } finally {
      await c.close();
    }
    const res = await fetch(`${serve.url}/_internal/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const jwks = JSON.parse(text) as { keys: Record<string, unknown>[] };
    assert.ok(jwks.keys.some((k) => k.kid === eddsaKid && k.kty === 'OKP'));
    // no secret stored in the key ring (HS256 secret, EdDSA private key) appears in the answer
    const published = new Set(jwks.keys.map((k) => k.x));
    const secrets: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string' && v.length >= 32 && !published.has(v)) secrets.push(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(JSON.parse(readFileSync(join(serve.dataDir, 'keys.json'), 'utf8')));
    assert.ok(secrets.length >= 2, 'the key ring holds an HS256 secret and an EdDSA private key');
    for (const secret of secrets) assert.ok(!text.includes(secret), 'a key-ring secret leaked into the JWKS');
    for (const key of jwks.keys) {
      assert.notEqual(key.kty, 'oct');
      assert.equal(key.k, undefined);
      assert.equal(key.d, undefined);
      assert.notEqual(key.alg, 'HS256');
    }
  });

  it('refuses a foreign Host header (DNS rebinding) with 403 on every path', async () => {
    for (const path of ['/healthz', '/metrics', '/_internal/.well-known/jwks.json', '/oauth/revoke', '/nope']) {
      const res = await raw(serve.url, path, { headers: { host: `evil.com:${serve.port}` } });
      assert.equal(res.status, 403, path);
      assert.equal(JSON.parse(res.body).error.name, 'Forbidden');
    }
    assert.equal((await raw(serve.url, '/healthz', { headers: { host: `evil.com` } })).status, 403);
    assert.equal((await raw(serve.url, '/healthz', { headers: { host: `localhost:${serve.port}` } })).status, 200);
    assert.equal((await raw(serve.url, '/healthz', { headers: { host: `[::1]:${serve.port}` } })).status, 200);
  });

  it('refuses a foreign browser Origin with 403 and accepts same-origin loopback', async () => {
    const evil = await raw(serve.url, '/healthz', { headers: { host: `127.0.0.1:${serve.port}`, origin: 'http://evil.com' } });
    assert.equal(evil.status, 403);
    const nul = await raw(serve.url, '/healthz', { headers: { host: `127.0.0.1:${serve.port}`, origin: 'null' } });
    assert.equal(nul.status, 403);
    const same = await raw(serve.url, '/healthz', { headers: { host: `127.0.0.1:${serve.port}`, origin: `http://127.0.0.1:${serve.port}` } });
    assert.equal(same.status, 200);
  });

  it('answers 404 for an unknown path and 405 (with Allow) for a wrong method, as JSON', async () => {
    const missing = await fetch(`${serve.url}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { name: string } }).error.name, 'NotFound');
    const wrong = await fetch(`${serve.url}/healthz`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
    assert.equal(((await wrong.json()) as { error: { name: string } }).error.name, 'MethodNotAllowed');
    const revokeGet = await fetch(`${serve.url}/oauth/revoke`);
    assert.equal(revokeGet.status, 405);
  });

  it('/oauth/revoke wants a form body', async () => {
    const res = await fetch(`${serve.url}/oauth/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
  });
});

describe('http (in process)', () => {
  let host: Host;
  before(async () => {
    host = await Host.open({ dataDir: null, logger: createLogger({ level: 'silent' }) });
  });

  it('route() mounts exact-path routes; duplicates are refused; allowedOrigins admits a configured origin', async () => {
    const server = await startHttpServer(host, {
      host: '127.0.0.1',
      port: 0,
      logger: createLogger({ level: 'silent' }),
      allowedOrigins: ['https://app.example'],
    });
    try {
      server.route('POST', '/mcp', async (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`mounted ${req.method}`);
      });
      assert.throws(() => server.route('POST', '/mcp', () => undefined), /already registered/);
      const ok = await fetch(`${server.url}/mcp`, { method: 'POST', headers: { origin: 'https://app.example' } });
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'mounted POST');
      assert.equal((await fetch(`${server.url}/mcp/sub`, { method: 'POST' })).status, 404);
      assert.equal((await fetch(`${server.url}/mcp`)).status, 405);
      assert.equal((await fetch(`${server.url}/mcp`, { method: 'POST', headers: { origin: 'https://other.example' } })).status, 403);
    } finally {
      await server.close();
    }
  });

  it('caps open connections: the connection beyond maxHttpConnections is closed unanswered, the others keep working', async () => {
    const CAP = 3;
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (line) => void lines.push(line) });
    const server = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger, maxHttpConnections: CAP });
    const sockets: Socket[] = [];
    try {
      const open = async () => {
        const socket = connect(server.port, '127.0.0.1');
        sockets.push(socket);
        await once(socket, 'connect');
        return socket;
      };
      /** One keep-alive GET /healthz on `socket`: the status line of its answer, or null if the socket closed first. */
      const healthz = (socket: Socket) =>
        new Promise<string | null>((resolve) => {
          let text = '';
          const onData = (chunk: Buffer) => {
            text += chunk.toString('latin1');
            if (/\r\n\r\n[\s\S]*\}$/.test(text)) {
              socket.off('data', onData);
              resolve(text.split('\r\n')[0]);
            }
          };
          socket.on('data', onData);
          socket.once('close', () => resolve(null));
          socket.on('error', () => undefined);
          socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: keep-alive\r\n\r\n`);
        });
      const held = [];
      for (let i = 0; i < CAP; i++) held.push(await open());
      for (const socket of held) assert.equal(await healthz(socket), 'HTTP/1.1 200 OK');
      const extra = await open();
      assert.equal(await healthz(extra), null, 'the connection beyond the cap is closed without an answer');
      for (const socket of held) assert.equal(await healthz(socket), 'HTTP/1.1 200 OK', 'the held connections still work');
      assert.ok(lines.some((l) => /"limit":"http.maxHttpConnections"/.test(l)), lines.join('\n'));
      // A held connection that closes frees its slot.
      held[0].destroy();
      await waitFor(async () => (await healthz(await open())) === 'HTTP/1.1 200 OK', 5000, 'a freed slot');
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('GET /healthz answers 503 when the host is not ready', async () => {
    const server = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }) });
    try {
      await host.close();
      const res = await fetch(`${server.url}/healthz`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { ready: boolean; reason: string };
      assert.equal(body.ready, false);
      assert.equal(body.reason, 'shutting down');
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^toka_ready 0$/m);
    } finally {
      await server.close();
    }
  });
});
