/**
 * The opcode-handler contract: how an operation family (core or registered) plugs into the kernel.
 */
import type {
  AgentRecord,
  EventBase,
  GrantRecord,
  KernelEvent,
  Operation,
  OperationEnvelope,
  TaskRecord,
  WorldState,
} from '../../protocol/kernel.js';
import type { GrantStatus } from './revocation.js';

/**
 * Read-only accessors a handler's `execute` uses. Entity lookups enforce vault isolation: they resolve only
 * entities of the caller's vault (`claims.vault`).
 */
export interface KernelView {
  /** The caller's vault (`claims.vault`). */
  readonly vault: string;
  /**
   * The agent `ref` names: an agent id, or the literal `root` for the vault's root agent. The vault's root
   * resolves even before it exists; the kernel then emits its `AgentSpawned` ahead of the operation's events.
   * Throws `CapabilityDenied` if the agent belongs to another vault, `UnknownEntity` if there is none.
   */
  agent(ref: string): Readonly<AgentRecord>;
  /** The grant `id`, with the same vault rule as `agent`. */
  grant(id: string): Readonly<GrantRecord>;
  /** The task `taskId` queued on the agent `agentId` (already resolved through `agent`); `UnknownEntity` if none. */
  task(agentId: string, taskId: string): Readonly<TaskRecord>;
  /** Number of tasks queued on the agent `id`. */
  queuedTasks(id: string): number;
  /** Number of observations recorded for the agent `id`. */
  observationCount(id: string): number;
  /** The status at the operation time of the grant `id` (any vault), its ancestry included; see `grantStatus`. */
  grantStatus(id: string): GrantStatus;
  /** Grants from the root of the grant `id`'s lineage down to it: 1 for a root grant, 0 for an unknown id. */
  grantDepth(id: string): number;
  /** Has the token `jti` been revoked in the caller's vault? */
  tokenRevoked(jti: string): boolean;
  /** Is `id` already used by an agent or a grant (of any vault)? Guards host-assigned ids. */
  taken(id: string): boolean;
  /** Read-only view of `state.ext[namespace]`. */
  ext(namespace: string): unknown;
  /** An event of `type` with the `EventBase` fields of this operation filled in, then `fields`. */
  event<F extends Record<string, unknown>>(type: string, fields: F): EventBase & F & Record<string, unknown>;
}

export interface OpcodeHandler {
  /** The operation `type` it handles. */
  opcode: string;
  /** The concrete permission (`area:verb`) the caller's token must hold; checked by the kernel before `execute`. */
  permission: string;
  /** Where `apply` keeps its state: `state.ext[namespace]`. Defaults to `opcode`; a family shares one namespace. */
  namespace?: string;
  /** Shape and limit checks on the untrusted operation, run before authorisation. Throws `KernelError`. */
  validate?(op: Operation): void;
  /** True when this envelope may run without `permission` (e.g. a token revoking itself). Runs after `validate`. */
  waivePermission?(env: OperationEnvelope): boolean;
  /** Validate against the state and produce events; must not mutate anything. Throws `KernelError` on bad input. */
  execute(env: OperationEnvelope, view: KernelView): KernelEvent[];
  /** Event types this handler applies; its events must be of these types and carry the `EventBase` fields. */
  eventTypes: string[];
  /**
   * Apply one of its events to the state (also the replay path). A registered handler may only write
   * `state.ext[namespace]`; every other part of `state` is read-only to it. It gets the event read-only, and
   * readable only until it returns: it must not keep the event or change it (both throw a `TypeError`).
   */
  apply(event: KernelEvent, state: WorldState): void;
  /**
   * Whether a snapshot's state keeps `state.ext[namespace]` in the layout `apply` writes (default: yes). A
   * snapshot refused by any registered handler is not used: the state is rebuilt from the first record.
   */
  acceptsSnapshot?(state: Readonly<WorldState>): boolean;
}
