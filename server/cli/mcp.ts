/**
 * `toka mcp`: an MCP server on stdin/stdout for desktop LLM clients (see docs/mcp.md).
 *
 * Credential (adapters/mcp/credential.ts), the first that is given:
 * - `--grant <id>` (or `$TOKA_GRANT`) with `--vault` (default `default`): the data dir's owner serves as the
 *   grant's subject and mints a fresh short-lived token from the grant before each one expires, so a desktop
 *   client stays connected for as long as it likes; revoking the grant ends it.
 * - a token from the CLI's one token source (`tokenFrom`): `--token-file`, else `TOKA_TOKEN`, else the file named
 *   by `TOKA_TOKEN_FILE` — never a token value on argv and never stdin (it is the wire). It dies with the token.
 *
 * Where: when a live process holds the data dir (`toka serve`), `toka mcp` attaches to its `<data>/mcp.sock`
 * and pipes stdin/stdout there; otherwise it opens the data dir itself and runs the agent runtime for as long as
 * it serves (runs left unfinished resume when a host next starts on the data dir). Stdout carries only MCP frames;
 * logs go to stderr. `toka mcp config` prints the `mcpServers` snippet that launches it.
 */
import { MAX_TOKEN_LIFETIME_S } from '../../protocol/capability.js';
import { RUNTIME_HANDLERS } from '../runtime/lifecycle.js';
import type { AgentRuntime } from '../runtime/runtime.js';
import { startRuntime } from '../runtime/start.js';
import { HostError } from '../host/errors.js';
import { Host } from '../host/host.js';
import { DataDirLock } from '../host/lock.js';
import { createLogger, parseLogLevel } from '../host/logger.js';
import { DEFAULT_GRANT_TOKEN_TTL_S, McpCredentialSession, type McpCredential } from '../adapters/mcp/credential.js';
import { runtimeTools } from '../adapters/mcp/runtime-tools.js';
import { MCP_DEFAULTS } from '../adapters/mcp/server.js';
import { attachMcpSocket } from '../adapters/mcp/socket.js';
import { serveMcpStdio } from '../adapters/mcp/stdio.js';
import { createTokaRegistry } from '../adapters/mcp/toka.js';
import { DATA, UsageError, dataDir, parseDuration, parseInteger, tokenFrom } from './args.js';
import type { Command, Flags } from './commands.js';

export const mcpCommand: Command = {
  summary:
    'MCP server on stdio for LLM clients (--grant <id> renews its own tokens; else a token from --token-file, TOKA_TOKEN or TOKA_TOKEN_FILE); `toka mcp config` prints the mcpServers snippet',
  options: {
    ...DATA,
    grant: { type: 'string', value: '<id>', help: 'serve as this grant of --vault, minting fresh tokens from it (data dir owner only)', default: '$TOKA_GRANT, else a token' },
    vault: { type: 'string', value: '<vault>', help: 'the vault of --grant', default: '$TOKA_VAULT, else default' },
    'token-ttl': {
      type: 'string',
      value: '<duration>',
      help: `lifetime of each token minted from --grant (at most ${MAX_TOKEN_LIFETIME_S / 60}m); renewed when a third is left`,
      default: `${DEFAULT_GRANT_TOKEN_TTL_S / 60}m`,
    },
    'token-file': { type: 'string', value: '<file>', help: 'read the token from this file', default: '$TOKA_TOKEN, else $TOKA_TOKEN_FILE' },
    'max-result-bytes': {
      type: 'string',
      value: '<n>',
      help: 'largest tool result, in bytes of JSON; a larger one is a LimitExceeded error',
      default: String(MCP_DEFAULTS.maxResultBytes),
    },
  },
  async run(flags, positionals) {
    if (positionals[0] === 'config' && positionals.length === 1) return printConfig(flags);
    if (positionals.length > 0) throw new UsageError(`toka mcp: unexpected argument "${positionals[0]}" (only "config")`);
    const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
    const credential = credentialFrom(flags);
    const maxResultBytes = parseInteger(str('max-result-bytes'), '--max-result-bytes', MCP_DEFAULTS.maxResultBytes);
    const logger = createLogger({ level: parseLogLevel(process.env.TOKA_LOG_LEVEL, 'warn') });
    const dir = dataDir(str('data'));
    const attach = async () => {
      const opened = await attachMcpSocket(dir, credential, process.stdin, process.stdout);
      logger.info('MCP session attached to the running host', { dataDir: dir, ...opened });
      return 0;
    };
    const holder = DataDirLock.holder(dir);
    if (holder !== null && holder !== process.pid) return attach();
    let host: Host;
    try {
      host = await Host.open({ dataDir: dir, logger, handlers: RUNTIME_HANDLERS });
    } catch (err) {
      // A host started between the check and the open: attach to it instead.
      if (err instanceof HostError && err.errorName === 'Conflict') return attach();
      throw err;
    }
    let runtime: AgentRuntime | undefined;
    try {
      const session = await McpCredentialSession.open(host, credential);
      runtime = await startRuntime(host, { dataDir: dir, logger });
      await serveMcpStdio(host, { registry: createTokaRegistry([runtimeTools(runtime)]), credential: session, maxResultBytes });
    } finally {
      await runtime?.close();
      await host.close();
    }
    return 0;
  },
};

function credentialFrom(flags: Flags): McpCredential {
  const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const grant = str('grant') ?? process.env.TOKA_GRANT;
  if (grant === undefined || grant === '') {
    if (str('token-ttl') !== undefined) throw new UsageError('--token-ttl applies to --grant only');
    return { token: tokenFrom({ 'token-file': str('token-file') }, process.env, { stdin: false }) };
  }
  if (str('token-file') !== undefined) throw new UsageError('give --grant or --token-file, not both');
  const ttlSeconds = str('token-ttl') === undefined ? DEFAULT_GRANT_TOKEN_TTL_S : parseDuration(str('token-ttl')!, '--token-ttl');
  if (ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_LIFETIME_S) throw new UsageError(`--token-ttl: 1s..${MAX_TOKEN_LIFETIME_S / 60}m`);
  return { grant, vault: str('vault') ?? process.env.TOKA_VAULT ?? 'default', ttlSeconds };
}

/**
 * `toka mcp config`: the `mcpServers` entry that launches this `toka mcp` (absolute paths: desktop clients
 * start servers without the user's PATH), with the credential given as flags here.
 */
function printConfig(flags: Flags): number {
  const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const args = [process.argv[1], 'mcp', '--data', dataDir(str('data'))];
  const env: Record<string, string> = {};
  const grant = str('grant');
  if (grant) {
    args.push('--grant', grant, '--vault', str('vault') ?? 'default');
    if (str('token-ttl')) args.push('--token-ttl', str('token-ttl')!);
  } else if (str('token-file')) {
    env.TOKA_TOKEN_FILE = str('token-file')!;
  } else {
    throw new UsageError('toka mcp config: pass --grant <id> (a grant from `toka token mint --json`; tokens renew) or --token-file <file>');
  }
  process.stdout.write(`${JSON.stringify({ mcpServers: { toka: { command: process.execPath, args, env } } }, null, 2)}\n`);
  return 0;
}
