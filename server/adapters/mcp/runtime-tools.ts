/**
 * The agent runtime over MCP: ask an agent to work (`run_agent`, with progress while it runs), look at runs
 * (`get_run`, `list_runs`), cancel one (`cancel_run`), and decide the tool calls waiting for a human
 * (`list_approvals`, `resolve_approval`). Each calls the `AgentRuntime` with the caller's session, exactly as
 * `toka/agents/run`, `toka/tasks/*` and `toka/approvals/*` do; the runtime and the host authorise. Registered
 * only on a host that runs the runtime; listed to a session only when its token holds the tool's permission.
 *
 * A run is what `toka/tasks/*` calls a task (the A2A task); the names here say "run" because Toka's MCP
 * `get_task` and `cancel_task` already name the kernel's queued tasks.
 */
import { z } from 'zod';
import { TERMINAL_RUN_STATES, type RunRecord } from '../../../protocol/runtime.js';
import type { AgentRuntime } from '../../runtime/runtime.js';
import type { McpCallContext, McpPlugin } from './registry.js';

/** Longest a `run_agent` call waits for its runs to end, seconds. */
export const MAX_RUN_WAIT_S = 3600;
const DEFAULT_RUN_WAIT_S = 600;

const id = z.string().min(1).max(256);
const RUN_STATES = ['submitted', 'working', 'input-required', 'completed', 'failed', 'canceled', 'rejected'] as const;

/** A run as the host keeps it; fields beyond these (limits, artifacts, approval, ...) pass through. */
const runView = z
  .object({
    id: z.string(),
    agent: z.string(),
    state: z.enum(RUN_STATES),
    input: z.string(),
    turns: z.number(),
    toolCalls: z.number(),
    text: z.string().optional().describe('Final LLM text (state completed)'),
    reason: z.object({ code: z.string(), message: z.string() }).loose().optional().describe('Why it failed or was cancelled'),
  })
  .loose();

const approvalView = z
  .object({
    id: z.string(),
    run: z.string(),
    agent: z.string(),
    call: z.object({ id: z.string(), name: z.string(), arguments: z.unknown() }),
    permission: z.string(),
    requestedAt: z.number(),
  })
  .loose();

const limits = z
  .object({
    timeoutMs: z.number().int().min(1).optional(),
    maxTurns: z.number().int().min(1).optional(),
    maxToolCalls: z.number().int().min(0).optional(),
    maxTokens: z.number().int().min(1).optional(),
    maxOutputBytes: z.number().int().min(1).optional(),
  })
  .strict()
  .describe('Bounds on each run; the host fills in its defaults');

const ended = (run: RunRecord) => TERMINAL_RUN_STATES.includes(run.state);
const json = (run: RunRecord) => run as unknown as Record<string, unknown>;

/** The runtime's tools, for a host that runs `runtime`. */
export function runtimeTools(runtime: AgentRuntime): McpPlugin {
  return (registry) => {
    registry.registerTool({
      name: 'run_agent',
      title: 'Run agent',
      description:
        'Ask an agent of your vault to work: one run for `input`, or (without it) one run per task queued on the agent. ' +
        'By default waits until the runs end, reporting progress (turns and tool calls); `wait: false` returns the submitted runs at once. ' +
        'An agent whose spec sets `llm.provider: mcp-sampling` asks your model (`sampling/createMessage`) for every turn: your client must declare sampling.',
      permission: 'task:run',
      input: z.object({
        agent: id.describe('The agent to run'),
        input: z.string().min(1).max(64 * 1024).optional().describe('The task text; without it, the agent’s queued tasks'),
        limits: limits.optional(),
        wait: z.boolean().default(true).describe('Wait for the runs to end (default true)'),
        waitSeconds: z.number().int().min(1).max(MAX_RUN_WAIT_S).default(DEFAULT_RUN_WAIT_S).describe('Longest wait; the runs go on after it'),
      }),
      output: z.object({
        runs: z.array(runView).describe('The runs started, as they stand when the call returns'),
        ended: z.boolean().describe('Whether every run had ended when the call returned'),
      }),
      annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: true },
      async run(args, ctx) {
        const request = { agent: args.agent, ...(args.input !== undefined ? { input: args.input } : {}), ...(args.limits ? { limits: args.limits } : {}) };
        const { runs: ids } = await runtime.run(ctx.session, request, { sampling: ctx.requester });
        const runs = args.wait ? await waitForRuns(runtime, ctx, ids, args.waitSeconds * 1000) : await Promise.all(ids.map((r) => runtime.getRun(ctx.session, r)));
        return { structured: { runs: runs.map(json), ended: runs.every(ended) } };
      },
    });

    registry.registerTool({
      name: 'get_run',
      title: 'Get run',
      description: 'One run of your vault: its state, turns, tool calls, final text or why it ended.',
      permission: 'state:read',
      input: z.object({ run: id.describe('The run id') }),
      output: z.object({ run: runView }),
      annotations: { readOnlyHint: true, openWorldHint: false },
      async run(args, ctx) {
        return { structured: { run: json(await runtime.getRun(ctx.session, args.run)) } };
      },
    });

    registry.registerTool({
      name: 'list_runs',
      title: 'List runs',
      description: 'Runs of your vault, newest first, optionally of one agent or in one state.',
      permission: 'state:read',
      input: z.object({
        agent: id.optional().describe('Only runs of this agent'),
        state: z.enum(RUN_STATES).optional().describe('Only runs in this state'),
        limit: z.number().int().min(1).max(1000).default(100).describe('At most this many (default 100)'),
      }),
      output: z.object({ runs: z.array(runView) }),
      annotations: { readOnlyHint: true, openWorldHint: false },
      async run(args, ctx) {
        return { structured: { runs: (await runtime.listRuns(ctx.session, args)).map(json) } };
      },
    });

    registry.registerTool({
      name: 'cancel_run',
      title: 'Cancel run',
      description: 'Cancel a run that has not ended; its LLM request and running tool stop within a second.',
      permission: 'task:cancel',
      input: z.object({ run: id.describe('The run id'), reason: z.string().max(4096).optional().describe('Why (recorded)') }),
      output: z.object({ run: runView }),
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
      async run(args, ctx) {
        return { structured: { run: json(await runtime.cancel(ctx.session, args)) } };
      },
    });

    registry.registerTool({
      name: 'list_approvals',
      title: 'List approvals',
      description: 'Tool calls of agents in your vault waiting for a human decision, oldest first.',
      permission: 'task:approve',
      input: z.object({}),
      output: z.object({ approvals: z.array(approvalView) }),
      annotations: { readOnlyHint: true, openWorldHint: false },
      async run(_args, ctx) {
        return { structured: { approvals: (await runtime.approvals(ctx.session)) as unknown as Record<string, unknown>[] } };
      },
    });

    registry.registerTool({
      name: 'resolve_approval',
      title: 'Resolve approval',
      description: 'Approve or deny a tool call waiting for a decision; the run goes on (a denied call is reported to its LLM).',
      permission: 'task:approve',
      input: z.object({
        run: id.describe('The run waiting'),
        approval: id.describe('The approval id (from list_approvals)'),
        decision: z.enum(['approve', 'deny']),
        note: z.string().max(4096).optional().describe('Recorded with the decision'),
      }),
      output: z.object({ run: runView }),
      annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
      async run(args, ctx) {
        return { structured: { run: json(await runtime.resolve(ctx.session, args)) } };
      },
    });
  };
}

/**
 * Wait until every run of `ids` has ended, at most `waitMs` (real time) or until the call is cancelled,
 * sending progress — turns plus tool calls of all the runs, a count that only grows — whenever the log
 * records a step of one of them. Returns the runs as they then stand.
 */
async function waitForRuns(runtime: AgentRuntime, ctx: McpCallContext, ids: string[], waitMs: number): Promise<RunRecord[]> {
  const watched = new Set(ids);
  let runs = await Promise.all(ids.map((r) => runtime.getRun(ctx.session, r)));
  if (runs.every(ended)) return runs;
  let reported = -1;
  const report = async () => {
    const steps = runs.reduce((n, r) => n + r.turns + r.toolCalls, 0);
    if (steps <= reported) return;
    reported = steps;
    const states = runs.map((r) => `${r.id}: ${r.state}, ${r.turns} turns, ${r.toolCalls} tool calls`).join('; ');
    await ctx.progress(steps, undefined, states);
  };
  await report();
  // Set by every log record of a watched run; the loop re-reads the runs whenever it is set.
  let stepped = false;
  let wake: (() => void) | null = null;
  const subscription = ctx.host.watch(ctx.host.headSeq(), (record) => {
    const run = (record.event as { run?: unknown }).run;
    const runId = typeof run === 'string' ? run : typeof run === 'object' && run !== null ? (run as { id?: unknown }).id : undefined;
    if (typeof runId !== 'string' || !watched.has(runId)) return;
    stepped = true;
    wake?.();
  });
  const deadline = Date.now() + waitMs;
  try {
    for (;;) {
      runs = await Promise.all(ids.map((r) => runtime.getRun(ctx.session, r)));
      await report();
      if (runs.every(ended) || ctx.signal.aborted || Date.now() >= deadline) return runs;
      if (!stepped) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            ctx.signal.removeEventListener('abort', done);
            wake = null;
            resolve();
          };
          const timer = setTimeout(done, deadline - Date.now());
          ctx.signal.addEventListener('abort', done, { once: true });
          wake = done;
        });
      }
      stepped = false;
    }
  } finally {
    subscription.unsubscribe();
  }
}
