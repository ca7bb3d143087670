/**
 * Profiling aid for the agent runtime (not part of `npm run bench`):
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-runtime.ts tasks
 *     256 agents, then 4,096 no-op tasks through the full lifecycle, 256 at once;
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-runtime.ts observations
 *     the same host, then as many observations (on `root`, 256 submitters) as those tasks write records: the
 *     task benchmark's baseline, to compare with the `tasks` profile function by function;
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-runtime.ts restart [events]
 *     writes the restart benchmark's log (default 300,000 events), then opens a host on it three times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { RUNTIME_HANDLERS } from '../server/runtime/runtime.js';
import { runTasks, runtimeWorld, spawnAgents, writeRestartLog } from './runtime.js';

const [mode, count] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'toka-profile-runtime-'));
try {
  if (mode === 'tasks') {
    const { host, runtime, user } = await runtimeWorld(join(dir, 'data'), join(dir, 'ws'));
    const agents = await spawnAgents(runtime, user, 256);
    const started = performance.now();
    await runTasks(host, runtime, user, agents, 4096);
    process.stderr.write(`${Math.round(4096 / ((performance.now() - started) / 1000))} tasks/s\n`);
    await runtime.close();
    await host.close();
  } else if (mode === 'observations') {
    const { host, runtime, user } = await runtimeWorld(join(dir, 'data'), join(dir, 'ws'));
    const agents = await spawnAgents(runtime, user, 256);
    const before = host.headSeq();
    await runTasks(host, runtime, user, agents, 256);
    const ops = Math.round(4096 * ((host.headSeq() - before) / 256));
    const data = { note: 'x'.repeat(64) };
    let left = ops;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (left-- > 0) await host.submit(user, { type: 'EmitObservation', agent: 'root', data });
      }),
    );
    process.stderr.write(`${Math.round(ops / ((performance.now() - started) / 1000))} observations/s (${ops})\n`);
    await runtime.close();
    await host.close();
  } else if (mode === 'restart') {
    const written = await writeRestartLog(join(dir, 'data'), join(dir, 'ws'), Number(count ?? 300_000));
    process.stderr.write(`log written in ${written.seconds.toFixed(1)} s\n`);
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const host = await Host.open({ dataDir: join(dir, 'data'), logger: createLogger({ level: 'error' }), handlers: RUNTIME_HANDLERS, rateLimit: false });
      process.stderr.write(`Host.open: ${Math.round(performance.now() - started)} ms\n`);
      await host.close();
    }
  } else {
    throw new Error('usage: profile-runtime.ts tasks | observations | restart [events]');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
