/**
 * `toka spec check <file|dir>...` and `toka spec schema`. Check prints each diagnostic on stdout like a
 * compiler (`file:line:col: error rule: message`), a summary on stderr, and exits 1 when there is an
 * error; `--json` prints one JSON object instead. A folder is a workstream: its dependency waves are checked
 * and shown too. See docs/agents.md, "Agent specs".
 */
import { statSync } from 'node:fs';
import { AGENT_SPEC_SCHEMA, loadSpecFile, loadWorkstream, type Diagnostic, type SpecAnalysis } from '../runtime/spec/index.js';
import { UsageError } from './args.js';
import type { Command } from './commands.js';

interface Checked {
  analyses: SpecAnalysis[];
  diagnostics: Diagnostic[];
  /** Per folder checked: its waves, when it has no error. */
  workstreams: { dir: string; waves?: string[][] }[];
}

function check(paths: string[]): Checked {
  const result: Checked = { analyses: [], diagnostics: [], workstreams: [] };
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      throw new UsageError(`spec check: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (isDir) {
      const ws = loadWorkstream(path);
      result.analyses.push(...ws.analyses);
      result.diagnostics.push(...ws.diagnostics);
      result.workstreams.push({ dir: path, waves: ws.waves });
    } else {
      const analysis = loadSpecFile(path);
      result.analyses.push(analysis);
      result.diagnostics.push(...analysis.diagnostics);
    }
  }
  return result;
}

/** `file:line:col: severity rule: message`, the line compilers and editors' problem matchers read. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity} ${d.rule}: ${d.message}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export const specCheckCommand: Command = {
  summary: 'check agent specs (a file, or a folder = a workstream) and print diagnostics: [--json]',
  options: { json: { type: 'boolean', help: 'print the diagnostics, files and waves as one JSON document', default: 'off' } },
  run: async (flags, positionals) => {
    if (positionals.length === 0) throw new UsageError('spec check: give a spec file or a folder of specs');
    const { analyses, diagnostics, workstreams } = check(positionals);
    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    const warnings = diagnostics.filter((d) => d.severity === 'warning').length;
    if (flags.json) {
      const files = analyses.map((a) => ({ file: a.uri, agent: a.spec?.metadata.name, digest: a.digest }));
      process.stdout.write(`${JSON.stringify({ ok: errors === 0, files, diagnostics, workstreams }, null, 2)}\n`);
    } else {
      for (const d of diagnostics) process.stdout.write(`${formatDiagnostic(d)}\n`);
      for (const w of workstreams) {
        if (w.waves) process.stderr.write(`toka: ${w.dir}: waves ${JSON.stringify(w.waves)}\n`);
      }
      process.stderr.write(`toka: ${plural(analyses.length, 'spec')} checked: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}\n`);
    }
    return errors === 0 ? 0 : 1;
  },
};

export const specSchemaCommand: Command = {
  summary: 'print the JSON Schema (draft 2020-12) of agent specs',
  options: {},
  run: async () => {
    process.stdout.write(`${JSON.stringify(AGENT_SPEC_SCHEMA, null, 2)}\n`);
    return 0;
  },
};
