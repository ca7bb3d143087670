/**
 * World-state helpers: the empty state, JSON deep copies, copy-on-write working copies and read-only views.
 */
import type { WorldState } from '../../protocol/kernel.js';
import { KernelError } from './errors.js';
import { isPlainObject } from './validate.js';

const STATE_FIELDS = ['agents', 'tasks', 'observations', 'roots', 'grants', 'revokedTokens', 'ext'] as const;
/** Fields absent until first used, so that states (and digests) from before they existed are unchanged. */
const OPTIONAL_STATE_FIELDS = ['revokedTokensByVault'] as const;

/** The state of a kernel that has applied no event. */
export function emptyState(): WorldState {
  return { agents: {}, tasks: {}, observations: {}, roots: {}, grants: {}, revokedTokens: {}, ext: {} };
}

/** Deep copy of a plain JSON value (`undefined` object members are dropped, as JSON does). */
export function deepCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => deepCopy(v)) as T;
  const src = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(src)) {
    const v = src[k];
    if (v === undefined) continue;
    // A `__proto__` member (JSON.parse makes it an own property) must stay data, not become the prototype.
    if (k === '__proto__') Object.defineProperty(out, k, { value: deepCopy(v), enumerable: true, writable: true, configurable: true });
    else out[k] = deepCopy(v);
  }
  return out as T;
}

/** A restored snapshot (a deep copy when `copy`), rejecting anything that is not shaped like a `WorldState`. */
export function restoreState(state: unknown, copy = true): WorldState {
  if (!isPlainObject(state)) throw KernelError.invalid('snapshot state must be an object');
  for (const f of STATE_FIELDS) {
    if (!isPlainObject(state[f])) throw KernelError.invalid(`snapshot state.${f} must be an object`);
  }
  if (state.revokedTokensByVault !== undefined) {
    if (!isPlainObject(state.revokedTokensByVault) || !Object.values(state.revokedTokensByVault).every(isPlainObject)) {
      throw KernelError.invalid('snapshot state.revokedTokensByVault must be an object of objects');
    }
  }
  for (const k of Object.keys(state)) {
    if (!(STATE_FIELDS as readonly string[]).includes(k) && !(OPTIONAL_STATE_FIELDS as readonly string[]).includes(k)) {
      throw KernelError.invalid(`snapshot state: unknown field ${k}`);
    }
  }
  return copy ? deepCopy(state as unknown as WorldState) : (state as unknown as WorldState);
}

/**
 * Undo journal for one commit. Every write to the live state goes through it, recording how to undo itself,
 * so a commit that fails part-way is rolled back in O(writes) — no copy of the state per operation.
 * Entries are kept flat (target, key, previous value, whether the key existed) to allocate nothing per write.
 */
export class Journal {
  #entries: unknown[] = [];
  #closed = false;

  /** `map[key] = value`, remembering the previous value (or its absence). */
  set<T>(map: Record<string, T>, key: string, value: T): void {
    const had = Object.hasOwn(map, key);
    this.#entries.push(map, key, had ? map[key] : undefined, had);
    map[key] = value;
  }

  /** `list.push(item)`, remembering the length to go back to. */
  push<T>(list: T[], item: T): void {
    this.#entries.push(list, 'length', list.length, true);
    list.push(item);
  }

  /**
   * `target[key] = value` on any object or array of the state (the write path of registered handlers). An
   * array's length is recorded before an element write that may grow it, and the elements a shorter length
   * cuts off are recorded before the cut, so rollback restores the array exactly. `__proto__` stays data.
   */
  write(target: Record<string, unknown> | unknown[], key: string, value: unknown): void {
    const t = target as Record<string, unknown>;
    if (Array.isArray(target)) {
      if (key === 'length') {
        for (let i = target.length - 1; i >= (value as number); i--) this.#record(t, String(i));
      } else {
        this.#record(t, 'length');
      }
    }
    this.#record(t, key);
    put(t, key, value);
  }

  /**
   * `delete target[key]`, remembering the previous value and, for an object, its member order (O(members)):
   * a member put back would otherwise come last, and live state must iterate exactly like replayed state.
   */
  remove(target: Record<string, unknown> | unknown[], key: string): void {
    const t = target as Record<string, unknown>;
    if (!Object.hasOwn(t, key)) return;
    if (!Array.isArray(target)) this.#entries.push(t, MEMBER_ORDER, Object.keys(t), true);
    this.#record(t, key);
    delete t[key];
  }

  /** Undo every recorded write, newest first. */
  rollback(): void {
    const e = this.#entries;
    for (let i = e.length - 4; i >= 0; i -= 4) {
      const target = e[i] as Record<string, unknown>;
      const key = e[i + 1] as string | typeof MEMBER_ORDER;
      if (key === MEMBER_ORDER) reorder(target, e[i + 2] as string[]);
      else if (e[i + 3]) put(target, key, e[i + 2]);
      else delete target[key];
    }
    this.#entries = [];
  }

  /** The commit is over (applied or rolled back): writes through it are refused from now on. */
  close(): void {
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #record(target: Record<string, unknown>, key: string): void {
    const had = Object.hasOwn(target, key);
    this.#entries.push(target, key, had ? target[key] : undefined, had);
  }
}

/** Journal entry key: the member order of an object before a delete. */
const MEMBER_ORDER = Symbol('member order');

/** Re-insert the members of `target` in `order` (its members now, once every newer write is undone). */
function reorder(target: Record<string, unknown>, order: string[]): void {
  for (const key of order) {
    const value = target[key];
    delete target[key];
    put(target, key, value);
  }
}

/** `target[key] = value`, with a `__proto__` key defined as an own data property instead of setting the prototype. */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * A deep read-only view of `value`: reads see the live data, any write throws a `TypeError` naming `label`.
 * Costs nothing up front (nested objects are wrapped when read, all by one handler).
 */
export function readOnly<T>(value: T, label: string): T {
  return wrap(value, new ReadOnlyHandler(label));
}

/** `readOnly` for any number of values, all viewed through one handler. */
export function readOnlyViews(label: string): <T>(value: T) => T {
  const handler = new ReadOnlyHandler(label);
  return (value) => wrap(value, handler);
}

function wrap<T>(value: T, handler: ProxyHandler<object>): T {
  return value === null || typeof value !== 'object' ? value : (new Proxy(value as object, handler) as T);
}

/**
 * The key through which `stateColumn` asks a view of the kernel to read the object behind it directly (a read
 * through a view costs a trap, and one of an object a new view). What it yields holds only strings and primitives.
 */
const COLUMN = Symbol('column');

/** The member names of `map` and the value of `field` of each member: a primitive, else undefined. */
export interface StateColumn {
  keys: string[];
  values: unknown[];
}

/**
 * The member names of `map`, an object or array of the state or a kernel view of one (`Object.keys`), and for
 * each member the value of its own `field` when that is a primitive (string, number, boolean, null; anything
 * else reads as undefined). A handler lists a map, or chooses among its records (say the oldest), with it at the
 * cost of reading plain objects: listing a view's keys costs ~100× a plain object's, and reading through views
 * a trap per read and a new view per object.
 */
export function stateColumn(map: object, field?: string): StateColumn {
  const read = (map as { [COLUMN]?: unknown })[COLUMN];
  return typeof read === 'function' ? (read as (field?: string) => StateColumn)(field) : column(map, field);
}

function column(target: object, field: string | undefined): StateColumn {
  const keys = Object.keys(target);
  const values: unknown[] = [];
  if (field !== undefined) {
    const t = target as Record<string, unknown>;
    for (const key of keys) {
      const member = t[key];
      const value = member !== null && typeof member === 'object' && Object.hasOwn(member, field) ? (member as Record<string, unknown>)[field] : undefined;
      values.push(value !== null && typeof value === 'object' ? undefined : value);
    }
  }
  return { keys, values };
}

/**
 * The key through which `stateAt` asks a view of the kernel to walk a path from the object behind it; the
 * value found is handed out as the view would hand it out (a primitive as is, an object as a view).
 */
const AT = Symbol('at');

/**
 * The value at `path` below `value` (an object of the state or of an event, or a kernel view of one), own
 * members only: undefined when a step is missing, inherited or not an object. Through a view, the steps read
 * the plain objects behind it (no trap or view per step) and the value found comes back as reading it step by
 * step through the view would give it: a primitive as is, an object as a view with the same rights.
 */
export function stateAt(value: object, ...path: string[]): unknown {
  const at = (value as { [AT]?: unknown })[AT];
  return typeof at === 'function' ? (at as (path: string[]) => unknown)(path) : walk(value, path);
}

function walk(target: object, path: string[]): unknown {
  let cur: unknown = target;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** What a view's trap answers for `AT`: a walker of the object behind the view, whose finds `show` wraps. */
function atOf(target: object, show: (value: object) => unknown): (path: string[]) => unknown {
  return (path) => {
    const found = walk(target, path);
    return found === null || typeof found !== 'object' ? found : show(found);
  };
}

/** What a view's trap answers for `COLUMN`: a reader of the object behind the view. */
function columnOf(target: object): (field?: string) => StateColumn {
  return (field) => column(target, field);
}

/** The traps every read-only view shares: any change is refused with a `TypeError` naming what it shows. */
abstract class RefusingChanges implements ProxyHandler<object> {
  abstract readonly label: string;

  set(): boolean {
    return this.deny();
  }

  defineProperty(): boolean {
    return this.deny();
  }

  deleteProperty(): boolean {
    return this.deny();
  }

  setPrototypeOf(): boolean {
    return this.deny();
  }

  preventExtensions(): boolean {
    return this.deny();
  }

  deny(): never {
    throw new TypeError(`${this.label} is read-only`);
  }
}

class ReadOnlyHandler extends RefusingChanges {
  constructor(readonly label: string) {
    super();
  }

  get(target: object, key: string | symbol, receiver: unknown): unknown {
    if (key === COLUMN) return columnOf(target);
    if (key === AT) return atOf(target, (found) => wrap(found, this));
    return wrap(Reflect.get(target, key, receiver), this);
  }
}

/**
 * The handler of the views of an event a registered handler applies: read-only, and readable only while its
 * `apply` runs (the handler must not keep the event: the caller owns it once the commit is over). Each view
 * made is remembered by the commit's writable views, so a part of the event written to the state is copied
 * from the event's own object.
 */
class EventViewHandler extends RefusingChanges {
  constructor(
    readonly owner: JournaledHandler,
    readonly label: string,
  ) {
    super();
  }

  get(target: object, key: string | symbol): unknown {
    this.#open();
    // The readers handed out for `COLUMN` and `AT` are refused after the apply too.
    if (key === COLUMN) {
      return (field?: string) => {
        this.#open();
        return column(target, field);
      };
    }
    if (key === AT) {
      return (path: string[]) => {
        this.#open();
        return this.#show(walk(target, path));
      };
    }
    return this.#show(Reflect.get(target, key));
  }

  #show(value: unknown): unknown {
    return value === null || typeof value !== 'object' ? value : this.owner.remember(new Proxy(value, this), value);
  }

  /** Reads are refused once the apply has returned (the event is the caller's again). */
  #open(): void {
    if (this.owner.journal.closed) throw new TypeError(`${this.label} read after its apply returned`);
  }
}

/**
 * The handler of the writable views of one commit (`view`): every write and delete, at any depth, goes through
 * `journal` (so rollback undoes it) and stores a deep copy of the value written (so state never aliases an
 * event, another part of the state, or a view). Costs nothing up front: nested objects are wrapped when read.
 * Once the commit is over, writes through its views throw a `TypeError` naming `label`. It remembers the state
 * object behind each view it made, so that a write of one of its views copies that object directly: the same
 * plain data, without a trap per member (copying through the view would wrap every nested object to read it).
 */
export class JournaledHandler implements ProxyHandler<object> {
  #readOnly: ReadOnlyHandler | undefined;
  /** The state object behind each view made, from the first view on. */
  #shown: Map<object, object> | undefined;

  constructor(
    readonly journal: Journal,
    readonly label: string,
  ) {}

  /** A writable view of `value` (a primitive as is). */
  view<T>(value: T): T {
    if (value === null || typeof value !== 'object') return value;
    return this.remember(new Proxy(value as object, this), value as object) as T;
  }

  /**
   * The read-only view of an event that `apply` is given instead of a copy: reads see the event as the
   * handler returned it (or the log holds it), writes throw, and so does any read once the commit is over.
   */
  event<T extends object>(event: T, label: string): T {
    return this.remember(new Proxy(event, new EventViewHandler(this, label)), event) as T;
  }

  /** Record that `view` shows `target`, so that writing the view stores a copy of `target`. */
  remember(view: object, target: object): object {
    (this.#shown ??= new Map()).set(view, target);
    return view;
  }

  /** The deep copy of `value` a write stores in the state (never the value itself, nor a part of it). */
  copy(value: unknown): unknown {
    if (value === null || typeof value !== 'object') return value;
    return deepCopy(this.#shown?.get(value) ?? value);
  }

  /** Own members are writable state; an inherited one (`__proto__`, a method) is read-only. */
  get(target: object, key: string | symbol): unknown {
    if (key === COLUMN) return columnOf(target);
    if (key === AT) return atOf(target, (found) => this.view(found));
    const value = Reflect.get(target, key);
    if (value === null || typeof value !== 'object') return value;
    return Object.hasOwn(target, key) ? this.view(value) : wrap(value, (this.#readOnly ??= new ReadOnlyHandler(this.label)));
  }

  set(target: object, key: string | symbol, value: unknown): boolean {
    this.journal.write(target as Record<string, unknown>, this.#open(key), this.copy(value));
    return true;
  }

  deleteProperty(target: object, key: string | symbol): boolean {
    this.journal.remove(target as Record<string, unknown>, this.#open(key));
    return true;
  }

  defineProperty(): boolean {
    return this.#deny();
  }

  setPrototypeOf(): boolean {
    return this.#deny();
  }

  preventExtensions(): boolean {
    return this.#deny();
  }

  #open(key: string | symbol): string {
    if (this.journal.closed) throw new TypeError(`${this.label}: state written after its apply returned`);
    if (typeof key === 'symbol') this.#deny();
    return key as string;
  }

  #deny(): never {
    throw new TypeError(`${this.label}: only assignment and delete of plain JSON may change the state`);
  }
}
