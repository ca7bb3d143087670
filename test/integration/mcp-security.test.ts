/**
 * Security findings of issue 8 as seen through MCP (real HTTP face, SDK client). Cross-vault revoke by jti:
 * the fix lives in the host (a jti's vault must be known and checked); this file holds the MCP-level proof and
 * fails until that fix is merged.
 */
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { mountMcpHttp, type McpHttpMount } from '../../server/adapters/mcp/http.js';
import { createTokaRegistry } from '../../server/adapters/mcp/toka.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';

const logger = createLogger({ level: 'silent' });

describe('MCP security: cross-vault revoke by jti (revoke_capability)', function () {
  this.timeout(20_000);
  let host: Host;
  let http: HttpServer;
  let mcp: McpHttpMount;
  let url: URL;
  const clients: Client[] = [];

  before(async () => {
    host = await Host.open({ dataDir: null, logger, rateLimit: false });
    http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
    mcp = mountMcpHttp(http, host, { logger, registry: createTokaRegistry() });
    url = new URL(`${http.url}/mcp`);
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await mcp.close();
    await http.close();
    await host.close();
  });

  const mint = async (vault: string, subject: string, permissions: string[]) =>
    (await host.mint(host.localSession(vault), { subject, permissions, ttlSeconds: 900 })).token;
  const jtiOf = async (token: string) => (await host.authenticate(token)).claims.jti;
  const connect = async (token: string) => {
    const client = new Client({ name: 'toka-security-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  };
  /** The Toka error name of a tool result with `isError`, else null. */
  const errorName = (result: Awaited<ReturnType<Client['callTool']>>) =>
    result.isError ? (JSON.parse((result.content as { text: string }[])[1].text) as { error: { name: string } }).error.name : null;

  it("a vault-A token with capability:revoke cannot kill a vault-B token by its jti", async () => {
    const attacker = await connect(await mint('vault-a', 'attacker', ['capability:revoke', 'state:read']));
    const victimToken = await mint('vault-b', 'victim', ['*']);

    // Control: the same call works inside the attacker's own vault, so a refusal below is the vault check.
    const ownToken = await mint('vault-a', 'colleague', ['state:read']);
    const own = await attacker.callTool({ name: 'revoke_capability', arguments: { jti: await jtiOf(ownToken), reason: 'same vault' } });
    assert.equal(own.isError, undefined, JSON.stringify(own));
    await assert.rejects(host.authenticate(ownToken), /revoked/i);

    // A revocation by jti is scoped to the revoker's vault (docs/security-model.md): the host cannot know the
    // vault of a jti it never saw, so the call records a revocation in vault A, which no vault-B token matches.
    const cross = await attacker.callTool({ name: 'revoke_capability', arguments: { jti: await jtiOf(victimToken), reason: 'cross vault' } });
    assert.ok(!cross.isError || ['CapabilityDenied', 'UnknownEntity'].includes(errorName(cross) ?? ''), JSON.stringify(cross));

    // The vault-B token is alive: it authenticates and works over MCP.
    await host.authenticate(victimToken);
    const victim = await connect(victimToken);
    const state = await victim.callTool({ name: 'get_state', arguments: {} });
    assert.ok(!state.isError, JSON.stringify(state));
  });
});
