/**
 * Language features for agent spec files, served on the stdio language-server connection from the same spec
 * loader `toka spec check` uses (server/runtime/spec), so editor and CLI never disagree.
 *
 * A document is a spec file when its name ends `.agent.yaml` / `.agent.yml` / `.agent.json`, or it is a
 * YAML/JSON file directly inside a folder named `agents`. Its workstream is the spec files of its folder
 * (open documents as edited, the others as on disk), planned by `planWorkstream` like `toka spec check <dir>`.
 *
 * - diagnostics: pushed (`textDocument/publishDiagnostics`) on open, change and watched-file change, for every
 *   open spec document of the folder touched; cleared on close;
 * - completion: property names, enum values and examples from the schema, capability names and permissions
 *   for `security.capabilities_required`, the folder's agent names for `dependencies.required|optional`;
 * - hover: the schema's description of the key or value under the cursor;
 * - CodeLens: "Run agent" on `metadata.name`, command `RUN_AGENT_COMMAND` with the document URI.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CodeLensRequest,
  CompletionItemKind,
  CompletionRequest,
  DiagnosticSeverity,
  DidChangeTextDocumentNotification,
  DidChangeWatchedFilesNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  HoverRequest,
  MarkupKind,
  PublishDiagnosticsNotification,
  TextDocumentSyncKind,
  type CodeLens,
  type CompletionItem,
  type Connection,
  type Diagnostic as LspDiagnostic,
  type Disposable,
  type Hover,
  type Range,
  type ServerCapabilities,
} from 'vscode-languageserver/node';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { PERMISSIONS } from '../../../protocol/capability.js';
import { HostError } from '../../host/errors.js';
import type { Logger } from '../../host/logger.js';
import {
  CAPABILITY_NAMES,
  SPEC_FILE,
  SPEC_LIMITS,
  WORKSTREAM_LIMITS,
  analyzeSpecText,
  cursorContext,
  describeSchemaPath,
  permissionsNotCovered,
  permissionsOf,
  planWorkstream,
  type CursorContext,
  type Diagnostic,
  type SourceRange,
  type SpecAnalysis,
} from '../../runtime/spec/index.js';
import { SourceMap, type PathSegment } from '../../runtime/spec/source-map.js';
import type { RequestType } from 'vscode-jsonrpc';
import type { ErrorData } from '../../../protocol/errors.js';
import { onTypedRequest, toResponseError } from '../rpc.js';

/** The command id of the "Run agent" CodeLens; its one argument is the spec document's URI. */
export const RUN_AGENT_COMMAND = 'toka.runAgentFromSpec';

/** Bounds of the language features. */
export const SPEC_LANGUAGE_LIMITS = {
  /** Open documents tracked at once; more are not analysed (and get one diagnostic saying so). */
  documents: 1000,
  /** Delay before analysing after a change, coalescing bursts of keystrokes per folder. */
  debounceMs: 75,
} as const;

export interface SpecLanguageOptions {
  logger: Logger;
  /** The permissions the session holds: a spec asking beyond them is warned (a spawn would withhold them). */
  held: () => readonly string[];
}

export interface SpecLanguage {
  /** The `ServerCapabilities` these features add to the initialize result. */
  capabilities: ServerCapabilities;
  dispose(): void;
}

/** True for a spec file by the editor's rule (see the module comment). */
export function isSpecDocumentPath(path: string): boolean {
  if (/\.agent\.(ya?ml|json)$/i.test(path)) return true;
  return SPEC_FILE.test(path) && basename(dirname(path)) === 'agents';
}

interface OpenDocument {
  uri: string;
  /** The file system path (file: URIs), else undefined: such a document is analysed alone. */
  path?: string;
  version: number;
  text: string;
}

/** Register the spec language features on `connection` (after `initialize`); `dispose` unregisters them. */
export function serveSpecLanguage(connection: Connection, options: SpecLanguageOptions): SpecLanguage {
  const logger = options.logger.child({ feature: 'spec-language' });
  const documents = new Map<string, OpenDocument>();
  const pending = new Map<string, NodeJS.Timeout>();
  const disposables: Disposable[] = [];

  const track = (uri: string, version: number, text: string): OpenDocument | undefined => {
    if (!documents.has(uri) && documents.size >= SPEC_LANGUAGE_LIMITS.documents) {
      void publish(uri, [
        {
          range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
          severity: DiagnosticSeverity.Warning,
          source: 'toka',
          code: 'limit/documents',
          message: `more than ${SPEC_LANGUAGE_LIMITS.documents} spec documents are open: this one is not analysed`,
        },
      ]);
      return undefined;
    }
    const path = filePath(uri);
    const doc: OpenDocument = { uri, path, version, text };
    documents.set(uri, doc);
    return doc;
  };

  const publish = (uri: string, diagnostics: LspDiagnostic[]) =>
    connection.sendNotification(PublishDiagnosticsNotification.type, { uri, diagnostics }).catch((err) => logger.warn('publish failed', { err }));

  /** Analyse now every open spec document in `folder` (or the one document without a folder) and publish. */
  const validate = (key: string) => {
    pending.delete(key);
    const members = [...documents.values()].filter((d) => folderKey(d) === key);
    if (members.length === 0) return;
    const result = analyseFolder(key, members, documents, options.held());
    for (const doc of members) void publish(doc.uri, result.get(doc.uri) ?? []);
  };

  const schedule = (key: string) => {
    const previous = pending.get(key);
    if (previous) clearTimeout(previous);
    pending.set(
      key,
      setTimeout(() => {
        try {
          validate(key);
        } catch (err) {
          logger.error('spec analysis failed', { err });
        }
      }, SPEC_LANGUAGE_LIMITS.debounceMs),
    );
  };

  disposables.push(
    // Notifications cannot be answered: ill-formed ones are dropped (and logged).
    connection.onNotification(DidOpenTextDocumentNotification.type, (params) => {
      const textDocument = params?.textDocument;
      if (typeof textDocument?.uri !== 'string' || typeof textDocument.text !== 'string' || !Number.isSafeInteger(textDocument.version)) {
        logger.warn('ill-formed notification dropped', { method: DidOpenTextDocumentNotification.method });
        return;
      }
      if (!isSpecUri(textDocument.uri)) return;
      const doc = track(textDocument.uri, textDocument.version, textDocument.text);
      if (doc) schedule(folderKey(doc));
    }),
    connection.onNotification(DidChangeTextDocumentNotification.type, (params) => {
      const doc = documents.get(params?.textDocument?.uri);
      if (!doc) return;
      // Full sync: the last change holds the whole text.
      const changes: unknown = params.contentChanges;
      const last = Array.isArray(changes) ? (changes[changes.length - 1] as { text?: unknown; range?: unknown } | undefined) : undefined;
      if (!last || typeof last.text !== 'string' || last.range !== undefined) {
        logger.warn('ill-formed notification dropped', { method: DidChangeTextDocumentNotification.method });
        return;
      }
      doc.text = last.text;
      doc.version = params.textDocument.version;
      schedule(folderKey(doc));
    }),
    connection.onNotification(DidCloseTextDocumentNotification.type, (params) => {
      const doc = documents.get(params?.textDocument?.uri);
      if (!doc) return;
      documents.delete(doc.uri);
      void publish(doc.uri, []);
      schedule(folderKey(doc));
    }),
    connection.onNotification(DidChangeWatchedFilesNotification.type, (params) => {
      const folders = new Set<string>();
      const changes: unknown = params?.changes;
      for (const change of Array.isArray(changes) ? changes.slice(0, WORKSTREAM_LIMITS.files) : []) {
        const uri = (change as { uri?: unknown } | null)?.uri;
        const path = typeof uri === 'string' ? filePath(uri) : undefined;
        if (path && isSpecDocumentPath(path)) folders.add(dirname(path));
      }
      for (const folder of folders) schedule(folder);
    }),
    // By method name, so that absent or by-position params reach the checks below (see `onTypedRequest`).
    onRequest(connection, CompletionRequest.method, (params) => {
      const doc = documents.get(documentUri(params));
      return doc ? complete(doc, positionOf(params), documents) : null;
    }),
    onRequest(connection, HoverRequest.method, (params) => {
      const doc = documents.get(documentUri(params));
      return doc ? hover(doc, positionOf(params)) : null;
    }),
    onRequest(connection, CodeLensRequest.method, (params) => {
      const doc = documents.get(documentUri(params));
      return doc ? codeLenses(doc) : null;
    }),
  );

  return {
    capabilities: {
      textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Full },
      completionProvider: { triggerCharacters: [':', ' ', '-'] },
      hoverProvider: true,
      codeLensProvider: { resolveProvider: false },
    },
    dispose() {
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
      for (const d of disposables) d.dispose();
      documents.clear();
    },
  };
}

function onRequest<R>(connection: Connection, method: string, handler: (params: unknown) => R): Disposable {
  return onTypedRequest(connection, { method } as RequestType<unknown, R, ErrorData>, async (params) => handler(params));
}

/** `params.textDocument.uri`, or InvalidParams naming `textDocument`. */
function documentUri(params: unknown): string {
  const doc = (params as { textDocument?: unknown } | null)?.textDocument;
  const uri = typeof doc === 'object' && doc !== null && Object.hasOwn(doc, 'uri') ? (doc as { uri: unknown }).uri : undefined;
  if (typeof uri !== 'string') throw invalidParams('textDocument', 'textDocument.uri must be a string');
  return uri;
}

/** `params.position` with non-negative integer line and character, or InvalidParams naming `position`. */
function positionOf(params: unknown): { line: number; character: number } {
  const position = (params as { position?: { line?: unknown; character?: unknown } } | null)?.position;
  const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (!position || !ok(position.line) || !ok(position.character)) throw invalidParams('position', 'position must be {line, character}, non-negative integers');
  return { line: position.line, character: position.character };
}

function invalidParams(field: string, message: string) {
  return toResponseError(new HostError('InvalidParams', message, { field }));
}

function isSpecUri(uri: string): boolean {
  const path = filePath(uri);
  if (path) return isSpecDocumentPath(path);
  // A document not on disk (untitled, virtual): by its name alone.
  return /\.agent\.(ya?ml|json)$/i.test(uri);
}

function filePath(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

/** The folder a document's workstream is planned in, or its URI when it is not a file. */
function folderKey(doc: OpenDocument): string {
  return doc.path ? dirname(doc.path) : doc.uri;
}

/** The spec files of a folder by the editor's rule, sorted; `undefined` when there are more than the bound. */
function specFilesOf(folder: string): string[] | undefined {
  let names: string[];
  try {
    names = readdirSync(folder, { withFileTypes: true })
      .filter((e) => e.isFile() && isSpecDocumentPath(join(folder, e.name)))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
  return names.length > WORKSTREAM_LIMITS.files ? undefined : names.map((n) => join(folder, n));
}

/** A spec file on disk as the CLI loader reads it, analysed under the document URI the editor knows it by. */
function analyseDiskFile(path: string): SpecAnalysis {
  const uri = pathToFileURL(path).href;
  const failed = (rule: string, message: string): SpecAnalysis => ({
    uri,
    format: /\.json$/i.test(path) ? 'json' : 'yaml',
    diagnostics: [{ file: uri, line: 1, column: 1, endLine: 1, endColumn: 1, severity: 'error', rule, message }],
  });
  try {
    const size = statSync(path).size;
    if (size > SPEC_LIMITS.bytes) return failed('limit/bytes', `the file is ${size} bytes; a spec may be at most ${SPEC_LIMITS.bytes} bytes`);
    return analyzeSpecText(uri, readFileSync(path, 'utf8'));
  } catch (err) {
    return failed('io/read', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Diagnostics of the open documents `members` of one folder, by URI: each file's own, the workstream's
 * (unknown dependencies, cycles, duplicates), and permissions beyond what the session holds.
 */
function analyseFolder(key: string, members: OpenDocument[], open: Map<string, OpenDocument>, held: readonly string[]): Map<string, LspDiagnostic[]> {
  const out = new Map<string, LspDiagnostic[]>(members.map((m) => [m.uri, []]));
  const own = (doc: OpenDocument) => analyzeSpecText(doc.uri, doc.text);
  let analyses: SpecAnalysis[];
  let extra: Diagnostic[] = [];
  const onDisk = members[0].path ? specFilesOf(key) : [];
  if (onDisk === undefined) {
    analyses = members.map(own);
    extra = members.map((m) => ({
      file: m.uri,
      line: 1,
      column: 1,
      endLine: 1,
      endColumn: 1,
      severity: 'warning' as const,
      rule: 'limit/files',
      message: `the folder holds more than ${WORKSTREAM_LIMITS.files} spec files: dependencies are not checked`,
    }));
  } else {
    const byUri = new Map<string, SpecAnalysis>();
    for (const path of onDisk) {
      const uri = pathToFileURL(path).href;
      const edited = open.get(uri);
      byUri.set(uri, edited ? own(edited) : analyseDiskFile(path));
    }
    // Open documents not (yet) on disk belong to the folder too.
    for (const m of members) if (!byUri.has(m.uri)) byUri.set(m.uri, own(m));
    analyses = [...byUri.values()];
  }
  const plan = planWorkstream(analyses);
  for (const d of [...plan.diagnostics, ...extra]) out.get(d.file)?.push(toLsp(d));
  for (const analysis of analyses) {
    const target = out.get(analysis.uri);
    const doc = open.get(analysis.uri);
    if (target && doc && analysis.spec) target.push(...beyondSession(doc, analysis, held));
  }
  return out;
}

/** A warning on each `security.capabilities_required` entry whose permissions the session does not hold. */
function beyondSession(doc: OpenDocument, analysis: SpecAnalysis, held: readonly string[]): LspDiagnostic[] {
  const written = (analysis.document as { security?: { capabilities_required?: unknown } }).security?.capabilities_required;
  if (!Array.isArray(written)) return [];
  const map = sourceMap(doc.text);
  const out: LspDiagnostic[] = [];
  written.forEach((entry, i) => {
    if (typeof entry !== 'string') return;
    const missing = permissionsNotCovered(permissionsOf(entry) ?? [], held);
    if (missing.length === 0) return;
    out.push({
      range: toRange(map.range(['security', 'capabilities_required', i])),
      severity: DiagnosticSeverity.Warning,
      source: 'toka',
      code: 'session/beyond-grant',
      message: `"${entry}" needs ${missing.join(', ')}, which this session does not hold: an agent spawned from here would not be granted it`,
    });
  });
  return out;
}

function sourceMap(text: string): SourceMap {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  return new SourceMap(doc as Document.Parsed, lines, text);
}

const SEVERITY = { error: DiagnosticSeverity.Error, warning: DiagnosticSeverity.Warning, info: DiagnosticSeverity.Information } as const;

function toLsp(d: Diagnostic): LspDiagnostic {
  return { range: toRange(d), severity: SEVERITY[d.severity], source: 'toka', code: d.rule, message: d.message };
}

/** A 1-based source range as an LSP range (both count UTF-16 code units). */
function toRange(r: SourceRange): Range {
  return { start: { line: r.line - 1, character: r.column - 1 }, end: { line: r.endLine - 1, character: r.endColumn - 1 } };
}

/**
 * Is `path` where a dependency's agent name is written (`dependencies.required: {name: reason}`, a list of
 * `- name: reason`, or a name being typed there)?
 */
function isDependencyName(path: readonly PathSegment[]): boolean {
  return path[0] === 'dependencies' && (path[1] === 'required' || path[1] === 'optional') && (path.length === 2 || (path.length === 3 && typeof path[2] === 'number'));
}

function isCapabilityEntry(path: readonly PathSegment[]): boolean {
  return path.length === 3 && path[0] === 'security' && path[1] === 'capabilities_required' && typeof path[2] === 'number';
}

function complete(doc: OpenDocument, position: { line: number; character: number }, open: Map<string, OpenDocument>): CompletionItem[] {
  const context = completionContext(doc.text, position);
  const items: CompletionItem[] = [];
  if (isDependencyName(context.path)) {
    const self = ownName(doc.text);
    for (const name of agentNames(doc, open)) {
      if (name !== self) items.push({ label: name, kind: CompletionItemKind.Reference, detail: 'agent of this workstream', insertText: `${name}: ` });
    }
    return items;
  }
  if (context.kind === 'key') {
    for (const p of describeSchemaPath(context.path)?.properties ?? []) {
      items.push({
        label: p.name,
        kind: CompletionItemKind.Property,
        detail: p.required ? 'required' : undefined,
        documentation: p.description ? { kind: MarkupKind.Markdown, value: p.description } : undefined,
        insertText: `${p.name}: `,
      });
    }
    return items;
  }
  const valuePath = context.path;
  if (isCapabilityEntry(valuePath) || (valuePath.length === 2 && valuePath[0] === 'security' && valuePath[1] === 'capabilities_required')) {
    for (const [name, permissions] of CAPABILITY_NAMES) {
      items.push({ label: name, kind: CompletionItemKind.EnumMember, detail: `capability: ${permissions.join(', ')}` });
    }
    for (const [permission, description] of Object.entries(PERMISSIONS)) {
      items.push({ label: permission, kind: CompletionItemKind.EnumMember, detail: 'permission', documentation: description });
    }
    return items;
  }
  const facts = describeSchemaPath(valuePath);
  if (!facts) return items;
  for (const value of facts.enum ?? []) items.push({ label: String(value), kind: CompletionItemKind.EnumMember });
  if (facts.type === 'boolean') for (const value of ['true', 'false']) items.push({ label: value, kind: CompletionItemKind.Value });
  for (const value of facts.examples ?? []) {
    if (!items.some((i) => i.label === String(value))) items.push({ label: String(value), kind: CompletionItemKind.Value, detail: 'example' });
  }
  return items;
}

/**
 * `cursorContext`, and on a blank line indented under a `key:` that has no value yet, the keys of that
 * key's map (where the loader's helper would look for the enclosing map at that indentation).
 */
function completionContext(text: string, position: { line: number; character: number }): CursorContext {
  const lines = text.split('\n');
  const before = (lines[position.line] ?? '').slice(0, position.character);
  if (/^\s*$/.test(before)) {
    let above = Math.min(position.line, lines.length) - 1;
    while (above >= 0 && /^\s*(#.*)?$/.test(lines[above])) above--;
    const parent = above >= 0 ? /^(\s*)(?:-\s+)?[\w-]+:\s*(#.*)?$/.exec(lines[above].replace(/\r$/, '')) : null;
    if (parent && parent[1].length < before.length) {
      const at = cursorContext(text, { line: above + 1, column: lines[above].replace(/\s*(#.*)?\r?$/, '').length + 1 });
      if (at.kind === 'value') return { kind: 'key', path: at.path, prefix: '' };
    }
  }
  return cursorContext(text, { line: position.line + 1, column: position.character + 1 });
}

/** `metadata.name` as written, if the document parses that far. */
function ownName(text: string): string | undefined {
  const analysis = analyzeSpecText('name.agent.yaml', text);
  const document = analysis.document as { metadata?: { name?: unknown } } | undefined;
  return typeof document?.metadata?.name === 'string' ? document.metadata.name : undefined;
}

/** The agent names of the document's workstream (its folder's specs, open ones as edited). */
function agentNames(doc: OpenDocument, open: Map<string, OpenDocument>): string[] {
  const texts = new Map<string, string>();
  if (doc.path) {
    for (const path of specFilesOf(dirname(doc.path)) ?? []) {
      const uri = pathToFileURL(path).href;
      const edited = open.get(uri);
      if (edited) texts.set(uri, edited.text);
      else {
        try {
          if (statSync(path).size <= SPEC_LIMITS.bytes) texts.set(uri, readFileSync(path, 'utf8'));
        } catch {
          // A file that cannot be read names no agent.
        }
      }
    }
  }
  for (const d of open.values()) if (d.path && doc.path && dirname(d.path) === dirname(doc.path)) texts.set(d.uri, d.text);
  const names = new Set<string>();
  for (const text of texts.values()) {
    const name = ownName(text);
    if (name) names.add(name);
  }
  return [...names].sort();
}

function hover(doc: OpenDocument, position: { line: number; character: number }): Hover | null {
  const context = cursorContext(doc.text, { line: position.line + 1, column: position.character + 1 });
  const path = context.kind === 'key' && context.key !== undefined ? [...context.path, context.key] : context.path;
  const lines: string[] = [];
  const facts = describeSchemaPath(path);
  if (facts?.description) lines.push(facts.description);
  if (context.kind === 'value' && isCapabilityEntry(path)) {
    const entry = valueAt(doc.text, path);
    const permissions = entry !== undefined ? permissionsOf(entry) : undefined;
    if (entry !== undefined && permissions) {
      lines.push(`\`${entry}\` allows: ${permissions.map((p) => `\`${p}\``).join(', ')}`);
      for (const p of permissions) if (Object.hasOwn(PERMISSIONS, p)) lines.push(`- \`${p}\`: ${PERMISSIONS[p as keyof typeof PERMISSIONS]}`);
    }
  }
  if (facts?.enum) lines.push(`One of: ${facts.enum.map((v) => `\`${String(v)}\``).join(', ')}`);
  if (facts?.examples) lines.push(`Examples: ${facts.examples.map((v) => `\`${String(v)}\``).join(', ')}`);
  if (lines.length === 0) return null;
  return { contents: { kind: MarkupKind.Markdown, value: `**${path.map(String).join('.') || 'agent spec'}**\n\n${lines.join('\n\n')}` } };
}

/** The string value written at `path`, if any. */
function valueAt(text: string, path: readonly PathSegment[]): string | undefined {
  const document = analyzeSpecText('value.agent.yaml', text).document;
  let node: unknown = document;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, segment)) return undefined;
    node = (node as Record<string, unknown>)[segment as string];
  }
  return typeof node === 'string' ? node : undefined;
}

function codeLenses(doc: OpenDocument): CodeLens[] {
  const analysis = analyzeSpecText(doc.uri, doc.text);
  if (!analysis.nameRange) return [];
  const range = toRange(analysis.nameRange);
  const name = ownName(doc.text);
  return [{ range, command: { title: name ? `Run agent ${name}` : 'Run agent', command: RUN_AGENT_COMMAND, arguments: [doc.uri] } }];
}
