/**
 * `toka run <spec.yaml|dir>`: run one agent, or a workstream (a folder of specs) in dependency waves, and
 * report how each agent ended. Next to a running `toka serve` (it holds the data dir) the work is done by that
 * host, over `<data>/admin.sock`; else this process opens the data dir and runs the agents itself.
 *
 * Output: in a terminal, live progress per agent (listr2) then a summary; when stdout is not a terminal,
 * plain lines then the summary; with `--json`, one JSON document and nothing else. Exit 0 when every agent
 * completed, 1 otherwise (failed, cancelled, skipped, or a spec error), 2 for bad usage. SIGINT/SIGTERM
 * cancel the runs in flight and skip the agents not started. See docs/agents.md, "Running agents".
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { LogRecord } from '../../protocol/events.js';
import {
  AgentRunRequest,
  AgentSpawnRequest,
  EventsEventNotification,
  EventsSubscribeRequest,
  EventsUnsubscribeRequest,
  TaskCancelRequest,
  TaskGetRequest,
} from '../../protocol/rpc/index.js';
import type { AgentRuntimeRecord } from '../../protocol/runtime.js';
import { Host } from '../host/host.js';
import { DataDirLock } from '../host/lock.js';
import { createLogger, parseLogLevel, type Logger } from '../host/logger.js';
import { RUNTIME_HANDLERS } from '../runtime/lifecycle.js';
import type { LlmConfig } from '../runtime/llm/index.js';
import {
  localClient,
  Orchestration,
  planSpecFile,
  planWorkstreamDir,
  type AgentReport,
  type OrchestrationPlan,
  type OrchestrationReport,
  type PlanResult,
  type ProgressEvent,
  type RuntimeClient,
} from '../runtime/orchestrate.js';
import { startRuntime } from '../runtime/start.js';
import { DATA, UsageError, dataDir as resolveDataDir, parseInteger } from './args.js';
import type { Command, Flags } from './commands.js';
import { AdminClient } from './remote.js';
import { formatDiagnostic } from './spec.js';

/** Most agents at work at once that `--concurrency` accepts. */
export const MAX_CONCURRENCY = 64;
const DEFAULT_CONCURRENCY = 4;

/** Where the agents run: a host already serving the data dir, or this process. */
type Mode = 'remote' | 'local';

interface Target {
  client: RuntimeClient;
  mode: Mode;
  close(): Promise<void>;
}

function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export const runCommand: Command = {
  summary:
    'run an agent spec, or a folder of specs (a workstream) in dependency waves: [--input T] [--transcript F|DIR] [--concurrency N] [--json]',
  options: {
    ...DATA,
    input: { type: 'string', value: '<text>', help: 'the task for the agent, instead of its default tasks (one spec only)', default: "the spec's tasks.default" },
    transcript: {
      type: 'string',
      value: '<file|dir>',
      help: 'answer with the scripted LLM provider from this transcript, or from <dir>/<agent name>.json per agent (only when this process runs the agents: a running toka serve uses its own LLM configuration)',
      default: 'the LLM provider of the environment (docs/llm-providers.md)',
    },
    concurrency: { type: 'string', value: '<n>', help: `agents at work at once, 1..${MAX_CONCURRENCY} (critical agents always run alone)`, default: String(DEFAULT_CONCURRENCY) },
    vault: { type: 'string', value: '<vault>', help: "the vault the agents live in (acting as its local admin)", default: 'default' },
    json: { type: 'boolean', help: 'print one JSON document (the plan, every agent and run, or the spec errors) and no progress', default: 'progress, then a summary' },
  },
  run: async (flags, positionals) => {
    if (positionals.length !== 1) throw new UsageError('run: give one spec file or one folder of specs');
    const path = positionals[0];
    const input = str(flags, 'input');
    if (input !== undefined && input.trim() === '') throw new UsageError('--input is empty');
    const concurrency = parseInteger(str(flags, 'concurrency'), '--concurrency', DEFAULT_CONCURRENCY);
    if (concurrency < 1 || concurrency > MAX_CONCURRENCY) throw new UsageError(`--concurrency: 1..${MAX_CONCURRENCY}`);
    const vault = str(flags, 'vault') ?? 'default';
    if (vault === '') throw new UsageError('--vault is empty');
    const json = flags.json === true;

    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      throw new UsageError(`run: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (isDir && input !== undefined) throw new UsageError('--input applies to one spec, not to a workstream folder');

    const planned: PlanResult = isDir ? planWorkstreamDir(path) : planSpecFile(path);
    if (!planned.plan) return reportSpecErrors(planned, json);
    const plan = planned.plan;
    const llm = transcriptConfig(str(flags, 'transcript'), plan);

    const dataDir = resolveDataDir(str(flags, 'data'));
    const logger = createLogger({ level: parseLogLevel(process.env.TOKA_LOG_LEVEL, 'warn') });
    const target = await connect(dataDir, vault, concurrency, llm, logger);
    if (target.mode === 'remote' && llm !== undefined) {
      process.stderr.write('toka: --transcript is not used: the running toka serve answers with its own LLM provider configuration\n');
    }

    const progress = json ? null : process.stdout.isTTY ? new TerminalProgress(plan) : new LineProgress(plan);
    const orchestration = new Orchestration(target.client, plan, { concurrency, input, onProgress: (e) => progress?.update(e) });
    const interrupt = (signal: NodeJS.Signals) => {
      process.stderr.write(`toka: ${signal}: cancelling the runs\n`);
      void orchestration.cancel(`interrupted (${signal})`);
    };
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
    let report: OrchestrationReport;
    try {
      const rendering = progress?.start();
      report = await orchestration.run();
      await rendering;
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
      await target.close();
    }

    const workspaces = join(dataDir, 'workspaces');
    if (json) {
      const agents = report.agents.map((a) => ({ ...a, ...(a.agent ? { workspace: join(workspaces, a.agent) } : {}) }));
      process.stdout.write(`${JSON.stringify({ ok: report.ok, target: path, mode: target.mode, dataDir, waves: report.waves, agents, durationMs: report.durationMs }, null, 2)}\n`);
    } else {
      process.stdout.write(summaryText(report, workspaces, target.mode));
    }
    return report.ok ? 0 : 1;
  },
};

/** Spec errors: printed like `toka spec check` (or as the JSON document); nothing was spawned. */
function reportSpecErrors(planned: PlanResult, json: boolean): number {
  const errors = planned.diagnostics.filter((d) => d.severity === 'error');
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: false, diagnostics: planned.diagnostics, agents: [] }, null, 2)}\n`);
  } else {
    for (const d of planned.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.stderr.write(`toka: not run: ${errors.length} error${errors.length === 1 ? '' : 's'} in the specs (nothing was spawned)\n`);
  }
  return 1;
}

/**
 * `--transcript`: a file answers every agent; a folder answers each agent from `<dir>/<agent name>.json`
 * (every agent of the plan must have one).
 */
function transcriptConfig(path: string | undefined, plan: OrchestrationPlan): LlmConfig | ((agent: AgentRuntimeRecord | undefined) => LlmConfig) | undefined {
  if (path === undefined) return undefined;
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new UsageError(`--transcript: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!isDir) return { provider: 'scripted', transcript: path };
  const missing = [...plan.agents.keys()].filter((name) => !existsSync(join(path, `${name}.json`)));
  if (missing.length > 0) throw new UsageError(`--transcript ${path}: no transcript for ${missing.map((n) => `${n}.json`).join(', ')}`);
  return (agent) => ({ provider: 'scripted', transcript: join(path, `${agent?.specName ?? 'unknown'}.json`) });
}

/** The host serving the data dir, over its admin socket; else the data dir opened here with a runtime. */
async function connect(dataDir: string, vault: string, concurrency: number, llm: ReturnType<typeof transcriptConfig>, logger: Logger): Promise<Target> {
  const holder = DataDirLock.holder(dataDir);
  if (holder !== null && holder !== process.pid) {
    const admin = await AdminClient.connect(dataDir, holder);
    try {
      await admin.open({ vault });
    } catch (err) {
      admin.close();
      throw err;
    }
    return { client: remoteClient(admin), mode: 'remote', close: async () => admin.close() };
  }
  const host = await Host.open({ dataDir, logger, rateLimit: false, handlers: RUNTIME_HANDLERS });
  try {
    // Agents at work are bounded by the orchestration; the workers serve their runs (an agent may have several).
    const workers = Math.max(concurrency, DEFAULT_CONCURRENCY);
    const runtime = await startRuntime(host, { dataDir, logger, concurrency: workers, ...(llm !== undefined ? { llm } : {}) });
    return {
      client: localClient(host, runtime, host.localSession(vault)),
      mode: 'local',
      close: async () => {
        await runtime.close();
        await host.close();
      },
    };
  } catch (err) {
    await host.close();
    throw err;
  }
}

/** The runtime of a running host, through `toka/agents/*`, `toka/tasks/*` and `toka/events/subscribe`. */
function remoteClient(admin: AdminClient): RuntimeClient {
  return {
    spawn: (agent) => admin.request(AgentSpawnRequest.type, { spec: agent.text, uri: agent.file }),
    run: async (request) => (await admin.request(AgentRunRequest.type, request)).tasks,
    getRun: (id) => admin.request(TaskGetRequest.type, { task: id }),
    cancel: async (id, reason) => {
      await admin.request(TaskCancelRequest.type, { task: id, reason });
    },
    follow: async (onRecord: (record: LogRecord) => void) => {
      // The one subscription of this connection: its records may arrive before its id does.
      const listening = admin.onNotification(EventsEventNotification.type, ({ record }) => onRecord(record));
      const { subscription } = await admin.request(EventsSubscribeRequest.type, {});
      return {
        close: () => {
          listening.dispose();
          admin.request(EventsUnsubscribeRequest.type, { subscription }).catch(() => undefined);
        },
      };
    },
  };
}

// ---- output ---------------------------------------------------------------------------------------------

interface Progress {
  update(event: ProgressEvent): void;
  /** Resolves once the progress display is done (after the last agent ended). */
  start(): Promise<void> | undefined;
}

function runsText(a: AgentReport): string {
  const turns = a.runs.reduce((n, r) => n + r.turns, 0);
  const tools = a.runs.reduce((n, r) => n + r.toolCalls, 0);
  return `${a.runs.length} run${a.runs.length === 1 ? '' : 's'}, ${turns} turn${turns === 1 ? '' : 's'}, ${tools} tool call${tools === 1 ? '' : 's'}`;
}

function endText(a: AgentReport): string {
  if (a.status === 'completed') return `completed (${runsText(a)})`;
  return `${a.status}${a.reason ? `: ${a.reason}` : ''}`;
}

/** Not a terminal: one plain line per change. */
class LineProgress implements Progress {
  constructor(private readonly plan: OrchestrationPlan) {}

  start(): undefined {
    return undefined;
  }

  update(event: ProgressEvent): void {
    const line = (text: string) => process.stdout.write(`${text}\n`);
    switch (event.kind) {
      case 'wave':
        line(`wave ${event.index + 1}/${this.plan.waves.length}: ${event.agents.join(', ')}`);
        break;
      case 'agent': {
        const a = event.report;
        line(`${a.name}: ${a.status === 'running' ? 'started' : endText(a)}`);
        break;
      }
      case 'step':
        line(`${event.name}: ${event.step}`);
        break;
    }
  }
}

type AgentTask = ListrTaskWrapper<unknown, typeof import('listr2').DefaultRenderer, typeof import('listr2').SimpleRenderer>;

/** A terminal: one live line per agent (listr2), its latest step under it. */
class TerminalProgress implements Progress {
  private readonly tasks = new Map<string, AgentTask>();
  /** The latest title and step of each agent, for a task listr2 has not started yet. */
  private readonly shown = new Map<string, { title?: string; output?: string }>();
  private readonly ends = new Map<string, { promise: Promise<AgentReport>; resolve(report: AgentReport): void }>();

  constructor(private readonly plan: OrchestrationPlan) {
    for (const name of plan.waves.flat()) {
      let resolve!: (report: AgentReport) => void;
      const promise = new Promise<AgentReport>((r) => (resolve = r));
      this.ends.set(name, { promise, resolve });
    }
  }

  start(): Promise<void> {
    const list = new Listr(
      this.plan.waves.flatMap((wave, index) =>
        wave.map((name) => ({
          title: `${name}  (wave ${index + 1}) waiting`,
          task: async (_: unknown, task: AgentTask) => {
            this.tasks.set(name, task);
            const shown = this.shown.get(name);
            if (shown?.title) task.title = shown.title;
            if (shown?.output) task.output = shown.output;
            const report = await this.ends.get(name)!.promise;
            task.title = `${name}  ${endText(report)}`;
            if (report.status === 'skipped') task.skip(`${name}  skipped: ${report.reason ?? ''}`);
            else if (report.status !== 'completed') throw new Error(`${name}  ${endText(report)}`);
          },
        })),
      ),
      { concurrent: true, exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseErrors: false } },
    );
    return list.run().then(() => undefined);
  }

  update(event: ProgressEvent): void {
    switch (event.kind) {
      case 'wave':
        break;
      case 'agent': {
        const a = event.report;
        if (a.status === 'running') this.show(a.name, { title: `${a.name}  (wave ${a.wave + 1}) running` });
        else if (a.status !== 'pending') {
          this.ends.get(a.name)!.resolve(a);
        }
        break;
      }
      case 'step':
        this.show(event.name, { output: event.step });
        break;
    }
  }

  private show(name: string, change: { title?: string; output?: string }): void {
    this.shown.set(name, { ...this.shown.get(name), ...change });
    const task = this.tasks.get(name);
    if (!task) return;
    if (change.title !== undefined) task.title = change.title;
    if (change.output !== undefined) task.output = change.output;
  }
}

function summaryText(report: OrchestrationReport, workspaces: string, mode: Mode): string {
  const count = (status: AgentReport['status']) => report.agents.filter((a) => a.status === status).length;
  const width = Math.max(...report.agents.map((a) => a.name.length));
  const lines = report.agents.map((a) => {
    const where = a.agent ? `  agent ${a.agent}, workspace ${join(workspaces, a.agent)}` : '';
    return `  ${a.name.padEnd(width)}  ${endText(a)}${where}`;
  });
  const parts = (['completed', 'failed', 'cancelled', 'skipped'] as const).filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`);
  const seconds = (report.durationMs / 1000).toFixed(1);
  const by = mode === 'remote' ? 'by the running host' : 'in this process';
  return `\n${report.agents.length} agent${report.agents.length === 1 ? '' : 's'} in ${report.waves.length} wave${report.waves.length === 1 ? '' : 's'} (${by}, ${seconds}s): ${parts.join(', ')}\n${lines.join('\n')}\n`;
}
