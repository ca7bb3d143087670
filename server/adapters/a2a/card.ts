/**
 * The Agent Card: who this host is as an A2A agent, where its bindings are, how to authenticate, and its
 * skills — one per agent a caller may address. The public card (`GET /.well-known/agent-card.json`, no
 * token) lists only the agents the host's configuration publishes; the extended card (GetExtendedAgentCard,
 * with a token) lists every live agent of the caller's vault it may read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentCard, AgentSkill } from '@a2a-js/sdk';
import { WEBSOCKET_BINDING } from '../../../protocol/a2a.js';
import { runtimeState } from '../../runtime/lifecycle.js';
import type { Host, Session } from '../../host/host.js';
import { TOKA_VERSION } from '../../host/version.js';

/** The A2A protocol version served. */
export const A2A_VERSION = '1.0';
export const CARD_PATH = '/.well-known/agent-card.json';
export const A2A_PREFIX = '/a2a';
export const JSONRPC_PATH = `${A2A_PREFIX}/jsonrpc`;
export const WEBSOCKET_PATH = `${A2A_PREFIX}/ws`;
/** The HTTP+JSON (REST) binding's base: its routes are `/a2a/rest/message:send`, `/a2a/rest/tasks/{id}`, ... */
export const REST_PATH = `${A2A_PREFIX}/rest`;
/** The security scheme name in the card. */
export const BEARER_SCHEME = 'tokaCapability';

/** What the card says and which agents it publishes (`<data>/a2a.json`, or options in-process). */
export interface A2aConfig {
  /** Card name (default "Toka"). */
  name?: string;
  /** Card description. */
  description?: string;
  /** Agents on the public card: of one vault, by agent id or spec name (`metadata.name`). Default: none. */
  publish?: { vault: string; agents: string[] };
}

export const A2A_CONFIG_FILE = 'a2a.json';

/** Thrown for a bad `a2a.json`: the host refuses to start rather than publish the wrong agents. */
export class A2aConfigError extends Error {}

/** `<dataDir>/a2a.json` when present, else the defaults. */
export function readA2aConfig(dataDir: string): A2aConfig {
  const path = join(dataDir, A2A_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new A2aConfigError(`${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new A2aConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return checkA2aConfig(value, path);
}

export function checkA2aConfig(value: unknown, where: string): A2aConfig {
  const bad = (why: string) => new A2aConfigError(`${where}: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected a JSON object');
  const config: A2aConfig = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'name' || key === 'description') {
      if (typeof v !== 'string' || v.length === 0 || v.length > 1024) throw bad(`${key} must be a string of 1..1024 characters`);
      config[key] = v;
    } else if (key === 'publish') {
      const p = v as { vault?: unknown; agents?: unknown };
      if (typeof p !== 'object' || p === null || typeof p.vault !== 'string' || !Array.isArray(p.agents) || !p.agents.every((a) => typeof a === 'string')) {
        throw bad('publish must be {"vault": "<vault>", "agents": ["<agent id or spec name>", ...]}');
      }
      if (Object.keys(p).some((k) => k !== 'vault' && k !== 'agents')) throw bad('publish has only vault and agents');
      config.publish = { vault: p.vault, agents: [...(p.agents as string[])] };
    } else {
      throw bad(`unknown key "${key}" (known: name, description, publish)`);
    }
  }
  return config;
}

/** A live agent of a vault, as a skill. */
interface AgentEntry {
  id: string;
  specName: string;
}

/** Builds cards; skills come from each agent's spec as recorded in the log. */
export class CardBuilder {
  /** Skills by agent id: a spec never changes once an agent is registered. */
  private readonly skills = new Map<string, AgentSkill>();

  constructor(
    private readonly host: Host,
    private readonly config: A2aConfig,
  ) {}

  /** The card for anonymous callers: the published agents only. */
  async publicCard(baseUrl: string): Promise<AgentCard> {
    const publish = this.config.publish;
    if (!publish || publish.agents.length === 0) return this.card(baseUrl, []);
    const wanted = new Set(publish.agents);
    const agents = (await this.liveAgents(this.host.localSession(publish.vault))).filter((a) => wanted.has(a.id) || wanted.has(a.specName));
    return this.card(baseUrl, await this.skillsOf(publish.vault, agents));
  }

  /** The card for an authenticated caller: every live agent of its vault it may read. */
  async extendedCard(session: Session, baseUrl: string): Promise<AgentCard> {
    return this.card(baseUrl, await this.skillsOf(session.claims.vault, await this.liveAgents(session)));
  }

  /** The agents of the caller's vault it may address (needs `state:read`). */
  async liveAgents(session: Session): Promise<AgentEntry[]> {
    return this.host.read(session, 'state:read', (state, claims) => {
      const records = runtimeState(state).agents;
      const out: AgentEntry[] = [];
      for (const agent of Object.values(state.agents)) {
        if (agent.vault !== claims.vault || !Object.hasOwn(records, agent.id)) continue;
        const r = records[agent.id];
        if (r.terminated || r.grant === '') continue;
        out.push({ id: agent.id, specName: r.specName });
      }
      return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }

  private async skillsOf(vault: string, agents: AgentEntry[]): Promise<AgentSkill[]> {
    const out: AgentSkill[] = [];
    for (const agent of agents) {
      let skill = this.skills.get(agent.id);
      if (!skill) {
        skill = await this.skillFromSpec(vault, agent);
        this.skills.set(agent.id, skill);
      }
      out.push(structuredClone(skill));
    }
    return out;
  }

  private async skillFromSpec(vault: string, agent: AgentEntry): Promise<AgentSkill> {
    const [registered] = await this.host.readAllEvents({ afterSeq: 0, limit: 1, vault, agent: agent.id, types: ['AgentRuntimeRegistered'] });
    const spec = (registered?.event as unknown as { spec?: unknown } | undefined)?.spec;
    const doc = (typeof spec === 'object' && spec !== null ? spec : {}) as Record<string, Record<string, unknown> | undefined>;
    const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const objectives = Array.isArray(doc.objectives) ? (doc.objectives as { description?: unknown }[]) : [];
    const tasks = Array.isArray(doc.tasks?.default) ? (doc.tasks.default as { description?: unknown }[]) : [];
    const title = typeof doc.spec?.name === 'string' ? doc.spec.name : agent.specName;
    const description = objectives.map((o) => o.description).filter((d): d is string => typeof d === 'string').join('; ');
    return {
      id: agent.id,
      name: title,
      description: description || title,
      tags: [agent.specName, ...strings(doc.capabilities?.primary), ...(typeof doc.spec?.domain === 'string' ? [doc.spec.domain] : [])],
      examples: tasks.map((t) => t.description).filter((d): d is string => typeof d === 'string'),
      inputModes: [],
      outputModes: [],
      securityRequirements: [],
    };
  }

  private card(baseUrl: string, skills: AgentSkill[]): AgentCard {
    const ws = baseUrl.replace(/^http/, 'ws');
    return {
      name: this.config.name ?? 'Toka',
      description:
        this.config.description ??
        'A Toka agent host: each skill is an agent; a message becomes a run of it, authorised by a Toka capability token.',
      supportedInterfaces: [
        { url: `${baseUrl}${JSONRPC_PATH}`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_VERSION },
        { url: `${baseUrl}${REST_PATH}`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: A2A_VERSION },
        { url: `${ws}${WEBSOCKET_PATH}`, protocolBinding: WEBSOCKET_BINDING, tenant: '', protocolVersion: A2A_VERSION },
      ],
      provider: { organization: 'Toka', url: baseUrl },
      version: TOKA_VERSION,
      capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: true },
      securitySchemes: {
        [BEARER_SCHEME]: {
          scheme: {
            $case: 'httpAuthSecurityScheme',
            value: { description: 'A Toka capability token (JWT, typ toka.cap+jwt) of the vault whose agents you address', scheme: 'Bearer', bearerFormat: 'JWT' },
          },
        },
      },
      securityRequirements: [{ schemes: { [BEARER_SCHEME]: { list: [] } } }],
      defaultInputModes: ['text/plain', 'application/json'],
      defaultOutputModes: ['text/plain', 'application/json'],
      skills,
      signatures: [],
    };
  }
}
