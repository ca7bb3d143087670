/**
 * Agent runs: the runtime's record of an agent doing a task, kept by the kernel as registered operations
 * (namespace `runtime`) so that a run is in the log event by event and replays without an LLM or a tool.
 * States are A2A's task states, so the A2A face maps them one to one. See docs/agents.md.
 */

/** A run's state (A2A TaskState names). */
export type RunState = 'submitted' | 'working' | 'input-required' | 'completed' | 'failed' | 'canceled' | 'rejected';

/** States a run never leaves. */
export const TERMINAL_RUN_STATES: readonly RunState[] = ['completed', 'failed', 'canceled', 'rejected'];

/** Why a run failed: a stable code, plus the limit for `LimitExceeded`. */
export type RunFailureCode = 'LimitExceeded' | 'LlmError' | 'ToolError' | 'Unauthenticated' | 'InternalError' | 'DependencyFailed';

/** Bounds on one run. Every field is optional in a request; the host fills in its defaults. */
export interface RunLimits {
  /** Wall-clock time from start to the end of the run, ms. */
  timeoutMs: number;
  /** LLM turns. */
  maxTurns: number;
  /** Tool calls (requested, including denied ones). */
  maxToolCalls: number;
  /** Input plus output tokens reported by the LLM over the whole run. */
  maxTokens: number;
  /** Bytes of LLM text plus tool output recorded over the whole run. */
  maxOutputBytes: number;
}

/** The host's default limits for a run. */
export const DEFAULT_RUN_LIMITS: RunLimits = {
  timeoutMs: 10 * 60_000,
  maxTurns: 32,
  maxToolCalls: 128,
  maxTokens: 200_000,
  maxOutputBytes: 4 * 1024 * 1024,
};

/** A tool call the LLM asked for. */
export interface RunToolCall {
  /** The LLM's id for the call (answered by the result with the same id). */
  id: string;
  /** Tool name as the LLM saw it. */
  name: string;
  /** Arguments as the LLM sent them (validated against the tool's schema before the call). */
  arguments: unknown;
}

/** What a tool call produced (or why it did not run), as the LLM sees it. */
export interface RunToolResult {
  /** Id of the call it answers. */
  callId: string;
  /** Text shown to the LLM. */
  content: string;
  /** True for a failed, refused or denied call. */
  isError: boolean;
  /** Stable code when `isError`: `Denied`, `ApprovalDenied`, `InvalidArguments`, a tool error code, ... */
  code?: string;
}

/**
 * One update a running tool reported before its result (e.g. a remote A2A task's status or artifact seen
 * by `a2a_delegate`): recorded as `ToolProgressRecorded`, so the run's log shows what the tool saw as it
 * happened. The LLM sees only the tool's result.
 */
export interface RunToolProgress {
  /** Id of the call it belongs to. */
  callId: string;
  /** `status`: the remote work changed state; `artifact`: it produced (part of) an artifact. */
  kind: 'status' | 'artifact';
  /** What the tool is following, e.g. the remote task id. */
  subject: string;
  /** The remote state (`working`, `completed`, ...) for a status update. */
  state?: string;
  /** The artifact's name or id for an artifact update. */
  name?: string;
  /** The update's text (cut by the tool to its bound). */
  text?: string;
}

/** A tool call waiting for a human decision. */
export interface ApprovalRecord {
  /** Approval id (host-assigned). */
  id: string;
  /** The run it belongs to. */
  run: string;
  /** The agent whose run it is. */
  agent: string;
  /** The call awaiting a decision. */
  call: RunToolCall;
  /** The permission the tool requires. */
  permission: string;
  /** When it was requested, ms since the epoch. */
  requestedAt: number;
}

/** A named output of a completed run. */
export interface RunArtifact {
  /** Name, unique within the run. */
  name: string;
  /** Content as text. */
  text: string;
}

/** Why a run failed or was cancelled. */
export interface RunEndReason {
  /** Stable code: a `RunFailureCode`, or `Cancelled`. */
  code: RunFailureCode | 'Cancelled';
  /** What happened, for people. */
  message: string;
  /** For `LimitExceeded`: the limit's name (`maxTurns`, `timeoutMs`, ...). */
  limit?: string;
}

/** A run as the kernel keeps it (`state.ext.runtime.runs[id]`). */
export interface RunRecord {
  /** Run id (host-assigned); the A2A task id. */
  id: string;
  /** The agent doing the work. */
  agent: string;
  /** The agent's vault. */
  vault: string;
  /** Where the run stands (A2A task state). */
  state: RunState;
  /** The task text given to the agent. */
  input: string;
  /** The queued kernel task the run was started for, if any. */
  task?: string;
  /** Who asked for the run (token subject). */
  requestedBy: string;
  /** The subject that executes it (the agent's own token subject), set when it starts. */
  executor?: string;
  /** The bounds it runs under. */
  limits: RunLimits;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch of the last change. */
  updatedAt: number;
  /** Start time (ms); the timeout counts from here. */
  startedAt?: number;
  /** LLM turns recorded. */
  turns: number;
  /** Tool calls requested. */
  toolCalls: number;
  /** Tokens the LLM reported, input + output. */
  tokens: number;
  /** Bytes of LLM text and tool output recorded. */
  outputBytes: number;
  /** The tool call awaiting a decision (state `input-required`). */
  approval?: ApprovalRecord;
  /** Final LLM text (state `completed`). */
  text?: string;
  /** Outputs (state `completed`). */
  artifacts?: RunArtifact[];
  /** Why it failed (state `failed`) or was cancelled (`canceled`). */
  reason?: RunEndReason;
}

/** What the runtime keeps per agent: the spec it was spawned from and the grant its token is minted from. */
export interface AgentRuntimeRecord {
  /** Agent id. */
  agent: string;
  /** Hex SHA-256 of the agent's normalised spec. */
  specDigest: string;
  /** Spec name (`metadata.name`). */
  specName: string;
  /** The grant the agent's own tokens are minted from. */
  grant: string;
  /** The subject of the agent's tokens. */
  subject: string;
  /** Permissions the agent may ever hold (its spec's bound ∩ what its spawner held). */
  permissions: string[];
  /** True once terminated: no new run starts. */
  terminated: boolean;
  /** Bounds from the spec's `security.resource_limits`; absent when the spec sets none. */
  limits?: AgentLimits;
}

/** What an agent's spec bounds, whatever a run request asks. */
export interface AgentLimits {
  /** Longest run, ms (`resource_limits.timeout`): a run's `timeoutMs` defaults to it and never exceeds it. */
  timeoutMs?: number;
  /** Address space of each process its tools start, bytes (`resource_limits.max_memory`). */
  maxMemoryBytes?: number;
}

/**
 * Ended runs each agent keeps in the world state, the newest by end time: a run that ends leaves `runs` for
 * its agent's `ended`, and the oldest of more than this many leaves the state (its events stay in the log,
 * where the runtime still finds it by id). Part of the kernel's semantics: replay evicts exactly alike.
 */
export const ENDED_RUNS_KEPT = 16;

/**
 * The shard of `state.ext.runtime.runs` a run lives in: the first two characters of its id. A run's end
 * deletes it from its shard, and a delete from the state costs O(members) of the map it is deleted from
 * (the kernel's undo journal keeps member order), so live runs are spread over small maps.
 */
export function runShard(id: string): string {
  return id.slice(0, 2);
}

/** `state.ext.runtime`. */
export interface RuntimeState {
  /** Live runs (submitted, working, input-required) by shard (`runShard`), then by id. */
  runs: Record<string, Record<string, RunRecord>>;
  /**
   * Ended runs kept per agent id, by run id: at most `ENDED_RUNS_KEPT` each, the newest by end time. Absent in
   * a state written before the retention rule.
   */
  ended?: Record<string, Record<string, RunRecord>>;
  /** Runtime facts per agent id. */
  agents: Record<string, AgentRuntimeRecord>;
}

/** The subject of an agent's own tokens. */
export function agentSubject(agentId: string): string {
  return `agent:${agentId}`;
}
