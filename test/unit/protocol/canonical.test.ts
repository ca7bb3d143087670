/**
 * Canonical JSON is what every record hash and state digest covers, so its bytes must never change: these
 * tests hold the encoder to its definition (each piece as `JSON.stringify` writes it, object members sorted by
 * UTF-16 code units, `undefined` members dropped), written out plainly here, over arbitrary values.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson } from '../../../protocol/canonical.js';

/** The definition, with no shortcut. */
function reference(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('non-finite');
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const members = Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`);
  return `{${members.join(',')}}`;
}

/** Strings with what needs escaping: controls, quotes, backslashes, lone and paired surrogates, U+2028. */
const awkward = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u2028', '\ud800', '\udc00', '\ud83d\ude00', 'é') }),
);
/** Member names too: integer-like ones (which objects list first), `__proto__`, awkward strings. */
const name = fc.oneof(awkward, fc.constantFrom('0', '1', '10', '2', '__proto__', 'a', 'B', ''), fc.nat().map(String));
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(awkward, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constantFrom(0, -0, 1e21, 5e-7, true, false, null)),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('array'), tie('object')),
  array: fc.array(fc.oneof(tie('node'), fc.constant(undefined)), { maxLength: 5 }),
  object: fc.array(fc.tuple(name, fc.oneof(tie('node'), fc.constant(undefined))), { maxLength: 6 }).map((entries) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  }),
}));

describe('canonicalJson', () => {
  it('writes exactly the definition for any JSON value (keys sorted, undefined dropped, JSON.stringify pieces)', () => {
    fc.assert(
      fc.property(value.node, (v) => {
        assert.equal(canonicalJson(v), reference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('known encodings: member order, escapes, numbers', () => {
    assert.equal(canonicalJson({ b: 1, a: [undefined, -0, 1e21], c: undefined, '10': 'x', '2': 'y' }), '{"10":"x","2":"y","a":[null,0,1e+21],"b":1}');
    assert.equal(canonicalJson({ s: 'q"\\\n\u0001\ud800\u2028é' }), '{"s":"q\\"\\\\\\n\\u0001\\ud800\u2028é"}');
    assert.equal(canonicalJson(JSON.parse('{"__proto__":{"z":1,"a":2}}')), '{"__proto__":{"a":2,"z":1}}');
  });

  it('refuses what JSON cannot carry', () => {
    for (const bad of [NaN, Infinity, { n: -Infinity }, [() => 1], { f: Symbol('s') }, 1n]) {
      assert.throws(() => canonicalJson(bad), TypeError);
    }
  });
});
