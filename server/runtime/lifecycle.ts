/**
 * The run lifecycle as kernel operations (namespace `runtime`): every step of an agent's run is an
 * operation the host authorises and the log records, so the log alone says where every run stands and a
 * run replays without calling an LLM or a tool. Pure, like the kernel: no I/O, no clock.
 *
 * submitted ──StartRun──▶ working ──RecordLlmTurn / RequestToolCall / RecordToolResult──▶ working
 *     working ──RequestToolCall(approval)──▶ input-required ──ResolveApproval──▶ working
 *     working ──CompleteRun──▶ completed · ──FailRun──▶ failed · any live state ──CancelRun──▶ canceled
 */
import { isKnownPermission } from '../../protocol/capability.js';
import type { KernelEvent, OperationEnvelope, WorldState } from '../../protocol/kernel.js';
import {
  DEFAULT_RUN_LIMITS,
  ENDED_RUNS_KEPT,
  runShard,
  TERMINAL_RUN_STATES,
  type AgentLimits,
  type AgentRuntimeRecord,
  type ApprovalRecord,
  type RunArtifact,
  type RunLimits,
  type RunRecord,
  type RunState,
  type RunToolCall,
  type RunToolProgress,
  type RunToolResult,
  type RuntimeState,
} from '../../protocol/runtime.js';
import { KernelError } from '../kernel/errors.js';
import type { KernelView, OpcodeHandler } from '../kernel/handler.js';
import { stateAt, stateColumn } from '../kernel/state.js';
import {
  isPlainObject,
  onlyFields,
  optionalText,
  requireId,
  requireJson,
  requireObject,
  requireString,
  requireStringArray,
  requireText,
  utf8ByteLength,
} from '../kernel/validate.js';

export const RUNTIME_NAMESPACE = 'runtime';

/** Bounds on what one runtime operation may carry. */
export const RUNTIME_LIMITS = {
  /** Task text given to a run. */
  inputBytes: 64 * 1024,
  /** One recorded LLM turn (text + tool calls), as JSON. */
  turnBytes: 1024 * 1024,
  /** One recorded tool result's content. */
  toolResultBytes: 1024 * 1024,
  /** Final text plus artifacts of a completed run. */
  completionBytes: 4 * 1024 * 1024,
  /** Artifacts per run. */
  artifacts: 64,
  /** The spec document recorded when an agent is registered. */
  specBytes: 256 * 1024,
  /** Free-text messages (failure, cancel reason, approval note). */
  messageChars: 4096,
  /** Tool names. */
  toolNameChars: 128,
  /** Text of one recorded tool progress update. */
  toolProgressChars: 16 * 1024,
} as const;

const LIMIT_BOUNDS: Record<keyof RunLimits, number> = {
  timeoutMs: 24 * 3600_000,
  maxTurns: 1000,
  maxToolCalls: 10_000,
  maxTokens: 100_000_000,
  maxOutputBytes: 1024 * 1024 * 1024,
};

const FAILURE_CODES = ['LimitExceeded', 'LlmError', 'ToolError', 'Unauthenticated', 'InternalError', 'DependencyFailed'] as const;

type Fields = Record<string, unknown>;

function fields(env: OperationEnvelope): Fields {
  return env.op as unknown as Fields;
}

/** The runtime namespace as the view shows it (read-only), or an empty one. */
function runtimeOf(view: KernelView): RuntimeState {
  const ns = view.ext(RUNTIME_NAMESPACE) as RuntimeState | undefined;
  return ns ?? { runs: {}, agents: {} };
}

/** The writable runtime namespace inside `apply`. */
function writable(state: WorldState): RuntimeState {
  if (!Object.hasOwn(state.ext, RUNTIME_NAMESPACE)) state.ext[RUNTIME_NAMESPACE] = { runs: {}, agents: {}, ended: {} } satisfies RuntimeState;
  return state.ext[RUNTIME_NAMESPACE] as RuntimeState;
}

/*
 * Lookups in the runtime namespace use the kernel's `stateAt` (own members only: ids come from the wire), which
 * walks the plain objects behind the kernel's views instead of making a view per step.
 */

/** The runtime record of an agent, or undefined. */
function agentIn(rt: RuntimeState, id: string): AgentRuntimeRecord | undefined {
  return stateAt(rt, 'agents', id) as AgentRuntimeRecord | undefined;
}

/** A live run, or undefined. */
function liveRun(rt: RuntimeState, id: string): RunRecord | undefined {
  return stateAt(rt, 'runs', runShard(id), id) as RunRecord | undefined;
}

/** Every live run, in no particular order. */
export function liveRuns(rt: RuntimeState): RunRecord[] {
  return Object.values(rt.runs).flatMap((shard) => Object.values(shard));
}

/**
 * A run the state still holds: live, or ended and kept for its agent (own properties only: ids come from the
 * wire). A kept run is looked for agent by agent, which only a run that is not live costs.
 */
export function findRun(rt: RuntimeState, id: string): RunRecord | undefined {
  const live = liveRun(rt, id);
  if (live !== undefined) return live;
  if (rt.ended === undefined) return undefined;
  for (const kept of Object.values(rt.ended)) if (Object.hasOwn(kept, id)) return kept[id];
  return undefined;
}

function runIn(view: KernelView, id: string): RunRecord {
  const run = findRun(runtimeOf(view), id);
  if (run === undefined) throw new KernelError('UnknownEntity', `unknown run ${JSON.stringify(id)}`, { entity: 'run', id });
  if (run.vault !== view.vault) throw KernelError.denied('run outside the token vault');
  return run;
}

function requireState(run: RunRecord, ...allowed: RunState[]): void {
  if (!allowed.includes(run.state)) {
    throw KernelError.invalid(`run ${run.id} is ${run.state}, not ${allowed.join(' or ')}`);
  }
}

/** Only the subject that started the run records its steps (the agent's own token). */
function requireExecutor(run: RunRecord, env: OperationEnvelope): void {
  if (run.executor !== env.origin) throw KernelError.denied('only the run executor records its steps');
}

function boundedBytes(value: string, limit: keyof typeof RUNTIME_LIMITS): number {
  const bytes = utf8ByteLength(value);
  const max = RUNTIME_LIMITS[limit];
  if (bytes > max) throw KernelError.limit(limit, max, bytes);
  return bytes;
}

function freshId(env: OperationEnvelope, index: number): string {
  if (index >= env.ids.length) throw KernelError.invalid(`missing fresh id #${index + 1} in envelope ids`);
  return env.ids[index];
}

function requireLimits(v: unknown): Partial<RunLimits> {
  if (v === undefined) return {};
  const o = requireObject(v, 'limits');
  onlyFields(o, Object.keys(LIMIT_BOUNDS), 'limits');
  const out: Partial<RunLimits> = {};
  for (const key of Object.keys(LIMIT_BOUNDS) as (keyof RunLimits)[]) {
    const value = o[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > LIMIT_BOUNDS[key]) {
      throw KernelError.invalid(`limits.${key} must be an integer in 1..${LIMIT_BOUNDS[key]}`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * A run's limits: what the request asks, else the host's defaults; the timeout defaults to the agent's spec
 * bound when it has one, and never exceeds it.
 */
function runLimits(requested: Partial<RunLimits>, agent: AgentLimits | undefined): RunLimits {
  const limits = { ...DEFAULT_RUN_LIMITS, ...requested };
  if (agent?.timeoutMs !== undefined) limits.timeoutMs = Math.min(requested.timeoutMs ?? agent.timeoutMs, agent.timeoutMs);
  return limits;
}

function requireToolCall(v: unknown, where: string): RunToolCall {
  const o = requireObject(v, where);
  onlyFields(o, ['id', 'name', 'arguments'], where);
  requireId(o.id, `${where}.id`);
  requireText(o.name, `${where}.name`, 'toolNameChars', RUNTIME_LIMITS.toolNameChars);
  requireJson(o.arguments ?? null, `${where}.arguments`);
  return o as unknown as RunToolCall;
}

type RunEvent = KernelEvent & Record<string, unknown>;

/**
 * What each event of a run does to its record: the one definition the kernel applies (each handler's
 * `apply`) and the runner follows its own run by (`advanceRun`), so the two cannot drift. Each sets the
 * fields it changes one by one, then `updatedAt` (through the kernel's views, every assignment is a journaled
 * write; no object is built for it).
 */
const RUN_STEPS: Readonly<Record<string, (run: RunRecord, e: RunEvent) => void>> = {
  RunStarted: (run, e) => {
    run.state = 'working';
    run.executor = e.executor as string;
    run.startedAt = e.at;
    run.updatedAt = e.at;
  },
  LlmTurnRecorded: (run, e) => {
    run.turns += 1;
    run.tokens += e.tokens as number;
    run.outputBytes += e.bytes as number;
    run.updatedAt = e.at;
  },
  ToolCallRequested: (run, e) => {
    run.toolCalls += 1;
    const approval = e.approval as ApprovalRecord | undefined;
    if (approval) {
      run.state = 'input-required';
      run.approval = approval;
    }
    run.updatedAt = e.at;
  },
  ApprovalResolved: (run, e) => {
    delete run.approval;
    run.state = 'working';
    run.updatedAt = e.at;
  },
  ToolResultRecorded: (run, e) => {
    run.outputBytes += e.bytes as number;
    run.updatedAt = e.at;
  },
  ToolProgressRecorded: (run, e) => {
    run.updatedAt = e.at;
  },
  RunCompleted: (run, e) => {
    run.state = 'completed';
    run.text = e.text as string;
    run.artifacts = e.artifacts as RunArtifact[];
    run.updatedAt = e.at;
  },
  RunFailed: (run, e) => {
    delete run.approval;
    run.state = 'failed';
    run.reason = e.reason as RunRecord['reason'];
    run.updatedAt = e.at;
  },
  RunCancelled: (run, e) => {
    delete run.approval;
    run.state = 'canceled';
    run.reason = { code: 'Cancelled', message: e.reason as string };
    run.updatedAt = e.at;
  },
};

/**
 * Bring `run` up to date with one event of it (a step of its lifecycle after `RunSubmitted`), exactly as the
 * kernel does; false when the event is not one. The record is changed in place, top-level fields only.
 */
export function advanceRun(run: RunRecord, event: KernelEvent): boolean {
  if (!Object.hasOwn(RUN_STEPS, event.type) || (event as RunEvent).run !== run.id) return false;
  RUN_STEPS[event.type](run, event as RunEvent);
  return true;
}

/** Apply a step event to the run it names in the live state. */
function applyStep(event: KernelEvent, state: WorldState): void {
  RUN_STEPS[event.type](liveRun(writable(state), (event as RunEvent).run as string)!, event as RunEvent);
}

/**
 * Apply a run's last event: the run leaves the live runs for its agent's kept ended runs, and when the agent
 * then keeps more than `ENDED_RUNS_KEPT`, the one that ended first (then the lowest id) leaves the state. The
 * choice reads only the records, never member order, so a state restored from a snapshot evicts alike.
 */
function applyEnd(event: KernelEvent, state: WorldState): void {
  const rt = writable(state);
  const id = (event as RunEvent).run as string;
  const shard = stateAt(rt, 'runs', runShard(id)) as Record<string, RunRecord>;
  const run = shard[id];
  RUN_STEPS[event.type](run, event as RunEvent);
  if (!Object.hasOwn(rt, 'ended')) rt.ended = {};
  const ended = rt.ended!;
  if (!Object.hasOwn(ended, run.agent)) ended[run.agent] = {};
  const kept = ended[run.agent];
  kept[id] = run;
  delete shard[id];
  // The state is read through the kernel's views: `stateColumn` lists the ids and their end times at once.
  const { keys: ids, values: ends } = stateColumn(kept, 'updatedAt');
  if (ids.length <= ENDED_RUNS_KEPT) return;
  let oldest = ids[0];
  let oldestAt = ends[0] as number;
  for (let i = 1; i < ids.length; i++) {
    const at = ends[i] as number;
    if (at < oldestAt || (at === oldestAt && ids[i] < oldest)) {
      oldest = ids[i];
      oldestAt = at;
    }
  }
  delete kept[oldest];
}

/** One handler of the family: shared namespace, its own opcode and events. */
function handler(h: Omit<OpcodeHandler, 'namespace' | 'acceptsSnapshot'>): OpcodeHandler {
  return { ...h, namespace: RUNTIME_NAMESPACE, acceptsSnapshot: shardedLayout };
}

/**
 * Whether a snapshot keeps live runs by shard (`runShard`: keys of at most two characters), as `apply` does;
 * an older snapshot keyed them by run id.
 */
function shardedLayout(state: Readonly<WorldState>): boolean {
  if (!Object.hasOwn(state.ext, RUNTIME_NAMESPACE)) return true;
  const runs = (state.ext[RUNTIME_NAMESPACE] as { runs?: unknown }).runs;
  return typeof runs === 'object' && runs !== null && Object.keys(runs).every((key) => key.length <= 2);
}

/** Record the runtime facts of a spawned agent: its spec digest and document, its grant and bound. */
export const registerAgent = handler({
  opcode: 'RegisterAgentRuntime',
  permission: 'agent:spawn',
  eventTypes: ['AgentRuntimeRegistered'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'agent', 'specDigest', 'specName', 'spec', 'grant', 'subject', 'permissions', 'limits'], 'RegisterAgentRuntime');
    if (o.limits !== undefined) {
      const limits = requireObject(o.limits, 'limits');
      onlyFields(limits, ['timeoutMs', 'maxMemoryBytes'], 'limits');
      for (const [key, value] of Object.entries(limits)) {
        if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw KernelError.invalid(`limits.${key} must be a positive integer`);
      }
    }
    requireId(o.agent, 'agent');
    const digest = requireString(o.specDigest, 'specDigest');
    if (!/^[0-9a-f]{64}$/.test(digest)) throw KernelError.invalid('specDigest must be a hex SHA-256');
    requireText(o.specName, 'specName', 'messageChars', RUNTIME_LIMITS.messageChars);
    requireJson(o.spec, 'spec');
    boundedBytes(JSON.stringify(o.spec), 'specBytes');
    requireId(o.grant, 'grant');
    requireId(o.subject, 'subject');
    for (const p of requireStringArray(o.permissions, 'permissions')) {
      if (!isKnownPermission(p)) throw KernelError.invalid(`unknown permission ${JSON.stringify(p)}`);
    }
  },
  execute(env, view) {
    const o = fields(env);
    const agent = view.agent(o.agent as string);
    const grant = view.grant(o.grant as string);
    if (grant.subject !== o.subject) throw KernelError.invalid('the grant is not for the agent subject');
    if (Object.hasOwn(runtimeOf(view).agents, agent.id)) throw KernelError.invalid(`agent ${agent.id} is already registered`);
    const record: AgentRuntimeRecord = {
      agent: agent.id,
      specDigest: o.specDigest as string,
      specName: o.specName as string,
      grant: grant.id,
      subject: o.subject as string,
      permissions: [...(o.permissions as string[])],
      terminated: false,
      ...(o.limits !== undefined ? { limits: { ...(o.limits as AgentLimits) } } : {}),
    };
    return [view.event('AgentRuntimeRegistered', { agent: agent.id, record, spec: o.spec })];
  },
  apply(event, state) {
    const e = event as KernelEvent & { record: AgentRuntimeRecord };
    writable(state).agents[e.record.agent] = e.record;
  },
});

/** Ask an agent to do a task: a run in state `submitted`. */
export const submitRun = handler({
  opcode: 'SubmitRun',
  permission: 'task:run',
  eventTypes: ['RunSubmitted'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'agent', 'input', 'task', 'limits'], 'SubmitRun');
    requireId(o.agent, 'agent');
    requireText(o.input, 'input', 'inputBytes', RUNTIME_LIMITS.inputBytes);
    boundedBytes(o.input as string, 'inputBytes');
    if (o.task !== undefined) requireId(o.task, 'task');
    requireLimits(o.limits);
  },
  execute(env, view) {
    const o = fields(env);
    const agent = view.agent(o.agent as string);
    const rt = runtimeOf(view);
    const record = agentIn(rt, agent.id);
    if (record?.terminated) throw KernelError.invalid(`agent ${agent.id} is terminated`);
    if (o.task !== undefined) view.task(agent.id, o.task as string);
    const id = freshId(env, 0);
    if (liveRun(rt, id) !== undefined || stateAt(rt, 'ended', agent.id, id) !== undefined) {
      throw KernelError.invalid(`id ${JSON.stringify(id)} already in use`);
    }
    const run: RunRecord = {
      id,
      agent: agent.id,
      vault: agent.vault,
      state: 'submitted',
      input: o.input as string,
      ...(o.task !== undefined ? { task: o.task as string } : {}),
      requestedBy: env.origin,
      limits: runLimits(requireLimits(o.limits), record?.limits),
      createdAt: env.at,
      updatedAt: env.at,
      turns: 0,
      toolCalls: 0,
      tokens: 0,
      outputBytes: 0,
    };
    return [view.event('RunSubmitted', { agent: agent.id, run })];
  },
  apply(event, state) {
    const e = event as KernelEvent & { run: RunRecord };
    const runs = writable(state).runs;
    const shard = runShard(e.run.id);
    if (!Object.hasOwn(runs, shard)) runs[shard] = {};
    runs[shard][e.run.id] = e.run;
  },
});

/** A worker takes the run: `working`, executed from now on by the caller (the agent's own token). */
export const startRun = handler({
  opcode: 'StartRun',
  permission: 'task:run',
  eventTypes: ['RunStarted'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run'], 'StartRun');
    requireId(o.run, 'run');
  },
  execute(env, view) {
    const run = runIn(view, fields(env).run as string);
    requireState(run, 'submitted');
    const agent = agentIn(runtimeOf(view), run.agent);
    if (agent) {
      if (agent.terminated) throw KernelError.invalid(`agent ${run.agent} is terminated`);
      if (env.origin !== agent.subject) throw KernelError.denied("a registered agent's runs are started by its own token");
    }
    return [view.event('RunStarted', { agent: run.agent, run: run.id, executor: env.origin })];
  },
  apply: applyStep,
});

/** One LLM turn, as the provider returned it (plain JSON): the run's non-deterministic input, recorded. */
export const recordLlmTurn = handler({
  opcode: 'RecordLlmTurn',
  permission: 'task:run',
  eventTypes: ['LlmTurnRecorded'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'turn'], 'RecordLlmTurn');
    requireId(o.run, 'run');
    const turn = requireObject(o.turn, 'turn');
    requireJson(turn, 'turn');
    boundedBytes(JSON.stringify(turn), 'turnBytes');
    requireString(turn.text, 'turn.text');
    if (!Array.isArray(turn.toolCalls)) throw KernelError.invalid('turn.toolCalls must be an array');
    turn.toolCalls.forEach((c, i) => requireToolCall(c, `turn.toolCalls[${i}]`));
    const usage = requireObject(turn.usage, 'turn.usage');
    for (const k of ['inputTokens', 'outputTokens']) {
      if (typeof usage[k] !== 'number' || !Number.isSafeInteger(usage[k]) || (usage[k] as number) < 0) {
        throw KernelError.invalid(`turn.usage.${k} must be a non-negative integer`);
      }
    }
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'working');
    requireExecutor(run, env);
    const turn = o.turn as { text: string; usage: { inputTokens: number; outputTokens: number } };
    return [
      view.event('LlmTurnRecorded', {
        agent: run.agent,
        run: run.id,
        turn: o.turn,
        tokens: turn.usage.inputTokens + turn.usage.outputTokens,
        bytes: utf8ByteLength(turn.text),
      }),
    ];
  },
  apply: applyStep,
});

/**
 * The runtime's decision on one tool call: `allowed` (it runs now), `denied` (the agent's token does not
 * cover it), or `approval` (privileged: the run waits in `input-required` for a holder of `task:approve`).
 */
export const requestToolCall = handler({
  opcode: 'RequestToolCall',
  permission: 'task:run',
  eventTypes: ['ToolCallRequested'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'call', 'decision', 'permission'], 'RequestToolCall');
    requireId(o.run, 'run');
    requireToolCall(o.call, 'call');
    if (!['allowed', 'denied', 'approval'].includes(o.decision as string)) {
      throw KernelError.invalid('decision must be allowed, denied or approval');
    }
    requireText(o.permission, 'permission', 'messageChars', 64);
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'working');
    requireExecutor(run, env);
    const call = o.call as RunToolCall;
    const approval: ApprovalRecord | undefined =
      o.decision === 'approval'
        ? { id: freshId(env, 0), run: run.id, agent: run.agent, call, permission: o.permission as string, requestedAt: env.at }
        : undefined;
    return [
      view.event('ToolCallRequested', {
        agent: run.agent,
        run: run.id,
        call,
        decision: o.decision,
        permission: o.permission,
        ...(approval ? { approval } : {}),
      }),
    ];
  },
  apply: applyStep,
});

/** A human decision on the pending approval: back to `working`. The approver is never the executor. */
export const resolveApproval = handler({
  opcode: 'ResolveApproval',
  permission: 'task:approve',
  eventTypes: ['ApprovalResolved'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'approval', 'decision', 'note'], 'ResolveApproval');
    requireId(o.run, 'run');
    requireId(o.approval, 'approval');
    if (o.decision !== 'approve' && o.decision !== 'deny') throw KernelError.invalid('decision must be approve or deny');
    optionalText(o.note, 'note', 'messageChars', RUNTIME_LIMITS.messageChars);
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'input-required');
    if (run.approval?.id !== o.approval) throw KernelError.invalid(`approval ${String(o.approval)} is not pending on run ${run.id}`);
    if (env.origin === run.executor) throw KernelError.denied('an agent cannot approve its own tool call');
    return [
      view.event('ApprovalResolved', {
        agent: run.agent,
        run: run.id,
        approval: o.approval,
        call: run.approval!.call,
        decision: o.decision,
        ...(o.note !== undefined ? { note: o.note } : {}),
      }),
    ];
  },
  apply: applyStep,
});

/** What a tool call produced (or why it did not run), as the LLM will see it. */
export const recordToolResult = handler({
  opcode: 'RecordToolResult',
  permission: 'task:run',
  eventTypes: ['ToolResultRecorded'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'result'], 'RecordToolResult');
    requireId(o.run, 'run');
    const r = requireObject(o.result, 'result');
    onlyFields(r, ['callId', 'content', 'isError', 'code'], 'result');
    requireId(r.callId, 'result.callId');
    boundedBytes(requireString(r.content, 'result.content'), 'toolResultBytes');
    if (typeof r.isError !== 'boolean') throw KernelError.invalid('result.isError must be a boolean');
    if (r.code !== undefined) requireText(r.code, 'result.code', 'toolNameChars', RUNTIME_LIMITS.toolNameChars);
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'working');
    requireExecutor(run, env);
    const result = o.result as RunToolResult;
    return [view.event('ToolResultRecorded', { agent: run.agent, run: run.id, result, bytes: utf8ByteLength(result.content) })];
  },
  apply: applyStep,
});

/** An update a running tool saw (a remote task's status or artifact): recorded, never shown to the LLM. */
export const recordToolProgress = handler({
  opcode: 'RecordToolProgress',
  permission: 'task:run',
  eventTypes: ['ToolProgressRecorded'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'progress'], 'RecordToolProgress');
    requireId(o.run, 'run');
    const p = requireObject(o.progress, 'progress');
    onlyFields(p, ['callId', 'kind', 'subject', 'state', 'name', 'text'], 'progress');
    requireId(p.callId, 'progress.callId');
    if (p.kind !== 'status' && p.kind !== 'artifact') throw KernelError.invalid('progress.kind must be status or artifact');
    requireText(p.subject, 'progress.subject', 'messageChars', RUNTIME_LIMITS.messageChars);
    optionalText(p.state, 'progress.state', 'toolNameChars', RUNTIME_LIMITS.toolNameChars);
    optionalText(p.name, 'progress.name', 'messageChars', RUNTIME_LIMITS.messageChars);
    optionalText(p.text, 'progress.text', 'toolProgressChars', RUNTIME_LIMITS.toolProgressChars);
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'working');
    requireExecutor(run, env);
    return [view.event('ToolProgressRecorded', { agent: run.agent, run: run.id, progress: o.progress as RunToolProgress })];
  },
  apply: applyStep,
});

export const completeRun = handler({
  opcode: 'CompleteRun',
  permission: 'task:run',
  eventTypes: ['RunCompleted'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'text', 'artifacts'], 'CompleteRun');
    requireId(o.run, 'run');
    requireString(o.text, 'text');
    const artifacts = o.artifacts ?? [];
    if (!Array.isArray(artifacts)) throw KernelError.invalid('artifacts must be an array');
    if (artifacts.length > RUNTIME_LIMITS.artifacts) throw KernelError.limit('artifacts', RUNTIME_LIMITS.artifacts, artifacts.length);
    const names = new Set<string>();
    for (const [i, a] of artifacts.entries()) {
      if (!isPlainObject(a)) throw KernelError.invalid(`artifacts[${i}] must be an object`);
      onlyFields(a, ['name', 'text'], `artifacts[${i}]`);
      const name = requireText(a.name, `artifacts[${i}].name`, 'toolNameChars', RUNTIME_LIMITS.toolNameChars);
      requireString(a.text, `artifacts[${i}].text`);
      if (names.has(name)) throw KernelError.invalid(`artifact name ${JSON.stringify(name)} repeated`);
      names.add(name);
    }
    boundedBytes(JSON.stringify([o.text, artifacts]), 'completionBytes');
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'working');
    requireExecutor(run, env);
    return [view.event('RunCompleted', { agent: run.agent, run: run.id, text: o.text, artifacts: (o.artifacts ?? []) as RunArtifact[] })];
  },
  apply: applyEnd,
});

export const failRun = handler({
  opcode: 'FailRun',
  permission: 'task:run',
  eventTypes: ['RunFailed'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'code', 'message', 'limit'], 'FailRun');
    requireId(o.run, 'run');
    if (!(FAILURE_CODES as readonly unknown[]).includes(o.code)) throw KernelError.invalid(`code must be one of ${FAILURE_CODES.join(', ')}`);
    requireText(o.message, 'message', 'messageChars', RUNTIME_LIMITS.messageChars);
    if (o.limit !== undefined) requireText(o.limit, 'limit', 'toolNameChars', RUNTIME_LIMITS.toolNameChars);
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    requireState(run, 'working', 'submitted', 'input-required');
    if (run.state !== 'submitted') requireExecutor(run, env);
    const reason = { code: o.code, message: o.message, ...(o.limit !== undefined ? { limit: o.limit } : {}) };
    return [view.event('RunFailed', { agent: run.agent, run: run.id, reason })];
  },
  apply: applyEnd,
});

/** Cancel a run that has not ended (any holder of `task:cancel` in the vault). */
export const cancelRun = handler({
  opcode: 'CancelRun',
  permission: 'task:cancel',
  eventTypes: ['RunCancelled'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'run', 'reason'], 'CancelRun');
    requireId(o.run, 'run');
    optionalText(o.reason, 'reason', 'messageChars', RUNTIME_LIMITS.messageChars);
  },
  execute(env, view) {
    const o = fields(env);
    const run = runIn(view, o.run as string);
    if (TERMINAL_RUN_STATES.includes(run.state)) {
      throw new KernelError('InvalidOperation', `run ${run.id} has already ended (${run.state})`, { reason: 'not cancelable', state: run.state });
    }
    return [view.event('RunCancelled', { agent: run.agent, run: run.id, reason: (o.reason as string | undefined) ?? 'cancelled' })];
  },
  apply: applyEnd,
});

/** Terminate an agent: no run of it starts again (its live runs are cancelled by the runtime). */
export const terminateAgent = handler({
  opcode: 'TerminateAgent',
  permission: 'agent:terminate',
  eventTypes: ['AgentTerminated'],
  validate(op) {
    const o = op as unknown as Fields;
    onlyFields(o, ['type', 'agent', 'reason'], 'TerminateAgent');
    requireId(o.agent, 'agent');
    optionalText(o.reason, 'reason', 'messageChars', RUNTIME_LIMITS.messageChars);
  },
  execute(env, view) {
    const o = fields(env);
    const agent = view.agent(o.agent as string);
    if (agent.parent === null) throw KernelError.invalid('a root agent cannot be terminated');
    const rt = runtimeOf(view);
    if (agentIn(rt, agent.id)?.terminated) throw KernelError.invalid(`agent ${agent.id} is already terminated`);
    return [view.event('AgentTerminated', { agent: agent.id, reason: (o.reason as string | undefined) ?? 'terminated' })];
  },
  apply(event, state) {
    const e = event as KernelEvent & { agent: string };
    const rt = writable(state);
    if (Object.hasOwn(rt.agents, e.agent)) rt.agents[e.agent].terminated = true;
    else rt.agents[e.agent] = { agent: e.agent, specDigest: '', specName: '', grant: '', subject: '', permissions: [], terminated: true };
  },
});

/** The family, in registration order. */
export const RUNTIME_HANDLERS: OpcodeHandler[] = [
  registerAgent,
  submitRun,
  startRun,
  recordLlmTurn,
  requestToolCall,
  resolveApproval,
  recordToolResult,
  recordToolProgress,
  completeRun,
  failRun,
  cancelRun,
  terminateAgent,
];

/** The runtime namespace of a world state (empty when no run ever happened). */
export function runtimeState(state: Readonly<WorldState>): RuntimeState {
  return Object.hasOwn(state.ext, RUNTIME_NAMESPACE) ? (state.ext[RUNTIME_NAMESPACE] as RuntimeState) : { runs: {}, agents: {} };
}
