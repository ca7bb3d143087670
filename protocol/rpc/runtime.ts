/**
 * `toka/agents/*`, `toka/tasks/*`, `toka/approvals/*`: agents at work. A task here is one run of an agent
 * (an A2A task); its states are A2A's. Every step of a task is also a `toka/events` record. See docs/agents.md.
 */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { ApprovalRecord, RunLimits, RunRecord, RunState } from '../runtime.js';
import type { MessageDirection, NoParams } from './common.js';

const id = z.string().min(1).max(256);
/** Decodes `Partial<RunLimits>` (each bound a positive integer; unknown fields refused). */
export const runLimitsSchema = z
  .object({
    timeoutMs: z.number().int().min(1),
    maxTurns: z.number().int().min(1),
    maxToolCalls: z.number().int().min(1),
    maxTokens: z.number().int().min(1),
    maxOutputBytes: z.number().int().min(1),
  })
  .partial()
  .strict()
  .optional();
const RUN_STATES = ['submitted', 'working', 'input-required', 'completed', 'failed', 'canceled', 'rejected'] as const;

export interface AgentSpawnParams {
  /** The agent spec as written (YAML or JSON text, docs/agents.md). */
  spec: string;
  /** Where the spec comes from (a file name or URI); `.json` means JSON. Used in diagnostics. */
  uri?: string;
  /** Parent agent id (default: the vault's root agent). */
  parent?: string;
}

export interface AgentSpawnResult {
  /** The new agent's id. */
  agent: string;
  /** The grant the agent's own tokens are minted from (revoke it to stop the agent acting). */
  grant: string;
  /** What the agent may ever hold: its spec's bound, less what the caller could not give. */
  permissions: string[];
  /** Permissions the spec asked for that the caller does not hold (left out). */
  withheld: string[];
  /** Ids of its default tasks, queued. */
  tasks: string[];
}

/**
 * Spawn an agent from its spec: the agent, a grant for its own subject (bounded by the spec's
 * `security.capabilities_required` and by the caller), the spec digest and document, its default tasks.
 * Requires `agent:spawn`, `capability:grant`, `task:schedule` and `task:run` (an agent is given `task:run`).
 * A spec with errors is InvalidParams with `data.diagnostics`.
 */
export namespace AgentSpawnRequest {
  export const method = 'toka/agents/spawn' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<AgentSpawnParams, AgentSpawnResult, ErrorData>(method);
  export const paramsSchema = z.object({ spec: z.string().min(1).max(256 * 1024), uri: z.string().max(4096).optional(), parent: id.optional() });
}

export interface AgentRunParams {
  /** The agent to run. */
  agent: string;
  /** The task text. Without it, every queued task of the agent becomes a task run. */
  input?: string;
  /** Bounds on each run (the host's defaults fill in the rest). */
  limits?: Partial<RunLimits>;
}

export interface AgentRunResult {
  /** Ids of the tasks started, in order. */
  tasks: string[];
}

/** Ask an agent to work. Requires `task:run` (and `task:cancel` to take queued tasks off the queue). */
export namespace AgentRunRequest {
  export const method = 'toka/agents/run' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<AgentRunParams, AgentRunResult, ErrorData>(method);
  export const paramsSchema = z.object({ agent: id, input: z.string().min(1).max(64 * 1024).optional(), limits: runLimitsSchema });
}

export interface AgentTerminateParams {
  /** The agent to terminate. */
  agent: string;
  /** Why (recorded). */
  reason?: string;
}

/** Terminate an agent: its live tasks are cancelled and none starts again. Requires `agent:terminate` and `task:cancel`. */
export namespace AgentTerminateRequest {
  export const method = 'toka/agents/terminate' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<AgentTerminateParams, NoParams, ErrorData>(method);
  export const paramsSchema = z.object({ agent: id, reason: z.string().max(4096).optional() });
}

export interface TaskGetParams {
  /** The task (run) id. */
  task: string;
}

/** One task of the caller's vault. Requires `state:read`. */
export namespace TaskGetRequest {
  export const method = 'toka/tasks/get' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<TaskGetParams, RunRecord, ErrorData>(method);
  export const paramsSchema = z.object({ task: id });
}

export interface TaskListParams {
  /** Only tasks of this agent. */
  agent?: string;
  /** Only tasks in this state. */
  state?: RunState;
  /** At most this many, 1..1000 (default 100). */
  limit?: number;
}

export interface TaskListResult {
  /** Tasks of the caller's vault, newest first. */
  tasks: RunRecord[];
}

/** Tasks of the caller's vault. Requires `state:read`. */
export namespace TaskListRequest {
  export const method = 'toka/tasks/list' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<TaskListParams, TaskListResult, ErrorData>(method);
  export const paramsSchema = z.object({ agent: id.optional(), state: z.enum(RUN_STATES).optional(), limit: z.number().int().min(1).max(1000).optional() });
}

export interface TaskCancelParams {
  /** The task (run) id. */
  task: string;
  /** Why (recorded). */
  reason?: string;
}

/**
 * Cancel a task that has not ended: its LLM request and running tool stop within a second. Requires
 * `task:cancel`. A task that has ended is InvalidOperation with `data.reason: "not cancelable"`.
 */
export namespace TaskCancelRequest {
  export const method = 'toka/tasks/cancel' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<TaskCancelParams, RunRecord, ErrorData>(method);
  export const paramsSchema = z.object({ task: id, reason: z.string().max(4096).optional() });
}

export interface ApprovalListResult {
  /** Tool calls of the caller's vault waiting for a decision, oldest first. */
  approvals: ApprovalRecord[];
}

/** Privileged tool calls waiting for a human. Requires `task:approve`. */
export namespace ApprovalListRequest {
  export const method = 'toka/approvals/list' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<NoParams, ApprovalListResult, ErrorData>(method);
  export const paramsSchema = z.object({}).strict();
}

export interface ApprovalResolveParams {
  /** The task (run) waiting. */
  task: string;
  /** The approval id (`ApprovalRecord.id`). */
  approval: string;
  /** Let the call run, or refuse it (the LLM sees the refusal). */
  decision: 'approve' | 'deny';
  /** Recorded with the decision. */
  note?: string;
}

/** Approve or deny a pending tool call; the task goes on. Requires `task:approve`; an agent never approves its own call. */
export namespace ApprovalResolveRequest {
  export const method = 'toka/approvals/resolve' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<ApprovalResolveParams, RunRecord, ErrorData>(method);
  export const paramsSchema = z.object({ task: id, approval: id, decision: z.enum(['approve', 'deny']), note: z.string().max(4096).optional() });
}
