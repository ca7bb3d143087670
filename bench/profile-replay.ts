/**
 * Profiling aid for replay (not part of `npm run bench`):
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-replay.ts
 * Builds the core benchmark's mixed 60,000-operation log, then replays it from zero five times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { openEventLog } from '../server/store/index.js';
import { mixedWorkload } from './core.js';

const dir = mkdtempSync(join(tmpdir(), 'toka-profile-'));
const host = await Host.open({ dataDir: dir, logger: createLogger({ level: 'error' }), rateLimit: false });
const { token } = await host.mint(host.localSession('p'), {
  subject: 'p',
  permissions: ['agent:spawn', 'task:schedule', 'task:cancel', 'observation:emit'],
  ttlSeconds: 1800,
});
await mixedWorkload(host, await host.authenticate(token), 60_000);
await host.close();
const log = openEventLog({ kind: 'sqlite', path: join(dir, 'events.db'), readOnly: true });
const started = performance.now();
for (let i = 0; i < 5; i++) await Host.replay(log, [], 'zero');
process.stderr.write(`${Math.round((5 * log.head().seq) / ((performance.now() - started) / 1000))} events/s replayed\n`);
await log.close();
rmSync(dir, { recursive: true, force: true });
