/**
 * From a path in the parsed document (JSON Pointer segments) back to where it is written: the line and
 * column ranges diagnostics carry. Works on the `yaml` node tree, which keeps source offsets for YAML and
 * JSON text alike.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';
import type { SourceRange } from './types.js';

export type PathSegment = string | number;

/** Which part of a map entry a range covers: its key, its value, or both. */
export type EntryPart = 'key' | 'value' | 'entry';

export class SourceMap {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    private readonly text: string,
  ) {}

  /** The range of offsets `[start, end)`. */
  /** The range of the offsets `[start, end)`, trailing blanks and line breaks left out. */
  offsets(start: number, end: number): SourceRange {
    let e = end;
    while (e > start && /\s/.test(this.text[e - 1])) e--;
    return offsetRange(this.lines, start, e);
  }

  /** The whole document (its first line when it is empty). */
  documentRange(): SourceRange {
    const root = this.doc.contents;
    if (root?.range) return this.offsets(root.range[0], root.range[1]);
    return { line: 1, column: 1, endLine: 1, endColumn: 1 };
  }

  /**
   * The range of `path`: the key, the value or the whole entry of the last segment. Falls back to the
   * nearest ancestor that exists (a missing value is reported where its parent is written).
   */
  range(path: readonly PathSegment[], part: EntryPart = 'value'): SourceRange {
    let node: unknown = this.doc.contents;
    let pair: Pair | undefined;
    let found: SourceRange = this.documentRange();
    for (let i = 0; i < path.length; i++) {
      const step = this.child(node, path[i]);
      if (!step) break;
      node = step.node;
      pair = step.pair;
      const last = i === path.length - 1;
      found = this.partRange(step.node, pair, last ? part : 'value') ?? found;
    }
    return found;
  }

  private partRange(node: unknown, pair: Pair | undefined, part: EntryPart): SourceRange | undefined {
    const key = pair && isNodeWithRange(pair.key) ? pair.key.range : undefined;
    const value = isNodeWithRange(node) ? node.range : undefined;
    if (part === 'key' && key) return this.offsets(key[0], key[1]);
    if (part === 'entry' && key) return this.offsets(key[0], value ? value[1] : key[1]);
    if (value) return this.offsets(value[0], value[1]);
    return key ? this.offsets(key[0], key[1]) : undefined;
  }

  private child(node: unknown, segment: PathSegment): { node: unknown; pair?: Pair } | undefined {
    const target = isAlias(node) ? node.resolve(this.doc) : node;
    if (isMap(target)) {
      const pair = target.items.find((p) => isPair(p) && keyText(p.key) === String(segment));
      return pair ? { node: pair.value, pair } : undefined;
    }
    if (isSeq(target)) {
      const index = Number(segment);
      return Number.isInteger(index) && index >= 0 && index < target.items.length ? { node: target.items[index] } : undefined;
    }
    return undefined;
  }
}

/** The range of the offsets `[start, end)` of a text whose lines `lines` counted. */
export function offsetRange(lines: LineCounter, start: number, end: number): SourceRange {
  const a = lines.linePos(start);
  const b = lines.linePos(Math.max(end, start));
  return { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
}

/** The text of a scalar key as the parsed object has it; `undefined` for a collection used as a key. */
export function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

function isNodeWithRange(n: unknown): n is Node & { range: [number, number, number] } {
  return typeof n === 'object' && n !== null && Array.isArray((n as { range?: unknown }).range);
}

/** JSON Pointer → segments (`~1` → `/`, `~0` → `~`). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Segments → JSON Pointer. */
export function toPointer(path: readonly PathSegment[]): string {
  return path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** Segments → the dotted form used in messages: `tasks.default[0].priority`. */
export function dotted(path: readonly PathSegment[]): string {
  let out = '';
  for (const s of path) {
    if (typeof s === 'number' || /^\d+$/.test(s)) out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out === '' ? '(document)' : out;
}
