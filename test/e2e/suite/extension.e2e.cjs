// The Toka extension inside a real VS Code (code-server's extension host), against the bundled host it
// starts: activation, language features, commands, views' data, approvals, cancel, restart after a crash.
// The workspace (test/e2e/workspace, copied) sets toka.host.env to the scripted LLM transcript.
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const vscode = require('vscode');

const folder = () => vscode.workspace.workspaceFolders[0].uri.fsPath;

async function until(what, fn, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Pids of the bundled host processes serving this workspace's data dir (Linux /proc). */
function hostPids() {
  const dataDir = path.join(folder(), '.toka');
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a.endsWith('toka.mjs')) && args.includes(dataDir)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

describe('Toka extension in VS Code', function () {
  let api;

  before(async function () {
    const ext = vscode.extensions.getExtension('toka.toka');
    assert.ok(ext, 'the extension is installed');
    api = await ext.activate();
    await until('the host to run', () => api.host.state === 'running');
  });

  it('activates and starts the bundled host as the local owner', async function () {
    assert.equal(vscode.extensions.getExtension('toka.toka').isActive, true);
    assert.equal(api.host.mode, 'bundled');
    assert.equal(api.host.hostInfo.session.principal, 'local-admin');
    assert.equal(hostPids().length, 1, 'one host process for the workspace');
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['toka.grantCapability', 'toka.delegate', 'toka.revoke', 'toka.spawnAgentFromSpec', 'toka.runAgent', 'toka.runWorkstream', 'toka.scheduleTask', 'toka.cancelTask', 'toka.showEventLog', 'toka.verifyLog', 'toka.restartHost', 'toka.connectToHost']) {
      assert.ok(commands.includes(id), `command ${id} is registered`);
    }
  });

  it('shows diagnostics for a broken spec with the right range', async function () {
    const file = path.join(folder(), 'agents', 'broken.yaml');
    const text = fs.readFileSync(path.join(folder(), 'agents', 'reader.yaml'), 'utf8').replace('priority: high\ncapabilities', 'priority: urgent\ncapabilities');
    fs.writeFileSync(file, text);
    const doc = await vscode.workspace.openTextDocument(file);
    await vscode.window.showTextDocument(doc);
    const diagnostics = await until('diagnostics', () => {
      const found = vscode.languages.getDiagnostics(doc.uri).filter((d) => d.code === 'schema/enum');
      return found.length > 0 && found;
    });
    const line = text.split('\n').findIndex((l) => l === '  priority: urgent');
    assert.equal(diagnostics[0].range.start.line, line);
    assert.equal(diagnostics[0].range.start.character, 12);
    assert.equal(diagnostics[0].range.end.character, 18);
    assert.equal(diagnostics[0].severity, vscode.DiagnosticSeverity.Error);
    assert.match(diagnostics[0].message, /urgent/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    fs.rmSync(file);
  });

  it('completes capability names and shows the Run agent CodeLens', async function () {
    const uri = vscode.Uri.file(path.join(folder(), 'agents', 'reader.yaml'));
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const line = doc.getText().split('\n').findIndex((l) => l.includes('capabilities_required'));
    const character = doc.lineAt(line).text.indexOf('filesystem-read') + 3;
    const list = await until('completion items', async () => {
      const result = await vscode.commands.executeCommand('vscode.executeCompletionItemProvider', uri, new vscode.Position(line, character));
      return result.items.some((i) => (i.label.label ?? i.label) === 'git-access') && result;
    });
    const labels = list.items.map((i) => i.label.label ?? i.label);
    for (const name of ['filesystem-read', 'filesystem-write', 'network-access', 'git-access']) assert.ok(labels.includes(name), `offers ${name}`);
    const lenses = await until('code lenses', async () => {
      const found = await vscode.commands.executeCommand('vscode.executeCodeLensProvider', uri);
      return found && found.length > 0 && found;
    });
    assert.equal(lenses[0].command.command, 'toka.runAgentFromSpec');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('grants a capability: the token appears in the Capabilities view', async function () {
    const result = await vscode.commands.executeCommand('toka.grantCapability', { subject: 'e2e-bot', permissions: ['state:read', 'events:read'], ttlSeconds: 600 });
    const { tokens, grants } = api.views.capabilities.snapshot();
    const token = tokens.find((t) => t.jti === result.jti);
    assert.ok(token, 'the minted token is listed');
    assert.equal(token.subject, 'e2e-bot');
    assert.deepEqual(token.permissions, ['state:read', 'events:read']);
    assert.ok(token.exp - Date.now() / 1000 <= 600);
    assert.ok(grants.some((g) => g.id === result.grant && g.subject === 'e2e-bot'), 'the grant is listed');

    await vscode.commands.executeCommand('toka.revoke', { grant: result.grant });
    assert.equal(api.views.capabilities.snapshot().grants.find((g) => g.id === result.grant).revoked, true);
  });

  it('spawns and runs a scripted agent: the Agents view shows it completed', async function () {
    const spawned = await vscode.commands.executeCommand('toka.spawnAgentFromSpec', vscode.Uri.file(path.join(folder(), 'agents', 'reader.yaml')));
    assert.deepEqual(spawned.permissions, ['task:run', 'tool:fs-read']);
    const result = await vscode.commands.executeCommand('toka.runAgent', { agent: spawned.agent, input: 'Report what is in the workspace', wait: true });
    assert.deepEqual(result.states, ['completed']);
    await until('the Agents view to show the completed run', () => {
      const { agents, runs } = api.views.agents.snapshot();
      return agents.some((a) => a.id === spawned.agent && a.name === 'e2e-reader') && (runs[spawned.agent] ?? []).some((r) => r.id === result.tasks[0] && r.state === 'completed');
    });
    assert.ok(api.views.events.snapshot().some((r) => r.event.type === 'RunCompleted'), 'the Events view saw the run complete');
  });

  async function runSheller() {
    const spawned = await vscode.commands.executeCommand('toka.spawnAgentFromSpec', vscode.Uri.file(path.join(folder(), 'agents', 'sheller.yaml')));
    const { tasks } = await vscode.commands.executeCommand('toka.runAgent', { agent: spawned.agent, input: 'List the workspace', wait: false });
    const approval = await until('the Approvals view to show the pending call', () => api.views.approvals.snapshot().find((a) => a.run === tasks[0]));
    assert.equal(approval.call.name, 'shell');
    assert.equal(approval.permission, 'tool:shell');
    return { agent: spawned.agent, task: tasks[0], approval };
  }

  async function finalState(task) {
    return until(`task ${task} to end`, () => {
      const run = Object.values(api.views.agents.snapshot().runs).flat().find((r) => r.id === task);
      return run && ['completed', 'failed', 'canceled'].includes(run.state) && run;
    });
  }

  it('approves a privileged tool call from the Approvals view', async function () {
    const { task, approval } = await runSheller();
    await vscode.commands.executeCommand('toka.approve', approval);
    const run = await finalState(task);
    assert.equal(run.state, 'completed');
    assert.equal(api.views.approvals.snapshot().some((a) => a.id === approval.id), false, 'no longer pending');
    await until('the tool result event', () => api.views.events.snapshot().some((r) => r.event.type === 'ToolResultRecorded' && r.event.run === task && JSON.stringify(r.event).includes('listed')));
  });

  it('denies a privileged tool call: the run goes on without it', async function () {
    const { task, approval } = await runSheller();
    await vscode.commands.executeCommand('toka.deny', approval);
    const run = await finalState(task);
    assert.equal(run.state, 'completed');
    const resolved = api.views.events.snapshot().find((r) => r.event.type === 'ApprovalResolved' && r.event.run === task);
    assert.ok(resolved, 'the decision is in the log');
    assert.equal(resolved.event.decision, 'deny');
    assert.equal(api.views.events.snapshot().some((r) => r.event.type === 'ToolResultRecorded' && r.event.run === task && JSON.stringify(r.event).includes('listed')), false, 'the command never ran');
  });

  it('cancels a running task', async function () {
    const { task } = await runSheller();
    const run = await vscode.commands.executeCommand('toka.cancelTask', { task });
    assert.ok(['canceled', 'working', 'input-required'].includes(run.state));
    assert.equal((await finalState(task)).state, 'canceled');
  });

  it('runs a workstream on the host: waves from its dependencies, an approval on the way, every agent completed', async function () {
    const running = vscode.commands.executeCommand('toka.runWorkstream', { folder: path.join(folder(), 'pipeline', 'agents') });
    // ws-gather (wave 1) asks for the shell; ws-report (wave 2) waits for it.
    const approval = await until('the gatherer to ask for the shell', () => api.views.approvals.snapshot().find((a) => a.call.name === 'shell' && api.views.agents.snapshot().agents.some((g) => g.id === a.agent && g.name === 'ws-gather')));
    assert.equal(api.views.agents.snapshot().agents.some((a) => a.name === 'ws-report'), false, 'the second wave has not started');
    await vscode.commands.executeCommand('toka.approve', approval);
    const result = await running;
    assert.equal(result.ok, true, JSON.stringify(result.agents.map((a) => [a.name, a.status, a.reason])));
    assert.deepEqual(result.waves, [['ws-gather'], ['ws-report']]);
    assert.deepEqual(result.agents.map((a) => [a.name, a.status, a.uri]), [
      ['ws-gather', 'completed', 'pipeline/agents/gather.yaml'],
      ['ws-report', 'completed', 'pipeline/agents/report.yaml'],
    ]);
    await until('the Agents view to show both agents completed', () => {
      const { agents, runs } = api.views.agents.snapshot();
      return result.agents.every((r) => agents.some((a) => a.id === r.agent) && (runs[r.agent] ?? []).some((run) => run.state === 'completed'));
    });
  });

  it('filters the Events view by type and by agent', async function () {
    const events = api.views.events;
    await vscode.commands.executeCommand('toka.showEventLog');
    events.setFilter({ type: 'RunCompleted', agent: '', text: '' });
    const completed = events.snapshot();
    assert.ok(completed.length >= 2 && completed.every((r) => r.event.type === 'RunCompleted'), 'only RunCompleted');
    const reporter = api.views.agents.snapshot().agents.find((a) => a.name === 'ws-report');
    events.setFilter({ type: '', agent: reporter.id });
    const about = events.snapshot();
    assert.ok(about.length > 0 && about.every((r) => r.event.agent === reporter.id), 'only the reporter');
    assert.ok(about.some((r) => r.event.type === 'RunStarted'));
    events.setFilter({ type: '', agent: '', text: '' });
    assert.ok(events.snapshot().length > about.length);
  });

  it('delegates from the owner session: the token is backed by a grant of the vault', async function () {
    assert.equal(api.host.hostInfo.session.principal, 'local-admin');
    const result = await vscode.commands.executeCommand('toka.delegate', { subject: 'e2e-helper', permissions: ['state:read'], ttlSeconds: 300 });
    const held = api.views.capabilities.tokens.find((t) => t.claims.jti === result.jti);
    assert.ok(held, 'the delegated token is remembered in the Capabilities view');
    assert.deepEqual([held.claims.sub, held.claims.permissions], ['e2e-helper', ['state:read']]);
    await api.views.capabilities.refresh();
    const grant = api.views.capabilities.snapshot().grants.find((g) => g.id === held.claims.grant);
    assert.ok(grant, 'its grant is a grant of the vault');
    assert.equal(grant.label, 'delegated by local-admin');
    await vscode.commands.executeCommand('toka.revoke', { jti: result.jti });
  });

  it('restarts the host after it is killed', async function () {
    const [pid] = hostPids();
    assert.ok(pid, 'the host runs');
    process.kill(pid, 'SIGKILL');
    await until('a new host process', () => {
      const pids = hostPids();
      return pids.length === 1 && pids[0] !== pid;
    });
    await until('the connection to run again', () => api.host.state === 'running' && api.host.hostInfo);
    // The restarted host serves requests and kept the log.
    await api.refresh();
    assert.ok(api.views.agents.snapshot().agents.some((a) => a.name === 'e2e-reader'), 'agents survive the restart');
    const result = await vscode.commands.executeCommand('toka.grantCapability', { subject: 'after-restart', permissions: ['state:read'], ttlSeconds: 60 });
    assert.ok(result.grant);
  });

  it('connects to a running host over WebSocket with a token in secret storage, renews it before expiry, and goes back', async function () {
    this.timeout(120000);
    const node = vscode.workspace.getConfiguration('toka').get('host.node');
    const hostScript = path.join(vscode.extensions.getExtension('toka.toka').extensionPath, 'dist', 'toka.mjs');
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'toka-remote-'));
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const remote = spawn(node, [hostScript, 'serve', '--port', String(port), '--data', data], { stdio: 'ignore' });
    try {
      await until('the remote host', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok);
      // 302 s: the renewal (5 minutes before expiry) is due about 2 s after connecting.
      const token = execFileSync(node, [hostScript, 'token', 'mint', '--data', data, '--sub', 'vscode-remote', '--vault', 'default', '--perm', '*', '--ttl', '302s'], { encoding: 'utf8' }).trim();
      await vscode.commands.executeCommand('toka.connectToHost', { url: `ws://127.0.0.1:${port}/rpc`, token });
      await until('the remote connection', () => api.host.mode === 'remote' && api.host.state === 'running' && api.host.hostInfo.session.principal === 'vscode-remote');
      const firstExp = api.host.hostInfo.session.exp;
      assert.ok(!JSON.stringify(vscode.workspace.getConfiguration('toka')).includes(token), 'the token is not in the settings');
      await api.refresh();
      assert.equal(api.views.agents.snapshot().agents.some((a) => a.name === 'e2e-reader'), false, 'the views show the remote host');
      assert.equal(api.views.events.snapshot().some((r) => r.event.type === 'RunCompleted'), false, 'no event of the bundled host is shown');

      await until('the renewed token', () => api.host.state === 'running' && api.host.hostInfo.session.exp > firstExp, 60000);
      assert.ok(api.host.hostInfo.session.exp - Date.now() / 1000 > 1700, 'the new token lives about 30 minutes');
      await api.views.capabilities.refresh();
      assert.ok(api.views.capabilities.snapshot().grants.some((g) => g.subject === 'vscode-remote' && g.label === 'vscode session renewal'));
      const result = await vscode.commands.executeCommand('toka.grantCapability', { subject: 'remote-bot', permissions: ['state:read'], ttlSeconds: 60 });
      assert.ok(result.grant, 'requests work on the renewed connection');
    } finally {
      await vscode.commands.executeCommand('toka.connectToHost', { url: '' });
      remote.kill('SIGTERM');
    }
    await until('the bundled host again', () => api.host.mode === 'bundled' && api.host.state === 'running');
    fs.rmSync(data, { recursive: true, force: true });
  });
});
