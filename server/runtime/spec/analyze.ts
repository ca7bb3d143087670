/**
 * `analyzeSpecText`: one spec file's text → its diagnostics and, when it has no error, its normal form and
 * digest. Pure (no file system): the CLI and the language server both call it.
 *
 * Steps: bounds (size, documents, depth, aliases) → YAML (or strict JSON) syntax → plain JSON data →
 * the JSON Schema → our own rules (units, capability names, domain) → the normal form.
 */
import { hash } from 'node:crypto';
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Document, type YAMLError } from 'yaml';
import type { ErrorObject } from 'ajv';
import { canonicalJson } from '../../../protocol/canonical.js';
import { permissionsOf } from './capabilities.js';
import { normalise } from './normalise.js';
import { KNOWN_DOMAINS } from './schema.js';
import { SourceMap, dotted, keyText, offsetRange, pointerSegments, toPointer, type EntryPart, type PathSegment } from './source-map.js';
import type { AgentSpec, Diagnostic, Severity, SourceRange } from './types.js';
import { parseCpu, parseDurationMs, parseSize } from './units.js';
import { schemaErrors } from './validator.js';

/** Bounds on one spec file. */
export const SPEC_LIMITS = {
  /** Largest spec file, in UTF-8 bytes. */
  bytes: 256 * 1024,
  /** YAML documents per file (one agent per file). */
  documents: 1,
  /** Deepest nesting of maps and lists. */
  depth: 32,
  /** Alias expansions allowed (YAML `*ref`), against alias bombs. */
  aliases: 100,
} as const;

export type SpecFormat = 'yaml' | 'json';

export interface SpecAnalysis {
  /** The file path or document URI, as given. */
  uri: string;
  format: SpecFormat;
  /** In document order: syntax and bounds first, then schema and our rules. */
  diagnostics: Diagnostic[];
  /** The document as plain JSON data, when it parsed. */
  document?: unknown;
  /** The normal form, when there is no error diagnostic. */
  spec?: AgentSpec;
  /** `specDigest(spec)`, with `spec`. */
  digest?: string;
  /** Where `metadata.name` is written (else the document), once the document parsed. */
  nameRange?: SourceRange;
  /** Where each of `spec.dependencies.required` / `.optional` is written (same order), for workstream diagnostics. */
  dependencyRanges?: { required: SourceRange[]; optional: SourceRange[] };
}

/** Hex SHA-256 of `canonicalJson(spec)`: equal normal forms (from either encoding, YAML or JSON) have equal digests. */
export function specDigest(spec: AgentSpec): string {
  return hash('sha256', canonicalJson(spec), 'hex');
}

/** The format of a file by its name: `.json` is JSON, anything else YAML. */
export function formatOf(uri: string): SpecFormat {
  return /\.json$/i.test(uri) ? 'json' : 'yaml';
}

/** Analyse one spec file's text. Never throws for bad input: every problem is a diagnostic. */
export function analyzeSpecText(uri: string, text: string, options: { format?: SpecFormat } = {}): SpecAnalysis {
  const format = options.format ?? formatOf(uri);
  const result: SpecAnalysis = { uri, format, diagnostics: [] };
  const report = (range: SourceRange, severity: Severity, rule: string, message: string, extra: Partial<Diagnostic> = {}) =>
    result.diagnostics.push({ file: uri, ...range, severity, rule, message, ...extra });
  const firstLine: SourceRange = { line: 1, column: 1, endLine: 1, endColumn: 1 };

  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > SPEC_LIMITS.bytes) {
    report(firstLine, 'error', 'limit/bytes', `the file is ${bytes} bytes; a spec may be at most ${SPEC_LIMITS.bytes} bytes`);
    return result;
  }

  const lines = new LineCounter();
  if (format === 'json') {
    const syntax = jsonSyntaxError(text, lines);
    if (syntax) {
      report(syntax.range, 'error', 'json/syntax', syntax.message);
      return result;
    }
  }
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, schema: format === 'json' ? 'json' : 'core', uniqueKeys: true });
  const all = Array.isArray(docs) ? docs : [];
  const doc = all[0];
  const map = doc ? new SourceMap(doc, lines, text) : undefined;
  const at = (pos: [number, number]) => offsetRange(lines, pos[0], pos[1]);
  for (const d of all) {
    for (const e of d.errors) report(at(e.pos), 'error', `yaml/${e.code}`, yamlMessage(e));
    for (const w of d.warnings) report(at(w.pos), 'warning', `yaml/${w.code}`, yamlMessage(w));
  }
  if (all.length > SPEC_LIMITS.documents) {
    const extra = all[SPEC_LIMITS.documents];
    report(at([extra.range[0], extra.range[1]]), 'error', 'limit/documents', `the file holds ${all.length} YAML documents; a spec file holds one agent (one document)`);
  }
  if (hasErrors(result)) return result;
  if (!doc || !map || doc.contents === null) {
    report(firstLine, 'error', 'spec/empty', 'the file holds no spec (an agent spec is a map of sections)');
    return result;
  }

  const tooDeep = deeperThan(doc, SPEC_LIMITS.depth);
  if (tooDeep) {
    report(map.range(tooDeep), 'error', 'limit/depth', `nesting deeper than ${SPEC_LIMITS.depth} levels at ${dotted(tooDeep)}`, { path: toPointer(tooDeep) });
    return result;
  }
  const complexKey = collectionKey(doc, map);
  if (complexKey) {
    report(complexKey, 'error', 'spec/complex-key', 'a map key must be a plain value, not a map or a list');
    return result;
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: SPEC_LIMITS.aliases });
  } catch (err) {
    report(map.documentRange(), 'error', 'limit/aliases', `alias expansion exceeds the bound (${(err as Error).message})`);
    return result;
  }
  const nonJson = nonJsonValue(data, []);
  if (nonJson) {
    report(map.range(nonJson.path), 'error', 'spec/non-json-value', `${dotted(nonJson.path)}: ${nonJson.what} is not a JSON value`, { path: toPointer(nonJson.path) });
    return result;
  }
  result.document = data;
  result.nameRange = map.range(['metadata', 'name']);

  for (const e of relevantSchemaErrors(schemaErrors(data))) {
    const where = schemaErrorLocation(e);
    report(rangeFor(map, where.path, where.part, text), 'error', `schema/${e.keyword}`, schemaMessage(e, where.path), {
      path: toPointer(where.path),
      schemaPath: e.schemaPath,
    });
  }
  ownRules(data, map, report);
  result.diagnostics.sort((a, b) => a.line - b.line || a.column - b.column);
  if (hasErrors(result)) return result;

  const normal = normalise(data as Record<string, unknown>);
  result.spec = normal.spec;
  result.digest = specDigest(normal.spec);
  result.dependencyRanges = {
    required: normal.dependencyPaths.required.map((p) => map.range(p, 'entry')),
    optional: normal.dependencyPaths.optional.map((p) => map.range(p, 'entry')),
  };
  return result;
}

function hasErrors(a: SpecAnalysis): boolean {
  return a.diagnostics.some((d) => d.severity === 'error');
}

function yamlMessage(e: YAMLError): string {
  return e.message.split('\n')[0];
}

/** Strict JSON syntax (no comments, no trailing commas, no YAML): the position of the first error. */
function jsonSyntaxError(text: string, lines: LineCounter): { range: SourceRange; message: string } | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    const lineCol = /line (\d+) column (\d+)/.exec(message);
    const position = /position (\d+)/.exec(message);
    let line = 1;
    let column = 1;
    if (lineCol) {
      line = Number(lineCol[1]);
      column = Number(lineCol[2]);
    } else if (position) {
      for (const c of text.slice(0, Number(position[1]))) {
        if (c === '\n') {
          line++;
          column = 1;
        } else column++;
      }
    } else if (text.trim() === '') {
      return { range: { line: 1, column: 1, endLine: 1, endColumn: 1 }, message: 'empty file: a JSON spec is an object' };
    } else {
      const end = lines.linePos(text.length);
      line = end.line;
      column = end.col;
    }
    return { range: { line, column, endLine: line, endColumn: column + 1 }, message: `not valid JSON: ${message.replace(/^SyntaxError: /, '')}` };
  }
}

/** The path of the first node nested deeper than `limit`, if any (walked on the node tree, before any expansion). */
function deeperThan(doc: Document.Parsed, limit: number): PathSegment[] | undefined {
  const walk = (node: unknown, path: PathSegment[]): PathSegment[] | undefined => {
    if (!isMap(node) && !isSeq(node)) return undefined;
    if (path.length >= limit) return path;
    const items = node.items as unknown[];
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const found = isPair(item) ? walk(item.value, [...path, keyText(item.key) ?? '?']) : walk(item, [...path, i]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(doc.contents, []);
}

/** The range of the first map key that is itself a map or a list (`? [a, b] : c`). */
function collectionKey(doc: Document.Parsed, map: SourceMap): SourceRange | undefined {
  const walk = (node: unknown): SourceRange | undefined => {
    if (!isMap(node) && !isSeq(node)) return undefined;
    for (const item of node.items as unknown[]) {
      if (isPair(item)) {
        if (item.key !== null && !isScalar(item.key) && !isAlias(item.key)) {
          const r = (item.key as { range?: [number, number, number] }).range;
          return r ? map.offsets(r[0], r[1]) : map.documentRange();
        }
        const inner = walk(item.value);
        if (inner) return inner;
      } else {
        const inner = walk(item);
        if (inner) return inner;
      }
    }
    return undefined;
  };
  return walk(doc.contents);
}

/** The first value that is not JSON data (a non-finite number, or anything a YAML tag made that is not plain). */
function nonJsonValue(value: unknown, path: PathSegment[]): { path: PathSegment[]; what: string } | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : { path, what: String(value) };
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const found = nonJsonValue(value[i], [...path, i]);
          if (found) return found;
        }
        return undefined;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return { path, what: `a ${value.constructor?.name ?? 'non-plain'} object` };
      for (const [k, v] of Object.entries(value)) {
        const found = nonJsonValue(v, [...path, k]);
        if (found) return found;
      }
      return undefined;
    }
    default:
      return { path, what: `a ${typeof value}` };
  }
}

/**
 * ajv's errors minus the ones that only repeat another: the `if` wrapper (its branch's own errors follow)
 * and the `propertyNames` wrapper (the error about the name itself follows, with the name).
 */
function relevantSchemaErrors(errors: ErrorObject[]): ErrorObject[] {
  return errors.filter((e) => e.keyword !== 'if' && e.keyword !== 'propertyNames');
}

function schemaErrorLocation(e: ErrorObject): { path: PathSegment[]; part: EntryPart } {
  const path: PathSegment[] = pointerSegments(e.instancePath);
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') return { path: [...path, params.additionalProperty], part: 'key' };
  if (typeof e.propertyName === 'string') return { path: [...path, e.propertyName], part: 'key' };
  if (e.keyword === 'required') return { path, part: 'key' };
  return { path, part: 'value' };
}

/** The range of a path; for the whole document (a missing top-level section) only its first line. */
function rangeFor(map: SourceMap, path: PathSegment[], part: EntryPart, text: string): SourceRange {
  if (path.length > 0) return map.range(path, part);
  const first = text.split('\n', 1)[0].replace(/\r$/, '');
  return { line: 1, column: 1, endLine: 1, endColumn: first.length + 1 };
}

function schemaMessage(e: ErrorObject, path: PathSegment[]): string {
  const params = e.params as Record<string, unknown>;
  const where = dotted(path);
  switch (e.keyword) {
    case 'required':
      return `${where}: missing required property "${String(params.missingProperty)}"`;
    case 'additionalProperties':
      return `${dotted(path.slice(0, -1))}: unknown property "${String(params.additionalProperty)}"`;
    case 'enum':
      return `${where}: ${show(e.data)} is not one of ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'pattern':
      return e.propertyName !== undefined
        ? `${dotted(path.slice(0, -1))}: name "${e.propertyName}" must match ${String(params.pattern)}`
        : `${where}: ${show(e.data)} does not match ${String(params.pattern)}`;
    case 'type':
      return `${where}: must be ${String(params.type).replace(',', ' or ')}, not ${e.data === null ? 'null' : Array.isArray(e.data) ? 'a list' : typeof e.data === 'object' ? 'a map' : typeof e.data}`;
    default:
      return `${where}: ${e.message ?? e.keyword}`;
  }
}

/** A value for a message, cut to 60 characters. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

type Report = (range: SourceRange, severity: Severity, rule: string, message: string, extra?: Partial<Diagnostic>) => void;

/** Rules beyond the schema, checked on values of the right type only (the schema reports the others). */
function ownRules(data: unknown, map: SourceMap, report: Report): void {
  if (!isRecord(data)) return;
  const spec = data.spec;
  if (isRecord(spec) && typeof spec.domain === 'string' && !(KNOWN_DOMAINS as readonly string[]).includes(spec.domain)) {
    report(map.range(['spec', 'domain']), 'warning', 'spec/unknown-domain', `spec.domain: "${spec.domain}" is not a known domain (${KNOWN_DOMAINS.join(', ')})`, {
      path: '/spec/domain',
    });
  }
  const security = data.security;
  if (!isRecord(security)) return;
  const required = security.capabilities_required;
  if (Array.isArray(required)) {
    required.forEach((entry, i) => {
      if (typeof entry === 'string' && entry.length > 0 && permissionsOf(entry) === undefined) {
        const path = ['security', 'capabilities_required', i];
        report(map.range(path), 'error', 'spec/unknown-capability', `${dotted(path)}: "${entry}" is neither a Toka capability name nor a known permission (area:verb)`, {
          path: toPointer(path),
        });
      }
    });
  }
  const limits = security.resource_limits;
  if (!isRecord(limits)) return;
  const units: [string, (v: string | number) => number | undefined, string][] = [
    ['max_memory', parseSize, 'a size of at most 2^53-1 bytes'],
    ['max_disk_usage', parseSize, 'a size of at most 2^53-1 bytes'],
    ['max_network_bandwidth', parseSize, 'a size of at most 2^53-1 bytes'],
    ['max_cpu', parseCpu, 'a CPU share above zero'],
    ['timeout', parseDurationMs, 'a duration above zero'],
  ];
  for (const [field, parse, what] of units) {
    const value = limits[field];
    if ((typeof value === 'string' || typeof value === 'number') && matchesSpelling(field, value) && parse(value) === undefined) {
      const path = ['security', 'resource_limits', field];
      report(map.range(path), 'error', 'spec/value-range', `${dotted(path)}: ${JSON.stringify(value)} is out of range (expected ${what})`, { path: toPointer(path) });
    }
  }
}

/** Only values the schema accepts get a range check (a bad spelling is already a schema error). */
function matchesSpelling(field: string, value: string | number): boolean {
  if (typeof value === 'number') return field === 'max_cpu' ? value >= 0 : Number.isInteger(value) && value >= 0;
  if (field === 'max_cpu') return /^\d+(\.\d+)?%?$/.test(value);
  if (field === 'timeout') return /^\d+(ms|s|m|h|d)?$/.test(value);
  return /^\d+([KMGT]?B)?$/.test(value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
