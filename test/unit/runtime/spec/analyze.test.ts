/**
 * Agent spec loading: the reference's format in both encodings and as JSON, the normal form and its
 * digest, and bad specs reported with the right line, column and rule.
 */
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { SPEC_LIMITS, analyzeSpecText, specDigest, type Diagnostic } from '../../../../server/runtime/spec/index.js';
import { MINIMAL_YAML } from './fixtures.js';

/** The one diagnostic of `text`, asserting there is exactly one. */
function only(text: string, uri = 'agent.yaml'): Diagnostic {
  const { diagnostics } = analyzeSpecText(uri, text);
  assert.equal(diagnostics.length, 1, JSON.stringify(diagnostics, null, 2));
  return diagnostics[0];
}

function where(d: Diagnostic): string {
  return `${d.line}:${d.column}-${d.endLine}:${d.endColumn} ${d.severity} ${d.rule}`;
}

describe('agent spec loading', () => {
  it('loads the reference example into the normal form (bytes, millicores, ms, permissions) and keeps unknown sections', () => {
    const a = analyzeSpecText('changelog.yaml', MINIMAL_YAML);
    assert.deepEqual(a.diagnostics, []);
    const spec = a.spec!;
    assert.equal(spec.metadata.name, 'changelog-writer');
    assert.equal(spec.metadata.created, '2026-11-20');
    assert.deepEqual(spec.security.resourceLimits, { maxMemoryBytes: 256 * 1024 * 1024, maxCpuMillicores: 500, timeoutMs: 600_000 });
    assert.deepEqual(spec.security.capabilitiesRequired, ['filesystem-read', 'filesystem-write', 'git-access']);
    assert.deepEqual(spec.security.permissions, ['tool:fs-read', 'tool:fs-write', 'tool:shell']);
    assert.deepEqual(spec.reporting.metrics, [{ name: 'entries-written', description: 'Number of changelog entries written' }]);
    assert.deepEqual(spec.dependencies, { required: [], optional: [] });
    assert.deepEqual(spec.extensions, { team_notes: { owner: 'docs-team', reviewers: ['ana', 'bo'] } });
    assert.equal(a.digest, specDigest(spec));
    assert.match(a.digest!, /^[0-9a-f]{64}$/);
  });

  it('gives both encodings of dependencies and metrics, in YAML or JSON, the same normal form and digest', () => {
    const withDeps = (deps: string, metrics: string) =>
      MINIMAL_YAML.replace('  required: []\n', deps).replace('    - entries-written: Number of changelog entries written\n', metrics);
    const mapForm = withDeps(
      '  required:\n    collector: needs the change list\n  optional:\n    linter: style pass\n',
      '    - entries-written: Number of changelog entries written\n',
    );
    const listForm = withDeps(
      '  required:\n    - collector: needs the change list\n  optional:\n    - linter: style pass\n',
      '    - name: entries-written\n      description: Number of changelog entries written\n',
    );
    const a = analyzeSpecText('map.yaml', mapForm);
    const b = analyzeSpecText('list.yaml', listForm);
    const asJson = JSON.stringify(analyzeSpecText('x.yaml', listForm).document, null, 2);
    const c = analyzeSpecText('list.json', asJson);
    for (const x of [a, b, c]) assert.deepEqual(x.diagnostics, []);
    assert.deepEqual(a.spec!.dependencies, {
      required: [{ agent: 'collector', reason: 'needs the change list' }],
      optional: [{ agent: 'linter', reason: 'style pass' }],
    });
    assert.deepEqual(b.spec, a.spec);
    assert.deepEqual(c.spec, a.spec);
    assert.equal(b.digest, a.digest);
    assert.equal(c.digest, a.digest);
    assert.equal(c.format, 'json');
    // A different spec has a different digest.
    assert.notEqual(analyzeSpecText('y.yaml', mapForm.replace('priority: medium', 'priority: low')).digest, a.digest);
  });

  it('points each dependency entry at where it is written, in either encoding', () => {
    const text = MINIMAL_YAML.replace('  required: []\n', '  required:\n    - collector: needs the change list\n    - linter: style\n');
    const a = analyzeSpecText('a.yaml', text);
    const line = text.split('\n').indexOf('    - linter: style') + 1;
    assert.deepEqual(a.dependencyRanges!.required[1], { line, column: 7, endLine: line, endColumn: 20 });
  });

  it('parses the size, CPU and duration spellings of the format', () => {
    const limits = (l: string) => analyzeSpecText('l.yaml', MINIMAL_YAML.replace('{max_memory: 256MB, max_cpu: 50%, timeout: 10m}', l)).spec?.security.resourceLimits;
    assert.deepEqual(limits('{max_memory: 1024, max_cpu: 0.75, timeout: 1000}'), { maxMemoryBytes: 1024, maxCpuMillicores: 750, timeoutMs: 1_000_000 });
    assert.deepEqual(limits('{max_memory: 1GB, max_cpu: 90, timeout: 100ms}'), { maxMemoryBytes: 1024 ** 3, maxCpuMillicores: 900, timeoutMs: 100 });
    assert.deepEqual(limits('{max_memory: 512KB, max_cpu: "150%", timeout: 2h, max_disk_usage: 10GB, max_network_bandwidth: 1MB}'), {
      maxMemoryBytes: 512 * 1024,
      maxCpuMillicores: 1500,
      timeoutMs: 7_200_000,
      maxDiskBytes: 10 * 1024 ** 3,
      maxNetworkBytesPerSecond: 1024 ** 2,
    });
    assert.deepEqual(limits('{timeout: 30s}'), { timeoutMs: 30_000 });
  });

  it('defaults: sandbox on, no permissions, empty lists, when optional sections are absent', () => {
    const text = MINIMAL_YAML.slice(0, MINIMAL_YAML.indexOf('dependencies:'));
    const spec = analyzeSpecText('s.yaml', text).spec!;
    assert.equal(spec.security.sandbox, true);
    assert.deepEqual(spec.security.permissions, []);
    assert.deepEqual(spec.reporting, { channels: [], metrics: [] });
    assert.deepEqual(spec.extensions, {});
    assert.equal(spec.llm, undefined);
    assert.deepEqual(spec.tools, { mcpServers: [] });
  });

  it('reads llm (provider, model) and tools.mcp_servers into the normal form, not the extensions', () => {
    const a = analyzeSpecText('l.yaml', `${MINIMAL_YAML}llm:\n  provider: mcp-sampling\ntools:\n  mcp_servers: [notes, git-hub]\n`);
    assert.deepEqual(a.diagnostics, []);
    assert.deepEqual(a.spec!.llm, { provider: 'mcp-sampling' });
    assert.deepEqual(a.spec!.tools, { mcpServers: ['notes', 'git-hub'] });
    assert.equal(Object.hasOwn(a.spec!.extensions, 'llm') || Object.hasOwn(a.spec!.extensions, 'tools'), false);
  });

  it('keeps a __proto__ section as data (own property), not as the prototype', () => {
    const a = analyzeSpecText('p.yaml', `${MINIMAL_YAML}__proto__: {polluted: true}\n`);
    assert.deepEqual(a.diagnostics, []);
    assert.ok(Object.hasOwn(a.spec!.extensions, '__proto__'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('warns (does not reject) on an unknown domain', () => {
    const a = analyzeSpecText('d.yaml', MINIMAL_YAML.replace('domain: documentation', 'domain: astrology'));
    assert.equal(a.diagnostics.length, 1);
    assert.equal(where(a.diagnostics[0]), '8:11-8:20 warning spec/unknown-domain');
    assert.ok(a.spec, 'a warning does not stop the spec loading');
  });
});

describe('agent spec diagnostics: line, column and rule', () => {
  it('a name breaking its pattern: schema/pattern at the value', () => {
    const d = only(MINIMAL_YAML.replace('name: changelog-writer', 'name: Changelog_Writer'));
    assert.equal(where(d), '2:9-2:25 error schema/pattern');
    assert.equal(d.path, '/metadata/name');
    assert.equal(d.schemaPath, '#/properties/metadata/properties/name/pattern');
    assert.match(d.message, /metadata\.name: "Changelog_Writer" does not match/);
  });

  it('an unknown llm provider, a bad MCP server name, and a server named twice', () => {
    const base = MINIMAL_YAML.split('\n').length;
    const { diagnostics } = analyzeSpecText('x.yaml', `${MINIMAL_YAML}llm:\n  provider: gemini\ntools:\n  mcp_servers: [a__b, ok, ok]\n`);
    assert.deepEqual(
      diagnostics.map((d) => [d.line - base, d.rule, d.path]),
      [
        [1, 'schema/enum', '/llm/provider'],
        [3, 'schema/uniqueItems', '/tools/mcp_servers'],
        [3, 'schema/pattern', '/tools/mcp_servers/0'],
      ],
    );
  });

  it('a priority outside the enum: schema/enum', () => {
    const d = only(MINIMAL_YAML.replace('      priority: high', '      priority: urgent'));
    assert.equal(where(d), '19:17-19:23 error schema/enum');
    assert.match(d.message, /tasks\.default\[0\]\.priority: "urgent" is not one of critical, high, medium, low/);
  });

  it('a missing required property: schema/required at the key of the object that lacks it', () => {
    const d = only(MINIMAL_YAML.replace('  version: v0.1.0\n', ''));
    assert.equal(where(d), '1:1-1:9 error schema/required');
    assert.match(d.message, /metadata: missing required property "version"/);
  });

  it('a missing top-level section: schema/required on the first line', () => {
    const text = MINIMAL_YAML.replace(/^tasks:\n(?: {2}.*\n)+/m, '');
    const d = only(text);
    assert.equal(where(d), '1:1-1:10 error schema/required');
    assert.match(d.message, /missing required property "tasks"/);
  });

  it('a misspelt nested property: schema/additionalProperties at the key', () => {
    const d = only(MINIMAL_YAML.replace('max_cpu: 50%', 'max_cpus: 50%'));
    assert.equal(where(d), '30:40-30:48 error schema/additionalProperties');
    assert.match(d.message, /security\.resource_limits: unknown property "max_cpus"/);
  });

  it('a value of the wrong type: schema/type', () => {
    const d = only(MINIMAL_YAML.replace('sandbox: true', 'sandbox: sometimes'));
    assert.equal(where(d), '28:12-28:21 error schema/type');
    assert.match(d.message, /security\.sandbox: must be boolean, not string/);
  });

  it('a dependency name breaking the name rule: at the key, in either encoding', () => {
    const map = only(MINIMAL_YAML.replace('  required: []\n', '  required:\n    Bad_Name: why\n'));
    assert.equal(where(map), '22:5-22:13 error schema/pattern');
    const list = only(MINIMAL_YAML.replace('  required: []\n', '  required:\n    - Bad_Name: why\n'));
    assert.equal(where(list), '22:7-22:15 error schema/pattern');
  });

  it('a bad size spelling and an out-of-range CPU', () => {
    const size = only(MINIMAL_YAML.replace('max_memory: 256MB', 'max_memory: 256 megs'));
    assert.equal(where(size), '30:33-30:41 error schema/pattern');
    const cpu = only(MINIMAL_YAML.replace('max_cpu: 50%', 'max_cpu: 0%'));
    assert.equal(where(cpu), '30:49-30:51 error spec/value-range');
  });

  it('an unknown capability name: spec/unknown-capability at the item', () => {
    const d = only(MINIMAL_YAML.replace('git-access]', 'git-access, teleport]'));
    assert.equal(where(d), '29:74-29:82 error spec/unknown-capability');
    assert.equal(d.path, '/security/capabilities_required/3');
  });

  it('reports every error at once, in line order', () => {
    const text = MINIMAL_YAML.replace('priority: medium', 'priority: urgent').replace('name: changelog-writer', 'name: X');
    const { diagnostics, spec } = analyzeSpecText('m.yaml', text);
    assert.deepEqual(
      diagnostics.map((d) => `${d.line} ${d.rule}`),
      ['2 schema/pattern', '9 schema/enum'],
    );
    assert.equal(spec, undefined);
  });

  it('YAML syntax: a duplicate key and a broken flow sequence', () => {
    const dup = only(MINIMAL_YAML.replace('  priority: medium\n', '  priority: medium\n  priority: low\n'));
    assert.equal(dup.rule, 'yaml/DUPLICATE_KEY');
    assert.equal(dup.line, 10);
    const flow = analyzeSpecText('f.yaml', MINIMAL_YAML.replace('primary: [summarise-commits]', 'primary: [summarise-commits'));
    assert.ok(flow.diagnostics.length >= 1);
    assert.match(flow.diagnostics[0].rule, /^yaml\//);
    assert.equal(flow.spec, undefined);
  });

  it('JSON: strict syntax with the position of the error; YAML-only syntax is not JSON', () => {
    const d = only('{\n  "metadata": {},\n}\n', 'agent.json');
    assert.equal(d.rule, 'json/syntax');
    assert.equal(d.line, 3);
    assert.equal(d.column, 1);
    assert.equal(only('metadata: {}\n', 'agent.json').rule, 'json/syntax');
  });

  it('JSON: schema errors carry JSON line and column too', () => {
    const json = JSON.stringify({ ...(analyzeSpecText('x.yaml', MINIMAL_YAML).document as object), spec: { name: 'Short', domain: 'testing', priority: 'now' } }, null, 2);
    const d = only(json, 'agent.json');
    const line = json.split('\n').findIndex((l) => l.includes('"now"')) + 1;
    assert.equal(where(d), `${line}:17-${line}:22 error schema/enum`);
  });

  it('a document that is not a map', () => {
    assert.equal(only('- just\n- a list\n').rule, 'schema/type');
    assert.equal(only('').rule, 'spec/empty');
    assert.equal(only('# only a comment\n').rule, 'spec/empty');
  });
});

describe('agent spec bounds', () => {
  it('refuses a file over the size bound without parsing it', () => {
    const big = `${MINIMAL_YAML}# ${'x'.repeat(SPEC_LIMITS.bytes)}\n`;
    const d = only(big);
    assert.equal(d.rule, 'limit/bytes');
    assert.match(d.message, /at most 262144 bytes/);
  });

  it('refuses a second document', () => {
    const d = only(`${MINIMAL_YAML}---\nmetadata: {}\n`);
    assert.equal(d.rule, 'limit/documents');
    assert.equal(d.line, 34);
  });

  it('refuses nesting deeper than the bound', () => {
    const deep = `${MINIMAL_YAML}deep: ${'['.repeat(SPEC_LIMITS.depth + 1)}${']'.repeat(SPEC_LIMITS.depth + 1)}\n`;
    assert.equal(only(deep).rule, 'limit/depth');
    const fine = `${MINIMAL_YAML}deep: ${'['.repeat(10)}${']'.repeat(10)}\n`;
    assert.deepEqual(analyzeSpecText('ok.yaml', fine).diagnostics, []);
  });

  it('refuses an alias bomb', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const d = only(`${MINIMAL_YAML}bomb:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
    assert.equal(d.rule, 'limit/aliases');
  });

  it('refuses a map or list used as a key, and non-JSON numbers', () => {
    assert.equal(only(`${MINIMAL_YAML}extra:\n  ? [a, b]\n  : c\n`).rule, 'spec/complex-key');
    assert.equal(only(`${MINIMAL_YAML}extra: .inf\n`).rule, 'spec/non-json-value');
  });

  it('keeps the process up on arbitrary YAML-ish input: always a result, never a throw', () => {
    const samples = ['{', ':', '- - - -', '&a *a', '!!binary AAAA', '? a', 'a: !!str', '"\\u0000"', stringify({ metadata: null })];
    for (const s of samples) {
      const a = analyzeSpecText('fuzz.yaml', s);
      assert.ok(a.diagnostics.some((d) => d.severity === 'error'), s);
      for (const d of a.diagnostics) assert.ok(d.line >= 1 && d.column >= 1, JSON.stringify(d));
    }
  });
});
