/**
 * Canonical JSON: the one byte encoding used for hashing (event chain, state digests).
 * Object keys are sorted by UTF-16 code unit order, `undefined` members are dropped (`undefined` array
 * items become `null`), arrays keep order, numbers must be finite. Two values that are deep-equal encode
 * to the same string. Pure (no Node imports): usable by kernel, store, host and extension alike.
 *
 * Every piece is what `JSON.stringify` gives for it; this runs once per event on the submit hot path and
 * over the whole state for a snapshot, so the common cases skip the native call: a string with nothing to
 * escape is quoted as is, a finite number is written with `String` (the same digits), and an object whose keys
 * are already in order is not sorted.
 */
export function canonicalJson(value: unknown): string {
  return encode(value);
}

/**
 * Characters `JSON.stringify` escapes in a string (controls, quote, backslash, lone surrogates), plus paired
 * surrogates: a string without any is encoded as itself between quotes.
 */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

function encodeString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function encode(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number ${value}`);
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item = value[i];
          out += item === undefined ? 'null' : encode(item);
        }
        return `${out}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj);
      for (let i = 1; i < keys.length; i++) {
        if (keys[i - 1] > keys[i]) {
          keys.sort();
          break;
        }
      }
      let out = '{';
      let first = true;
      for (const key of keys) {
        const member = obj[key];
        if (member === undefined) continue;
        if (first) first = false;
        else out += ',';
        out += `${encodeString(key)}:${encode(member)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  }
}
