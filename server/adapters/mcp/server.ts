/**
 * One MCP session: a registry served to one host session. Transports (stdio.ts, http.ts) create one per
 * connection or `mcp-session-id`, modern.ts one per 2026-07-28 request, and connect it with `connect`. Toka's
 * handlers (by job in tool-handlers.ts, resource-handlers.ts, resource-updates.ts and prompt-handlers.ts) are
 * dispatched by dispatch.ts; an SDK low-level `Server` next to them answers `initialize` and `ping` and sends
 * the session's requests to the client.
 *
 * Errors, in the SDK's terms:
 * - protocol problems are JSON-RPC errors: unknown tool or prompt (InvalidParams -32602), unknown resource
 *   (ResourceNotFound -32002), a result over the size bound (LimitExceeded -31905, applied by the
 *   transports through `outgoing`), no valid token (Unauthenticated -31910), host unavailable;
 *   `error.data` is Toka's `{ name, ...details }` and the message is not prefixed (errors.ts `wireMessage`);
 * - arguments that do not match a tool's schema (SEP-1303), and a refused or failed operation inside a tool
 *   (CapabilityDenied, UnknownEntity, InvalidOperation, LimitExceeded, RateLimited, ...), are a tool result
 *   with `isError: true` whose text carries the Toka error name, so the model can read it and correct course.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JsonSchemaType, JsonSchemaValidator, jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import {
  LoggingLevelSchema,
  SetLevelRequestParamsSchema,
  type CreateMessageResult,
  type ElicitResult,
  type ListRootsResult,
  type LoggingLevel,
} from '@modelcontextprotocol/sdk/types.js';
import { permits } from '../../../protocol/capability.js';
import type { Host, Session } from '../../host/host.js';
import { TOKA_VERSION } from '../../host/version.js';
import { RequestDispatcher } from './dispatch.js';
import { mcpError } from './errors.js';
import type { InputRounds } from './input-rounds.js';
import { registerPromptHandlers } from './prompt-handlers.js';
import type { McpRegistry } from './registry.js';
import { registerResourceHandlers } from './resource-handlers.js';
import { registerResourceUpdates } from './resource-updates.js';
import type { SessionScope } from './scope.js';
import { registerToolHandlers } from './tool-handlers.js';

export interface McpServerOptions {
  /** Most tool calls in flight per session; more are refused with LimitExceeded. Default 16. */
  maxConcurrentCalls?: number;
  /** Most resource subscriptions per session. Default 64. */
  maxSubscriptions?: number;
}

/** One 2026-07-28 request: its log level from `_meta` (null: no log messages) and its input rounds. */
export interface ModernRequest {
  logLevel: LoggingLevel | null;
  rounds: InputRounds;
}

export const MCP_DEFAULTS = { maxResultBytes: 1024 * 1024, maxConcurrentCalls: 16, maxSubscriptions: 64 } as const;

const LEVELS = LoggingLevelSchema.options;

export interface McpSessionEvents {
  /** A message that could not be handled or sent. */
  error?(err: Error): void;
  /** The transport closed (the client went, or `close`). */
  closed?(): void;
}

export interface McpSessionServer {
  /** Serve the session on `transport` (started here). */
  connect(transport: Transport, events?: McpSessionEvents): Promise<void>;
  /** End resource subscriptions and close the SDK server (and so its transport). */
  close(): Promise<void>;
}

/**
 * The validator of a session's elicitation answers (the SDK checks them against the requested schema): the
 * SDK's Ajv one, built when the session first elicits. Building an Ajv instance costs more than a whole
 * cheap request, and a server is built per session and per 2026-07-28 request, most of which never elicit.
 * One per session, not one shared: Ajv keeps every schema it compiled.
 */
class FirstUseValidator implements jsonSchemaValidator {
  private ajv: AjvJsonSchemaValidator | undefined;

  getValidator<T>(schema: JsonSchemaType): JsonSchemaValidator<T> {
    this.ajv ??= new AjvJsonSchemaValidator();
    return this.ajv.getValidator<T>(schema);
  }
}

export function createMcpSession(
  registry: McpRegistry,
  host: Host,
  session: Session,
  options: McpServerOptions = {},
  modern?: ModernRequest,
): McpSessionServer {
  const server = new Server(
    { name: 'toka', version: TOKA_VERSION },
    {
      capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} },
      instructions:
        'Toka is a capability-secured agent kernel. Tools act on the world state of your token\'s vault; ' +
        'read toka://state first, and use the write_agent_spec prompt before spawning agents.',
      jsonSchemaValidator: new FirstUseValidator(),
    },
  );
  const dispatcher = new RequestDispatcher();
  dispatcher.onerror = (err) => server.onerror?.(err);
  let level: LoggingLevel | null = modern ? modern.logLevel : 'info';
  let closed = false;
  const scope: SessionScope = {
    server,
    dispatcher,
    registry,
    host,
    session,
    check: async () => {
      try {
        return await host.check(session);
      } catch (err) {
        throw mcpError(err);
      }
    },
    visible: (claims, permission) => permission === null || permits(claims.permissions, permission),
    context: (extra) => ({
      host,
      session,
      get signal() {
        return extra.signal;
      },
      sample: (params, options) =>
        modern
          ? (modern.rounds.ask('sampling/createMessage', params, options?.key) as Promise<CreateMessageResult>)
          : server.createMessage(params, { relatedRequestId: extra.requestId, signal: extra.signal }),
      elicit: (params, options) =>
        modern
          ? (modern.rounds.ask('elicitation/create', params as unknown as Record<string, unknown>, options?.key) as Promise<ElicitResult>)
          : server.elicitInput(params, { relatedRequestId: extra.requestId, signal: extra.signal }),
      roots: (options) =>
        modern
          ? (modern.rounds.ask('roots/list', undefined, options?.key) as Promise<ListRootsResult>)
          : server.listRoots(undefined, { relatedRequestId: extra.requestId, signal: extra.signal }),
    }),
    logAllowed: (l) => level !== null && LEVELS.indexOf(l) >= LEVELS.indexOf(level),
    get closed() {
      return closed;
    },
  };

  dispatcher.handle('logging/setLevel', SetLevelRequestParamsSchema, async (params) => {
    level = params.level;
    return {};
  });
  registerToolHandlers(scope, options.maxConcurrentCalls ?? MCP_DEFAULTS.maxConcurrentCalls);
  registerResourceHandlers(scope);
  const updates = registerResourceUpdates(scope, options.maxSubscriptions ?? MCP_DEFAULTS.maxSubscriptions);
  registerPromptHandlers(scope);

  return {
    connect: (transport, events = {}) => {
      server.onerror = events.error;
      server.onclose = events.closed;
      return server.connect(dispatcher.wrap(transport));
    },
    close: async () => {
      if (closed) return;
      closed = true;
      updates.close();
      await server.close();
    },
  };
}
