/**
 * A workstream: the specs of one folder, ordered by their required dependencies into waves. An agent is in
 * the first wave after all its required dependencies; within a wave agents are ordered by priority
 * (critical first), then name, so the plan is the same on every run. Optional dependencies do not order.
 */
import type { SpecAnalysis } from './analyze.js';
import type { AgentSpec, Diagnostic, Priority, SourceRange } from './types.js';

export interface WorkstreamPlan {
  /** Every spec's diagnostics (in the order given), then the workstream's own. */
  diagnostics: Diagnostic[];
  /** Dependency waves of agent names; present only when there is no error at all. */
  waves?: string[][];
  /** The waves flattened: the run order. */
  order?: string[];
  /** The valid specs by agent name. */
  agents: Map<string, { spec: AgentSpec; analysis: SpecAnalysis }>;
}

const PRIORITY_RANK: Record<Priority, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** Plan a workstream from its analysed specs (pure: `loadWorkstream` reads the folder). */
export function planWorkstream(analyses: readonly SpecAnalysis[]): WorkstreamPlan {
  const diagnostics: Diagnostic[] = analyses.flatMap((a) => a.diagnostics);
  const own: Diagnostic[] = [];
  const agents = new Map<string, { spec: AgentSpec; analysis: SpecAnalysis }>();
  /** Names of specs that did not load but say who they are: their dependants get no "unknown" error. */
  const invalidNames = new Set<string>();
  const workstreams = new Map<string, string>();

  for (const analysis of analyses) {
    if (!analysis.spec) {
      const name = writtenName(analysis.document);
      if (name) invalidNames.add(name);
      continue;
    }
    const { spec } = analysis;
    const name = spec.metadata.name;
    const first = agents.get(name);
    if (first) {
      own.push(at(analysis, nameRange(analysis), 'workstream/duplicate-agent', `agent "${name}" is also defined in ${first.analysis.uri}`));
      continue;
    }
    agents.set(name, { spec, analysis });
    if (!workstreams.has(spec.metadata.workstream)) workstreams.set(spec.metadata.workstream, name);
  }
  if (workstreams.size > 1) {
    const names = [...workstreams.keys()].map((w) => `"${w}"`).join(', ');
    for (const { analysis } of agents.values()) {
      own.push({ ...at(analysis, nameRange(analysis), 'workstream/mixed', `the folder mixes workstreams ${names}`), severity: 'warning' });
    }
  }

  const edges = new Map<string, string[]>();
  for (const [name, { spec, analysis }] of sorted(agents)) {
    const deps: string[] = [];
    spec.dependencies.required.forEach((dep, i) => {
      const range = analysis.dependencyRanges?.required[i] ?? nameRange(analysis);
      if (agents.has(dep.agent)) {
        if (!deps.includes(dep.agent)) deps.push(dep.agent);
      } else if (!invalidNames.has(dep.agent)) {
        own.push(at(analysis, range, 'workstream/unknown-dependency', `agent "${name}" requires "${dep.agent}", which is not an agent of this workstream`));
      }
    });
    edges.set(name, deps);
  }

  for (const { component, cycle } of cycles(edges)) {
    const members = new Set(component);
    const text = `${cycle.join(' → ')} → ${cycle[0]}`;
    for (const name of [...members].sort()) {
      const { spec, analysis } = agents.get(name)!;
      spec.dependencies.required.forEach((dep, i) => {
        if (members.has(dep.agent)) {
          const range = analysis.dependencyRanges?.required[i] ?? nameRange(analysis);
          own.push(at(analysis, range, 'workstream/cycle', `dependency cycle among ${[...members].sort().join(', ')}: ${text}`));
        }
      });
    }
  }

  diagnostics.push(...own);
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics, agents };
  const waves = layer(edges, agents);
  return { diagnostics, agents, waves, order: waves.flat() };
}

function at(analysis: SpecAnalysis, range: SourceRange, rule: string, message: string): Diagnostic {
  return { file: analysis.uri, ...range, severity: 'error', rule, message };
}

function nameRange(analysis: SpecAnalysis): SourceRange {
  return analysis.nameRange ?? { line: 1, column: 1, endLine: 1, endColumn: 1 };
}

function writtenName(document: unknown): string | undefined {
  if (typeof document !== 'object' || document === null || !Object.hasOwn(document, 'metadata')) return undefined;
  const metadata = (document as { metadata: unknown }).metadata;
  if (typeof metadata !== 'object' || metadata === null || !Object.hasOwn(metadata, 'name')) return undefined;
  const name = (metadata as { name: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

function sorted<V>(map: Map<string, V>): [string, V][] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The strongly connected components of the graph that hold a cycle (Tarjan), sorted, each with one of its
 * cycles: a path from the component's smallest name back to it.
 */
function cycles(edges: Map<string, string[]>): { component: string[]; cycle: string[] }[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = component.length === 1 && (edges.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((component) => ({ component, cycle: cyclePath(component, edges) })).sort((a, b) => (a.component[0] < b.component[0] ? -1 : 1));
}

/** A cycle through the component's smallest member, following the smallest next name inside the component. */
function cyclePath(component: string[], edges: Map<string, string[]>): string[] {
  const members = new Set(component);
  const start = component[0];
  const path = [start];
  const seen = new Set([start]);
  const walk = (v: string): boolean => {
    for (const w of [...(edges.get(v) ?? [])].filter((x) => members.has(x)).sort()) {
      if (w === start) return true;
      if (seen.has(w)) continue;
      seen.add(w);
      path.push(w);
      if (walk(w)) return true;
      path.pop();
    }
    return false;
  };
  walk(start);
  return path;
}

/** Kahn's layering of an acyclic graph whose every edge target is a node. */
function layer(edges: Map<string, string[]>, agents: WorkstreamPlan['agents']): string[][] {
  const waveOf = new Map<string, number>();
  const waves: string[][] = [];
  let remaining = [...edges.keys()];
  while (remaining.length > 0) {
    const ready = remaining.filter((v) => (edges.get(v) ?? []).every((d) => waveOf.has(d)));
    ready.sort((a, b) => rank(agents, a) - rank(agents, b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const v of ready) waveOf.set(v, waves.length);
    waves.push(ready);
    remaining = remaining.filter((v) => !waveOf.has(v));
  }
  return waves;
}

function rank(agents: WorkstreamPlan['agents'], name: string): number {
  return PRIORITY_RANK[agents.get(name)!.spec.spec.priority];
}
