// Test entry point (`npm test`): runs mocha over test/**/*.test.ts with the spec reporter, then the
// extension's tests in a real VS Code (test/e2e/run.mjs), and ends with the line `N passed, N failed` that CI
// reads, counting both. A run that executes no test fails.
// Usage: npm test [-- <file-or-dir>...] [--grep <pattern>]
// The VS Code tests run with a full `npm test` or when test/e2e is named; not with other paths or --grep.
// They need test/e2e/setup.sh to have run: without it they are reported skipped, except under CI (`CI` set),
// where a missing toolchain fails the run (.ci/run installs it).
import Mocha from 'mocha';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { completeMarker } from './e2e/paths.mjs';

const args = process.argv.slice(2);
let grep;
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--grep') grep = args[++i];
  else roots.push(args[i]);
}
const e2eDir = resolve('test/e2e');
/** `a` is `b` or inside it. */
const within = (a, b) => !relative(b, a).startsWith('..');
const withE2e = grep === undefined && (roots.length === 0 || roots.some((r) => within(e2eDir, resolve(r)) || within(resolve(r), e2eDir)));
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
const totals = await new Promise((done) => {
  const runner = mocha.run((failures) => {
    const { passes = 0, pending = 0 } = runner.stats ?? {};
    done({ passed: passes, failed: failures, skipped: pending });
  });
});

/** Run test/e2e/run.mjs, echoing its output, and add up its `vscode-e2e: N passed, N failed` lines. */
function e2e() {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['test/e2e/run.mjs'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('close', (code) => {
      const counts = { passed: 0, failed: 0 };
      for (const m of out.matchAll(/^vscode-e2e: (\d+) passed, (\d+) failed/gm)) {
        counts.passed += Number(m[1]);
        counts.failed += Number(m[2]);
      }
      // A runner that failed without saying what failed still fails the run.
      if (code !== 0 && counts.failed === 0) counts.failed = 1;
      done(counts);
    });
  });
}

if (withE2e) {
  if (existsSync(completeMarker) || process.env.CI) {
    process.stdout.write('\n== the extension in a real VS Code (test/e2e)\n');
    const counts = await e2e();
    totals.passed += counts.passed;
    totals.failed += counts.failed;
  } else {
    process.stdout.write('\nthe VS Code tests (test/e2e) are skipped: their toolchain is not installed (run test/e2e/setup.sh)\n');
    totals.skipped += 1;
  }
}

const { passed, failed, skipped } = totals;
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 || passed + failed === 0 ? 1 : 0;
