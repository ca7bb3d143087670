/**
 * Toka's prompts over MCP. `write_agent_spec` teaches an LLM the shape and limits of an agent spec as the
 * kernel accepts it, so the spec it writes can be submitted with `spawn_agent` and `schedule_task` as is.
 */
import { KERNEL_LIMITS } from '../../../protocol/kernel.js';
import type { McpRegistry } from './registry.js';
import { completeAgentId } from './resources.js';

export function registerTokaPrompts(registry: McpRegistry): void {
  registry.registerPrompt({
    name: 'write_agent_spec',
    title: 'Write an agent spec',
    description: 'Guides you to write a valid Toka agent spec (name, parent, initial tasks) for a goal, ready for spawn_agent and schedule_task.',
    permission: null,
    arguments: [
      { name: 'goal', description: 'What the agent should achieve', required: true },
      { name: 'parent', description: 'Parent agent id (default "root")', complete: (ctx, value) => completeAgentId(ctx, value) },
    ],
    get: async (_ctx, args) => {
      const parent = args.parent || 'root';
      const text = [
        `Write a Toka agent spec for this goal: ${args.goal}`,
        '',
        'Answer with one JSON object and nothing else:',
        '{',
        `  "parent": "${parent}",`,
        '  "name": "<display name>",',
        '  "tasks": [{ "description": "<what to do>", "priority": "critical" | "high" | "medium" | "low" }]',
        '}',
        '',
        'Rules the kernel enforces (a spec that breaks one is refused):',
        `- name: not blank, at most ${KERNEL_LIMITS.agentNameChars} characters.`,
        `- parent: an agent id of your vault, or "root" for the vault's root agent.`,
        `- each task description: not blank, at most ${KERNEL_LIMITS.taskDescriptionBytes} UTF-8 bytes; one concrete step per task.`,
        `- priority: one of critical, high, medium, low (default medium); at most ${KERNEL_LIMITS.queuedTasksPerAgent} queued tasks per agent.`,
        '',
        'To apply it: call spawn_agent with { parent, name }, then schedule_task with { agent: <the returned agent id>, description, priority } for each task, in order.',
        'Your token must hold agent:spawn and task:schedule; a refused call returns isError with the reason (e.g. CapabilityDenied).',
      ].join('\n');
      return {
        description: `Agent spec for: ${args.goal}`,
        messages: [{ role: 'user', content: { type: 'text', text } }],
      };
    },
  });
}
