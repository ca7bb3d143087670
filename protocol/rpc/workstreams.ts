/**
 * `toka/workstreams/*`: a workstream is a set of agent specs ordered by their required dependencies into
 * waves (docs/agents.md, "Workstreams"). The client sends the spec texts (the host may not see the client's
 * files); the host plans them with the same loader as `toka spec check` and `toka run`, and runs them wave
 * after wave with the same orchestration as `toka run`.
 */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { TaskPriority } from '../kernel.js';
import type { RunEndReason, RunLimits, RunState } from '../runtime.js';
import type { MessageDirection } from './common.js';
import { runLimitsSchema } from './runtime.js';

/** Most spec files in one workstream (as `toka run <dir>` reads at most). */
export const MAX_WORKSTREAM_SPECS = 500;
/** Largest spec text, in characters (the spec loader's own bound is in bytes and also applies). */
export const MAX_WORKSTREAM_SPEC_CHARS = 256 * 1024;
/** Most agents of a workstream at work at once. */
export const MAX_WORKSTREAM_CONCURRENCY = 16;

export interface WorkstreamSpec {
  /** Where the spec comes from (a file name or URI), unique in the workstream; `.json` means JSON. Used in diagnostics. */
  uri: string;
  /** The spec as written (YAML or JSON text, docs/agents.md). */
  text: string;
}

/** One problem found in a spec or in the workstream (the same as `toka spec check` prints). */
export interface SpecDiagnostic {
  /** The `uri` of the spec the range is in. */
  file: string;
  /** First line, 1-based. */
  line: number;
  /** First column, 1-based. */
  column: number;
  /** Last line, 1-based. */
  endLine: number;
  /** Column after the last character, 1-based. */
  endColumn: number;
  /** Only `error` stops a plan. */
  severity: 'error' | 'warning' | 'info';
  /** The rule broken (`schema/<keyword>`, `yaml/<code>`, `spec/<rule>`, `workstream/<rule>`: docs/agents.md). */
  rule: string;
  /** What is wrong, for a person. */
  message: string;
  /** JSON Pointer of the value concerned, when there is one. */
  path?: string;
  /** JSON Pointer into the schema of the keyword broken, for `schema/*` rules. */
  schemaPath?: string;
}

export interface WorkstreamPlanParams {
  /** The specs of the workstream (1..500, unique `uri`s). */
  specs: WorkstreamSpec[];
}

/** One agent of a plan. */
export interface WorkstreamAgentPlan {
  /** `metadata.name`. */
  name: string;
  /** The `uri` of its spec. */
  uri: string;
  /** Index of its wave (0-based). */
  wave: number;
  /** `spec.priority`: critical agents of a wave run alone, first. */
  priority: TaskPriority;
  /** Names of the agents it requires (each in an earlier wave). */
  requires: string[];
}

export interface WorkstreamPlanResult {
  /** True when the specs plan without error (`waves` is then the run order). */
  ok: boolean;
  /** Agent names wave by wave, in start order within a wave; empty when `ok` is false. */
  waves: string[][];
  /** The agents of `waves`, in run order; empty when `ok` is false. */
  agents: WorkstreamAgentPlan[];
  /** Every diagnostic of every spec, then the workstream's own (unknown dependencies, cycles, duplicates). */
  diagnostics: SpecDiagnostic[];
}

const specs = z
  .array(z.object({ uri: z.string().min(1).max(4096), text: z.string().min(1).max(MAX_WORKSTREAM_SPEC_CHARS) }).strict())
  .min(1)
  .max(MAX_WORKSTREAM_SPECS)
  .refine((list) => new Set(list.map((s) => s.uri)).size === list.length, { message: 'every spec needs its own uri' });

/**
 * Plan a workstream without running anything: waves, or the diagnostics that prevent them (a plan with
 * errors is a result with `ok: false`, not an error). Reads and writes nothing on the host: any valid
 * session may ask (like the editor's spec diagnostics).
 */
export namespace WorkstreamPlanRequest {
  export const method = 'toka/workstreams/plan' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<WorkstreamPlanParams, WorkstreamPlanResult, ErrorData>(method);
  export const paramsSchema = z.object({ specs }).strict();
}

export interface WorkstreamRunParams {
  /** The specs of the workstream (1..500, unique `uri`s). */
  specs: WorkstreamSpec[];
  /** The task text for every agent, instead of its default tasks. */
  input?: string;
  /** Bounds on each run (the host's defaults fill in the rest). */
  limits?: Partial<RunLimits>;
  /** Agents at work at once, 1..16 (default 4); critical agents always run alone. */
  concurrency?: number;
  /** LSP work-done progress token: when given, the host reports `$/progress` under it. */
  workDoneToken?: string | number;
}

export type WorkstreamAgentStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';

/** One run of an agent of the workstream. */
export interface WorkstreamRunSummary {
  /** The task (run) id. */
  id: string;
  /** Its final state. */
  state: RunState;
  /** LLM turns taken. */
  turns: number;
  /** Tool calls made. */
  toolCalls: number;
  /** LLM tokens used. */
  tokens: number;
  /** The final text (completed runs). */
  text?: string;
  /** Why it failed or was cancelled. */
  reason?: RunEndReason;
}

/** What became of one agent of the workstream. */
export interface WorkstreamAgentReport {
  /** `metadata.name`. */
  name: string;
  /** The `uri` of its spec. */
  uri: string;
  /** Index of its wave (0-based). */
  wave: number;
  /** `spec.priority`. */
  priority: TaskPriority;
  /** `completed` only when every one of its runs completed. */
  status: WorkstreamAgentStatus;
  /** The agent id, once spawned. */
  agent?: string;
  /** Its runs, in order. */
  runs: WorkstreamRunSummary[];
  /** Why it failed, was cancelled or skipped (a required agent that did not complete skips its dependants). */
  reason?: string;
  /** Permissions its spec asked for that the caller could not give. */
  withheld?: string[];
}

export interface WorkstreamRunResult {
  /** True when every agent completed. */
  ok: boolean;
  /** Agent names wave by wave, as planned. */
  waves: string[][];
  /** Every agent, in run order. */
  agents: WorkstreamAgentReport[];
  /** Wall time of the whole run, ms. */
  durationMs: number;
}

/**
 * Plan and run a workstream: wave after wave; within a wave critical agents alone and first, the others at
 * most `concurrency` at once; an agent whose required agent did not complete is skipped. Each agent is
 * spawned from its spec when its turn comes and runs its default tasks (or `input`). A plan with errors is
 * InvalidParams with `data.diagnostics`. Long-running: reports LSP work-done progress when the request
 * carries a `workDoneToken`; `$/cancelRequest` (or the connection closing) cancels the runs in flight and
 * skips the agents not started, and the request answers with the report. Requires what `toka/agents/spawn`
 * and `toka/agents/run` require, and `events:read`.
 */
export namespace WorkstreamRunRequest {
  export const method = 'toka/workstreams/run' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<WorkstreamRunParams, WorkstreamRunResult, ErrorData>(method);
  export const paramsSchema = z
    .object({
      specs,
      input: z.string().min(1).max(64 * 1024).optional(),
      limits: runLimitsSchema,
      concurrency: z.number().int().min(1).max(MAX_WORKSTREAM_CONCURRENCY).optional(),
      workDoneToken: z.union([z.string().max(256), z.number()]).optional(),
    })
    .strict();
}
