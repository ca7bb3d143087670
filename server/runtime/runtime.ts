/**
 * The agent runtime: agents at work. An in-process client of the host API — every step of every run is an
 * operation submitted with the agent's own token, so a run gets exactly the checks, errors and audit trail a
 * remote caller gets. It reacts to the log (runs submitted, approvals resolved, runs cancelled, from any
 * face), runs agents in a bounded worker pool that is fair across agents, and resumes from the log after a
 * restart. Adapters and the CLI reach it through the methods below, which authorise through the host.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { permits } from '../../protocol/capability.js';
import type { LogRecord } from '../../protocol/events.js';
import type { Operation } from '../../protocol/kernel.js';
import {
  agentSubject,
  TERMINAL_RUN_STATES,
  type AgentLimits,
  type AgentRuntimeRecord,
  type ApprovalRecord,
  type RunLimits,
  type RunRecord,
} from '../../protocol/runtime.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import { deepCopy } from '../kernel/state.js';
import type { Subscription } from '../store/event-log.js';
import { advanceRun, findRun, liveRuns, RUNTIME_HANDLERS, runtimeState } from './lifecycle.js';
import type { SamplingClient } from './llm/mcp-sampling.js';
import type { LlmProvider } from './llm/provider.js';
import { CONVERSATION_EVENTS, driveRun, type RunnerOutcome } from './runner.js';
import { checkGrant, permissionsOf, runtimeSettings, type AgentLlm, type AgentSpec } from './spec/index.js';
import { ToolError } from './tools/errors.js';
import type { AgentMcpServers } from './tools/mcp-servers.js';
import type { ToolRegistry } from './tools/registry.js';
import { DEFAULT_TOOL_LIMITS, type ToolLimits } from './tools/types.js';

export { RUNTIME_HANDLERS };

/** Permissions every agent needs to run at all: start its runs and record their steps. */
export const AGENT_BASE_PERMISSIONS = ['task:run'] as const;

/** An agent token is renewed when it has less than this left (seconds). */
const RENEW_BEFORE_S = 120;
/** Lifetime of an agent token (seconds): the longest a token may live. */
const AGENT_TOKEN_TTL_S = 1800;
/** Pages of history read per request when a runner rebuilds a conversation. */
const HISTORY_PAGE = 1000;
const CONVERSATION: ReadonlySet<string> = new Set(CONVERSATION_EVENTS);

export interface RuntimeOptions {
  host: Host;
  /** The model a run of this agent talks to. */
  provider(agent: AgentRuntimeRecord | undefined, run: RunLlmContext): LlmProvider;
  /** Whether runs of an agent whose spec sets `llm` so ask the model of the MCP client that requested them. */
  asksRequester?(llm: AgentLlm | undefined): boolean;
  tools: ToolRegistry;
  /** The host's external MCP servers; an agent is offered the tools of those its spec names. */
  mcpServers?: AgentMcpServers;
  /** Each agent works in `<workspaceRoot>/<agent id>` (created on first use). */
  workspaceRoot: string;
  /** Runs executing at once (default 4). */
  concurrency?: number;
  /** Bounds of tool calls (the spec's resource limits narrow the shell's). */
  toolLimits?: Partial<ToolLimits>;
  /** The system prompt every run starts with. */
  system?: string;
  logger: Logger;
}

/** A spec as loaded: the normal form, its digest and the document as written. */
export interface LoadedSpec {
  spec: AgentSpec;
  digest: string;
  document: unknown;
}

export interface SpawnResult {
  /** The new agent's id. */
  agent: string;
  /** The grant its own tokens are minted from. */
  grant: string;
  /** What the agent may ever hold. */
  permissions: string[];
  /** Permissions its spec asked for that the spawner could not give (left out). */
  withheld: string[];
  /** Ids of its default tasks, queued. */
  tasks: string[];
}

/** What the provider of one run is chosen with, besides the agent's record. */
export interface RunLlmContext {
  /** The `llm` section of the agent's spec, when it has one. */
  llm?: AgentLlm;
  /** The MCP client session that requested the run, while the runtime knows it (looked up at each LLM call). */
  requester(): SamplingClient | undefined;
}

/** The face a run request came through, when it can answer for the run (an MCP client session). */
export interface RunRequester {
  /** The requesting MCP client, for runs whose agent asks its model (`llm.provider: mcp-sampling`). */
  sampling?: SamplingClient;
}

/** What the runtime reads from an agent's spec (the document the log recorded when it was spawned). */
type AgentSettings = ReturnType<typeof runtimeSettings>;
/** The settings of an agent whose spec sets none (shared). */
const NO_SETTINGS: AgentSettings = Object.freeze({ tools: Object.freeze({ mcpServers: [] as string[] }) });

export interface RunRequest {
  agent: string;
  /** The task text. Without it, every queued task of the agent becomes a run. */
  input?: string;
  limits?: Partial<RunLimits>;
}

export class AgentRuntime {
  private readonly host: Host;
  private readonly logger: Logger;
  private readonly concurrency: number;
  private readonly toolLimits: ToolLimits;
  /** Runs waiting for a worker, per agent, oldest first; agents served round robin. */
  private readonly queues = new Map<string, string[]>();
  private readonly queued = new Set<string>();
  /** Runs executing now, with the controller that cancels them. */
  private readonly active = new Map<string, AbortController>();
  /** Runs to enter again once their runner returns (an approval resolved while it was winding down). */
  private readonly again = new Set<string>();
  /** The vault of every run and agent seen, so the runtime reads with the right session. */
  private readonly vaultOf = new Map<string, string>();
  /**
   * Log position of each live run's `RunSubmitted`, when this runtime saw it: its conversation is read from
   * there on, not from the agent's first event. Runs found in the state at start read from the beginning.
   */
  private readonly submittedAt = new Map<string, number>();
  /** Runs `run` staged and took in before their `RunSubmitted` was durable: the log's copy is not taken in again. */
  private readonly takenIn = new Set<string>();
  /**
   * The record a worker starts a run from, for runs not yet taken: the run as its `RunSubmitted` carried it
   * (or as the durable state had it at start). A run entered again (an approval resolved) is read afresh.
   */
  private readonly startFrom = new Map<string, RunRecord>();
  private readonly agentSessions = new Map<string, Session>();
  /** Runtime records of agents that ran (durable reads), dropped with the sessions on a revocation or termination. */
  private readonly agentRecords = new Map<string, AgentRuntimeRecord>();
  /** Agents whose workspace directory this runtime has made. */
  private readonly workspaces = new Set<string>();
  private readonly endWaiters = new Map<string, ((run: RunRecord) => void)[]>();
  /** Spec settings of agents that ran (or were spawned with some), read once from the log, with their vault. */
  private readonly settings = new Map<string, { vault: string; settings: AgentSettings }>();
  /** The MCP client each live run was requested from (runs requested elsewhere have none). */
  private readonly requesters = new Map<string, SamplingClient>();
  private watching: Subscription | null = null;
  private closed = false;

  private constructor(private readonly options: RuntimeOptions) {
    this.host = options.host;
    this.logger = options.logger;
    this.concurrency = options.concurrency ?? 4;
    this.toolLimits = { ...DEFAULT_TOOL_LIMITS, ...options.toolLimits };
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError('concurrency must be an integer ≥ 1');
  }

  /**
   * Start the runtime over a host opened with `RUNTIME_HANDLERS`: queue every run the log leaves submitted or
   * working, then follow the log. Runs waiting for an approval wait on.
   */
  static async start(options: RuntimeOptions): Promise<AgentRuntime> {
    const runtime = new AgentRuntime(options);
    const { seq, state } = await options.host.worldState();
    const rt = runtimeState(state);
    for (const run of liveRuns(rt).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))) {
      runtime.vaultOf.set(run.id, run.vault);
      runtime.vaultOf.set(run.agent, run.vault);
      if (run.state === 'submitted' || run.state === 'working') {
        runtime.startFrom.set(run.id, run);
        runtime.enqueue(run);
      }
    }
    runtime.watching = options.host.watch(seq, (record) => runtime.observe(record));
    runtime.pump();
    return runtime;
  }

  // ---- API (each call authorised by the host with the caller's session) ----------------------------

  /**
   * Spawn an agent from its spec under `parent` (default: the vault's root): the agent, a grant for its own
   * subject bounded by the spec's `security.capabilities_required` and by what the spawner holds, the
   * runtime record (spec digest and document), and its default tasks, queued.
   */
  async spawn(session: Session, loaded: LoadedSpec, options: { parent?: string } = {}): Promise<SpawnResult> {
    const { spec } = loaded;
    const servers = this.options.mcpServers;
    const unknown = spec.tools.mcpServers.filter((name) => !servers?.has(name));
    if (unknown.length > 0) {
      throw new HostError('InvalidOperation', `tools.mcp_servers names MCP servers this host does not configure: ${unknown.join(', ')}`, {
        reason: 'UnknownMcpServer',
        servers: unknown,
      });
    }
    const specBound = new Set<string>(AGENT_BASE_PERMISSIONS);
    for (const entry of spec.security.capabilitiesRequired) for (const p of permissionsOf(entry) ?? []) specBound.add(p);
    const requested = [...specBound];
    const held = (await this.host.check(session)).permissions;
    const withheld = checkGrant(requested, requested, held).beyondSpawner;
    const permissions = requested.filter((p) => !withheld.includes(p));
    if (!permissions.includes('task:run')) {
      throw new HostError('CapabilityDenied', 'the spawner cannot give the agent task:run, so it could never run', { required: 'task:run' });
    }
    const spawned = await this.host.submit(session, { type: 'SpawnSubAgent', parent: options.parent ?? 'root', spec: { name: spec.metadata.name } });
    const agent = spawned.records[spawned.records.length - 1].event.agent!;
    this.vaultOf.set(agent, session.claims.vault);
    if (spec.llm !== undefined || spec.tools.mcpServers.length > 0) {
      this.settings.set(agent, { vault: session.claims.vault, settings: { tools: spec.tools, ...(spec.llm ? { llm: spec.llm } : {}) } });
    }
    const subject = agentSubject(agent);
    const minted = await this.host.mint(session, { subject, permissions, label: `agent ${spec.metadata.name}`, ttlSeconds: 60 });
    await this.host.submit(session, {
      type: 'RegisterAgentRuntime',
      agent,
      specDigest: loaded.digest,
      specName: spec.metadata.name,
      spec: loaded.document,
      grant: minted.grant,
      subject,
      permissions,
      ...agentLimits(spec),
    });
    const tasks: string[] = [];
    for (const task of spec.tasks.default) {
      const r = await this.host.submit(session, {
        type: 'ScheduleAgentTask',
        agent,
        task: { description: task.description, priority: task.priority },
      });
      tasks.push((r.records[r.records.length - 1].event as unknown as { task: { id: string } }).task.id);
    }
    return { agent, grant: minted.grant, permissions, withheld, tasks };
  }

  /**
   * Ask an agent to work: one run for `input`, or one run per queued task (each task then leaves the queue,
   * its run names it). Resolves with the run ids once they are submitted, and the log position where each
   * run's records start (`submittedSeqs[i]` for `runs[i]`); they run as workers free up.
   * An agent that asks the requester's model (`llm.provider: mcp-sampling`) runs only for a `from` whose MCP
   * client declared sampling: otherwise `InvalidOperation` (reason `SamplingUnavailable`) and no run is made.
   */
  async run(session: Session, request: RunRequest, from: RunRequester = {}): Promise<{ runs: string[]; submittedSeqs: number[] }> {
    const settings = await this.settingsOf(this.host.localSession(session.claims.vault), request.agent);
    if (this.options.asksRequester?.(settings.llm)) {
      const why = !from.sampling
        ? 'its runs can only be requested from an MCP client (run_agent), whose model answers'
        : !from.sampling.capabilities().sampling
          ? 'the requesting MCP client did not declare the sampling capability'
          : undefined;
      if (why !== undefined) {
        await this.host.check(session); // a caller whose token is no longer good is told that first
        throw new HostError('InvalidOperation', `agent ${request.agent} asks the model of the MCP client that requests its runs (mcp-sampling): ${why}`, {
          reason: 'SamplingUnavailable',
        });
      }
    }
    const bind = (run: string) => {
      if (from.sampling) this.requesters.set(run, from.sampling);
      return run;
    };
    const base = { type: 'SubmitRun', agent: request.agent, ...(request.limits ? { limits: request.limits } : {}) };
    if (request.input !== undefined) {
      // Staged: the run is taken in at once, so its first steps join its submission's commit; the caller is
      // told its id only once the submission is durable.
      const { staged, durable } = await this.host.stage(session, { ...base, input: request.input });
      const submitted = staged[staged.length - 1];
      const run = (submitted.event as unknown as { run: RunRecord }).run;
      bind(run.id);
      this.takenIn.add(run.id);
      this.intake(run, submitted.seq);
      await durable;
      return { runs: [run.id], submittedSeqs: [submitted.seq] };
    }
    const queued = await this.host.getState(session, { agent: request.agent, includeTasks: true });
    const agent = queued.agents[0];
    if (!agent) throw new HostError('UnknownEntity', `unknown agent ${request.agent}`, { entity: 'agent', id: request.agent });
    const runs: string[] = [];
    const submittedSeqs: number[] = [];
    for (const task of agent.tasks ?? []) {
      const r = await this.host.submit(session, { ...base, input: task.description, task: task.id });
      runs.push(bind(runIdOf(r.records)));
      submittedSeqs.push(r.records[0].seq);
      await this.host.submit(session, { type: 'CancelTask', agent: agent.id, task: task.id, reason: `taken by run ${runIdOf(r.records)}` });
    }
    return { runs, submittedSeqs };
  }

  /** Cancel a run that has not ended; the in-flight LLM request and tool stop within a second. */
  async cancel(session: Session, request: { run: string; reason?: string }): Promise<RunRecord> {
    try {
      await this.host.submit(session, { type: 'CancelRun', run: request.run, ...(request.reason !== undefined ? { reason: request.reason } : {}) });
    } catch (err) {
      // A run that has left the state has ended: say so, as the kernel does for one it still holds.
      if (!(err instanceof HostError && err.errorName === 'UnknownEntity')) throw err;
      const ended = await this.getRun(session, request.run);
      throw new HostError('InvalidOperation', `run ${ended.id} has already ended (${ended.state})`, { reason: 'not cancelable', state: ended.state });
    }
    this.active.get(request.run)?.abort(new Error('cancelled'));
    return this.getRun(session, request.run);
  }

  /** Tool calls of the caller's vault waiting for a decision (needs `task:approve`). */
  async approvals(session: Session): Promise<ApprovalRecord[]> {
    return this.host.read(session, 'task:approve', (state, claims) =>
      liveRuns(runtimeState(state))
        .filter((r) => r.vault === claims.vault && r.state === 'input-required' && r.approval !== undefined)
        .map((r) => deepCopy(r.approval!))
        .sort((a, b) => a.requestedAt - b.requestedAt || (a.id < b.id ? -1 : 1)),
    );
  }

  /** Approve or deny a pending tool call; the run goes on. */
  async resolve(session: Session, request: { run: string; approval: string; decision: 'approve' | 'deny'; note?: string }): Promise<RunRecord> {
    await this.host.submit(session, { type: 'ResolveApproval', ...request });
    return this.getRun(session, request.run);
  }

  /**
   * A run of the caller's vault (needs `state:read`): from the world state while it is live or among its
   * agent's kept ended runs, else from the log (an ended run that has left the state).
   */
  async getRun(session: Session, id: string): Promise<RunRecord> {
    const found = await this.host.read(session, 'state:read', (state, claims) => {
      const run = findRun(runtimeState(state), id);
      return { vault: claims.vault, run: run !== undefined && run.vault === claims.vault ? deepCopy(run) : undefined };
    });
    const run = found.run ?? (await this.endedRunFromLog(found.vault, id));
    if (!run) throw new HostError('UnknownEntity', `unknown run ${id}`, { entity: 'run', id });
    return run;
  }

  /**
   * Runs of the caller's vault, newest first, optionally of one agent or in one state (needs `state:read`):
   * the live runs and each agent's kept ended runs (`ENDED_RUNS_KEPT`); older ones are found by id.
   */
  async listRuns(session: Session, query: { agent?: string; state?: RunRecord['state']; limit?: number } = {}): Promise<RunRecord[]> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    return this.host.read(session, 'state:read', (state, claims) => {
      const rt = runtimeState(state);
      const kept = rt.ended ?? {};
      const ended = query.agent === undefined ? Object.values(kept) : Object.hasOwn(kept, query.agent) ? [kept[query.agent]] : [];
      return [...liveRuns(rt), ...ended.flatMap((runs) => Object.values(runs))]
        .filter((r) => r.vault === claims.vault && (query.agent === undefined || r.agent === query.agent) && (query.state === undefined || r.state === query.state))
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1))
        .slice(0, limit)
        .map((r) => deepCopy(r));
    });
  }

  /** Terminate an agent: its live runs are cancelled and none starts again. */
  async terminate(session: Session, request: { agent: string; reason?: string }): Promise<void> {
    const live = (await this.listRuns(session, { agent: request.agent, limit: 1000 })).filter((r) => !TERMINAL_RUN_STATES.includes(r.state));
    await this.host.submit(session, { type: 'TerminateAgent', agent: request.agent, ...(request.reason !== undefined ? { reason: request.reason } : {}) });
    for (const run of live) {
      try {
        await this.cancel(session, { run: run.id, reason: 'agent terminated' });
      } catch (err) {
        if (!(err instanceof HostError && err.errorName === 'InvalidOperation')) throw err;
      }
    }
  }

  /** Resolves with the run once it has ended (completed, failed, canceled, rejected). */
  async waitForEnd(session: Session, id: string): Promise<RunRecord> {
    const waiting = new Promise<RunRecord>((resolve) => {
      const list = this.endWaiters.get(id) ?? [];
      list.push(resolve);
      this.endWaiters.set(id, list);
    });
    const now = await this.getRun(session, id);
    if (TERMINAL_RUN_STATES.includes(now.state)) {
      this.endWaiters.delete(id);
      return now;
    }
    await waiting;
    return this.getRun(session, id);
  }

  /** Stop taking work, cancel nothing: runs in flight stop where they are and resume from the log next start. */
  async close(): Promise<void> {
    this.closed = true;
    this.watching?.unsubscribe();
    for (const controller of this.active.values()) controller.abort(new Error('runtime closing'));
    const deadline = Date.now() + 5000;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.options.mcpServers?.close();
  }

  // ---- following the log ---------------------------------------------------------------------------

  private observe(record: LogRecord): void {
    const e = record.event as unknown as Record<string, unknown>;
    switch (record.event.type) {
      case 'RunSubmitted': {
        const run = e.run as RunRecord;
        if (!this.takenIn.delete(run.id)) this.intake(run, record.seq);
        break;
      }
      case 'ApprovalResolved':
        this.enqueue({ id: e.run as string, agent: e.agent as string });
        break;
      case 'RunCancelled':
        this.active.get(e.run as string)?.abort(new Error('cancelled'));
        this.release(e.run as string);
        break;
      case 'RunCompleted':
      case 'RunFailed':
        this.release(e.run as string);
        break;
      case 'AgentTerminated':
        this.settings.delete(e.agent as string);
        void this.options.mcpServers?.closeAgent(e.agent as string);
        this.agentSessions.clear();
        break;
      case 'GrantRevoked':
        this.agentSessions.clear();
        this.agentRecords.clear();
        break;
    }
  }

  /** Take in a run just submitted (its `RunSubmitted` at `seq`): note what its worker needs, and queue it. */
  private intake(run: RunRecord, seq: number): void {
    this.vaultOf.set(run.id, run.vault);
    this.vaultOf.set(run.agent, run.vault);
    this.submittedAt.set(run.id, seq);
    this.startFrom.set(run.id, { ...run });
    this.enqueue(run);
  }

  /** Forget what a live run needed and wake whoever waits for its end. */
  private release(runId: string): void {
    this.submittedAt.delete(runId);
    this.requesters.delete(runId);
    this.startFrom.delete(runId);
    const vault = this.vaultOf.get(runId);
    this.vaultOf.delete(runId);
    const waiters = this.endWaiters.get(runId);
    if (!waiters) return;
    this.endWaiters.delete(runId);
    if (vault === undefined) return;
    void this.getRun(this.host.localSession(vault), runId).then(
      (run) => waiters.forEach((w) => w(run)),
      (err) => this.logger.error('run lookup failed', { err, run: runId }),
    );
  }

  // ---- the worker pool -----------------------------------------------------------------------------

  private enqueue(run: Pick<RunRecord, 'id' | 'agent'>): void {
    if (this.closed) return;
    if (this.active.has(run.id)) {
      this.again.add(run.id);
      return;
    }
    if (this.queued.has(run.id)) return;
    this.queued.add(run.id);
    const queue = this.queues.get(run.agent);
    if (queue) queue.push(run.id);
    else this.queues.set(run.agent, [run.id]);
    this.pump();
  }

  /** Start runs while workers are free, taking one run per agent in turn (fair across agents). */
  private pump(): void {
    while (!this.closed && this.active.size < this.concurrency && this.queues.size > 0) {
      const [agent, queue] = this.queues.entries().next().value as [string, string[]];
      const runId = queue.shift()!;
      this.queues.delete(agent);
      if (queue.length > 0) this.queues.set(agent, queue);
      this.queued.delete(runId);
      const controller = new AbortController();
      this.active.set(runId, controller);
      void this.execute(runId, agent, controller).finally(() => {
        this.active.delete(runId);
        if (this.again.delete(runId)) this.enqueue({ id: runId, agent });
        this.pump();
      });
    }
  }

  private async execute(runId: string, agentId: string, controller: AbortController): Promise<void> {
    const vault = this.vaultOf.get(runId);
    if (vault === undefined) return;
    const admin = this.host.localSession(vault);
    let outcome: RunnerOutcome;
    try {
      const fresh = this.startFrom.get(runId);
      this.startFrom.delete(runId);
      const run = fresh ?? (await this.getRun(admin, runId));
      if (TERMINAL_RUN_STATES.includes(run.state)) return;
      const record = await this.agentRecord(admin, agentId);
      const settings = await this.settingsOf(admin, agentId);
      const workspace = join(this.options.workspaceRoot, agentId);
      const conversation = this.conversation(admin, run);
      if (!this.workspaces.has(agentId)) {
        await mkdir(workspace, { recursive: true, mode: 0o700 });
        this.workspaces.add(agentId);
      }
      outcome = await driveRun({
        run,
        agentSession: () => this.agentSession(vault, agentId, record),
        submit: async (session: Session, op: Operation) => (await this.host.submit(session, op)).records,
        stage: async (session: Session, op: Operation) => {
          const { staged, durable } = await this.host.stage(session, op);
          for (const r of staged) if (r.event.type === 'RunStarted') conversation.startedAt(r.seq);
          return { events: staged.map((r) => r.event), durable };
        },
        history: conversation.read,
        current: () => this.getRun(admin, runId),
        provider: this.options.provider(record, { ...(settings.llm ? { llm: settings.llm } : {}), requester: () => this.requesters.get(runId) }),
        tools: (await this.options.mcpServers?.registry(agentId, mcpServersOf(record, settings), this.options.tools)) ?? this.options.tools,
        toolLimits: this.limitsFor(run, record),
        workspace,
        system: this.options.system,
        controller,
        now: () => this.host.now(),
        logger: this.logger,
        spawn: (session, loaded, options) => this.spawn(session, loaded, options),
      });
    } catch (err) {
      if (err instanceof ToolError && !this.closed) {
        // The agent's MCP servers could not be reached: the run cannot be offered the tools its spec names.
        await this.failQuietly(vault, agentId, runId, 'ToolError', `${err.code}: ${err.message}`);
        return;
      }
      const e = HostError.from(err);
      if (this.closed || e.errorName === 'Unavailable') return;
      this.logger.error('run stopped by an error', { err, run: runId, name: e.errorName });
      await this.failQuietly(vault, agentId, runId, e.errorName === 'Unauthenticated' ? 'Unauthenticated' : 'InternalError', e.message);
      return;
    }
    this.logger.debug('runner returned', { run: runId, outcome });
  }

  /** A run whose runner hit an error it could not record as a step: fail it with the agent's own token. */
  private async failQuietly(vault: string, agentId: string, runId: string, code: string, message: string): Promise<void> {
    try {
      const record = await this.agentRecord(this.host.localSession(vault), agentId);
      const session = await this.agentSession(vault, agentId, record);
      await this.host.submit(session, { type: 'FailRun', run: runId, code, message: message.slice(0, 4000) });
    } catch (failure) {
      this.logger.warn('could not record a run failure', { err: failure, run: runId });
    }
  }

  private async agentRecord(admin: Session, agentId: string): Promise<AgentRuntimeRecord | undefined> {
    const cached = this.agentRecords.get(agentId);
    if (cached) return cached;
    const record = await this.host.read(admin, 'state:read', (state) => {
      const agents = runtimeState(state).agents;
      return Object.hasOwn(agents, agentId) ? deepCopy(agents[agentId]) : undefined;
    });
    if (record) this.agentRecords.set(agentId, record);
    return record;
  }

  /**
   * The agent's spec settings, read once from the `AgentRuntimeRegistered` the log recorded (none: defaults).
   * `admin` is of the vault asking: an agent of another vault has none for it (its settings are not told).
   */
  private async settingsOf(admin: Session, agentId: string): Promise<AgentSettings> {
    const vault = admin.claims.vault;
    const cached = this.settings.get(agentId);
    if (cached) return cached.vault === vault ? cached.settings : NO_SETTINGS;
    const [registered] = await this.host.queryEvents(admin, { agent: agentId, types: ['AgentRuntimeRegistered'], limit: 1 });
    if (!registered) return NO_SETTINGS;
    const read = runtimeSettings((registered.event as unknown as { spec?: unknown }).spec);
    const settings = read.llm === undefined && read.tools.mcpServers.length === 0 ? NO_SETTINGS : read;
    this.settings.set(agentId, { vault, settings });
    return settings;
  }

  /**
   * The agent's own session: a token minted from its grant, renewed before it expires. An agent without a
   * runtime record (spawned by a bare SpawnSubAgent) cannot run: its runs fail Unauthenticated.
   */
  private async agentSession(vault: string, agentId: string, record: AgentRuntimeRecord | undefined): Promise<Session> {
    if (!record || record.grant === '') {
      throw new HostError('Unauthenticated', `agent ${agentId} has no runtime grant (spawn it from a spec)`, { reason: 'ERR_GRANT_UNKNOWN' });
    }
    const cached = this.agentSessions.get(agentId);
    if (cached && cached.claims.exp - this.host.now() / 1000 > RENEW_BEFORE_S) return cached;
    const { token } = await this.host.issueToken(this.host.localSession(vault), { grant: record.grant, ttlSeconds: AGENT_TOKEN_TTL_S });
    const session = await this.host.authenticate(token);
    this.agentSessions.set(agentId, session);
    return session;
  }

  /**
   * The run's conversation events, in log order, for one entry of its runner: each `read` asks only for what
   * the log gained since the last (at first, since the run's submission when this runtime saw it), so a step
   * costs what it added, not the agent's whole history. Every conversation event of a run comes after its
   * `RunStarted`, so once the runner has started the run, reading goes on from there. Reads are serialised:
   * the runner awaits each before it acts.
   */
  private conversation(admin: Session, run: RunRecord): { read(): Promise<LogRecord[]>; startedAt(seq: number): void } {
    const out: LogRecord[] = [];
    let afterSeq = this.submittedAt.get(run.id) ?? 0;
    return {
      read: async () => {
        for (;;) {
          // One index range (the agent's events since), filtered here: a type filter reads one range per type.
          const page = await this.host.queryEvents(admin, { agent: run.agent, afterSeq, limit: HISTORY_PAGE });
          for (const r of page) if (CONVERSATION.has(r.event.type) && (r.event as unknown as { run?: string }).run === run.id) out.push(r);
          if (page.length > 0) afterSeq = page[page.length - 1].seq;
          if (page.length < HISTORY_PAGE) return [...out];
        }
      },
      startedAt: (seq) => {
        afterSeq = Math.max(afterSeq, seq);
      },
    };
  }

  /**
   * An ended run that has left the world state, rebuilt from the log: its `RunSubmitted` record (found by
   * index), then its agent's records from there, each applied with the kernel's own transitions until the
   * run's end. Reads the agent's records of the run's lifetime only. Undefined when the vault's log has no
   * such run.
   */
  private async endedRunFromLog(vault: string, id: string): Promise<RunRecord | undefined> {
    const admin = this.host.localSession(vault);
    const submitted = await this.host.runSubmission(admin, id);
    if (submitted === null) return undefined;
    const run = deepCopy((submitted.event as unknown as { run: RunRecord }).run);
    let afterSeq = submitted.seq;
    while (!TERMINAL_RUN_STATES.includes(run.state)) {
      const page = await this.host.queryEvents(admin, { agent: run.agent, afterSeq, limit: HISTORY_PAGE });
      for (const r of page) advanceRun(run, r.event);
      if (page.length < HISTORY_PAGE) break;
      afterSeq = page[page.length - 1].seq;
    }
    return run;
  }

  /**
   * Tool limits for a run: the host's, with the shell's time bound no longer than the run's own and its memory
   * bound no larger than the agent's spec allows.
   */
  private limitsFor(run: RunRecord, agent: AgentRuntimeRecord | undefined): ToolLimits {
    return {
      ...this.toolLimits,
      shellTimeoutMs: Math.min(this.toolLimits.shellTimeoutMs, run.limits.timeoutMs),
      shellMemoryBytes: Math.min(this.toolLimits.shellMemoryBytes, agent?.limits?.maxMemoryBytes ?? Infinity),
    };
  }
}

/** The `limits` of an agent's runtime record, from its spec's resource limits (nothing when it sets none). */
function agentLimits(spec: AgentSpec): { limits?: AgentLimits } {
  const { timeoutMs, maxMemoryBytes } = spec.security.resourceLimits;
  const limits: AgentLimits = {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(maxMemoryBytes !== undefined ? { maxMemoryBytes } : {}),
  };
  return Object.keys(limits).length > 0 ? { limits } : {};
}

/** The MCP servers a run of the agent connects to: those its spec names, when it may call their tools at all. */
function mcpServersOf(record: AgentRuntimeRecord | undefined, settings: AgentSettings): string[] {
  return record !== undefined && permits(record.permissions, 'tool:mcp') ? settings.tools.mcpServers : [];
}

function runIdOf(records: LogRecord[]): string {
  return ((records[records.length - 1].event as unknown as { run: RunRecord }).run).id;
}
