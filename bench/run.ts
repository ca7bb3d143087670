/**
 * `npm run bench [-- <section>...]`: runs the benchmark sections and prints Markdown tables of ratios
 * against baselines measured in the same run. Record results in docs/benchmarks.md.
 */
import { benchA2a } from './a2a.js';
import { benchCore } from './core.js';
import { printRows, type Row } from './lib.js';
import { benchMcp } from './mcp.js';
import { benchRuntime } from './runtime.js';
import { benchTransport } from './transport.js';

const SECTIONS: Record<string, { title: string; run: () => Promise<Row[]> }> = {
  core: { title: 'Core: full-path submit, token verification, replay', run: benchCore },
  transport: { title: 'Kernel host: JSON-RPC over stdio and WebSocket', run: benchTransport },
  mcp: { title: 'MCP: tools/call over stdio and Streamable HTTP', run: benchMcp },
  runtime: { title: 'Agent runtime: task lifecycle, idle agents, restart', run: benchRuntime },
  a2a: { title: 'A2A: SendMessage round trips (JSON-RPC, WebSocket binding)', run: benchA2a },
};

const wanted = process.argv.slice(2);
for (const name of wanted) if (!(name in SECTIONS)) throw new Error(`unknown section ${name}; known: ${Object.keys(SECTIONS).join(', ')}`);
process.stdout.write(`# toka bench — node ${process.version}, ${new Date().toISOString()}\n`);
for (const [name, section] of Object.entries(SECTIONS)) {
  if (wanted.length && !wanted.includes(name)) continue;
  printRows(section.title, await section.run());
}
