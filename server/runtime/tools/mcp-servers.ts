/**
 * External MCP servers for agents: the host configures them by name in `<data>/mcp-servers.json` (how to
 * reach each, where its secrets come from, the side-effect class of its tools); an agent's spec picks the
 * ones it uses (`tools.mcp_servers`). The host, not the spec, says what command runs or what URL is called:
 * a spec may come from any face, and choosing a command to run would be running code on the host.
 *
 * Each agent gets its own connection to each of its servers (a stdio server is a process of its own),
 * opened on the agent's first run that needs its tools, and closed when the agent is terminated or the
 * runtime closes. Secrets (`{"fromEnv": NAME}`, `{"fromFile": path}`) are read when a connection opens and
 * go only to the server process or its HTTP requests: never into the log, a spec, or an error message.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../host/logger.js';
import { MAX_AGENT_MCP_SERVERS, MCP_SERVER_NAME_PATTERN } from '../spec/schema.js';
import { ToolError } from './errors.js';
import { McpToolSource, type McpSourceConfig } from './mcp-source.js';
import type { ToolRegistry } from './registry.js';
import { SIDE_EFFECTS, type SideEffect } from './types.js';

/** Name of the host's MCP server file in the data dir. */
export const MCP_SERVERS_FILE = 'mcp-servers.json';
/** Largest `mcp-servers.json`, and largest secret file, read. */
const CONFIG_MAX_BYTES = 256 * 1024;
const SECRET_MAX_BYTES = 16 * 1024;
/** Most servers one host configures. */
const MAX_SERVERS = 64;
const SERVER_NAME = new RegExp(MCP_SERVER_NAME_PATTERN);
/** Environment variable and header names accepted. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;

/** A value of `env` or `headers`: written in the file, or read from the host's environment or a secret file. */
export type ConfigValue = string | { fromEnv: string } | { fromFile: string };

/** One server as `mcp-servers.json` describes it. */
export interface McpServerConfig {
  name: string;
  transport:
    | { type: 'stdio'; command: string; args: string[]; cwd?: string; env: Record<string, ConfigValue> }
    | { type: 'http'; url: string; headers: Record<string, ConfigValue> };
  sideEffect?: SideEffect;
  toolSideEffects?: Record<string, SideEffect>;
  connectTimeoutMs?: number;
  maxTools?: number;
}

/** Thrown for a bad `mcp-servers.json`: names the file and the field. */
export class McpServersConfigError extends Error {
  override readonly name = 'McpServersConfigError';
}

/**
 * The servers of `<dataDir>/mcp-servers.json` by name; none when the file does not exist. Throws
 * `McpServersConfigError` naming the field for anything else wrong, so a host never starts half-configured.
 */
export function readMcpServers(dataDir: string): Map<string, McpServerConfig> {
  const path = join(dataDir, MCP_SERVERS_FILE);
  let text: string;
  try {
    if (statSync(path).size > CONFIG_MAX_BYTES) throw new McpServersConfigError(`${path}: larger than ${CONFIG_MAX_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof McpServersConfigError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new McpServersConfigError(`${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new McpServersConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseMcpServers(doc, path);
}

/** `mcp-servers.json` parsed and checked; `where` names the file in errors. */
export function parseMcpServers(doc: unknown, where: string): Map<string, McpServerConfig> {
  const bad = (field: string, rule: string) => new McpServersConfigError(`${where}: ${field} ${rule}`);
  const root = object(doc, 'the file', bad);
  only(root, ['servers'], 'the file', bad);
  const servers = object(root.servers ?? {}, 'servers', bad);
  const entries = Object.entries(servers);
  if (entries.length > MAX_SERVERS) throw bad('servers', `has more than ${MAX_SERVERS} entries`);
  const out = new Map<string, McpServerConfig>();
  for (const [name, raw] of entries) {
    const at = `servers.${name}`;
    if (!SERVER_NAME.test(name)) throw bad(at, `has a name that does not match ${MCP_SERVER_NAME_PATTERN}`);
    const s = object(raw, at, bad);
    only(s, ['command', 'args', 'cwd', 'env', 'url', 'headers', 'sideEffect', 'toolSideEffects', 'connectTimeoutMs', 'maxTools'], at, bad);
    let transport: McpServerConfig['transport'];
    if (s.command !== undefined) {
      if (s.url !== undefined || s.headers !== undefined) throw bad(at, 'sets both command (stdio) and url/headers (http)');
      const args = s.args ?? [];
      if (!Array.isArray(args) || args.length > 256 || !args.every((a) => typeof a === 'string' && a.length <= 4096)) {
        throw bad(`${at}.args`, 'must be an array of at most 256 strings');
      }
      transport = {
        type: 'stdio',
        command: text(s.command, `${at}.command`, bad),
        args: args as string[],
        ...(s.cwd !== undefined ? { cwd: text(s.cwd, `${at}.cwd`, bad) } : {}),
        env: values(s.env, `${at}.env`, ENV_NAME, bad),
      };
    } else if (s.url !== undefined) {
      if (s.args !== undefined || s.cwd !== undefined || s.env !== undefined) throw bad(at, 'sets both url (http) and args/cwd/env (stdio)');
      const url = text(s.url, `${at}.url`, bad);
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw bad(`${at}.url`, 'is not a URL');
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`${at}.url`, 'must be an http(s) URL');
      if (parsed.username || parsed.password) throw bad(`${at}.url`, 'must not carry credentials (use headers with fromEnv or fromFile)');
      transport = { type: 'http', url, headers: values(s.headers, `${at}.headers`, HEADER_NAME, bad) };
    } else {
      throw bad(at, 'needs command (a stdio server) or url (a Streamable HTTP server)');
    }
    const config: McpServerConfig = { name, transport };
    if (s.sideEffect !== undefined) config.sideEffect = sideEffect(s.sideEffect, `${at}.sideEffect`, bad);
    if (s.toolSideEffects !== undefined) {
      const map = object(s.toolSideEffects, `${at}.toolSideEffects`, bad);
      config.toolSideEffects = Object.fromEntries(Object.entries(map).map(([tool, v]) => [tool, sideEffect(v, `${at}.toolSideEffects.${tool}`, bad)]));
    }
    if (s.connectTimeoutMs !== undefined) config.connectTimeoutMs = integer(s.connectTimeoutMs, `${at}.connectTimeoutMs`, 100, 120_000, bad);
    if (s.maxTools !== undefined) config.maxTools = integer(s.maxTools, `${at}.maxTools`, 1, 128, bad);
    out.set(name, config);
  }
  return out;
}

type Bad = (field: string, rule: string) => McpServersConfigError;

function object(v: unknown, field: string, bad: Bad): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, 'must be a JSON object');
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, known: string[], field: string, bad: Bad): void {
  for (const key of Object.keys(o)) if (!known.includes(key)) throw bad(field, `has an unknown key "${key.slice(0, 64)}" (known: ${known.join(', ')})`);
}

function text(v: unknown, field: string, bad: Bad): string {
  if (typeof v !== 'string' || v === '' || v.length > 4096) throw bad(field, 'must be a non-empty string of at most 4096 characters');
  return v;
}

function integer(v: unknown, field: string, min: number, max: number, bad: Bad): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(field, `must be an integer in ${min}..${max}`);
  return v;
}

function sideEffect(v: unknown, field: string, bad: Bad): SideEffect {
  if (!(SIDE_EFFECTS as readonly unknown[]).includes(v)) throw bad(field, `must be one of ${SIDE_EFFECTS.join(', ')}`);
  return v as SideEffect;
}

function values(v: unknown, field: string, names: RegExp, bad: Bad): Record<string, ConfigValue> {
  const o = object(v ?? {}, field, bad);
  const out: Record<string, ConfigValue> = {};
  for (const [key, value] of Object.entries(o)) {
    if (!names.test(key)) throw bad(`${field}.${key.slice(0, 64)}`, 'is not a legal name');
    if (typeof value === 'string') out[key] = value;
    else {
      const ref = object(value, `${field}.${key}`, bad);
      const [kind, ...rest] = Object.keys(ref);
      if (rest.length > 0 || (kind !== 'fromEnv' && kind !== 'fromFile')) throw bad(`${field}.${key}`, 'must be a string, {"fromEnv": NAME} or {"fromFile": path}');
      if (kind === 'fromEnv' && (typeof ref.fromEnv !== 'string' || !ENV_NAME.test(ref.fromEnv))) throw bad(`${field}.${key}.fromEnv`, 'must be an environment variable name');
      out[key] = kind === 'fromEnv' ? { fromEnv: ref.fromEnv as string } : { fromFile: text(ref.fromFile, `${field}.${key}.fromFile`, bad) };
    }
  }
  return out;
}

/** A `ConfigValue` resolved; errors name the variable or the file, never a value. */
async function resolve(value: ConfigValue, field: string, env: Record<string, string | undefined>): Promise<string> {
  if (typeof value === 'string') return value;
  if ('fromEnv' in value) {
    const v = env[value.fromEnv];
    if (v === undefined || v === '') throw new ToolError('Failed', `${field}: the environment variable ${value.fromEnv} is not set`);
    return v;
  }
  let info;
  try {
    info = await stat(value.fromFile);
  } catch (err) {
    throw new ToolError('Failed', `${field}: cannot read ${value.fromFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!info.isFile() || info.size > SECRET_MAX_BYTES) throw new ToolError('Failed', `${field}: ${value.fromFile} is not a regular file of at most ${SECRET_MAX_BYTES} bytes`);
  const v = (await readFile(value.fromFile, 'utf8')).trim();
  if (v === '' || /[\x00-\x1f\x7f]/.test(v)) throw new ToolError('Failed', `${field}: ${value.fromFile} is empty or holds control characters`);
  return v;
}

async function resolveAll(map: Record<string, ConfigValue>, field: string, env: Record<string, string | undefined>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) out[k] = await resolve(v, `${field}.${k}`, env);
  return out;
}

/** The source config with its secrets read: what `McpToolSource.connect` is given. */
export async function sourceConfig(server: McpServerConfig, env: Record<string, string | undefined> = process.env): Promise<McpSourceConfig> {
  const t = server.transport;
  const at = `MCP server ${server.name}`;
  return {
    name: server.name,
    transport:
      t.type === 'stdio'
        ? { type: 'stdio', command: t.command, args: t.args, ...(t.cwd !== undefined ? { cwd: t.cwd } : {}), env: await resolveAll(t.env, `${at}: env`, env) }
        : { type: 'http', url: t.url, headers: await resolveAll(t.headers, `${at}: headers`, env) },
    ...(server.sideEffect !== undefined ? { sideEffect: server.sideEffect } : {}),
    ...(server.toolSideEffects !== undefined ? { toolSideEffects: server.toolSideEffects } : {}),
    ...(server.connectTimeoutMs !== undefined ? { connectTimeoutMs: server.connectTimeoutMs } : {}),
    ...(server.maxTools !== undefined ? { maxTools: server.maxTools } : {}),
  };
}

interface AgentConnections {
  /** Open (or opening) sources by server name. */
  sources: Map<string, Promise<McpToolSource>>;
  /** The registry last built for the agent, and the server names it holds. */
  registry?: { key: string; tools: ToolRegistry };
  closed: boolean;
}

/** The connections of every agent to its MCP servers. */
export class AgentMcpServers {
  private readonly agents = new Map<string, AgentConnections>();

  constructor(
    private readonly servers: ReadonlyMap<string, McpServerConfig>,
    private readonly logger: Logger,
    private readonly env: Record<string, string | undefined> = process.env,
  ) {}

  /** Whether the host configures a server of this name. */
  has(name: string): boolean {
    return this.servers.has(name);
  }

  /**
   * The tools `agent` is offered: `base` plus the tools of each server of `names`, connecting the ones not yet
   * connected. Throws `ToolError` (`NotFound` for a server the host does not configure, `Failed` for one that
   * cannot be reached or whose secret cannot be read); a server that failed is tried again on the next call.
   */
  async registry(agent: string, names: readonly string[], base: ToolRegistry): Promise<ToolRegistry> {
    if (names.length === 0) return base;
    if (names.length > MAX_AGENT_MCP_SERVERS) throw new ToolError('LimitExceeded', `more than ${MAX_AGENT_MCP_SERVERS} MCP servers`, { limit: 'mcpServers', max: MAX_AGENT_MCP_SERVERS });
    for (const name of names) {
      if (!this.servers.has(name)) throw new ToolError('NotFound', `MCP server ${name} is not configured on this host (${MCP_SERVERS_FILE})`);
    }
    let conn = this.agents.get(agent);
    if (!conn) {
      conn = { sources: new Map(), closed: false };
      this.agents.set(agent, conn);
    }
    const key = names.join('\n');
    if (conn.registry?.key === key) return conn.registry.tools;
    const sources = await Promise.all(names.map((name) => this.connect(agent, conn!, name)));
    const tools = base.copy();
    for (const source of sources) {
      const report = source.register(tools);
      for (const skipped of report.skipped) this.logger.warn('MCP server tool not offered', { agent, server: source.name, tool: skipped.name, reason: skipped.reason });
    }
    if (!conn.closed) conn.registry = { key, tools };
    return tools;
  }

  private connect(agent: string, conn: AgentConnections, name: string): Promise<McpToolSource> {
    const open = conn.sources.get(name);
    if (open) return open;
    const opening = (async () => {
      const source = await McpToolSource.connect(await sourceConfig(this.servers.get(name)!, this.env));
      if (conn.closed) {
        await source.close().catch(() => undefined);
        throw new ToolError('Cancelled', `agent ${agent} was terminated while MCP server ${name} was connecting`);
      }
      this.logger.info('MCP server connected', { agent, server: name, tools: source.tools.length });
      return source;
    })();
    conn.sources.set(name, opening);
    opening.catch(() => {
      if (conn.sources.get(name) === opening) conn.sources.delete(name);
    });
    return opening;
  }

  /** Close the agent's connections (its stdio servers end). */
  async closeAgent(agent: string): Promise<void> {
    const conn = this.agents.get(agent);
    if (!conn) return;
    this.agents.delete(agent);
    conn.closed = true;
    delete conn.registry;
    await Promise.all(
      [...conn.sources.values()].map(async (opening) => {
        const source = await opening.catch(() => undefined);
        await source?.close().catch((err: unknown) => this.logger.warn('MCP server close failed', { agent, server: source.name, err }));
      }),
    );
  }

  /** Close every connection. */
  async close(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((agent) => this.closeAgent(agent)));
  }
}
