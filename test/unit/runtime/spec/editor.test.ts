/** Editor helpers: where the cursor is, and what the schema says there (hover text, enums, properties). */
import assert from 'node:assert/strict';
import { AGENT_SPEC_SCHEMA, cursorContext, describeSchemaPath } from '../../../../server/runtime/spec/index.js';
import { MINIMAL_YAML } from './fixtures.js';

/** 1-based position of `needle` (plus `delta` columns) in `text`. */
function pos(text: string, needle: string, delta = 0): { line: number; column: number } {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, needle);
  return { line: i + 1, column: lines[i].indexOf(needle) + 1 + delta };
}

describe('spec editor helpers', () => {
  it('locates keys and values, including inside flow maps and lists', () => {
    assert.deepEqual(cursorContext(MINIMAL_YAML, pos(MINIMAL_YAML, 'priority: medium', 2)), { kind: 'key', path: ['spec'], key: 'priority', prefix: 'pr' });
    assert.deepEqual(cursorContext(MINIMAL_YAML, pos(MINIMAL_YAML, 'medium', 3)), { kind: 'value', path: ['spec', 'priority'], prefix: 'med' });
    assert.deepEqual(cursorContext(MINIMAL_YAML, pos(MINIMAL_YAML, 'max_cpu', 1)), { kind: 'key', path: ['security', 'resource_limits'], key: 'max_cpu', prefix: 'm' });
    assert.deepEqual(cursorContext(MINIMAL_YAML, pos(MINIMAL_YAML, 'git-access', 3)), { kind: 'value', path: ['security', 'capabilities_required', 2], prefix: 'git' });
  });

  it('a blank line, a half-typed key and an empty value', () => {
    const blank = MINIMAL_YAML.replace('  priority: medium\n', '  priority: medium\n  \n');
    assert.deepEqual(cursorContext(blank, { line: 10, column: 3 }), { kind: 'key', path: ['spec'], prefix: '' });
    const typing = MINIMAL_YAML.replace('  priority: medium\n', '  priority: medium\n  desc\n');
    assert.deepEqual(cursorContext(typing, { line: 10, column: 7 }), { kind: 'key', path: ['spec'], key: 'desc', prefix: 'desc' });
    const empty = MINIMAL_YAML.replace('  priority: medium\n', '  priority: \n');
    assert.deepEqual(cursorContext(empty, { line: 9, column: 13 }), { kind: 'value', path: ['spec', 'priority'], prefix: '' });
    assert.deepEqual(cursorContext(`${MINIMAL_YAML}\n`, { line: 36, column: 1 }), { kind: 'key', path: [], prefix: '' });
    assert.deepEqual(cursorContext('', { line: 1, column: 1 }), { kind: 'key', path: [], prefix: '' });
  });

  it('describes a path: hover text, enum, properties (through both encodings of a section)', () => {
    const priority = describeSchemaPath(['spec', 'priority'])!;
    assert.deepEqual(priority.enum, ['critical', 'high', 'medium', 'low']);
    assert.match(priority.description!, /Priority of the agent/);
    assert.match(describeSchemaPath(['dependencies', 'required', 0, 'some-agent'])!.description!, /Why this agent depends/);
    assert.match(describeSchemaPath(['dependencies', 'required', 'some-agent'])!.description!, /Why this agent depends/);
    assert.deepEqual(describeSchemaPath(['security'])!.properties.map((p) => p.name), ['sandbox', 'capabilities_required', 'resource_limits']);
    assert.deepEqual(describeSchemaPath(['reporting', 'metrics', 0, 'type'])!.enum, ['counter', 'gauge', 'histogram', 'summary']);
    assert.match(describeSchemaPath(['my_section'])!.description!, /kept as written/);
    assert.equal(describeSchemaPath(['spec', 'nonsense']), undefined);
  });

  it('every property of the schema has a description (hover text)', () => {
    const missing: string[] = [];
    const walk = (schema: Record<string, unknown>, at: string) => {
      if (typeof schema.description !== 'string' || schema.description.length < 5) missing.push(at);
      const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [k, v] of Object.entries(props)) walk(v, `${at}/${k}`);
      for (const k of ['items', 'then', 'else', 'additionalProperties', 'propertyNames'] as const) {
        const sub = schema[k];
        if (typeof sub === 'object' && sub !== null) walk(sub as Record<string, unknown>, `${at}/${k}`);
      }
    };
    walk(AGENT_SPEC_SCHEMA as unknown as Record<string, unknown>, '#');
    assert.deepEqual(missing, []);
  });
});
