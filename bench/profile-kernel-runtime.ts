/**
 * Profiling aid (not part of `npm run bench`): the kernel alone (no host, no log) taking no-op runs through
 * the runtime's lifecycle (SubmitRun → StartRun → RecordLlmTurn → CompleteRun) over 256 agents, against as
 * many `EmitObservation`s as those runs take operations. Prints CPU µs and GC ms per task for each, then one
 * round timed operation by operation (each lifecycle step per task, against 4 observations, interleaved in
 * one pass so that both see the same load):
 *   node --import tsx --expose-gc bench/profile-kernel-runtime.ts [tasks]
 */
import { PerformanceObserver } from 'node:perf_hooks';
import type { CapabilityClaims } from '../protocol/capability.js';
import type { KernelEvent, Operation, OperationEnvelope } from '../protocol/kernel.js';
import { Kernel } from '../server/kernel/kernel.js';
import { RUNTIME_HANDLERS } from '../server/runtime/runtime.js';

const TASKS = Number(process.argv[2] ?? 16_384);
const AGENTS = 256;
const ROUNDS = 5;
const T0 = 1_700_000_000_000;
const claims: CapabilityClaims = { sub: 'alice', vault: 'A', permissions: ['*'], iat: T0 / 1000, exp: T0 / 1000 + 1e6, jti: 'jti-alice', grant: 'g0' };

let seq = 0;
/** Wall time per operation type, ms, when `timing` is on. */
const spent = new Map<string, number>();
let timing = false;
function submit(kernel: Kernel, op: Record<string, unknown>): KernelEvent[] {
  seq++;
  const env: OperationEnvelope = { id: `op-${seq}`, at: T0 + seq, origin: claims.sub, claims, ids: [`${(seq % 4096).toString(16).padStart(3, '0')}-${seq}`], op: op as unknown as Operation };
  if (!timing) return kernel.execute(env);
  const started = performance.now();
  const events = kernel.execute(env);
  spent.set(op.type as string, (spent.get(op.type as string) ?? 0) + performance.now() - started);
  return events;
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

function measure(name: string, kernel: Kernel, body: () => void): void {
  (globalThis as { gc?: () => void }).gc?.();
  gcMs = 0;
  const cpu = process.cpuUsage();
  body();
  const used = process.cpuUsage(cpu);
  // GC entries are delivered asynchronously; read them on the next turn.
  setTimeout(() => {
    const us = used.user + used.system;
    process.stderr.write(`${name}: ${(us / TASKS).toFixed(1)} µs CPU per task, GC ${((gcMs * 1000) / TASKS).toFixed(1)} µs per task\n`);
  }, 20);
  void kernel;
}

const kernel = new Kernel();
for (const h of RUNTIME_HANDLERS) kernel.register(h);
const agents: string[] = [];
for (let i = 0; i < AGENTS; i++) agents.push((submit(kernel, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `a${i}` } }).at(-1) as { agent: string }).agent);
const turn = { text: 'done', toolCalls: [], usage: { inputTokens: 12, outputTokens: 1 } };

function tasks(n: number): void {
  for (let i = 0; i < n; i += AGENTS) {
    const runs = agents.map((agent) => (submit(kernel, { type: 'SubmitRun', agent, input: 'say done' })[0] as unknown as { run: { id: string } }).run.id);
    for (const run of runs) submit(kernel, { type: 'StartRun', run });
    for (const run of runs) submit(kernel, { type: 'RecordLlmTurn', run, turn });
    for (const run of runs) submit(kernel, { type: 'CompleteRun', run, text: 'done', artifacts: [{ name: 'response', text: 'done' }] });
  }
}
function observations(n: number): void {
  const data = { note: 'x'.repeat(64) };
  for (let i = 0; i < n * 4; i++) submit(kernel, { type: 'EmitObservation', agent: 'root', data });
}

tasks(TASKS);
observations(TASKS);
await new Promise((r) => setImmediate(r));
for (let r = 0; r < ROUNDS; r++) {
  measure('tasks', kernel, () => tasks(TASKS));
  await new Promise((r) => setTimeout(r, 50));
  measure('observations ×4', kernel, () => observations(TASKS));
  await new Promise((r) => setTimeout(r, 50));
}

/** One round of each lifecycle step of `AGENTS` runs followed by as many observations ×4, operation by operation. */
timing = true;
for (let i = 0; i < TASKS; i += AGENTS) {
  tasks(AGENTS);
  observations(AGENTS);
}
const perTask = (ms: number) => (ms * 1000) / TASKS;
const task = ['SubmitRun', 'StartRun', 'RecordLlmTurn', 'CompleteRun'].reduce((sum, t) => sum + (spent.get(t) ?? 0), 0);
const obs = spent.get('EmitObservation') ?? 0;
process.stderr.write(
  `per operation, µs per task: ${[...spent].map(([t, ms]) => `${t} ${perTask(ms).toFixed(1)}`).join(', ')} (4 per task); ` +
    `a task costs ${(task / obs).toFixed(2)}× 4 observations\n`,
);
