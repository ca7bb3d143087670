/**
 * The "Toka:" commands. Each asks what it needs with quick picks and input boxes; called with an argument
 * object (from a keybinding, another extension or the e2e tests) it skips the questions that object answers.
 * Every result is what the host answered: nothing here decides an authorisation.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { WorkDoneProgress, type WorkDoneProgressBegin, type WorkDoneProgressEnd, type WorkDoneProgressReport } from 'vscode-languageclient/node';
import { CancellationTokenSource, type CancellationToken } from 'vscode-jsonrpc';
import { MAX_TOKEN_LIFETIME_S, PERMISSIONS, permits } from '../../protocol/capability.js';
import type { TaskPriority } from '../../protocol/kernel.js';
import {
  AgentRunRequest,
  AgentSpawnRequest,
  AgentTerminateRequest,
  ApprovalResolveRequest,
  CapabilityDelegateRequest,
  CapabilityMintRequest,
  CapabilityRevokeRequest,
  KernelSubmitRequest,
  LogVerifyRequest,
  TaskCancelRequest,
  TaskGetRequest,
  WorkstreamPlanRequest,
  WorkstreamRunRequest,
  type AgentSpawnResult,
  type MintResult,
  type WorkstreamRunResult,
  type WorkstreamSpec,
} from '../../protocol/rpc/index.js';
import type { ApprovalRecord, RunRecord } from '../../protocol/runtime.js';
import type { HostConnection } from './connection.js';
import { TOKEN_SECRET } from './token.js';
import { isLive, type AgentNode, type AgentsView, type ApprovalsView, type CapabilitiesView, type CapabilityNode, type EventsView } from './views.js';

export interface Views {
  agents: AgentsView;
  capabilities: CapabilitiesView;
  approvals: ApprovalsView;
  events: EventsView;
}

/** How often a run being watched is re-read when no event arrives. */
const RUN_POLL_MS = 1000;

export function registerCommands(context: vscode.ExtensionContext, host: HostConnection, views: Views, refresh: () => Promise<void>): void {
  const register = (id: string, fn: (...args: never[]) => Promise<unknown>) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          if (err instanceof Cancelled) return undefined;
          void vscode.window.showErrorMessage(`Toka: ${(err as Error).message}`);
          // A caller that passed arguments (another extension, a test, a view item) sees the failure too;
          // from the palette the message above is enough (VS Code would show a second, modal one).
          if (args.length > 0) throw err;
          return undefined;
        }
      }),
    );

  register('toka.grantCapability', async (args?: { subject?: string; permissions?: string[]; ttlSeconds?: number; label?: string }) => {
    const subject = args?.subject ?? (await ask({ title: 'Grant Capability: subject', prompt: 'Who the grant is for (a principal name)', validateInput: nonEmpty }));
    const vault = host.hostInfo?.session.vault ?? 'default';
    const permissions =
      args?.permissions ??
      (
        await pickMany(
          Object.entries(PERMISSIONS).map(([label, detail]) => ({ label, detail })),
          { title: `Grant Capability: permissions for ${subject} in vault ${vault}` },
        )
      ).map((p) => p.label);
    if (permissions.length === 0) throw new Error('choose at least one permission');
    const ttlSeconds =
      args?.ttlSeconds ??
      Number(
        await ask({
          title: 'Grant Capability: token lifetime (seconds)',
          value: '900',
          validateInput: (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= MAX_TOKEN_LIFETIME_S ? undefined : `an integer 1..${MAX_TOKEN_LIFETIME_S} (30 minutes at most)`),
        }),
      );
    const minted: MintResult = await host.request(CapabilityMintRequest, { subject, permissions, ttlSeconds, label: args?.label });
    views.capabilities.remember({ token: minted.token, claims: minted.claims, grant: minted.grant });
    await views.capabilities.refresh();
    if (!args) {
      const copy = await vscode.window.showInformationMessage(`Toka: granted ${permissions.join(', ')} to ${subject} (grant ${minted.grant}).`, 'Copy Token');
      if (copy) await vscode.env.clipboard.writeText(minted.token);
    }
    return { grant: minted.grant, jti: minted.claims.jti, exp: minted.claims.exp };
  });

  register('toka.delegate', async (args?: { subject?: string; permissions?: string[]; ttlSeconds?: number }) => {
    const held = host.hostInfo?.session.permissions ?? [];
    const subject = args?.subject ?? (await ask({ title: 'Delegate: subject of the child token', validateInput: nonEmpty }));
    // Every permission of the vocabulary this session holds, its wildcards (`*`, `task:*`) spelled out.
    const offered = Object.entries(PERMISSIONS)
      .filter(([permission]) => permits(held, permission))
      .map(([label, detail]) => ({ label, detail }));
    const permissions = args?.permissions ?? (await pickMany(offered, { title: 'Delegate: permissions (a subset of this session’s)' })).map((p) => p.label);
    if (permissions.length === 0) throw new Error('choose at least one permission');
    const ttlSeconds = args?.ttlSeconds ?? 900;
    const child = await host.request(CapabilityDelegateRequest, { subject, permissions, ttlSeconds });
    views.capabilities.remember({ token: child.token, claims: child.claims });
    if (!args) void vscode.window.showInformationMessage(`Toka: delegated ${permissions.join(', ')} to ${subject}.`);
    return { jti: child.claims.jti, exp: child.claims.exp };
  });

  register('toka.revoke', async (target?: CapabilityNode | { grant?: string; jti?: string }) => {
    let params: { grant?: string; jti?: string };
    if (target && 'kind' in target) params = target.kind === 'grant' ? { grant: target.grant.id } : { jti: target.held.claims.jti };
    else if (target) params = target;
    else {
      await views.capabilities.refresh();
      const { grants, tokens } = views.capabilities.snapshot();
      const picked = await pickOne(
        [
          ...tokens.map((t) => ({ label: `token for ${t.subject}`, description: t.permissions.join(', '), value: { jti: t.jti } })),
          ...grants.filter((g) => !g.revoked).map((g) => ({ label: `grant for ${g.subject}`, description: g.permissions.join(', '), detail: g.id, value: { grant: g.id } })),
        ],
        { title: 'Revoke: which grant or token' },
      );
      params = picked.value;
    }
    const result = await host.request(CapabilityRevokeRequest, { ...params, reason: 'revoked from VS Code' });
    await views.capabilities.refresh();
    return result;
  });

  register('toka.copyToken', async (node?: CapabilityNode) => {
    const held = node?.kind === 'token' ? node.held : views.capabilities.tokens[0];
    if (!held) throw new Error('no token minted in this window');
    await vscode.env.clipboard.writeText(held.token);
    void vscode.window.showInformationMessage('Toka: token copied to the clipboard.');
  });

  const spawnFromSpec = async (uri?: vscode.Uri | string): Promise<AgentSpawnResult> => {
    const target = typeof uri === 'string' ? vscode.Uri.parse(uri) : uri ?? vscode.window.activeTextEditor?.document.uri ?? (await pickSpecFile());
    const doc = await vscode.workspace.openTextDocument(target);
    const spawned = await host.request(AgentSpawnRequest, { spec: doc.getText(), uri: path.basename(target.fsPath || target.path) });
    if (spawned.withheld.length > 0) void vscode.window.showWarningMessage(`Toka: spawned without ${spawned.withheld.join(', ')} (this session does not hold them).`);
    await refresh();
    return spawned;
  };

  register('toka.spawnAgentFromSpec', async (uri?: vscode.Uri | string) => spawnFromSpec(uri));

  const runAgent = async (agent: string, input: string | undefined, wait: boolean) => {
    const { tasks } = await host.request(AgentRunRequest, { agent, input });
    if (tasks.length === 0) throw new Error('the agent has no queued task: give the task text');
    await refresh();
    const name = views.agents.snapshot().agents.find((a) => a.id === agent)?.name ?? agent;
    const watch = watchRuns(host, tasks, `Running ${name}`, refresh);
    if (!wait) {
      watch.catch((err) => host.log.appendLine(`[toka] watching ${tasks.join(', ')}: ${(err as Error).message}`));
      return { tasks };
    }
    const runs = await watch;
    return { tasks, states: runs.map((r) => r.state) };
  };

  register('toka.runAgent', async (target?: AgentNode | { agent: string; input?: string; wait?: boolean }) => {
    let agent: string;
    let input: string | undefined;
    if (target && 'kind' in target && target.kind === 'agent') agent = target.agent.id;
    else if (target && 'agent' in target && typeof target.agent === 'string') {
      agent = target.agent;
      input = (target as { input?: string }).input;
      return runAgent(agent, input, (target as { wait?: boolean }).wait ?? true);
    } else agent = await pickAgent(views);
    input = (await ask({ title: 'Run Agent: task text (empty runs its queued tasks)', value: '' })) || undefined;
    return runAgent(agent, input, false);
  });

  register('toka.runAgentFromSpec', async (uri?: vscode.Uri | string, options?: { input?: string; wait?: boolean }) => {
    const spawned = await spawnFromSpec(uri);
    return runAgent(spawned.agent, options?.input, options?.wait ?? false);
  });

  register('toka.runWorkstream', async (args?: { folder?: vscode.Uri | string; input?: string; concurrency?: number }) => {
    const folder = typeof args?.folder === 'string' ? vscode.Uri.file(args.folder) : args?.folder ?? (await pickWorkstreamFolder());
    const input = args ? args.input : (await ask({ title: 'Run Workstream: task text for every agent (empty runs their default tasks)', value: '' })) || undefined;
    const specs = await readWorkstream(folder);
    const plan = await host.request(WorkstreamPlanRequest, { specs });
    if (!plan.ok) {
      const errors = plan.diagnostics.filter((d) => d.severity === 'error');
      throw new Error(`the workstream does not plan: ${errors.length} error(s), first: ${errors[0].file}:${errors[0].line}: ${errors[0].message}`);
    }
    const name = vscode.workspace.asRelativePath(folder);
    const result = await runWorkstream(host, { specs, input, concurrency: args?.concurrency }, `Running workstream ${name} (${plan.waves.length} wave${plan.waves.length === 1 ? '' : 's'})`);
    await refresh();
    const counts = new Map<string, number>();
    for (const a of result.agents) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
    const summary = [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
    if (!args) {
      const problems = result.agents.filter((a) => a.reason).map((a) => `${a.name}: ${a.reason}`);
      const text = `Toka: workstream ${name}: ${summary}.${problems.length ? ` ${problems.join('; ')}` : ''}`;
      void (result.ok ? vscode.window.showInformationMessage(text) : vscode.window.showWarningMessage(text));
    }
    return result;
  });

  register('toka.scheduleTask', async (target?: AgentNode | { agent: string; description: string; priority?: TaskPriority }) => {
    let agent: string;
    let description: string;
    let priority: TaskPriority | undefined;
    if (target && 'description' in target) ({ agent, description, priority } = target);
    else {
      agent = target && 'kind' in target && target.kind === 'agent' ? target.agent.id : await pickAgent(views);
      description = await ask({ title: 'Schedule Task: what to do', validateInput: nonEmpty });
      priority = (await pickOne((['critical', 'high', 'medium', 'low'] as const).map((p) => ({ label: p, value: p })), { title: 'Schedule Task: priority' })).value;
    }
    const result = await host.request(KernelSubmitRequest, { op: { type: 'ScheduleAgentTask', agent, task: { description, priority } } });
    await refresh();
    return result;
  });

  register('toka.cancelTask', async (target?: AgentNode | { task: string }) => {
    if (target && 'kind' in target && target.kind === 'queued') {
      await host.request(KernelSubmitRequest, { op: { type: 'CancelTask', agent: target.agent, task: target.task.id, reason: 'cancelled from VS Code' } });
      await refresh();
      return undefined;
    }
    const task =
      target && 'kind' in target && target.kind === 'run'
        ? target.run.id
        : target && 'task' in target
          ? target.task
          : (await pickOne(
              Object.values(views.agents.snapshot().runs).flat().filter(isLive).map((r) => ({ label: r.input.slice(0, 80), description: `${r.agent} · ${r.state}`, value: r.id })),
              { title: 'Cancel Task: which running task' },
            )).value;
    const run = await host.request(TaskCancelRequest, { task, reason: 'cancelled from VS Code' });
    await refresh();
    return run;
  });

  register('toka.terminateAgent', async (target?: AgentNode | { agent: string }) => {
    const agent = target && 'kind' in target && target.kind === 'agent' ? target.agent.id : target && 'agent' in target && typeof target.agent === 'string' ? target.agent : await pickAgent(views);
    await host.request(AgentTerminateRequest, { agent, reason: 'terminated from VS Code' });
    await refresh();
  });

  const resolve = async (decision: 'approve' | 'deny', approval?: ApprovalRecord | { task: string; approval: string }) => {
    const chosen =
      approval ??
      (await pickOne(views.approvals.snapshot().map((a) => ({ label: `${a.call.name} (${a.permission})`, description: a.agent, value: a })), { title: `${decision === 'approve' ? 'Approve' : 'Deny'}: which tool call` })).value;
    const params = 'call' in chosen ? { task: chosen.run, approval: chosen.id } : chosen;
    const run = await host.request(ApprovalResolveRequest, { ...params, decision });
    await refresh();
    return run;
  };
  register('toka.approve', async (approval?: ApprovalRecord | { task: string; approval: string }) => resolve('approve', approval));
  register('toka.deny', async (approval?: ApprovalRecord | { task: string; approval: string }) => resolve('deny', approval));

  register('toka.showEventLog', async (filter?: string) => {
    if (typeof filter === 'string') views.events.setFilter({ text: filter });
    await vscode.commands.executeCommand('toka.events.focus');
  });

  register('toka.filterEvents', async () => {
    const text = await ask({ title: 'Filter events: text in the event (type, agent id, ...); empty shows all', value: views.events.filter.text });
    views.events.setFilter({ text });
  });

  register('toka.showAgentEvents', async (node?: AgentNode) => {
    if (node?.kind !== 'agent') throw new Error('choose an agent in the Agents view');
    views.events.setFilter({ type: '', agent: node.agent.id, text: '' });
    await vscode.commands.executeCommand('toka.events.focus');
  });

  register('toka.verifyLog', () =>
    withHostProgress(host, 'verifying the event log', async (workDoneToken, cancel) => {
      const result = await host.request(LogVerifyRequest, { workDoneToken }, cancel);
      const text = result.ok ? `the log is intact (${result.checked} records, replay matches)` : `the log FAILED verification: ${result.firstBad ? JSON.stringify(result.firstBad) : 'the replayed state differs from the live state'}`;
      void (result.ok ? vscode.window.showInformationMessage(`Toka: ${text}`) : vscode.window.showErrorMessage(`Toka: ${text}`));
      return result;
    }),
  );

  register('toka.restartHost', async () => {
    await host.restart();
  });

  register('toka.connectToHost', async (args?: { url?: string; token?: string }) => {
    const config = vscode.workspace.getConfiguration('toka');
    const url =
      args?.url ??
      (await ask({
        title: 'Connect to Host: WebSocket URL of a running host (empty: start the bundled host)',
        value: config.get<string>('server.url', '') || 'ws://127.0.0.1:7420/rpc',
        validateInput: (v) => (v === '' || /^wss?:\/\//.test(v) ? undefined : 'a ws:// or wss:// URL'),
      }));
    if (url !== '') {
      const token = args?.token ?? (await ask({ title: 'Connect to Host: capability token (kept in VS Code’s secret storage)', password: true, validateInput: nonEmpty }));
      await context.secrets.store(TOKEN_SECRET, token);
    }
    // A changed URL restarts the connection through the configuration listener; the same URL with a new token does not.
    if (url !== config.get<string>('server.url', '')) {
      await config.update('server.url', url, vscode.ConfigurationTarget.Workspace);
      await host.settled();
    } else await host.restart();
  });

  register('toka.showLog', async () => host.log.show(true));

  register('toka.statusMenu', async () => {
    const choice = await pickOne(
      [
        { label: '$(debug-restart) Restart Host', value: 'toka.restartHost' },
        { label: '$(plug) Connect to Host…', value: 'toka.connectToHost' },
        { label: '$(output) Show Host Log', value: 'toka.showLog' },
      ],
      { title: `Toka: ${host.mode} host, ${host.state}` },
    );
    await vscode.commands.executeCommand(choice.value);
  });

  register('toka.refresh', async () => refresh());
}

/**
 * A cancellable progress notification while `tasks` run: resolves with their final records. Cancel sends
 * `toka/tasks/cancel` for each one still live and waits for the host to end them.
 */
export function watchRuns(host: HostConnection, tasks: string[], title: string, refresh: () => Promise<void>): Promise<RunRecord[]> {
  return Promise.resolve(
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Toka: ${title}`, cancellable: true }, async (progress, cancel) => {
      let cancelled = false;
      cancel.onCancellationRequested(() => {
        cancelled = true;
        for (const task of tasks) void host.request(TaskCancelRequest, { task, reason: 'cancelled from VS Code' }).catch(() => undefined);
      });
      for (;;) {
        if (host.state !== 'running') {
          // The host is restarting: the runs are in its log; read them again once it is back.
          progress.report({ message: `host ${host.state}` });
          await new Promise((r) => setTimeout(r, RUN_POLL_MS));
          continue;
        }
        const runs = await Promise.all(tasks.map((task) => host.request(TaskGetRequest, { task })));
        const live = runs.filter(isLive);
        progress.report({ message: runs.map((r) => r.state).join(', ') });
        if (live.length === 0) {
          await refresh();
          const failed = runs.filter((r) => r.state !== 'completed');
          if (failed.length > 0 && !cancelled) void vscode.window.showWarningMessage(`Toka: ${failed.map((r) => `${r.id} ${r.state}${r.reason ? `: ${r.reason.message}` : ''}`).join('; ')}`);
          return runs;
        }
        await new Promise((r) => setTimeout(r, RUN_POLL_MS));
      }
    }),
  );
}

/**
 * Run a workstream on the host under a cancellable progress notification: the host reports work-done
 * progress (waves, agents, steps); Cancel sends `$/cancelRequest`, which cancels the runs in flight and skips
 * the agents not started, and the host answers with the report.
 */
function runWorkstream(host: HostConnection, params: { specs: WorkstreamSpec[]; input?: string; concurrency?: number }, title: string): Promise<WorkstreamRunResult> {
  return withHostProgress(host, title, (workDoneToken, cancel) => host.request(WorkstreamRunRequest, { ...params, workDoneToken }, cancel));
}

/**
 * Send a host request that reports work-done progress, under a cancellable progress notification titled
 * `Toka: <title>`: the host's reports move the notification, and its Cancel cancels the request.
 */
function withHostProgress<T>(host: HostConnection, title: string, send: (workDoneToken: string, cancel: CancellationToken) => Promise<T>): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Toka: ${title}`, cancellable: true }, async (progress, cancel) => {
      const source = new CancellationTokenSource();
      const cancelling = cancel.onCancellationRequested(() => source.cancel());
      const workDoneToken = `progress-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      let last = 0;
      const listening = host.onProgress(WorkDoneProgress.type, workDoneToken, (value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
        if (value.kind === 'end') return;
        const percentage = value.percentage ?? last;
        progress.report({ message: value.kind === 'report' ? value.message : undefined, increment: percentage - last });
        last = percentage;
      });
      try {
        return await send(workDoneToken, source.token);
      } finally {
        listening.dispose();
        cancelling.dispose();
        source.dispose();
      }
    }),
  );
}

/** Most spec files read from one workstream folder (the host's own bound). */
const MAX_WORKSTREAM_FILES = 500;

/** The spec files directly in `folder` (`*.yaml`, `*.yml`, `*.json`, sorted by name), as the host plans a folder. */
async function readWorkstream(folder: vscode.Uri): Promise<WorkstreamSpec[]> {
  const entries = (await vscode.workspace.fs.readDirectory(folder))
    .filter(([name, type]) => type === vscode.FileType.File && /\.(ya?ml|json)$/i.test(name))
    .map(([name]) => name)
    .sort();
  if (entries.length === 0) throw new Error(`no spec files (*.yaml, *.yml, *.json) in ${vscode.workspace.asRelativePath(folder)}`);
  if (entries.length > MAX_WORKSTREAM_FILES) throw new Error(`${entries.length} spec files in the folder; a workstream may hold at most ${MAX_WORKSTREAM_FILES}`);
  return Promise.all(
    entries.map(async (name) => {
      const uri = vscode.Uri.joinPath(folder, name);
      return { uri: vscode.workspace.asRelativePath(uri), text: new TextDecoder().decode(await vscode.workspace.fs.readFile(uri)) };
    }),
  );
}

/** A folder holding agent specs: the folders of the workspace's spec files. */
async function pickWorkstreamFolder(): Promise<vscode.Uri> {
  const found = await Promise.all(['**/*.agent.{yaml,yml,json}', '**/agents/*.{yaml,yml,json}'].map((glob) => vscode.workspace.findFiles(glob, '**/node_modules/**', 500)));
  const folders = [...new Map(found.flat().map((uri) => { const dir = vscode.Uri.joinPath(uri, '..'); return [dir.toString(), dir] as const; })).values()];
  const picked = await pickOne(
    folders.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), value: uri })).sort((a, b) => a.label.localeCompare(b.label)),
    { title: 'Run Workstream: which folder of agent specs' },
  );
  return picked.value;
}

class Cancelled extends Error {}

function nonEmpty(v: string): string | undefined {
  return v.trim() === '' ? 'required' : undefined;
}

async function ask(options: vscode.InputBoxOptions): Promise<string> {
  const value = await vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
  if (value === undefined) throw new Cancelled();
  return value.trim();
}

async function pickOne<T extends vscode.QuickPickItem>(items: T[], options: vscode.QuickPickOptions): Promise<T> {
  if (items.length === 0) throw new Error(`nothing to choose (${options.title})`);
  const picked = await vscode.window.showQuickPick(items, { ignoreFocusOut: true, ...options });
  if (!picked) throw new Cancelled();
  return picked;
}

async function pickMany<T extends vscode.QuickPickItem>(items: T[], options: vscode.QuickPickOptions): Promise<T[]> {
  const picked = await vscode.window.showQuickPick(items, { ignoreFocusOut: true, ...options, canPickMany: true });
  if (!picked) throw new Cancelled();
  return picked;
}

async function pickAgent(views: Views): Promise<string> {
  await views.agents.refresh();
  const agents = views.agents.snapshot().agents.filter((a) => a.parent !== null && a.status !== 'stopped');
  return (await pickOne(agents.map((a) => ({ label: a.name, description: `${a.status} · ${a.id}`, value: a.id })), { title: 'Which agent' })).value;
}

async function pickSpecFile(): Promise<vscode.Uri> {
  const found = await Promise.all(['**/*.agent.{yaml,yml,json}', '**/agents/*.{yaml,yml,json}'].map((glob) => vscode.workspace.findFiles(glob, '**/node_modules/**', 500)));
  const files = [...new Map(found.flat().map((uri) => [uri.toString(), uri])).values()];
  const picked = await pickOne(files.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), value: uri })), { title: 'Spawn Agent from Spec: which spec' });
  return picked.value;
}
