// Bundles the `toka` CLI (and everything it serves) into dist/toka.js.
// Native and heavy runtime dependencies stay external and are loaded from node_modules.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

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
