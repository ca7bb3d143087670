import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanEnv, ROOT, toka, TOKA_BIN } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { spawnServe, type ServeProcess } from '../helpers/ws-client.js';

/** A spec of the test workstream: `name` with its priority and the agents it requires. */
function spec(name: string, priority: string, requires: string[] = []): string {
  return `metadata:
  name: ${name}
  version: v0.1.0
  created: "2026-11-20"
  workstream: Run CLI Tests
spec:
  name: Agent ${name.toUpperCase()}
  domain: testing
  priority: ${priority}
capabilities:
  primary: [write-files]
objectives:
  - description: Write its own output file
    deliverable: ${name}.out in the workspace
    validation: The file holds the agent name
tasks:
  default:
    - description: Write ${name}.out with your name in it
      priority: high
dependencies:
  required: [${requires.map((r) => `{${r}: needs its output}`).join(', ')}]
security:
  sandbox: true
  capabilities_required: [filesystem-read, filesystem-write]
  resource_limits: {max_memory: 64MB, max_cpu: 25%, timeout: 1m}
`;
}

/** A transcript that writes `<name>.out` and ends; `delayMs` before the first answer. */
function transcript(name: string, delayMs = 0) {
  return {
    turns: [
      {
        expect: { userContains: `${name}.out` },
        toolCalls: [{ id: 'c1', name: 'fs_write', arguments: { path: `${name}.out`, content: `written by ${name}` } }],
        ...(delayMs ? { delayMs } : {}),
      },
      { expect: { toolResults: [{ callId: 'c1', isError: false }] }, text: `${name} done` },
    ],
  };
}

/** A transcript any agent of the test workstream can follow (the remote host has one for all). */
const SHARED_TRANSCRIPT = {
  turns: [
    { toolCalls: [{ id: 'c1', name: 'fs_write', arguments: { path: 'out.md', content: 'written' } }] },
    { expect: { toolResults: [{ callId: 'c1', isError: false }] }, text: 'done' },
  ],
};

/** The reference's worked example: a (critical), b and c (high) ← a, d (medium) ← b, c. */
const DIAMOND: [string, string, string[]][] = [
  ['agent-a', 'critical', []],
  ['agent-b', 'high', ['agent-a']],
  ['agent-c', 'high', ['agent-a']],
  ['agent-d', 'medium', ['agent-b', 'agent-c']],
];

interface RunJson {
  ok: boolean;
  target: string;
  mode: 'local' | 'remote';
  dataDir: string;
  waves: string[][];
  durationMs: number;
  diagnostics?: { file: string; line: number; column: number; rule: string; message: string }[];
  agents: {
    name: string;
    file: string;
    wave: number;
    priority: string;
    status: string;
    agent?: string;
    reason?: string;
    workspace?: string;
    runs: { id: string; state: string; turns: number; toolCalls: number; tokens: number; text?: string; reason?: { code: string; message: string } }[];
  }[];
}

interface Record_ {
  seq: number;
  event: { type: string; agent?: string; run?: string };
}

describe('toka run', function () {
  this.timeout(60_000);
  let dir: string;
  let data: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-run-'));
    data = join(dir, 'data');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Write a workstream folder (specs) and a transcript folder (`<name>.json` per agent). */
  function workstream(agents: [string, string, string[]][], transcripts: Record<string, unknown> = {}): { specs: string; scripts: string } {
    const specs = join(dir, 'ws');
    const scripts = join(dir, 'transcripts');
    mkdirSync(specs, { recursive: true });
    mkdirSync(scripts, { recursive: true });
    for (const [name, priority, requires] of agents) {
      writeFileSync(join(specs, `${name}.yaml`), spec(name, priority, requires));
      writeFileSync(join(scripts, `${name}.json`), JSON.stringify(transcripts[name] ?? transcript(name)));
    }
    return { specs, scripts };
  }

  async function events(type: string): Promise<Record_[]> {
    const out = await toka(['events', '--data', data, '--type', type]);
    assert.equal(out.code, 0, out.stderr);
    return out.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record_);
  }

  it('runs the README first session: examples/hello with its transcripts, plain lines when stdout is not a terminal', async () => {
    const out = await toka(['run', 'examples/hello', '--transcript', 'examples/hello/transcripts', '--data', data]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^wave 1\/1: hello$/m);
    assert.match(out.stdout, /^hello: fs_write…$/m);
    assert.match(out.stdout, /^1 agent in 1 wave \(in this process, [\d.]+s\): 1 completed$/m);
    assert.doesNotMatch(out.stdout, /\x1b\[/, 'no escape codes outside a terminal');
    const id = /hello .*agent ([0-9a-f-]+), workspace/.exec(out.stdout)?.[1];
    assert.ok(id, out.stdout);
    assert.match(readFileSync(join(data, 'workspaces', id, 'hello.md'), 'utf8'), /Hello from a Toka agent/);
  });

  it('runs one spec file with --input and prints one JSON document', async () => {
    const { specs, scripts } = workstream([['solo', 'low', []]], {
      solo: { turns: [{ expect: { userContains: 'the given task' }, text: 'did the given task' }] },
    });
    const out = await toka(['run', join(specs, 'solo.yaml'), '--input', 'do the given task', '--transcript', join(scripts, 'solo.json'), '--data', data, '--json']);
    assert.equal(out.code, 0, out.stderr);
    const doc = JSON.parse(out.stdout) as RunJson;
    assert.equal(doc.ok, true);
    assert.equal(doc.mode, 'local');
    assert.deepEqual(doc.waves, [['solo']]);
    assert.equal(doc.agents.length, 1);
    const [a] = doc.agents;
    assert.equal(a.status, 'completed');
    assert.equal(a.runs.length, 1);
    assert.equal(a.runs[0].text, 'did the given task');
    const submitted = (await events('RunSubmitted')) as unknown as { event: { run: { input: string } } }[];
    assert.deepEqual(
      submitted.map((r) => r.event.run.input),
      ['do the given task'],
    );
  });

  it('runs a workstream in waves [[a],[b,c],[d]]: each wave starts after the previous one ended; --json shape', async () => {
    const { specs, scripts } = workstream(DIAMOND);
    const out = await toka(['run', specs, '--transcript', scripts, '--data', data, '--json']);
    assert.equal(out.code, 0, out.stderr);
    const doc = JSON.parse(out.stdout) as RunJson;
    assert.deepEqual(Object.keys(doc).sort(), ['agents', 'dataDir', 'durationMs', 'mode', 'ok', 'target', 'waves']);
    assert.equal(doc.ok, true);
    assert.deepEqual(doc.waves, [['agent-a'], ['agent-b', 'agent-c'], ['agent-d']]);
    assert.deepEqual(
      doc.agents.map((a) => [a.name, a.wave, a.priority, a.status]),
      [
        ['agent-a', 0, 'critical', 'completed'],
        ['agent-b', 1, 'high', 'completed'],
        ['agent-c', 1, 'high', 'completed'],
        ['agent-d', 2, 'medium', 'completed'],
      ],
    );
    for (const a of doc.agents) {
      assert.equal(a.runs.length, 1);
      assert.deepEqual(Object.keys(a.runs[0]).sort(), ['id', 'state', 'text', 'tokens', 'toolCalls', 'turns']);
      assert.equal(a.runs[0].text, `${a.name} done`);
      assert.equal(a.workspace, join(data, 'workspaces', a.agent!));
      assert.equal(readFileSync(join(a.workspace!, `${a.name}.out`), 'utf8'), `written by ${a.name}`);
    }
    const nameOf = new Map(doc.agents.map((a) => [a.agent!, a.name]));
    const started = (await events('RunStarted')).map((r) => ({ seq: r.seq, name: nameOf.get(r.event.agent!)! }));
    const completed = (await events('RunCompleted')).map((r) => ({ seq: r.seq, name: nameOf.get(r.event.agent!)! }));
    assert.equal(started[0].name, 'agent-a');
    assert.deepEqual(started.slice(1, 3).map((s) => s.name).sort(), ['agent-b', 'agent-c']);
    assert.equal(started[3].name, 'agent-d');
    const seq = (list: { seq: number; name: string }[], name: string) => list.find((x) => x.name === name)!.seq;
    assert.ok(seq(completed, 'agent-a') < Math.min(seq(started, 'agent-b'), seq(started, 'agent-c')), 'wave 2 starts after a completed');
    assert.ok(Math.max(seq(completed, 'agent-b'), seq(completed, 'agent-c')) < seq(started, 'agent-d'), 'wave 3 starts after b and c completed');
  });

  it('within a wave runs critical agents one at a time, first, then the others at most --concurrency at once', async () => {
    const names = ['crit-a', 'crit-b', 'high-a', 'high-b', 'high-c', 'high-d'];
    const { specs, scripts } = workstream(
      names.map((n) => [n, n.startsWith('crit') ? 'critical' : 'high', []] as [string, string, string[]]),
      Object.fromEntries(names.map((n) => [n, transcript(n, 300)])),
    );
    const out = await toka(['run', specs, '--transcript', scripts, '--data', data, '--concurrency', '2', '--json']);
    assert.equal(out.code, 0, out.stderr);
    const doc = JSON.parse(out.stdout) as RunJson;
    assert.deepEqual(doc.waves, [names]);
    const nameOf = new Map(doc.agents.map((a) => [a.agent!, a.name]));
    const steps = (await events('RunStarted,RunCompleted')).map((r) => `${r.event.type === 'RunStarted' ? '+' : '-'}${nameOf.get(r.event.agent!)}`);
    assert.deepEqual(steps.slice(0, 4), ['+crit-a', '-crit-a', '+crit-b', '-crit-b'], steps.join(' '));
    let working = 0;
    let most = 0;
    for (const s of steps.slice(4)) {
      working += s.startsWith('+') ? 1 : -1;
      most = Math.max(most, working);
    }
    assert.equal(most, 2, `at most --concurrency agents at once, and that many: ${steps.join(' ')}`);
  });

  it('refuses a cycle, naming the agents involved: exit 1, nothing spawned', async () => {
    const { specs, scripts } = workstream([
      ['agent-a', 'critical', []],
      ['agent-b', 'high', ['agent-a', 'agent-c']],
      ['agent-c', 'high', ['agent-b']],
    ]);
    assert.equal((await toka(['init', '--data', data])).code, 0);
    const out = await toka(['run', specs, '--transcript', scripts, '--data', data]);
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /workstream\/cycle: dependency cycle among agent-b, agent-c: agent-b → agent-c → agent-b/);
    assert.match(out.stderr, /nothing was spawned/);
    assert.deepEqual(await events('AgentSpawned,AgentRuntimeRegistered,RunSubmitted'), []);

    const json = await toka(['run', specs, '--data', data, '--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout) as RunJson;
    assert.equal(doc.ok, false);
    assert.ok(doc.diagnostics!.some((d) => d.rule === 'workstream/cycle' && d.file.endsWith('agent-b.yaml') && d.line > 0));
  });

  it('refuses an unknown dependency, naming both agents: exit 1, nothing spawned', async () => {
    const { specs, scripts } = workstream([
      ['agent-a', 'critical', []],
      ['agent-b', 'high', ['agent-zeta']],
    ]);
    assert.equal((await toka(['init', '--data', data])).code, 0);
    const out = await toka(['run', specs, '--transcript', scripts, '--data', data]);
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /agent-b\.yaml:\d+:\d+: error workstream\/unknown-dependency: agent "agent-b" requires "agent-zeta"/);
    assert.deepEqual(await events('AgentSpawned,AgentRuntimeRegistered,RunSubmitted'), []);
  });

  it('a failed dependency skips its dependants (not spawned, reason given); independent agents still run', async () => {
    const { specs, scripts } = workstream(
      [
        ['agent-a', 'critical', []],
        ['agent-b', 'high', ['agent-a']],
        ['agent-c', 'high', []],
        ['agent-d', 'medium', ['agent-b']],
      ],
      // The model's answer does not fit a's conversation: the run fails (LlmError).
      { 'agent-a': { turns: [{ expect: { userContains: 'something else entirely' }, text: 'never' }] } },
    );
    const out = await toka(['run', specs, '--transcript', scripts, '--data', data, '--json']);
    assert.equal(out.code, 1, out.stderr);
    const doc = JSON.parse(out.stdout) as RunJson;
    assert.equal(doc.ok, false);
    const by = new Map(doc.agents.map((a) => [a.name, a]));
    assert.equal(by.get('agent-a')!.status, 'failed');
    assert.equal(by.get('agent-a')!.runs[0].reason!.code, 'LlmError');
    assert.match(by.get('agent-a')!.reason!, /LlmError/);
    assert.equal(by.get('agent-b')!.status, 'skipped');
    assert.match(by.get('agent-b')!.reason!, /^required agent agent-a failed \(run .* failed: LlmError/);
    assert.equal(by.get('agent-b')!.agent, undefined, 'a skipped agent is not spawned');
    assert.equal(by.get('agent-d')!.status, 'skipped');
    assert.equal(by.get('agent-d')!.reason, 'required agent agent-b was skipped');
    assert.equal(by.get('agent-c')!.status, 'completed');
    assert.equal((await events('AgentRuntimeRegistered')).length, 2, 'only agent-a and agent-c were spawned');

    const plain = await toka(['run', specs, '--transcript', scripts, '--data', join(dir, 'plain')]);
    assert.equal(plain.code, 1);
    assert.match(plain.stdout, /^agent-b: skipped: required agent agent-a failed/m);
    assert.match(plain.stdout, /4 agents in 3 waves \(in this process, [\d.]+s\): 1 completed, 1 failed, 2 skipped/);
  });

  it('bad usage exits 2 and spawns nothing', async () => {
    const { specs, scripts } = workstream([['agent-a', 'critical', []]]);
    const cases: [string[], RegExp][] = [
      [['run'], /give one spec file or one folder/],
      [['run', join(dir, 'missing.yaml')], /cannot read .*missing\.yaml \(ENOENT\)/],
      [['run', specs, '--input', 'x'], /--input applies to one spec/],
      [['run', join(specs, 'agent-a.yaml'), '--input', ' '], /--input is empty/],
      [['run', specs, '--concurrency', '0'], /--concurrency: 1\.\.64/],
      [['run', specs, '--concurrency', 'many'], /--concurrency: expected a non-negative integer/],
      [['run', specs, '--transcript', join(dir, 'none')], /--transcript: cannot read/],
      [['run', specs, '--bogus'], /bogus/],
    ];
    for (const [args, message] of cases) {
      const out = await toka([...args, '--data', data]);
      assert.equal(out.code, 2, `${args.join(' ')}: ${out.stderr}`);
      assert.match(out.stderr, message);
    }
    rmSync(join(scripts, 'agent-a.json'));
    const missing = await toka(['run', specs, '--transcript', scripts, '--data', data]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no transcript for agent-a\.json/);
  });

  describe('next to a running toka serve', () => {
    let serve: ServeProcess;
    afterEach(async () => {
      await serve?.stop();
    });

    it('runs the workstream through the admin socket, in waves, with the host’s LLM configuration', async () => {
      const shared = join(dir, 'shared.json');
      writeFileSync(shared, JSON.stringify(SHARED_TRANSCRIPT));
      serve = await spawnServe({ env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: shared } });
      const { specs, scripts } = workstream(DIAMOND);
      const out = await toka(['run', specs, '--transcript', scripts, '--data', serve.dataDir, '--json']);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /--transcript is not used: the running toka serve answers with its own LLM provider configuration/);
      const doc = JSON.parse(out.stdout) as RunJson;
      assert.equal(doc.mode, 'remote');
      assert.deepEqual(doc.waves, [['agent-a'], ['agent-b', 'agent-c'], ['agent-d']]);
      assert.deepEqual(
        doc.agents.map((a) => a.status),
        ['completed', 'completed', 'completed', 'completed'],
      );
      for (const a of doc.agents) {
        assert.equal(a.runs[0].text, 'done');
        assert.equal(readFileSync(join(serve.dataDir, 'workspaces', a.agent!, 'out.md'), 'utf8'), 'written');
      }
      // The host did the work: its runtime records the steps with each agent's own token.
      const started = await toka(['events', '--data', serve.dataDir, '--type', 'RunStarted']);
      const records = started.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: { agent: string; by: { sub: string } } });
      assert.equal(records.length, 4);
      for (const r of records) assert.equal(r.event.by.sub, `agent:${r.event.agent}`);
      assert.equal(records[0].event.agent, doc.agents[0].agent);
      assert.equal(records[3].event.agent, doc.agents[3].agent);
    });
  });

  it('SIGINT cancels the runs in flight, skips the agents not started, and exits 1', async () => {
    const { specs, scripts } = workstream(
      [
        ['agent-a', 'critical', []],
        ['agent-b', 'high', ['agent-a']],
      ],
      { 'agent-a': transcript('agent-a', 30_000) },
    );
    const child = spawn(process.execPath, [TOKA_BIN, 'run', specs, '--transcript', scripts, '--data', data], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      await waitFor(() => stdout.includes('agent-a: run started'), 15_000);
      const sent = Date.now();
      child.kill('SIGINT');
      const code = await exited;
      assert.equal(code, 1, stderr);
      assert.ok(Date.now() - sent < 10_000, 'the run stops at once, not after the 30 s delay');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.match(stderr, /SIGINT: cancelling the runs/);
    assert.match(stdout, /^agent-a: cancelled: run .* cancelled: Cancelled: interrupted \(SIGINT\)$/m);
    assert.match(stdout, /^agent-b: skipped: not started: interrupted \(SIGINT\)$/m);
    const cancelled = await events('RunCancelled');
    assert.equal(cancelled.length, 1);
  });
});
