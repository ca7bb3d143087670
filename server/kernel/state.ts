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
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    // A `__proto__` member (JSON.parse makes it an own property) must stay data, not become the prototype.
    if (k === '__proto__') Object.defineProperty(out, k, { value: deepCopy(v), enumerable: true, writable: true, configurable: true });
    else out[k] = deepCopy(v);
  }
  return out as T;
}

/** Deep copy of a restored snapshot, rejecting anything that is not shaped like a `WorldState`. */
export function restoreState(state: unknown): WorldState {
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
  return deepCopy(state as unknown as WorldState);
}

/**
 * Undo journal for one commit. Every write to the live state goes through it, recording how to undo itself,
 * so a commit that fails part-way is rolled back in O(writes) — no copy of the state per operation.
 * Entries are kept flat (target, key, previous value, whether the key existed) to allocate nothing per write.
 */
export class Journal {
  #entries: unknown[] = [];

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

  /** Undo every recorded write, newest first. */
  rollback(): void {
    const e = this.#entries;
    for (let i = e.length - 4; i >= 0; i -= 4) {
      const target = e[i] as Record<string, unknown>;
      const key = e[i + 1] as string;
      if (e[i + 3]) target[key] = e[i + 2];
      else delete target[key];
    }
    this.#entries = [];
  }
}

/**
 * A deep read-only view of `value`: reads see the live data, any write throws a `TypeError` naming `label`.
 * Costs nothing up front (nested objects are wrapped when read).
 */
export function readOnly<T>(value: T, label: string): T {
  if (value === null || typeof value !== 'object') return value;
  const deny = (): never => {
    throw new TypeError(`${label} is read-only`);
  };
  return new Proxy(value as object, {
    get: (target, key, receiver) => readOnly(Reflect.get(target, key, receiver), label),
    set: deny,
    defineProperty: deny,
    deleteProperty: deny,
    setPrototypeOf: deny,
    preventExtensions: deny,
  }) as T;
}
