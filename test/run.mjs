// Test entry point (`npm test`): runs mocha over test/**/*.test.ts with the spec reporter and ends with
// the line `N passed, N failed` that CI reads. A run that executes no test fails.
// Usage: npm test [-- <file-or-dir>...] [--grep <pattern>]
import Mocha from 'mocha';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
let grep;
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--grep') grep = args[++i];
  else roots.push(args[i]);
}
if (roots.length === 0) roots.push('test');

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) if (name !== 'node_modules') collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(resolve(path));
  }
  return out;
}

const mocha = new Mocha({ reporter: 'spec', timeout: 20000, grep });
for (const root of roots) for (const file of collect(root, [])) mocha.addFile(file);
await mocha.loadFilesAsync();
const runner = mocha.run((failures) => {
  const { passes = 0, pending = 0 } = runner.stats ?? {};
  const executed = passes + failures;
  process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
  process.exitCode = failures > 0 || executed === 0 ? 1 : 0;
});
