/**
 * Toka's tools over MCP. Each one decodes its arguments (zod), calls the host with the session, and
 * returns the host's answer as `structuredContent`. The host authorises, rate-limits and records; the
 * `permission` here only decides who sees the tool in `tools/list`.
 */
import { z } from 'zod';
import { KERNEL_LIMITS, type KernelEvent } from '../../../protocol/kernel.js';
import { HostError } from '../../host/errors.js';
import type { SubmitResult } from '../../host/host.js';
import type { McpRegistry } from './registry.js';

const agentId = z.string().min(1).max(256);
const priority = z.enum(['critical', 'high', 'medium', 'low']);
const json = z.record(z.string(), z.unknown());

const taskRecord = z.object({
  id: z.string(),
  description: z.string(),
  priority,
  scheduledAt: z.number().describe('ms since the epoch'),
});

const agentView = z.object({
  id: z.string(),
  parent: z.string().nullable(),
  vault: z.string(),
  name: z.string(),
  status: z.enum(['active', 'idle', 'stopped']),
  createdAt: z.number(),
  queuedTasks: z.number(),
  observations: z.number(),
  tasks: z.array(taskRecord).optional(),
});

const logRecord = z.object({ seq: z.number(), prevHash: z.string(), hash: z.string(), event: json });

const submitted = {
  opId: z.string().describe('Id of the operation'),
  seq: z.number().describe('Log sequence number of the last event it produced'),
};

function lastEvent(result: SubmitResult): { seq: number; event: KernelEvent & Record<string, unknown> } {
  const record = result.records[result.records.length - 1];
  return { seq: record.seq, event: record.event as KernelEvent & Record<string, unknown> };
}

/** Register Toka's tools: the kernel's operations and queries of the session's vault. */
export function registerTokaTools(registry: McpRegistry): void {
  registry.registerTool({
    name: 'spawn_agent',
    title: 'Spawn agent',
    description: 'Spawn a sub-agent under a parent agent of your vault ("root" for the vault root). Returns the new agent id.',
    permission: 'agent:spawn',
    input: z.object({
      parent: agentId.default('root').describe('Parent agent id, or "root"'),
      name: z.string().min(1).max(KERNEL_LIMITS.agentNameChars).describe('Display name, not blank'),
    }),
    output: z.object({ ...submitted, agent: z.string().describe('Id of the new agent'), parent: z.string() }),
    annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run(args, ctx) {
      const result = await ctx.host.submit(ctx.session, { type: 'SpawnSubAgent', parent: args.parent, spec: { name: args.name } });
      const { seq, event } = lastEvent(result);
      await ctx.log('debug', { tool: 'spawn_agent', opId: result.opId, seq });
      return { structured: { opId: result.opId, seq, agent: String(event.agent), parent: String(event.parent) } };
    },
  });

  registry.registerTool({
    name: 'schedule_task',
    title: 'Schedule task',
    description: 'Queue a task on an agent of your vault. Returns the queued task record.',
    permission: 'task:schedule',
    input: z.object({
      agent: agentId.describe('Target agent id'),
      description: z.string().min(1).describe(`What to do: not blank, at most ${KERNEL_LIMITS.taskDescriptionBytes} UTF-8 bytes`),
      priority: priority.optional().describe('Default medium'),
    }),
    output: z.object({ ...submitted, agent: z.string(), task: taskRecord }),
    annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run(args, ctx) {
      const result = await ctx.host.submit(ctx.session, {
        type: 'ScheduleAgentTask',
        agent: args.agent,
        task: { description: args.description, ...(args.priority ? { priority: args.priority } : {}) },
      });
      const { seq, event } = lastEvent(result);
      return { structured: { opId: result.opId, seq, agent: String(event.agent), task: event.task as Record<string, unknown> } };
    },
  });

  registry.registerTool({
    name: 'emit_observation',
    title: 'Emit observation',
    description: 'Record an observation (any JSON value, at most 1 MiB) for an agent of your vault.',
    permission: 'observation:emit',
    input: z.object({ agent: agentId.describe('Agent id'), data: z.unknown().describe('Any JSON value') }),
    output: z.object({ ...submitted, agent: z.string(), index: z.number().describe('1-based index of this observation') }),
    annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run(args, ctx) {
      if (args.data === undefined) throw new HostError('InvalidParams', 'data is required', { field: 'data' });
      const result = await ctx.host.submit(ctx.session, { type: 'EmitObservation', agent: args.agent, data: args.data });
      const { seq, event } = lastEvent(result);
      return { structured: { opId: result.opId, seq, agent: String(event.agent), index: Number(event.index) } };
    },
  });

  registry.registerTool({
    name: 'get_state',
    title: 'Get state',
    description: 'Read the agents of your vault with their queue and observation counts, filtered and paged.',
    permission: 'state:read',
    input: z.object({
      agent: agentId.optional().describe('Only this agent'),
      parent: agentId.optional().describe('Only children of this agent'),
      status: z.enum(['active', 'idle', 'stopped']).optional(),
      includeTasks: z.boolean().optional().describe("Include each agent's queued tasks"),
      cursor: z.string().optional().describe('nextCursor of the previous page'),
      limit: z.number().int().min(1).max(500).optional().describe('Page size, default 100'),
    }),
    output: z.object({ seq: z.number(), agents: z.array(agentView), nextCursor: z.string().optional() }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run(args, ctx) {
      const state = await ctx.host.getState(ctx.session, args);
      return { structured: state as unknown as Record<string, unknown> };
    },
  });

  registry.registerTool({
    name: 'get_task',
    title: 'Get task',
    description: 'Read one queued task of an agent, with its position in the queue (tasks are queued records).',
    permission: 'state:read',
    input: z.object({ agent: agentId.describe('Agent id'), task: z.string().min(1).describe('Task id') }),
    output: z.object({ seq: z.number(), agent: z.string(), task: taskRecord, position: z.number().describe('0 = next in queue') }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run(args, ctx) {
      const state = await ctx.host.getState(ctx.session, { agent: args.agent, includeTasks: true, limit: 1 });
      const agent = state.agents[0];
      if (!agent) throw new HostError('UnknownEntity', `unknown agent ${args.agent}`, { entity: 'agent', id: args.agent });
      const position = (agent.tasks ?? []).findIndex((t) => t.id === args.task);
      if (position < 0) throw new HostError('UnknownEntity', `agent ${args.agent} has no queued task ${args.task}`, { entity: 'task', id: args.task });
      return { structured: { seq: state.seq, agent: agent.id, task: { ...agent.tasks![position] }, position } };
    },
  });

  registry.registerTool({
    name: 'cancel_task',
    title: 'Cancel task',
    description: 'Remove a queued task from an agent of your vault (a TaskCancelled event in the log).',
    permission: 'task:cancel',
    input: z.object({
      agent: agentId.describe('Agent id'),
      task: z.string().min(1).max(256).describe('Task id'),
      reason: z.string().max(KERNEL_LIMITS.reasonChars).optional().describe('Why, kept in the event'),
    }),
    output: z.object({ ...submitted, agent: z.string(), task: z.string() }),
    annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
    async run(args, ctx) {
      const result = await ctx.host.submit(ctx.session, {
        type: 'CancelTask',
        agent: args.agent,
        task: args.task,
        ...(args.reason !== undefined ? { reason: args.reason } : {}),
      });
      const { seq, event } = lastEvent(result);
      return { structured: { opId: result.opId, seq, agent: String(event.agent), task: String(event.task) } };
    },
  });

  registry.registerTool({
    name: 'query_events',
    title: 'Query events',
    description: 'Read a page of the event log of your vault (records with seq > afterSeq).',
    permission: 'events:read',
    input: z.object({
      afterSeq: z.number().int().min(0).optional().describe('Default 0'),
      limit: z.number().int().min(1).max(1000).optional().describe('Default 100'),
      agent: agentId.optional().describe('Only events about this agent'),
      types: z.array(z.string()).max(32).optional().describe('Only these event types'),
    }),
    output: z.object({ records: z.array(logRecord), nextAfterSeq: z.number().optional() }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run(args, ctx) {
      const records = await ctx.host.queryEvents(ctx.session, args);
      const limit = args.limit ?? 100;
      const next = records.length === limit ? { nextAfterSeq: records[records.length - 1].seq } : {};
      return { structured: { records: records as unknown as Record<string, unknown>[], ...next } };
    },
  });

  registry.registerTool({
    name: 'delegate_capability',
    title: 'Delegate capability',
    description: 'Mint a narrower child of your token for another subject: permissions within yours, expiry within yours.',
    permission: 'capability:delegate',
    input: z.object({
      subject: z.string().min(1).max(256).describe('Subject of the child token'),
      permissions: z.array(z.string()).min(1).max(100).describe('A subset of your permissions'),
      ttlSeconds: z.number().int().min(1).max(1800).optional().describe('Default 900, capped by your token expiry'),
    }),
    output: z.object({ token: z.string(), claims: json }),
    annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run(args, ctx) {
      const child = await ctx.host.delegate(ctx.session, args);
      return { structured: { token: child.token, claims: child.claims as unknown as Record<string, unknown> } };
    },
  });

  registry.registerTool({
    name: 'revoke_capability',
    title: 'Revoke capability',
    description: 'Revoke a token (by jti or the token itself) or a grant of your vault. Give exactly one of jti, token, grant.',
    permission: 'capability:revoke',
    input: z.object({
      jti: z.string().min(1).optional(),
      token: z.string().min(1).optional(),
      grant: z.string().min(1).optional(),
      reason: z.string().max(KERNEL_LIMITS.reasonChars).optional(),
    }),
    output: z.object(submitted),
    annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    async run(args, ctx) {
      const result = await ctx.host.revoke(ctx.session, args);
      return { structured: { opId: result.opId, seq: lastEvent(result).seq } };
    },
  });
}
