/**
 * Profiling aid for MCP over Streamable HTTP with the server in its own process, as the benchmark runs it
 * (not part of `npm run bench`):
 *   node --import tsx bench/profile-mcp-serve.ts [--bin dist/toka.js] [--calls 5000] [--rounds 3] [--cpu-prof <dir>]
 * Starts `toka serve` (rate limit off, 10 agents), then runs rounds of `tools/call get_state` from the
 * benchmark's lean client, 8 in flight, printing per round the server's CPU time per call (user + system,
 * from /proc/<pid>/stat: less sensitive to the machine's load than the rate) and the rate. `--bin` runs
 * another build (copy an older dist/toka.js beside this tree to compare two); `--cpu-prof` writes the server's
 * V8 profile into <dir> when it exits.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KernelSubmitRequest } from '../protocol/rpc/index.js';
import { cliMint, connectWs } from '../test/helpers/ws-client.js';
import { LeanMcpClient } from './mcp.js';

const { values } = parseArgs({
  options: {
    bin: { type: 'string', default: 'dist/toka.js' },
    calls: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    'cpu-prof': { type: 'string' },
  },
});
const calls = Number(values.calls);
const profile = values['cpu-prof'];
const dataDir = mkdtempSync(join(tmpdir(), 'toka-profile-mcp-'));
const child = spawn(
  process.execPath,
  [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), values.bin, 'serve', '--port', '0', '--data', dataDir, '--rate-limit', 'off'],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const exited = new Promise((resolve) => child.once('close', resolve));
const url = await new Promise<string>((resolve, reject) => {
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
    for (const line of log.split('\n')) {
      if (!line.includes('"listening"')) continue;
      const { url: listening } = JSON.parse(line) as { url?: string };
      if (listening) resolve(listening);
    }
  });
  void exited.then(() => reject(new Error(`toka serve exited before listening:\n${log}`)));
});

/** The server's CPU time so far, µs (utime + stime, in clock ticks of 10 ms). */
const cpu = (): number => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
};

try {
  const token = await cliMint(dataDir, { sub: 'bench', vault: 'bench', perm: 'agent:spawn,state:read', ttl: '30m' });
  const ws = await connectWs(`${url.replace(/^http/, 'ws')}/rpc`, token);
  for (let i = 0; i < 10; i++) await ws.request(KernelSubmitRequest.type, { op: { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } } });
  await ws.close();
  const client = new LeanMcpClient(`${url}/mcp`, token);
  await client.open();
  const run = async (total: number) => {
    let left = total;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (left-- > 0) await client.call();
    }));
  };
  await run(2000);
  for (let round = 0; round < Number(values.rounds); round++) {
    const cpu0 = cpu();
    const started = performance.now();
    await run(calls);
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`${values.bin}: server CPU ${Math.round((cpu() - cpu0) / calls)} µs/call, ${Math.round(calls / seconds)} calls/s\n`);
  }
  client.close();
} finally {
  child.kill('SIGTERM');
  await exited;
  rmSync(dataDir, { recursive: true, force: true });
}
