/**
 * External MCP servers as an agent's tools, end to end: a host configures servers in
 * `<data>/mcp-servers.json`, an agent's spec names them (`tools.mcp_servers`), and a scripted run calls
 * their tools — a real SDK server in a child process over stdio (test/fixtures/tools/mcp-tool-server.mjs).
 * The tools are namespaced, need `tool:mcp`, a privileged one waits for an approval, the secret comes from
 * the host environment, the server process ends when the agent is terminated, and the run replays.
 * A server that cannot start fails the run with a typed reason; the host goes on.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunRecord } from '../../protocol/runtime.js';
import { HostError } from '../../server/host/errors.js';
import { Host, type Session } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { RUNTIME_HANDLERS, type AgentRuntime } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { startRuntime } from '../../server/runtime/start.js';
import { McpServersConfigError, parseMcpServers, sourceConfig } from '../../server/runtime/tools/mcp-servers.js';
import { toka } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/tools/mcp-tool-server.mjs', import.meta.url));
const quiet = createLogger({ level: 'silent' });
const SECRET = 'fixture-secret-value-7f3a';

const spec = (name: string, servers: string[], capabilities: string[]) => `
metadata:
  name: ${name}
  version: v0.1.0
  created: "2026-11-20"
  workstream: MCP Server Tests
spec:
  name: MCP Server Test Agent
  domain: testing
  priority: medium
capabilities:
  primary: [use-external-tools]
objectives:
  - description: Use the tools of its MCP servers
    deliverable: an answer in the run result
    validation: The answer quotes the tools
tasks:
  default:
    - description: Use the tools
      priority: low
tools:
  mcp_servers: [${servers.join(', ')}]
security:
  capabilities_required: [${capabilities.join(', ')}]
`;

function loaded(name: string, servers: string[], capabilities = ['tool:mcp']) {
  const analysis = analyzeSpecText(`${name}.agent.yaml`, spec(name, servers, capabilities));
  assert.deepEqual(analysis.diagnostics.filter((d) => d.severity === 'error'), []);
  return { spec: analysis.spec!, digest: analysis.digest!, document: analysis.document };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runtime: external MCP servers configured on the host, named by the agent spec', function () {
  this.timeout(60_000);
  let dir: string;
  let data: string;
  let host: Host;
  let runtime: AgentRuntime;
  let dev: Session;

  const open = async (transcript: object, env: Record<string, string> = {}) => {
    writeFileSync(join(dir, 'transcript.json'), JSON.stringify(transcript));
    host = await Host.open({ dataDir: data, logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    runtime = await startRuntime(host, { dataDir: data, logger: quiet, llm: { provider: 'scripted', transcript: join(dir, 'transcript.json') }, env });
    const { token } = await host.mint(host.localSession('v'), {
      subject: 'dev',
      permissions: ['agent:spawn', 'agent:terminate', 'capability:grant', 'task:run', 'task:schedule', 'task:cancel', 'task:approve', 'state:read', 'events:read', 'tool:mcp'],
      ttlSeconds: 1800,
    });
    dev = await host.authenticate(token);
  };

  const ended = async (run: string): Promise<RunRecord> => runtime.waitForEnd(dev, run);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-mcp-servers-'));
    data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(
      join(data, 'mcp-servers.json'),
      JSON.stringify({
        servers: {
          fx: {
            command: process.execPath,
            args: [FIXTURE],
            env: { FIXTURE_SECRET: { fromEnv: 'HOST_FIXTURE_SECRET' }, FIXTURE_PID_FILE: join(dir, 'fx.pid') },
            toolSideEffects: { fail: 'privileged' },
          },
          dead: { command: join(dir, 'no-such-server'), connectTimeoutMs: 2000 },
        },
      }),
    );
  });

  afterEach(async () => {
    await runtime?.close();
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('offers the servers tools namespaced to the run, authorises them like built-ins, and closes the server with the agent', async () => {
    const digest = createHash('sha256').update(SECRET).digest('hex');
    await open(
      {
        turns: [
          { expect: { toolsOffered: ['fx__echo', 'fx__secret_digest', 'fx__fail'] }, toolCalls: [{ id: 'c1', name: 'fx__echo', arguments: { text: 'hi' } }] },
          { expect: { toolResults: [{ callId: 'c1', isError: false, contains: 'echo: hi' }] }, toolCalls: [{ id: 'c2', name: 'fx__secret_digest', arguments: {} }] },
          { expect: { toolResults: [{ callId: 'c2', isError: false, contains: digest }] }, toolCalls: [{ id: 'c3', name: 'fx__fail', arguments: {} }] },
          { expect: { toolResults: [{ callId: 'c3', isError: true, contains: 'it went wrong' }] }, text: 'used the external tools' },
        ],
      },
      { HOST_FIXTURE_SECRET: SECRET },
    );
    const { agent } = await runtime.spawn(dev, loaded('fx-user', ['fx']));
    // Lazily: no server process until a run needs the tools.
    assert.throws(() => readFileSync(join(dir, 'fx.pid')));
    const { runs } = await runtime.run(dev, { agent, input: 'use the tools' });
    // fx__fail is configured privileged: the run waits for a human.
    const [approval] = await waitFor(async () => {
      const list = await runtime.approvals(dev);
      return list.length > 0 ? list : undefined;
    }, 20_000, 'the privileged call to wait for an approval');
    assert.equal(approval.call.name, 'fx__fail');
    assert.equal(approval.permission, 'tool:mcp');
    await runtime.resolve(dev, { run: runs[0], approval: approval.id, decision: 'approve' });
    const run = await ended(runs[0]);
    assert.equal(run.state, 'completed', JSON.stringify(run.reason));
    assert.equal(run.text, 'used the external tools');

    const records = await host.queryEvents(dev, { agent, types: ['ToolCallRequested', 'ToolResultRecorded'], limit: 100 });
    const requested = records.filter((r) => r.event.type === 'ToolCallRequested').map((r) => r.event as unknown as { call: { name: string }; decision: string; permission: string });
    assert.deepEqual(requested.map((e) => [e.call.name, e.decision, e.permission]), [
      ['fx__echo', 'allowed', 'tool:mcp'],
      ['fx__secret_digest', 'allowed', 'tool:mcp'],
      ['fx__fail', 'approval', 'tool:mcp'],
    ]);
    // The secret reached the server but is nowhere in the log.
    const all = JSON.stringify(await host.queryEvents(dev, { limit: 1000 }));
    assert.ok(!all.includes(SECRET));

    const pid = Number(readFileSync(join(dir, 'fx.pid'), 'utf8'));
    assert.ok(alive(pid));
    await runtime.terminate(dev, { agent });
    await waitFor(() => !alive(pid), 10_000, 'the MCP server process to end with its agent');

    // The run replays from the log, calling no LLM and no tool.
    await runtime.close();
    await host.close();
    const replay = await toka(['replay', '--data', data, '--task', runs[0], '--json'], { timeoutMs: 30_000 });
    assert.equal(replay.code, 0, replay.stdout + replay.stderr);
    assert.equal((JSON.parse(replay.stdout) as { identical: boolean }).identical, true);
  });

  it('an agent without tool:mcp never starts its servers, and a call to one of their tools is refused', async () => {
    await open({
      turns: [
        { toolCalls: [{ id: 'c1', name: 'fx__echo', arguments: { text: 'hi' } }] },
        { expect: { toolResults: [{ callId: 'c1', isError: true, contains: 'unknown tool fx__echo' }] }, text: 'refused' },
      ],
    });
    const { agent } = await runtime.spawn(dev, loaded('fx-denied', ['fx'], ['filesystem-read']));
    const { runs } = await runtime.run(dev, { agent, input: 'try' });
    const run = await ended(runs[0]);
    assert.equal(run.state, 'completed', JSON.stringify(run.reason));
    assert.throws(() => readFileSync(join(dir, 'fx.pid')), /ENOENT/);
  });

  it('a server that cannot start fails the run with a typed reason, and the host goes on', async () => {
    await open({ turns: [{ text: 'never asked' }] });
    const { agent } = await runtime.spawn(dev, loaded('dead-user', ['dead']));
    const { runs } = await runtime.run(dev, { agent, input: 'try' });
    const run = await ended(runs[0]);
    assert.equal(run.state, 'failed');
    assert.equal(run.reason?.code, 'ToolError');
    assert.match(run.reason!.message, /Failed: MCP source dead: cannot connect/);
    // Tried again on the next run (not cached as broken), and still typed.
    const again = await ended((await runtime.run(dev, { agent, input: 'again' })).runs[0]);
    assert.equal(again.reason?.code, 'ToolError');
  });

  it('a secret variable that is not set fails the run naming the variable', async () => {
    await open({ turns: [{ text: 'never asked' }] });
    const { agent } = await runtime.spawn(dev, loaded('no-secret', ['fx']));
    const run = await ended((await runtime.run(dev, { agent, input: 'try' })).runs[0]);
    assert.equal(run.state, 'failed');
    assert.equal(run.reason?.code, 'ToolError');
    assert.match(run.reason!.message, /HOST_FIXTURE_SECRET is not set/);
  });

  it('a spec naming a server the host does not configure cannot be spawned', async () => {
    await open({ turns: [{ text: 'never asked' }] });
    const err = await runtime.spawn(dev, loaded('unknown-server', ['nope'])).catch((e: unknown) => e);
    assert.ok(err instanceof HostError);
    assert.equal(err.errorName, 'InvalidOperation');
    assert.deepEqual(err.data, { name: 'InvalidOperation', reason: 'UnknownMcpServer', servers: ['nope'] });
  });

  it('a bad mcp-servers.json is refused naming the field; secrets resolve from env and files', async () => {
    const bad = (doc: unknown, pattern: RegExp) => assert.throws(() => parseMcpServers(doc, 'mcp-servers.json'), (e: unknown) => e instanceof McpServersConfigError && pattern.test(e.message));
    bad([], /the file must be a JSON object/);
    bad({ servers: { 'a b': { command: 'x' } } }, /servers\.a b has a name that does not match/);
    bad({ servers: { a: {} } }, /servers\.a needs command/);
    bad({ servers: { a: { command: 'x', url: 'http://127.0.0.1/' } } }, /sets both command/);
    bad({ servers: { a: { url: 'http://u:p@127.0.0.1/' } } }, /must not carry credentials/);
    bad({ servers: { a: { command: 'x', env: { K: { fromShell: 'x' } } } } }, /servers\.a\.env\.K must be a string/);
    bad({ servers: { a: { command: 'x', sideEffect: 'harmless' } } }, /sideEffect must be one of/);
    bad({ servers: { a: { command: 'x', colour: 'red' } } }, /unknown key "colour"/);
    bad(JSON.parse('{"servers": {"__proto__": {"command": "x"}}}'), /servers\.__proto__ has a name that does not match/);
    const file = join(dir, 'token');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    const servers = parseMcpServers({ servers: { h: { url: 'http://127.0.0.1:9/mcp', headers: { Authorization: { fromFile: file }, 'X-Env': { fromEnv: 'HDR' } } } } }, 'mcp-servers.json');
    const config = await sourceConfig(servers.get('h')!, { HDR: 'from-env' });
    assert.deepEqual(config.transport, { type: 'http', url: 'http://127.0.0.1:9/mcp', headers: { Authorization: 'from-file', 'X-Env': 'from-env' } });
  });
});
