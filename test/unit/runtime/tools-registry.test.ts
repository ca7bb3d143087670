import assert from 'node:assert/strict';
import { ToolError } from '../../../server/runtime/tools/errors.js';
import { builtinTools } from '../../../server/runtime/tools/index.js';
import { ToolRegistry, type SchemaViolation } from '../../../server/runtime/tools/registry.js';
import type { Tool, ToolManifest } from '../../../server/runtime/tools/types.js';
import { ctx, rejectsWith } from './tools-helpers.js';

function tool(manifest: Partial<ToolManifest>, call: Tool['call'] = async () => ({ content: 'ok', isError: false })): Tool {
  return {
    manifest: { name: 't', description: 'd', inputSchema: { type: 'object' }, sideEffect: 'none', permission: 'tool:fs-read', ...manifest },
    call,
  };
}

function registerFails(r: ToolRegistry, t: Tool, pattern: RegExp): void {
  assert.throws(() => r.register(t), (e: unknown) => e instanceof ToolError && e.code === 'InvalidArguments' && pattern.test(e.message));
}

describe('runtime/tools: registry', () => {
  const full = () => {
    const r = new ToolRegistry();
    for (const t of builtinTools({ http: { allowHosts: [] } })) r.register(t);
    return r;
  };

  it('lists only the tools the held permissions allow, wildcards included', () => {
    const r = full();
    const names = (held: string[]) => r.list(held).map((m) => m.name);
    assert.deepEqual(names([]), []);
    const all = ['fs_read', 'fs_write', 'fs_list', 'fs_search', 'shell', 'http_fetch'];
    assert.deepEqual(names(['tool:fs-read']), ['fs_read', 'fs_list', 'fs_search']);
    assert.deepEqual(names(['tool:fs-write', 'state:read']), ['fs_write']);
    assert.deepEqual(names(['tool:*']), all);
    assert.deepEqual(names(['*']), all);
    assert.deepEqual(names(['tool:fs-readx', 'tool:']), []);
    assert.deepEqual(names(['agent:*', 'tool:http']), ['http_fetch']);
  });

  it('refuses a call without the permission, before validating or running anything', async () => {
    let ran = false;
    const r = new ToolRegistry();
    r.register(tool({ permission: 'tool:shell' }, async () => ((ran = true), { content: '', isError: false })));
    const e = await rejectsWith(r.call('t', { bad: 'args' }, ctx('/'), ['tool:fs-read']), 'Denied');
    assert.deepEqual(e.data, { required: 'tool:shell' });
    assert.equal(ran, false);
    await rejectsWith(r.call('nope', {}, ctx('/'), ['*']), 'NotFound');
  });

  it('validation errors name the rule broken, where, and in the schema', () => {
    const r = full();
    const cases: [string, unknown, Partial<SchemaViolation>][] = [
      ['fs_read', {}, { path: '', rule: 'required', schemaPath: '#/required' }],
      ['fs_read', { path: 5 }, { path: '/path', rule: 'type', schemaPath: '#/properties/path/type' }],
      ['fs_read', { path: 'a', offset: -1 }, { path: '/offset', rule: 'minimum' }],
      ['fs_read', { path: 'a', extra: 1 }, { rule: 'additionalProperties' }],
      ['fs_write', { path: 'a', content: 'x', mode: 'truncate' }, { path: '/mode', rule: 'enum' }],
      ['shell', { command: '' }, { path: '/command', rule: 'minLength' }],
      ['fs_read', 'not an object', { rule: 'type', schemaPath: '#/type' }],
    ];
    for (const [name, args, expected] of cases) {
      try {
        r.validate(name, args);
        assert.fail(`${name} ${JSON.stringify(args)} validated`);
      } catch (err) {
        assert.ok(err instanceof ToolError && err.code === 'InvalidArguments', String(err));
        const first = (err.data?.errors as SchemaViolation[])[0];
        assert.deepEqual({ ...first, ...expected }, first, `${name} ${JSON.stringify(args)}: ${err.message}`);
        assert.match(err.message, new RegExp(`rule ${expected.rule}`));
      }
    }
    assert.throws(() => r.validate('fs_read', { path: 'a', extra: 1 }), /must NOT have additional properties \(extra\)/);
    r.validate('fs_read', { path: 'a', offset: 0 });
  });

  it('refuses oversized arguments with the bound named', async () => {
    const r = new ToolRegistry({ maxArgumentBytes: 100 });
    r.register(tool({ inputSchema: { type: 'object', properties: { s: { type: 'string' } } } }));
    const e = await rejectsWith(r.call('t', { s: 'x'.repeat(200) }, ctx('/'), ['*']), 'LimitExceeded');
    assert.equal(e.data?.limit, 'maxArgumentBytes');
  });

  it('refuses bad manifests: duplicate, illegal name, side effect, permission, schema size, remote $ref', () => {
    const r = new ToolRegistry();
    r.register(tool({}));
    registerFails(r, tool({}), /"t" is already registered/);
    registerFails(r, tool({ name: 'a.b' }), /does not match/);
    registerFails(r, tool({ name: 'x'.repeat(65) }), /does not match/);
    registerFails(r, tool({ name: 'u', sideEffect: 'sometimes' as never }), /side effect must be one of/);
    registerFails(r, tool({ name: 'u', permission: 'tool:*' }), /not a concrete permission/);
    registerFails(r, tool({ name: 'u', permission: 'tool:teleport' }), /not a concrete permission/);
    registerFails(r, tool({ name: 'u', inputSchema: { type: 'string' } }), /must have type "object"/);
    const huge = { type: 'object', properties: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, { type: 'string', description: 'xxxxxxxx' }])) };
    registerFails(r, tool({ name: 'u', inputSchema: huge }), /input schema is \d+ bytes \(limit 65536\)/);
    registerFails(r, tool({ name: 'u', inputSchema: { type: 'object', properties: { a: { $ref: 'https://evil.example/s.json' } } } }), /remote reference/);
    registerFails(r, tool({ name: 'u', outputSchema: { $ref: 'other.json#/x' } }), /output schema has a remote reference/);
    registerFails(r, tool({ name: 'u', inputSchema: { type: 'object', properties: { a: { type: 'nonsense' } } } }), /does not compile/);
    // Local references and a foreign $schema dialect line are fine.
    r.register(tool({ name: 'v', inputSchema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', $defs: { s: { type: 'string' } }, properties: { a: { $ref: '#/$defs/s' } } } }));
    assert.throws(() => r.validate('v', { a: 1 }), /\/a must be string/);
    // Two servers may use the same $id for different schemas; each tool keeps its own.
    r.register(tool({ name: 'w1', inputSchema: { $id: 'urn:toka:same', type: 'object', required: ['a'] } }));
    r.register(tool({ name: 'w2', inputSchema: { $id: 'urn:toka:same', type: 'object', required: ['b'] } }));
    r.validate('w1', { a: 1 });
    r.validate('w2', { b: 1 });
    assert.throws(() => r.validate('w2', { a: 1 }), /required property 'b'/);
    assert.deepEqual(r.list(['*']).map((m) => m.name), ['t', 'v', 'w1', 'w2']);
  });

  it('reports a tool that throws something other than a ToolError as Failed', async () => {
    const r = new ToolRegistry();
    r.register(tool({}, async () => {
      throw new RangeError('boom');
    }));
    const e = await rejectsWith(r.call('t', {}, ctx('/'), ['*']), 'Failed');
    assert.match(e.message, /boom/);
  });
});
