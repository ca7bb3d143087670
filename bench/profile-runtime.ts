/**
 * Profiling aid for the agent runtime (not part of `npm run bench`):
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-runtime.ts tasks
 *     256 agents, then 4,096 no-op tasks through the full lifecycle, 256 at once;
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-runtime.ts observations
 *     the same host, then as many observations (on `root`, 256 submitters) as those tasks write records: the
 *     task benchmark's baseline, to compare with the `tasks` profile function by function;
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-runtime.ts restart [events]
 *     writes the restart benchmark's log (default 300,000 events), then opens a host on it three times.
 * `tasks` and `observations` print the rate, and the process CPU and garbage-collection time per task (per 4,096
 * tasks' worth of observations): the measures that depend least on the machine's load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { RUNTIME_HANDLERS } from '../server/runtime/runtime.js';
import { runTasks, runtimeWorld, spawnAgents, writeRestartLog } from './runtime.js';

const [mode, count] = process.argv.slice(2);
const TASKS = 4096;

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

/** Run `work` (`ops` operations standing for `TASKS` tasks) and print its rate, CPU and GC per task. */
async function measured(what: string, ops: number, work: () => Promise<unknown>): Promise<void> {
  gcMs = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const perTask = (us: number) => Math.round(us / TASKS);
  process.stderr.write(`${Math.round(ops / seconds)} ${what}/s (${ops}); per task: ${perTask(used.user + used.system)} µs CPU, ${perTask(gcMs * 1000)} µs GC\n`);
}
const dir = mkdtempSync(join(tmpdir(), 'toka-profile-runtime-'));
try {
  if (mode === 'tasks') {
    const { host, runtime, user } = await runtimeWorld(join(dir, 'data'), join(dir, 'ws'));
    const agents = await spawnAgents(runtime, user, 256);
    await measured('tasks', TASKS, () => runTasks(host, runtime, user, agents, TASKS));
    await runtime.close();
    await host.close();
  } else if (mode === 'observations') {
    const { host, runtime, user } = await runtimeWorld(join(dir, 'data'), join(dir, 'ws'));
    const agents = await spawnAgents(runtime, user, 256);
    const before = host.headSeq();
    await runTasks(host, runtime, user, agents, 256);
    const ops = Math.round(TASKS * ((host.headSeq() - before) / 256));
    const data = { note: 'x'.repeat(64) };
    let left = ops;
    await measured('observations', ops, () =>
      Promise.all(
        Array.from({ length: 256 }, async () => {
          while (left-- > 0) await host.submit(user, { type: 'EmitObservation', agent: 'root', data });
        }),
      ),
    );
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
