/**
 * `tools/list` and `tools/call` for one session. Arguments that do not match the tool's schema, and a
 * refused or failed operation inside a tool, are a tool result with `isError: true` carrying the Toka error
 * name (the model can read it and correct course); an unknown tool, the in-flight bound and session-ending
 * host errors are JSON-RPC errors.
 */
import {
  CallToolRequestParamsSchema,
  McpError,
  PaginatedRequestParamsSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { RequestExtra } from './dispatch.js';
import { SESSION_ERRORS, invalidParams, mcpError } from './errors.js';
import { toolResult, type McpCallContext, type McpContext } from './registry.js';
import type { SessionScope } from './scope.js';

export function registerToolHandlers(scope: SessionScope, maxCalls: number): void {
  const { server, dispatcher, registry, host } = scope;
  let inFlight = 0;

  dispatcher.handle('tools/list', PaginatedRequestParamsSchema, async () => {
    const claims = await scope.check();
    return {
      tools: registry
        .listTools()
        .filter((t) => scope.visible(claims, t.spec.permission))
        .map((t) => ({
          name: t.spec.name,
          ...(t.spec.title ? { title: t.spec.title } : {}),
          description: t.spec.description,
          inputSchema: t.inputSchema,
          ...(t.outputSchema ? { outputSchema: t.outputSchema } : {}),
          ...(t.spec.annotations ? { annotations: t.spec.annotations } : {}),
        })),
    };
  });

  dispatcher.handle('tools/call', CallToolRequestParamsSchema, async (params, extra): Promise<CallToolResult> => {
    const entry = registry.tool(params.name);
    if (!entry) throw invalidParams(`Unknown tool: ${params.name}`);
    const parsed = entry.spec.input.safeParse(params.arguments ?? {});
    if (!parsed.success) {
      // SEP-1303: arguments that do not match the schema are a tool result the model can read and correct.
      const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
      const where = issues.map((i) => `${i.path.length ? i.path.join('.') : '(arguments)'}: ${i.message}`).join('; ');
      return toolResult({
        content: [
          { type: 'text', text: `InvalidParams: invalid arguments for tool ${entry.spec.name}: ${where}` },
          { type: 'text', text: JSON.stringify({ error: { name: 'InvalidParams', issues } }) },
        ],
        isError: true,
      });
    }
    if (inFlight >= maxCalls) {
      throw new McpError(ErrorCodes.LimitExceeded, `more than ${maxCalls} tool calls in flight on this session`, {
        name: 'LimitExceeded',
        limit: 'mcp.maxConcurrentCalls',
        max: maxCalls,
      });
    }
    inFlight++;
    const call = callContext(extra);
    try {
      // Entries that need no permission never reach an authorising host call: re-verify the token here.
      if (entry.spec.permission === null) await scope.check();
      return toolResult(await entry.spec.run(parsed.data, call.context));
    } catch (err) {
      if (err instanceof McpError) throw err;
      const e = HostError.from(err);
      if (e.errorName === 'InternalError') host.logger.error('MCP tool failed', { tool: entry.spec.name, err });
      if (SESSION_ERRORS.has(e.errorName)) throw mcpError(e);
      // No structuredContent on an error: clients validate structuredContent against the tool's outputSchema.
      // The error travels as text: its name and message, then its details as JSON.
      return toolResult({
        content: [
          { type: 'text', text: `${e.errorName}: ${e.message}` },
          { type: 'text', text: JSON.stringify({ error: { ...e.data, message: e.message } }) },
        ],
        isError: true,
      });
    } finally {
      call.end();
      inFlight--;
    }
  });

  /** The context of one call, and `end` to say the call has returned. */
  const callContext = (extra: RequestExtra): { context: McpCallContext; end(): void } => {
    const { progressToken } = extra;
    let answering = true;
    // Assigned onto the request's context, not spread: spreading would read its `signal` (made on first read).
    const context: McpCallContext = Object.assign(scope.context(extra), {
      progress: async (progress, total, message) => {
        if (progressToken === undefined) return;
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, ...(total !== undefined ? { total } : {}), ...(message ? { message } : {}) },
        });
      },
      log: async (l, data) => {
        if (!scope.logAllowed(l)) return;
        await extra.sendNotification({ method: 'notifications/message', params: { level: l, logger: 'toka', data } });
      },
      requester: {
        // While the call is being answered, requests go with it (on its stream, over HTTP); after it has
        // returned, on the session's own stream (the client's GET stream, over HTTP).
        createMessage: (params, options) => server.createMessage(params, { ...options, ...(answering ? { relatedRequestId: extra.requestId } : {}) }),
        capabilities: () => {
          const sampling = server.getClientCapabilities()?.sampling;
          return { sampling: sampling !== undefined, tools: sampling?.tools !== undefined };
        },
        isOpen: () => !scope.closed && server.transport !== undefined,
      },
    } satisfies Omit<McpCallContext, keyof McpContext>);
    return {
      context,
      end: () => {
        answering = false;
      },
    };
  };
}
