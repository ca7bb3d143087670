/**
 * The agent spec in its normal form (`AgentSpec`) and the diagnostics the loader reports.
 * See docs/agents.md, "Agent specs", for how each written spelling maps onto these fields.
 */

export type Priority = 'critical' | 'high' | 'medium' | 'low';

/** A source range, 1-based; `endColumn` is the column just past the last character (editor convention). */
export interface SourceRange {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export type Severity = 'error' | 'warning' | 'info';

/** One problem found in a spec file, with where it is and which rule it breaks. */
export interface Diagnostic extends SourceRange {
  /** The file path (CLI) or document URI (editor) the range is in. */
  file: string;
  severity: Severity;
  /**
   * The rule broken: `schema/<keyword>` for a JSON Schema keyword (with `schemaPath`), else one of ours:
   * `yaml/<code>`, `json/syntax`, `limit/<bound>`, `spec/<rule>`, `workstream/<rule>` (docs/agents.md lists them).
   */
  rule: string;
  message: string;
  /** JSON Pointer of the value concerned (`/security/resource_limits/max_cpu`), when there is one. */
  path?: string;
  /** JSON Pointer into the schema of the keyword broken, for `schema/*` rules. */
  schemaPath?: string;
}

export interface TaskSpec {
  description: string;
  priority: Priority;
  /** As written (`4h`, `2d`, `1w`): an estimate, never used as a bound. */
  estimatedDuration?: string;
  /** As written; informative (agent order comes from `AgentSpec.dependencies`). */
  dependencies: string[];
}

export interface AgentDependency {
  /** `metadata.name` of the agent depended on. */
  agent: string;
  reason: string;
}

export interface MetricSpec {
  name: string;
  description: string;
  type?: 'counter' | 'gauge' | 'histogram' | 'summary';
  unit?: string;
}

/** Resource bounds in integers; absent = not bounded by the spec (host limits still apply). */
export interface ResourceLimits {
  maxMemoryBytes?: number;
  /** Share of CPU in millicores: 1000 = one core (`50%` → 500). */
  maxCpuMillicores?: number;
  timeoutMs?: number;
  maxDiskBytes?: number;
  maxNetworkBytesPerSecond?: number;
}

/** `llm` of a spec: provider and model of the agent's runs (each left out = the host's). */
export interface AgentLlm {
  provider?: 'anthropic' | 'openai' | 'ollama' | 'local' | 'scripted' | 'mcp-sampling';
  model?: string;
}

/** One agent spec in normal form: both written encodings give the same value, and so the same digest. */
export interface AgentSpec {
  metadata: {
    name: string;
    version: string;
    /** YYYY-MM-DD. */
    created: string;
    workstream: string;
    branch?: string;
    modified?: string;
    schemaVersion?: string;
    checksum?: string;
  };
  spec: { name: string; domain: string; priority: Priority; description?: string };
  capabilities: { primary: string[]; secondary: string[] };
  objectives: { description: string; deliverable: string; validation: string; priority?: Priority }[];
  tasks: {
    default: TaskSpec[];
    /** `tasks.conditional` in document order. */
    conditional: { when: string; tasks: TaskSpec[] }[];
  };
  /** Map and list encodings alike, in document order. */
  dependencies: { required: AgentDependency[]; optional: AgentDependency[] };
  reporting: {
    frequency?: 'real-time' | 'hourly' | 'daily' | 'weekly' | 'on-milestone' | 'on-completion';
    channels: string[];
    /** One-key and object encodings alike, in document order. */
    metrics: MetricSpec[];
  };
  security: {
    /** Defaults to true. */
    sandbox: boolean;
    /** `security.capabilities_required` as written, duplicates removed. */
    capabilitiesRequired: string[];
    /** The Toka permissions those names stand for, sorted, no duplicates: the most the agent may be granted. */
    permissions: string[];
    resourceLimits: ResourceLimits;
  };
  /** `llm`: the model this agent's runs talk to, instead of the host's; absent = the host's. */
  llm?: AgentLlm;
  /** `tools`: tools beyond the built-ins. */
  tools: {
    /** `tools.mcp_servers`: names of host-configured MCP servers whose tools the agent is offered, in order. */
    mcpServers: string[];
  };
  /**
   * Every other top-level section (the free-form `behavioral_directives`, `risk_mitigation`,
   * `success_criteria`, and sections Toka does not know), exactly as written. Look keys up with Object.hasOwn.
   */
  extensions: Record<string, unknown>;
}
