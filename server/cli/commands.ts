/**
 * The CLI commands. Each opens the host on the data dir, does one thing, closes it. Read commands open it
 * read-only (they work next to a running host); writing commands go through `withWriter`, which uses the
 * running host's admin socket when one holds the data dir.
 */
import { readFileSync } from 'node:fs';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Operation } from '../../protocol/kernel.js';
import { Host } from '../host/host.js';
import { HostError } from '../host/errors.js';
import { createLogger, parseLogLevel } from '../host/logger.js';
import { stateDigest } from '../store/hash.js';
import { UsageError, dataDir, parseDuration, parseInteger, parseList, required, tokenFrom } from './args.js';
import { withWriter, type Writer } from './remote.js';
import { mcpCommand } from './mcp.js';
import { serveCommand } from './serve.js';
import { specCheckCommand, specSchemaCommand } from './spec.js';

type Flags = Record<string, string | boolean | undefined>;
type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface Command {
  summary: string;
  options: OptionSpec;
  run(flags: Flags, positionals: string[]): Promise<number>;
}

const DATA = { data: { type: 'string' } } as const;
const TOKEN = { token: { type: 'string' }, 'token-file': { type: 'string' } } as const;

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
  const host = await Host.open({ dataDir: dataDir(str(flags, 'data')), readOnly, logger: cliLogger(), rateLimit: false });
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
  'spec check': specCheckCommand,
  'spec schema': specSchemaCommand,

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
      sub: { type: 'string' },
      vault: { type: 'string' },
      perm: { type: 'string' },
      ttl: { type: 'string' },
      alg: { type: 'string' },
      label: { type: 'string' },
      json: { type: 'boolean' },
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
    options: { ...DATA, ...TOKEN, sub: { type: 'string' }, perm: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } },
    run: (flags) => {
      const token = tokenFrom(flags as { token?: string });
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
    options: { ...DATA, grant: { type: 'string' }, vault: { type: 'string' }, reason: { type: 'string' } },
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
      const token = positionals[0] ?? tokenFrom(flags as { token?: string });
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
      const token = tokenFrom(flags as { token?: string });
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
      after: { type: 'string' },
      limit: { type: 'string' },
      vault: { type: 'string' },
      agent: { type: 'string' },
      type: { type: 'string' },
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
  return `usage: toka <command> [options]\n\n${lines.join('\n')}\n\nData dir: --data, else $TOKA_HOME, else ./.toka\n`;
}
