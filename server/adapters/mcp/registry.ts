/**
 * Toka's MCP registration API: tools, resources, resource templates and prompts, each with the permission
 * that decides whether a session sees it. Toka's own offer (tools.ts, resources.ts, prompts.ts), the agent
 * runtime and test fixture plugins all register here; server.ts serves one registry to many sessions.
 *
 * A registry entry never authorises: listing filters by the session's verified claims (a view, not a
 * decision), and every call reaches the host, which authorises, rate-limits and records.
 */
import { z } from 'zod';
import type {
  CallToolResult,
  ContentBlock,
  CreateMessageRequest,
  CreateMessageResult,
  ElicitRequestFormParams,
  ElicitResult,
  GetPromptResult,
  ListRootsResult,
  LoggingLevel,
  ReadResourceResult,
  ToolAnnotations,
} from '@modelcontextprotocol/sdk/types.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import type { LogRecord } from '../../../protocol/events.js';
import type { Host, Session } from '../../host/host.js';
import type { SamplingClient } from '../../runtime/llm/mcp-sampling.js';
import { STRUCTURED_JSON } from './result-bound.js';

/** What every handler gets: the host, the caller's session, the request's cancellation signal, and asks of the client. */
export interface McpContext {
  readonly host: Host;
  readonly session: Session;
  /** Aborted when the client cancels the request (`notifications/cancelled`) or the session ends. */
  readonly signal: AbortSignal;
  /**
   * Ask the client's LLM (`sampling/createMessage`); the client must have declared `sampling`. On 2026-07-28
   * the ask is an input round (input-rounds.ts): the call ends with `input_required` and is replayed from the
   * top when the client answers, so a handler must not act on the world before its asks (or must do so
   * idempotently). `key` names the ask in the round (default: by order).
   */
  sample(params: CreateMessageRequest['params'], options?: AskOptions): Promise<CreateMessageResult>;
  /** Ask the client's user (`elicitation/create`, form mode); the client must have declared `elicitation`. As `sample`. */
  elicit(params: ElicitRequestFormParams, options?: AskOptions): Promise<ElicitResult>;
  /** The client's roots (`roots/list`); the client must have declared `roots`. As `sample`. */
  roots(options?: AskOptions): Promise<ListRootsResult>;
}

/** What a tool handler gets on top of `McpContext`: progress and logging. */
export interface McpCallContext extends McpContext {
  /**
   * Report progress. Sent as `notifications/progress` when the caller gave a `progressToken`, otherwise
   * dropped. `progress` must not decrease; `total` when known. Progress also keeps a long call alive on
   * clients that reset their timeout on progress.
   */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** Send `notifications/message` on this call's stream when `level` is at or above the session's level. */
  log(level: LoggingLevel, data: unknown): Promise<void>;
  /**
   * This session as the runtime may ask its model for a run it requested (`mcp-sampling` agents); usable after
   * the call has returned, for as long as the session is open.
   */
  readonly requester: SamplingClient;
}

export interface AskOptions {
  /** The ask's key in a 2026-07-28 input round (`inputRequests`/`inputResponses`); ignored before that revision. */
  key?: string;
}

/** What a tool handler returns. `content` defaults to the JSON text of `structured`. */
export interface ToolReturn {
  content?: ContentBlock[];
  /** Structured result; must match the tool's `output` schema when it has one. */
  structured?: Record<string, unknown>;
  /** A failure the model should see and may correct (not a protocol error). */
  isError?: boolean;
}

export interface ToolSpec<I extends z.ZodObject = z.ZodObject> {
  /** Unique, `[a-z0-9_]+` by convention. */
  name: string;
  title?: string;
  /** Required: clients (and the conformance suite) expect every tool to have one. */
  description: string;
  /** The permission a session needs to see the tool; null = none (the call still re-verifies the token). */
  permission: string | null;
  /** Arguments; a call whose arguments do not parse gets a tool result with `isError: true` naming the issues. */
  input: I;
  /**
   * The `inputSchema` to publish when zod cannot express it (JSON Schema 2020-12 keywords such as `$defs`,
   * `$anchor`, `if`/`then`/`else`), published as written; `input` still validates the arguments, so keep the
   * two in agreement. Default: `input` as JSON Schema.
   */
  inputJsonSchema?: { type: 'object'; [key: string]: unknown };
  /** Shape of `structured`; published as `outputSchema`. */
  output?: z.ZodObject;
  annotations?: ToolAnnotations;
  run(args: z.output<I>, ctx: McpCallContext): Promise<ToolReturn>;
}

export interface ResourceSpec {
  uri: string;
  name: string;
  title?: string;
  description: string;
  mimeType: string;
  permission: string | null;
  read(ctx: McpContext, uri: string): Promise<ReadResourceResult['contents']>;
  /** True when `record` changes what `read` returns: drives `notifications/resources/updated`. */
  touchedBy?(record: LogRecord): boolean;
}

export interface ResourceTemplateSpec {
  /** RFC 6570 template, e.g. `toka://agents/{id}`. */
  uriTemplate: string;
  name: string;
  title?: string;
  description: string;
  mimeType: string;
  permission: string | null;
  read(ctx: McpContext, uri: string, vars: Record<string, string>): Promise<ReadResourceResult['contents']>;
  touchedBy?(record: LogRecord, vars: Record<string, string>): boolean;
  /** Completion of template variables, by variable name. */
  complete?: Record<string, (ctx: McpContext, value: string) => Promise<string[]>>;
}

export interface PromptArgumentSpec {
  name: string;
  description: string;
  required?: boolean;
  complete?(ctx: McpContext, value: string, others: Record<string, string>): Promise<string[]>;
}

export interface PromptSpec {
  name: string;
  title?: string;
  description: string;
  permission: string | null;
  arguments?: PromptArgumentSpec[];
  get(ctx: McpContext, args: Record<string, string>): Promise<GetPromptResult>;
}

/** A registered tool with its JSON Schemas computed once. */
export interface RegisteredTool {
  spec: ToolSpec;
  inputSchema: { type: 'object'; [key: string]: unknown };
  outputSchema?: { type: 'object'; [key: string]: unknown };
}

export interface RegisteredTemplate {
  spec: ResourceTemplateSpec;
  template: UriTemplate;
}

/** A plugin adds entries to a registry (Toka's own offer, the runtime, test fixtures). */
export type McpPlugin = (registry: McpRegistry) => void;

export class McpRegistry {
  private readonly tools = new Map<string, RegisteredTool>();
  private readonly resources = new Map<string, ResourceSpec>();
  private readonly templates = new Map<string, RegisteredTemplate>();
  private readonly prompts = new Map<string, PromptSpec>();

  registerTool<I extends z.ZodObject>(spec: ToolSpec<I>): this {
    if (this.tools.has(spec.name)) throw new Error(`MCP tool ${spec.name} is already registered`);
    if (!spec.description) throw new Error(`MCP tool ${spec.name} needs a description`);
    this.tools.set(spec.name, {
      spec: spec as unknown as ToolSpec,
      inputSchema: spec.inputJsonSchema ?? jsonSchema(spec.input, 'input'),
      ...(spec.output ? { outputSchema: jsonSchema(spec.output, 'output') } : {}),
    });
    return this;
  }

  registerResource(spec: ResourceSpec): this {
    if (this.resources.has(spec.uri)) throw new Error(`MCP resource ${spec.uri} is already registered`);
    this.resources.set(spec.uri, spec);
    return this;
  }

  registerResourceTemplate(spec: ResourceTemplateSpec): this {
    if (this.templates.has(spec.uriTemplate)) throw new Error(`MCP resource template ${spec.uriTemplate} is already registered`);
    this.templates.set(spec.uriTemplate, { spec, template: new UriTemplate(spec.uriTemplate) });
    return this;
  }

  registerPrompt(spec: PromptSpec): this {
    if (this.prompts.has(spec.name)) throw new Error(`MCP prompt ${spec.name} is already registered`);
    if (!spec.description) throw new Error(`MCP prompt ${spec.name} needs a description`);
    this.prompts.set(spec.name, spec);
    return this;
  }

  use(plugin: McpPlugin): this {
    plugin(this);
    return this;
  }

  tool(name: string): RegisteredTool | undefined {
    return this.tools.get(name);
  }

  listTools(): RegisteredTool[] {
    return [...this.tools.values()];
  }

  resource(uri: string): ResourceSpec | undefined {
    return this.resources.get(uri);
  }

  listResources(): ResourceSpec[] {
    return [...this.resources.values()];
  }

  listTemplates(): RegisteredTemplate[] {
    return [...this.templates.values()];
  }

  template(uriTemplate: string): RegisteredTemplate | undefined {
    return this.templates.get(uriTemplate);
  }

  /** The first template matching `uri`, with its variables. */
  matchTemplate(uri: string): { entry: RegisteredTemplate; vars: Record<string, string> } | undefined {
    for (const entry of this.templates.values()) {
      const vars = entry.template.match(uri);
      if (vars) {
        const flat: Record<string, string> = {};
        for (const [k, v] of Object.entries(vars)) flat[k] = Array.isArray(v) ? v.join(',') : v;
        return { entry, vars: flat };
      }
    }
    return undefined;
  }

  prompt(name: string): PromptSpec | undefined {
    return this.prompts.get(name);
  }

  listPrompts(): PromptSpec[] {
    return [...this.prompts.values()];
  }
}

/** Build the `CallToolResult` for a tool's return value. */
export function toolResult(ret: ToolReturn): CallToolResult {
  const json = ret.content ? undefined : JSON.stringify(ret.structured ?? {});
  const content = ret.content ?? [{ type: 'text', text: json! }];
  return {
    content,
    ...(ret.structured !== undefined ? { structuredContent: ret.structured } : {}),
    ...(ret.isError ? { isError: true } : {}),
    // The answer's serialisation reuses the JSON just made (result-bound.ts).
    ...(ret.structured !== undefined && json !== undefined ? { [STRUCTURED_JSON]: { of: ret.structured, json } } : {}),
  };
}

function jsonSchema(schema: z.ZodObject, io: 'input' | 'output'): { type: 'object'; [key: string]: unknown } {
  const { $schema: _drop, ...rest } = strictSchema(z.toJSONSchema(schema, { io, unrepresentable: 'any' })) as Record<string, unknown>;
  return { ...rest, type: 'object' };
}

/**
 * A JSON Schema in the shape strict validators (MCP Inspector `--strict`, LLM tool-schema checkers) accept
 * without warnings: no empty schema `{}` (an unconstrained value is `true`, the boolean schema that says the
 * same) and no `type` array (`type: ["string", "null"]` becomes `anyOf` of one type each).
 */
function strictSchema(node: unknown): unknown {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return node;
  const entries = Object.entries(node);
  if (entries.length === 0) return true;
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (SCHEMA_KEYWORDS.has(key)) out[key] = strictSchema(value);
    else if (SCHEMA_LIST_KEYWORDS.has(key) && Array.isArray(value)) out[key] = value.map(strictSchema);
    else if (SCHEMA_MAP_KEYWORDS.has(key) && typeof value === 'object' && value !== null) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, strictSchema(sub)]));
    } else out[key] = value;
  }
  const type = out.type;
  if (!Array.isArray(type)) return out;
  const { type: _types, ...others } = out;
  if (type.length === 1) return { ...others, type: type[0] };
  const annotations = Object.fromEntries(Object.entries(others).filter(([k]) => ANNOTATIONS.has(k)));
  const constraints = Object.fromEntries(Object.entries(others).filter(([k]) => !ANNOTATIONS.has(k)));
  return { ...annotations, anyOf: type.map((t) => (t === 'null' ? { type: 'null' } : { ...constraints, type: t })) };
}

/** JSON Schema keywords whose value is a schema, a list of schemas, or a map of names to schemas. */
const SCHEMA_KEYWORDS = new Set(['items', 'additionalProperties', 'propertyNames', 'not', 'contains', 'if', 'then', 'else', 'unevaluatedItems', 'unevaluatedProperties']);
const SCHEMA_LIST_KEYWORDS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems']);
const SCHEMA_MAP_KEYWORDS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
/** Keywords that describe rather than constrain: they stay on the schema when its `type` list becomes `anyOf`. */
const ANNOTATIONS = new Set(['description', 'title', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly']);
