/**
 * The JSON Schema (draft 2020-12) of an agent spec: the one definition of the format. The loader validates
 * with it, `toka spec schema` prints it, and the language server reads its `description`s for hover and its
 * `enum`s and `examples` for completion. Every property carries a `description`; closed sets are `enum`s.
 *
 * Nested objects are closed (`additionalProperties: false`): a misspelt `max_memroy` would otherwise be a
 * limit silently not applied. Only the top level is open: unknown sections are kept and returned untouched.
 */

/** The agent-name rule (`metadata.name`, dependency names). */
export const AGENT_NAME_PATTERN = '^[a-z][a-z0-9-]*[a-z0-9]$';

/** Domains the format names; `spec.domain` stays open (an unknown one is a warning, not an error). */
export const KNOWN_DOMAINS = [
  'infrastructure',
  'security',
  'testing',
  'documentation',
  'development',
  'operations',
  'monitoring',
  'performance',
  'integration',
  'analysis',
  'research',
  'release',
] as const;

/** `llm.provider` values: the LLM providers of the runtime (a unit test keeps this equal to `PROVIDER_NAMES`). */
export const LLM_PROVIDERS = ['anthropic', 'openai', 'ollama', 'local', 'scripted', 'mcp-sampling'] as const;

/** Names of host-configured MCP servers (also the prefix of their tools' names). */
export const MCP_SERVER_NAME_PATTERN = '^[a-zA-Z0-9-]{1,32}$';

/** Most MCP servers one agent may use. */
export const MAX_AGENT_MCP_SERVERS = 16;

const PRIORITY = {
  type: 'string',
  enum: ['critical', 'high', 'medium', 'low'],
  description: 'How urgent: critical, high, medium or low.',
};

const DATE = '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$';

const SIZE = {
  type: ['string', 'integer'],
  pattern: '^\\d+([KMGT]?B)?$',
  minimum: 0,
  examples: ['512MB', '1GB', '64KB', 1048576],
};

const TASK = {
  type: 'object',
  description: 'A task: what to do and how urgent it is.',
  required: ['description', 'priority'],
  additionalProperties: false,
  properties: {
    description: { type: 'string', minLength: 1, maxLength: 1000, description: 'What the task asks the agent to do (the prompt of the task).' },
    priority: { ...PRIORITY, description: 'Priority of the task: critical, high, medium or low.' },
    estimated_duration: {
      type: 'string',
      pattern: '^\\d+[hdwm]$',
      description: 'Estimated effort, a number and a unit letter h, d, w or m (e.g. 4h, 2d). Informative only; kept as written.',
      examples: ['4h', '2d', '1w'],
    },
    dependencies: {
      type: 'array',
      maxItems: 50,
      description: 'What this task needs first, as written (informative; agent ordering comes from the top-level dependencies).',
      items: { type: 'string', minLength: 1, maxLength: 200, description: 'A prerequisite of this task.' },
    },
  },
};

const REASON = { type: 'string', maxLength: 500, description: 'Why this agent depends on that one.' };

const DEPENDENCIES = (which: string) => ({
  description:
    `${which} Either a map \`{other-agent: "reason"}\` or a list of one-key maps \`[- other-agent: "reason"]\`.`,
  if: { type: 'array' },
  then: {
    type: 'array',
    maxItems: 100,
    description: 'Dependencies as a list of one-key maps: `- other-agent: "reason"`.',
    items: {
      type: 'object',
      minProperties: 1,
      maxProperties: 1,
      description: 'One dependency: `other-agent: "reason"`.',
      propertyNames: { pattern: AGENT_NAME_PATTERN, maxLength: 100, description: 'The name (metadata.name) of the agent depended on.' },
      additionalProperties: REASON,
    },
  },
  else: {
    type: 'object',
    maxProperties: 100,
    description: 'Dependencies as a map: `other-agent: "reason"`.',
    propertyNames: { pattern: AGENT_NAME_PATTERN, maxLength: 100, description: 'The name (metadata.name) of the agent depended on.' },
    additionalProperties: REASON,
  },
});

const METRIC_OBJECT = {
  type: 'object',
  description: 'A metric written as an object: `{name, description, type?, unit?}`.',
  required: ['name', 'description'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100, description: 'Name of the metric.' },
    description: { type: 'string', minLength: 1, maxLength: 500, description: 'What the metric measures.' },
    type: {
      type: 'string',
      enum: ['counter', 'gauge', 'histogram', 'summary'],
      description: 'Kind of metric: counter, gauge, histogram or summary.',
    },
    unit: { type: 'string', minLength: 1, maxLength: 50, description: 'Unit of the metric (e.g. seconds, bytes, entries).' },
  },
};

const METRIC_ONE_KEY = {
  type: 'object',
  description: 'A metric written as a one-key map: `metric-name: "description"`.',
  minProperties: 1,
  maxProperties: 1,
  propertyNames: { minLength: 1, maxLength: 100, description: 'Name of the metric.' },
  additionalProperties: { type: 'string', minLength: 1, maxLength: 500, description: 'What the metric measures.' },
};

export const AGENT_SPEC_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:toka:schema:agent-spec',
  title: 'Toka agent spec',
  description: 'One agent: who it is, what it must achieve, what it depends on, and the bounds it runs under. A workstream is a folder of these.',
  type: 'object',
  required: ['metadata', 'spec', 'capabilities', 'objectives', 'tasks'],
  properties: {
    metadata: {
      type: 'object',
      description: 'Identity of the agent and of the workstream it belongs to.',
      required: ['name', 'version', 'created', 'workstream'],
      additionalProperties: false,
      properties: {
        name: {
          type: 'string',
          pattern: AGENT_NAME_PATTERN,
          maxLength: 100,
          description: 'The agent name: lower case letters, digits and dashes, starting with a letter (e.g. changelog-writer). Other specs name it in their dependencies.',
        },
        version: { type: 'string', pattern: '^v\\d+\\.\\d+\\.\\d+$', description: 'Version of this spec, `v` + semantic version (e.g. v0.1.0).', examples: ['v0.1.0'] },
        created: { type: 'string', pattern: DATE, description: 'Date the spec was created, YYYY-MM-DD (quote it in YAML to be safe).' },
        workstream: { type: 'string', minLength: 5, maxLength: 100, description: 'Name of the workstream (the folder of agents) this agent belongs to, 5–100 characters.' },
        branch: { type: 'string', pattern: '^feature/', maxLength: 200, description: 'Git branch the work lands on; starts with feature/.' },
        modified: { type: 'string', pattern: DATE, description: 'Date of the last change, YYYY-MM-DD.' },
        schema_version: { type: 'string', maxLength: 50, description: 'Version of the spec format the file was written for (informative).' },
        checksum: { type: 'string', maxLength: 200, description: 'A checksum recorded by the author (informative; Toka computes its own digest).' },
      },
    },
    spec: {
      type: 'object',
      description: 'What kind of agent this is.',
      required: ['name', 'domain', 'priority'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', minLength: 5, maxLength: 100, description: 'Display name of the agent, 5–100 characters.' },
        domain: {
          type: 'string',
          minLength: 1,
          maxLength: 50,
          description: 'Area the agent works in. Open set: a domain outside the known ones is a warning.',
          examples: [...KNOWN_DOMAINS],
        },
        priority: { ...PRIORITY, description: 'Priority of the agent: critical, high, medium or low. Orders agents within a dependency wave.' },
        description: { type: 'string', minLength: 10, maxLength: 500, description: 'What the agent is for, 10–500 characters.' },
      },
    },
    capabilities: {
      type: 'object',
      description: 'What the agent is good at (skills, informative; the security bound is security.capabilities_required).',
      required: ['primary'],
      additionalProperties: false,
      properties: {
        primary: {
          type: 'array',
          minItems: 1,
          maxItems: 10,
          description: 'Main skills, 1–10.',
          items: { type: 'string', minLength: 1, maxLength: 100, description: 'A skill.' },
        },
        secondary: {
          type: 'array',
          maxItems: 15,
          description: 'Further skills, at most 15.',
          items: { type: 'string', minLength: 1, maxLength: 100, description: 'A skill.' },
        },
      },
    },
    objectives: {
      type: 'array',
      minItems: 1,
      maxItems: 10,
      description: 'What the agent must achieve, 1–10 objectives.',
      items: {
        type: 'object',
        description: 'An objective: what, the deliverable, and how it is validated.',
        required: ['description', 'deliverable', 'validation'],
        additionalProperties: false,
        properties: {
          description: { type: 'string', minLength: 10, maxLength: 200, description: 'The objective, 10–200 characters.' },
          deliverable: { type: 'string', minLength: 10, maxLength: 200, description: 'What is delivered, 10–200 characters.' },
          validation: { type: 'string', minLength: 10, maxLength: 200, description: 'How to tell the objective is met, 10–200 characters.' },
          priority: { ...PRIORITY, description: 'Priority of the objective: critical, high, medium or low.' },
        },
      },
    },
    tasks: {
      type: 'object',
      description: 'The tasks the agent runs: `default` ones are scheduled at spawn; `conditional` ones on a named condition.',
      required: ['default'],
      additionalProperties: false,
      properties: {
        default: { type: 'array', minItems: 1, maxItems: 100, description: 'Tasks scheduled when the agent is spawned, in order (at least one).', items: TASK },
        conditional: {
          type: 'object',
          maxProperties: 50,
          description: 'Tasks scheduled when a condition holds: `condition-name: [task, ...]`.',
          propertyNames: { minLength: 1, maxLength: 100, description: 'Name of the condition.' },
          additionalProperties: { type: 'array', maxItems: 100, description: 'Tasks scheduled when this condition holds.', items: TASK },
        },
      },
    },
    dependencies: {
      type: 'object',
      description: 'Other agents of the same workstream this one depends on.',
      additionalProperties: false,
      properties: {
        required: DEPENDENCIES('Agents that must complete before this one starts (they decide the waves).'),
        optional: DEPENDENCIES('Agents whose results help but are not waited for (they do not decide the waves).'),
      },
    },
    reporting: {
      type: 'object',
      description: 'How the agent reports progress.',
      additionalProperties: false,
      properties: {
        frequency: {
          type: 'string',
          enum: ['real-time', 'hourly', 'daily', 'weekly', 'on-milestone', 'on-completion'],
          description: 'When to report: real-time, hourly, daily, weekly, on-milestone or on-completion.',
        },
        channels: {
          type: 'array',
          maxItems: 20,
          description: 'Where reports go (e.g. kernel-events).',
          items: { type: 'string', minLength: 1, maxLength: 100, description: 'A report channel.' },
        },
        metrics: {
          type: 'array',
          maxItems: 50,
          description: 'Metrics the agent reports. Each is `- name: "description"` or `{name, description, type?, unit?}`.',
          items: {
            description: 'A metric: `- name: "description"` or `{name, description, type?, unit?}`.',
            if: { type: 'object', minProperties: 2 },
            then: METRIC_OBJECT,
            else: METRIC_ONE_KEY,
          },
        },
      },
    },
    security: {
      type: 'object',
      description: 'The bounds the agent runs under.',
      additionalProperties: false,
      properties: {
        sandbox: { type: 'boolean', description: 'Run the agent sandboxed (default true).' },
        capabilities_required: {
          type: 'array',
          maxItems: 100,
          description:
            'Everything the agent may ever be granted: Toka permissions (`area:verb`, e.g. tool:fs-read) or the Toka capability names filesystem-read, filesystem-write, network-access, git-access, cargo-execution, ci-integration. A spawned agent never holds more than this, nor more than its spawner.',
          items: {
            type: 'string',
            minLength: 1,
            maxLength: 64,
            description: 'A permission (`area:verb`) or a Toka capability name.',
            examples: ['filesystem-read', 'filesystem-write', 'network-access', 'git-access', 'cargo-execution', 'ci-integration'],
          },
        },
        resource_limits: {
          type: 'object',
          description: 'Resource bounds of the agent.',
          additionalProperties: false,
          properties: {
            max_memory: { ...SIZE, description: 'Memory bound: bytes, or a number with B, KB, MB, GB or TB (1 KB = 1024 B), e.g. 512MB.' },
            max_cpu: {
              type: ['string', 'number'],
              pattern: '^\\d+(\\.\\d+)?%?$',
              minimum: 0,
              description: 'CPU bound as a share of one core: 50% (percent), 0.75 (a number up to 1 is a fraction), 90 (a number above 1 is a percent).',
              examples: ['50%', '75%', 0.5],
            },
            timeout: {
              type: ['string', 'integer'],
              pattern: '^\\d+(ms|s|m|h|d)?$',
              minimum: 0,
              description: 'Time bound of a run: a number with ms, s, m, h or d (e.g. 10m, 2h); a bare number is seconds.',
              examples: ['30s', '10m', '2h'],
            },
            max_disk_usage: { ...SIZE, description: 'Disk bound: bytes, or a number with B, KB, MB, GB or TB (1 KB = 1024 B).' },
            max_network_bandwidth: { ...SIZE, description: 'Network bound per second: bytes, or a number with B, KB, MB, GB or TB (1 KB = 1024 B).' },
          },
        },
      },
    },
    llm: {
      type: 'object',
      description: "The model this agent's runs talk to. Left out, the host's LLM configuration applies (docs/llm-providers.md).",
      additionalProperties: false,
      properties: {
        provider: {
          type: 'string',
          enum: [...LLM_PROVIDERS],
          description:
            "LLM provider of this agent's runs, instead of the host's: anthropic, openai, ollama (local), scripted, or mcp-sampling (ask the model of the MCP client that requested the run; runs can then only be requested from an MCP client that declared sampling).",
        },
        model: { type: 'string', minLength: 1, maxLength: 200, description: "Model name, instead of the host's LLM_MODEL (not used by mcp-sampling: the client picks)." },
      },
    },
    tools: {
      type: 'object',
      description: 'Tools beyond the built-ins this agent is offered.',
      additionalProperties: false,
      properties: {
        mcp_servers: {
          type: 'array',
          maxItems: MAX_AGENT_MCP_SERVERS,
          uniqueItems: true,
          description:
            'External MCP servers whose tools this agent is offered, as <server>__<tool>, by the names the host configures in <data>/mcp-servers.json (docs/tools.md). Calling them needs the permission tool:mcp in security.capabilities_required.',
          items: { type: 'string', pattern: MCP_SERVER_NAME_PATTERN, description: 'Name of an MCP server configured on the host.' },
        },
      },
    },
    behavioral_directives: { description: 'Free-form guidance on how the agent behaves; kept as written.' },
    risk_mitigation: { description: 'Free-form risks and mitigations; kept as written.' },
    success_criteria: { description: 'Free-form success criteria; kept as written.' },
  },
  additionalProperties: { description: 'A section Toka does not know: kept as written and returned untouched.' },
} as const;
