/**
 * The A2A face's task feed (server/adapters/a2a/feed.ts) over a real host and agent runtime: a stream that
 * starts right after its run is submitted gets the run's records from the feed, from the first on, then the
 * live ones, in seq order and once each; a run whose first records the feed no longer keeps (or that came
 * before it started) is reported as not covered, so the handler reads the log for it, and its stream goes on
 * with the live records.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TaskState } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory } from '@a2a-js/sdk/client';
import type { LogRecord } from '../../protocol/events.js';
import { TaskFeed } from '../../server/adapters/a2a/feed.js';
import { mountA2a } from '../../server/adapters/a2a/http.js';
import { startHttpServer, type HttpServer } from '../../server/adapters/http.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { parseTranscript, scriptedProvider } from '../../server/runtime/llm/index.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { builtinTools, ToolRegistry } from '../../server/runtime/tools/index.js';
import { A2A_USER, a2aSpec, asTask, authFetch, readSse, sendRequest } from '../helpers/a2a.js';
import { waitFor } from '../helpers/wait.js';

const quiet = createLogger({ level: 'silent' });
/** The records of a one-turn run that answers at once. */
const RUN_TYPES = ['RunSubmitted', 'RunStarted', 'LlmTurnRecorded', 'RunCompleted'];

describe('A2A task feed', function () {
  this.timeout(30_000);
  let dir: string;
  let host: Host;
  let runtime: AgentRuntime;
  let session: Session;
  let token: string;
  let agent: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'toka-a2a-feed-'));
    host = await Host.open({ dataDir: join(dir, 'data'), logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    const tools = new ToolRegistry();
    for (const tool of builtinTools()) tools.register(tool);
    const pong = scriptedProvider(parseTranscript({ turns: [{ text: 'pong' }] }));
    const asker = scriptedProvider(parseTranscript({ turns: [{ toolCalls: [{ id: 's1', name: 'shell', arguments: { command: 'echo ok' } }] }, { text: 'shell ran' }] }));
    runtime = await AgentRuntime.start({
      host,
      provider: (a) => (a?.specName === 'asker' ? asker : pong),
      tools,
      workspaceRoot: join(dir, 'workspaces'),
      logger: quiet,
    });
    ({ token } = await host.mint(host.localSession('v'), { subject: 'peer', permissions: A2A_USER, ttlSeconds: 600 }));
    session = await host.authenticate(token);
    const analysis = analyzeSpecText('echo.agent.yaml', a2aSpec('echo'));
    agent = (await runtime.spawn(session, { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document })).agent;
  });
  afterEach(async () => {
    await runtime.close();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Submit a run and follow it from its first record until it completes; the records the listener got. */
  async function runAndFollow(feed: TaskFeed): Promise<{ run: string; submittedSeq: number; covered: boolean; records: LogRecord[] }> {
    const { runs, submittedSeqs } = await runtime.run(session, { agent, input: 'ping' });
    const records: LogRecord[] = [];
    const following = feed.follow('v', runs[0], submittedSeqs[0] - 1, (r) => records.push(r));
    await following.ready;
    assert.ok(records.length > 0 && records[0].event.type === 'RunSubmitted', 'every record committed before the stream started is there once ready');
    await waitFor(() => records.some((r) => r.event.type === 'RunCompleted') || null, 10_000, 'the run to complete');
    following.unsubscribe();
    return { run: runs[0], submittedSeq: submittedSeqs[0], covered: following.covered, records };
  }

  it('hands a stream that starts after its run was submitted every record of the run, in order, once each', async () => {
    const feed = new TaskFeed(host, quiet);
    feed.follow('v', 'no-such-run', host.headSeq(), () => assert.fail('no record of another run')).unsubscribe();
    for (let i = 0; i < 3; i++) {
      const { run, submittedSeq, covered, records } = await runAndFollow(feed);
      assert.equal(covered, true);
      assert.deepEqual(records.map((r) => r.event.type), RUN_TYPES);
      const logged = (await host.readAllEvents({ afterSeq: submittedSeq - 1, limit: 100, vault: 'v', agent })).filter((r) =>
        RUN_TYPES.includes(r.event.type) && ((r.event as unknown as { run: string | { id: string } }).run === run || (r.event as unknown as { run: { id?: string } }).run.id === run),
      );
      assert.deepEqual(records.map((r) => r.seq), logged.map((r) => r.seq), 'the records the log holds for the run, by seq');
    }
    assert.equal(feed.following, 0, 'unsubscribed streams are gone');
  });

  it('reports a run whose first records it no longer keeps, or that came before it started, as not covered', async () => {
    const before = await runtime.run(session, { agent, input: 'ping' });
    const feed = new TaskFeed(host, quiet, 4);
    const early = feed.follow('v', before.runs[0], before.submittedSeqs[0] - 1, () => {});
    assert.equal(early.covered, false, 'submitted before the feed started');
    early.unsubscribe();

    const first = await runAndFollow(feed);
    assert.equal(first.covered, true);
    await runAndFollow(feed); // four more task records: the first run's are no longer kept
    const again: LogRecord[] = [];
    const late = feed.follow('v', first.run, first.submittedSeq - 1, (r) => again.push(r));
    assert.equal(late.covered, false);
    assert.deepEqual(again, [], 'nothing of it is handed over from memory');
    late.unsubscribe();
  });

  it('keeps a run to its vault', async () => {
    const feed = new TaskFeed(host, quiet);
    feed.follow('v', 'x', host.headSeq(), () => {}).unsubscribe();
    const { runs, submittedSeqs } = await runtime.run(session, { agent, input: 'ping' });
    const other: LogRecord[] = [];
    const following = feed.follow('w', runs[0], submittedSeqs[0] - 1, (r) => other.push(r));
    await following.ready;
    await waitFor(async () => (await runtime.getRun(session, runs[0])).state === 'completed' || null, 10_000, 'the run to complete');
    following.unsubscribe();
    assert.deepEqual(other, []);
  });

  it('a subscription to a task whose records it no longer keeps reads them from the log, then follows it live to its end', async () => {
    const analysis = analyzeSpecText('asker.agent.yaml', a2aSpec('asker'));
    const askerAgent = (await runtime.spawn(session, { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document })).agent;
    const http: HttpServer = await startHttpServer(host, { host: '127.0.0.1', port: 0, logger: quiet, runtime });
    try {
      mountA2a(http, host, { runtime, logger: quiet, config: { publish: { vault: 'v', agents: ['echo', 'asker'] } }, keptTaskRecords: 4 });
      const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch(token) })] }));
      const client = await factory.createFromUrl(http.url);
      const asked = asTask(await client.sendMessage(sendRequest('use the shell', { skill: askerAgent })));
      assert.equal(asked.status?.state, TaskState.TASK_STATE_INPUT_REQUIRED);
      for (let i = 0; i < 2; i++) asTask(await client.sendMessage(sendRequest('ping', { skill: agent }))); // 8 task records since

      const res = await fetch(`${http.url}/a2a/jsonrpc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'sub', method: 'SubscribeToTask', params: { id: asked.id } }),
      });
      const reading = readSse(res);
      const done = asTask(await client.sendMessage(sendRequest('approve', { taskId: asked.id })));
      const events = await reading;
      assert.equal(events[0].data.result.task.status.state, 'TASK_STATE_INPUT_REQUIRED', 'the stream starts with the task as the log has it');
      assert.equal(events[events.length - 1].data.result.statusUpdate?.status.state, 'TASK_STATE_COMPLETED');
      const ids = events.map((e) => e.id!);
      assert.equal(new Set(ids).size, ids.length, `no update twice: ${ids.join(',')}`);
      assert.deepEqual(
        events.slice(1).map((e) => e.data.result.statusUpdate?.status.state ?? 'artifact'),
        ['TASK_STATE_WORKING', 'TASK_STATE_WORKING', 'artifact', 'TASK_STATE_COMPLETED'],
      );
      assert.equal(done.status?.state, TaskState.TASK_STATE_COMPLETED);
    } finally {
      await http.close();
    }
  });
});
