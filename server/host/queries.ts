/**
 * Queries: the world state, the event log and live subscriptions, each limited to the caller's vault, and
 * the log verification. State reads answer from durable state only (HostCore.readDurable).
 */
import { isWellFormedText, type CapabilityClaims } from '../../protocol/capability.js';
import type { EventFilter, LogRecord } from '../../protocol/events.js';
import type { AgentRecord, WorldState } from '../../protocol/kernel.js';
import { EVENT_FILTER_LIMITS, type EventQuery } from '../../protocol/rpc/events.js';
import type { LogVerifyResult } from '../../protocol/rpc/host.js';
import type { AgentView, StateQuery, StateResult } from '../../protocol/rpc/state.js';
import type { Subscription, SubscriptionEnd } from '../store/event-log.js';
import { stateDigest } from '../store/hash.js';
import { boundedInt, type HostCore, type Session } from './core.js';
import { HostError } from './errors.js';
import { replay, type VerifyProgress } from './open.js';


export interface SubscribeQuery {
  afterSeq?: number;
  agent?: string;
  types?: string[];
  bufferLimit?: number;
}

export interface SubscribeListener {
  onRecord(record: LogRecord): void | Promise<void>;
  onEnd(end: SubscriptionEnd | { reason: 'unauthenticated' }): void;
}

export async function getState(core: HostCore, session: Session, query: StateQuery = {}): Promise<StateResult> {
  const claims = await core.check(session);
  core.require(claims, 'state:read');
  const limit = boundedInt(query.limit, 1, 500, 100, 'limit');
  return core.readDurable((state, seq) => {
    const matching: AgentRecord[] = [];
    for (const a of Object.values(state.agents)) {
      if (a.vault !== claims.vault) continue;
      if (query.agent !== undefined && a.id !== query.agent) continue;
      if (query.parent !== undefined && a.parent !== query.parent) continue;
      if (query.status !== undefined && a.status !== query.status) continue;
      matching.push(a);
    }
    matching.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let start = 0;
    if (query.cursor !== undefined) {
      const idx = matching.findIndex((a) => a.id === query.cursor);
      if (idx < 0) throw new HostError('InvalidParams', 'unknown cursor', { field: 'cursor' });
      start = idx + 1;
    }
    const end = Math.min(start + limit, matching.length);
    const page: AgentView[] = [];
    for (let i = start; i < end; i++) {
      const a = matching[i];
      const queue = Object.hasOwn(state.tasks, a.id) ? state.tasks[a.id] : undefined;
      const summary: AgentView = {
        id: a.id,
        parent: a.parent,
        vault: a.vault,
        name: a.name,
        status: a.status,
        createdAt: a.createdAt,
        queuedTasks: queue?.length ?? 0,
        observations: Object.hasOwn(state.observations, a.id) ? state.observations[a.id] : 0,
      };
      if (query.includeTasks) summary.tasks = queue ? queue.map((t) => ({ ...t })) : [];
      page.push(summary);
    }
    const result: StateResult = { seq, agents: page };
    if (end < matching.length) result.nextCursor = page[page.length - 1].id;
    return result;
  });
}

/** The whole world state, for the data dir's owner (CLI `toka state`): a copy, durable, with its seq. */
export async function worldState(core: HostCore): Promise<{ seq: number; state: WorldState }> {
  return core.readDurable((state, seq) => ({ seq, state: structuredClone(state) as WorldState }));
}

export async function queryEvents(core: HostCore, session: Session, query: EventQuery = {}): Promise<LogRecord[]> {
  const claims = await core.check(session);
  core.require(claims, 'events:read');
  const limit = boundedInt(query.limit, 1, 1000, 100, 'limit');
  const afterSeq = boundedInt(query.afterSeq, 0, Number.MAX_SAFE_INTEGER, 0, 'afterSeq');
  return core.log.read({ afterSeq, limit, filter: vaultFilter(claims.vault, query) });
}

/** Longest run id `runSubmission` looks up (host-assigned ids are UUIDs). */
const RUN_ID_CHARS = 128;

/**
 * The `RunSubmitted` record of run `run` in the caller's vault (needs `events:read`), or null: where the run's
 * events begin in the log, found by index once its record has left the world state.
 */
export async function runSubmission(core: HostCore, session: Session, run: string): Promise<LogRecord | null> {
  const claims = await core.check(session);
  core.require(claims, 'events:read');
  if (typeof run !== 'string' || run.length === 0 || run.length > RUN_ID_CHARS || !isWellFormedText(run)) {
    throw new HostError('InvalidParams', `run must be a string of 1..${RUN_ID_CHARS} characters`, { field: 'run' });
  }
  return core.log.runSubmission(claims.vault, run);
}

/**
 * Subscribe to the vault's events after `afterSeq`. The token is re-checked before each delivery:
 * once it expires or is revoked the subscription ends with reason `unauthenticated`.
 */
export async function subscribe(
  core: HostCore,
  session: Session,
  query: SubscribeQuery,
  listener: SubscribeListener,
): Promise<Subscription> {
  const claims = await core.check(session);
  core.require(claims, 'events:read');
  const afterSeq = boundedInt(query.afterSeq, 0, Number.MAX_SAFE_INTEGER, 0, 'afterSeq');
  let sub: Subscription | null = null;
  const end = () => {
    if (sub && core.subscriptions.delete(sub)) core.metrics.subscribers(-1);
  };
  sub = core.log.subscribe(
    { afterSeq, filter: vaultFilter(claims.vault, query), bufferLimit: query.bufferLimit },
    {
      onRecord: async (record) => {
        if (!session.local) {
          try {
            await core.tokens.verify(session.token!);
          } catch {
            sub?.unsubscribe();
            end();
            listener.onEnd({ reason: 'unauthenticated' });
            return;
          }
        }
        await listener.onRecord(record);
      },
      onEnd: (e) => {
        end();
        listener.onEnd(e);
      },
    },
  );
  core.subscriptions.add(sub);
  core.metrics.subscribers(+1);
  return {
    unsubscribe: () => {
      sub?.unsubscribe();
      end();
    },
  };
}

/**
 * Every committed record of every vault after `afterSeq`, in order, for in-process parts of the host (the
 * agent runtime reacts to runs submitted, approvals resolved and runs cancelled from any face). No session:
 * nothing on a wire can reach it.
 */
export function watch(core: HostCore, afterSeq: number, listener: (record: LogRecord) => void): Subscription {
  core.assertInService();
  let sub: Subscription | null = null;
  sub = core.log.subscribe(
    { afterSeq, bufferLimit: 1_000_000 },
    {
      onRecord: listener,
      onEnd: (end) => {
        if (sub) core.subscriptions.delete(sub);
        if (end.reason !== 'closed') core.logger.error('in-process watch ended', { reason: end.reason });
      },
    },
  );
  core.subscriptions.add(sub);
  return {
    unsubscribe: () => {
      sub?.unsubscribe();
      if (sub) core.subscriptions.delete(sub);
    },
  };
}

/**
 * Read durable state with a reader of the caller's own, after checking `permission` — for in-process clients
 * (the runtime). The reader gets the caller's claims and must keep to its vault and return copies.
 */
export async function read<T>(
  core: HostCore,
  session: Session,
  permission: string,
  reader: (state: Readonly<WorldState>, claims: CapabilityClaims) => T,
): Promise<T> {
  const claims = await core.check(session);
  core.require(claims, permission);
  return core.readDurable((state) => reader(state, claims));
}

/**
 * Records of every vault, for the data dir's owner (CLI `toka events`): no session, so only the CLI, which
 * opened the data dir itself, calls it.
 */
export function readAllEvents(
  core: HostCore,
  query: { afterSeq: number; limit: number; vault?: string; agent?: string; types?: string[] },
): Promise<LogRecord[]> {
  return core.log.read({ afterSeq: query.afterSeq, limit: query.limit, filter: vaultFilter(query.vault, query) });
}

/** Chain check plus replay check: replaying from zero must give the live (snapshot + tail) digest. */
export async function verify(core: HostCore, progress: VerifyProgress = {}): Promise<LogVerifyResult> {
  progress.onProgress?.(0, 'checking the hash chain');
  const liveDigest = await core.readDurable((state) => stateDigest(state));
  const chain = await core.log.verify();
  let replayDigest = '';
  if (chain.ok) {
    progress.onProgress?.(0, 'replaying from zero');
    replayDigest = stateDigest((await replay(core.log, core.handlers, 'zero', progress)).state);
  }
  return {
    ok: chain.ok && replayDigest === liveDigest,
    checked: chain.checked,
    headSeq: chain.headSeq,
    ...(chain.firstBad ? { firstBad: chain.firstBad } : {}),
    liveDigest,
    replayDigest,
  };
}

/** A vault (when given), plus the query's agent and types, checked against their bounds. */
function vaultFilter(vault: string | undefined, query: { agent?: string; types?: string[] }): EventFilter {
  if (query.agent !== undefined && (typeof query.agent !== 'string' || query.agent.length === 0 || query.agent.length > EVENT_FILTER_LIMITS.agentChars || !isWellFormedText(query.agent))) {
    throw new HostError('InvalidParams', `agent must be a string of 1..${EVENT_FILTER_LIMITS.agentChars} characters`, { field: 'agent' });
  }
  if (
    query.types !== undefined &&
    (!Array.isArray(query.types) ||
      query.types.length > EVENT_FILTER_LIMITS.types ||
      !query.types.every((t) => typeof t === 'string' && t.length > 0 && t.length <= EVENT_FILTER_LIMITS.typeChars && isWellFormedText(t)))
  ) {
    throw new HostError('InvalidParams', `types must be at most ${EVENT_FILTER_LIMITS.types} event type names`, { field: 'types' });
  }
  return { vault, agent: query.agent, types: query.types };
}
