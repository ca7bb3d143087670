/**
 * One MCP session: an SDK low-level `Server` whose handlers serve a registry to one host session.
 * Transports (stdio.ts, http.ts) create one per connection or `mcp-session-id`.
 *
 * Errors, in the SDK's terms:
 * - protocol problems are JSON-RPC errors: unknown tool, prompt or resource, arguments that do not match the
 *   schema (InvalidParams -32602), a result over the size bound (LimitExceeded -31905, applied by the
 *   transports through `oversizeResult`), no valid token
 *   (Unauthenticated -31910), host unavailable; `error.data` is Toka's `{ name, ...details }`;
 * - a refused or failed operation inside a tool (CapabilityDenied, UnknownEntity, InvalidOperation,
 *   LimitExceeded, RateLimited, ...) is a tool result with `isError: true` whose text and
 *   `structuredContent.error` carry the Toka error name, so the model can read it and correct course.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  LoggingLevelSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type JSONRPCMessage,
  type LoggingLevel,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { permits, type CapabilityClaims } from '../../../protocol/capability.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import type { LogRecord } from '../../../protocol/events.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import { TOKA_VERSION } from '../../host/version.js';
import type { Subscription } from '../../store/event-log.js';
import { toolResult, type McpCallContext, type McpContext, type McpRegistry } from './registry.js';

export interface McpServerOptions {
  /** Most tool calls in flight per session; more are refused with LimitExceeded. Default 16. */
  maxConcurrentCalls?: number;
  /** Most resource subscriptions per session. Default 64. */
  maxSubscriptions?: number;
}

export const MCP_DEFAULTS = { maxResultBytes: 1024 * 1024, maxConcurrentCalls: 16, maxSubscriptions: 64 } as const;

/**
 * The bound on results: given an outgoing message and its JSON text, the LimitExceeded (-31905) error
 * response that replaces a response whose JSON exceeds `maxResultBytes` (naming the bound), else null.
 */
export function oversizeResult(message: JSONRPCMessage, text: string, maxResultBytes: number): JSONRPCMessage | null {
  if (text.length * 3 <= maxResultBytes || !('result' in message)) return null;
  const size = Buffer.byteLength(text);
  if (size <= maxResultBytes) return null;
  return {
    jsonrpc: '2.0',
    id: message.id,
    error: {
      code: ErrorCodes.LimitExceeded,
      message: `result of ${size} bytes exceeds the MCP result bound of ${maxResultBytes} bytes`,
      data: { name: 'LimitExceeded', limit: 'mcp.maxResultBytes', max: maxResultBytes, size },
    },
  };
}

/** Wraps a transport so responses over the result bound are refused (see `oversizeResult`). */
export class BoundedTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly maxResultBytes: number,
  ) {}
  set onclose(handler: (() => void) | undefined) {
    this.inner.onclose = handler;
  }
  set onerror(handler: ((error: Error) => void) | undefined) {
    this.inner.onerror = handler;
  }
  set onmessage(handler: Transport['onmessage']) {
    this.inner.onmessage = handler;
  }
  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }
  setProtocolVersion = (version: string): void => this.inner.setProtocolVersion?.(version);
  start(): Promise<void> {
    return this.inner.start();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (!('result' in message)) return this.inner.send(message, options);
    const refused = oversizeResult(message, JSON.stringify(message), this.maxResultBytes);
    return this.inner.send(refused ?? message, options);
  }
}

/** Host errors that make the whole session unusable: JSON-RPC errors even inside a tool call. */
const SESSION_ERRORS = new Set(['Unauthenticated', 'Unavailable', 'InternalError', 'RequestCancelled']);

const LEVELS = LoggingLevelSchema.options;

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface McpSessionServer {
  readonly server: Server;
  /** End resource subscriptions and close the SDK server (and so its transport). */
  close(): Promise<void>;
}

/** A JSON-RPC error carrying Toka's error name and details. */
export function mcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  const e = HostError.from(err);
  return new McpError(e.code, e.message, e.data);
}

function invalidParams(message: string): McpError {
  return new McpError(ErrorCode.InvalidParams, message, { name: 'InvalidParams' });
}

export function createMcpSession(
  registry: McpRegistry,
  host: Host,
  session: Session,
  options: McpServerOptions = {},
): McpSessionServer {
  const maxCalls = options.maxConcurrentCalls ?? MCP_DEFAULTS.maxConcurrentCalls;
  const maxSubscriptions = options.maxSubscriptions ?? MCP_DEFAULTS.maxSubscriptions;
  const server = new Server(
    { name: 'toka', version: TOKA_VERSION },
    {
      capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} },
      instructions:
        'Toka is a capability-secured agent kernel. Tools act on the world state of your token\'s vault; ' +
        'read toka://state first, and use the write_agent_spec prompt before spawning agents.',
    },
  );
  let level: LoggingLevel = 'info';
  let inFlight = 0;
  /** Subscribed URIs, each with what tells whether a record touches it (null: the resource has no updates). */
  const subscribed = new Map<string, ((record: LogRecord) => boolean) | null>();
  let hostSub: Promise<Subscription> | null = null;
  let closed = false;

  const check = async (): Promise<CapabilityClaims> => {
    try {
      return await host.check(session);
    } catch (err) {
      throw mcpError(err);
    }
  };
  const visible = (claims: CapabilityClaims, permission: string | null) =>
    permission === null || permits(claims.permissions, permission);
  const context = (extra: Extra): McpContext => ({ host, session, signal: extra.signal });
  const logAllowed = (l: LoggingLevel) => LEVELS.indexOf(l) >= LEVELS.indexOf(level);

  server.setRequestHandler(SetLevelRequestSchema, async (request) => {
    level = request.params.level;
    return {};
  });

  // ---- tools ---------------------------------------------------------------------------------------

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const claims = await check();
    return {
      tools: registry
        .listTools()
        .filter((t) => visible(claims, t.spec.permission))
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

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const entry = registry.tool(request.params.name);
    if (!entry) throw invalidParams(`Unknown tool: ${request.params.name}`);
    const parsed = entry.spec.input.safeParse(request.params.arguments ?? {});
    if (!parsed.success) {
      throw new McpError(ErrorCode.InvalidParams, `Invalid arguments for tool ${entry.spec.name}: ${parsed.error.message}`, {
        name: 'InvalidParams',
        issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
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
    try {
      // Entries that need no permission never reach an authorising host call: re-verify the token here.
      if (entry.spec.permission === null) await check();
      return toolResult(await entry.spec.run(parsed.data, callContext(extra)));
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
      inFlight--;
    }
  });

  const callContext = (extra: Extra): McpCallContext => {
    const progressToken = extra._meta?.progressToken;
    return {
      ...context(extra),
      progress: async (progress, total, message) => {
        if (progressToken === undefined) return;
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, ...(total !== undefined ? { total } : {}), ...(message ? { message } : {}) },
        });
      },
      log: async (l, data) => {
        if (!logAllowed(l)) return;
        await extra.sendNotification({ method: 'notifications/message', params: { level: l, logger: 'toka', data } });
      },
      sample: (params) => server.createMessage(params, { relatedRequestId: extra.requestId, signal: extra.signal }),
      elicit: (params) => server.elicitInput(params, { relatedRequestId: extra.requestId, signal: extra.signal }),
    };
  };

  // ---- resources -----------------------------------------------------------------------------------

  server.setRequestHandler(ListResourcesRequestSchema, async () => {
    const claims = await check();
    return {
      resources: registry
        .listResources()
        .filter((r) => visible(claims, r.permission))
        .map((r) => ({
          uri: r.uri,
          name: r.name,
          ...(r.title ? { title: r.title } : {}),
          description: r.description,
          mimeType: r.mimeType,
        })),
    };
  });

  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => {
    const claims = await check();
    return {
      resourceTemplates: registry
        .listTemplates()
        .filter((t) => visible(claims, t.spec.permission))
        .map(({ spec }) => ({
          uriTemplate: spec.uriTemplate,
          name: spec.name,
          ...(spec.title ? { title: spec.title } : {}),
          description: spec.description,
          mimeType: spec.mimeType,
        })),
    };
  });

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const uri = request.params.uri;
    try {
      const fixed = registry.resource(uri);
      if (fixed) {
        if (fixed.permission === null) await check();
        return { contents: await fixed.read(context(extra), uri) };
      }
      const match = registry.matchTemplate(uri);
      if (!match) throw invalidParams(`Unknown resource: ${uri}`);
      if (match.entry.spec.permission === null) await check();
      return { contents: await match.entry.spec.read(context(extra), uri, match.vars) };
    } catch (err) {
      throw mcpError(err);
    }
  });

  /**
   * Resolve `uri` once, at subscribe time: what tells whether a record touches it, null when the resource
   * has no updates, undefined when no resource or template serves it.
   */
  const touchedBy = (uri: string): ((record: LogRecord) => boolean) | null | undefined => {
    const fixed = registry.resource(uri);
    if (fixed) return fixed.touchedBy ? (record) => fixed.touchedBy?.(record) ?? false : null;
    const match = registry.matchTemplate(uri);
    if (!match) return undefined;
    const { spec } = match.entry;
    return spec.touchedBy ? (record) => spec.touchedBy?.(record, match.vars) ?? false : null;
  };

  /** The host subscription for resource updates, opened once for the session (a promise: concurrent subscribes share it). */
  const openHostSub = (): Promise<Subscription> => {
    const opened: Promise<Subscription> = host.subscribe(
      session,
      { afterSeq: host.health().seq },
      {
        onRecord: async (record) => {
          for (const [u, touches] of subscribed) {
            if (touches?.(record)) await server.sendResourceUpdated({ uri: u }).catch(() => undefined);
          }
        },
        onEnd: (end) => {
          if (hostSub === opened) hostSub = null;
          if (!closed) {
            void server
              .sendLoggingMessage({ level: 'warning', logger: 'toka', data: `resource updates ended: ${end.reason}` })
              .catch(() => undefined);
          }
        },
      },
    );
    // A refused subscribe leaves nothing open: the next resources/subscribe asks the host again.
    opened.catch(() => {
      if (hostSub === opened) hostSub = null;
    });
    return opened;
  };
  /** Stop resource updates: the host subscription is ended once it has opened (or at once if it has). */
  const dropHostSub = (): void => {
    const sub = hostSub;
    hostSub = null;
    void sub?.then((s) => s.unsubscribe(), () => undefined);
  };

  const subscriptionLimit = (uri: string): void => {
    if (!subscribed.has(uri) && subscribed.size >= maxSubscriptions) {
      throw new McpError(ErrorCodes.LimitExceeded, `more than ${maxSubscriptions} resource subscriptions`, {
        name: 'LimitExceeded',
        limit: 'mcp.maxSubscriptions',
        max: maxSubscriptions,
      });
    }
  };

  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    const uri = request.params.uri;
    const touched = touchedBy(uri);
    if (touched === undefined) throw invalidParams(`Unknown resource: ${uri}`);
    await check();
    subscriptionLimit(uri);
    // Until the host subscription this request awaited is still the session's once it resolves: an
    // unsubscribe of the last watched URI, or the end of updates, may have dropped it meanwhile.
    for (let sub = hostSub; touched && !closed; sub = hostSub) {
      const awaited = sub ?? (hostSub = openHostSub());
      try {
        await awaited;
      } catch (err) {
        throw mcpError(err);
      }
      if (hostSub === awaited) break;
    }
    if (closed) return {};
    subscriptionLimit(uri);
    subscribed.set(uri, touched);
    return {};
  });

  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscribed.delete(request.params.uri);
    if (hostSub && ![...subscribed.values()].some(Boolean)) dropHostSub();
    return {};
  });

  // ---- prompts -------------------------------------------------------------------------------------

  server.setRequestHandler(ListPromptsRequestSchema, async () => {
    const claims = await check();
    return {
      prompts: registry
        .listPrompts()
        .filter((p) => visible(claims, p.permission))
        .map((p) => ({
          name: p.name,
          ...(p.title ? { title: p.title } : {}),
          description: p.description,
          arguments: (p.arguments ?? []).map((a) => ({ name: a.name, description: a.description, required: a.required ?? false })),
        })),
    };
  });

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const prompt = registry.prompt(request.params.name);
    if (!prompt) throw invalidParams(`Unknown prompt: ${request.params.name}`);
    const args = request.params.arguments ?? {};
    for (const a of prompt.arguments ?? []) {
      if (a.required && !args[a.name]) throw invalidParams(`Prompt ${prompt.name} needs argument ${a.name}`);
    }
    try {
      await check();
      return await prompt.get(context(extra), args);
    } catch (err) {
      throw mcpError(err);
    }
  });

  // ---- completion ----------------------------------------------------------------------------------

  server.setRequestHandler(CompleteRequestSchema, async (request, extra) => {
    const { ref, argument } = request.params;
    const others = request.params.context?.arguments ?? {};
    let complete: ((ctx: McpContext, value: string) => Promise<string[]>) | undefined;
    if (ref.type === 'ref/prompt') {
      const prompt = registry.prompt(ref.name);
      if (!prompt) throw invalidParams(`Unknown prompt: ${ref.name}`);
      const arg = prompt.arguments?.find((a) => a.name === argument.name);
      if (arg?.complete) complete = (ctx, value) => arg.complete!(ctx, value, others);
    } else {
      const entry = registry.template(ref.uri);
      if (!entry) throw invalidParams(`Unknown resource template: ${ref.uri}`);
      complete = entry.spec.complete?.[argument.name];
    }
    if (!complete) return { completion: { values: [] } };
    try {
      await check();
      const values = await complete(context(extra), argument.value);
      return { completion: { values: values.slice(0, 100), total: values.length, hasMore: values.length > 100 } };
    } catch (err) {
      throw mcpError(err);
    }
  });

  return {
    server,
    close: async () => {
      if (closed) return;
      closed = true;
      dropHostSub();
      subscribed.clear();
      await server.close();
    },
  };
}
