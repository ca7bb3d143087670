/**
 * Toka's A2A client and the `a2a_delegate` tool against a bare `@a2a-js/sdk` server with its own executor
 * (test/fixtures/a2a/sdk-server.ts, its own process): the SDK's JSON-RPC and HTTP+JSON transports through
 * `connectA2a` and `toka a2a send`, then an agent of an in-process Toka host (scripted LLM, real runner,
 * real SQLite) delegating to it — updates recorded in the run's log, the result the LLM sees, cancel
 * reaching the remote task — and every bad input coming back as a typed tool error.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageRequest, StreamResponse, TaskState, type Task } from '@a2a-js/sdk';
import type { LogRecord } from '../../protocol/events.js';
import type { RunToolResult } from '../../protocol/runtime.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { connectA2a } from '../../server/runtime/a2a/client.js';
import { parseTranscript, scriptedProvider, type ScriptedTranscript } from '../../server/runtime/llm/index.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { createA2aDelegateTool } from '../../server/runtime/tools/a2a-delegate.js';
import { builtinTools, ToolRegistry } from '../../server/runtime/tools/index.js';
import { kernelTools } from '../../server/runtime/tools/kernel.js';
import { ROOT, toka } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const quiet = createLogger({ level: 'silent' });

/** Start the bare SDK server in its own process; resolves with its URL. */
export async function startSdkServer(): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/a2a/sdk-server.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the SDK server did not start')), 20_000);
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    child.once('exit', () => reject(new Error('the SDK server exited')));
  });
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function message(text: string, taskId?: string): SendMessageRequest {
  return SendMessageRequest.fromJSON({ message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...(taskId ? { taskId } : {}) } });
}

describe('Toka A2A client against a bare @a2a-js/sdk server', function () {
  this.timeout(60_000);
  let sdk: Awaited<ReturnType<typeof startSdkServer>>;
  before(async () => {
    sdk = await startSdkServer();
  });
  after(async () => sdk?.stop());

  for (const binding of ['jsonrpc', 'rest'] as const) {
    it(`streams, sends, gets and cancels over the SDK's ${binding} transport`, async () => {
      const c = await connectA2a(sdk.url, { binding });
      assert.equal(c.binding, binding);
      const updates: string[] = [];
      for await (const u of c.client.sendMessageStream(message('hello'))) updates.push(u.payload!.$case);
      assert.deepEqual(updates, ['task', 'statusUpdate', 'artifactUpdate', 'statusUpdate']);
      const task = (await c.client.sendMessage(message('again'))) as Task;
      assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED);
      assert.equal(task.artifacts[0].parts[0].content?.value, 'echo: again');
      assert.equal((await c.client.getTask({ id: task.id, tenant: '', historyLength: undefined })).id, task.id);
      const waiting = c.client.sendMessageStream(message('wait'));
      const first = (await waiting.next()).value as StreamResponse;
      assert.equal(first.payload?.$case, 'task');
      const id = first.payload.value.id;
      const canceled = await c.client.cancelTask({ id, tenant: '', metadata: undefined });
      assert.equal(canceled.status?.state, TaskState.TASK_STATE_CANCELED);
      await waiting.return(undefined);
      c.close();
    });
  }

  it('refuses a binding the card does not offer, naming what it offers', async () => {
    await assert.rejects(connectA2a(sdk.url, { binding: 'ws' }), /does not offer the ws binding .*its card offers: JSONRPC, HTTP\+JSON/);
  });

  it('toka a2a send --binding rest --stream prints one JSON line per update', async () => {
    const run = await toka(['a2a', 'send', sdk.url, 'from the cli', '--binding', 'rest', '--stream'], { env: { TOKA_TOKEN: 'unused-by-this-server' }, timeoutMs: 30_000 });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => Object.keys(l)[0]), ['task', 'statusUpdate', 'artifactUpdate', 'statusUpdate']);
    const bad = await toka(['a2a', 'send', sdk.url, 'x', '--binding', 'carrier-pigeon'], { env: { TOKA_TOKEN: 't' } });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--binding must be one of jsonrpc, rest, ws/);
  });
});

const spec = (name: string, permissions: string[]) => `
metadata: {name: ${name}, version: v0.1.0, created: "2026-12-03", workstream: A2A Out}
spec: {name: ${name} agent, domain: testing, priority: medium}
capabilities: {primary: [delegate-${name}]}
objectives:
  - {description: Delegate what it is asked, deliverable: the remote answer, validation: it is there}
tasks: {default: [{description: Delegate the task it gets, priority: low}]}
security: {capabilities_required: [${permissions.join(', ')}]}
`;

describe('a2a_delegate against a bare @a2a-js/sdk server (in-process Toka host)', function () {
  this.timeout(60_000);
  let sdk: Awaited<ReturnType<typeof startSdkServer>>;
  let dir: string;
  let host: Host;
  let runtime: AgentRuntime;
  let dev: Session;
  /** The tool calls each agent (by spec name) makes, in order; the next turn ends the run. */
  const calls: Record<string, Record<string, unknown>> = {};

  before(async () => {
    sdk = await startSdkServer();
    dir = mkdtempSync(join(tmpdir(), 'toka-a2a-out-'));
    const dataDir = join(dir, 'data');
    host = await Host.open({ dataDir, logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    writeFileSync(join(dataDir, 'peer.token'), 'not-a-capability-token\n');
    chmodSync(join(dataDir, 'peer.token'), 0o600);
    writeFileSync(
      join(dataDir, 'a2a-peers.json'),
      JSON.stringify({
        peers: [
          { url: sdk.url, binding: 'jsonrpc', tokenFile: 'peer.token', perCallToken: false },
          { url: 'http://127.0.0.1:9', tokenFile: 'peer.token', perCallToken: false },
        ],
      }),
    );
    Object.assign(calls, {
      echo: { url: sdk.url, message: 'summarise the report' },
      failing: { url: sdk.url, message: 'fail' },
      waiting: { url: sdk.url, message: 'wait' },
      'unknown-task': { url: sdk.url, message: 'go on', task: 'no-such-task' },
      unreachable: { url: 'http://127.0.0.1:9', message: 'hello?' },
      unconfigured: { url: 'http://127.0.0.1:1/elsewhere', message: 'hello?' },
      'bad-url': { url: 'ftp://127.0.0.1/x', message: 'hello?' },
      denied: { url: sdk.url, message: 'not allowed' },
      chunks: { url: sdk.url, message: 'chunks' },
    });
    const transcript = (name: string): ScriptedTranscript => ({
      turns: [{ toolCalls: [{ id: `${name}-1`, name: 'a2a_delegate', arguments: calls[name] }] }, { text: `${name} done` }],
    });
    const providers = new Map(Object.keys(calls).map((name) => [name, scriptedProvider(parseTranscript(transcript(name)))]));
    const tools = new ToolRegistry();
    for (const tool of [...builtinTools(), ...kernelTools, createA2aDelegateTool({ dataDir })]) tools.register(tool);
    runtime = await AgentRuntime.start({
      host,
      provider: (agent) => providers.get(agent?.specName ?? '')!,
      tools,
      workspaceRoot: join(dir, 'ws'),
      logger: quiet,
      toolLimits: { a2aOutputChars: 1000, a2aRecordedUpdates: 10 },
    });
    const { token } = await host.mint(host.localSession('v'), { subject: 'dev', permissions: ['agent:spawn', 'capability:grant', 'task:schedule', 'task:run', 'task:cancel', 'state:read', 'tool:a2a', 'tool:fs-read'], ttlSeconds: 1800 });
    dev = await host.authenticate(token);
  });
  after(async () => {
    await runtime?.close();
    await host?.close();
    await sdk?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function runAgent(name: string, permissions = ['tool:a2a']): Promise<{ run: string; records: LogRecord[] }> {
    const analysis = analyzeSpecText(`${name}.agent.yaml`, spec(name, permissions));
    assert.ok(analysis.spec, JSON.stringify(analysis.diagnostics));
    const { agent } = await runtime.spawn(dev, { spec: analysis.spec, digest: analysis.digest!, document: analysis.document });
    const { runs } = await runtime.run(dev, { agent, input: `delegate for ${name}` });
    return { run: runs[0], records: [] };
  }

  async function ended(run: string): Promise<LogRecord[]> {
    await waitFor(async () => ['completed', 'failed', 'canceled'].includes((await runtime.getRun(dev, run)).state) || null, 30_000, `run ${run} to end`);
    return (await host.readAllEvents({ afterSeq: 0, limit: 100_000 })).filter((r) => (r.event as { run?: string }).run === run);
  }

  const resultOf = (records: LogRecord[]) => (records.find((r) => r.event.type === 'ToolResultRecorded')!.event as unknown as { result: RunToolResult }).result;
  const progressOf = (records: LogRecord[]) =>
    records.filter((r) => r.event.type === 'ToolProgressRecorded').map((r) => (r.event as unknown as { progress: Record<string, unknown> }).progress);

  it('records the remote status updates and artifact in the run, and gives the LLM the outcome', async () => {
    const { run } = await runAgent('echo');
    const records = await ended(run);
    const progress = progressOf(records);
    assert.deepEqual(
      progress.map((p) => [p.kind, p.state ?? p.name]),
      [['status', 'submitted'], ['status', 'working'], ['artifact', 'answer'], ['status', 'completed']],
    );
    assert.equal(progress[1].text, 'working on: summarise the report');
    assert.equal(progress[2].text, 'echo: summarise the report');
    assert.ok(progress.every((p) => p.callId === 'echo-1' && String(p.subject).startsWith('a2a task ')));
    const result = resultOf(records);
    assert.equal(result.isError, false);
    assert.match(result.content, /^remote task \S+ at 127\.0\.0\.1:\d+: completed/);
    assert.match(result.content, /\[artifact answer\]\necho: summarise the report/);
    assert.equal((await runtime.getRun(dev, run)).state, 'completed');
  });

  it('bounds what a remote can make it keep: recorded updates and the result text', async () => {
    const records = await ended((await runAgent('chunks')).run);
    assert.equal(progressOf(records).length, 10, 'a2aRecordedUpdates');
    const result = resultOf(records);
    assert.equal(result.isError, false);
    assert.match(result.content, /\n\[cut at 1000 characters \(limit a2aOutputChars\)\]\n\[303 updates seen, the first 10 recorded \(limit a2aRecordedUpdates\)\]$/);
    assert.ok(result.content.length < 1200, `${result.content.length} characters`);
  });

  it('a remote task that fails is a tool-level error (isError) the LLM sees', async () => {
    const result = resultOf(await ended((await runAgent('failing')).run));
    assert.equal(result.isError, true);
    assert.match(result.content, /: failed\nfailed on purpose/);
  });

  it('a remote JSON-RPC error (unknown task) is a typed Failed naming the remote error', async () => {
    const result = resultOf(await ended((await runAgent('unknown-task')).run));
    assert.equal(result.code, 'Failed');
    assert.match(result.content, /the remote agent refused: TaskNotFound/);
  });

  it('an unreachable peer, an unconfigured URL and a bad URL are typed tool errors', async () => {
    const [unreachable, unconfigured, badUrl] = await Promise.all(['unreachable', 'unconfigured', 'bad-url'].map(async (n) => resultOf(await ended((await runAgent(n)).run))));
    assert.equal(unreachable.code, 'Failed');
    assert.match(unreachable.content, /cannot reach the A2A agent at 127\.0\.0\.1:9/);
    assert.equal(unconfigured.code, 'Denied');
    assert.match(unconfigured.content, /is not a configured A2A peer/);
    assert.equal(badUrl.code, 'InvalidArguments');
    assert.match(badUrl.content, /an http\(s\) URL is required/);
  });

  it('an agent without tool:a2a is denied the call', async () => {
    const records = await ended((await runAgent('denied', ['filesystem-read'])).run);
    assert.equal((records.find((r) => r.event.type === 'ToolCallRequested')!.event as unknown as { decision: string }).decision, 'denied');
    const result = resultOf(records);
    assert.equal(result.code, 'Denied');
    assert.match(result.content, /tool:a2a/);
  });

  it('cancelling the local run cancels the remote task', async () => {
    const { run } = await runAgent('waiting');
    const working = await waitFor(async () => {
      const records = (await host.readAllEvents({ afterSeq: 0, limit: 100_000 })).filter((r) => (r.event as { run?: string }).run === run);
      return progressOf(records).find((p) => p.state === 'working') ?? null;
    }, 20_000, 'the remote task to be working');
    const remoteId = String(working.subject).replace('a2a task ', '');
    await runtime.cancel(dev, { run, reason: 'changed my mind' });
    const c = await connectA2a(sdk.url, { binding: 'jsonrpc' });
    const remote = await waitFor(async () => {
      const t = await c.client.getTask({ id: remoteId, tenant: '', historyLength: undefined });
      return t.status?.state === TaskState.TASK_STATE_CANCELED ? t : null;
    }, 10_000, 'the remote task to be canceled');
    assert.equal(remote.id, remoteId);
    assert.equal((await runtime.getRun(dev, run)).state, 'canceled');
  });
});
