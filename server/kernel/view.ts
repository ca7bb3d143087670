/**
 * The `KernelView` handed to `execute`: read-only, vault-scoped accessors over the committed state.
 */
import {
  rootAgentId,
  type AgentRecord,
  type EventBase,
  type GrantRecord,
  type OperationEnvelope,
  type TaskRecord,
  type WorldState,
} from '../../protocol/kernel.js';
import { KernelError } from './errors.js';
import type { KernelView } from './handler.js';
import { findGrant, grantDepth, grantStatus, tokenRevoked, type GrantStatus } from './revocation.js';
import { readOnlyViews } from './state.js';

/** Read-only views of what `KernelView` returns, all by one handler. */
const readOnly = readOnlyViews('KernelView');

const OUTSIDE_VAULT = 'target outside the token vault';

export class StateView implements KernelView {
  readonly vault: string;
  /** Set when the operation referenced the vault's root agent before it existed. */
  spawnsRoot = false;

  constructor(
    private readonly state: Readonly<WorldState>,
    private readonly env: OperationEnvelope,
  ) {
    this.vault = env.claims.vault;
  }

  agent(ref: string): Readonly<AgentRecord> {
    const root = rootAgentId(this.vault);
    const id = ref === 'root' ? root : ref;
    const found = Object.hasOwn(this.state.agents, id) ? this.state.agents[id] : undefined;
    if (found) {
      if (found.vault !== this.vault) throw KernelError.denied(OUTSIDE_VAULT);
      return readOnly(found);
    }
    if (id === root) {
      this.spawnsRoot = true;
      return Object.freeze({ id: root, parent: null, vault: this.vault, name: 'root', status: 'active', createdAt: this.env.at });
    }
    throw KernelError.unknown('agent', id);
  }

  grant(id: string): Readonly<GrantRecord> {
    const found = findGrant(this.state, id);
    if (!found) throw KernelError.unknown('grant', id);
    if (found.vault !== this.vault) throw KernelError.denied(OUTSIDE_VAULT);
    return readOnly(found);
  }

  task(agentId: string, taskId: string): Readonly<TaskRecord> {
    const queue = Object.hasOwn(this.state.tasks, agentId) ? this.state.tasks[agentId] : [];
    const found = queue.find((t) => t.id === taskId);
    if (!found) throw KernelError.unknown('task', taskId);
    return readOnly(found);
  }

  queuedTasks(id: string): number {
    return Object.hasOwn(this.state.tasks, id) ? this.state.tasks[id].length : 0;
  }

  observationCount(id: string): number {
    return Object.hasOwn(this.state.observations, id) ? this.state.observations[id] : 0;
  }

  grantStatus(id: string): GrantStatus {
    return grantStatus(this.state, id, this.env.at);
  }

  grantDepth(id: string): number {
    return grantDepth(this.state, id);
  }

  tokenRevoked(jti: string): boolean {
    return tokenRevoked(this.state, jti, this.vault);
  }

  taken(id: string): boolean {
    return Object.hasOwn(this.state.agents, id) || Object.hasOwn(this.state.grants, id);
  }

  ext(namespace: string): unknown {
    return Object.hasOwn(this.state.ext, namespace) ? readOnly(this.state.ext[namespace]) : undefined;
  }

  event<F extends Record<string, unknown>>(type: string, fields: F): EventBase & F & Record<string, unknown> {
    const { id, at, claims } = this.env;
    return { type, opId: id, at, by: { sub: claims.sub, jti: claims.jti }, vault: claims.vault, ...fields };
  }
}
