/**
 * Orchestration: one agent, or a workstream of agents run in dependency waves. The CLI (`toka run`) drives it
 * in process or against a running host; other faces can drive it the same way through a `RuntimeClient`.
 *
 * Order: wave after wave (`planWorkstream`); a wave ends before the next starts. Within a wave, `critical`
 * agents run one at a time, first; then the others, at most `concurrency` at once, started in priority order.
 * An agent whose required dependency did not complete is skipped with the reason, and so, in turn, are its own
 * dependants. An agent is spawned from its spec when its turn comes, then asked to run its default tasks (or
 * the given input); it has completed when every one of its runs has.
 *
 * Progress comes from the log: the client follows the records of the vault, and every record of a run the
 * orchestration waits for is reported as a step. The runs waited for are also read every `RECONCILE_MS`, so a
 * lost subscription (a slow reader is dropped by the host) never leaves a wait hanging.
 */
import type { LogRecord } from '../../protocol/events.js';
import { TERMINAL_RUN_STATES, type RunLimits, type RunRecord } from '../../protocol/runtime.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import { readFileSync } from 'node:fs';
import type { AgentRuntime, LoadedSpec, SpawnResult } from './runtime.js';
import {
  analyzeSpecText,
  loadSpecFile,
  loadWorkstream,
  planWorkstream,
  type AgentSpec,
  type Diagnostic,
  type Priority,
  type SpecAnalysis,
  type WorkstreamPlan,
} from './spec/index.js';

/** How often the runs waited for are read, whatever the log says (ms). */
export const RECONCILE_MS = 2000;

/** One agent to run: its spec as loaded, and as written (a remote host parses it again). */
export interface PlannedAgent {
  /** `metadata.name`. */
  name: string;
  /** The spec file. */
  file: string;
  /** The spec text as written. */
  text: string;
  loaded: LoadedSpec;
  priority: Priority;
  /** Names of the agents it requires (all in the plan). */
  requires: string[];
}

export interface OrchestrationPlan {
  /** Agent names, wave by wave, in start order within a wave. */
  waves: string[][];
  agents: Map<string, PlannedAgent>;
}

/** A plan, or why there is none (every error diagnostic: bad specs, unknown dependencies, cycles). */
export interface PlanResult {
  plan?: OrchestrationPlan;
  diagnostics: Diagnostic[];
}

/**
 * One spec file: one agent alone in one wave. Its required dependencies are not looked for (it is run on its
 * own, as asked); run its folder to run them first.
 */
export function planSpecFile(path: string): PlanResult {
  const analysis = loadSpecFile(path);
  if (!analysis.spec || !analysis.digest) return { diagnostics: analysis.diagnostics };
  const agent = plannedAgent(analysis, analysis.spec, [], readFileSync(path, 'utf8'));
  return { diagnostics: analysis.diagnostics, plan: { waves: [[agent.name]], agents: new Map([[agent.name, agent]]) } };
}

/** A folder of specs: a workstream, in the waves `planWorkstream` gives. */
export function planWorkstreamDir(dir: string): PlanResult {
  return planOf(loadWorkstream(dir), (uri) => readFileSync(uri, 'utf8'));
}

/** Spec texts as a client sent them (`toka/workstreams/*`): a workstream, planned as a folder would be. */
export function planWorkstreamSpecs(specs: readonly { uri: string; text: string }[]): PlanResult {
  const texts = new Map(specs.map((s) => [s.uri, s.text]));
  return planOf(planWorkstream(specs.map((s) => analyzeSpecText(s.uri, s.text))), (uri) => texts.get(uri)!);
}

function planOf(ws: WorkstreamPlan, textOf: (uri: string) => string): PlanResult {
  if (!ws.waves) return { diagnostics: ws.diagnostics };
  const agents = new Map<string, PlannedAgent>();
  for (const [name, { spec, analysis }] of ws.agents) {
    const requires = [...new Set(spec.dependencies.required.map((d) => d.agent))];
    agents.set(name, plannedAgent(analysis, spec, requires, textOf(analysis.uri)));
  }
  return { diagnostics: ws.diagnostics, plan: { waves: ws.waves, agents } };
}

function plannedAgent(analysis: SpecAnalysis, spec: AgentSpec, requires: string[], text: string): PlannedAgent {
  return {
    name: spec.metadata.name,
    file: analysis.uri,
    text,
    loaded: { spec, digest: analysis.digest!, document: analysis.document },
    priority: spec.spec.priority,
    requires,
  };
}

/** What the orchestration needs from a runtime: in process (`localClient`) or over a wire. */
export interface RuntimeClient {
  spawn(agent: PlannedAgent): Promise<SpawnResult>;
  /** Run ids, in order: one for `input`, else one per queued task. */
  run(request: { agent: string; input?: string; limits?: Partial<RunLimits> }): Promise<string[]>;
  getRun(id: string): Promise<RunRecord>;
  cancel(id: string, reason: string): Promise<void>;
  /** Deliver every log record of the vault from now on, until closed. Resolves once following. */
  follow(onRecord: (record: LogRecord) => void): Promise<{ close(): void }>;
}

export type AgentStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';

/** One run of an agent, as the report shows it. */
export interface RunSummary {
  id: string;
  state: RunRecord['state'];
  turns: number;
  toolCalls: number;
  tokens: number;
  /** The final text (completed runs). */
  text?: string;
  /** Why it failed or was cancelled. */
  reason?: RunRecord['reason'];
}

export interface AgentReport {
  name: string;
  file: string;
  /** Index of its wave (0-based). */
  wave: number;
  priority: Priority;
  status: AgentStatus;
  /** The agent id, once spawned. */
  agent?: string;
  runs: RunSummary[];
  /** Why it failed, was cancelled or skipped. */
  reason?: string;
  /** Permissions its spec asked for that the spawner could not give. */
  withheld?: string[];
}

export interface OrchestrationReport {
  /** True when every agent completed. */
  ok: boolean;
  waves: string[][];
  agents: AgentReport[];
  durationMs: number;
}

export type ProgressEvent =
  | { kind: 'wave'; index: number; agents: string[] }
  | { kind: 'agent'; report: AgentReport }
  | { kind: 'step'; name: string; run: string; step: string };

export interface OrchestrationOptions {
  /** Agents at work at once (critical agents always run alone). Default 4. */
  concurrency?: number;
  /** The task text for every agent, instead of its default tasks. */
  input?: string;
  limits?: Partial<RunLimits>;
  onProgress?(event: ProgressEvent): void;
}

interface Waiter {
  agent: string;
  resolve(run: RunRecord): void;
  reject(err: unknown): void;
}

export class Orchestration {
  private readonly reports = new Map<string, AgentReport>();
  /** Runs not ended yet, with who waits for them. */
  private readonly waiting = new Map<string, Waiter>();
  private readonly concurrency: number;
  private cancelReason: string | null = null;

  constructor(
    private readonly client: RuntimeClient,
    private readonly plan: OrchestrationPlan,
    private readonly options: OrchestrationOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError('concurrency must be an integer ≥ 1');
    plan.waves.forEach((wave, index) => {
      for (const name of wave) {
        const a = plan.agents.get(name)!;
        this.reports.set(name, { name, file: a.file, wave: index, priority: a.priority, status: 'pending', runs: [] });
      }
    });
  }

  /** Run the plan to its end; never throws for an agent's failure (it is in the report). */
  async run(): Promise<OrchestrationReport> {
    const started = Date.now();
    const following = await this.client.follow((record) => this.observe(record));
    const reconcile = setInterval(() => void this.reconcile(), RECONCILE_MS);
    try {
      for (const [index, wave] of this.plan.waves.entries()) {
        this.emit({ kind: 'wave', index, agents: wave });
        const critical = wave.filter((name) => this.plan.agents.get(name)!.priority === 'critical');
        const others = wave.filter((name) => !critical.includes(name));
        for (const name of critical) await this.runAgent(name);
        await pool(others, this.concurrency, (name) => this.runAgent(name));
      }
    } finally {
      clearInterval(reconcile);
      following.close();
    }
    const agents = this.plan.waves.flat().map((name) => this.reports.get(name)!);
    return { ok: agents.every((a) => a.status === 'completed'), waves: this.plan.waves, agents, durationMs: Date.now() - started };
  }

  /**
   * Stop: agents not started are skipped, runs in flight are cancelled (their LLM request and tool stop within
   * a second); `run()` then resolves with the report.
   */
  async cancel(reason: string): Promise<void> {
    if (this.cancelReason !== null) return;
    this.cancelReason = reason;
    await Promise.all([...this.waiting.keys()].map((id) => this.cancelRun(id)));
  }

  private async cancelRun(id: string): Promise<void> {
    try {
      await this.client.cancel(id, this.cancelReason ?? 'cancelled');
    } catch (err) {
      // A run that ended meanwhile is not cancelable: its end is reported as it is.
      if (!(err instanceof HostError && err.errorName === 'InvalidOperation')) this.waiting.get(id)?.reject(err);
    }
  }

  private async runAgent(name: string): Promise<void> {
    const report = this.reports.get(name)!;
    const planned = this.plan.agents.get(name)!;
    if (this.cancelReason !== null) return this.finish(report, 'skipped', `not started: ${this.cancelReason}`);
    for (const dep of planned.requires) {
      const d = this.reports.get(dep)!;
      if (d.status !== 'completed') {
        const why = d.status === 'skipped' ? 'was skipped' : `${d.status}${d.reason ? ` (${d.reason})` : ''}`;
        return this.finish(report, 'skipped', `required agent ${dep} ${why}`);
      }
    }
    report.status = 'running';
    this.emit({ kind: 'agent', report });
    let ids: string[];
    try {
      const spawned = await this.client.spawn(planned);
      report.agent = spawned.agent;
      if (spawned.withheld.length > 0) report.withheld = spawned.withheld;
      ids = await this.client.run({ agent: spawned.agent, input: this.options.input, limits: this.options.limits });
    } catch (err) {
      return this.finish(report, 'failed', HostError.from(err).message);
    }
    const ends = ids.map((id) => this.waitFor(id, name));
    if (this.cancelReason !== null) await Promise.all(ids.map((id) => this.cancelRun(id)));
    let runs: RunRecord[];
    try {
      runs = await Promise.all(ends);
    } catch (err) {
      return this.finish(report, 'failed', HostError.from(err).message);
    }
    report.runs = runs.map(summary);
    const failed = runs.find((r) => r.state === 'failed' || r.state === 'rejected');
    const cancelled = runs.find((r) => r.state === 'canceled');
    if (failed) return this.finish(report, 'failed', `run ${failed.id} ${failed.state}: ${reasonText(failed)}`);
    if (cancelled) return this.finish(report, 'cancelled', `run ${cancelled.id} cancelled: ${reasonText(cancelled)}`);
    this.finish(report, 'completed');
  }

  private finish(report: AgentReport, status: AgentStatus, reason?: string): void {
    report.status = status;
    if (reason !== undefined) report.reason = reason;
    this.emit({ kind: 'agent', report });
  }

  /** Resolves when the run has ended. The run is read once registered: it may have ended before. */
  private waitFor(id: string, agent: string): Promise<RunRecord> {
    const ended = new Promise<RunRecord>((resolve, reject) => this.waiting.set(id, { agent, resolve, reject }));
    void this.check(id);
    return ended;
  }

  /** Read a run waited for; settle its wait when it has ended. */
  private async check(id: string): Promise<void> {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    let run: RunRecord;
    try {
      run = await this.client.getRun(id);
    } catch (err) {
      if (this.waiting.get(id) === waiter) {
        this.waiting.delete(id);
        waiter.reject(err);
      }
      return;
    }
    if (TERMINAL_RUN_STATES.includes(run.state) && this.waiting.get(id) === waiter) {
      this.waiting.delete(id);
      waiter.resolve(run);
    }
  }

  private async reconcile(): Promise<void> {
    await Promise.all([...this.waiting.keys()].map((id) => this.check(id)));
  }

  private observe(record: LogRecord): void {
    const e = record.event as unknown as Record<string, unknown>;
    if (typeof e.run !== 'string') return;
    const waiter = this.waiting.get(e.run);
    if (!waiter) return;
    const step = stepOf(e);
    if (step !== null) this.emit({ kind: 'step', name: waiter.agent, run: e.run, step });
    if (e.type === 'RunCompleted' || e.type === 'RunFailed' || e.type === 'RunCancelled') void this.check(e.run);
  }

  private emit(event: ProgressEvent): void {
    this.options.onProgress?.(event);
  }
}

/** A record of a run as one short line of progress, or null for records that say nothing new. */
function stepOf(e: Record<string, unknown>): string | null {
  switch (e.type) {
    case 'RunStarted':
      return 'run started';
    case 'LlmTurnRecorded': {
      const turn = e.turn as { toolCalls?: unknown[] } | undefined;
      const calls = turn?.toolCalls?.length ?? 0;
      return calls > 0 ? `LLM turn: ${calls} tool call${calls === 1 ? '' : 's'}` : 'LLM turn';
    }
    case 'ToolCallRequested': {
      const call = e.call as { name?: string } | undefined;
      const name = call?.name ?? 'tool';
      if (e.decision === 'denied') return `${name}: denied (${String(e.permission)})`;
      if (e.decision === 'approval') return `${name}: waiting for approval (toka/approvals/resolve)`;
      return `${name}…`;
    }
    case 'ToolResultRecorded': {
      const result = e.result as { isError?: boolean; code?: string } | undefined;
      return result?.isError ? `tool error${result.code ? ` (${result.code})` : ''}` : 'tool done';
    }
    case 'ApprovalResolved':
      return `approval ${String(e.decision ?? 'resolved')}`;
    default:
      return null;
  }
}

function summary(run: RunRecord): RunSummary {
  return {
    id: run.id,
    state: run.state,
    turns: run.turns,
    toolCalls: run.toolCalls,
    tokens: run.tokens,
    ...(run.text !== undefined ? { text: run.text } : {}),
    ...(run.reason !== undefined ? { reason: run.reason } : {}),
  };
}

function reasonText(run: RunRecord): string {
  if (!run.reason) return run.state;
  return `${run.reason.code}${run.reason.limit ? ` ${run.reason.limit}` : ''}: ${run.reason.message}`;
}

/** Run `fn` over `items`, at most `limit` at once, started in order. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A client of the runtime in this process, acting with `session` (e.g. the vault's local admin). */
export function localClient(host: Host, runtime: AgentRuntime, session: Session): RuntimeClient {
  return {
    spawn: (agent) => runtime.spawn(session, agent.loaded),
    run: async (request) => (await runtime.run(session, request)).runs,
    getRun: (id) => runtime.getRun(session, id),
    cancel: async (id, reason) => {
      await runtime.cancel(session, { run: id, reason });
    },
    follow: async (onRecord) => {
      const sub = await host.subscribe(session, { afterSeq: host.headSeq() }, { onRecord, onEnd: () => undefined });
      return { close: () => sub.unsubscribe() };
    },
  };
}
