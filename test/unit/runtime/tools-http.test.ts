import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpTool } from '../../../server/runtime/tools/http.js';
import { ctx, rejectsWith } from './tools-helpers.js';

/** A real local HTTP server whose routes the tests choose. */
async function serve(handler: http.RequestListener): Promise<{ base: string; port: number; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    hits,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('runtime/tools: http_fetch', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    srv = await serve((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`${req.method}|${req.headers['x-test'] ?? ''}|${req.headers.authorization ?? ''}|${Buffer.concat(chunks).toString()}`);
        });
      } else if (u.pathname === '/redirect') {
        res.writeHead(Number(u.searchParams.get('status') ?? 302), { location: u.searchParams.get('to') ?? '/echo' });
        res.end();
      } else if (u.pathname === '/loop') {
        res.writeHead(302, { location: '/loop' });
        res.end();
      } else if (u.pathname === '/big') {
        res.end('y'.repeat(10_000));
      } else if (u.pathname === '/hang') {
        res.writeHead(200);
        res.write('partial');
      } else if (u.pathname === '/missing') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('nope');
      }
    });
  });
  after(() => srv.close());

  const local = () => createHttpTool({ allowHosts: ['127.0.0.1'], allowAddresses: ['127.0.0.1/32'] });

  it('fetches with GET and POST from an allowed host in an allowed range', async () => {
    const tool = local();
    const get = await tool.call({ url: `${srv.base}/echo`, headers: { 'X-Test': 'hi' } }, ctx('/'));
    assert.equal(get.isError, false);
    assert.equal(get.content, 'HTTP 200 OK\ncontent-type: text/plain\n\nGET|hi||');
    const post = await tool.call({ url: `${srv.base}/echo`, method: 'POST', body: 'payload' }, ctx('/'));
    assert.match(post.content, /\n\nPOST\|\|\|payload$/);
    const missing = await tool.call({ url: `${srv.base}/missing` }, ctx('/'));
    assert.equal(missing.isError, true);
    assert.equal((missing.data as { status: number }).status, 404);
    assert.equal(tool.manifest.sideEffect, 'external');
    assert.equal(tool.manifest.permission, 'tool:http');
  });

  it('denies loopback and private addresses unless configured, before connecting', async () => {
    const before = srv.hits.length;
    const tool = createHttpTool({ allowHosts: ['127.0.0.1', 'localhost', '10.1.2.3', '[::1]', '::1'] });
    const e = await rejectsWith(tool.call({ url: `${srv.base}/echo` }, ctx('/')), 'Denied');
    assert.match(e.message, /127\.0\.0\.1 is in a denied address range/);
    // A name is checked at resolution time (our lookup), not only as a literal.
    const named = await rejectsWith(tool.call({ url: `http://localhost:${srv.port}/echo` }, ctx('/')), 'Denied');
    assert.match(named.message, /localhost resolves to .* a denied address range/);
    await rejectsWith(tool.call({ url: 'http://10.1.2.3/' }, ctx('/')), 'Denied');
    await rejectsWith(tool.call({ url: `http://[::1]:${srv.port}/` }, ctx('/')), 'Denied');
    await rejectsWith(tool.call({ url: `http://[::ffff:127.0.0.1]:${srv.port}/` }, ctx('/')), 'Denied');
    assert.equal(srv.hits.length, before, 'no request reached the server');
  });

  it('denies hosts outside the allow-list, other schemes and credentials in the URL', async () => {
    const tool = local();
    const e = await rejectsWith(tool.call({ url: `http://localhost:${srv.port}/echo` }, ctx('/')), 'Denied');
    assert.match(e.message, /host localhost is not in the allow-list/);
    await rejectsWith(tool.call({ url: 'file:///etc/passwd' }, ctx('/')), 'Denied');
    await rejectsWith(tool.call({ url: `http://user:pw@127.0.0.1:${srv.port}/echo` }, ctx('/')), 'Denied');
    await rejectsWith(tool.call({ url: 'not a url' }, ctx('/')), 'InvalidArguments');
    await rejectsWith(tool.call({ url: `${srv.base}/echo`, headers: { Host: 'evil' } }, ctx('/')), 'InvalidArguments');
  });

  it('follows redirects, re-checking each hop: a redirect to a denied host or range is refused', async () => {
    const tool = local();
    const ok = await tool.call({ url: `${srv.base}/redirect?to=/echo`, headers: { authorization: 'Bearer x' } }, ctx('/'));
    assert.match(ok.content, /\n\nGET\|\|Bearer x\|$/);
    const before = srv.hits.length;
    const toName = await rejectsWith(tool.call({ url: `${srv.base}/redirect?to=${encodeURIComponent(`http://localhost:${srv.port}/echo`)}` }, ctx('/')), 'Denied');
    assert.match(toName.message, /not in the allow-list/);
    const wide = createHttpTool({ allowHosts: ['127.0.0.1', '169.254.169.254'], allowAddresses: ['127.0.0.1/32'] });
    const toMeta = await rejectsWith(wide.call({ url: `${srv.base}/redirect?to=${encodeURIComponent('http://169.254.169.254/latest/meta-data')}` }, ctx('/')), 'Denied');
    assert.match(toMeta.message, /169\.254\.169\.254 is in a denied address range/);
    assert.equal(srv.hits.length, before + 2, 'only the redirecting requests were made');
    await rejectsWith(tool.call({ url: `${srv.base}/loop` }, ctx('/')), 'LimitExceeded');
  });

  it('drops credential headers when a redirect changes origin', async () => {
    const other = await serve((req, res) => res.end(`auth=${req.headers.authorization ?? ''} cookie=${req.headers.cookie ?? ''} x=${req.headers['x-test'] ?? ''}`));
    try {
      const to = encodeURIComponent(`${other.base}/`);
      const r = await local().call({ url: `${srv.base}/redirect?to=${to}`, headers: { Authorization: 'Bearer x', Cookie: 'c=1', 'X-Test': 'kept' } }, ctx('/'));
      assert.match(r.content, /\n\nauth= cookie= x=kept$/);
    } finally {
      await other.close();
    }
  });

  it('turns POST into GET on 303 and keeps it on 307', async () => {
    const tool = local();
    const r303 = await tool.call({ url: `${srv.base}/redirect?status=303&to=/echo`, method: 'POST', body: 'b' }, ctx('/'));
    assert.match(r303.content, /\n\nGET\|\|\|$/);
    const r307 = await tool.call({ url: `${srv.base}/redirect?status=307&to=/echo`, method: 'POST', body: 'b' }, ctx('/'));
    assert.match(r307.content, /\n\nPOST\|\|\|b$/);
  });

  it('caps the response body with a marker and the request body with an error', async () => {
    const r = await local().call({ url: `${srv.base}/big` }, ctx('/', { httpResponseBytes: 100 }));
    assert.match(r.content, /\n\ny{100}\n\[response truncated at 100 bytes \(limit httpResponseBytes\)\]$/);
    assert.equal((r.data as { truncated: boolean }).truncated, true);
    const e = await rejectsWith(local().call({ url: `${srv.base}/echo`, method: 'POST', body: 'z'.repeat(11) }, ctx('/', { httpRequestBytes: 10 })), 'LimitExceeded');
    assert.equal(e.data?.limit, 'httpRequestBytes');
  });

  it('times out and cancels a fetch that never ends', async () => {
    const started = Date.now();
    const e = await rejectsWith(local().call({ url: `${srv.base}/hang` }, ctx('/', { httpTimeoutMs: 300 })), 'Timeout');
    assert.equal(e.data?.limit, 'httpTimeoutMs');
    assert.ok(Date.now() - started < 2000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await rejectsWith(local().call({ url: `${srv.base}/hang` }, ctx('/', {}, ac.signal)), 'Cancelled');
  });
});
