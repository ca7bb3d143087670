/**
 * One run, step by step: LLM turn → tool calls → results → next turn, until the model is done, a limit is
 * hit, the run is cancelled, or a privileged call waits for a human. Every step is an operation submitted
 * with the agent's own token (so the host authorises and the log records it); the conversation is rebuilt
 * from the log each time a run is (re)entered, so a restarted host resumes exactly where the log ends.
 */
import { permits } from '../../protocol/capability.js';
import type { LogRecord } from '../../protocol/events.js';
import type { KernelEvent, Operation } from '../../protocol/kernel.js';
import type { RunRecord, RunToolCall, RunToolResult } from '../../protocol/runtime.js';
import { HostError } from '../host/errors.js';
import type { Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import { LIMITS, LlmError, type LlmMessage, type LlmProvider, type LlmTurn } from './llm/provider.js';
import { advanceRun } from './lifecycle.js';
import type { LoadedSpec, SpawnResult } from './runtime.js';
import { ToolError } from './tools/errors.js';
import type { ToolRegistry } from './tools/registry.js';
import type { KernelAccess, ToolLimits } from './tools/types.js';

/** Event types that make up a run's conversation, in log order. */
export const CONVERSATION_EVENTS = ['LlmTurnRecorded', 'ToolCallRequested', 'ApprovalResolved', 'ToolResultRecorded'] as const;

/** What a runner needs: the host calls it makes (already bound to the right sessions) and the run's parts. */
export interface RunContext {
  /** The agent's own session (token renewed by the runtime before it expires). */
  agentSession(): Promise<Session>;
  /** Submit an operation and wait until it is durable (what a tool's kernel access uses). */
  submit(session: Session, op: Operation): Promise<LogRecord[]>;
  /**
   * Submit one of the run's own steps: resolves once the kernel has executed it, with its events, before they
   * are durable (`durable` settles then). The group commit is in order, so the last step's `durable` settles
   * no earlier than any before it.
   */
  stage(session: Session, op: Operation): Promise<{ events: readonly KernelEvent[]; durable: Promise<unknown> }>;
  /** The run as it stood when the runner was entered (durable: from the log or a durable read). */
  run: RunRecord;
  /** The run's conversation events so far, in log order (read only when the run has started). */
  history(): Promise<LogRecord[]>;
  /** The run as the kernel has it now. */
  current(): Promise<RunRecord>;
  provider: LlmProvider;
  tools: ToolRegistry;
  toolLimits: ToolLimits;
  workspace: string;
  system?: string;
  /**
   * The run's abort: the runtime aborts it to cancel the run (any reason but a `DeadlineError`), the runner
   * aborts it with a `DeadlineError` when the run's time is up. The LLM call and the tool in flight get its signal.
   */
  controller: AbortController;
  now(): number;
  logger: Logger;
  onText?(delta: string): void;
  /**
   * Spawn a sub-agent with `session` (the agent's own) under `parent` (AgentRuntime.spawn). Given, the tools
   * of a call get `ToolContext.kernel`, bound to the agent's session; absent, kernel tools refuse to run.
   */
  spawn?(session: Session, loaded: LoadedSpec, options: { parent: string }): Promise<SpawnResult>;
}

/** Marker ending a tool result cut to the prompt part limit; `{kept}` and `{total}` are character counts. */
export const TRUNCATION_MARKER = '\n[tool output truncated: {kept} of {total} characters kept]';

/**
 * A tool result's content as the LLM may be sent it: at most `LIMITS.promptPartChars` characters (a longer
 * part would make every provider refuse the next turn), cut with a marker that says how much was kept.
 */
export function boundedContent(content: string): string {
  const max = LIMITS.promptPartChars;
  if (content.length <= max) return content;
  const marker = (kept: number) => TRUNCATION_MARKER.replace('{kept}', String(kept)).replace('{total}', String(content.length));
  let kept = max - marker(max).length;
  // Do not split a surrogate pair: the cut text stays well-formed UTF-16.
  const code = content.charCodeAt(kept - 1);
  if (code >= 0xd800 && code <= 0xdbff) kept -= 1;
  return content.slice(0, kept) + marker(kept);
}

/** How a runner stopped: the run ended, waits for an approval, or was cancelled (by someone else). */
export type RunnerOutcome = 'ended' | 'awaiting-approval' | 'cancelled';

type Decision = { decision: 'allowed' | 'denied' | 'approval'; resolved?: 'approve' | 'deny' };

/**
 * A run's LLM conversation, built from its recorded events in log order: the runner feeds it the history it
 * finds when it enters a run, then each step it records, so a step costs what it adds.
 */
export class Conversation {
  readonly messages: LlmMessage[];
  /** Calls of the last turn without a result yet, in order. */
  pending: RunToolCall[] = [];
  /** Decisions recorded for pending calls: by call id. */
  readonly decisions = new Map<string, Decision>();
  /** Results of the last turn's calls, not yet a message (they become one before the next turn). */
  private results: RunToolResult[] = [];

  constructor(input: string) {
    this.messages = [{ role: 'user', text: input }];
  }

  /** Take one event of the run into account (events that are not part of a conversation are ignored). */
  add(event: LogRecord['event']): void {
    const e = event as unknown as Record<string, unknown>;
    switch (event.type) {
      case 'LlmTurnRecorded': {
        this.flushResults();
        const turn = e.turn as LlmTurn;
        this.messages.push({ role: 'assistant', text: turn.text, toolCalls: turn.toolCalls });
        this.pending = turn.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
        this.decisions.clear();
        break;
      }
      case 'ToolCallRequested':
        this.decisions.set((e.call as RunToolCall).id, { decision: e.decision as Decision['decision'] });
        break;
      case 'ApprovalResolved': {
        const d = this.decisions.get((e.call as RunToolCall).id);
        if (d) d.resolved = e.decision as 'approve' | 'deny';
        break;
      }
      case 'ToolResultRecorded': {
        const result = e.result as RunToolResult;
        this.results.push(result);
        this.pending = this.pending.filter((c) => c.id !== result.callId);
        break;
      }
    }
  }

  /** The messages to send the LLM next: every result recorded so far is in them. */
  prompt(): LlmMessage[] {
    this.flushResults();
    return [...this.messages];
  }

  private flushResults(): void {
    if (this.results.length > 0) this.messages.push({ role: 'tool', results: this.results.map(({ callId, content, isError }) => ({ callId, content, isError })) });
    this.results = [];
  }
}

class RunEnded extends Error {}

/**
 * Drive the run until it ends, waits for an approval, or is cancelled. The runner starts from `ctx.run` and
 * follows its own run by the events its steps return (`advanceRun`, the kernel's own transitions); others
 * change a live run only by cancelling it (the runtime aborts `ctx.controller`) or, while it waits for an
 * approval, by resolving it (the runtime enters the run again). A step the kernel refuses because the run
 * changed under it makes the runner read the run as the kernel has it (`ctx.current()`).
 *
 * Steps are staged: the runner goes on as soon as the kernel has executed one, so a run's steps share group
 * commits instead of waiting one commit each. Nothing leaves the host before what led to it is durable: every
 * staged step is durable before a tool runs and before the runner returns. An LLM call may go out while the
 * step before it is still being committed; after a crash the run resumes from the log's last durable step and
 * asks again, as it does when a crash falls between a reply and its record.
 */
export async function driveRun(ctx: RunContext): Promise<RunnerOutcome> {
  const run: RunRecord = { ...ctx.run };
  // Conversation events all come after the run starts: a run still `submitted` has none to read.
  const conversation = new Conversation(run.input);
  if (run.state !== 'submitted') for (const { event } of await ctx.history()) conversation.add(event);
  let lastStep: Promise<unknown> = Promise.resolve();
  const steps: RunSteps = {
    submit: async (op: Operation): Promise<void> => {
      if (cancelled(ctx)) throw new RunEnded();
      let staged: Awaited<ReturnType<RunContext['stage']>>;
      try {
        staged = await ctx.stage(await ctx.agentSession(), op);
      } catch (err) {
        // The run changed under us (cancelled from another face, or ended): stop quietly, the log says why.
        if (err instanceof HostError && err.errorName === 'InvalidOperation') {
          const now = await ctx.current();
          if (now.state !== 'working' && now.state !== 'submitted') throw new RunEnded();
        }
        throw err;
      }
      lastStep = staged.durable;
      for (const event of staged.events) if (advanceRun(run, event)) conversation.add(event);
    },
    durable: () => lastStep,
  };
  try {
    return await drive(ctx, run, conversation, steps);
  } finally {
    await lastStep;
  }
}

/** The runner's own steps: staged one after another, and a wait until every one so far is durable. */
interface RunSteps {
  submit(op: Operation): Promise<void>;
  durable(): Promise<unknown>;
}

async function drive(ctx: RunContext, run: RunRecord, conversation: Conversation, steps: RunSteps): Promise<RunnerOutcome> {
  const session = async () => ctx.agentSession();
  const submit = steps.submit;
  const fail = async (code: string, message: string, limit?: string) => {
    await submit({ type: 'FailRun', run: run.id, code, message: message.slice(0, 4000), ...(limit ? { limit } : {}) });
    return 'ended' as const;
  };

  let timer: NodeJS.Timeout | undefined;
  const timedOut = () => fail('LimitExceeded', `run took longer than ${run.limits.timeoutMs} ms`, 'timeoutMs');
  try {
    if (run.state === 'submitted') await submit({ type: 'StartRun', run: run.id });
    if (run.state === 'canceled') return 'cancelled';
    if (run.state !== 'working' && run.state !== 'input-required') return 'ended';
    const deadline = (run.startedAt ?? run.createdAt) + run.limits.timeoutMs;
    // One timer for the run's time: it aborts the call in flight when the time is up. Each call also checks the
    // clock first, so a run whose time is up never starts one (and replay, on recorded times, sees the same).
    const remaining = deadline - ctx.now();
    timer = remaining > 0 ? setTimeout(() => ctx.controller.abort(new DeadlineError()), remaining) : undefined;

    for (;;) {
      if (cancelled(ctx)) return 'cancelled';
      if (run.state === 'input-required') return 'awaiting-approval';
      if (run.state !== 'working') return run.state === 'canceled' ? 'cancelled' : 'ended';
      if (ctx.now() >= deadline) return await timedOut();
      const agent = await session();

      if (conversation.pending.length > 0) {
        const call = conversation.pending[0];
        const decided = conversation.decisions.get(call.id);
        const outcome = await handleCall(ctx, run, agent.claims.permissions, call, decided, steps, deadline);
        if (outcome !== null) return outcome;
        continue;
      }

      if (run.turns >= run.limits.maxTurns) return await fail('LimitExceeded', `run reached ${run.limits.maxTurns} LLM turns`, 'maxTurns');
      if (run.tokens >= run.limits.maxTokens) return await fail('LimitExceeded', `run used ${run.tokens} of ${run.limits.maxTokens} LLM tokens`, 'maxTokens');
      const offered = ctx.tools.list(agent.claims.permissions).map((m) => ({ name: m.name, description: m.description, inputSchema: m.inputSchema }));
      let turn: LlmTurn;
      try {
        turn = await ctx.provider.complete({ system: ctx.system, messages: conversation.prompt(), tools: offered }, { signal: ctx.controller.signal, onText: ctx.onText });
      } catch (err) {
        if (cancelled(ctx)) return 'cancelled';
        if (ctx.controller.signal.aborted) return await timedOut();
        const message = err instanceof LlmError ? `${err.code}: ${err.message}` : 'LLM call failed';
        if (!(err instanceof LlmError)) ctx.logger.error('LLM call failed', { err, run: run.id });
        return await fail('LlmError', message);
      }
      await submit({ type: 'RecordLlmTurn', run: run.id, turn: toJson(turn) });
      if (run.tokens > run.limits.maxTokens) return await fail('LimitExceeded', `run used ${run.tokens} of ${run.limits.maxTokens} LLM tokens`, 'maxTokens');
      if (run.outputBytes > run.limits.maxOutputBytes) {
        return await fail('LimitExceeded', `run produced ${run.outputBytes} of ${run.limits.maxOutputBytes} output bytes`, 'maxOutputBytes');
      }
      if (turn.toolCalls.length === 0) {
        await submit({ type: 'CompleteRun', run: run.id, text: turn.text, artifacts: [{ name: 'response', text: turn.text }] });
        return 'ended';
      }
    }
  } catch (err) {
    if (err instanceof RunEnded) return cancelled(ctx) ? 'cancelled' : 'ended';
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the run was cancelled (its abort has another reason than its time being up). */
function cancelled(ctx: RunContext): boolean {
  const signal = ctx.controller.signal;
  return signal.aborted && !(signal.reason instanceof DeadlineError);
}

/** Decide, run and record one pending tool call; null to go on with the loop, else how the runner stops. */
async function handleCall(
  ctx: RunContext,
  run: RunRecord,
  held: readonly string[],
  call: RunToolCall,
  decided: Decision | undefined,
  steps: RunSteps,
  deadline: number,
): Promise<RunnerOutcome | null> {
  const submit = steps.submit;
  const record = async (result: Omit<RunToolResult, 'callId'>) => {
    await submit({ type: 'RecordToolResult', run: run.id, result: { callId: call.id, ...result, content: boundedContent(result.content) } });
  };
  const tool = ctx.tools.get(call.name);
  if (decided === undefined) {
    if (run.toolCalls >= run.limits.maxToolCalls) {
      await submit({ type: 'FailRun', run: run.id, code: 'LimitExceeded', message: `run reached ${run.limits.maxToolCalls} tool calls`, limit: 'maxToolCalls' });
      return 'ended';
    }
    const permission = tool?.manifest.permission ?? 'none';
    const allowed = tool !== undefined && permits(held, permission);
    const decision = !allowed ? 'denied' : tool.manifest.sideEffect === 'privileged' ? 'approval' : 'allowed';
    await submit({ type: 'RequestToolCall', run: run.id, call, decision, permission });
    if (decision === 'approval') return 'awaiting-approval';
    if (decision === 'denied') {
      const content = tool === undefined ? `unknown tool ${call.name}` : `denied: the agent's token does not hold ${permission}`;
      await record({ content, isError: true, code: tool === undefined ? 'UnknownTool' : 'Denied' });
      return null;
    }
  } else if (decided.decision === 'denied') {
    await record({ content: `denied: the agent's token does not hold ${tool?.manifest.permission ?? 'the tool'}`, isError: true, code: 'Denied' });
    return null;
  } else if (decided.decision === 'approval') {
    if (decided.resolved === undefined) return 'awaiting-approval';
    if (decided.resolved === 'deny') {
      await record({ content: 'denied: a human declined this call', isError: true, code: 'ApprovalDenied' });
      return null;
    }
  }
  if (tool === undefined) {
    await record({ content: `unknown tool ${call.name}`, isError: true, code: 'UnknownTool' });
    return null;
  }
  const timedOut = async () => {
    await submit({ type: 'FailRun', run: run.id, code: 'LimitExceeded', message: `run took longer than ${run.limits.timeoutMs} ms`, limit: 'timeoutMs' });
    return 'ended' as const;
  };
  if (ctx.now() >= deadline) return timedOut();
  // The call and everything before it are in the log before the tool acts on the world.
  await steps.durable();
  const signal = ctx.controller.signal;
  let result: RunToolResult | Omit<RunToolResult, 'callId'>;
  try {
    const out = await ctx.tools.call(call.name, call.arguments, { signal, workspace: ctx.workspace, limits: ctx.toolLimits, agentId: run.agent, kernel: kernelAccess(ctx, run, held, call.id) }, held);
    result = { content: out.content, isError: out.isError };
  } catch (err) {
    if (cancelled(ctx)) return 'cancelled';
    if (signal.aborted) return timedOut();
    if (err instanceof ToolError) result = { content: err.message, isError: true, code: err.code };
    else {
      ctx.logger.error('tool call failed', { err, run: run.id, tool: call.name });
      result = { content: 'the tool failed', isError: true, code: 'Failed' };
    }
  }
  await record(result);
  return null;
}

/** The kernel as the run's agent may use it from a tool: every call with the agent's own session. */
function kernelAccess(ctx: RunContext, run: RunRecord, held: readonly string[], callId: string): KernelAccess | undefined {
  const spawn = ctx.spawn;
  if (spawn === undefined) return undefined;
  return {
    agent: run.agent,
    permissions: held,
    submit: async (op) => ctx.submit(await ctx.agentSession(), op),
    spawn: async (loaded) => spawn(await ctx.agentSession(), loaded, { parent: run.agent }),
    progress: async (update) => {
      await ctx.submit(await ctx.agentSession(), { type: 'RecordToolProgress', run: run.id, progress: { callId, ...update } });
    },
  };
}

/** The abort reason when a run's time is up. */
class DeadlineError extends Error {}

/** An LLM turn as plain JSON (what the kernel records). */
function toJson(turn: LlmTurn): LlmTurn {
  return JSON.parse(JSON.stringify(turn)) as LlmTurn;
}
