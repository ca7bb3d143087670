// Bundles the `toka` CLI (and everything it serves) into dist/toka.js, and the VS Code extension with its
// own copy of the host into extension/dist/ (see docs/extension.md):
// - extension/dist/extension.js: the extension (CommonJS, `vscode` provided by the editor);
// - extension/dist/toka.mjs: the host, every dependency bundled except better-sqlite3, whose package (JS and
//   the native module built for this machine's Node) is copied beside it into extension/dist/node_modules/.
// For dist/toka.js, native and heavy runtime dependencies stay external and are loaded from node_modules.
import { build } from 'esbuild';
import { chmodSync, cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

await build({
  entryPoints: ['server/cli/main.ts'],
  outfile: 'dist/toka.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  packages: 'external',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync('dist/toka.js', 0o755);

await build({
  entryPoints: ['extension/src/extension.ts'],
  outfile: 'extension/dist/extension.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  external: ['vscode', 'bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
});

await build({
  entryPoints: ['server/cli/main.ts'],
  outfile: 'extension/dist/toka.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  external: ['better-sqlite3', 'bufferutil', 'utf-8-validate'],
  // Bundled CommonJS dependencies call require() for Node's built-ins.
  banner: { js: "import { createRequire as __tokaCreateRequire } from 'node:module'; const require = __tokaCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// better-sqlite3 and what it requires at run time, as installed (native module included).
const require = createRequire(import.meta.url);
const modules = 'extension/dist/node_modules';
rmSync(modules, { recursive: true, force: true });
for (const name of ['better-sqlite3', 'bindings', 'file-uri-to-path']) {
  const root = dirname(require.resolve(`${name}/package.json`));
  const into = join(modules, name);
  mkdirSync(into, { recursive: true });
  const parts = name === 'better-sqlite3' ? ['package.json', 'LICENSE', 'lib', 'build/Release/better_sqlite3.node'] : ['package.json', 'LICENSE', 'bindings.js', 'index.js'];
  for (const part of parts) {
    try {
      cpSync(join(root, part), join(into, part), { recursive: true });
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
}
