/**
 * `toka mcp`: an MCP server on stdin/stdout for desktop LLM clients (see docs/mcp.md). The token comes
 * from `TOKA_TOKEN` or the file named by `TOKA_TOKEN_FILE`. It opens the data dir itself (so not next to
 * a running `toka serve`; use its `/mcp` over HTTP then). Stdout carries only MCP frames; logs go to stderr.
 */
import { Host } from '../host/host.js';
import { createLogger, parseLogLevel } from '../host/logger.js';
import { MCP_DEFAULTS } from '../adapters/mcp/server.js';
import { serveMcpStdio, tokenFromEnvironment } from '../adapters/mcp/stdio.js';
import { createTokaRegistry } from '../adapters/mcp/toka.js';
import { dataDir, parseInteger } from './args.js';
import type { Command } from './commands.js';

export const mcpCommand: Command = {
  summary: 'MCP server on stdio for LLM clients (token from TOKA_TOKEN or TOKA_TOKEN_FILE): [--max-result-bytes N]',
  options: { data: { type: 'string' }, 'max-result-bytes': { type: 'string' } },
  async run(flags) {
    const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
    const token = tokenFromEnvironment();
    const maxResultBytes = parseInteger(str('max-result-bytes'), '--max-result-bytes', MCP_DEFAULTS.maxResultBytes);
    const logger = createLogger({ level: parseLogLevel(process.env.TOKA_LOG_LEVEL, 'warn') });
    const host = await Host.open({ dataDir: dataDir(str('data')), logger });
    try {
      await serveMcpStdio(host, { registry: createTokaRegistry(), token, maxResultBytes });
    } finally {
      await host.close();
    }
    return 0;
  },
};
