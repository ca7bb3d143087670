/**
 * The A2A request handler behind every binding (JSON-RPC over HTTP and SSE, WebSocket): the
 * SDK's `A2ARequestHandler` over the agent runtime and the event log. A message becomes a run of the
 * addressed agent (`AgentRuntime.run`, with the caller's session); a task is the run, read back from the
 * log (the log is the task store: no task is held in memory); `input-required` is a pending approval, and a
 * follow-up message on the task answers it. Streams take the run's records from the face's task feed
 * (feed.ts: the log followed once, its latest task records kept), reading the log only for records the feed
 * no longer keeps, so nothing is missed or repeated; each update carries its log position.
 */
import type { ServerResponse } from 'node:http';
import {
  PushNotificationNotSupportedError,
  RequestMalformedError,
  TaskNotCancelableError,
  TaskNotFoundError,
  UnsupportedOperationError,
  ContentTypeNotSupportedError,
} from '@a2a-js/sdk/errors';
import { Role, TaskState, type AgentCard, type ListTasksRequest, type ListTasksResponse, type Message, type StreamResponse, type Task } from '@a2a-js/sdk';
import type { A2ARequestHandler, ServerCallContext, User } from '@a2a-js/sdk/server';
import type { LogRecord } from '../../../protocol/events.js';
import { TERMINAL_RUN_STATES, type RunRecord, type RunState } from '../../../protocol/runtime.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { RUNTIME_LIMITS } from '../../runtime/lifecycle.js';
import type { AgentRuntime } from '../../runtime/runtime.js';
import type { CardBuilder } from './card.js';
import { TaskFeed } from './feed.js';
import { isAfter, runStateOf, TASK_EVENT_TYPES, TaskFold, taskFromRun, type TaskUpdate, type UpdatePosition } from './tasks.js';

const TASK_EVENT_SET: ReadonlySet<string> = new Set(TASK_EVENT_TYPES);

/** Bounds of the A2A face. */
export const A2A_LIMITS = {
  /** Largest request body (JSON-RPC or HTTP+JSON) or WebSocket message, bytes. */
  maxBodyBytes: 1024 * 1024,
  /** Parts in one message. */
  maxParts: 32,
  /** One text or data part (data as JSON), bytes. */
  maxPartBytes: RUNTIME_LIMITS.inputBytes,
  /** The task text a message becomes (its parts joined), bytes: the runtime's bound on a run's input. */
  maxInputBytes: RUNTIME_LIMITS.inputBytes,
  /** Log records of one task waiting for a slow stream reader; beyond it the stream ends (resume to go on). */
  maxStreamBacklog: 1000,
  /** Tasks one ListTasks looks through. */
  maxListed: 1000,
} as const;

/** `ServerCallContext.state` keys the bindings and the handler share. */
export const STATE = {
  /** A HostError refusal (unauthenticated, denied, rate limited, unavailable) the binding answers with its own status. */
  refusal: 'toka.refusal',
  /** The position of the update just yielded by a stream (the binding's event id). */
  position: 'toka.position',
  /** The position a resuming subscriber saw last (from `Last-Event-ID` or the WebSocket `lastEventId`). */
  resumeAfter: 'toka.resumeAfter',
  /** The request's `Hangup`: the handler stops following its task once the caller is gone. */
  hangup: 'toka.hangup',
} as const;

/**
 * The caller of one request is gone: its connection closed before the answer, its stream was cancelled, or
 * the face is shutting down. One per request, so a plain object: an AbortController with its AbortSignal
 * (Node's EventTarget) cost more per request than the rest of the binding's own bookkeeping.
 */
export class Hangup {
  private listeners: (() => void)[] = [];
  private gone = false;

  /** The hang-up of an HTTP request: only a response cut off before its end means the caller is gone. */
  static of(res: ServerResponse): Hangup {
    const hangup = new Hangup();
    res.once('close', () => {
      if (!res.writableFinished) hangup.hangUp();
    });
    return hangup;
  }

  /** True once the caller is gone. */
  get happened(): boolean {
    return this.gone;
  }

  /** The caller is gone: each listener runs once (later calls do nothing). */
  hangUp(): void {
    if (this.gone) return;
    this.gone = true;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }

  /** Run `listener` when the caller goes; returns what stops that. */
  listen(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}

/** The caller, as the SDK's context carries it: the session its token opened. */
export class TokaUser implements User {
  constructor(readonly session: Session) {}
  get isAuthenticated(): boolean {
    return true;
  }
  get userName(): string {
    return this.session.principal;
  }
}

/** Where a stream starts. */
/**
 * Where a task's stream starts: every update (of a run just submitted, whose records start at `submittedSeq`),
 * one snapshot, or the updates after a position.
 */
type From = { kind: 'all'; submittedSeq: number } | { kind: 'snapshot' } | { kind: 'after'; position: UpdatePosition };

export interface A2aHandlerOptions {
  host: Host;
  runtime: AgentRuntime;
  cards: CardBuilder;
  /** The HTTP face's URL (cards name their interfaces under it). */
  baseUrl: string;
  logger: Logger;
  /** Task records kept for the streams just starting (default `FEED_RECENT`, feed.ts). */
  keptTaskRecords?: number;
}

export class TokaA2aHandler implements A2ARequestHandler {
  private readonly host: Host;
  private readonly runtime: AgentRuntime;
  private readonly feed: TaskFeed;

  constructor(private readonly options: A2aHandlerOptions) {
    this.host = options.host;
    this.runtime = options.runtime;
    this.feed = new TaskFeed(options.host, options.logger, options.keptTaskRecords);
  }

  /** Tasks followed now (blocking `SendMessage`s and streams waiting for their task's next update). */
  get following(): number {
    return this.feed.following;
  }

  getAgentCard(): Promise<AgentCard> {
    return this.options.cards.publicCard(this.options.baseUrl);
  }

  getAuthenticatedExtendedAgentCard(_params: unknown, context: ServerCallContext): Promise<AgentCard> {
    return this.guard(context, () => this.options.cards.extendedCard(sessionOf(context), this.options.baseUrl));
  }

  sendMessage(params: Parameters<A2ARequestHandler['sendMessage']>[0], context: ServerCallContext): Promise<Message | Task> {
    return this.guard(context, async () => {
      const session = sessionOf(context);
      const { run, from } = await this.accept(session, params);
      const historyLength = params.configuration?.historyLength;
      const stream = this.updates(session, run, from, 'interrupted', context);
      if (params.configuration?.returnImmediately) {
        const first = await stream.next();
        await stream.return(undefined as never);
        if (first.done) return first.value.task(historyLength);
        return taskOf(first.value.update) ?? (await this.snapshot(session, run)).task(historyLength);
      }
      for (;;) {
        const step = await stream.next();
        if (step.done) return step.value.task(historyLength);
      }
    });
  }

  async *sendMessageStream(params: Parameters<A2ARequestHandler['sendMessageStream']>[0], context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    const session = sessionOf(context);
    const { run, from } = await this.guard(context, () => this.accept(session, params));
    yield* this.positioned(this.updates(session, run, from, 'interrupted', context), context);
  }

  async *resubscribe(params: Parameters<A2ARequestHandler['resubscribe']>[0], context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    const session = sessionOf(context);
    const id = requireTaskId(params.id);
    const resumeAfter = context.state.get(STATE.resumeAfter) as UpdatePosition | undefined;
    if (!resumeAfter) {
      const run = await this.guard(context, () => this.run(session, id));
      if (TERMINAL_RUN_STATES.includes(run.state)) {
        throw new UnsupportedOperationError(`task ${id} is ${run.state}: a finished task has no updates to subscribe to (GetTask reads it)`);
      }
    }
    const from: From = resumeAfter ? { kind: 'after', position: resumeAfter } : { kind: 'snapshot' };
    yield* this.positioned(this.updates(session, id, from, 'terminal', context), context);
  }

  getTask(params: Parameters<A2ARequestHandler['getTask']>[0], context: ServerCallContext): Promise<Task> {
    return this.guard(context, async () => (await this.snapshot(sessionOf(context), requireTaskId(params.id))).task(params.historyLength));
  }

  listTasks(params: ListTasksRequest, context: ServerCallContext): Promise<ListTasksResponse> {
    return this.guard(context, async () => {
      const session = sessionOf(context);
      const pageSize = params.pageSize ?? 50;
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw new RequestMalformedError('pageSize must be an integer in 1..100');
      let state: RunState | undefined;
      if (params.status !== undefined && params.status !== TaskState.TASK_STATE_UNSPECIFIED) {
        state = runStateOf(params.status);
        if (state === undefined) return { tasks: [], nextPageToken: '', pageSize, totalSize: 0 };
      }
      let after = Number.NEGATIVE_INFINITY;
      if (params.statusTimestampAfter) {
        after = Date.parse(params.statusTimestampAfter);
        if (Number.isNaN(after)) throw new RequestMalformedError('statusTimestampAfter must be an ISO 8601 timestamp');
      }
      const runs = (await this.runtime.listRuns(session, { ...(state ? { state } : {}), limit: A2A_LIMITS.maxListed })).filter(
        (r) => r.updatedAt >= after && (params.contextId === '' || params.contextId === undefined || r.id === params.contextId),
      );
      let start = 0;
      if (params.pageToken) {
        start = runs.findIndex((r) => r.id === params.pageToken) + 1;
        if (start === 0) throw new RequestMalformedError('pageToken does not name a task of this listing');
      }
      const page = runs.slice(start, start + pageSize);
      const tasks: Task[] = [];
      for (const run of page) {
        tasks.push(params.historyLength && params.historyLength > 0 ? (await this.snapshot(session, run.id)).task(params.historyLength) : taskFromRun(run));
      }
      const more = start + pageSize < runs.length;
      return { tasks, nextPageToken: more ? page[page.length - 1].id : '', pageSize, totalSize: runs.length };
    });
  }

  cancelTask(params: Parameters<A2ARequestHandler['cancelTask']>[0], context: ServerCallContext): Promise<Task> {
    return this.guard(context, async () => {
      const session = sessionOf(context);
      const id = requireTaskId(params.id);
      const run = await this.run(session, id);
      if (TERMINAL_RUN_STATES.includes(run.state)) throw new TaskNotCancelableError(`task ${id} is ${run.state}`);
      try {
        await this.runtime.cancel(session, { run: id, reason: 'cancelled by an A2A CancelTask' });
      } catch (err) {
        if (err instanceof HostError && err.errorName === 'InvalidOperation') throw new TaskNotCancelableError(`task ${id} has already ended`);
        throw err;
      }
      return (await this.snapshot(session, id)).task();
    });
  }

  async createTaskPushNotificationConfig(): Promise<never> {
    throw new PushNotificationNotSupportedError('push notifications are not supported: stream the task or subscribe to it');
  }

  async getTaskPushNotificationConfig(): Promise<never> {
    throw new PushNotificationNotSupportedError('push notifications are not supported');
  }

  async listTaskPushNotificationConfigs(): Promise<never> {
    throw new PushNotificationNotSupportedError('push notifications are not supported');
  }

  async deleteTaskPushNotificationConfig(): Promise<never> {
    throw new PushNotificationNotSupportedError('push notifications are not supported');
  }

  // ---- messages ------------------------------------------------------------------------------------

  /**
   * Take a message: a new run of the addressed agent, or the answer to the task's pending approval. Returns
   * the run and where its stream starts (a new run: from its first update; an answer: a snapshot after it).
   */
  private async accept(session: Session, params: Parameters<A2ARequestHandler['sendMessage']>[0]): Promise<{ run: string; from: From }> {
    const message = params.message;
    if (!message) throw new RequestMalformedError('message is required');
    if (params.configuration?.taskPushNotificationConfig) throw new PushNotificationNotSupportedError('push notifications are not supported');
    if (message.role !== Role.ROLE_USER) throw new RequestMalformedError('message.role must be ROLE_USER');
    if (message.contextId && message.contextId !== message.taskId) {
      throw new RequestMalformedError('each task is its own context here: send contextId only together with the same taskId');
    }
    const content = readParts(message);
    if (message.taskId) {
      await this.answer(session, message.taskId, content);
      return { run: message.taskId, from: { kind: 'snapshot' } };
    }
    const agent = await this.addressed(session, message);
    const input = content.map((c) => (c.kind === 'text' ? c.text : JSON.stringify(c.data))).join('\n\n');
    if (input.trim() === '') throw new RequestMalformedError('the message has no text or data to work on');
    if (Buffer.byteLength(input) > A2A_LIMITS.maxInputBytes) {
      throw new RequestMalformedError(`the message's text exceeds ${A2A_LIMITS.maxInputBytes} bytes (a2a.maxInputBytes)`);
    }
    const { runs, submittedSeqs } = await this.runtime.run(session, { agent, input });
    return { run: runs[0], from: { kind: 'all', submittedSeq: submittedSeqs[0] } };
  }

  /** The agent a new message addresses: `message.metadata.skill` (a skill id of the card), or the only one. */
  private async addressed(session: Session, message: Message): Promise<string> {
    const skill = message.metadata?.skill;
    if (skill !== undefined && typeof skill !== 'string') throw new RequestMalformedError('message.metadata.skill must be a string');
    const agents = await this.options.cards.liveAgents(session);
    if (skill === undefined) {
      if (agents.length === 1) return agents[0].id;
      throw new RequestMalformedError(
        agents.length === 0 ? 'no agent of this vault can take tasks' : 'name the agent: message.metadata.skill = one of the extended card\'s skill ids',
      );
    }
    const found = agents.find((a) => a.id === skill);
    if (!found) throw new RequestMalformedError(`no live agent ${JSON.stringify(skill.slice(0, 128))} in the caller's vault`);
    return found.id;
  }

  /** Answer the pending approval of an input-required task: "approve"/"deny" as text, or a data part. */
  private async answer(session: Session, taskId: string, content: Content[]): Promise<void> {
    const run = await this.run(session, taskId);
    if (run.state !== 'input-required' || !run.approval) {
      throw new UnsupportedOperationError(
        TERMINAL_RUN_STATES.includes(run.state)
          ? `task ${taskId} is ${run.state}: it takes no more messages`
          : `task ${taskId} is ${run.state}: it takes a message only while input-required`,
      );
    }
    const decision = decisionOf(content);
    await this.runtime.resolve(session, { run: taskId, approval: run.approval.id, decision: decision.decision, ...(decision.note ? { note: decision.note } : {}) });
  }

  // ---- tasks from the log ------------------------------------------------------------------------------

  /** A run of the caller's vault (`state:read`), or TaskNotFound. */
  private async run(session: Session, id: string): Promise<RunRecord> {
    try {
      return await this.runtime.getRun(session, id);
    } catch (err) {
      if (err instanceof HostError && err.errorName === 'UnknownEntity') throw new TaskNotFoundError(`no task ${JSON.stringify(id.slice(0, 128))}`);
      throw err;
    }
  }

  /** The task as the log has it now. */
  private async snapshot(session: Session, id: string): Promise<TaskFold> {
    const run = await this.run(session, id);
    const fold = new TaskFold(id);
    await this.readRecords(run, await this.beforeFirst(run), (r) => void fold.apply(r));
    return fold;
  }

  /**
   * The seq just before the run's first record (its `RunSubmitted`, found by the log's index), so reading a
   * task never scans its agent's earlier runs. The caller was authorised for the run by `run()`.
   */
  private async beforeFirst(run: RunRecord): Promise<number> {
    const submitted = await this.host.runSubmission(this.host.localSession(run.vault), run.id);
    return submitted ? submitted.seq - 1 : 0;
  }

  /**
   * Every task record (TASK_EVENT_TYPES) of the run's agent after `afterSeq`, in seq order, to `onRecord`;
   * returns the last seq read. The log is asked for the agent's records of every type and the task types are
   * picked here: a read filtered by eight types is eight index ranges (one per type) where the agent's records
   * after a run's submission are one, and a message's stream is read right after its run is submitted.
   */
  private async readRecords(run: RunRecord, afterSeq: number, onRecord: (r: LogRecord) => void): Promise<number> {
    const pageSize = 1000;
    let last = afterSeq;
    for (;;) {
      const page = await this.host.readAllEvents({ afterSeq: last, limit: pageSize, vault: run.vault, agent: run.agent });
      for (const r of page) if (TASK_EVENT_SET.has(r.event.type)) onRecord(r);
      if (page.length > 0) last = page[page.length - 1].seq;
      if (page.length < pageSize) return last;
    }
  }

  /**
   * The task's updates: the ones committed before the stream starts (all, after a position, or as one
   * snapshot), then the live ones, until the task ends (or, with `interrupted`, also at input-required).
   * Returns the fold as of the last update.
   */
  private async *updates(session: Session, id: string, from: From, until: 'terminal' | 'interrupted', context: ServerCallContext): AsyncGenerator<TaskUpdate, TaskFold, undefined> {
    const run = await this.run(session, id);
    const fold = new TaskFold(id);
    // A run is read from its first record on, not from its agent's first: a busy agent's history would
    // otherwise be scanned for every message sent to it and every task read.
    const afterSeq = from.kind === 'all' ? from.submittedSeq - 1 : await this.beforeFirst(run);
    const hangup = context.state.get(STATE.hangup) as Hangup | undefined;
    const pending: LogRecord[] = [];
    let overflow = false;
    let wake: (() => void) | null = null;
    const following = this.feed.follow(run.vault, id, afterSeq, (record) => {
      if (pending.length >= A2A_LIMITS.maxStreamBacklog) overflow = true;
      else pending.push(record);
      wake?.();
    });
    const stopListening = hangup?.listen(() => wake?.());
    try {
      // The backlog: every record of the run committed before now (from the log when the feed no longer
      // keeps the first ones), then the live ones as the feed hands them over.
      await following.ready;
      const backlog: TaskUpdate[] = [];
      let cut = 0;
      if (!following.covered) cut = await this.readRecords(run, afterSeq, (r) => backlog.push(...fold.apply(r)));
      for (const r of pending.splice(0)) if (r.seq > cut) backlog.push(...fold.apply(r));
      if (!fold.started) throw new TaskNotFoundError(`no task ${JSON.stringify(id.slice(0, 128))}`);
      const finished = () => TERMINAL_RUN_STATES.includes(fold.state!) || (until === 'interrupted' && fold.state === 'input-required');
      if (from.kind === 'snapshot') {
        const last = backlog[backlog.length - 1];
        yield { seq: last.seq, index: last.index, update: { payload: { $case: 'task', value: fold.task() } } };
      } else {
        for (const u of backlog) if (from.kind === 'all' || isAfter(u, from.position)) yield u;
      }
      if (finished()) return fold;
      for (;;) {
        // The token is re-checked before each batch is delivered: a stream ends once it is revoked or expires.
        if (pending.length > 0) await this.host.authorize(session, 'state:read');
        while (pending.length > 0) {
          const record = pending.shift()!;
          if (record.seq <= cut) continue;
          for (const u of fold.apply(record)) yield u;
          if (finished()) return fold;
        }
        if (overflow) {
          throw new HostError('LimitExceeded', `the stream fell ${A2A_LIMITS.maxStreamBacklog} records behind; subscribe again with the last event id`, {
            limit: 'a2a.maxStreamBacklog',
            max: A2A_LIMITS.maxStreamBacklog,
          });
        }
        if (hangup?.happened || this.host.isClosing) return fold;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      following.unsubscribe();
      stopListening?.();
    }
  }

  /** The updates as the SDK's stream responses, each one's position left in the context for the binding. */
  private async *positioned(updates: AsyncGenerator<TaskUpdate, TaskFold, undefined>, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    for (;;) {
      const step = await this.guard(context, () => updates.next());
      if (step.done) return;
      context.state.set(STATE.position, { seq: step.value.seq, index: step.value.index } satisfies UpdatePosition);
      yield step.value.update;
    }
  }

  /** Run `fn`; a host refusal is left in the context for the binding to answer with its HTTP status. */
  private async guard<T>(context: ServerCallContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof HostError) context.state.set(STATE.refusal, err);
      throw err;
    }
  }
}

function sessionOf(context: ServerCallContext): Session {
  const user = context.user;
  if (!(user instanceof TokaUser)) throw new HostError('Unauthenticated', 'a Bearer capability token is required', { reason: 'ERR_TOKEN_MISSING' });
  return user.session;
}

function requireTaskId(id: string | undefined): string {
  if (typeof id !== 'string' || id.trim() === '' || id.length > 256) throw new RequestMalformedError('id must name a task (1..256 characters)');
  return id;
}

function taskOf(update: StreamResponse): Task | undefined {
  return update.payload?.$case === 'task' ? update.payload.value : undefined;
}

type Content = { kind: 'text'; text: string } | { kind: 'data'; data: unknown };

/** A message's parts as text and data, within the bounds; files are not taken. */
function readParts(message: Message): Content[] {
  const parts = message.parts ?? [];
  if (parts.length === 0) throw new RequestMalformedError('message.parts must not be empty');
  if (parts.length > A2A_LIMITS.maxParts) throw new RequestMalformedError(`message has ${parts.length} parts; at most ${A2A_LIMITS.maxParts} (a2a.maxParts)`);
  return parts.map((part, i) => {
    const c = part.content;
    if (c?.$case === 'text') {
      if (Buffer.byteLength(c.value) > A2A_LIMITS.maxPartBytes) throw new RequestMalformedError(`part ${i} exceeds ${A2A_LIMITS.maxPartBytes} bytes (a2a.maxPartBytes)`);
      return { kind: 'text', text: c.value };
    }
    if (c?.$case === 'data') {
      if (Buffer.byteLength(JSON.stringify(c.value ?? null)) > A2A_LIMITS.maxPartBytes) {
        throw new RequestMalformedError(`part ${i} exceeds ${A2A_LIMITS.maxPartBytes} bytes as JSON (a2a.maxPartBytes)`);
      }
      return { kind: 'data', data: c.value ?? null };
    }
    throw new ContentTypeNotSupportedError(`part ${i}: only text and data parts are accepted (files are not)`);
  });
}

/** The decision a follow-up message carries. */
function decisionOf(content: Content[]): { decision: 'approve' | 'deny'; note?: string } {
  const usage = 'answer with "approve" or "deny" as text, or a data part {"decision": "approve"|"deny", "note"?: string}';
  if (content.length !== 1) throw new RequestMalformedError(`one part expected: ${usage}`);
  const [c] = content;
  if (c.kind === 'text') {
    const word = c.text.trim().toLowerCase();
    if (word === 'approve' || word === 'deny') return { decision: word };
    throw new RequestMalformedError(usage);
  }
  const d = c.data as { decision?: unknown; note?: unknown } | null;
  if (typeof d !== 'object' || d === null || (d.decision !== 'approve' && d.decision !== 'deny')) throw new RequestMalformedError(usage);
  if (d.note !== undefined && (typeof d.note !== 'string' || d.note.length > RUNTIME_LIMITS.messageChars)) {
    throw new RequestMalformedError(`note must be a string of at most ${RUNTIME_LIMITS.messageChars} characters`);
  }
  return { decision: d.decision, ...(typeof d.note === 'string' ? { note: d.note } : {}) };
}
