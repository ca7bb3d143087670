/**
 * Shape and limit checks for untrusted input (operations arrive from the wire as JSON).
 * Each check throws a `KernelError`: `InvalidOperation` for a malformed value, `LimitExceeded` for a bound.
 */
import { isWellFormedText } from '../../protocol/capability.js';
import { KernelError } from './errors.js';

/** Kernel bounds that are not in `KERNEL_LIMITS` (protocol) but are enforced the same way. */
export const KERNEL_INPUT_LIMITS = {
  /** Longest id (agent, grant, task, jti, operation) in characters. */
  idChars: 256,
  /** Deepest nesting of arrays/objects in observation data and extension events. */
  jsonDepth: 64,
} as const;

/** Number of bytes of the UTF-8 encoding of `s` (a lone surrogate counts as U+FFFD: 3 bytes). */
export function utf8ByteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Length of `s` in characters (Unicode code points). */
function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Throws `LimitExceeded` (`limit`, `max`, actual count) when `s` has more than `max` code points. A string of
 * at most `max` UTF-16 units cannot have more code points, so only longer ones are counted.
 */
function boundChars(s: string, limit: string, max: number): void {
  if (s.length <= max) return;
  const n = charCount(s);
  if (n > max) throw KernelError.limit(limit, max, n);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Rejects members of `obj` other than `allowed`. */
export function onlyFields(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw KernelError.invalid(`${where}: unknown field ${JSON.stringify(k)}`);
  }
}

export function requireObject(v: unknown, where: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw KernelError.invalid(`${where} must be an object`);
  return v;
}

/** A string that is well-formed UTF-16 (see `isWellFormedText`). */
export function requireString(v: unknown, where: string): string {
  if (typeof v !== 'string') throw KernelError.invalid(`${where} must be a string`);
  if (!isWellFormedText(v)) throw KernelError.invalid(`${where} is not well-formed Unicode (lone surrogate)`);
  return v;
}

/** A non-blank string of at most `max` characters; `limit` names the bound. */
export function requireText(v: unknown, where: string, limit: string, max: number): string {
  const s = requireString(v, where);
  if (s.trim() === '') throw KernelError.invalid(`${where} must not be blank`);
  boundChars(s, limit, max);
  return s;
}

/** An optional string of at most `max` characters (blank allowed). */
export function optionalText(v: unknown, where: string, limit: string, max: number): string | undefined {
  if (v === undefined) return undefined;
  const s = requireString(v, where);
  boundChars(s, limit, max);
  return s;
}

/** A non-empty id of at most `KERNEL_INPUT_LIMITS.idChars` characters. */
export function requireId(v: unknown, where: string): string {
  const s = requireString(v, where);
  if (s === '') throw KernelError.invalid(`${where} must not be empty`);
  if (s === '__proto__') throw KernelError.invalid(`${where} must not be __proto__`);
  boundChars(s, 'idChars', KERNEL_INPUT_LIMITS.idChars);
  return s;
}

/** A non-negative safe integer. */
export function requireTime(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw KernelError.invalid(`${where} must be a non-negative integer`);
  }
  return v;
}

export function requireStringArray(v: unknown, where: string): string[] {
  if (!Array.isArray(v)) throw KernelError.invalid(`${where} must be an array of strings`);
  v.forEach((x, i) => requireString(x, `${where}[${i}]`));
  return v as string[];
}

/**
 * Checks that `value` is plain JSON (null, booleans, finite numbers, well-formed strings and member names,
 * arrays, plain objects; no `undefined`, no cycles) nested at most `KERNEL_INPUT_LIMITS.jsonDepth` deep. Iterative, so hostile
 * nesting cannot exhaust the stack.
 */
export function requireJson(value: unknown, where: string): void {
  const max = KERNEL_INPUT_LIMITS.jsonDepth;
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v === 'boolean') continue;
    if (typeof v === 'string') {
      requireString(v, where);
      continue;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw KernelError.invalid(`${where}: non-finite number`);
      continue;
    }
    if (Array.isArray(v) || isPlainObject(v)) {
      if (depth >= max) throw KernelError.limit('jsonDepth', max, depth + 1);
      if (!Array.isArray(v)) for (const k of Object.keys(v)) requireString(k, `${where}: member name`);
      const children = Array.isArray(v) ? v : Object.values(v);
      for (const c of children) stack.push({ v: c, depth: depth + 1 });
      continue;
    }
    throw KernelError.invalid(`${where}: not JSON-encodable (${v === undefined ? 'undefined' : typeof v})`);
  }
}
