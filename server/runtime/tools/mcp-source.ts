/**
 * External MCP servers as tool sources. A source connects with the MCP SDK's client over stdio (a spawned
 * command) or Streamable HTTP, lists the server's tools once, and offers each as a Tool named
 * `<source>__<tool>` (legal for LLM tool names), authorised by the one permission `tool:mcp`.
 *
 * The server is not trusted: its tool annotations do not lower the side-effect class (the source's configured
 * class, default `external`, applies to all its tools); its schemas go through the registry's checks (size,
 * no remote `$ref`); its results are truncated at `mcpOutputChars`. A stdio server gets only the SDK's safe
 * default environment (HOME, LOGNAME, PATH, SHELL, TERM, USER) plus the variables configured for it.
 * A failed tool call (the server's `isError`, or a JSON-RPC error for the call) is a `ToolResult` with
 * `isError`; a timeout, a cancel or a dead connection is a `ToolError`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, type CallToolResult, type Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { ToolError } from './errors.js';
import type { ToolRegistry } from './registry.js';
import { SIDE_EFFECTS, type SideEffect, type Tool, type ToolContext, type ToolResult } from './types.js';

export type McpTransportConfig =
  | { type: 'stdio'; command: string; args?: readonly string[]; env?: Record<string, string>; cwd?: string }
  | { type: 'http'; url: string; headers?: Record<string, string> };

export interface McpSourceConfig {
  /** Prefix of the source's tool names: `^[a-zA-Z0-9-]{1,32}$`. */
  name: string;
  transport: McpTransportConfig;
  /** Side-effect class of every tool of the source. Default `external`. */
  sideEffect?: SideEffect;
  /** Side-effect class of single tools, by the server's tool name (e.g. `privileged` for one that deletes). */
  toolSideEffects?: Readonly<Record<string, SideEffect>>;
  /** Bound on connecting and listing tools, milliseconds. Default 10 000. */
  connectTimeoutMs?: number;
  /** Most tools taken from the server. Default 128. */
  maxTools?: number;
}

export const SOURCE_NAME = /^[a-zA-Z0-9-]{1,32}$/;
/** Separator between the source name and the server's tool name. */
export const NAMESPACE_SEPARATOR = '__';
/** Pages of `tools/list` read at most. */
const MAX_LIST_PAGES = 16;

export interface RegisterReport {
  registered: string[];
  /** Tools of the server not offered, each with the reason (illegal name, bad schema, duplicate). */
  skipped: { name: string; reason: string }[];
}

export class McpToolSource {
  readonly name: string;
  /** The server's tools as Tools, in the server's order (not yet checked by a registry). */
  readonly tools: readonly Tool[];
  private readonly client: Client;

  private constructor(name: string, client: Client, listed: McpTool[], sideEffect: SideEffect, perTool: Readonly<Record<string, SideEffect>>) {
    this.name = name;
    this.client = client;
    this.tools = listed.map((remote) => wrap(client, name, remote, Object.hasOwn(perTool, remote.name) ? perTool[remote.name] : sideEffect));
  }

  /** Connects, lists the tools, and returns the source. Throws `Failed` when the server cannot be reached. */
  static async connect(config: McpSourceConfig): Promise<McpToolSource> {
    if (!SOURCE_NAME.test(config.name)) throw new ToolError('InvalidArguments', `MCP source name ${JSON.stringify(config.name)} does not match ${SOURCE_NAME}`);
    const sideEffect = config.sideEffect ?? 'external';
    const perTool = config.toolSideEffects ?? {};
    for (const value of [sideEffect, ...Object.values(perTool)]) {
      if (!SIDE_EFFECTS.includes(value)) throw new ToolError('InvalidArguments', `MCP source ${config.name}: sideEffect must be one of ${SIDE_EFFECTS.join(', ')}`);
    }
    const timeout = config.connectTimeoutMs ?? 10_000;
    const maxTools = config.maxTools ?? 128;
    const client = new Client({ name: 'toka', version: '0.1.0' });
    const t = config.transport;
    const transport =
      t.type === 'stdio'
        ? new StdioClientTransport({ command: t.command, args: [...(t.args ?? [])], env: t.env, cwd: t.cwd, stderr: 'inherit' })
        : new StreamableHTTPClientTransport(new URL(t.url), { requestInit: { headers: t.headers } });
    const listed: McpTool[] = [];
    try {
      await client.connect(transport, { timeout });
      let cursor: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES && listed.length < maxTools; page++) {
        const res = await client.listTools(cursor === undefined ? undefined : { cursor }, { timeout });
        listed.push(...res.tools.slice(0, maxTools - listed.length));
        cursor = res.nextCursor;
        if (!cursor) break;
      }
    } catch (err) {
      await client.close().catch(() => undefined);
      throw new ToolError('Failed', `MCP source ${config.name}: cannot connect or list tools: ${(err as Error).message}`);
    }
    return new McpToolSource(config.name, client, listed, sideEffect, perTool);
  }

  /** Registers every tool the registry accepts; reports the others with the reason. */
  register(registry: ToolRegistry): RegisterReport {
    const report: RegisterReport = { registered: [], skipped: [] };
    for (const tool of this.tools) {
      try {
        registry.register(tool);
        report.registered.push(tool.manifest.name);
      } catch (err) {
        if (!(err instanceof ToolError)) throw err;
        report.skipped.push({ name: tool.manifest.name, reason: err.message });
      }
    }
    return report;
  }

  /** Disconnects (a stdio server process is ended). */
  async close(): Promise<void> {
    await this.client.close();
  }
}

/** One server tool as a Tool named `<source>__<tool>`. */
function wrap(client: Client, source: string, remote: McpTool, sideEffect: SideEffect): Tool {
  return {
    manifest: {
      name: `${source}${NAMESPACE_SEPARATOR}${remote.name}`,
      description: `[${source}] ${remote.description ?? remote.title ?? remote.name}`,
      inputSchema: remote.inputSchema,
      ...(remote.outputSchema ? { outputSchema: remote.outputSchema } : {}),
      sideEffect,
      permission: 'tool:mcp',
    },
    async call(args, ctx) {
      let res: CallToolResult;
      try {
        res = (await client.callTool({ name: remote.name, arguments: args as Record<string, unknown> }, undefined, {
          signal: ctx.signal,
          timeout: ctx.limits.mcpTimeoutMs,
        })) as CallToolResult;
      } catch (err) {
        return callFailure(err, source, remote.name, ctx);
      }
      return render(res, ctx.limits.mcpOutputChars);
    },
  };
}

function callFailure(err: unknown, source: string, tool: string, ctx: ToolContext): ToolResult {
  if (ctx.signal.aborted) throw new ToolError('Cancelled', 'the tool call was cancelled');
  if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
    throw new ToolError('Timeout', `${source}${NAMESPACE_SEPARATOR}${tool} took too long (limit mcpTimeoutMs = ${ctx.limits.mcpTimeoutMs})`, {
      limit: 'mcpTimeoutMs',
      max: ctx.limits.mcpTimeoutMs,
    });
  }
  if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed) {
    return { content: `MCP error ${err.code}: ${err.message}`, isError: true, data: { code: err.code } };
  }
  throw new ToolError('Failed', `MCP source ${source} is unavailable: ${(err as Error).message}`);
}

/** The result as text for the LLM: text parts verbatim, other parts described, capped at `maxChars`. */
function render(res: CallToolResult, maxChars: number): ToolResult {
  const parts = (res.content ?? []).map((c) => {
    switch (c.type) {
      case 'text':
        return c.text;
      case 'image':
      case 'audio':
        return `[${c.type}: ${c.mimeType}, ${c.data.length} base64 characters]`;
      case 'resource':
        return 'text' in c.resource && typeof c.resource.text === 'string' ? c.resource.text : `[resource: ${c.resource.uri}]`;
      case 'resource_link':
        return `[resource link: ${c.uri}]`;
      default:
        return `[${(c as { type: string }).type} content]`;
    }
  });
  let content = parts.join('\n');
  if (content.length > maxChars) {
    content = `${content.slice(0, maxChars)}\n[result truncated at ${maxChars} characters (limit mcpOutputChars)]`;
  }
  return { content, isError: res.isError === true, ...(res.structuredContent !== undefined ? { data: res.structuredContent } : {}) };
}
