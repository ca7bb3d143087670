/**
 * Kernel operations as tools: `spawn_agent` (a sub-agent with an attenuated capability), `schedule_task` and
 * `emit_observation`. Each acts through `ToolContext.kernel`, i.e. with the calling agent's own token, so
 * the host authorises and records it like any caller's operation; a refusal comes back to the LLM as a
 * typed tool error. docs/tools.md, "Kernel tools".
 */
import { HostError } from '../../host/errors.js';
import { AGENT_BASE_PERMISSIONS } from '../runtime.js';
import { analyzeSpecText, AGENT_NAME_PATTERN, permissionsNotCovered, permissionsOf, SPEC_LIMITS } from '../spec/index.js';
import { ToolError, type ToolErrorCode } from './errors.js';
import type { KernelAccess, Tool, ToolContext, ToolResult } from './types.js';

/** Longest task text `spawn_agent` and `schedule_task` take (the spec's bound on a task). */
const TASK_CHARS = 1000;
/** Longest observation message. */
const MESSAGE_CHARS = 4096;
/** Most metrics in one observation. */
const METRICS = 32;
/** Spec diagnostics quoted back to the LLM. */
const REPORTED_DIAGNOSTICS = 10;

const PRIORITY = { type: 'string', enum: ['critical', 'high', 'medium', 'low'] } as const;

function kernelOf(ctx: ToolContext): KernelAccess {
  if (ctx.kernel === undefined) throw new ToolError('Failed', 'kernel tools run only inside an agent run');
  return ctx.kernel;
}

/** The typed tool error for a refusal of the host or kernel (the LLM sees its code and message). */
function toolErrorOf(err: unknown): ToolError {
  if (err instanceof ToolError) return err;
  const e = HostError.from(err);
  const byName: Partial<Record<string, ToolErrorCode>> = {
    CapabilityDenied: 'Denied',
    Unauthenticated: 'Denied',
    RateLimited: 'LimitExceeded',
    LimitExceeded: 'LimitExceeded',
    InvalidParams: 'InvalidArguments',
    InvalidOperation: 'InvalidArguments',
    UnknownEntity: 'NotFound',
  };
  return new ToolError(byName[e.errorName] ?? 'Failed', `${e.errorName}: ${e.message}`);
}

async function acting<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toolErrorOf(err);
  }
}

interface SpawnArgs {
  spec?: string;
  name?: string;
  capabilities_required?: string[];
  task?: string;
}

/** The spec document of the short form: one default task, the given bound, fixed informative fields. */
function shortFormDocument(args: Required<Pick<SpawnArgs, 'name' | 'task'>> & SpawnArgs, created: string): unknown {
  return {
    metadata: { name: args.name, version: 'v0.1.0', created, workstream: 'sub-agents' },
    spec: { name: `sub-agent ${args.name}`, domain: 'delegated', priority: 'medium' },
    capabilities: { primary: ['delegated-work'] },
    objectives: [
      {
        description: 'Do the task its spawning agent gave it',
        deliverable: 'The final text of its run',
        validation: 'The spawning agent reviews the run result',
      },
    ],
    tasks: { default: [{ description: args.task, priority: 'medium' }] },
    security: { capabilities_required: args.capabilities_required ?? [] },
  };
}

export const spawnAgentTool: Tool = {
  manifest: {
    name: 'spawn_agent',
    description:
      'Spawn a sub-agent under this agent. Give `spec` (an agent spec as YAML or JSON text), or the short form `name`, ' +
      '`task` and `capabilities_required`. The sub-agent may hold only permissions this agent holds: a wider request ' +
      'is refused. Its default tasks are queued; it is revoked with this agent.',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        spec: { type: 'string', minLength: 1, maxLength: SPEC_LIMITS.bytes, description: 'An agent spec, YAML or JSON text.' },
        name: { type: 'string', pattern: AGENT_NAME_PATTERN, maxLength: 100, description: 'Short form: the agent name.' },
        task: { type: 'string', minLength: 1, maxLength: TASK_CHARS, description: 'Short form: the one task it is spawned for.' },
        capabilities_required: {
          type: 'array',
          maxItems: 64,
          items: { type: 'string', minLength: 1, maxLength: 100 },
          description: 'Short form: permissions (area:verb) or Toka capability names it may hold.',
        },
      },
      oneOf: [{ required: ['spec'], not: { anyOf: [{ required: ['name'] }, { required: ['task'] }, { required: ['capabilities_required'] }] } }, { required: ['name', 'task'], not: { required: ['spec'] } }],
    },
    sideEffect: 'external',
    permission: 'agent:spawn',
  },
  async call(raw, ctx): Promise<ToolResult> {
    const kernel = kernelOf(ctx);
    const args = raw as SpawnArgs;
    const text =
      args.spec ??
      JSON.stringify(shortFormDocument({ ...args, name: args.name!, task: args.task! }, new Date().toISOString().slice(0, 10)));
    const analysis = analyzeSpecText(args.spec !== undefined ? 'spec.agent.yaml' : 'spec.agent.json', text);
    const errors = analysis.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0 || analysis.spec === undefined || analysis.digest === undefined) {
      const lines = errors.slice(0, REPORTED_DIAGNOSTICS).map((d) => `${d.line}:${d.column} ${d.rule}: ${d.message}`);
      throw new ToolError('InvalidArguments', `the spec has errors:\n${lines.join('\n')}`, { diagnostics: errors.slice(0, REPORTED_DIAGNOSTICS) });
    }
    const spec = analysis.spec;
    const requested = new Set<string>(AGENT_BASE_PERMISSIONS);
    for (const entry of spec.security.capabilitiesRequired) for (const p of permissionsOf(entry) ?? []) requested.add(p);
    const wider = permissionsNotCovered([...requested], kernel.permissions);
    if (wider.length > 0) {
      throw new ToolError(
        'Denied',
        `a sub-agent may hold only what this agent holds; it does not hold ${wider.join(', ')}`,
        { beyondSpawner: wider },
      );
    }
    const spawned = await acting(() => kernel.spawn({ spec, digest: analysis.digest!, document: analysis.document }));
    const data = { agent: spawned.agent, name: spec.metadata.name, permissions: spawned.permissions, tasks: spawned.tasks };
    return { content: JSON.stringify(data), isError: false, data };
  },
};

interface ScheduleArgs {
  agent?: string;
  description: string;
  priority?: 'critical' | 'high' | 'medium' | 'low';
}

export const scheduleTaskTool: Tool = {
  manifest: {
    name: 'schedule_task',
    description: "Queue a task on this agent (default) or on another agent of its vault, such as a sub-agent it spawned.",
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['description'],
      properties: {
        agent: { type: 'string', minLength: 1, maxLength: 200, description: 'The agent whose queue takes the task; default: this agent.' },
        description: { type: 'string', minLength: 1, maxLength: TASK_CHARS, description: 'What the task asks for.' },
        priority: { ...PRIORITY, description: 'Queue priority; default medium.' },
      },
    },
    sideEffect: 'external',
    permission: 'task:schedule',
  },
  async call(raw, ctx): Promise<ToolResult> {
    const kernel = kernelOf(ctx);
    const args = raw as ScheduleArgs;
    const agent = args.agent ?? kernel.agent;
    const records = await acting(() =>
      kernel.submit({
        type: 'ScheduleAgentTask',
        agent,
        task: { description: args.description, ...(args.priority !== undefined ? { priority: args.priority } : {}) },
      }),
    );
    const task = (records[records.length - 1].event as unknown as { task: { id: string; priority: string } }).task;
    const data = { agent, task: task.id, priority: task.priority };
    return { content: JSON.stringify(data), isError: false, data };
  },
};

interface ObservationArgs {
  progress: number;
  message: string;
  state?: string;
  metrics?: Record<string, number>;
}

export const emitObservationTool: Tool = {
  manifest: {
    name: 'emit_observation',
    description:
      'Report progress: an observation {agent_id, progress (0..1), message, state, metrics} recorded in the log ' +
      'and streamed to whoever follows this agent.',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['progress', 'message'],
      properties: {
        progress: { type: 'number', minimum: 0, maximum: 1, description: 'How far along the work is, 0..1.' },
        message: { type: 'string', maxLength: MESSAGE_CHARS, description: 'What is happening, for people.' },
        state: { type: 'string', minLength: 1, maxLength: 64, description: 'A short state word; default working.' },
        metrics: {
          type: 'object',
          maxProperties: METRICS,
          propertyNames: { maxLength: 64 },
          additionalProperties: { type: 'number' },
          description: 'Named numbers (files written, tests passed, ...).',
        },
      },
    },
    sideEffect: 'external',
    permission: 'observation:emit',
  },
  async call(raw, ctx): Promise<ToolResult> {
    const kernel = kernelOf(ctx);
    const args = raw as ObservationArgs;
    const data = {
      agent_id: kernel.agent,
      progress: args.progress,
      message: args.message,
      state: args.state ?? 'working',
      metrics: args.metrics ?? {},
    };
    const records = await acting(() => kernel.submit({ type: 'EmitObservation', agent: kernel.agent, data }));
    const index = (records[records.length - 1].event as unknown as { index: number }).index;
    return { content: JSON.stringify({ recorded: true, index }), isError: false, data: { index } };
  },
};

/** The kernel tools, in the order an LLM is shown them. */
export const kernelTools: Tool[] = [spawnAgentTool, scheduleTaskTool, emitObservationTool];
