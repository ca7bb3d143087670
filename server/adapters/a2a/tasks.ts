/**
 * A run as an A2A task, read from the log: the run's events fold into the task (status, history, artifacts)
 * and map one by one to the stream updates a subscriber sees. Every update carries the seq of the log record
 * it came from (plus its index within that record), which is its SSE/WebSocket event id: a subscriber that
 * comes back with the last id it saw gets exactly the updates after it. Pure: no I/O.
 *
 * Ids: the task id is the run id; each task is its own context (`contextId` = task id). A message in the
 * history is named `<task id>:<seq>` after the record it came from (the caller's own message id is not
 * recorded). See docs/a2a.md.
 */
import { Role, TaskState, type Artifact, type Message, type Part, type StreamResponse, type Task, type TaskStatus } from '@a2a-js/sdk';
import type { LogRecord } from '../../../protocol/events.js';
import type { ApprovalRecord, RunArtifact, RunEndReason, RunRecord, RunState } from '../../../protocol/runtime.js';

/** The event types of a run that change what its task shows. */
export const TASK_EVENT_TYPES = [
  'RunSubmitted',
  'RunStarted',
  'LlmTurnRecorded',
  'ToolCallRequested',
  'ApprovalResolved',
  'RunCompleted',
  'RunFailed',
  'RunCancelled',
] as const;

const STATES: Record<RunState, TaskState> = {
  submitted: TaskState.TASK_STATE_SUBMITTED,
  working: TaskState.TASK_STATE_WORKING,
  'input-required': TaskState.TASK_STATE_INPUT_REQUIRED,
  completed: TaskState.TASK_STATE_COMPLETED,
  failed: TaskState.TASK_STATE_FAILED,
  canceled: TaskState.TASK_STATE_CANCELED,
  rejected: TaskState.TASK_STATE_REJECTED,
};

/** The A2A state of a run state. */
export function taskState(state: RunState): TaskState {
  return STATES[state];
}

/** The run state named by an A2A state, or undefined for states a run never has (auth-required, unspecified). */
export function runStateOf(state: TaskState): RunState | undefined {
  return (Object.keys(STATES) as RunState[]).find((s) => STATES[s] === state);
}

/** Where an update sits in the log: the record's seq, and its index among the updates of that record. */
export interface UpdatePosition {
  seq: number;
  index: number;
}

/** The event id of a position: `<seq>` for the first update of a record, `<seq>.<index>` for the others. */
export function eventId(p: UpdatePosition): string {
  return p.index === 0 ? String(p.seq) : `${p.seq}.${p.index}`;
}

/** The position an event id names, or null when it is not one of ours. */
export function parseEventId(id: string): UpdatePosition | null {
  const m = /^(\d{1,15})(?:\.(\d{1,3}))?$/.exec(id.trim());
  if (!m) return null;
  return { seq: Number(m[1]), index: m[2] === undefined ? 0 : Number(m[2]) };
}

/** True when `p` comes after `after`. */
export function isAfter(p: UpdatePosition, after: UpdatePosition): boolean {
  return p.seq > after.seq || (p.seq === after.seq && p.index > after.index);
}

/** One stream update of a task, with its place in the log. */
export interface TaskUpdate extends UpdatePosition {
  update: StreamResponse;
}

/** What the task shows as the events fold in. */
interface Folded {
  id: string;
  agent: string;
  state: RunState;
  /** When the last record folded in was written, as the ISO 8601 timestamp the task shows. */
  updatedAt: string;
  history: Message[];
  statusMessage?: Message;
  artifacts: Artifact[];
}

/**
 * A run's task folded from its events (seq order; other runs' records are skipped). Null when the records do
 * not start with the run's `RunSubmitted`.
 */
export class TaskFold {
  private folded: Folded | null = null;
  /** Seq of the last record folded in. */
  lastSeq = 0;

  constructor(readonly runId: string) {}

  /** Fold one record in; returns the stream updates it produces (none for a record of another run). */
  apply(record: LogRecord): TaskUpdate[] {
    const e = record.event as unknown as Record<string, unknown> & { type: string; at: number };
    const runOf = e.type === 'RunSubmitted' ? (e.run as RunRecord).id : e.run;
    if (runOf !== this.runId) return [];
    this.lastSeq = record.seq;
    const updates: StreamResponse[] = [];
    if (e.type === 'RunSubmitted') {
      const run = e.run as RunRecord;
      this.folded = { id: run.id, agent: run.agent, state: 'submitted', updatedAt: isoTime(e.at), history: [textMessage(run.id, record.seq, Role.ROLE_USER, run.input)], artifacts: [] };
      updates.push({ payload: { $case: 'task', value: this.task() } });
      return positioned(record.seq, updates);
    }
    const f = this.folded;
    if (!f) return [];
    f.updatedAt = isoTime(e.at);
    switch (e.type) {
      case 'RunStarted':
        updates.push(this.status('working', undefined));
        break;
      case 'LlmTurnRecorded': {
        const text = (e.turn as { text?: string }).text ?? '';
        if (text === '') break;
        const message = textMessage(f.id, record.seq, Role.ROLE_AGENT, text);
        f.history.push(message);
        updates.push(this.status('working', message));
        break;
      }
      case 'ToolCallRequested': {
        const approval = e.approval as ApprovalRecord | undefined;
        if (!approval) break;
        const message = approvalMessage(f.id, record.seq, approval);
        f.history.push(message);
        updates.push(this.status('input-required', message));
        break;
      }
      case 'ApprovalResolved': {
        const note = typeof e.note === 'string' ? { note: e.note } : {};
        const message = dataMessage(f.id, record.seq, Role.ROLE_USER, { decision: e.decision, approval: e.approval, ...note });
        f.history.push(message);
        updates.push(this.status('working', undefined));
        break;
      }
      case 'RunCompleted': {
        for (const artifact of (e.artifacts as RunArtifact[]) ?? []) {
          const a = toArtifact(artifact);
          f.artifacts.push(a);
          updates.push({ payload: { $case: 'artifactUpdate', value: { taskId: f.id, contextId: f.id, artifact: a, append: false, lastChunk: true, metadata: undefined } } });
        }
        updates.push(this.status('completed', undefined));
        break;
      }
      case 'RunFailed':
        updates.push(this.status('failed', reasonMessage(f.id, record.seq, e.reason as RunEndReason)));
        break;
      case 'RunCancelled':
        updates.push(this.status('canceled', reasonMessage(f.id, record.seq, { code: 'Cancelled', message: String(e.reason) })));
        break;
    }
    return positioned(record.seq, updates);
  }

  /** True once the run's `RunSubmitted` has been folded in. */
  get started(): boolean {
    return this.folded !== null;
  }

  get agent(): string | undefined {
    return this.folded?.agent;
  }

  get state(): RunState | undefined {
    return this.folded?.state;
  }

  /**
   * The task as of the last record folded in, with at most `historyLength` most recent messages. Its arrays
   * are its own; the messages and artifacts in them are shared with the fold, which never changes one once
   * it is folded in (a deep copy per task was a measurable part of a `SendMessage`'s cost).
   */
  task(historyLength?: number): Task {
    const f = this.folded;
    if (!f) throw new Error(`run ${this.runId} has not been folded in`);
    return {
      id: f.id,
      contextId: f.id,
      status: { state: STATES[f.state], message: f.statusMessage, timestamp: f.updatedAt },
      artifacts: f.artifacts.slice(),
      history: limitHistory(f.history, historyLength).slice(),
      metadata: { agent: f.agent },
    };
  }

  private status(state: RunState, message: Message | undefined): StreamResponse {
    const f = this.folded!;
    f.state = state;
    f.statusMessage = message;
    const status: TaskStatus = { state: STATES[state], message, timestamp: f.updatedAt };
    return { payload: { $case: 'statusUpdate', value: { taskId: f.id, contextId: f.id, status, metadata: undefined } } };
  }
}

/**
 * A task from a run record alone (state, artifacts, the pending approval or end reason; no history): what
 * `ListTasks` shows without reading each run's events.
 */
export function taskFromRun(run: RunRecord): Task {
  const message = run.approval
    ? approvalMessage(run.id, 0, run.approval)
    : run.reason && (run.state === 'failed' || run.state === 'canceled')
      ? reasonMessage(run.id, 0, run.reason)
      : undefined;
  return {
    id: run.id,
    contextId: run.id,
    status: { state: STATES[run.state], message, timestamp: isoTime(run.updatedAt) },
    artifacts: (run.artifacts ?? []).map(toArtifact),
    history: [],
    metadata: { agent: run.agent },
  };
}

export function limitHistory(history: Message[], historyLength: number | undefined): Message[] {
  if (historyLength === undefined) return history;
  return historyLength <= 0 ? [] : history.slice(-historyLength);
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function positioned(seq: number, updates: StreamResponse[]): TaskUpdate[] {
  return updates.map((update, index) => ({ seq, index, update }));
}

function textPart(text: string): Part {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

function dataPart(value: unknown): Part {
  return { content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: 'application/json' };
}

function message(taskId: string, seq: number, role: Role, parts: Part[]): Message {
  return { messageId: `${taskId}:${seq}`, contextId: taskId, taskId, role, parts, metadata: undefined, extensions: [], referenceTaskIds: [] };
}

function textMessage(taskId: string, seq: number, role: Role, text: string): Message {
  return message(taskId, seq, role, [textPart(text)]);
}

function dataMessage(taskId: string, seq: number, role: Role, value: unknown): Message {
  return message(taskId, seq, role, [dataPart(value)]);
}

/** The input-required question: which tool call waits, and how to answer. */
function approvalMessage(taskId: string, seq: number, approval: ApprovalRecord): Message {
  const text =
    `The agent asks to call ${approval.call.name} (needs ${approval.permission}). ` +
    'Answer with a message on this task: "approve" or "deny", or a data part {"decision": "approve"|"deny", "note"?: "..."}.';
  return message(taskId, seq, Role.ROLE_AGENT, [
    textPart(text),
    dataPart({ approval: approval.id, tool: approval.call.name, arguments: approval.call.arguments, permission: approval.permission }),
  ]);
}

function reasonMessage(taskId: string, seq: number, reason: RunEndReason): Message {
  return message(taskId, seq, Role.ROLE_AGENT, [textPart(reason.message), dataPart({ ...reason })]);
}

function toArtifact(a: RunArtifact): Artifact {
  return { artifactId: a.name, name: a.name, description: '', parts: [textPart(a.text)], metadata: undefined, extensions: [] };
}
