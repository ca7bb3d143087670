/**
 * `toka mcp`: an MCP server on stdin/stdout for desktop LLM clients (see docs/mcp.md). The token comes from
 * the CLI's one token source (`tokenFrom`): `--token-file`, else `TOKA_TOKEN`, else the file named by
 * `TOKA_TOKEN_FILE` — never a token value on argv (no `--token`) and never stdin (it is the wire). It opens the
 * data dir itself (so not next to a running `toka serve`; use its `/mcp` over HTTP then). Stdout carries only
 * MCP frames; logs go to stderr.
 */
import { RUNTIME_HANDLERS } from '../runtime/lifecycle.js';
import { Host } from '../host/host.js';
import { createLogger, parseLogLevel } from '../host/logger.js';
import { MCP_DEFAULTS } from '../adapters/mcp/server.js';
import { serveMcpStdio } from '../adapters/mcp/stdio.js';
import { createTokaRegistry } from '../adapters/mcp/toka.js';
import { DATA, dataDir, parseInteger, tokenFrom } from './args.js';
import type { Command } from './commands.js';

export const mcpCommand: Command = {
  summary: 'MCP server on stdio for LLM clients (token from --token-file, TOKA_TOKEN or TOKA_TOKEN_FILE): [--max-result-bytes N]',
  options: {
    ...DATA,
    'token-file': { type: 'string', value: '<file>', help: 'read the token from this file', default: '$TOKA_TOKEN, else $TOKA_TOKEN_FILE' },
    'max-result-bytes': {
      type: 'string',
      value: '<n>',
      help: 'largest tool result, in bytes of JSON; a larger one is a LimitExceeded error',
      default: String(MCP_DEFAULTS.maxResultBytes),
    },
  },
  async run(flags) {
    const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
    const token = tokenFrom({ 'token-file': str('token-file') }, process.env, { stdin: false });
    const maxResultBytes = parseInteger(str('max-result-bytes'), '--max-result-bytes', MCP_DEFAULTS.maxResultBytes);
    const logger = createLogger({ level: parseLogLevel(process.env.TOKA_LOG_LEVEL, 'warn') });
    const host = await Host.open({ dataDir: dataDir(str('data')), logger, handlers: RUNTIME_HANDLERS });
    try {
      await serveMcpStdio(host, { registry: createTokaRegistry(), token, maxResultBytes });
    } finally {
      await host.close();
    }
    return 0;
  },
};
