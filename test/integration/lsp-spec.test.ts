/**
 * The spec-file language features of `toka serve --stdio`, as a real child process spoken to with a
 * vscode-jsonrpc client: pushed diagnostics with exact ranges (schema, unknown dependencies and cycles across
 * the folder's specs, capabilities beyond the session), completion, hover and the "Run agent" CodeLens.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CapabilityMintRequest } from '../../protocol/rpc/index.js';
import { spawnJsonRpcProcess, type JsonRpcProcess } from '../helpers/jsonrpc-process.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'dist', 'toka.js');

interface LspDiagnostic {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  severity: number;
  code: string;
  message: string;
}
interface CompletionItem {
  label: string;
  insertText?: string;
}

/** A valid spec; `extra` lines are appended under their sections by the caller's text. */
function spec(name: string, opts: { requires?: string[]; capabilities?: string[]; priority?: string } = {}): string {
  const deps = opts.requires?.length ? `\n${opts.requires.map((d) => `    ${d}: "needs it"`).join('\n')}` : ' {}';
  return [
    'metadata:',
    `  name: ${name}`,
    '  version: v0.1.0',
    '  created: "2026-11-20"',
    '  workstream: Editor Tests',
    'spec:',
    `  name: ${name}`,
    '  domain: testing',
    `  priority: ${opts.priority ?? 'high'}`,
    'capabilities:',
    '  primary: [testing]',
    'objectives:',
    '  - description: Do the thing well',
    '    deliverable: done.md with the result',
    '    validation: done.md exists and is not empty',
    'tasks:',
    '  default:',
    '    - description: Do the thing',
    '      priority: high',
    'dependencies:',
    `  required:${deps}`,
    'reporting:',
    '  frequency: on-completion',
    '  channels: [kernel-events]',
    'security:',
    '  sandbox: true',
    `  capabilities_required: [${(opts.capabilities ?? ['filesystem-read']).join(', ')}]`,
    '',
  ].join('\n');
}

describe('spec language features over toka serve --stdio', function () {
  let dir: string;
  let data: string;
  let agents: string;
  let procs: JsonRpcProcess[] = [];

  before(function () {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node esbuild.mjs\` first (npm test does)`);
  });

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'toka-lsp-'));
    data = join(dir, 'data');
    agents = join(dir, 'agents');
    mkdirSync(agents);
    procs = [];
  });

  afterEach(async function () {
    for (const proc of procs) await proc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function ready(initializationOptions?: unknown): Promise<{ proc: JsonRpcProcess; capabilities: Record<string, unknown> }> {
    const proc = spawnJsonRpcProcess(process.execPath, [CLI, 'serve', '--stdio', '--data', data]);
    procs.push(proc);
    const result = (await proc.connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: pathToFileURL(dir).href,
      workspaceFolders: [{ uri: pathToFileURL(dir).href, name: 'ws' }],
      capabilities: {},
      initializationOptions,
    })) as { capabilities: Record<string, unknown> };
    await proc.connection.sendNotification('initialized', {});
    return { proc, capabilities: result.capabilities };
  }

  /** Collects every publishDiagnostics by URI; `next(uri, match)` waits for one that satisfies `match`. */
  function diagnosticsOf(proc: JsonRpcProcess) {
    const waiters: { uri: string; match: (d: LspDiagnostic[]) => boolean; resolve: (d: LspDiagnostic[]) => void }[] = [];
    const latest = new Map<string, LspDiagnostic[]>();
    proc.connection.onNotification('textDocument/publishDiagnostics', (params: { uri: string; diagnostics: LspDiagnostic[] }) => {
      latest.set(params.uri, params.diagnostics);
      for (const w of [...waiters]) {
        if (w.uri === params.uri && w.match(params.diagnostics)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(params.diagnostics);
        }
      }
    });
    return {
      next(uri: string, match: (d: LspDiagnostic[]) => boolean = () => true, timeoutMs = 5000): Promise<LspDiagnostic[]> {
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no matching diagnostics for ${uri}; last: ${JSON.stringify(latest.get(uri))}`)), timeoutMs);
          waiters.push({ uri, match, resolve: (d) => (clearTimeout(timer), resolve(d)) });
        });
      },
    };
  }

  function open(proc: JsonRpcProcess, path: string, text: string, version = 1): string {
    const uri = pathToFileURL(path).href;
    void proc.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'yaml', version, text } });
    return uri;
  }

  it('announces the features in the initialize result', async function () {
    const { capabilities } = await ready();
    assert.deepEqual(capabilities.textDocumentSync, { openClose: true, change: 1 });
    assert.equal(capabilities.hoverProvider, true);
    assert.ok(capabilities.completionProvider);
    assert.ok(capabilities.codeLensProvider);
    assert.ok((capabilities.experimental as { toka?: unknown }).toka, 'the toka capabilities are kept');
  });

  it('publishes schema errors with the exact range, then clears them when the text is fixed', async function () {
    const { proc } = await ready();
    const diags = diagnosticsOf(proc);
    const path = join(dir, 'bad.agent.yaml');
    const bad = spec('bad-agent', { priority: 'urgent' });
    const uri = open(proc, path, bad);
    const found = await diags.next(uri, (d) => d.length > 0);
    const enumError = found.find((d) => d.code === 'schema/enum');
    assert.ok(enumError, JSON.stringify(found));
    const line = bad.split('\n').findIndex((l) => l.includes('priority: urgent'));
    // `urgent` sits after `  priority: ` on that line.
    assert.deepEqual(enumError.range, { start: { line, character: 12 }, end: { line, character: 18 } });
    assert.equal(enumError.severity, 1);

    void proc.connection.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 },
      contentChanges: [{ text: spec('bad-agent') }],
    });
    assert.deepEqual(await diags.next(uri, (d) => d.length === 0), []);
  });

  it('reports unknown dependencies and cycles across the folder (open documents as edited, others from disk)', async function () {
    writeFileSync(join(agents, 'b.yaml'), spec('agent-b', { requires: ['agent-a'] }));
    const { proc } = await ready();
    const diags = diagnosticsOf(proc);
    const textA = spec('agent-a', { requires: ['agent-b', 'agent-x'] });
    const uri = open(proc, join(agents, 'a.yaml'), textA);
    const found = await diags.next(uri, (d) => d.length > 0);
    const lines = textA.split('\n');
    const unknown = found.find((d) => d.code === 'workstream/unknown-dependency');
    assert.ok(unknown, JSON.stringify(found));
    assert.match(unknown.message, /"agent-x"/);
    assert.equal(unknown.range.start.line, lines.findIndex((l) => l.includes('agent-x:')));
    const cycle = found.find((d) => d.code === 'workstream/cycle');
    assert.ok(cycle, JSON.stringify(found));
    assert.match(cycle.message, /agent-a → agent-b → agent-a/);
    assert.equal(cycle.range.start.line, lines.findIndex((l) => l.includes('agent-b:')));

    // Break the cycle in the editor (not on disk): the diagnostics follow the edited text.
    void proc.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version: 2 }, contentChanges: [{ text: spec('agent-a') }] });
    assert.deepEqual(await diags.next(uri, (d) => d.length === 0), []);

    // A file outside an `agents/` folder and not named *.agent.yaml is not a spec document: no diagnostics.
    const other = open(proc, join(dir, 'compose.yaml'), 'services: [');
    const none = await diags.next(other, () => true, 500).catch(() => 'none');
    assert.equal(none, 'none');
  });

  it('re-checks an open spec when a sibling changes on disk', async function () {
    const { proc } = await ready();
    const diags = diagnosticsOf(proc);
    const uri = open(proc, join(agents, 'a.yaml'), spec('agent-a', { requires: ['agent-b'] }));
    const first = await diags.next(uri, (d) => d.length > 0);
    assert.ok(first.some((d) => d.code === 'workstream/unknown-dependency'));
    const b = join(agents, 'b.yaml');
    writeFileSync(b, spec('agent-b'));
    void proc.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: pathToFileURL(b).href, type: 1 }] });
    assert.deepEqual(await diags.next(uri, (d) => d.length === 0), []);
  });

  it('warns where a spec asks for capabilities the session does not hold', async function () {
    const admin = await ready();
    const { token } = await admin.proc.connection.sendRequest(CapabilityMintRequest.type, {
      subject: 'editor',
      permissions: ['agent:spawn', 'capability:grant', 'task:schedule', 'task:run', 'tool:fs-read'],
    });
    await admin.proc.connection.sendRequest('shutdown');
    void admin.proc.connection.sendNotification('exit');
    await admin.proc.waitForExit();

    const { proc } = await ready({ token });
    const diags = diagnosticsOf(proc);
    const text = spec('agent-a', { capabilities: ['filesystem-read', 'git-access'] });
    const uri = open(proc, join(agents, 'a.yaml'), text);
    const found = await diags.next(uri, (d) => d.length > 0);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(found[0].code, 'session/beyond-grant');
    assert.equal(found[0].severity, 2);
    assert.match(found[0].message, /"git-access" needs tool:shell/);
    const line = text.split('\n').findIndex((l) => l.includes('capabilities_required'));
    const column = text.split('\n')[line].indexOf('git-access');
    assert.deepEqual(found[0].range, { start: { line, character: column }, end: { line, character: column + 'git-access'.length } });
  });

  it('completes property names, enum values, capability names and agent names', async function () {
    writeFileSync(join(agents, 'b.yaml'), spec('agent-b'));
    writeFileSync(join(agents, 'c.yaml'), spec('agent-c'));
    const { proc } = await ready();
    const text = spec('agent-a');
    const uri = open(proc, join(agents, 'a.yaml'), text);
    const lines = text.split('\n');
    const complete = (line: number, character: number) =>
      proc.connection.sendRequest('textDocument/completion', { textDocument: { uri }, position: { line, character } }) as Promise<CompletionItem[]>;
    const labels = (items: CompletionItem[]) => items.map((i) => i.label);

    const priorityLine = lines.findIndex((l) => l.startsWith('  priority:'));
    assert.deepEqual(labels(await complete(priorityLine, lines[priorityLine].length)).slice(0, 4), ['critical', 'high', 'medium', 'low']);

    const metadataKeys = labels(await complete(1, 2));
    for (const key of ['name', 'version', 'created', 'workstream']) assert.ok(metadataKeys.includes(key), `metadata completes ${key}: ${metadataKeys}`);

    const capLine = lines.findIndex((l) => l.includes('capabilities_required'));
    const capItems = labels(await complete(capLine, lines[capLine].indexOf('filesystem-read') + 3));
    for (const name of ['filesystem-read', 'git-access', 'network-access', 'tool:shell']) assert.ok(capItems.includes(name), `capabilities complete ${name}`);

    const edited = text.replace('  required: {}', '  required:\n    ');
    void proc.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version: 2 }, contentChanges: [{ text: edited }] });
    const depLine = edited.split('\n').findIndex((l) => l === '    ');
    const deps = await complete(depLine, 4);
    assert.deepEqual(labels(deps), ['agent-b', 'agent-c'], 'agent names of the folder, itself left out');
    assert.equal(deps[0].insertText, 'agent-b: ');
  });

  it('hovers with the schema description and shows a Run agent CodeLens on metadata.name', async function () {
    const { proc } = await ready();
    const text = spec('agent-a');
    const uri = open(proc, join(agents, 'a.yaml'), text);
    const lines = text.split('\n');
    const capLine = lines.findIndex((l) => l.includes('capabilities_required'));
    const hover = (line: number, character: number) =>
      proc.connection.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character } }) as Promise<{ contents: { value: string } } | null>;

    const onKey = await hover(capLine, 4);
    assert.ok(onKey);
    assert.match(onKey.contents.value, /security\.capabilities_required/);
    const onValue = await hover(capLine, lines[capLine].indexOf('filesystem-read') + 2);
    assert.ok(onValue);
    assert.match(onValue.contents.value, /`tool:fs-read`/);
    const priorityLine = lines.findIndex((l) => l.startsWith('  priority:'));
    const onPriority = await hover(priorityLine, 4);
    assert.ok(onPriority);
    assert.match(onPriority.contents.value, /critical/);

    const lenses = (await proc.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } })) as {
      range: { start: { line: number; character: number } };
      command: { title: string; command: string; arguments: unknown[] };
    }[];
    assert.equal(lenses.length, 1);
    assert.equal(lenses[0].command.command, 'toka.runAgentFromSpec');
    assert.deepEqual(lenses[0].command.arguments, [uri]);
    assert.equal(lenses[0].range.start.line, 1);
    assert.equal(lenses[0].range.start.character, 8);
  });

  it('takes bad input without failing: broken YAML, positions past the end, an oversized text, bad params', async function () {
    const { proc } = await ready();
    const diags = diagnosticsOf(proc);
    const uri = open(proc, join(agents, 'a.yaml'), 'metadata: [\n  name: {\n');
    const broken = await diags.next(uri, (d) => d.length > 0);
    assert.ok(broken.every((d) => typeof d.code === 'string' && d.code.startsWith('yaml/')), JSON.stringify(broken));
    for (const position of [{ line: 0, character: 5 }, { line: 99, character: 0 }, { line: 1, character: 999 }]) {
      const items = await proc.connection.sendRequest('textDocument/completion', { textDocument: { uri }, position });
      assert.ok(Array.isArray(items));
      await proc.connection.sendRequest('textDocument/hover', { textDocument: { uri }, position });
    }
    assert.deepEqual(await proc.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } }), []);

    const big = join(agents, 'big.yaml');
    const bigUri = open(proc, big, `# ${'x'.repeat(300 * 1024)}\n`);
    const limit = await diags.next(bigUri, (d) => d.length > 0);
    assert.equal(limit[0].code, 'limit/bytes');

    for (const bad of [{ textDocument: 'nope' }, { textDocument: { uri }, position: { line: -1, character: 0 } }, null]) {
      await assert.rejects(proc.connection.sendRequest('textDocument/hover', bad), (err: { code: number; data: { name: string } }) => {
        assert.equal(err.code, -32602, JSON.stringify({ bad, err }));
        assert.equal(err.data?.name, 'InvalidParams', JSON.stringify({ bad, err }));
        return true;
      });
    }
    for (const [method, bad] of [
      ['textDocument/didOpen', { textDocument: { uri: 42 } }],
      ['textDocument/didOpen', null],
      ['textDocument/didChange', { textDocument: { uri }, contentChanges: 'x' }],
      ['textDocument/didChange', { textDocument: { uri }, contentChanges: [{ range: {}, text: 'partial' }] }],
      ['textDocument/didClose', {}],
      ['workspace/didChangeWatchedFiles', { changes: [null, { uri: 7 }] }],
    ] as const) {
      void proc.connection.sendNotification(method, bad);
    }
    // The process is still up and serving, and the document kept its text (the ill-formed change was dropped).
    const items = (await proc.connection.sendRequest('textDocument/completion', { textDocument: { uri }, position: { line: 0, character: 0 } })) as CompletionItem[];
    assert.ok(items.some((i) => i.label === 'metadata'));
  });

  it('answers features for an unopened document with null, and stops serving them after shutdown', async function () {
    const { proc } = await ready();
    const uri = pathToFileURL(join(agents, 'never-opened.yaml')).href;
    assert.equal(await proc.connection.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 0, character: 0 } }), null);
    await proc.connection.sendRequest('shutdown');
    await assert.rejects(proc.connection.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 0, character: 0 } }), /shut down/);
  });
});
