/**
 * Running the built `toka` CLI (`dist/toka.js`) in a child process, as a user would.
 *
 *   const run = await toka(['token', 'mint', '--data', dir, '--sub', 'me', '--vault', 'v', '--perm', '*']);
 *   assert.equal(run.code, 0, run.stderr);
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (the CLI runs with it as cwd). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The built CLI bundle (`node esbuild.mjs` builds it; `npm test` does it first). */
export const TOKA_BIN = fileURLToPath(new URL('../../dist/toka.js', import.meta.url));

/** The environment without any TOKA_* variable (tests pass --data / --token explicitly), plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOKA_'))), ...extra };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `node dist/toka.js <args>` and resolve once it has exited and its output is fully read ('close').
 * A run that outlives `timeoutMs` is SIGKILLed and rejects, so a hung CLI fails the test instead of the run.
 */
export function toka(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TOKA_BIN, ...args], { cwd: ROOT, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 15_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`toka ${args.join(' ')} did not exit within ${opts.timeoutMs ?? 15_000} ms; stderr:\n${stderr}`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}
