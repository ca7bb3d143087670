/** Small parsers shared by CLI commands. Each throws UsageError with a one-line message. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export class UsageError extends Error {}

/** One flag of a command: how to parse it and what `toka help <command>` says about it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Given more than once, every value is kept (in order). */
  multiple?: boolean;
  /** How help names the value, e.g. `<dir>` (string flags). */
  value?: string;
  /** What the flag means, one line. */
  help: string;
  /** What applies without it, as shown in help. */
  default?: string;
}

/** The `--data` flag every command takes. */
export const DATA: Record<string, OptionSpec> = {
  data: { type: 'string', value: '<dir>', help: 'the data dir', default: '$TOKA_HOME, else ./.toka' },
};

/** `--data`, else `$TOKA_HOME`, else `./.toka`. */
export function dataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.TOKA_HOME ?? '.toka');
}

/** `90`, `90s`, `15m`, `1h` → seconds. */
export function parseDuration(value: string, what: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${what}: expected a duration like 90s, 15m or 1h, got "${value}"`);
  return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
}

export function parseList(value: string | undefined, what: string): string[] {
  const items = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`${what}: give at least one value (comma-separated)`);
  return items;
}

export function parseInteger(value: string | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`${what}: expected a non-negative integer, got "${value}"`);
  return Number(value);
}

/** Where a command may read a bearer token from: its flags (when it declares them) and the environment. */
export interface TokenFlags {
  token?: string;
  'token-file'?: string;
}

/**
 * The bearer token, for every command that needs one (`toka mcp` included), from the first source that is set:
 * `--token`, `--token-file` (`-` for stdin, unless `stdin` is false), `$TOKA_TOKEN`, the file named by
 * `$TOKA_TOKEN_FILE`. Trimmed; a source that is set but empty is a usage error naming it (no silent fall-through
 * to the next). Prefer a file or the environment: a `--token` value is visible to other local users in the
 * process list.
 */
export function tokenFrom(flags: TokenFlags, env: NodeJS.ProcessEnv = process.env, options: { stdin?: boolean } = {}): string {
  const file = (path: string, source: string): [string, string] => {
    if (path === '-' && options.stdin === false) throw new UsageError(`${source}: stdin is the wire here; name a file`);
    try {
      return [readFileSync(path === '-' ? 0 : path, 'utf8'), source];
    } catch (err) {
      throw new UsageError(`${source}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const [token, source] =
    flags.token !== undefined
      ? [flags.token, '--token']
      : flags['token-file'] !== undefined
        ? file(flags['token-file'], `--token-file ${flags['token-file']}`)
        : env.TOKA_TOKEN !== undefined
          ? [env.TOKA_TOKEN, 'TOKA_TOKEN']
          : env.TOKA_TOKEN_FILE !== undefined
            ? file(env.TOKA_TOKEN_FILE, `TOKA_TOKEN_FILE ${env.TOKA_TOKEN_FILE}`)
            : [undefined, ''];
  if (token === undefined) throw new UsageError('no token: pass --token-file, set TOKA_TOKEN or TOKA_TOKEN_FILE, or pass --token');
  if (token.trim() === '') throw new UsageError(`${source} is empty`);
  return token.trim();
}

/** A process id (a positive integer), e.g. `--clientProcessId`. */
export function parsePid(value: string, what: string): number {
  if (!/^[1-9]\d{0,9}$/.test(value) || Number(value) > 2 ** 31 - 1) throw new UsageError(`${what}: expected a process id, got "${value}"`);
  return Number(value);
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing --${flag}`);
  return value;
}
