/** Workstreams: dependency waves, cycles and unknown dependencies reported at the dependency entry. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeSpecText, loadWorkstream, planWorkstream, type SpecAnalysis } from '../../../../server/runtime/spec/index.js';
import { memberYaml } from './fixtures.js';

function member(name: string, priority: string, deps: string[], listForm = false): SpecAnalysis {
  return analyzeSpecText(`${name}.yaml`, memberYaml(name, priority, deps, listForm));
}

/** The reference's worked example: a (critical), b (high) ← a, c (high) ← a, d (medium) ← b, c. */
function workedExample(): SpecAnalysis[] {
  return [member('agent-d', 'medium', ['agent-b', 'agent-c'], true), member('agent-c', 'high', ['agent-a']), member('agent-b', 'high', ['agent-a'], true), member('agent-a', 'critical', [])];
}

describe('workstream planning', () => {
  it("the reference's worked example gives waves [[a], [b, c], [d]] and order [a, b, c, d]", () => {
    const plan = planWorkstream(workedExample());
    assert.deepEqual(plan.diagnostics, []);
    assert.deepEqual(plan.waves, [['agent-a'], ['agent-b', 'agent-c'], ['agent-d']]);
    assert.deepEqual(plan.order, ['agent-a', 'agent-b', 'agent-c', 'agent-d']);
  });

  it('is stable: any input order gives the same plan; within a wave, priority first, then name', () => {
    const analyses = workedExample();
    const expected = planWorkstream(analyses).waves;
    for (let i = 0; i < 6; i++) {
      analyses.push(analyses.shift()!);
      if (i % 2 === 1) analyses.reverse();
      assert.deepEqual(planWorkstream(analyses).waves, expected);
    }
    const byPriority = planWorkstream([member('zed-critical', 'critical', []), member('abe-low', 'low', []), member('mia-high', 'high', [])]);
    assert.deepEqual(byPriority.waves, [['zed-critical', 'mia-high', 'abe-low']]);
  });

  it('reports an unknown dependency at the dependency entry, naming both agents; no waves', () => {
    const text = memberYaml('agent-b', 'high', ['agent-a', 'agent-x'], true);
    const plan = planWorkstream([member('agent-a', 'high', []), analyzeSpecText('b.yaml', text)]);
    assert.equal(plan.waves, undefined);
    assert.equal(plan.diagnostics.length, 1);
    const d = plan.diagnostics[0];
    const line = text.split('\n').indexOf('    - agent-x: needs agent-x') + 1;
    assert.deepEqual({ file: d.file, rule: d.rule, line: d.line, column: d.column, endLine: d.endLine, endColumn: d.endColumn }, {
      file: 'b.yaml',
      rule: 'workstream/unknown-dependency',
      line,
      column: 7,
      endLine: line,
      endColumn: 29,
    });
    assert.match(d.message, /"agent-b" requires "agent-x"/);
  });

  it('reports a cycle at every dependency entry in it, naming the agents of the cycle', () => {
    const plan = planWorkstream([
      member('agent-a', 'high', ['agent-c']),
      member('agent-b', 'high', ['agent-a']),
      member('agent-c', 'high', ['agent-b'], true),
      member('agent-d', 'low', ['agent-a']),
    ]);
    assert.equal(plan.waves, undefined);
    assert.deepEqual(
      plan.diagnostics.map((d) => [d.file, d.rule, d.line]),
      [
        ['agent-a.yaml', 'workstream/cycle', 22],
        ['agent-b.yaml', 'workstream/cycle', 22],
        ['agent-c.yaml', 'workstream/cycle', 22],
      ],
    );
    for (const d of plan.diagnostics) assert.match(d.message, /cycle among agent-a, agent-b, agent-c: agent-a → agent-c → agent-b → agent-a/);
  });

  it('reports an agent that depends on itself as a cycle', () => {
    const plan = planWorkstream([member('agent-a', 'high', ['agent-a'])]);
    assert.deepEqual(plan.diagnostics.map((d) => d.rule), ['workstream/cycle']);
    assert.match(plan.diagnostics[0].message, /agent-a → agent-a/);
  });

  it('reports a duplicate agent name, and a dependant of an invalid spec gets no "unknown" error', () => {
    const dup = planWorkstream([member('agent-a', 'high', []), { ...member('agent-a', 'low', []), uri: 'copy.yaml' }]);
    assert.deepEqual(dup.diagnostics.map((d) => `${d.file} ${d.rule}`), ['copy.yaml workstream/duplicate-agent']);
    const broken = analyzeSpecText('agent-a.yaml', memberYaml('agent-a', 'someday', []));
    const plan = planWorkstream([broken, member('agent-b', 'high', ['agent-a'])]);
    assert.deepEqual(plan.diagnostics.map((d) => `${d.file} ${d.rule}`), ['agent-a.yaml schema/enum', 'agent-a.yaml schema/enum']);
    assert.equal(plan.waves, undefined);
  });

  it('optional dependencies do not order, and need not be in the workstream', () => {
    const text = memberYaml('agent-b', 'high', []).replace('  required: {}\n', '  required: {}\n  optional:\n    agent-a: nice to have\n    elsewhere: outside\n');
    const plan = planWorkstream([member('agent-a', 'low', []), analyzeSpecText('b.yaml', text)]);
    assert.deepEqual(plan.diagnostics, []);
    assert.deepEqual(plan.waves, [['agent-b', 'agent-a']]);
  });

  it('loads a folder: spec files only, sorted, planned', () => {
    const dir = mkdtempSync(join(tmpdir(), 'toka-ws-'));
    try {
      for (const a of workedExample()) writeFileSync(join(dir, a.uri), memberYaml(a.spec!.metadata.name, a.spec!.spec.priority, a.spec!.dependencies.required.map((d) => d.agent)));
      writeFileSync(join(dir, 'README.md'), 'not a spec');
      const ws = loadWorkstream(dir);
      assert.deepEqual(ws.analyses.map((a) => a.uri), ['agent-a', 'agent-b', 'agent-c', 'agent-d'].map((n) => join(dir, `${n}.yaml`)));
      assert.deepEqual(ws.waves, [['agent-a'], ['agent-b', 'agent-c'], ['agent-d']]);
      const empty = mkdtempSync(join(tmpdir(), 'toka-ws-empty-'));
      assert.deepEqual(loadWorkstream(empty).diagnostics.map((d) => d.rule), ['workstream/empty']);
      rmSync(empty, { recursive: true });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
