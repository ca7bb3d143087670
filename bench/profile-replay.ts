/**
 * Profiling aid for replay (not part of `npm run bench`):
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-replay.ts
 * Builds a 60,000-event log, then replays it from zero five times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'toka-profile-'));
const host = await Host.open({ dataDir: dir, logger: createLogger({ level: 'error' }), rateLimit: false });
const { token } = await host.mint(host.localSession('p'), { subject: 'p', permissions: ['observation:emit'], ttlSeconds: 1800 });
const session = await host.authenticate(token);
const data = { note: 'x'.repeat(200) };
let left = 60_000;
await Promise.all(
  Array.from({ length: 256 }, async () => {
    while (left-- > 0) await host.submit(session, { type: 'EmitObservation', agent: 'root', data });
  }),
);
const started = performance.now();
for (let i = 0; i < 5; i++) await Host.replay(host.log, [], 'zero');
process.stderr.write(`${Math.round((5 * host.log.head().seq) / ((performance.now() - started) / 1000))} events/s replayed\n`);
await host.close();
rmSync(dir, { recursive: true, force: true });
