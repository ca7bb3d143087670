/**
 * Toka's resources over MCP: the world state of the vault, its agents, each agent (a template), and
 * recent events. Reads go through the host; a subscribed resource is reported updated when a kernel
 * event of the vault touches it.
 */
import type { LogRecord } from '../../../protocol/events.js';
import { resourceNotFound } from './errors.js';
import type { McpContext, McpRegistry } from './registry.js';

/** Events `toka://events/recent` covers: the vault's events among the newest this many log records. */
export const RECENT_EVENTS = 100;

const JSON_TYPE = 'application/json';

function jsonContents(uri: string, value: unknown) {
  return [{ uri, mimeType: JSON_TYPE, text: JSON.stringify(value, null, 2) }];
}

async function agentIds(ctx: McpContext, prefix: string): Promise<string[]> {
  const state = await ctx.host.getState(ctx.session, { limit: 500 });
  return state.agents.map((a) => a.id).filter((id) => id.startsWith(prefix));
}

/** Completion of agent ids (prompt arguments, the agent template): ids of the vault starting with `value`. */
export const completeAgentId = (ctx: McpContext, value: string): Promise<string[]> => agentIds(ctx, value);

const aboutAgent = (record: LogRecord, id: string): boolean =>
  record.event.agent === id || (record.event.type === 'AgentSpawned' && (record.event as { parent?: unknown }).parent === id);

export function registerTokaResources(registry: McpRegistry): void {
  registry.registerResource({
    uri: 'toka://state',
    name: 'state',
    title: 'World state',
    description: 'The world state of your vault: every agent with its queued tasks and observation count, and the log head.',
    mimeType: JSON_TYPE,
    permission: 'state:read',
    read: async (ctx, uri) => jsonContents(uri, await ctx.host.getState(ctx.session, { includeTasks: true, limit: 500 })),
    touchedBy: () => true,
  });

  registry.registerResource({
    uri: 'toka://agents',
    name: 'agents',
    title: 'Agents',
    description: 'The agents of your vault (id, parent, name, status, counts), oldest first.',
    mimeType: JSON_TYPE,
    permission: 'state:read',
    read: async (ctx, uri) => {
      const state = await ctx.host.getState(ctx.session, { limit: 500 });
      return jsonContents(uri, { seq: state.seq, agents: state.agents });
    },
    touchedBy: (record) => record.event.agent !== undefined,
  });

  registry.registerResourceTemplate({
    uriTemplate: 'toka://agents/{id}',
    name: 'agent',
    title: 'Agent',
    description: 'One agent of your vault with its queued tasks (an unknown id is MCP\'s resource-not-found error).',
    mimeType: JSON_TYPE,
    permission: 'state:read',
    read: async (ctx, uri, vars) => {
      const state = await ctx.host.getState(ctx.session, { agent: vars.id, includeTasks: true, limit: 1 });
      if (state.agents.length === 0) throw resourceNotFound(uri);
      return jsonContents(uri, { seq: state.seq, agent: state.agents[0] });
    },
    touchedBy: (record, vars) => aboutAgent(record, vars.id),
    complete: { id: completeAgentId },
  });

  registry.registerResource({
    uri: 'toka://events/recent',
    name: 'recent-events',
    title: 'Recent events',
    description: `Events of your vault among the newest ${RECENT_EVENTS} records of the event log.`,
    mimeType: JSON_TYPE,
    permission: 'events:read',
    read: async (ctx, uri) => {
      const afterSeq = Math.max(0, ctx.host.health().seq - RECENT_EVENTS);
      return jsonContents(uri, { records: await ctx.host.queryEvents(ctx.session, { afterSeq, limit: RECENT_EVENTS }) });
    },
    touchedBy: () => true,
  });
}
