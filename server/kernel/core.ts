/**
 * The eight core opcode handlers (protocol/kernel.ts `CoreOperation`). Their `applyCore` functions write the
 * live state only through the commit's undo journal, so a failed commit rolls back exactly what it wrote.
 */
import {
  CLAIM_LIMITS,
  MAX_DELEGATION_DEPTH,
  delegationFault,
  isKnownPermission,
  isSubset,
} from '../../protocol/capability.js';
import {
  KERNEL_LIMITS,
  type AgentRecord,
  type AgentSpawned,
  type CancelTask,
  type CreateGrant,
  type DelegateCapability,
  type EmitObservation,
  type GrantCreated,
  type GrantRecord,
  type GrantRevoked,
  type KernelEvent,
  type ObservationEmitted,
  type Operation,
  type OperationEnvelope,
  type RevokeGrant,
  type RevokeToken,
  type ScheduleAgentTask,
  type SpawnSubAgent,
  type TaskPriority,
  type TaskRecord,
  type TaskCancelled,
  type TaskScheduled,
  type TokenRevoked,
  type WorldState,
} from '../../protocol/kernel.js';
import { KernelError } from './errors.js';
import type { KernelView, OpcodeHandler } from './handler.js';
import { deepCopy, Journal } from './state.js';
import {
  onlyFields,
  optionalText,
  requireId,
  requireJson,
  requireObject,
  requireString,
  requireStringArray,
  requireText,
  requireTime,
  utf8ByteLength,
} from './validate.js';

const PRIORITIES: readonly TaskPriority[] = ['critical', 'high', 'medium', 'low'];

/** The `index`-th fresh id of the envelope; `InvalidOperation` if the host supplied too few. */
function freshId(env: OperationEnvelope, index: number): string {
  if (index >= env.ids.length) throw KernelError.invalid(`missing fresh id #${index + 1} in envelope ids`);
  return env.ids[index];
}

function fields(op: Operation): Record<string, unknown> {
  return op as unknown as Record<string, unknown>;
}

/** Permissions of a grant or delegation: non-empty, bounded, each of the vocabulary. */
function requirePermissions(v: unknown): string[] {
  const perms = requireStringArray(v, 'permissions');
  if (perms.length === 0) throw KernelError.invalid('permissions must not be empty');
  if (perms.length > CLAIM_LIMITS.permissions) throw KernelError.limit('permissions', CLAIM_LIMITS.permissions, perms.length);
  for (const p of perms) {
    if (!isKnownPermission(p)) throw KernelError.invalid(`unknown permission ${JSON.stringify(p)}`);
  }
  return perms;
}

function requireReason(v: unknown): void {
  optionalText(v, 'reason', 'reasonChars', KERNEL_LIMITS.reasonChars);
}

/** An agent id that `SpawnSubAgent` may use for a new agent. */
function newAgentId(env: OperationEnvelope, taken: (id: string) => boolean): string {
  const id = freshId(env, 0);
  if (id.startsWith('root:')) throw KernelError.invalid(`id ${JSON.stringify(id)} is reserved for root agents`);
  if (taken(id)) throw KernelError.invalid(`id ${JSON.stringify(id)} already in use`);
  return id;
}

/**
 * A core handler writes the live state through the commit's undo journal (`applyCore`). Its plain `apply`
 * (the `OpcodeHandler` contract) runs the same code with a journal of its own.
 */
export interface CoreHandler extends OpcodeHandler {
  applyCore(event: KernelEvent, state: WorldState, journal: Journal): void;
}

function core(handler: Omit<CoreHandler, 'apply'>): CoreHandler {
  return { ...handler, apply: (event, state) => handler.applyCore(event, state, new Journal()) };
}

export const scheduleAgentTask: CoreHandler = core({
  opcode: 'ScheduleAgentTask',
  permission: 'task:schedule',
  eventTypes: ['TaskScheduled'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'agent', 'task'], 'ScheduleAgentTask');
    requireId(o.agent, 'agent');
    const task = requireObject(o.task, 'task');
    onlyFields(task, ['description', 'priority'], 'task');
    const description = requireString(task.description, 'task.description');
    if (description.trim() === '') throw KernelError.invalid('task.description must not be blank');
    const bytes = utf8ByteLength(description);
    if (bytes > KERNEL_LIMITS.taskDescriptionBytes) throw KernelError.limit('taskDescriptionBytes', KERNEL_LIMITS.taskDescriptionBytes, bytes);
    if (task.priority !== undefined && !PRIORITIES.includes(task.priority as TaskPriority)) {
      throw KernelError.invalid(`task.priority must be one of ${PRIORITIES.join(', ')}`);
    }
  },
  execute(env, view) {
    const op = env.op as ScheduleAgentTask;
    const agent = view.agent(op.agent);
    const queued = view.queuedTasks(agent.id);
    if (queued >= KERNEL_LIMITS.queuedTasksPerAgent) {
      throw KernelError.limit('queuedTasksPerAgent', KERNEL_LIMITS.queuedTasksPerAgent, queued + 1);
    }
    const task: TaskRecord = {
      id: freshId(env, 0),
      description: op.task.description,
      priority: op.task.priority ?? 'medium',
      scheduledAt: env.at,
    };
    return [view.event('TaskScheduled', { agent: agent.id, task })];
  },
  applyCore(event, state, journal) {
    const e = event as TaskScheduled;
    if (!Object.hasOwn(state.tasks, e.agent)) journal.set(state.tasks, e.agent, []);
    journal.push(state.tasks[e.agent], { ...e.task });
  },
});

export const cancelTask: CoreHandler = core({
  opcode: 'CancelTask',
  permission: 'task:cancel',
  eventTypes: ['TaskCancelled'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'agent', 'task', 'reason'], 'CancelTask');
    requireId(o.agent, 'agent');
    requireId(o.task, 'task');
    requireReason(o.reason);
  },
  execute(env, view) {
    const op = env.op as CancelTask;
    const agent = view.agent(op.agent);
    const task = view.task(agent.id, op.task);
    return [view.event('TaskCancelled', { agent: agent.id, task: task.id, ...(op.reason !== undefined ? { reason: op.reason } : {}) })];
  },
  applyCore(event, state, journal) {
    const e = event as TaskCancelled;
    const queue = Object.hasOwn(state.tasks, e.agent) ? state.tasks[e.agent] : [];
    if (!queue.some((t) => t.id === e.task)) throw KernelError.unknown('task', e.task);
    journal.set(
      state.tasks,
      e.agent,
      queue.filter((t) => t.id !== e.task),
    );
  },
});

export const spawnSubAgent: CoreHandler = core({
  opcode: 'SpawnSubAgent',
  permission: 'agent:spawn',
  eventTypes: ['AgentSpawned'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'parent', 'spec'], 'SpawnSubAgent');
    requireId(o.parent, 'parent');
    const spec = requireObject(o.spec, 'spec');
    onlyFields(spec, ['name'], 'spec');
    requireText(spec.name, 'spec.name', 'agentNameChars', KERNEL_LIMITS.agentNameChars);
  },
  execute(env, view) {
    const op = env.op as SpawnSubAgent;
    const parent = view.agent(op.parent);
    const id = newAgentId(env, (x) => view.taken(x));
    return [view.event('AgentSpawned', { agent: id, parent: parent.id, name: op.spec.name })];
  },
  applyCore(event, state, journal) {
    const e = event as AgentSpawned;
    const record: AgentRecord = { id: e.agent, parent: e.parent, vault: e.vault, name: e.name, status: 'active', createdAt: e.at };
    journal.set(state.agents, e.agent, record);
    journal.set(state.tasks, e.agent, []);
    journal.set(state.observations, e.agent, 0);
    if (e.parent === null) journal.set(state.roots, e.vault, e.agent);
  },
});

export const emitObservation: CoreHandler = core({
  opcode: 'EmitObservation',
  permission: 'observation:emit',
  eventTypes: ['ObservationEmitted'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'agent', 'data'], 'EmitObservation');
    requireId(o.agent, 'agent');
    requireJson(o.data, 'data');
    // requireJson admits no undefined and no non-finite number, so JSON.stringify has the canonical length.
    const bytes = utf8ByteLength(JSON.stringify(o.data));
    if (bytes > KERNEL_LIMITS.observationBytes) throw KernelError.limit('observationBytes', KERNEL_LIMITS.observationBytes, bytes);
  },
  execute(env, view) {
    const op = env.op as EmitObservation;
    const agent = view.agent(op.agent);
    const index = view.observationCount(agent.id) + 1;
    return [view.event('ObservationEmitted', { agent: agent.id, index, data: deepCopy(op.data) })];
  },
  applyCore(event, state, journal) {
    const e = event as ObservationEmitted;
    journal.set(state.observations, e.agent, e.index);
  },
});

export const createGrant: CoreHandler = core({
  opcode: 'CreateGrant',
  permission: 'capability:grant',
  eventTypes: ['GrantCreated'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'subject', 'permissions', 'expiresAt', 'label'], 'CreateGrant');
    requireText(o.subject, 'subject', 'subjectChars', CLAIM_LIMITS.subjectChars);
    requirePermissions(o.permissions);
    if (o.expiresAt !== undefined) requireTime(o.expiresAt, 'expiresAt');
    optionalText(o.label, 'label', 'grantLabelChars', KERNEL_LIMITS.grantLabelChars);
  },
  execute(env, view) {
    const op = env.op as CreateGrant;
    if (!isSubset(op.permissions, env.claims.permissions)) throw KernelError.denied("grant widens the caller's permissions");
    if (op.expiresAt !== undefined && op.expiresAt <= env.at) throw KernelError.invalid('expiresAt is not after the operation time');
    const parent = parentGrant(env, view);
    if (parent !== undefined) {
      if (!isSubset(op.permissions, parent.permissions)) throw KernelError.denied("grant widens the caller's grant");
      if (op.expiresAt !== undefined && parent.expiresAt !== undefined && op.expiresAt > parent.expiresAt) {
        throw KernelError.invalid("expiresAt is after the caller's grant expires");
      }
    }
    const expiresAt = op.expiresAt ?? parent?.expiresAt;
    const id = freshId(env, 0);
    if (view.taken(id)) throw KernelError.invalid(`id ${JSON.stringify(id)} already in use`);
    const grant: GrantRecord = {
      id,
      subject: op.subject,
      vault: view.vault,
      permissions: [...op.permissions],
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      createdAt: env.at,
      createdBy: env.claims.sub,
      ...(op.label !== undefined ? { label: op.label } : {}),
      ...(parent !== undefined ? { parent: parent.id } : {}),
      revoked: false,
    };
    return [view.event('GrantCreated', { grant })];
  },
  applyCore(event, state, journal) {
    const e = event as GrantCreated;
    journal.set(state.grants, e.grant.id, deepCopy(e.grant));
  },
});

/**
 * The grant a new grant descends from: the caller's token's grant. A caller whose token names no grant of
 * the state (the host's local admin session) creates a root grant. The parent must be of the caller's vault,
 * live at the operation time, and leave room for one more generation (`KERNEL_LIMITS.grantDepth`).
 */
function parentGrant(env: OperationEnvelope, view: KernelView): Readonly<GrantRecord> | undefined {
  const depth = view.grantDepth(env.claims.grant);
  if (depth === 0) return undefined;
  const parent = view.grant(env.claims.grant);
  const status = view.grantStatus(parent.id);
  if (status !== 'live') throw KernelError.denied(`the caller's grant is ${status}`);
  if (depth + 1 > KERNEL_LIMITS.grantDepth) throw KernelError.limit('grantDepth', KERNEL_LIMITS.grantDepth, depth + 1);
  return parent;
}

export const revokeGrant: CoreHandler = core({
  opcode: 'RevokeGrant',
  permission: 'capability:revoke',
  eventTypes: ['GrantRevoked'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'grant', 'reason'], 'RevokeGrant');
    requireId(o.grant, 'grant');
    requireReason(o.reason);
  },
  execute(env, view) {
    const op = env.op as RevokeGrant;
    const grant = view.grant(op.grant);
    if (grant.revoked) throw KernelError.invalid('already revoked');
    return [view.event('GrantRevoked', { grant: grant.id, ...(op.reason !== undefined ? { reason: op.reason } : {}) })];
  },
  applyCore(event, state, journal) {
    const e = event as GrantRevoked;
    if (!Object.hasOwn(state.grants, e.grant)) throw KernelError.unknown('grant', e.grant);
    journal.set(state.grants, e.grant, { ...state.grants[e.grant], revoked: true });
  },
});

export const revokeToken: CoreHandler = core({
  opcode: 'RevokeToken',
  permission: 'capability:revoke',
  eventTypes: ['TokenRevoked'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'jti', 'exp', 'reason'], 'RevokeToken');
    requireId(o.jti, 'jti');
    requireTime(o.exp, 'exp');
    requireReason(o.reason);
  },
  /** A holder may always revoke its own token (RFC 7009). */
  waivePermission(env) {
    return (env.op as RevokeToken).jti === env.claims.jti;
  },
  execute(env, view) {
    const op = env.op as RevokeToken;
    if (view.tokenRevoked(op.jti)) throw KernelError.invalid('already revoked');
    return [
      view.event('TokenRevoked', { jti: op.jti, exp: op.exp, revokedIn: view.vault, ...(op.reason !== undefined ? { reason: op.reason } : {}) }),
    ];
  },
  /** Revocation is scoped to the revoker's vault; an event without `revokedIn` (logged before) counts in every vault. */
  applyCore(event, state, journal) {
    const e = event as TokenRevoked;
    if (e.revokedIn === undefined) {
      journal.set(state.revokedTokens, e.jti, e.exp);
      return;
    }
    if (state.revokedTokensByVault === undefined) journal.set(state as unknown as Record<string, unknown>, 'revokedTokensByVault', {});
    const byVault = state.revokedTokensByVault!;
    if (!Object.hasOwn(byVault, e.revokedIn)) journal.set(byVault, e.revokedIn, {});
    journal.set(byVault[e.revokedIn], e.jti, e.exp);
  },
});

export const delegateCapability: CoreHandler = core({
  opcode: 'DelegateCapability',
  permission: 'capability:delegate',
  eventTypes: ['CapabilityDelegated'],
  validate(op) {
    const o = fields(op);
    onlyFields(o, ['type', 'subject', 'permissions', 'exp'], 'DelegateCapability');
    requireText(o.subject, 'subject', 'subjectChars', CLAIM_LIMITS.subjectChars);
    requirePermissions(o.permissions);
    requireTime(o.exp, 'exp');
  },
  execute(env, view) {
    const op = env.op as DelegateCapability;
    const { claims } = env;
    const depth = (claims.dlg?.length ?? 0) + 1;
    const fault = delegationFault(claims, op, env.at / 1000);
    if (fault === 'ERR_DELEGATION_DEPTH') throw KernelError.delegation(fault, { limit: 'delegationDepth', max: MAX_DELEGATION_DEPTH, actual: depth });
    if (fault !== null) throw KernelError.delegation(fault);
    const event = view.event('CapabilityDelegated', {
      jti: freshId(env, 0),
      parentJti: claims.jti,
      subject: op.subject,
      permissions: [...op.permissions],
      exp: op.exp,
      depth,
    });
    return [event];
  },
  /** A delegation changes no world state: the event is the audit record auth indexes for cascading revocation. */
  applyCore() {},
});

/** Core handlers in registration order (the order of `CoreOperation`). */
export const CORE_HANDLERS: readonly CoreHandler[] = [
  scheduleAgentTask,
  cancelTask,
  spawnSubAgent,
  emitObservation,
  createGrant,
  revokeGrant,
  revokeToken,
  delegateCapability,
];
