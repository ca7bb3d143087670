/**
 * The `toka` command. Errors are one line on stderr and a non-zero exit code
 * (1 for a failed operation, 2 for bad usage). Results go to stdout.
 */
import { parseArgs } from 'node:util';
import { HostError } from '../host/errors.js';
import { UsageError } from './args.js';
import { COMMANDS, usage } from './commands.js';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  let key = name;
  let args = rest;
  if (!(key in COMMANDS) && rest.length > 0 && `${name} ${rest[0]}` in COMMANDS) {
    key = `${name} ${rest[0]}`;
    args = rest.slice(1);
  }
  const command = COMMANDS[key];
  if (!command) throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ')}" (see toka help)`);
  const parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true });
  return command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`toka: ${(err as Error).message}\n`);
      process.exitCode = 2;
    } else if (err instanceof HostError) {
      process.stderr.write(`toka: ${err.message} (${err.errorName}${reasonOf(err)})\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`toka: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);

function reasonOf(err: HostError): string {
  const reason = err.details.reason ?? err.details.limit;
  return typeof reason === 'string' ? `: ${reason}` : '';
}
