/** Small parsers shared by CLI commands. Each throws UsageError with a one-line message. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export class UsageError extends Error {}

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

/**
 * The bearer token: `--token`, else `--token-file` (`-` for stdin), else `$TOKA_TOKEN`. Prefer the file or
 * the environment: a `--token` value is visible to other local users in the process list.
 */
export function tokenFrom(flags: { token?: string; 'token-file'?: string }, env: NodeJS.ProcessEnv = process.env): string {
  const file = flags['token-file'];
  const [token, source] =
    flags.token !== undefined
      ? [flags.token, '--token']
      : file !== undefined
        ? [readFileSync(file === '-' ? 0 : file, 'utf8'), `--token-file ${file}`]
        : env.TOKA_TOKEN !== undefined
          ? [env.TOKA_TOKEN, 'TOKA_TOKEN']
          : [undefined, ''];
  if (token === undefined) throw new UsageError('no token: pass --token-file, set TOKA_TOKEN, or pass --token');
  if (token.trim() === '') throw new UsageError(`${source} is empty`);
  return token.trim();
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing --${flag}`);
  return value;
}
