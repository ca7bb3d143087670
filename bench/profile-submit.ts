/**
 * Profiling aid for the submit hot path (not part of `npm run bench`):
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-submit.ts
 * Runs 60,000 EmitObservation submits from 256 concurrent submitters through the full host path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { SqliteEventLog } from '../server/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'toka-profile-'));
const log = SqliteEventLog.open(join(dir, 'events.db'));
const host = await Host.open({ dataDir: null, eventLog: log, logger: createLogger({ level: 'error' }), rateLimit: false });
const { token } = await host.mint(host.localSession('p'), { subject: 'p', permissions: ['observation:emit'], ttlSeconds: 1800 });
const session = await host.authenticate(token);
const data = { note: 'x'.repeat(200) };
const total = 60_000;
let left = total;
const started = performance.now();
await Promise.all(
  Array.from({ length: 256 }, async () => {
    while (left-- > 0) await host.submit(session, { type: 'EmitObservation', agent: 'root', data });
  }),
);
process.stderr.write(`${Math.round(total / ((performance.now() - started) / 1000))} ops/s, log ${JSON.stringify(log.stats())}\n`);
await host.close();
rmSync(dir, { recursive: true, force: true });
