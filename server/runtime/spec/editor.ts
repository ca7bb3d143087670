/**
 * What an editor needs beyond diagnostics: where in the document a cursor is (for completion and hover),
 * and what the schema says about a path. Pure, like `analyzeSpecText`; positions are 1-based like
 * diagnostics (an LSP position is `{line: line - 1, character: column - 1}`, both count UTF-16 units).
 */
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { AGENT_SPEC_SCHEMA } from './schema.js';
import { keyText, type PathSegment } from './source-map.js';

export interface CursorContext {
  /**
   * `key`: the cursor is on (or where one would type) a key of the map at `path`; `value`: on the value
   * at `path`. Hover on a key describes `[...path, key]`; key completion lists the properties of `path`.
   */
  kind: 'key' | 'value';
  path: PathSegment[];
  /** For `key`: the key written under the cursor, if any. */
  key?: string;
  /** The word under the cursor up to the cursor (what a completion replaces). */
  prefix: string;
}

/** Where the cursor at 1-based `line`/`column` is in the spec `text` (YAML or JSON; syntax errors tolerated). */
export function cursorContext(text: string, position: { line: number; column: number }): CursorContext {
  const offset = offsetOf(text, position);
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const before = text.slice(lineStart, offset);
  const prefix = /[\w.%-]*$/.exec(before)?.[0] ?? '';
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const found = find(doc, text, doc.contents, [], offset);
  if (found && !(found.kind === 'value' && expectsMap(found.path) && isTypingKey(before))) return { ...found, prefix };
  // A word typed where the schema wants a map (`spec:` then `  na`) parses as that map's scalar value: a key being typed.
  if (found && found.kind === 'value') return { kind: 'key', path: found.path, prefix };
  // On a blank line (or a key being typed): the block map whose keys start at this indentation.
  const indent = /^(\s*)(?:-\s+)?/.exec(before)?.[0].length ?? 0;
  return { kind: 'key', path: enclosingMap(doc, lines, offset, indent + 1) ?? [], prefix };
}

/** Hover and completion facts for a document path: from the schema, through every branch that applies. */
export interface SchemaFacts {
  description?: string;
  enum?: readonly unknown[];
  examples?: readonly unknown[];
  type?: string | readonly string[];
  /** Named properties of the object at the path, with their descriptions (key completion). */
  properties: { name: string; description?: string; required: boolean }[];
}

/** What the schema says about `path`; `undefined` when the schema has nothing there. */
export function describeSchemaPath(path: readonly PathSegment[]): SchemaFacts | undefined {
  let current: Schema[] = [AGENT_SPEC_SCHEMA as Schema];
  for (const segment of path) {
    current = current.flatMap(branches).flatMap((s) => childSchemas(s, segment));
    if (current.length === 0) return undefined;
  }
  const all = current.flatMap(branches);
  const facts: SchemaFacts = { properties: [] };
  for (const s of all) {
    facts.description ??= s.description;
    facts.enum ??= s.enum;
    facts.examples ??= s.examples;
    facts.type ??= s.type;
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      if (!facts.properties.some((p) => p.name === name)) facts.properties.push({ name, description: prop.description, required: (s.required ?? []).includes(name) });
    }
  }
  return facts;
}

interface Schema {
  description?: string;
  type?: string | readonly string[];
  enum?: readonly unknown[];
  examples?: readonly unknown[];
  properties?: Record<string, Schema>;
  required?: readonly string[];
  additionalProperties?: Schema | boolean;
  items?: Schema;
  if?: Schema;
  then?: Schema;
  else?: Schema;
}

/** A schema and the `then`/`else` branches it may continue in. */
function branches(s: Schema): Schema[] {
  const out: Schema[] = [s];
  if (s.then) out.push(...branches(s.then));
  if (s.else) out.push(...branches(s.else));
  return out;
}

function childSchemas(s: Schema, segment: PathSegment): Schema[] {
  if (typeof segment === 'number') return s.items ? [s.items] : [];
  if (s.properties && Object.hasOwn(s.properties, segment)) return [s.properties[segment]];
  if (typeof s.additionalProperties === 'object') return [s.additionalProperties];
  if (/^\d+$/.test(segment) && s.items) return [s.items];
  return [];
}

function expectsMap(path: PathSegment[]): boolean {
  const facts = describeSchemaPath(path);
  return facts !== undefined && facts.properties.length > 0;
}

function isTypingKey(before: string): boolean {
  return /^\s*(-\s+)?[\w-]*$/.test(before);
}

function offsetOf(text: string, position: { line: number; column: number }): number {
  let offset = 0;
  for (let line = 1; line < position.line; line++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) return text.length;
    offset = nl + 1;
  }
  const lineEnd = text.indexOf('\n', offset);
  return Math.min(offset + position.column - 1, lineEnd < 0 ? text.length : lineEnd);
}

type Found = { kind: 'key' | 'value'; path: PathSegment[]; key?: string };

function within(node: unknown, offset: number): boolean {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return !!r && offset >= r[0] && offset <= r[1];
}

/** The innermost key or value whose written range holds `offset`. */
function find(doc: Document, text: string, node: unknown, path: PathSegment[], offset: number): Found | undefined {
  const target = isAlias(node) ? node.resolve(doc) : node;
  if (isMap(target)) {
    for (const pair of target.items) {
      if (!isPair(pair)) continue;
      const key = keyText(pair.key) ?? '';
      if (within(pair.key, offset)) return { kind: 'key', path, key };
      if (pair.value !== null && within(pair.value, offset)) return find(doc, text, pair.value, [...path, key], offset) ?? { kind: 'value', path: [...path, key] };
      if (pair.value === null && pair.key && onSameLineAfter(text, pair.key as Node, offset)) return { kind: 'value', path: [...path, key] };
    }
    return within(target, offset) && isFlow(target) ? { kind: 'key', path } : undefined;
  }
  if (isSeq(target)) {
    for (let i = 0; i < target.items.length; i++) {
      const item = target.items[i];
      if (within(item, offset)) return find(doc, text, item, [...path, i], offset) ?? { kind: 'value', path: [...path, i] };
    }
    return undefined;
  }
  if (isScalar(target) && within(target, offset)) return { kind: 'value', path };
  return undefined;
}

function isFlow(node: unknown): boolean {
  return (node as { flow?: boolean }).flow === true;
}

/** After `key:` on the key's own line (a value not yet written). */
function onSameLineAfter(text: string, key: Node, offset: number): boolean {
  const r = key.range;
  return !!r && offset > r[1] && !text.slice(r[1], offset).includes('\n');
}

/** The path of the last block map starting before `offset` whose keys start at `column`. */
function enclosingMap(doc: Document, lines: LineCounter, offset: number, column: number): PathSegment[] | undefined {
  let best: { start: number; path: PathSegment[] } | undefined;
  const consider = (node: unknown, path: PathSegment[]) => {
    const target = isAlias(node) ? node.resolve(doc) : node;
    if (isMap(target) && !isFlow(target)) {
      const first = target.items[0];
      const keyRange = isPair(first) ? (first.key as { range?: [number, number, number] } | null)?.range : undefined;
      if (keyRange && keyRange[0] < offset && lines.linePos(keyRange[0]).col === column && (!best || keyRange[0] > best.start)) best = { start: keyRange[0], path };
      for (const pair of target.items) if (isPair(pair)) consider(pair.value, [...path, keyText(pair.key) ?? '']);
    } else if (isSeq(target)) {
      target.items.forEach((item, i) => consider(item, [...path, i]));
    }
  };
  consider(doc.contents, []);
  return best?.path;
}
