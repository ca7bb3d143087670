/**
 * The tool registry: manifests checked once at registration, arguments validated against the input schema
 * (JSON Schema 2020-12, ajv) before every call, and the list an LLM sees filtered by the caller's permissions.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { isKnownPermission, permits } from '../../../protocol/capability.js';
import { ToolError } from './errors.js';
import { SIDE_EFFECTS, type Tool, type ToolContext, type ToolManifest, type ToolResult } from './types.js';

/** Names legal for LLM tool calling (OpenAI and Anthropic agree on this shape). */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** Largest input or output schema, serialised as JSON. */
export const MAX_SCHEMA_BYTES = 64 * 1024;
/** Largest description kept in a manifest. */
export const MAX_DESCRIPTION_CHARS = 8192;
/** Most schema errors reported for one call. */
const MAX_REPORTED_ERRORS = 10;

export interface ToolRegistryOptions {
  /** Largest arguments object accepted, serialised as JSON (bytes). Default 4 MiB. */
  maxArgumentBytes?: number;
}

/** One broken schema rule: where in the arguments, which keyword, where in the schema. */
export interface SchemaViolation {
  /** JSON Pointer into the arguments (`""` for the whole object). */
  path: string;
  /** The JSON Schema keyword broken (`type`, `required`, `maxLength`, ...). */
  rule: string;
  /** JSON Pointer into the schema of the rule. */
  schemaPath: string;
  message: string;
}

interface Entry {
  tool: Tool;
  validate: ValidateFunction;
}

export class ToolRegistry {
  private readonly tools = new Map<string, Entry>();
  private readonly maxArgumentBytes: number;
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false, logger: false, validateFormats: false });

  constructor(options: ToolRegistryOptions = {}) {
    this.maxArgumentBytes = options.maxArgumentBytes ?? 4 * 1024 * 1024;
  }

  /** Adds a tool. Throws `InvalidArguments` for a bad manifest and for a name already registered. */
  register(tool: Tool): void {
    const m = tool.manifest;
    if (typeof m.name !== 'string' || !TOOL_NAME.test(m.name)) {
      throw new ToolError('InvalidArguments', `tool name ${JSON.stringify(m.name)} does not match ${TOOL_NAME}`);
    }
    if (this.tools.has(m.name)) throw new ToolError('InvalidArguments', `tool "${m.name}" is already registered`);
    if (typeof m.description !== 'string' || m.description.length > MAX_DESCRIPTION_CHARS) {
      throw new ToolError('InvalidArguments', `tool "${m.name}": description must be a string of ≤ ${MAX_DESCRIPTION_CHARS} characters`);
    }
    if (!(SIDE_EFFECTS as readonly string[]).includes(m.sideEffect)) {
      throw new ToolError('InvalidArguments', `tool "${m.name}": side effect must be one of ${SIDE_EFFECTS.join(', ')}`);
    }
    if (typeof m.permission !== 'string' || m.permission.includes('*') || !isKnownPermission(m.permission)) {
      throw new ToolError('InvalidArguments', `tool "${m.name}": permission "${m.permission}" is not a concrete permission of the vocabulary`);
    }
    const validate = compileSchema(this.ajv, m.name, 'input', m.inputSchema);
    if ((m.inputSchema as { type?: unknown }).type !== 'object') {
      throw new ToolError('InvalidArguments', `tool "${m.name}": input schema must have type "object"`);
    }
    if (m.outputSchema !== undefined) compileSchema(this.ajv, m.name, 'output', m.outputSchema);
    this.tools.set(m.name, { tool, validate });
  }

  /** A new registry holding this one's tools (their compiled schemas shared), to which more can be added. */
  copy(): ToolRegistry {
    const copy = new ToolRegistry({ maxArgumentBytes: this.maxArgumentBytes });
    for (const [name, entry] of this.tools) copy.tools.set(name, entry);
    return copy;
  }

  get(name: string): Tool | undefined {
    return this.tools.get(name)?.tool;
  }

  /** Manifests of the tools a holder of `heldPermissions` may call, in registration order. */
  list(heldPermissions: readonly string[]): ToolManifest[] {
    const out: ToolManifest[] = [];
    for (const { tool } of this.tools.values()) {
      if (permits(heldPermissions, tool.manifest.permission)) out.push(tool.manifest);
    }
    return out;
  }

  /**
   * Checks `args` against the tool's input schema. Throws `NotFound` for an unknown tool, `LimitExceeded` for
   * oversized arguments and `InvalidArguments` whose message names each rule broken (`data.errors`).
   */
  validate(name: string, args: unknown): void {
    const entry = this.tools.get(name);
    if (!entry) throw new ToolError('NotFound', `no tool named ${JSON.stringify(name).slice(0, 80)}`);
    const size = Buffer.byteLength(JSON.stringify(args) ?? '');
    if (size > this.maxArgumentBytes) {
      throw new ToolError('LimitExceeded', `arguments of ${name} are ${size} bytes (limit maxArgumentBytes = ${this.maxArgumentBytes})`, {
        limit: 'maxArgumentBytes',
        max: this.maxArgumentBytes,
      });
    }
    if (entry.validate(args)) return;
    const errors = (entry.validate.errors ?? []).slice(0, MAX_REPORTED_ERRORS).map(violation);
    const text = errors.map((e) => `${e.path || '(arguments)'} ${e.message} (rule ${e.rule} at ${e.schemaPath})`).join('; ');
    throw new ToolError('InvalidArguments', `invalid arguments for ${name}: ${text}`, { errors });
  }

  /**
   * The one way the loop runs a tool: it must exist, `heldPermissions` must permit it (`Denied` otherwise),
   * the arguments must validate, and the signal must not be aborted. Anything a tool throws that is not a
   * `ToolError` comes out as `Failed`.
   */
  async call(name: string, args: unknown, ctx: ToolContext, heldPermissions: readonly string[]): Promise<ToolResult> {
    const tool = this.get(name);
    if (!tool) throw new ToolError('NotFound', `no tool named ${JSON.stringify(name).slice(0, 80)}`);
    if (!permits(heldPermissions, tool.manifest.permission)) {
      throw new ToolError('Denied', `calling ${name} requires the permission ${tool.manifest.permission}`, {
        required: tool.manifest.permission,
      });
    }
    this.validate(name, args);
    if (ctx.signal.aborted) throw new ToolError('Cancelled', 'the tool call was cancelled');
    try {
      return await tool.call(args, ctx);
    } catch (err) {
      if (err instanceof ToolError) throw err;
      throw new ToolError('Failed', `${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

function violation(e: ErrorObject): SchemaViolation {
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') message += ` (${String((e.params as { additionalProperty?: unknown }).additionalProperty)})`;
  return { path: e.instancePath, rule: e.keyword, schemaPath: e.schemaPath, message };
}

/** Checks size and references of a schema, then compiles it (its `$schema` dialect line is ignored). */
function compileSchema(ajv: Ajv2020, tool: string, which: 'input' | 'output', schema: unknown): ValidateFunction {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new ToolError('InvalidArguments', `tool "${tool}": ${which} schema must be an object`);
  }
  const size = Buffer.byteLength(JSON.stringify(schema));
  if (size > MAX_SCHEMA_BYTES) {
    throw new ToolError('InvalidArguments', `tool "${tool}": ${which} schema is ${size} bytes (limit ${MAX_SCHEMA_BYTES})`);
  }
  const remote = findRemoteRef(schema, 0);
  if (remote !== undefined) {
    throw new ToolError('InvalidArguments', `tool "${tool}": ${which} schema has a remote reference ${JSON.stringify(remote).slice(0, 200)}`);
  }
  const { $schema: _dialect, ...rest } = schema as Record<string, unknown>;
  try {
    return ajv.compile(rest);
  } catch (err) {
    throw new ToolError('InvalidArguments', `tool "${tool}": ${which} schema does not compile: ${(err as Error).message}`);
  } finally {
    // Schemas of different tools may reuse an `$id`: none stays in the validator's cache once compiled.
    ajv.removeSchema(rest);
  }
}

/** Deepest nesting of a schema searched for references; a deeper schema is refused. */
const MAX_SCHEMA_DEPTH = 64;

/** The first `$ref`/`$dynamicRef` that does not point inside the document (`#...`), if any. */
function findRemoteRef(node: unknown, depth: number): string | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  if (depth > MAX_SCHEMA_DEPTH) throw new ToolError('InvalidArguments', `schema nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
  if (Array.isArray(node)) {
    for (const v of node) {
      const r = findRemoteRef(v, depth + 1);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(node)) {
    if ((k === '$ref' || k === '$dynamicRef' || k === '$recursiveRef') && typeof v === 'string' && !v.startsWith('#')) return v;
    const r = findRemoteRef(v, depth + 1);
    if (r !== undefined) return r;
  }
  return undefined;
}
