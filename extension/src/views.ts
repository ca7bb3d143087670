/**
 * The four views of the "Toka" container. Each holds the data it last read from the host (`snapshot()`,
 * also what the e2e tests inspect) and re-reads it when the event log says something changed.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { LogRecord } from '../../protocol/events.js';
import type { GrantRecord, TaskRecord } from '../../protocol/kernel.js';
import { TERMINAL_RUN_STATES, type ApprovalRecord, type RunRecord } from '../../protocol/runtime.js';
import type { CapabilityClaims } from '../../protocol/capability.js';
import {
  ApprovalListRequest,
  CapabilityListRequest,
  StateGetRequest,
  TaskListRequest,
  type AgentView,
} from '../../protocol/rpc/index.js';
import type { TokaRpc } from './connection.js';

/** Most agents read into the Agents view (pages of 500). */
const MAX_AGENTS = 2000;
/** Events kept in the Events view. */
export const MAX_EVENTS = 500;
/** Runs read per agent. */
const RUNS_PER_AGENT = 50;

const RUN_ICONS: Record<RunRecord['state'], [string, string?]> = {
  submitted: ['clock'],
  working: ['sync~spin', 'charts.blue'],
  'input-required': ['question', 'charts.yellow'],
  completed: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
  canceled: ['circle-slash'],
  rejected: ['circle-slash', 'testing.iconFailed'],
};

function icon(id: string, color?: string): vscode.ThemeIcon {
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

export function isLive(run: RunRecord): boolean {
  return !TERMINAL_RUN_STATES.includes(run.state);
}

// ---- Agents ---------------------------------------------------------------------------------------------

export type AgentNode =
  | { kind: 'agent'; agent: AgentView }
  | { kind: 'run'; run: RunRecord }
  | { kind: 'queued'; agent: string; task: TaskRecord };

export class AgentsView implements vscode.TreeDataProvider<AgentNode> {
  private readonly changed = new vscode.EventEmitter<AgentNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private agents: AgentView[] = [];
  private runs = new Map<string, RunRecord[]>();

  constructor(private readonly rpc: TokaRpc) {}

  snapshot(): { agents: AgentView[]; runs: Record<string, RunRecord[]> } {
    return { agents: this.agents, runs: Object.fromEntries(this.runs) };
  }

  clear(): void {
    this.agents = [];
    this.runs.clear();
    this.changed.fire(undefined);
  }

  async refresh(): Promise<void> {
    const agents: AgentView[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.rpc.request(StateGetRequest, { includeTasks: true, limit: 500, cursor });
      agents.push(...page.agents);
      cursor = page.nextCursor;
    } while (cursor && agents.length < MAX_AGENTS);
    const runs = new Map<string, RunRecord[]>();
    const { tasks } = await this.rpc.request(TaskListRequest, { limit: 1000 });
    for (const run of tasks) {
      const list = runs.get(run.agent) ?? [];
      if (list.length < RUNS_PER_AGENT) list.push(run);
      runs.set(run.agent, list);
    }
    this.agents = agents;
    this.runs = runs;
    this.changed.fire(undefined);
  }

  getTreeItem(node: AgentNode): vscode.TreeItem {
    if (node.kind === 'agent') {
      const { agent } = node;
      const runs = this.runs.get(agent.id) ?? [];
      const live = runs.filter(isLive).length;
      const hasChildren = runs.length > 0 || (agent.tasks?.length ?? 0) > 0 || this.agents.some((a) => a.parent === agent.id);
      const item = new vscode.TreeItem(agent.name, hasChildren ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
      item.id = `agent:${agent.id}`;
      item.description = [agent.status, live ? `${live} running` : '', agent.queuedTasks ? `${agent.queuedTasks} queued` : ''].filter(Boolean).join(' · ');
      item.tooltip = `${agent.id}\nstatus ${agent.status}\ncreated ${new Date(agent.createdAt).toLocaleString()}`;
      item.iconPath = agent.status === 'stopped' ? icon('debug-stop') : live ? icon('run-all', 'charts.blue') : icon('hubot');
      item.contextValue = agent.parent === null ? 'toka.rootAgent' : agent.status === 'stopped' ? 'toka.stoppedAgent' : 'toka.agent';
      return item;
    }
    if (node.kind === 'run') {
      const { run } = node;
      const item = new vscode.TreeItem(firstLine(run.input), vscode.TreeItemCollapsibleState.None);
      item.id = `run:${run.id}`;
      item.description = run.state + (run.reason ? ` (${run.reason.code})` : '');
      item.tooltip = [run.id, `state ${run.state}`, `turns ${run.turns}, tool calls ${run.toolCalls}`, run.text ? `\n${run.text}` : '', run.reason ? `\n${run.reason.message}` : ''].join('\n');
      const [name, color] = RUN_ICONS[run.state];
      item.iconPath = icon(name, color);
      item.contextValue = isLive(run) ? 'toka.liveRun' : 'toka.endedRun';
      return item;
    }
    const item = new vscode.TreeItem(firstLine(node.task.description), vscode.TreeItemCollapsibleState.None);
    item.id = `task:${node.task.id}`;
    item.description = `queued · ${node.task.priority}`;
    item.iconPath = icon('list-unordered');
    item.contextValue = 'toka.queuedTask';
    return item;
  }

  getChildren(node?: AgentNode): AgentNode[] {
    if (!node) {
      const ids = new Set(this.agents.map((a) => a.id));
      return this.agents.filter((a) => a.parent === null || !ids.has(a.parent)).map((agent) => ({ kind: 'agent', agent }));
    }
    if (node.kind !== 'agent') return [];
    const children: AgentNode[] = this.agents.filter((a) => a.parent === node.agent.id).map((agent) => ({ kind: 'agent', agent }));
    for (const run of this.runs.get(node.agent.id) ?? []) children.push({ kind: 'run', run });
    for (const task of node.agent.tasks ?? []) children.push({ kind: 'queued', agent: node.agent.id, task });
    return children;
  }
}

// ---- Capabilities ---------------------------------------------------------------------------------------

/** A token minted or delegated from this window (the host never shows a token twice). */
export interface HeldToken {
  token: string;
  claims: CapabilityClaims;
  grant?: string;
}

export type CapabilityNode = { kind: 'grant'; grant: GrantRecord } | { kind: 'token'; held: HeldToken };

export class CapabilitiesView implements vscode.TreeDataProvider<CapabilityNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<CapabilityNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private grants: GrantRecord[] = [];
  readonly tokens: HeldToken[] = [];
  /** Ticks the expiry countdowns while a token lives. */
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly rpc: TokaRpc) {
    this.ticker = setInterval(() => {
      const now = Date.now() / 1000;
      if (this.tokens.some((t) => t.claims.exp > now - 60)) this.changed.fire(undefined);
    }, 1000);
  }

  snapshot(): { grants: GrantRecord[]; tokens: { jti: string; subject: string; permissions: string[]; exp: number; grant?: string }[] } {
    return {
      grants: this.grants,
      tokens: this.tokens.map((t) => ({ jti: t.claims.jti, subject: t.claims.sub, permissions: t.claims.permissions, exp: t.claims.exp, grant: t.grant })),
    };
  }

  remember(held: HeldToken): void {
    this.tokens.unshift(held);
    this.tokens.splice(100);
    this.changed.fire(undefined);
  }

  /** Forget everything (another host): its grants and the tokens minted on it. */
  clear(): void {
    this.grants = [];
    this.tokens.splice(0);
    this.changed.fire(undefined);
  }

  async refresh(): Promise<void> {
    this.grants = (await this.rpc.request(CapabilityListRequest, {})).grants;
    this.changed.fire(undefined);
  }

  getTreeItem(node: CapabilityNode): vscode.TreeItem {
    if (node.kind === 'grant') {
      const { grant } = node;
      const item = new vscode.TreeItem(grant.label ? `${grant.subject} (${grant.label})` : grant.subject, vscode.TreeItemCollapsibleState.None);
      item.id = `grant:${grant.id}`;
      const expiry = grant.expiresAt ? `expires in ${countdown(grant.expiresAt / 1000)}` : 'no expiry';
      item.description = grant.revoked ? 'revoked' : `${grant.vault} · ${grant.permissions.join(', ')} · ${expiry}`;
      item.tooltip = `grant ${grant.id}\nsubject ${grant.subject}\nvault ${grant.vault}\npermissions ${grant.permissions.join(', ')}\ncreated by ${grant.createdBy}`;
      item.iconPath = grant.revoked ? icon('circle-slash') : icon('key');
      item.contextValue = grant.revoked ? 'toka.revokedGrant' : 'toka.grant';
      return item;
    }
    const { claims, grant } = node.held;
    const left = claims.exp - Date.now() / 1000;
    const item = new vscode.TreeItem(`token for ${claims.sub}`, vscode.TreeItemCollapsibleState.None);
    item.id = `token:${claims.jti}`;
    item.description = `${claims.vault} · ${claims.permissions.join(', ')} · ${left > 0 ? `expires in ${countdown(claims.exp)}` : 'expired'}`;
    item.tooltip = `token ${claims.jti}${grant ? `\ngrant ${grant}` : ''}\nsubject ${claims.sub}\nvault ${claims.vault}\npermissions ${claims.permissions.join(', ')}`;
    item.iconPath = left > 0 ? icon('shield') : icon('shield', 'disabledForeground');
    item.contextValue = 'toka.token';
    return item;
  }

  getChildren(node?: CapabilityNode): CapabilityNode[] {
    if (node) return [];
    return [...this.tokens.map((held) => ({ kind: 'token' as const, held })), ...this.grants.map((grant) => ({ kind: 'grant' as const, grant }))];
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.changed.dispose();
  }
}

/** `mm:ss` (or `h:mm:ss`) until `expSeconds`. */
export function countdown(expSeconds: number): string {
  const left = Math.max(0, Math.round(expSeconds - Date.now() / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// ---- Approvals ------------------------------------------------------------------------------------------

export class ApprovalsView implements vscode.TreeDataProvider<ApprovalRecord> {
  private readonly changed = new vscode.EventEmitter<ApprovalRecord | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private approvals: ApprovalRecord[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly rpc: TokaRpc) {}

  snapshot(): ApprovalRecord[] {
    return this.approvals;
  }

  clear(): void {
    this.approvals = [];
    this.changed.fire(undefined);
  }

  /** Re-read the pending approvals; returns the ones not seen before. */
  async refresh(): Promise<ApprovalRecord[]> {
    this.approvals = (await this.rpc.request(ApprovalListRequest, {})).approvals;
    const fresh = this.approvals.filter((a) => !this.seen.has(a.id));
    for (const a of fresh) this.seen.add(a.id);
    this.changed.fire(undefined);
    return fresh;
  }

  getTreeItem(approval: ApprovalRecord): vscode.TreeItem {
    const item = new vscode.TreeItem(`${approval.call.name} (${approval.permission})`, vscode.TreeItemCollapsibleState.None);
    item.id = `approval:${approval.id}`;
    item.description = `agent ${approval.agent} · ${new Date(approval.requestedAt).toLocaleTimeString()}`;
    item.tooltip = new vscode.MarkdownString(`**${approval.call.name}** needs \`${approval.permission}\`\n\n\`\`\`json\n${truncate(JSON.stringify(approval.call.arguments, null, 2), 2000)}\n\`\`\``);
    item.iconPath = icon('question', 'charts.yellow');
    item.contextValue = 'toka.approval';
    return item;
  }

  getChildren(node?: ApprovalRecord): ApprovalRecord[] {
    return node ? [] : this.approvals;
  }
}

// ---- Events ---------------------------------------------------------------------------------------------

/** What the Events view shows: records matching every non-empty field. */
export interface EventsViewFilter {
  /** Exactly this event type (`RunCompleted`), or '' for any. */
  type: string;
  /** Records about this agent id (its `agent` field, or the agent a run belongs to), or '' for any. */
  agent: string;
  /** Text anywhere in the event's JSON (case-insensitive), or '' for any. */
  text: string;
}

/** Longest filter text or id the webview may send. */
const MAX_FILTER_CHARS = 256;

/**
 * The Events view: a webview (`media/events.js`) showing the newest records of the live log, filterable by
 * type, agent and text. The records and the filter live here, in the extension (the e2e tests read
 * `snapshot()`); the webview renders what it is sent and sends back the filter the user picks.
 */
export class EventsView implements vscode.WebviewViewProvider {
  private readonly records: LogRecord[] = [];
  /** Agent id → name, for the agent picker. */
  private names = new Map<string, string>();
  private current: EventsViewFilter = { type: '', agent: '', text: '' };
  private view: vscode.WebviewView | undefined;

  constructor(private readonly extensionUri: vscode.Uri) {}

  get filter(): EventsViewFilter {
    return { ...this.current };
  }

  /** The records the filter lets through, oldest first. */
  snapshot(): LogRecord[] {
    return this.records.filter((r) => this.matches(r));
  }

  get lastSeq(): number {
    return this.records.length ? this.records[this.records.length - 1].seq : 0;
  }

  add(records: LogRecord[]): void {
    const fresh = records.filter((r, i) => r.seq > this.lastSeq && (i === 0 || r.seq > records[i - 1].seq));
    if (fresh.length === 0) return;
    this.records.push(...fresh);
    const dropped = this.records.length > MAX_EVENTS ? this.records.splice(0, this.records.length - MAX_EVENTS) : [];
    void this.post({ kind: 'append', records: fresh.filter((r) => this.matches(r)).map(row), dropBefore: dropped.length ? this.records[0].seq : 0, choices: this.choices() });
  }

  /** Forget the records (another host: its log is another log). */
  clear(): void {
    this.records.splice(0);
    this.render();
  }

  /** Agent names for the agent picker (from the Agents view). */
  setAgentNames(agents: readonly { id: string; name: string }[]): void {
    this.names = new Map(agents.map((a) => [a.id, a.name]));
  }

  setFilter(filter: Partial<EventsViewFilter>): void {
    this.current = { ...this.current, ...filter, text: (filter.text ?? this.current.text).trim() };
    this.render();
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    const nonce = randomBytes(16).toString('base64');
    const uri = (file: string) => view.webview.asWebviewUri(vscode.Uri.joinPath(media, file)).toString();
    view.webview.html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${view.webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${uri('events.css')}">
<title>Toka events</title>
</head>
<body>
<div class="bar">
  <select id="type" title="Event type"><option value="">all types</option></select>
  <select id="agent" title="Agent"><option value="">all agents</option></select>
  <input id="text" type="search" placeholder="Filter text" maxlength="${MAX_FILTER_CHARS}">
  <label title="Scroll to each new event"><input id="follow" type="checkbox" checked> follow</label>
</div>
<div id="count" class="count"></div>
<ol id="list" class="list"></ol>
<script nonce="${nonce}" src="${uri('events.js')}"></script>
</body>
</html>`;
    view.webview.onDidReceiveMessage((message: unknown) => {
      const filter = filterFrom(message);
      if (filter) this.setFilter(filter);
      else if (isReady(message)) this.render();
    });
    view.onDidDispose(() => {
      if (this.view === view) this.view = undefined;
    });
  }

  /** Send the whole filtered list (after a filter change or a reload of the webview). */
  private render(): void {
    void this.post({ kind: 'reset', records: this.snapshot().map(row), filter: this.current, choices: this.choices() });
  }

  private post(message: unknown): Thenable<boolean> | undefined {
    return this.view?.webview.postMessage(message);
  }

  /** The types and agents present, for the pickers. */
  private choices(): { types: string[]; agents: { id: string; name: string }[] } {
    const types = new Set<string>();
    const agents = new Set<string>();
    for (const r of this.records) {
      types.add(r.event.type);
      const agent = agentOf(r);
      if (agent) agents.add(agent);
    }
    return { types: [...types].sort(), agents: [...agents].sort().map((id) => ({ id, name: this.names.get(id) ?? id })) };
  }

  private matches(record: LogRecord): boolean {
    const { type, agent, text } = this.current;
    if (type && record.event.type !== type) return false;
    if (agent && agentOf(record) !== agent) return false;
    return !text || JSON.stringify(record.event).toLowerCase().includes(text.toLowerCase());
  }
}

/** The agent a record is about (the event's `agent` field, which the host filters by too). */
function agentOf(record: LogRecord): string | undefined {
  return record.event.agent;
}

/** What the webview shows of a record: a summary line, and the event as JSON (bounded). */
function row(record: LogRecord): { seq: number; at: number; type: string; agent: string; run: string; json: string } {
  const event = record.event as { type: string; run?: unknown };
  return {
    seq: record.seq,
    at: record.event.at,
    type: event.type,
    agent: agentOf(record) ?? '',
    run: typeof event.run === 'string' ? event.run : '',
    json: truncate(JSON.stringify(record.event, null, 2), 8000),
  };
}

/** A filter sent by the webview, checked field by field; anything else is ignored. */
function filterFrom(message: unknown): Partial<EventsViewFilter> | undefined {
  if (typeof message !== 'object' || message === null || !Object.hasOwn(message, 'kind') || (message as { kind: unknown }).kind !== 'filter') return undefined;
  const filter: Partial<EventsViewFilter> = {};
  for (const key of ['type', 'agent', 'text'] as const) {
    if (!Object.hasOwn(message, key)) continue;
    const value = (message as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value.length > MAX_FILTER_CHARS) return undefined;
    filter[key] = value;
  }
  return filter;
}

function isReady(message: unknown): boolean {
  return typeof message === 'object' && message !== null && Object.hasOwn(message, 'kind') && (message as { kind: unknown }).kind === 'ready';
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0];
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
