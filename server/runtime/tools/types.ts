/**
 * The shapes every tool shares: its manifest (what an LLM is shown and what a caller must hold), the context
 * of one call (cancellation, the workspace root, the limits) and its result. The agent loop calls tools only
 * through `ToolRegistry` (registry.ts), which checks the permission and validates the arguments first.
 */
import type { LogRecord } from '../../../protocol/events.js';
import type { Operation } from '../../../protocol/kernel.js';
import type { RunToolProgress } from '../../../protocol/runtime.js';
import type { LoadedSpec, SpawnResult } from '../runtime.js';

/** Side-effect classes, as in Toka tool manifests. `privileged` tools wait for a human approval in the loop. */
export const SIDE_EFFECTS = ['none', 'read_only', 'idempotent', 'external', 'privileged'] as const;
export type SideEffect = (typeof SIDE_EFFECTS)[number];

export interface ToolManifest {
  /** Name the LLM calls the tool by: `^[a-zA-Z0-9_-]{1,64}$`, unique in a registry. */
  name: string;
  /** What the tool does, for the LLM. */
  description: string;
  /** JSON Schema (2020-12) of the arguments; ≤ 64 KiB serialised, no remote `$ref`. */
  inputSchema: object;
  /** JSON Schema of `ToolResult.data`, when the tool returns structured data. */
  outputSchema?: object;
  /** What calling the tool may change in the world. */
  sideEffect: SideEffect;
  /** The concrete `area:verb` permission a caller must hold to see and call the tool. */
  permission: string;
}

/** Bounds applied to tool calls; a tool refuses or truncates past them with a typed, named error or marker. */
export interface ToolLimits {
  /** Largest file `fs_read` returns (bytes of one read). */
  fileReadBytes: number;
  /** Largest file `fs_write` leaves behind (bytes, after an append too). */
  fileWriteBytes: number;
  /** Most entries `fs_list` returns. */
  listEntries: number;
  /** Most matching lines `fs_search` returns. */
  searchMatches: number;
  /** Most bytes `fs_search` reads in one call, over all files. */
  searchBytes: number;
  /** Most directory entries `fs_search` visits in one call. */
  searchEntries: number;
  /** Wall-clock bound of one `shell` command, milliseconds. */
  shellTimeoutMs: number;
  /** Bytes of stdout + stderr kept from one `shell` command; the rest is dropped with a marker. */
  shellOutputBytes: number;
  /** Address-space bound of the shell's processes (`ulimit -v`), bytes. */
  shellMemoryBytes: number;
  /** CPU-time bound of each of the shell's processes (`ulimit -t`), seconds. */
  shellCpuSeconds: number;
  /** Wall-clock bound of one `http_fetch`, redirects included, milliseconds. */
  httpTimeoutMs: number;
  /** Bytes of response body kept by `http_fetch`; the rest is dropped with a marker. */
  httpResponseBytes: number;
  /** Largest request body `http_fetch` sends, bytes. */
  httpRequestBytes: number;
  /** Wall-clock bound of one call to an external MCP tool, milliseconds. */
  mcpTimeoutMs: number;
  /** Characters of an external MCP tool's result kept; the rest is dropped with a marker. */
  mcpOutputChars: number;
  /** Wall-clock bound of one `a2a_delegate` call (the remote task is cancelled past it), milliseconds. */
  a2aTimeoutMs: number;
  /** Characters of the remote task's result `a2a_delegate` returns; the rest is dropped with a marker. */
  a2aOutputChars: number;
  /** Remote updates `a2a_delegate` records in the run's log per call; later ones are counted, not recorded. */
  a2aRecordedUpdates: number;
}

export const DEFAULT_TOOL_LIMITS: Readonly<ToolLimits> = Object.freeze({
  fileReadBytes: 1024 * 1024,
  fileWriteBytes: 1024 * 1024,
  listEntries: 1000,
  searchMatches: 200,
  searchBytes: 32 * 1024 * 1024,
  searchEntries: 100_000,
  shellTimeoutMs: 30_000,
  shellOutputBytes: 64 * 1024,
  shellMemoryBytes: 1024 * 1024 * 1024,
  shellCpuSeconds: 30,
  httpTimeoutMs: 30_000,
  httpResponseBytes: 1024 * 1024,
  httpRequestBytes: 256 * 1024,
  mcpTimeoutMs: 60_000,
  mcpOutputChars: 256 * 1024,
  a2aTimeoutMs: 10 * 60_000,
  a2aOutputChars: 256 * 1024,
  a2aRecordedUpdates: 256,
});

/**
 * The kernel as one agent may use it: every call acts with the calling agent's own session (its token,
 * renewed by the runtime), so the host authorises it, rate-limits it and records it exactly as it would a
 * remote caller's. Bound by the runner for each tool call; the kernel tools (kernel.ts) are its users.
 */
export interface KernelAccess {
  /** The calling agent's id. */
  agent: string;
  /** The permissions the agent's token holds now. */
  permissions: readonly string[];
  /** Submit one kernel operation with the agent's token; resolves with its log records once durable. */
  submit(op: Operation): Promise<LogRecord[]>;
  /**
   * Spawn a sub-agent of the calling agent from a loaded spec: its grant is created with the agent's token,
   * so it is a child of the agent's grant (never wider, revoked with it). See `AgentRuntime.spawn`.
   */
  spawn(loaded: LoadedSpec): Promise<SpawnResult>;
  /** Record an update the running call saw (`RecordToolProgress` on its run, with the agent's token). */
  progress(update: Omit<RunToolProgress, 'callId'>): Promise<void>;
}

/** What a tool gets besides its arguments. */
export interface ToolContext {
  /** Aborted when the task is cancelled; a tool stops its work (and its child processes) within a second. */
  signal: AbortSignal;
  /** Absolute root directory the agent is confined to. */
  workspace: string;
  limits: ToolLimits;
  /** The agent the call is made for (for logs and tool sources that care). */
  agentId: string;
  /** The kernel, acting as the calling agent: given by the agent loop, absent where no agent runs the call. */
  kernel?: KernelAccess;
}

/** What a call returns to the LLM. A tool-level failure (non-zero exit, HTTP 500, MCP `isError`) is `isError`. */
export interface ToolResult {
  /** Text shown to the LLM. */
  content: string;
  isError: boolean;
  /** Structured result (matches `outputSchema` when the manifest has one). */
  data?: unknown;
}

export interface Tool {
  manifest: ToolManifest;
  /** Called with arguments already validated against `manifest.inputSchema`. Throws `ToolError`. */
  call(args: unknown, ctx: ToolContext): Promise<ToolResult>;
}
