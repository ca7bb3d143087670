/** Running the append worker (test/fixtures/store/append-worker.ts) in a child process and killing it mid-write. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = join(ROOT, 'test', 'fixtures', 'store', 'append-worker.ts');

/**
 * Run the worker on the log at `dbPath`, hand each line of its stdout to `onLine`, and SIGKILL it as soon as
 * `onLine` returns true. Resolves once the worker is dead: 'close' fires after stdout is drained, so every line
 * written before the kill has been handed over. A worker that exits by itself rejects with its stderr; one that
 * stalls for 30 s is killed and rejects, so a failing run never leaves a process behind.
 */
export function killAppendWorkerWhen(dbPath: string, onLine: (line: string) => boolean, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, dbPath], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    let stderr = '';
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (onLine(line) && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    const stall = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(stall);
      if (signal === 'SIGKILL' && killed) resolve();
      else reject(new Error(`worker exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}
