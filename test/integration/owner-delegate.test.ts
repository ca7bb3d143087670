/**
 * Delegation from the owner's session (the stdio language-server face without a token, as the VS Code
 * extension's bundled host uses it): the owner holds no token and no grant, so its delegated token is backed
 * by a grant of its own. The token is then used over a real WebSocket, and revoking it from stdio ends it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { CapabilityDelegateRequest, CapabilityListRequest, CapabilityRevokeRequest, HostInfoRequest, StateGetRequest, type DelegateParams } from '../../protocol/rpc/index.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { serveStdio } from '../../server/adapters/stdio.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { connectWs } from '../helpers/ws-client.js';

describe('toka/capability/delegate from the owner session (stdio, no token)', () => {
  const silent = createLogger({ level: 'silent' });
  let dir: string;
  let host: Host;
  let http: HttpServer;
  let stdio: MessageConnection;
  let input: PassThrough;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-owner-delegate-'));
    host = await Host.open({ dataDir: dir, logger: silent });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: silent });
    input = new PassThrough();
    const output = new PassThrough();
    void serveStdio(host, { logger: silent, input, output });
    stdio = createMessageConnection(new StreamMessageReader(output), new StreamMessageWriter(input));
    stdio.listen();
    await stdio.sendRequest('initialize', { processId: null, rootUri: null, capabilities: {}, initializationOptions: { vault: 'd' } });
    await stdio.sendNotification('initialized', {});
  });

  after(async () => {
    stdio?.dispose();
    input?.end();
    await http?.close();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a token that works on another face, is narrowed as asked, and dies when revoked', async () => {
    const owner = await stdio.sendRequest(HostInfoRequest.type, {});
    assert.equal(owner.session.principal, 'local-admin');
    const before = Math.floor(Date.now() / 1000);
    const child = await stdio.sendRequest(CapabilityDelegateRequest.type, { subject: 'helper', permissions: ['state:read'], ttlSeconds: 120 });
    assert.deepEqual([child.claims.sub, child.claims.vault, child.claims.permissions], ['helper', 'd', ['state:read']]);
    assert.ok(child.claims.exp <= before + 121 && child.claims.exp >= before + 119, 'expires after the ttl asked for');

    // The token's grant is a real, listed grant that expires with it.
    const grant = (await stdio.sendRequest(CapabilityListRequest.type, {})).grants.find((g) => g.id === child.claims.grant);
    assert.ok(grant, 'the delegated token names a grant of the vault');
    assert.equal(grant.subject, 'helper');
    assert.equal(grant.label, 'delegated by local-admin');
    assert.ok(grant.expiresAt !== undefined && grant.expiresAt <= (child.claims.exp + 1) * 1000);

    // Used over a real WebSocket: it authenticates and holds exactly what was delegated.
    const ws = await connectWs(`${http.url.replace('http', 'ws')}/rpc`, child.token);
    try {
      const info = await ws.request(HostInfoRequest.type, {});
      assert.deepEqual([info.session.principal, info.session.vault, info.session.permissions], ['helper', 'd', ['state:read']]);
      await ws.request(StateGetRequest.type, {});
      await assert.rejects(ws.request(CapabilityListRequest.type, {}), (err: unknown) => err instanceof ResponseError && (err.data as { name?: string }).name === 'CapabilityDenied');

      await stdio.sendRequest(CapabilityRevokeRequest.type, { jti: child.claims.jti, reason: 'done' });
      await assert.rejects(ws.request(StateGetRequest.type, {}), (err: unknown) => err instanceof ResponseError && (err.data as { name?: string }).name === 'Unauthenticated');
    } finally {
      await ws.close();
    }
  });

  it('still refuses what the kernel refuses: a bad ttl, an unknown permission', async () => {
    const cases: [DelegateParams, string][] = [
      [{ subject: 'helper', permissions: ['state:read'], ttlSeconds: 1801 }, 'InvalidParams'],
      [{ subject: 'helper', permissions: ['no:such'] }, 'InvalidOperation'],
    ];
    for (const [params, name] of cases) {
      await assert.rejects(stdio.sendRequest(CapabilityDelegateRequest.type, params), (err: unknown) => err instanceof ResponseError && (err.data as { name?: string }).name === name, JSON.stringify(params));
    }
    assert.equal((await stdio.sendRequest(HostInfoRequest.type, {})).name, 'toka');
  });
});
