/**
 * Profiling aid for the A2A benchmark (not part of `npm run bench`): blocking `SendMessage` round trips to a
 * `toka serve` process as `bench/a2a.ts` runs them (rate limit off, scripted model answering at once, the
 * SDK's client or Toka's WebSocket transport, 8 in flight), printing per round the server's CPU time per
 * message (all threads, and its main thread in brackets with its user and system time, from /proc: far less sensitive to the machine's load
 * than the rate), this process's CPU per message (the client's) and the rate.
 *   node --import tsx bench/profile-a2a-serve.ts [--bin dist/toka.js ...] [--binding jsonrpc|ws] [--warmup 500]
 *     [--messages 1000] [--rounds 3] [--cpu-prof <dir>]
 * Several `--bin`s (copy an older dist/toka.js beside this tree) each get their own server; their rounds
 * alternate, so an A/B comparison sees the same machine load. `--cpu-prof` writes each server's V8 profile
 * into <dir> when it exits (it then covers the warm-up too; start with a larger --messages).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SendMessageRequest } from '@a2a-js/sdk';
import { AgentSpawnRequest } from '../protocol/rpc/index.js';
import { connectA2a, type A2aBinding, type A2aConnection } from '../server/runtime/a2a/client.js';
import { cliMint, connectWs } from '../test/helpers/ws-client.js';
import { IN_FLIGHT, SPEC } from './a2a.js';

const { values } = parseArgs({
  options: {
    bin: { type: 'string', multiple: true, default: ['dist/toka.js'] },
    binding: { type: 'string', default: 'jsonrpc' },
    warmup: { type: 'string', default: '500' },
    messages: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    'cpu-prof': { type: 'string' },
    /** Pass the servers' stderr lines that are not JSON log records through (ad-hoc instrumentation). */
    'raw-stderr': { type: 'boolean', default: false },
  },
});
const binding = values.binding as A2aBinding;
if (binding !== 'jsonrpc' && binding !== 'ws') throw new Error('--binding must be jsonrpc or ws');

interface Server {
  bin: string;
  child: ChildProcess;
  dataDir: string;
  exited: Promise<unknown>;
  connection?: A2aConnection;
  agent?: string;
}

/** CPU time of a process (or one of its threads) so far, µs (clock ticks of 10 ms): user and system. */
function cpuOf(statPath: string): { user: number; system: number } {
  const fields = readFileSync(statPath, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
}

async function start(bin: string, transcript: string): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'toka-profile-a2a-'));
  const profile = values['cpu-prof'];
  const child = spawn(process.execPath, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), bin, 'serve', '--port', '0', '--data', dataDir, '--rate-limit', 'off'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: transcript },
  });
  const exited = new Promise((resolve) => child.once('close', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk;
      if (values['raw-stderr']) for (const line of chunk.split('\n')) if (line !== '' && !line.startsWith('{')) process.stderr.write(`${line}\n`);
      for (const line of log.split('\n')) {
        if (!line.includes('"listening"')) continue;
        const { url: listening } = JSON.parse(line) as { url?: string };
        if (listening) resolve(listening);
      }
    });
    void exited.then(() => reject(new Error(`toka serve exited before listening:\n${log}`)));
  });
  const server: Server = { bin, child, dataDir, exited };
  const token = await cliMint(dataDir, { sub: 'bench', vault: 'bench', perm: 'agent:spawn,capability:grant,task:run,task:schedule,state:read', ttl: '30m' });
  const admin = await connectWs(`${url.replace(/^http/, 'ws')}/rpc`, token);
  server.agent = (await admin.request(AgentSpawnRequest.type, { spec: SPEC, uri: 'answerer.agent.yaml' })).agent;
  await admin.close();
  server.connection = await connectA2a(url, { token, binding });
  return server;
}

async function roundTrips(server: Server, total: number): Promise<void> {
  let left = total;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) {
        const request = SendMessageRequest.fromJSON({
          message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: 'ping' }], metadata: { skill: server.agent } },
        });
        const result = await server.connection!.client.sendMessage(request);
        if (!('status' in result) || result.artifacts.length !== 1) throw new Error(`unexpected answer ${JSON.stringify(result).slice(0, 300)}`);
      }
    }),
  );
}

const dir = mkdtempSync(join(tmpdir(), 'toka-profile-a2a-'));
const transcript = join(dir, 'answer.json');
writeFileSync(transcript, JSON.stringify({ turns: [{ text: 'pong' }] }));
const servers: Server[] = [];
try {
  for (const bin of values.bin) servers.push(await start(bin, transcript));
  for (const server of servers) await roundTrips(server, Number(values.warmup));
  const messages = Number(values.messages);
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const server of servers) {
      const pid = server.child.pid!;
      const all0 = cpuOf(`/proc/${pid}/stat`);
      const main0 = cpuOf(`/proc/${pid}/task/${pid}/stat`);
      const client0 = process.cpuUsage();
      const started = performance.now();
      await roundTrips(server, messages);
      const seconds = (performance.now() - started) / 1000;
      const client = process.cpuUsage(client0);
      const all1 = cpuOf(`/proc/${pid}/stat`);
      const main1 = cpuOf(`/proc/${pid}/task/${pid}/stat`);
      const per = (us: number) => Math.round(us / messages);
      process.stdout.write(
        `${server.bin} ${binding}: server ${per(all1.user + all1.system - all0.user - all0.system)} µs/msg ` +
          `(main ${per(main1.user + main1.system - main0.user - main0.system)}: user ${per(main1.user - main0.user)}, system ${per(main1.system - main0.system)}), ` +
          `client ${per(client.user + client.system)} µs/msg, ${Math.round(messages / seconds)} msg/s\n`,
      );
    }
  }
} finally {
  for (const server of servers) {
    server.connection?.close();
    server.child.kill('SIGTERM');
    await server.exited;
    rmSync(server.dataDir, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}
