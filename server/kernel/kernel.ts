/**
 * The deterministic kernel: validate → authorise → execute → apply, over a plain-JSON world state.
 * Pure: no I/O, no clock, no randomness. Every state change goes through `apply(event)`, which is also
 * the replay path, so executing and replaying share one code path.
 */
import { permits } from '../../protocol/capability.js';
import {
  ID_BUDGET,
  KERNEL_LIMITS,
  rootAgentId,
  type AgentSpawned,
  type KernelEvent,
  type OperationEnvelope,
  type WorldState,
} from '../../protocol/kernel.js';
import { CORE_HANDLERS, type CoreHandler } from './core.js';
import { KernelError } from './errors.js';
import type { OpcodeHandler } from './handler.js';
import { deepCopy, emptyState, Journal, journaled, readOnly, restoreState } from './state.js';
import {
  isPlainObject,
  requireId,
  requireJson,
  requireObject,
  requireString,
  requireStringArray,
  requireTime,
} from './validate.js';
import { StateView } from './view.js';

export type { KernelView, OpcodeHandler } from './handler.js';
export { grantStatus, tokenRevoked, type GrantStatus } from './revocation.js';
export { emptyState } from './state.js';

const CONCRETE_PERMISSION = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$/;

export class Kernel {
  #state: WorldState;
  /** Handlers by opcode, in registration order. */
  readonly #handlers = new Map<string, OpcodeHandler>();
  /** Handler applying each event type. */
  readonly #byEvent = new Map<string, OpcodeHandler>();
  readonly #core = new Set<OpcodeHandler>(CORE_HANDLERS);
  readonly #coreByEvent = new Map<string, CoreHandler>(CORE_HANDLERS.flatMap((h) => h.eventTypes.map((t) => [t, h] as const)));

  /**
   * `state`: restore from a snapshot (`InvalidOperation` if it is not shaped like a `WorldState`), deep-copied
   * unless `adopt` is set: then the kernel takes the object itself as its live state, and the caller must
   * hold no reference to it (a snapshot just parsed from its text; copying a large state doubles restart time).
   */
  constructor(options: { state?: WorldState; adopt?: boolean } = {}) {
    this.#state = options.state === undefined ? emptyState() : restoreState(options.state, options.adopt !== true);
    for (const h of CORE_HANDLERS) this.#add(h);
  }

  /** The live state. Read it, never write it; `snapshot()` gives a copy. */
  get state(): Readonly<WorldState> {
    return this.#state;
  }

  /**
   * Register a handler for a new opcode. Duplicate opcode (core ones included), an event type already handled,
   * or a malformed handler → `InvalidOperation`; more than `KERNEL_LIMITS.registeredHandlers` handlers in all
   * (core included) → `LimitExceeded`.
   */
  register(handler: OpcodeHandler): void {
    checkHandler(handler);
    if (this.#handlers.has(handler.opcode)) throw KernelError.invalid(`duplicate opcode ${handler.opcode}`);
    for (const t of handler.eventTypes) {
      if (this.#byEvent.has(t)) throw KernelError.invalid(`duplicate event type ${t}`);
    }
    if (this.#handlers.size >= KERNEL_LIMITS.registeredHandlers) {
      throw KernelError.limit('registeredHandlers', KERNEL_LIMITS.registeredHandlers, this.#handlers.size + 1);
    }
    this.#add(handler);
  }

  /** Remove a registered handler and its event types. False for a core or unknown opcode. */
  unregister(opcode: string): boolean {
    const handler = this.#handlers.get(opcode);
    if (!handler || this.#core.has(handler)) return false;
    this.#handlers.delete(opcode);
    for (const t of handler.eventTypes) this.#byEvent.delete(t);
    return true;
  }

  /** Opcodes in registration order, core first. */
  handlers(): string[] {
    return [...this.#handlers.keys()];
  }

  /**
   * Validate → authorise → execute → apply. Atomic: on any error the state is unchanged.
   * Returns the events for the host to append to the log.
   */
  execute(env: OperationEnvelope): KernelEvent[] {
    checkEnvelope(env);
    const type = (env.op as { type: string }).type;
    const handler = this.#handlers.get(type);
    if (!handler) throw KernelError.unsupported('operation', type);
    handler.validate?.(env.op);

    if (env.origin !== env.claims.sub) throw KernelError.denied('origin does not match the token subject');
    if (!handler.waivePermission?.(env) && !permits(env.claims.permissions, handler.permission)) {
      throw KernelError.denied('permission not held', handler.permission);
    }

    const view = new StateView(this.#state, env);
    const produced = handler.execute(env, view);
    if (!Array.isArray(produced)) throw new TypeError(`handler ${handler.opcode}: execute must return an array`);
    if (!this.#core.has(handler)) for (const e of produced) checkEmitted(handler, e, env);
    const events: KernelEvent[] = view.spawnsRoot ? [rootSpawned(env), ...produced] : produced;
    this.#commit(events);
    return events;
  }

  /** Replay path: apply an already-logged event, without authorisation. Atomic like `execute`. */
  apply(event: KernelEvent): void {
    if (!isPlainObject(event) || typeof event.type !== 'string') throw KernelError.invalid('event must be an object with a string type');
    this.#commit([event]);
  }

  /** Deep copy of the state as plain JSON (what snapshots store and digests hash). */
  snapshot(): WorldState {
    return deepCopy(this.#state);
  }

  #add(handler: OpcodeHandler): void {
    this.#handlers.set(handler.opcode, handler);
    for (const t of handler.eventTypes) this.#byEvent.set(t, handler);
  }

  /**
   * Apply `events` to the live state through an undo journal; roll every write back if one fails. Core and
   * registered handlers alike write in place, so a commit costs O(what it writes), however large the state.
   */
  #commit(events: KernelEvent[]): void {
    const journal = new Journal();
    try {
      for (const event of events) {
        const core = this.#coreByEvent.get(event.type);
        if (core) {
          core.applyCore(event, this.#state, journal);
          continue;
        }
        const handler = this.#byEvent.get(event.type);
        if (!handler) throw KernelError.unsupported('event', event.type);
        applyScoped(handler, event, this.#state, journal);
      }
    } catch (err) {
      journal.rollback();
      throw err;
    } finally {
      journal.close();
    }
  }
}

/**
 * Apply a registered handler's event with only `ext[namespace]` writable, through the commit's journal: the
 * handler writes the live state in place (every write recorded, so a failed commit rolls back exactly) and
 * reads everything else through read-only views.
 */
function applyScoped(handler: OpcodeHandler, event: KernelEvent, working: WorldState, journal: Journal): void {
  const ns = handler.namespace ?? handler.opcode;
  const label = `handler ${handler.opcode}: state outside ext.${ns}`;
  const deny = (): never => {
    throw new TypeError(`${label} is read-only`);
  };
  const own = `handler ${handler.opcode}: ext.${ns}`;
  const ext = new Proxy(working.ext, {
    get: (target, key) => (key === ns ? journaled(target[ns], journal, own) : readOnly(Reflect.get(target, key), label)),
    set: (target, key, value) => {
      if (key !== ns) deny();
      if (journal.closed) throw new TypeError(`${own}: state written after its apply returned`);
      journal.write(target, ns, deepCopy(value));
      return true;
    },
    deleteProperty: (target, key) => {
      if (key !== ns) deny();
      if (journal.closed) throw new TypeError(`${own}: state written after its apply returned`);
      journal.remove(target, ns);
      return true;
    },
    defineProperty: deny,
    setPrototypeOf: deny,
    preventExtensions: deny,
  });
  const scoped: WorldState = Object.freeze({
    agents: readOnly(working.agents, label),
    tasks: readOnly(working.tasks, label),
    observations: readOnly(working.observations, label),
    roots: readOnly(working.roots, label),
    grants: readOnly(working.grants, label),
    revokedTokens: readOnly(working.revokedTokens, label),
    ...(working.revokedTokensByVault !== undefined ? { revokedTokensByVault: readOnly(working.revokedTokensByVault, label) } : {}),
    ext,
  });
  handler.apply(deepCopy(event), scoped);
}

/** The `AgentSpawned` of a vault's root agent, created on first reference. */
function rootSpawned(env: OperationEnvelope): AgentSpawned {
  const { id, at, claims } = env;
  const agent = rootAgentId(claims.vault);
  return { type: 'AgentSpawned', opId: id, at, by: { sub: claims.sub, jti: claims.jti }, vault: claims.vault, agent, parent: null, name: 'root' };
}

/** The envelope is built by the host, but the kernel trusts nothing it did not check. */
function checkEnvelope(env: OperationEnvelope): void {
  const e = requireObject(env, 'envelope');
  requireId(e.id, 'envelope.id');
  requireTime(e.at, 'envelope.at');
  requireString(e.origin, 'envelope.origin');
  const claims = requireObject(e.claims, 'envelope.claims');
  requireString(claims.sub, 'claims.sub');
  requireId(claims.vault, 'claims.vault');
  requireId(claims.jti, 'claims.jti');
  requireId(claims.grant, 'claims.grant');
  requireStringArray(claims.permissions, 'claims.permissions');
  requireTime(claims.exp, 'claims.exp');
  if (claims.dlg !== undefined) requireStringArray(claims.dlg, 'claims.dlg');
  const ids = requireStringArray(e.ids, 'envelope.ids');
  if (ids.length > ID_BUDGET) throw KernelError.limit('ids', ID_BUDGET, ids.length);
  ids.forEach((id, i) => requireId(id, `envelope.ids[${i}]`));
  const op = requireObject(e.op, 'op');
  if (typeof op.type !== 'string') throw KernelError.invalid('op.type must be a string');
}

/** A registered handler's events must be its own types, carry this operation's `EventBase` and be plain JSON. */
function checkEmitted(handler: OpcodeHandler, e: KernelEvent, env: OperationEnvelope): void {
  const bad = (what: string): never => {
    throw new TypeError(`handler ${handler.opcode} emitted an event with ${what}`);
  };
  if (!isPlainObject(e)) bad('a non-object value');
  if (!handler.eventTypes.includes(e.type)) bad(`type ${String(e.type)} it does not apply`);
  if (e.opId !== env.id || e.at !== env.at || e.vault !== env.claims.vault) bad('wrong opId, at or vault');
  if (!isPlainObject(e.by) || e.by.sub !== env.claims.sub || e.by.jti !== env.claims.jti) bad('wrong by');
  if (e.agent !== undefined && typeof e.agent !== 'string') bad('a non-string agent');
  requireJson(e, `${handler.opcode} event`);
}

function checkHandler(h: OpcodeHandler): void {
  if (h === null || typeof h !== 'object') throw KernelError.invalid('handler must be an object');
  if (typeof h.opcode !== 'string' || h.opcode === '') throw KernelError.invalid('handler.opcode must be a non-empty string');
  if (typeof h.permission !== 'string' || !CONCRETE_PERMISSION.test(h.permission)) {
    throw KernelError.invalid('handler.permission must be a concrete area:verb permission');
  }
  if (h.namespace !== undefined && (typeof h.namespace !== 'string' || h.namespace === '' || h.namespace === '__proto__')) {
    throw KernelError.invalid('handler.namespace must be a non-empty string');
  }
  if (!Array.isArray(h.eventTypes) || !h.eventTypes.every((t) => typeof t === 'string' && t !== '')) {
    throw KernelError.invalid('handler.eventTypes must be an array of non-empty strings');
  }
  if (new Set(h.eventTypes).size !== h.eventTypes.length) throw KernelError.invalid('handler.eventTypes has duplicates');
  if (typeof h.execute !== 'function' || typeof h.apply !== 'function') {
    throw KernelError.invalid('handler.execute and handler.apply must be functions');
  }
}
