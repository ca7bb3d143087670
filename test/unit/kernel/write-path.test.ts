import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson } from '../../../protocol/canonical.js';
import type { KernelEvent, WorldState } from '../../../protocol/kernel.js';
import { Kernel, stateAt, stateColumn, type OpcodeHandler } from '../../../server/kernel/kernel.js';
import { deepCopy } from '../../../server/kernel/state.js';
import { claims, digest, envelope } from './helpers.js';

/**
 * Registered handlers write their namespace in place through the commit's undo journal. These tests drive a
 * handler that performs arbitrary JSON mutations, and check the journal against a plain-object model.
 */

type Path = (string | number)[];
/** One write a handler performs on `ext.box`. */
type Mutation =
  | { op: 'set'; path: Path; value: unknown }
  | { op: 'delete'; path: Path }
  | { op: 'push' | 'unshift'; path: Path; value: unknown }
  | { op: 'pop' | 'shift' | 'sort' | 'reverse'; path: Path }
  | { op: 'splice'; path: Path; start: number; remove: number; insert: unknown[] }
  | { op: 'length'; path: Path; length: number };

const perm = claims({ permissions: ['agent:*'] });

/** Resolve `path` from `root` through own members only; undefined when a step is missing or not a container. */
function at(root: unknown, path: Path): unknown {
  let cur = root;
  for (const step of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, step)) return undefined;
    cur = (cur as Record<string | number, unknown>)[step];
  }
  return cur;
}

/**
 * Perform one mutation on `box` (a live journaled view, or with `plain` the model), skipping ones that do not
 * fit or would leave holes in an array. The model defines a `__proto__` member as data, as the state does.
 */
function mutate(box: Record<string, unknown>, m: Mutation, plain = false): void {
  const parent = at(box, m.path.slice(0, -1));
  const target = at(box, m.path);
  const last = m.path[m.path.length - 1];
  switch (m.op) {
    case 'set':
      if (parent === null || typeof parent !== 'object') return;
      if (Array.isArray(parent) && (typeof last !== 'number' || last > parent.length)) return;
      if (plain && last === '__proto__') Object.defineProperty(parent, last, { value: deepCopy(m.value), enumerable: true, writable: true, configurable: true });
      else (parent as Record<string | number, unknown>)[last] = plain ? deepCopy(m.value) : m.value;
      return;
    case 'delete':
      if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) delete (parent as Record<string | number, unknown>)[last];
      return;
    case 'length':
      if (Array.isArray(target)) target.length = Math.min(m.length, target.length);
      return;
    case 'splice':
      if (Array.isArray(target)) target.splice(m.start, m.remove, ...m.insert);
      return;
    case 'push':
    case 'unshift':
      if (Array.isArray(target)) target[m.op](m.value);
      return;
    case 'sort':
      if (Array.isArray(target)) target.sort((a, b) => (JSON.stringify(a) ?? '').localeCompare(JSON.stringify(b) ?? ''));
      return;
    default:
      if (Array.isArray(target)) target[m.op]();
  }
}

/** A handler that applies the mutations its op carries to `ext.box`, one event per batch; `boom` fails. */
function mutator(): OpcodeHandler {
  return {
    opcode: 'Mutate',
    permission: 'agent:pause',
    namespace: 'box',
    eventTypes: ['Mutated'],
    execute: (env, view) => (env.op as unknown as { batches: unknown[] }).batches.map((batch) => view.event('Mutated', { batch })),
    apply(e, state) {
      if (state.ext.box === undefined) state.ext.box = { list: [], map: {} };
      for (const m of (e as KernelEvent & { batch: (Mutation | 'boom')[] }).batch) {
        if (m === 'boom') throw new Error('boom');
        mutate(state.ext.box as Record<string, unknown>, m);
      }
    },
  };
}

const json = fc.jsonValue({ maxDepth: 2 });
const key = fc.constantFrom('list', 'map', 'a', 'b', '__proto__', 'constructor');
const path = fc.array(fc.oneof(key, fc.nat({ max: 4 })), { minLength: 1, maxLength: 3 });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), path, value: json }),
  fc.record({ op: fc.constant('delete' as const), path }),
  fc.record({ op: fc.constantFrom('push' as const, 'unshift' as const), path, value: json }),
  fc.record({ op: fc.constantFrom('pop' as const, 'shift' as const, 'sort' as const, 'reverse' as const), path }),
  fc.record({ op: fc.constant('splice' as const), path, start: fc.integer({ min: -3, max: 5 }), remove: fc.nat({ max: 3 }), insert: fc.array(json, { maxLength: 3 }) }),
  fc.record({ op: fc.constant('length' as const), path, length: fc.nat({ max: 6 }) }),
);
const batch = fc.array(mutation, { maxLength: 6 });

describe('kernel write path of registered handlers (journaled, in place)', () => {
  it('a committed operation leaves exactly what the same writes give on plain objects', () => {
    fc.assert(
      fc.property(fc.array(batch, { minLength: 1, maxLength: 4 }), fc.array(batch, { minLength: 1, maxLength: 4 }), (first, second) => {
        const kernel = new Kernel();
        kernel.register(mutator());
        const model: Record<string, unknown> = { list: [], map: {} };
        for (const batches of [first, second]) {
          kernel.execute(envelope({ type: 'Mutate', batches }, perm));
          for (const b of deepCopy(batches)) for (const m of b) mutate(model, m, true);
        }
        assert.deepEqual(kernel.state.ext.box, model);
      }),
      { numRuns: 300 },
    );
  });

  it('a multi-event operation that fails in its last event rolls every write back exactly', () => {
    fc.assert(
      fc.property(fc.array(batch, { maxLength: 3 }), fc.array(batch, { minLength: 1, maxLength: 4 }), (setup, doomed) => {
        const kernel = new Kernel();
        kernel.register(mutator());
        if (setup.length > 0) kernel.execute(envelope({ type: 'Mutate', batches: setup }, perm));
        const before = deepCopy(kernel.state);
        const beforeDigest = digest(kernel.state);
        const lengths = JSON.stringify(kernel.state.ext.box ?? null, (_k, v: unknown) => (Array.isArray(v) ? [v.length, ...v] : v));
        assert.throws(() => kernel.execute(envelope({ type: 'Mutate', batches: [...doomed, ['boom']] }, perm)), /boom/);
        assert.equal(digest(kernel.state), beforeDigest);
        assert.deepEqual(kernel.state, before);
        // Arrays have their old length and no holes (deepEqual and digests do not see a hole).
        assert.equal(JSON.stringify(kernel.state.ext.box ?? null, (_k, v: unknown) => (Array.isArray(v) ? [v.length, ...v] : v)), lengths);
        const holes = (v: unknown): boolean =>
          v !== null && typeof v === 'object' && (Array.isArray(v) ? v.some((x, i) => !(i in v) || holes(x)) || v.length !== Object.keys(v).length : Object.values(v).some(holes));
        assert.equal(holes(kernel.state.ext.box), false);
      }),
      { numRuns: 300 },
    );
  });

  it('a commit copies nothing it does not write: untouched parts of the namespace keep their identity', () => {
    const kernel = new Kernel();
    kernel.register(mutator());
    kernel.execute(envelope({ type: 'Mutate', batches: [[{ op: 'set', path: ['map', 'big'], value: { deep: [1, 2, 3] } }]] }, perm));
    const big = (kernel.state.ext.box as { map: { big: unknown } }).map.big;
    kernel.execute(envelope({ type: 'Mutate', batches: [[{ op: 'push', path: ['list'], value: 1 }]] }, perm));
    assert.equal((kernel.state.ext.box as { map: { big: unknown } }).map.big, big, 'the big value was not copied by a commit that did not touch it');
  });

  it('stores copies: state never aliases the event, another part of the state, or a view', () => {
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Alias', permission: 'agent:pause', namespace: 'alias', eventTypes: ['Aliased'],
      execute: (_env, view) => [view.event('Aliased', { value: { n: 1 } })],
      apply(e, state) {
        state.ext.alias = { a: (e as KernelEvent & { value: unknown }).value };
        const ns = state.ext.alias as { a: { n: number }; b?: { n: number } };
        ns.b = ns.a;
        ns.a.n = 2;
      },
    });
    const [event] = kernel.execute(envelope({ type: 'Alias' }, perm)) as (KernelEvent & { value: { n: number } })[];
    assert.deepEqual(kernel.state.ext.alias, { a: { n: 2 }, b: { n: 1 } });
    assert.equal(event.value.n, 1, 'the returned event is not the state');
  });

  it('a view written elsewhere stores its data as it is at the write, detached or not, never the object behind it', () => {
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Move', permission: 'agent:pause', namespace: 'move', eventTypes: ['Moved'],
      execute: (_env, view) => [view.event('Moved', {})],
      apply(_e, state) {
        state.ext.move = { from: { a: { n: 1, deep: { m: 1 } } }, to: {} };
        const ns = state.ext.move as { from: Record<string, { n: number; deep: { m: number } }>; to: Record<string, unknown>; self?: unknown };
        const a = ns.from.a;
        delete ns.from.a;
        ns.to.a = a;
        a.n = 5;
        a.deep.m = 7;
        ns.to.deep = a.deep;
        (ns.to.a as { n: number }).n = 2;
        ns.self = ns;
        ns.to.agents = state.agents;
      },
    });
    kernel.execute(envelope({ type: 'Move' }, perm));
    const agents = deepCopy(kernel.state.agents);
    assert.deepEqual(kernel.state.ext.move, {
      from: {},
      to: { a: { n: 2, deep: { m: 1 } }, deep: { m: 7 }, agents },
      self: { from: {}, to: { a: { n: 2, deep: { m: 1 } }, deep: { m: 7 } } },
    });
    const ns = kernel.state.ext.move as { to: { a: { deep: unknown }; deep: unknown; agents: unknown } };
    assert.notEqual(ns.to.a.deep, ns.to.deep);
    assert.notEqual(ns.to.agents, kernel.state.agents);
  });

  it('state keeps nothing of the caller: changing returned events or their operation afterwards changes no state', () => {
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Store', permission: 'agent:pause', namespace: 'store', eventTypes: ['Stored'],
      execute: (env, view) => [view.event('Stored', { value: (env.op as unknown as { value: unknown }).value })],
      apply(e, state) {
        state.ext.store = { value: (e as KernelEvent & { value: unknown }).value, again: (e as KernelEvent & { value: unknown }).value };
      },
    });
    const op = { type: 'Store', value: { list: [1, { n: 1 }] } };
    const [event] = kernel.execute(envelope(op, perm)) as (KernelEvent & { value: { list: [number, { n: number }] } })[];
    const before = digest(kernel.state);
    event.value.list[1].n = 9;
    event.value.list.push(3);
    op.value.list[0] = 9;
    assert.equal(digest(kernel.state), before);
    const ns = kernel.state.ext.store as { value: unknown; again: unknown };
    assert.deepEqual(ns.value, { list: [1, { n: 1 }] });
    assert.notEqual(ns.value, ns.again);
  });

  it('a throwing handler leaves the state byte-identical, and later applies see the state outside ext as it is then', () => {
    const seen: boolean[] = [];
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Peek', permission: 'agent:pause', namespace: 'peek', eventTypes: ['Peeked'],
      execute: (env, view) => [view.event('Peeked', { fail: (env.op as unknown as { fail: boolean }).fail })],
      apply(e, state) {
        seen.push(state.revokedTokensByVault !== undefined && Object.hasOwn(state.revokedTokensByVault, 'A'));
        state.ext.peek = { count: ((state.ext.peek as { count?: number } | undefined)?.count ?? 0) + 1, deep: { list: [1] } };
        (state.ext.peek as { deep: { list: number[] } }).deep.list.push(2);
        if ((e as KernelEvent & { fail: boolean }).fail) throw new Error('boom');
      },
    });
    kernel.execute(envelope({ type: 'Peek', fail: false }, perm));
    const before = canonicalJson(kernel.state);
    assert.throws(() => kernel.execute(envelope({ type: 'Peek', fail: true }, perm)), /boom/);
    assert.equal(canonicalJson(kernel.state), before);
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'jti-alice', exp: perm.exp }, perm));
    kernel.execute(envelope({ type: 'Peek', fail: false }, perm));
    assert.deepEqual(seen, [false, false, true]);
    assert.deepEqual(kernel.state.ext.peek, { count: 2, deep: { list: [1, 2] } });
  });

  it('refuses writes through a view kept past its apply, and non-JSON writes', () => {
    let kept: Record<string, unknown> | undefined;
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Keep', permission: 'agent:pause', namespace: 'keep', eventTypes: ['Kept'],
      execute: (_env, view) => [view.event('Kept', {})],
      apply(_e, state) {
        state.ext.keep = { n: 1 };
        kept = state.ext.keep as Record<string, unknown>;
      },
    });
    kernel.register({
      opcode: 'Odd', permission: 'agent:pause', namespace: 'keep', eventTypes: ['Odd'],
      execute: (_env, view) => [view.event('Odd', {})],
      apply(_e, state) {
        Object.defineProperty(state.ext.keep as object, 'n', { get: () => 3 });
      },
    });
    kernel.execute(envelope({ type: 'Keep' }, perm));
    const before = digest(kernel.state);
    assert.throws(() => {
      kept!.n = 99;
    }, /after its apply returned/);
    assert.throws(() => {
      delete kept!.n;
    }, /after its apply returned/);
    assert.throws(() => kernel.execute(envelope({ type: 'Odd' }, perm)), TypeError);
    assert.equal(digest(kernel.state), before);
    assert.deepEqual((kernel.state as WorldState).ext.keep, { n: 1 });
  });

  it('apply gets the event read-only and readable only while it runs; its parts written to the state are copies', () => {
    let kept: { value: { list: unknown[] } } | undefined;
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Read', permission: 'agent:pause', namespace: 'read', eventTypes: ['Read'],
      execute: (env, view) => [view.event('Read', { value: (env.op as unknown as { value: unknown }).value, change: (env.op as unknown as { change: string }).change })],
      apply(event, state) {
        const e = event as KernelEvent & { value: { list: unknown[]; n: number }; change: string };
        kept = e;
        state.ext.read = { value: e.value, list: e.value.list };
        if (e.change === 'member') e.value.n = 2;
        if (e.change === 'nested') e.value.list.push(3);
        if (e.change === 'delete') delete (e as Partial<typeof e>).change;
      },
    });
    const [event] = kernel.execute(envelope({ type: 'Read', value: { list: [1, { n: 1 }], n: 1 }, change: 'none' }, perm)) as (KernelEvent & {
      value: { list: [number, { n: number }] };
    })[];
    assert.deepEqual(kernel.state.ext.read, { value: { list: [1, { n: 1 }], n: 1 }, list: [1, { n: 1 }] });
    const ns = kernel.state.ext.read as { value: { list: unknown }; list: unknown };
    assert.notEqual(ns.value.list, ns.list, 'each write stores its own copy');
    event.value.list[1].n = 9;
    assert.deepEqual(ns.list, [1, { n: 1 }], 'the state shares nothing with the returned event');
    assert.throws(() => kept!.value, /handler Read: the event applied read after its apply returned/);
    const before = digest(kernel.state);
    for (const change of ['member', 'nested', 'delete']) {
      const op = { type: 'Read', value: { list: [5], n: 5 }, change };
      assert.throws(() => kernel.execute(envelope(op, perm)), /handler Read: the event applied is read-only/);
      assert.deepEqual(op, { type: 'Read', value: { list: [5], n: 5 }, change }, 'the operation is unchanged');
      assert.equal(digest(kernel.state), before, 'the failed apply is rolled back');
    }
  });

  it('stateColumn reads a map through any view as its plain object: keys, primitive fields, nothing writable', () => {
    const seen: unknown[] = [];
    const kernel = new Kernel();
    kernel.register({
      opcode: 'Col', permission: 'agent:pause', namespace: 'col', eventTypes: ['Col'],
      execute(_env, view) {
        const ns = view.ext('col') as { map: object } | undefined;
        if (ns !== undefined) seen.push(stateColumn(ns.map, 'at'));
        return [view.event('Col', { map: { x: { at: 3 }, y: { at: { deep: 1 } }, z: 7 } })];
      },
      apply(event, state) {
        const e = event as KernelEvent & { map: object };
        seen.push(stateColumn(e.map, 'at'));
        if (state.ext.col === undefined) state.ext.col = { map: { b: { at: 2, other: 'o' }, a: { at: 'one' }, c: { at: null } } };
        const map = (state.ext.col as { map: Record<string, unknown> }).map;
        const col = stateColumn(map, 'at');
        col.keys.push('zz');
        col.values[0] = 'changed';
        seen.push(stateColumn(map, 'at'), stateColumn(map), stateColumn(state.agents));
      },
    });
    kernel.execute(envelope({ type: 'Col' }, perm));
    kernel.execute(envelope({ type: 'Col' }, perm));
    const map = { keys: ['b', 'a', 'c'], values: [2, 'one', null] };
    const fromEvent = { keys: ['x', 'y', 'z'], values: [3, undefined, undefined] };
    const agents = { keys: Object.keys(kernel.state.agents), values: [] };
    assert.deepEqual(seen, [fromEvent, map, { keys: map.keys, values: [] }, agents, map, fromEvent, map, { keys: map.keys, values: [] }, agents]);
    assert.deepEqual(stateColumn({ p: { at: 1 } }, 'at'), { keys: ['p'], values: [1] });
    assert.deepEqual(kernel.state.ext.col, { map: { b: { at: 2, other: 'o' }, a: { at: 'one' }, c: { at: null } } });
  });

  it('stateAt walks own members behind any view and hands out what the view would: writable, read-only or closed', () => {
    const found: unknown[] = [];
    let keptEvent: object | undefined;
    let keptAt: unknown;
    const kernel = new Kernel();
    kernel.register({
      opcode: 'At', permission: 'agent:pause', namespace: 'at', eventTypes: ['At'],
      execute(_env, view) {
        const ns = view.ext('at') as object | undefined;
        if (ns !== undefined) {
          const rec = stateAt(ns, 'map', 'k') as { n: number };
          found.push(rec.n, stateAt(ns, 'map', 'k', 'n'), stateAt(ns, 'map', 'toString'), stateAt(ns, 'map', 'k', 'n', 'deeper'));
          assert.throws(() => {
            rec.n = 5;
          }, /KernelView is read-only/);
        }
        return [view.event('At', { deep: { list: [{ v: 1 }] } })];
      },
      apply(event, state) {
        keptEvent = event;
        const item = stateAt(event, 'deep', 'list', '0') as { v: number };
        found.push(item.v);
        assert.throws(() => {
          item.v = 2;
        }, /the event applied is read-only/);
        if (state.ext.at === undefined) state.ext.at = { map: { k: { n: 1 } } };
        const rec = stateAt(state.ext.at as object, 'map', 'k') as { n: number };
        rec.n += 1;
        (state.ext.at as { copy?: unknown }).copy = stateAt(event, 'deep');
        found.push(stateAt(state.agents, 'nobody'), stateAt(state.ext, 'at', 'map', 'k', 'n'));
        keptAt = stateAt(state.ext.at as object, 'map', 'k');
        assert.throws(() => {
          (stateAt(state.agents, Object.keys(state.agents)[0]) as { name: string }).name = 'x';
        }, /state outside ext.at is read-only/);
      },
    });
    kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name: 'a' } }, perm));
    kernel.execute(envelope({ type: 'At' }, perm));
    kernel.execute(envelope({ type: 'At' }, perm));
    assert.deepEqual(found, [1, undefined, 2, 2, 2, undefined, undefined, 1, undefined, 3]);
    assert.deepEqual(kernel.state.ext.at, { map: { k: { n: 3 } }, copy: { list: [{ v: 1 }] } });
    assert.throws(() => stateAt(keptEvent!, 'deep'), /read after its apply returned/);
    assert.throws(() => {
      (keptAt as { n: number }).n = 9;
    }, /after its apply returned/);
    assert.equal(stateAt({ a: { b: 0 } }, 'a', 'b'), 0);
    assert.equal(stateAt({ a: 1 }, 'a', 'b'), undefined);
  });
});
