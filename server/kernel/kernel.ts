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
import { deepCopy, emptyState, Journal, JournaledHandler, readOnlyViews, restoreState } from './state.js';
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
export { emptyState, stateAt, stateColumn, type StateColumn } from './state.js';

const CONCRETE_PERMISSION = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$/;

export class Kernel {
  #state: WorldState;
  /** Handlers by opcode, in registration order. */
  readonly #handlers = new Map<string, OpcodeHandler>();
  /** Handler applying each event type. */
  readonly #byEvent = new Map<string, OpcodeHandler>();
  readonly #core = new Set<OpcodeHandler>(CORE_HANDLERS);
  /** Labels and read-only views of each registered handler, made on its first event. */
  readonly #scopes = new Map<OpcodeHandler, HandlerScope>();
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
    this.#scopes.delete(handler);
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

  /**
   * A registered handler applies an event with only `ext[namespace]` writable, through the commit's journal:
   * it writes the live state in place (every write recorded, so a failed commit rolls back exactly) and
   * reads everything else through read-only views.
   */
  #scope(handler: OpcodeHandler): HandlerScope {
    let scope = this.#scopes.get(handler);
    if (scope === undefined || !scope.shows(this.#state)) {
      scope = new HandlerScope(handler, this.#state);
      this.#scopes.set(handler, scope);
    }
    return scope;
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
        const scope = this.#scope(handler);
        const own = new JournaledHandler(journal, scope.own);
        handler.apply(own.event(event, scope.event), scope.state(this.#state, own));
      }
    } catch (err) {
      journal.rollback();
      throw err;
    } finally {
      journal.close();
    }
  }
}

/** The parts of the state outside `ext` a registered handler sees read-only, in `WorldState` order. */
const READ_ONLY_FIELDS = ['agents', 'tasks', 'observations', 'roots', 'grants', 'revokedTokens', 'revokedTokensByVault'] as const;

/**
 * What applying a registered handler's events needs that no commit changes: its labels and its read-only
 * views of the state outside `ext`, made once for the maps they show (the state's top-level maps are only
 * ever replaced by `revokedTokensByVault` appearing or a rollback removing it, which makes a new scope).
 */
class HandlerScope {
  readonly ns: string;
  /** Label of the read-only state: everything outside `ext[ns]`. */
  readonly label: string;
  /** Label of the writable `ext[ns]`. */
  readonly own: string;
  /** Label of the (read-only) event being applied. */
  readonly event: string;
  readonly readOnly: <T>(value: T) => T;
  /** Read-only views of the top-level maps outside `ext`, and the maps they show. */
  readonly #views: Omit<WorldState, 'ext'>;
  readonly #shown: unknown[];

  constructor(handler: OpcodeHandler, working: WorldState) {
    this.ns = handler.namespace ?? handler.opcode;
    this.label = `handler ${handler.opcode}: state outside ext.${this.ns}`;
    this.own = `handler ${handler.opcode}: ext.${this.ns}`;
    this.event = `handler ${handler.opcode}: the event applied`;
    this.readOnly = readOnlyViews(this.label);
    const views: Record<string, unknown> = {};
    for (const f of READ_ONLY_FIELDS) if (working[f] !== undefined) views[f] = this.readOnly(working[f]);
    this.#views = views as Omit<WorldState, 'ext'>;
    this.#shown = READ_ONLY_FIELDS.map((f) => working[f]);
  }

  /** Whether the views show the top-level maps of `working` as they are now. */
  shows(working: WorldState): boolean {
    for (let i = 0; i < READ_ONLY_FIELDS.length; i++) if (working[READ_ONLY_FIELDS[i]] !== this.#shown[i]) return false;
    return true;
  }

  /** The state a handler's `apply` is given for one event: only `ext[ns]` writable, through `own`. */
  state(working: WorldState, own: JournaledHandler): WorldState {
    const v = this.#views;
    const ext = new Proxy(working.ext, new ExtView(this, own));
    const { agents, tasks, observations, roots, grants, revokedTokens, revokedTokensByVault } = v;
    return Object.freeze(
      revokedTokensByVault === undefined
        ? { agents, tasks, observations, roots, grants, revokedTokens, ext }
        : { agents, tasks, observations, roots, grants, revokedTokens, revokedTokensByVault, ext },
    );
  }

  deny(): never {
    throw new TypeError(`${this.label} is read-only`);
  }
}

/** `state.ext` as a registered handler sees it during one commit: its namespace journaled, the rest read-only. */
class ExtView implements ProxyHandler<Record<string, unknown>> {
  readonly journal: Journal;

  constructor(
    readonly scope: HandlerScope,
    readonly own: JournaledHandler,
  ) {
    this.journal = own.journal;
  }

  get(target: Record<string, unknown>, key: string | symbol): unknown {
    return key === this.scope.ns ? this.own.view(target[key]) : this.scope.readOnly(Reflect.get(target, key));
  }

  set(target: Record<string, unknown>, key: string | symbol, value: unknown): boolean {
    this.#open(key);
    this.journal.write(target, this.scope.ns, this.own.copy(value));
    return true;
  }

  deleteProperty(target: Record<string, unknown>, key: string | symbol): boolean {
    this.#open(key);
    this.journal.remove(target, this.scope.ns);
    return true;
  }

  defineProperty(): boolean {
    return this.scope.deny();
  }

  setPrototypeOf(): boolean {
    return this.scope.deny();
  }

  preventExtensions(): boolean {
    return this.scope.deny();
  }

  #open(key: string | symbol): void {
    if (key !== this.scope.ns) this.scope.deny();
    if (this.journal.closed) throw new TypeError(`${this.scope.own}: state written after its apply returned`);
  }
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
  if (!isPlainObject(e)) badEvent(handler, 'a non-object value');
  if (!handler.eventTypes.includes(e.type)) badEvent(handler, `type ${String(e.type)} it does not apply`);
  if (e.opId !== env.id || e.at !== env.at || e.vault !== env.claims.vault) badEvent(handler, 'wrong opId, at or vault');
  if (!isPlainObject(e.by) || e.by.sub !== env.claims.sub || e.by.jti !== env.claims.jti) badEvent(handler, 'wrong by');
  if (e.agent !== undefined && typeof e.agent !== 'string') badEvent(handler, 'a non-string agent');
  requireJson(e, `${handler.opcode} event`);
}

function badEvent(handler: OpcodeHandler, what: string): never {
  throw new TypeError(`handler ${handler.opcode} emitted an event with ${what}`);
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
