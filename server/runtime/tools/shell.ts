/**
 * Built-in `shell` tool: one command run by `/bin/sh -c` in a child process confined to the workspace.
 *
 * - The child is the leader of its own process group (`detached`); on timeout or cancel the whole group gets
 *   SIGTERM, then SIGKILL after a grace period (default 500 ms), so grandchildren die too. When the command
 *   exits normally, whatever it left running in its group is killed: nothing outlives the call.
 * - Environment: an allow-list only — `PATH`, `HOME` (the workspace), `LANG`, plus names configured in
 *   `passEnv`. Nothing else of the host's environment (API keys, tokens) reaches the child.
 * - Bounds: `ulimit -v` (address space) and `ulimit -t` (CPU seconds) are set in the child before the
 *   command starts, for it and everything it spawns; stdout + stderr are kept up to `shellOutputBytes`.
 * - Permission `tool:shell`; side effect `privileged` unless configured otherwise.
 */
import { spawn } from 'node:child_process';
import { limitExceeded, ToolError } from './errors.js';
import { SIDE_EFFECTS, type SideEffect, type Tool, type ToolContext, type ToolResult } from './types.js';
import { resolveInWorkspace } from './workspace.js';

export interface ShellConfig {
  /** `PATH` of the child. Default `/usr/local/bin:/usr/bin:/bin`. */
  path?: string;
  /** Further environment variables copied from the host's environment. Names that look like secrets are refused. */
  passEnv?: readonly string[];
  /** Side-effect class of the tool (default `privileged`: a human approves each call). */
  sideEffect?: SideEffect;
  /** Milliseconds between SIGTERM and SIGKILL of the process group. Default 500. */
  killGraceMs?: number;
}

/** Longest command accepted, in characters. */
export const MAX_COMMAND_CHARS = 16 * 1024;
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION/i;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Sets the bounds, then replaces itself with the command's shell: `$1` memory KiB, `$2` CPU s, `$3` command. */
const BOUNDED = 'ulimit -v "$1" && ulimit -t "$2" && exec /bin/sh -c "$3"';

interface ShellArgs { command: string; cwd?: string; timeoutMs?: number }

export function createShellTool(config: ShellConfig = {}): Tool {
  const passEnv = [...(config.passEnv ?? [])];
  for (const name of passEnv) {
    if (!ENV_NAME.test(name)) throw new ToolError('InvalidArguments', `shell passEnv: ${JSON.stringify(name)} is not an environment variable name`);
    if (SECRET_NAME.test(name)) throw new ToolError('InvalidArguments', `shell passEnv: ${name} looks like a secret and is never passed to a command`);
  }
  const sideEffect = config.sideEffect ?? 'privileged';
  if (!SIDE_EFFECTS.includes(sideEffect)) throw new ToolError('InvalidArguments', `shell sideEffect must be one of ${SIDE_EFFECTS.join(', ')}`);
  const graceMs = config.killGraceMs ?? 500;
  const pathVar = config.path ?? '/usr/local/bin:/usr/bin:/bin';

  return {
    manifest: {
      name: 'shell',
      description:
        'Run a command with /bin/sh in the workspace (or a directory under it). Returns the exit code and the output (stdout and stderr, truncated past the limit). Bounded in time, memory and CPU.',
      inputSchema: {
        type: 'object',
        properties: {
          command: { type: 'string', minLength: 1, maxLength: MAX_COMMAND_CHARS },
          cwd: { type: 'string', minLength: 1, maxLength: 4096, description: 'Directory relative to the workspace root (default: the root).' },
          timeoutMs: { type: 'integer', minimum: 1, description: 'Time bound in milliseconds, at most the configured limit.' },
        },
        required: ['command'],
        additionalProperties: false,
      },
      sideEffect,
      permission: 'tool:shell',
    },
    async call(raw, ctx) {
      const args = raw as ShellArgs;
      const dir = await resolveInWorkspace(ctx.workspace, args.cwd ?? '.');
      if (!dir.exists) throw new ToolError('NotFound', `no directory ${JSON.stringify(dir.rel)} in the workspace`);
      const env: Record<string, string> = { PATH: pathVar, HOME: dir.root, LANG: process.env.LANG ?? 'C.UTF-8' };
      for (const name of passEnv) {
        const v = process.env[name];
        if (v !== undefined) env[name] = v;
      }
      const timeoutMs = Math.min(args.timeoutMs ?? ctx.limits.shellTimeoutMs, ctx.limits.shellTimeoutMs);
      return run(args.command, dir.abs, env, timeoutMs, graceMs, ctx);
    },
  };
}

function run(command: string, cwd: string, env: Record<string, string>, timeoutMs: number, graceMs: number, ctx: ToolContext): Promise<ToolResult> {
  const { limits, signal } = ctx;
  if (signal.aborted) return Promise.reject(new ToolError('Cancelled', 'the tool call was cancelled'));
  const memKiB = Math.max(1, Math.floor(limits.shellMemoryBytes / 1024));
  const cpuS = Math.max(1, Math.ceil(limits.shellCpuSeconds));
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', BOUNDED, 'toka-shell', String(memKiB), String(cpuS), command], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    let kept = 0;
    let dropped = 0;
    const collect = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const room = limits.shellOutputBytes - kept;
      if (room > 0) {
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        out[which].push(part);
        kept += part.length;
      }
      dropped += Math.max(0, chunk.length - Math.max(0, room));
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));

    let stopped: 'timeout' | 'cancel' | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    const stop = (why: 'timeout' | 'cancel') => {
      if (stopped || exit) return;
      stopped = why;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), graceMs);
    };
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = () => stop('cancel');
    signal.addEventListener('abort', onAbort, { once: true });

    let settled = false;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(closeTimer);
      signal.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      return true;
    };
    const settle = () => {
      if (!finish()) return;
      const text = render(out, exit, dropped, limits.shellOutputBytes);
      const data = { exitCode: exit?.code ?? null, signal: exit?.signal ?? null, truncated: dropped > 0, droppedBytes: dropped };
      if (stopped === 'cancel') return reject(new ToolError('Cancelled', 'the tool call was cancelled; the command was killed', data));
      if (stopped === 'timeout') {
        const e = limitExceeded('shellTimeoutMs', timeoutMs, 'the command ran too long and was killed');
        return reject(new ToolError('Timeout', e.message, { ...e.data, ...data, output: text }));
      }
      resolve({ content: text, isError: exit?.code !== 0, data });
    };
    child.on('error', (err) => {
      killGroup('SIGKILL');
      if (finish()) reject(new ToolError('Failed', `cannot run the command: ${err.message}`));
    });
    child.on('exit', (code, sig) => {
      exit = { code, signal: sig };
      // Whatever the command left running in its group dies with it. Output still in the pipes is read until
      // they close, for at most the grace period (a process that left the group cannot hold the call open).
      killGroup('SIGKILL');
      closeTimer = setTimeout(settle, graceMs);
    });
    child.on('close', settle);
  });
}

function render(
  out: { stdout: Buffer[]; stderr: Buffer[] },
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined,
  dropped: number,
  cap: number,
): string {
  const parts = [exit?.signal ? `killed by ${exit.signal}` : `exit code ${exit?.code ?? 'unknown'}`];
  const stdout = Buffer.concat(out.stdout).toString('utf8');
  const stderr = Buffer.concat(out.stderr).toString('utf8');
  if (stdout) parts.push(`[stdout]\n${stdout}`);
  if (stderr) parts.push(`[stderr]\n${stderr}`);
  if (dropped > 0) parts.push(`[output truncated: ${dropped} bytes dropped (limit shellOutputBytes = ${cap})]`);
  return parts.join('\n');
}
