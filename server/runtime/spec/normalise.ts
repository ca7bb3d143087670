/**
 * A schema-valid spec document → `AgentSpec`: both encodings of dependencies and metrics become lists,
 * sizes bytes, CPU millicores, durations milliseconds, capability names permissions; every other top-level
 * section is kept in `extensions` as written. Only called on data the schema and our rules accepted.
 */
import { permissionsOf } from './capabilities.js';
import { LLM_PROVIDERS, MAX_AGENT_MCP_SERVERS, MCP_SERVER_NAME_PATTERN } from './schema.js';
import type { PathSegment } from './source-map.js';
import type { AgentDependency, AgentLlm, AgentSpec, MetricSpec, Priority, ResourceLimits, TaskSpec } from './types.js';
import { parseCpu, parseDurationMs, parseSize } from './units.js';

type Doc = Record<string, unknown>;

/** The sections `AgentSpec` types; every other top-level key goes to `extensions`. */
const TYPED_SECTIONS = new Set(['metadata', 'spec', 'capabilities', 'objectives', 'tasks', 'dependencies', 'reporting', 'security', 'llm', 'tools']);

export interface Normalised {
  spec: AgentSpec;
  /** The document path of each entry of `spec.dependencies.required` / `.optional`, same order. */
  dependencyPaths: { required: PathSegment[][]; optional: PathSegment[][] };
}

export function normalise(doc: Doc): Normalised {
  const metadata = doc.metadata as Doc;
  const spec = doc.spec as Doc;
  const capabilities = doc.capabilities as Doc;
  const tasks = doc.tasks as Doc;
  const dependencies = (doc.dependencies ?? {}) as Doc;
  const reporting = (doc.reporting ?? {}) as Doc;
  const security = (doc.security ?? {}) as Doc;
  const limits = (security.resource_limits ?? {}) as Doc;

  const required = dependencyList(dependencies.required, ['dependencies', 'required']);
  const optional = dependencyList(dependencies.optional, ['dependencies', 'optional']);
  const capabilitiesRequired = unique((security.capabilities_required ?? []) as string[]);

  const normal: AgentSpec = {
    metadata: {
      name: metadata.name as string,
      version: metadata.version as string,
      created: metadata.created as string,
      workstream: metadata.workstream as string,
      ...optionalString('branch', metadata.branch),
      ...optionalString('modified', metadata.modified),
      ...optionalString('schemaVersion', metadata.schema_version),
      ...optionalString('checksum', metadata.checksum),
    },
    spec: {
      name: spec.name as string,
      domain: spec.domain as string,
      priority: spec.priority as Priority,
      ...optionalString('description', spec.description),
    },
    capabilities: { primary: [...(capabilities.primary as string[])], secondary: [...((capabilities.secondary ?? []) as string[])] },
    objectives: (doc.objectives as Doc[]).map((o) => ({
      description: o.description as string,
      deliverable: o.deliverable as string,
      validation: o.validation as string,
      ...(o.priority !== undefined ? { priority: o.priority as Priority } : {}),
    })),
    tasks: {
      default: (tasks.default as Doc[]).map(task),
      conditional: Object.entries((tasks.conditional ?? {}) as Record<string, Doc[]>).map(([when, list]) => ({ when, tasks: list.map(task) })),
    },
    dependencies: { required: required.entries, optional: optional.entries },
    reporting: {
      ...(reporting.frequency !== undefined ? { frequency: reporting.frequency as AgentSpec['reporting']['frequency'] } : {}),
      channels: [...((reporting.channels ?? []) as string[])],
      metrics: ((reporting.metrics ?? []) as Doc[]).map(metric),
    },
    security: {
      sandbox: security.sandbox === undefined ? true : (security.sandbox as boolean),
      capabilitiesRequired,
      permissions: unique(capabilitiesRequired.flatMap((c) => permissionsOf(c) ?? [])).sort(),
      resourceLimits: resourceLimits(limits),
    },
    ...runtimeSettings(doc),
    extensions: Object.fromEntries(Object.entries(doc).filter(([k]) => !TYPED_SECTIONS.has(k))),
  };
  return { spec: normal, dependencyPaths: { required: required.paths, optional: optional.paths } };
}

function task(t: Doc): TaskSpec {
  return {
    description: t.description as string,
    priority: t.priority as Priority,
    ...(t.estimated_duration !== undefined ? { estimatedDuration: t.estimated_duration as string } : {}),
    dependencies: [...((t.dependencies ?? []) as string[])],
  };
}

/** `{a: reason}` and `[{a: reason}]` alike → entries in document order, with where each is written. */
function dependencyList(value: unknown, base: PathSegment[]): { entries: AgentDependency[]; paths: PathSegment[][] } {
  const entries: AgentDependency[] = [];
  const paths: PathSegment[][] = [];
  if (Array.isArray(value)) {
    value.forEach((item: Doc, i) => {
      const [agent, reason] = Object.entries(item)[0];
      entries.push({ agent, reason: reason as string });
      paths.push([...base, i, agent]);
    });
  } else if (value !== undefined) {
    for (const [agent, reason] of Object.entries(value as Doc)) {
      entries.push({ agent, reason: reason as string });
      paths.push([...base, agent]);
    }
  }
  return { entries, paths };
}

/** `{name: description}` and `{name, description, type?, unit?}` alike (the schema tells them apart by key count). */
function metric(m: Doc): MetricSpec {
  const keys = Object.keys(m);
  if (keys.length === 1) return { name: keys[0], description: m[keys[0]] as string };
  return {
    name: m.name as string,
    description: m.description as string,
    ...(m.type !== undefined ? { type: m.type as MetricSpec['type'] } : {}),
    ...optionalString('unit', m.unit),
  };
}

function resourceLimits(l: Doc): ResourceLimits {
  const out: ResourceLimits = {};
  const set = (field: keyof ResourceLimits, raw: unknown, parse: (v: string | number) => number | undefined) => {
    if (raw !== undefined) out[field] = parse(raw as string | number);
  };
  set('maxMemoryBytes', l.max_memory, parseSize);
  set('maxCpuMillicores', l.max_cpu, parseCpu);
  set('timeoutMs', l.timeout, parseDurationMs);
  set('maxDiskBytes', l.max_disk_usage, parseSize);
  set('maxNetworkBytesPerSecond', l.max_network_bandwidth, parseSize);
  return out;
}

function optionalString<K extends string>(key: K, value: unknown): { [P in K]?: string } {
  return (typeof value === 'string' ? { [key]: value } : {}) as { [P in K]?: string };
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/**
 * The sections that set how the agent runs (`llm`, `tools`) from a spec document. The runtime calls it on
 * the document recorded when the agent was spawned (the log is its only memory across restarts), so it reads
 * defensively: a value of the wrong shape is left out rather than trusted.
 */
export function runtimeSettings(doc: unknown): Pick<AgentSpec, 'llm' | 'tools'> {
  const d = isDoc(doc) ? doc : {};
  const llm = isDoc(d.llm) ? d.llm : undefined;
  const tools = isDoc(d.tools) ? d.tools : {};
  const out: AgentLlm = {
    ...(llm !== undefined && (LLM_PROVIDERS as readonly unknown[]).includes(llm.provider) ? { provider: llm.provider as AgentLlm['provider'] } : {}),
    ...optionalString('model', llm?.model),
  };
  const servers = Array.isArray(tools.mcp_servers) ? tools.mcp_servers.filter((n): n is string => typeof n === 'string' && SERVER_NAME.test(n)).slice(0, MAX_AGENT_MCP_SERVERS) : [];
  return { ...(Object.keys(out).length > 0 ? { llm: out } : {}), tools: { mcpServers: unique(servers) } };
}

const SERVER_NAME = new RegExp(MCP_SERVER_NAME_PATTERN);

function isDoc(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
