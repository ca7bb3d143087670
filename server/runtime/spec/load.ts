/**
 * Reading specs from the file system: one file, or a folder (a workstream). Bounded: a file larger than
 * `SPEC_LIMITS.bytes` is not read, a folder holds at most `WORKSTREAM_LIMITS.files` spec files.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SPEC_LIMITS, analyzeSpecText, type SpecAnalysis } from './analyze.js';
import { planWorkstream, type WorkstreamPlan } from './workstream.js';

export const WORKSTREAM_LIMITS = {
  /** Spec files in one workstream folder. */
  files: 500,
} as const;

/** File names a workstream folder's specs have. */
export const SPEC_FILE = /\.(ya?ml|json)$/i;

/** Read and analyse one spec file. A file that cannot be read, or is too large, is one diagnostic. */
export function loadSpecFile(path: string): SpecAnalysis {
  const failed = (rule: string, message: string): SpecAnalysis => ({
    uri: path,
    format: /\.json$/i.test(path) ? 'json' : 'yaml',
    diagnostics: [{ file: path, line: 1, column: 1, endLine: 1, endColumn: 1, severity: 'error', rule, message }],
  });
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return failed('io/not-a-file', 'not a regular file');
    size = stat.size;
  } catch (err) {
    return failed('io/read', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (size > SPEC_LIMITS.bytes) return failed('limit/bytes', `the file is ${size} bytes; a spec may be at most ${SPEC_LIMITS.bytes} bytes`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return failed('io/read', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return analyzeSpecText(path, text);
}

export interface LoadedWorkstream extends WorkstreamPlan {
  /** The analysed files, sorted by name. */
  analyses: SpecAnalysis[];
}

/**
 * Load every `*.yaml`, `*.yml` and `*.json` file directly in `dir` (sorted by name) and plan the
 * workstream. Throws only when the folder itself cannot be listed.
 */
export function loadWorkstream(dir: string): LoadedWorkstream {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && SPEC_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
  const where = { line: 1, column: 1, endLine: 1, endColumn: 1 };
  if (names.length === 0) {
    return { analyses: [], agents: new Map(), diagnostics: [{ file: dir, ...where, severity: 'error', rule: 'workstream/empty', message: 'no spec files (*.yaml, *.yml, *.json) in the folder' }] };
  }
  if (names.length > WORKSTREAM_LIMITS.files) {
    return {
      analyses: [],
      agents: new Map(),
      diagnostics: [{ file: dir, ...where, severity: 'error', rule: 'limit/files', message: `the folder holds ${names.length} spec files; a workstream may hold at most ${WORKSTREAM_LIMITS.files}` }],
    };
  }
  const analyses = names.map((n) => loadSpecFile(join(dir, n)));
  return { ...planWorkstream(analyses), analyses };
}
