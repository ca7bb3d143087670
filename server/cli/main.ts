/**
 * The `toka` command. Errors are one line on stderr and a non-zero exit code
 * (1 for a failed operation, 2 for bad usage). Results go to stdout.
 */
import { parseArgs } from 'node:util';
import { HostError } from '../host/errors.js';
import { UsageError } from './args.js';
import { COMMANDS, commandHelp, usage, type Flags } from './commands.js';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    if (name === 'help' && rest.length > 0) {
      process.stdout.write(commandHelp(rest.join(' ')));
      return 0;
    }
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const known = (key: string) => Object.hasOwn(COMMANDS, key);
  let key = name;
  let args = rest;
  if (!known(key) && rest.length > 0 && known(`${name} ${rest[0]}`)) {
    key = `${name} ${rest[0]}`;
    args = rest.slice(1);
  }
  if (!known(key)) throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ')}" (see toka help)`);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(commandHelp(key));
    return 0;
  }
  const command = COMMANDS[key];
  const options = Object.fromEntries(
    Object.entries(command.options).map(([flag, o]) => [flag, { type: o.type, ...(o.multiple ? { multiple: true } : {}) }]),
  );
  const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  return command.run(parsed.values as Flags, parsed.positionals);
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
