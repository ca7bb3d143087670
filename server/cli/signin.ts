/**
 * `toka signin`: a one-time code that signs the data dir's owner in to the OAuth consent page of `toka serve`
 * (server/adapters/mcp/oauth-signin.ts). The code goes to stdout; only someone who can write the data dir
 * can make one, and the host accepts it once, within 10 minutes.
 */
import { existsSync } from 'node:fs';
import { createSigninCode, SIGNIN_CODE_TTL_MS } from '../adapters/mcp/oauth-signin.js';
import { DATA, UsageError, dataDir } from './args.js';
import type { Command } from './commands.js';

export const signinCommand: Command = {
  summary: 'print a one-time code that signs you in to the OAuth consent page of `toka serve` (valid once, 10 minutes)',
  options: { ...DATA },
  async run(flags) {
    const dir = dataDir(typeof flags.data === 'string' ? flags.data : undefined);
    if (!existsSync(dir)) throw new UsageError(`no data dir at ${dir}: start \`toka serve\` (or \`toka init\`) first`);
    const { code } = createSigninCode(dir);
    process.stdout.write(`${code}\n`);
    process.stderr.write(`toka: paste this code into the Toka sign-in page in your browser; it works once, for ${SIGNIN_CODE_TTL_MS / 60_000} minutes\n`);
    return 0;
  },
};
