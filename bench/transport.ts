/**
 * Transport benchmark (issue: kernel host):
 * 1. `toka/state/get` round trips per second over stdio and over WebSocket against a bare vscode-jsonrpc
 *    echo server answering the same bytes over the same transport (bench/fixtures/echo-server.ts);
 * 2. `toka/kernel/submit` ops/s over WebSocket with 64 clients against the same submits made in process.
 * Every server is a real child process; clients run in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { MessageConnection } from 'vscode-jsonrpc';
import { Host } from '../server/host/host.js';
import { createLogger } from '../server/host/logger.js';
import { spawnJsonRpcProcess } from '../test/helpers/jsonrpc-process.js';
import { cliMint, connectWs, spawnServe } from '../test/helpers/ws-client.js';
import { compare, comparisonRow, type Row } from './lib.js';
import { KernelSubmitRequest, StateGetRequest } from '../protocol/rpc/index.js';

const ROUNDS = 5;
const REQUESTS = 10_000;
const IN_FLIGHT = 8;
const SUBMIT_CLIENTS = 64;
const SUBMITS = 64 * 60;

async function roundTrips(connection: MessageConnection): Promise<number> {
  let left = REQUESTS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await connection.sendRequest(StateGetRequest.type, {});
    }),
  );
  return REQUESTS;
}

function echoServer(mode: '--stdio' | '--ws', resultFile: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'bench/fixtures/echo-server.ts', mode, resultFile], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

export async function benchTransport(): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'toka-bench-transport-'));
  // The in-process baseline runs without a rate limit, so the served host does too.
  const serve = await spawnServe({ args: ['--rate-limit', 'off'] });
  // Every child started below is stopped in `finally`, so a failed comparison leaves nothing running.
  const children: ChildProcess[] = [];
  try {
    const token = await cliMint(serve.dataDir, { sub: 'bench', vault: 'bench', perm: 'agent:spawn,observation:emit,state:read', ttl: '30m' });
    const ws = await connectWs(serve.wsUrl, token);
    for (let i = 0; i < 3; i++) await ws.request(KernelSubmitRequest.type, { op: { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } } });
    const resultFile = join(dir, 'state.json');
    writeFileSync(resultFile, JSON.stringify(await ws.request(StateGetRequest.type, {})));

    // --- WebSocket round trips ---------------------------------------------------------------------------
    const echoWs = echoServer('--ws', resultFile);
    children.push(echoWs);
    const echoUrl = await new Promise<string>((res) => createInterface({ input: echoWs.stdout! }).once('line', res));
    const echoWsClient = await connectWs(echoUrl, 'unused');
    const wsRatio = await compare(ROUNDS, () => roundTrips(ws.connection), () => roundTrips(echoWsClient.connection));
    rows.push(
      comparisonRow(
        `toka/state/get over WebSocket (${IN_FLIGHT} in flight)`,
        'bare vscode-jsonrpc echo, same transport',
        wsRatio,
        0.8,
      ),
    );
    await echoWsClient.close();

    // --- submit over WebSocket, 64 clients, vs in process ----------------------------------------------------
    const clients = await Promise.all(Array.from({ length: SUBMIT_CLIENTS }, () => connectWs(serve.wsUrl, token)));
    const data = { note: 'x'.repeat(200) };
    const overWs = async () => {
      let left = SUBMITS;
      await Promise.all(
        clients.map(async (c) => {
          while (left-- > 0) await c.request(KernelSubmitRequest.type, { op: { type: 'EmitObservation', agent: 'root', data } });
        }),
      );
      return SUBMITS;
    };
    const host = await Host.open({ dataDir: join(dir, 'inproc'), logger: createLogger({ level: 'error' }), rateLimit: false });
    const minted = await host.mint(host.localSession('bench'), { subject: 'bench', permissions: ['observation:emit'], ttlSeconds: 1800 });
    const session = await host.authenticate(minted.token);
    const inProcess = async () => {
      let left = SUBMITS;
      await Promise.all(
        Array.from({ length: SUBMIT_CLIENTS }, async () => {
          while (left-- > 0) await host.submit(session, { type: 'EmitObservation', agent: 'root', data });
        }),
      );
      return SUBMITS;
    };
    const submitRatio = await compare(ROUNDS, overWs, inProcess);
    rows.push(
      comparisonRow(
        `toka/kernel/submit over WebSocket (${SUBMIT_CLIENTS} clients)`,
        'host.submit in process, 64 submitters',
        submitRatio,
      ),
    );
    await Promise.all(clients.map((c) => c.close()));
    await host.close();
    await ws.close();

    // --- stdio round trips -----------------------------------------------------------------------------------
    const stdioHost = spawnJsonRpcProcess(process.execPath, ['dist/toka.js', 'serve', '--stdio', '--data', join(dir, 'stdio')], {
      env: { TOKA_LOG_LEVEL: 'warn' },
    });
    children.push(stdioHost.child);
    await stdioHost.connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { vault: 'bench' } });
    await stdioHost.connection.sendNotification('initialized', {});
    for (let i = 0; i < 3; i++) {
      await stdioHost.connection.sendRequest(KernelSubmitRequest.type, { op: { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } } });
    }
    const echoStdio = spawnJsonRpcProcess(process.execPath, ['--import', 'tsx', 'bench/fixtures/echo-server.ts', '--stdio', resultFile]);
    children.push(echoStdio.child);
    const stdioRatio = await compare(ROUNDS, () => roundTrips(stdioHost.connection), () => roundTrips(echoStdio.connection));
    rows.push(
      comparisonRow(
        `toka/state/get over stdio (${IN_FLIGHT} in flight)`,
        'bare vscode-jsonrpc echo, same transport',
        stdioRatio,
        0.8,
      ),
    );
    await stdioHost.connection.sendRequest('shutdown');
    await stdioHost.connection.sendNotification('exit');
    await stdioHost.close();
    return rows;
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
