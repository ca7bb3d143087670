/**
 * The CLI commands. Each opens the host on the data dir, does one thing, closes it. Read commands open it
 * read-only (they work next to a running host); writing commands go through `withWriter`, which uses the
 * running host's admin socket when one holds the data dir.
 */
import { a2aCardCommand, a2aSendCommand } from './a2a.js';
import { RUNTIME_HANDLERS } from '../runtime/lifecycle.js';
import { readFileSync } from 'node:fs';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Operation } from '../../protocol/kernel.js';
import { Host } from '../host/host.js';
import { HostError } from '../host/errors.js';
import { createLogger, parseLogLevel } from '../host/logger.js';
import { stateDigest } from '../store/hash.js';
import { DATA, UsageError, dataDir, parseDuration, parseInteger, parseList, required, tokenFrom, type OptionSpec, type TokenFlags } from './args.js';
import { withWriter, type Writer } from './remote.js';
import { mcpCommand } from './mcp.js';
import { runCommand } from './run.js';
import { replayCommand } from './replay.js';
import { serveCommand } from './serve.js';
import { signinCommand } from './signin.js';
import { specCheckCommand, specSchemaCommand } from './spec.js';

export type Flags = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  summary: string;
  options: Record<string, OptionSpec>;
  run(flags: Flags, positionals: string[]): Promise<number>;
}

const TOKEN_HELP = 'else --token-file, $TOKA_TOKEN, $TOKA_TOKEN_FILE';
const TOKEN: Record<string, OptionSpec> = {
  token: { type: 'string', value: '<jwt>', help: 'the capability token (visible in the process list: prefer --token-file)', default: TOKEN_HELP },
  'token-file': { type: 'string', value: '<file|->', help: 'read the token from this file (- for stdin)', default: '$TOKA_TOKEN, else $TOKA_TOKEN_FILE' },
};
const JSON_OUT: Record<string, OptionSpec> = { json: { type: 'boolean', help: 'print the full result as JSON', default: 'print the token only' } };

function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

function cliLogger() {
  return createLogger({ level: parseLogLevel(process.env.TOKA_LOG_LEVEL, 'warn') });
}

/** A writing command: in process, or over `<data>/admin.sock` while `toka serve` holds the data dir. */
function write<T>(flags: Flags, fn: (writer: Writer) => Promise<T>): Promise<T> {
  return withWriter(dataDir(str(flags, 'data')), cliLogger(), fn);
}

async function withHost<T>(flags: Flags, readOnly: boolean, fn: (host: Host) => Promise<T>): Promise<T> {
  const host = await Host.open({ dataDir: dataDir(str(flags, 'data')), readOnly, logger: cliLogger(), rateLimit: false, handlers: RUNTIME_HANDLERS });
  try {
    return await fn(host);
  } finally {
    await host.close();
  }
}

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function readJson(path: string): unknown {
  const text = path === '-' ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

export const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  mcp: mcpCommand,
  'a2a card': a2aCardCommand,
  'a2a send': a2aSendCommand,
  'spec check': specCheckCommand,
  'spec schema': specSchemaCommand,
  run: runCommand,
  replay: replayCommand,
  signin: signinCommand,

  init: {
    summary: 'create the data dir, key ring and event log',
    options: { ...DATA },
    run: (flags) =>
      withHost(flags, false, async (host) => {
        process.stderr.write(`toka: data dir ${dataDir(str(flags, 'data'))} ready (log at seq ${host.headSeq()})\n`);
        return 0;
      }),
  },

  'token mint': {
    summary: 'create a grant and mint a token: --sub S --vault V --perm a,b [--ttl 15m] [--alg EdDSA] [--json]',
    options: {
      ...DATA,
      sub: { type: 'string', value: '<subject>', help: 'subject (principal) of the grant and token; required' },
      vault: { type: 'string', value: '<vault>', help: 'vault the grant and token are scoped to; required' },
      perm: { type: 'string', value: '<a,b>', help: 'permissions, comma-separated (area:verb, wildcards allowed); required' },
      ttl: { type: 'string', value: '<duration>', help: 'token lifetime (90s, 15m, 1h; at most 30m)', default: '15m' },
      alg: { type: 'string', value: '<HS256|EdDSA>', help: 'signing algorithm', default: 'HS256' },
      label: { type: 'string', value: '<text>', help: 'label recorded with the grant', default: 'none' },
      ...JSON_OUT,
    },
    run: (flags) => {
      const alg = str(flags, 'alg') ?? 'HS256';
      if (alg !== 'HS256' && alg !== 'EdDSA') throw new UsageError('--alg must be HS256 or EdDSA');
      const request = {
        subject: required(str(flags, 'sub'), 'sub'),
        permissions: parseList(str(flags, 'perm'), '--perm'),
        ttlSeconds: parseDuration(str(flags, 'ttl') ?? '15m', '--ttl'),
        alg: alg as 'HS256' | 'EdDSA',
        label: str(flags, 'label'),
      };
      const vault = required(str(flags, 'vault'), 'vault');
      return write(flags, async (writer) => {
        const minted = await writer.mint(vault, request);
        if (flags.json) out(minted);
        else process.stdout.write(`${minted.token}\n`);
        return 0;
      });
    },
  },

  'token delegate': {
    summary: 'mint a narrower child of a token: --token T --sub S --perm a,b [--ttl 5m]',
    options: {
      ...DATA,
      ...TOKEN,
      sub: { type: 'string', value: '<subject>', help: 'subject of the child token; required' },
      perm: { type: 'string', value: '<a,b>', help: "permissions of the child, comma-separated (a subset of the parent's); required" },
      ttl: { type: 'string', value: '<duration>', help: "child lifetime (never past the parent's expiry)", default: '15m' },
      ...JSON_OUT,
    },
    run: (flags) => {
      const token = tokenFrom(flags as TokenFlags);
      const request = {
        subject: required(str(flags, 'sub'), 'sub'),
        permissions: parseList(str(flags, 'perm'), '--perm'),
        ttlSeconds: parseDuration(str(flags, 'ttl') ?? '15m', '--ttl'),
      };
      return write(flags, async (writer) => {
        const child = await writer.delegate(token, request);
        if (flags.json) out(child);
        else process.stdout.write(`${child.token}\n`);
        return 0;
      });
    },
  },

  'token revoke': {
    summary: 'revoke a token (its jti, or the token itself) or a grant (--grant ID); --vault for a jti or grant',
    options: {
      ...DATA,
      grant: { type: 'string', value: '<id>', help: 'revoke this grant (and every token minted or delegated from it) instead of a token' },
      vault: { type: 'string', value: '<vault>', help: 'vault of the jti or grant (a token names its own)' },
      reason: { type: 'string', value: '<text>', help: 'reason recorded with the revocation', default: 'none' },
    },
    run: (flags, positionals) => {
      const target = positionals[0];
      const grant = str(flags, 'grant');
      if ((target === undefined) === (grant === undefined)) throw new UsageError('give a jti or token, or --grant ID');
      const isToken = target !== undefined && target.split('.').length === 3;
      let vault: string;
      if (isToken) {
        try {
          vault = String(decodeJwt(target).vault ?? '');
        } catch {
          throw new UsageError('not a JWT');
        }
      } else {
        vault = required(str(flags, 'vault'), 'vault');
      }
      return write(flags, async (writer) => {
        const result = await writer.revoke(vault, {
          ...(grant !== undefined ? { grant } : isToken ? { token: target } : { jti: target }),
          reason: str(flags, 'reason'),
        });
        process.stderr.write(`toka: revoked (seq ${result.seq})\n`);
        return 0;
      });
    },
  },

  'token inspect': {
    summary: 'show a token header, claims and whether it verifies now',
    options: { ...DATA, ...TOKEN },
    run: (flags, positionals) => {
      const token = positionals[0] ?? tokenFrom(flags as TokenFlags);
      let header: unknown;
      let claims: unknown;
      try {
        header = decodeProtectedHeader(token);
        claims = decodeJwt(token);
      } catch {
        throw new UsageError('not a JWT');
      }
      return withHost(flags, true, async (host) => {
        let status = 'valid';
        try {
          await host.authenticate(token);
        } catch (err) {
          const e = HostError.from(err);
          status = String(e.details.reason ?? e.errorName);
        }
        out({ header, claims, status });
        return status === 'valid' ? 0 : 1;
      });
    },
  },

  submit: {
    summary: 'submit one operation from a JSON file (- for stdin): toka submit op.json --token T',
    options: { ...DATA, ...TOKEN },
    run: (flags, positionals) => {
      const path = positionals[0];
      if (!path) throw new UsageError('submit: give the operation file (or -)');
      const op = readJson(path) as Operation;
      const token = tokenFrom(flags as TokenFlags);
      return write(flags, async (writer) => {
        const result = await writer.submit(token, op);
        out(result);
        return 0;
      });
    },
  },

  state: {
    summary: 'print the world state and its digest',
    options: { ...DATA },
    run: (flags) =>
      withHost(flags, true, async (host) => {
        const { seq, state } = await host.worldState();
        out({ seq, digest: stateDigest(state), state });
        return 0;
      }),
  },

  events: {
    summary: 'print log records as JSON lines: [--after N] [--limit N] [--vault V] [--agent ID] [--type T]',
    options: {
      ...DATA,
      after: { type: 'string', value: '<seq>', help: 'only records with a larger sequence number', default: '0' },
      limit: { type: 'string', value: '<n>', help: 'most records printed (1..10000)', default: '10000' },
      vault: { type: 'string', value: '<vault>', help: 'only records of this vault', default: 'all' },
      agent: { type: 'string', value: '<id>', help: 'only records about this agent', default: 'all' },
      type: { type: 'string', value: '<T,U>', help: 'only these event types, comma-separated', default: 'all' },
    },
    run: (flags) => {
      const afterSeq = parseInteger(str(flags, 'after'), '--after', 0);
      const limit = parseInteger(str(flags, 'limit'), '--limit', 10_000);
      if (limit < 1 || limit > 10_000) throw new UsageError('--limit: 1..10000');
      const type = str(flags, 'type');
      const query = { afterSeq, limit, vault: str(flags, 'vault'), agent: str(flags, 'agent'), types: type ? parseList(type, '--type') : undefined };
      return withHost(flags, true, async (host) => {
        for (const record of await host.readAllEvents(query)) process.stdout.write(`${JSON.stringify(record)}\n`);
        return 0;
      });
    },
  },

  verify: {
    summary: 'check the hash chain and that replay from zero reproduces the state digest',
    options: { ...DATA },
    run: (flags) =>
      withHost(flags, true, async (host) => {
        const report = await host.verify();
        out(report);
        if (report.firstBad) {
          process.stderr.write(`toka: chain broken at seq ${report.firstBad.seq}: ${report.firstBad.reason}\n`);
        } else if (!report.ok) {
          process.stderr.write('toka: replay digest differs from the live state digest\n');
        }
        return report.ok ? 0 : 1;
      }),
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  toka ${name.padEnd(width)}  ${c.summary}`);
  return `usage: toka <command> [options]\n\n${lines.join('\n')}\n\nData dir: --data, else $TOKA_HOME, else ./.toka\nEvery flag of a command: toka help <command>\n`;
}

/** `toka help <command>`: the command's summary and every flag it takes, with its meaning and default. */
export function commandHelp(name: string): string {
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`unknown command "${name}" (see toka help)`);
  const names = Object.entries(command.options).map(([flag, o]) => [`--${flag}${o.value ? ` ${o.value}` : ''}`, o] as const);
  const width = Math.max(0, ...names.map(([n]) => n.length));
  const lines = names.map(
    ([n, o]) => `  ${n.padEnd(width)}  ${o.help}${o.multiple ? ' (repeatable)' : ''}${o.default !== undefined ? ` (default: ${o.default})` : ''}`,
  );
  return `usage: toka ${name} [options]\n\n${command.summary}\n\n${lines.length ? `Options:\n${lines.join('\n')}` : 'No options.'}\n`;
}
