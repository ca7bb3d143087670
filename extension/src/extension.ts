/**
 * The Toka extension: connects to a host (the bundled one over stdio, or a running one over WebSocket),
 * shows its agents, capabilities, approvals and events, and offers the "Toka:" commands. A client of
 * protocol/ only: every request and notification is bound by the protocol's `type` objects.
 */
import * as vscode from 'vscode';
import { EventsEndedNotification, EventsEventNotification, EventsQueryRequest, EventsSubscribeRequest } from '../../protocol/rpc/index.js';
import type { LogRecord } from '../../protocol/events.js';
import { registerCommands, type Views } from './commands.js';
import { HostConnection, type ConnectionState } from './connection.js';
import { AgentsView, ApprovalsView, CapabilitiesView, EventsView, MAX_EVENTS, isLive } from './views.js';

/** What `activate` returns: the connection and the views' data (used by the e2e tests and other extensions). */
export interface TokaApi {
  host: HostConnection;
  views: Views;
  /** Re-read every view from the host now. */
  refresh(): Promise<void>;
}

let active: HostConnection | undefined;

/** Delay coalescing view refreshes after a burst of events. */
const REFRESH_DEBOUNCE_MS = 150;

export async function activate(context: vscode.ExtensionContext): Promise<TokaApi> {
  const log = vscode.window.createOutputChannel('Toka Host', { log: true });
  const host = new HostConnection(context, log);
  active = host;
  const views: Views = {
    agents: new AgentsView(host),
    capabilities: new CapabilitiesView(host),
    approvals: new ApprovalsView(host),
    events: new EventsView(context.extensionUri),
  };
  context.subscriptions.push(
    log,
    host,
    views.capabilities,
    vscode.window.registerTreeDataProvider('toka.agents', views.agents),
    vscode.window.registerTreeDataProvider('toka.capabilities', views.capabilities),
    vscode.window.registerTreeDataProvider('toka.approvals', views.approvals),
    vscode.window.registerWebviewViewProvider('toka.events', views.events),
  );

  const refresh = async () => {
    if (host.state !== 'running') return;
    // Agents first: a new approval's notification names its agent.
    const results = await Promise.allSettled([views.agents.refresh(), views.capabilities.refresh()]);
    results.push(...(await Promise.allSettled([refreshApprovals()])));
    for (const r of results) if (r.status === 'rejected') log.appendLine(`[toka] refresh: ${(r.reason as Error).message}`);
    views.events.setAgentNames(views.agents.snapshot().agents);
    updateStatus();
  };

  const agentName = (id: string) => views.agents.snapshot().agents.find((a) => a.id === id)?.name ?? id;

  /** Re-read approvals and offer each new one as a notification with Approve / Deny. */
  const refreshApprovals = async () => {
    const fresh = await views.approvals.refresh();
    for (const approval of fresh) {
      void vscode.window
        .showWarningMessage(`Toka: agent ${agentName(approval.agent)} asks to call ${approval.call.name} (${approval.permission}).`, 'Approve', 'Deny')
        .then((choice) => {
          if (choice) void vscode.commands.executeCommand(choice === 'Approve' ? 'toka.approve' : 'toka.deny', approval);
        });
    }
  };

  let pending: NodeJS.Timeout | undefined;
  const scheduleRefresh = () => {
    if (pending) clearTimeout(pending);
    pending = setTimeout(() => void refresh(), REFRESH_DEBOUNCE_MS);
  };

  // Events: the live log feeds the Events view and triggers refreshes of the others.
  let subscription: string | undefined;
  const subscribe = async () => {
    const afterSeq = Math.max(0, views.events.lastSeq);
    if (afterSeq === 0) {
      // Fill the view with the most recent records first (bounded by the view's size).
      const head = host.hostInfo?.seq ?? 0;
      const { records } = await host.request(EventsQueryRequest, { afterSeq: Math.max(0, head - MAX_EVENTS), limit: 1000 });
      views.events.add(records);
    }
    subscription = (await host.request(EventsSubscribeRequest, { afterSeq: views.events.lastSeq })).subscription;
  };
  context.subscriptions.push(
    host.onNotification(EventsEventNotification.type, ({ subscription: id, record }: { subscription: string; record: LogRecord }) => {
      if (id !== subscription) return;
      views.events.add([record]);
      scheduleRefresh();
    }),
    host.onNotification(EventsEndedNotification.type, ({ subscription: id, reason }) => {
      if (id !== subscription) return;
      log.appendLine(`[toka] event subscription ended: ${reason}`);
      subscription = undefined;
      if (reason === 'overflow') void subscribe().catch((err) => log.appendLine(`[toka] resubscribe: ${(err as Error).message}`));
    }),
  );

  /** The host the views show data of. */
  let shownTarget = '';

  // Status bar: connection state and what is running; click for reconnect / restart / log.
  const status = vscode.window.createStatusBarItem('toka.status', vscode.StatusBarAlignment.Left, 10);
  status.name = 'Toka';
  status.command = 'toka.statusMenu';
  context.subscriptions.push(status);
  const updateStatus = () => {
    const state: ConnectionState = host.state;
    const { agents, runs } = views.agents.snapshot();
    const running = Object.values(runs).flat().filter(isLive).length;
    const icons: Record<ConnectionState, string> = { running: '$(hubot)', starting: '$(sync~spin)', stopped: '$(circle-slash)', failed: '$(error)' };
    status.text = state === 'running' ? `${icons[state]} Toka ${agents.filter((a) => a.parent !== null).length} agents · ${running} running` : `${icons[state]} Toka ${state}`;
    status.tooltip = `Toka (${host.mode} host): ${state}${host.lastError ? `\n${host.lastError}` : ''}\nClick for reconnect, restart, log.`;
    status.backgroundColor = state === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    status.show();
  };
  updateStatus();

  context.subscriptions.push(
    host.onDidChangeState((state) => {
      updateStatus();
      void vscode.commands.executeCommand('setContext', 'toka.connected', state === 'running');
      if (state !== 'running') {
        subscription = undefined;
        views.approvals.clear();
      }
    }),
    host.onDidBecomeReady(() => {
      if (host.target !== shownTarget) {
        // Another host: nothing shown so far belongs to it (and its log has its own sequence numbers).
        shownTarget = host.target;
        for (const view of [views.agents, views.capabilities, views.approvals, views.events]) view.clear();
      }
      void (async () => {
        try {
          await subscribe();
        } catch (err) {
          log.appendLine(`[toka] subscribe: ${(err as Error).message}`);
        }
        await refresh();
      })();
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('toka.server.url') || e.affectsConfiguration('toka.host')) void host.restart().catch((err) => vscode.window.showErrorMessage(`Toka: could not connect to the host: ${(err as Error).message}`));
    }),
    { dispose: () => pending && clearTimeout(pending) },
  );

  registerCommands(context, host, views, refresh);

  try {
    await host.start();
  } catch (err) {
    void vscode.window.showErrorMessage(`Toka: could not connect to the host: ${(err as Error).message}`, 'Show Log').then((c) => c && log.show());
  }
  return { host, views, refresh };
}

/** Stop the host in order (shutdown, exit) before VS Code goes on. */
export function deactivate(): Promise<void> | undefined {
  return active?.stop();
}
