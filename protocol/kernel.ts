/**
 * The kernel's wire contract: operations, the envelope the host wraps them in, events, world state,
 * kernel errors and limits. See docs/kernel.md.
 */
import type { CapabilityClaims } from './capability.js';

export type TaskPriority = 'critical' | 'high' | 'medium' | 'low';

/** Queue a task on an agent. Requires `task:schedule`. */
export interface ScheduleAgentTask {
  /** Operation type. */
  type: 'ScheduleAgentTask';
  /** Target agent id (must be in the token's vault). */
  agent: string;
  /** The task to queue. */
  task: {
    /** What to do: not blank, ≤ 4096 UTF-8 bytes. */
    description: string;
    /** Defaults to `medium`. */
    priority?: TaskPriority;
  };
}

/** Remove a queued task from an agent's queue. Requires `task:cancel`. */
export interface CancelTask {
  /** Operation type. */
  type: 'CancelTask';
  /** The agent whose queue holds the task (must be in the token's vault). */
  agent: string;
  /** The task id (from its `TaskScheduled` event). */
  task: string;
  /** Why (≤ 1024 chars), kept in the event. */
  reason?: string;
}

/** Spawn a child agent under `parent`. Requires `agent:spawn`. */
export interface SpawnSubAgent {
  /** Operation type. */
  type: 'SpawnSubAgent';
  /** Parent agent id, or the literal `root` for the vault's root agent. */
  parent: string;
  /** What the new agent is. */
  spec: {
    /** Display name: not blank, ≤ 256 characters. */
    name: string;
  };
}

/** Record an observation for an agent. Requires `observation:emit`. */
export interface EmitObservation {
  /** Operation type. */
  type: 'EmitObservation';
  /** The agent the observation is about (must be in the token's vault). */
  agent: string;
  /** Any JSON value; its JSON encoding is ≤ 1 MiB. */
  data: unknown;
}

/** Create a grant: the durable record tokens are minted from. Requires `capability:grant`. */
export interface CreateGrant {
  /** Operation type. */
  type: 'CreateGrant';
  /** Who the grant is for. */
  subject: string;
  /** Permissions granted; must be covered by the caller's own and by the caller's grant. */
  permissions: string[];
  /** Grant expiry, ms since the epoch, ≤ the caller's grant's; absent = the caller's grant's (none for a root grant). */
  expiresAt?: number;
  /** Free-text label shown in listings (≤ 256 chars). */
  label?: string;
}

/** Revoke a grant: every token minted from it, and every token delegated below those, dies. */
export interface RevokeGrant {
  /** Operation type. */
  type: 'RevokeGrant';
  /** Id of the grant to revoke (of the token's vault). */
  grant: string;
  /** Why (≤ 1024 chars), kept in the event. */
  reason?: string;
}

/** Revoke one token by `jti`: it and every token delegated below it die. */
export interface RevokeToken {
  /** Operation type. */
  type: 'RevokeToken';
  /** Id of the token to revoke. */
  jti: string;
  /** When the token expires anyway (seconds since the epoch); lets the revocation be forgotten after. */
  exp: number;
  /** Why (≤ 1024 chars), kept in the event. */
  reason?: string;
}

/**
 * Record a delegation: the presenting token mints a narrower child token.
 * Requires `capability:delegate`; the host signs the child only after this op succeeds.
 */
export interface DelegateCapability {
  /** Operation type. */
  type: 'DelegateCapability';
  /** Subject of the child token. */
  subject: string;
  /** ⊆ the presenting token's permissions. */
  permissions: string[];
  /** Child expiry (seconds since the epoch), ≤ the presenting token's `exp`. */
  exp: number;
}

/** An operation of a family registered by a handler (runtime task lifecycle, ...). */
export interface ExtensionOperation {
  /** Operation type, registered by exactly one handler. */
  type: string;
  /** The fields the handler of `type` defines. */
  [field: string]: unknown;
}

export type CoreOperation =
  | ScheduleAgentTask
  | CancelTask
  | SpawnSubAgent
  | EmitObservation
  | CreateGrant
  | RevokeGrant
  | RevokeToken
  | DelegateCapability;

export type Operation = CoreOperation | ExtensionOperation;

/** What the host hands the kernel: an operation plus everything the kernel must not decide itself. */
export interface OperationEnvelope<O extends Operation = Operation> {
  /** Operation id, assigned by the host. */
  id: string;
  /** Timestamp, ms since the epoch, assigned by the host. The kernel never reads a clock. */
  at: number;
  /** The principal the message comes from (the session's subject). Must equal `claims.sub`. */
  origin: string;
  /** Verified token claims of the caller. */
  claims: CapabilityClaims;
  /** Fresh ids for entities this operation creates, used in order. The host supplies enough (see `ID_BUDGET`). */
  ids: string[];
  /** The operation as the caller sent it. */
  op: O;
}

/** How many fresh ids the host pre-assigns per envelope. */
export const ID_BUDGET = 4;

/** Who caused an event: the token's subject and id (never the token itself). */
export interface Principal {
  /** The token's subject. */
  sub: string;
  /** The token's id. */
  jti: string;
}

/** Fields every event carries. */
export interface EventBase {
  /** Event type (`AgentSpawned`, ... or a registered handler's). */
  type: string;
  /** Id of the operation that produced the event. */
  opId: string;
  /** Timestamp of that operation (ms since the epoch). */
  at: number;
  /** Who caused it. */
  by: Principal;
  /** The vault the event belongs to. */
  vault: string;
  /** The agent the event is about, when there is one (used for filtering). */
  agent?: string;
}

export interface AgentSpawned extends EventBase {
  /** Event type. */
  type: 'AgentSpawned';
  /** The new agent's id. */
  agent: string;
  /** Parent agent id; null for a vault's root agent. */
  parent: string | null;
  /** The new agent's display name. */
  name: string;
}

export interface TaskScheduled extends EventBase {
  /** Event type. */
  type: 'TaskScheduled';
  /** The agent whose queue took the task. */
  agent: string;
  /** The queued task. */
  task: TaskRecord;
}

export interface TaskCancelled extends EventBase {
  /** Event type. */
  type: 'TaskCancelled';
  /** The agent whose queue held the task. */
  agent: string;
  /** The cancelled task's id. */
  task: string;
  /** Why, as given in the operation. */
  reason?: string;
}

export interface ObservationEmitted extends EventBase {
  /** Event type. */
  type: 'ObservationEmitted';
  /** The agent the observation is about. */
  agent: string;
  /** 1-based index of this observation for the agent. */
  index: number;
  /** The observation, any JSON value (≤ 1 MiB encoded). */
  data: unknown;
}

export interface GrantCreated extends EventBase {
  /** Event type. */
  type: 'GrantCreated';
  /** The new grant. */
  grant: GrantRecord;
}

export interface GrantRevoked extends EventBase {
  /** Event type. */
  type: 'GrantRevoked';
  /** Id of the revoked grant. */
  grant: string;
  /** Why, as given in the operation. */
  reason?: string;
}

export interface TokenRevoked extends EventBase {
  /** Event type. */
  type: 'TokenRevoked';
  /** Id of the revoked token. */
  jti: string;
  /** When the token expires anyway (seconds since the epoch). */
  exp: number;
  /**
   * The vault the token is revoked in: the revoker's. Absent on events logged before revocation was
   * vault-scoped; those revoke the jti in every vault, as they did when logged.
   */
  revokedIn?: string;
  /** Why, as given in the operation. */
  reason?: string;
}

export interface CapabilityDelegated extends EventBase {
  /** Event type. */
  type: 'CapabilityDelegated';
  /** The child token's id. */
  jti: string;
  /** The presenting (parent) token's id. */
  parentJti: string;
  /** Subject of the child token. */
  subject: string;
  /** Permissions of the child token (⊆ the parent's). */
  permissions: string[];
  /** Expiry of the child token (seconds since the epoch). */
  exp: number;
  /** Chain below the grant: 1 for a child of a grant-minted token. */
  depth: number;
}

export type CoreEvent =
  | AgentSpawned
  | TaskScheduled
  | TaskCancelled
  | ObservationEmitted
  | GrantCreated
  | GrantRevoked
  | TokenRevoked
  | CapabilityDelegated;

/** Any event: core or from a registered handler (which must still carry the `EventBase` fields). */
export type KernelEvent = CoreEvent | (EventBase & Record<string, unknown>);

export type AgentStatus = 'active' | 'idle' | 'stopped';

export interface AgentRecord {
  /** Agent id (`root:<vault>` for a vault's root agent). */
  id: string;
  /** Null for the vault's root agent. */
  parent: string | null;
  /** The vault the agent belongs to. */
  vault: string;
  /** Display name. */
  name: string;
  /** Lifecycle status. */
  status: AgentStatus;
  /** ms since the epoch (from the spawning operation). */
  createdAt: number;
}

export interface TaskRecord {
  /** Task id, assigned by the host. */
  id: string;
  /** What to do. */
  description: string;
  /** Queue priority. */
  priority: TaskPriority;
  /** ms since the epoch (from the scheduling operation). */
  scheduledAt: number;
}

export interface GrantRecord {
  /** Grant id, assigned by the host. */
  id: string;
  /** Who the grant is for. */
  subject: string;
  /** The vault the grant acts in. */
  vault: string;
  /** Permissions granted, `area:verb` with wildcards. */
  permissions: string[];
  /** ms since the epoch; absent = no expiry. */
  expiresAt?: number;
  /** ms since the epoch (from the creating operation). */
  createdAt: number;
  /** The principal that created the grant. */
  createdBy: string;
  /** Free-text label shown in listings. */
  label?: string;
  /**
   * The grant of the token that created this one; absent for a root grant (created by the local admin, or
   * logged before grants had parents). A child is never wider than, never outlives, and dies with its parent.
   */
  parent?: string;
  /** True once revoked; tokens minted from it are refused. */
  revoked: boolean;
}

/**
 * The whole world state, as plain JSON. `canonicalJson(state)` is what the state digest hashes,
 * so this shape is part of the determinism contract.
 */
export interface WorldState {
  /** Agents by id. */
  agents: Record<string, AgentRecord>;
  /** Queued tasks per agent id, oldest first. */
  tasks: Record<string, TaskRecord[]>;
  /** Observation count per agent id. */
  observations: Record<string, number>;
  /** Root agent id per vault. */
  roots: Record<string, string>;
  /** Grants by id. */
  grants: Record<string, GrantRecord>;
  /** Token ids revoked in every vault (by events logged before revocation was vault-scoped) → the token's `exp` (seconds). */
  revokedTokens: Record<string, number>;
  /** Revoked token ids per vault → the token's `exp` (seconds). Absent until the first vault-scoped revocation. */
  revokedTokensByVault?: Record<string, Record<string, number>>;
  /** State owned by registered handlers, by namespace (each handler keeps its own JSON). */
  ext: Record<string, unknown>;
}

/** The id of a vault's root agent. Deterministic, so no id needs assigning. */
export function rootAgentId(vault: string): string {
  return `root:${vault}`;
}

/** Kernel limits; each violation is a `LimitExceeded` error naming the limit. */
export const KERNEL_LIMITS = {
  taskDescriptionBytes: 4096,
  agentNameChars: 256,
  observationBytes: 1024 * 1024,
  queuedTasksPerAgent: 10_000,
  registeredHandlers: 64,
  grantLabelChars: 256,
  /** Longest chain of grants from a root grant down to a new one (the root counts as 1). */
  grantDepth: 8,
  reasonChars: 1024,
} as const;

/** Stable kernel error codes. */
export type KernelErrorCode =
  | 'CapabilityDenied'
  | 'UnknownEntity'
  | 'InvalidOperation'
  | 'UnsupportedOperation'
  | 'LimitExceeded';
