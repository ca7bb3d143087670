/**
 * Profiling aid for MCP over Streamable HTTP (not part of `npm run bench`):
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-mcp-http.ts
 * A host with its HTTP face and /mcp in this process, 20,000 `tools/call get_state` from the benchmark's lean
 * client, 8 in flight (the client's own time shows in the profile too: read the server's functions).
 */
import { startHttpServer } from '../server/adapters/http.js';
import { mountMcpHttp } from '../server/adapters/mcp/http.js';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { LeanMcpClient } from './mcp.js';

const logger = createLogger({ level: 'error' });
const host = await Host.open({ dataDir: null, logger, rateLimit: false });
const { token } = await host.mint(host.localSession('p'), { subject: 'p', permissions: ['state:read', 'agent:spawn'], ttlSeconds: 1800 });
const session = await host.authenticate(token);
for (let i = 0; i < 10; i++) await host.submit(session, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } });
const http = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger });
const mount = mountMcpHttp(http, host, { logger });
const client = new LeanMcpClient(`${http.url}/mcp`, token);
await client.open();
const total = 20_000;
let left = total;
const started = performance.now();
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (left-- > 0) await client.call();
  }),
);
process.stderr.write(`${Math.round(total / ((performance.now() - started) / 1000))} calls/s\n`);
client.close();
await mount.close();
await http.close();
await host.close();
