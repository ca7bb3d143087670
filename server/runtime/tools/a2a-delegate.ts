/**
 * `a2a_delegate`: hand a task to a remote A2A agent and wait for its outcome (docs/tools.md, docs/a2a.md).
 *
 * - Only configured peers (`<data>/a2a-peers.json`), each called with its own credential, narrowed per call
 *   on a Toka peer (the trust model is in a2a/peers.ts and docs/security-model.md).
 * - The message goes out as a streaming send; every status update and artifact the remote reports is
 *   recorded in the calling run's log as it comes (`ToolProgressRecorded`, at most `a2aRecordedUpdates` of
 *   them). The LLM gets the end: the remote task's state, its last status message and its artifacts' text,
 *   cut at `a2aOutputChars`. The result is recorded like every tool result, so a replay needs no peer.
 * - Cancelling the run (or the call outliving `a2aTimeoutMs`) cancels the remote task (`CancelTask`).
 * - Permission `tool:a2a`, side effect `external`.
 */
import { type Artifact, type Message, type Part, SendMessageRequest, TaskState, type StreamResponse } from '@a2a-js/sdk';
import { A2AError } from '@a2a-js/sdk/errors';
import { A2aConnectionError } from '../a2a/websocket-transport.js';
import { a2aBaseUrl, connectA2a, type A2aConnection } from '../a2a/client.js';
import { findPeer, peerCredential, perCallToken, revokePerCallToken } from '../a2a/peers.js';
import { limitExceeded, ToolError } from './errors.js';
import type { KernelAccess, Tool, ToolResult } from './types.js';

/** Longest message handed to a remote agent. */
const MESSAGE_CHARS = 64 * 1024;
/** Text of one recorded update (the kernel's bound on a progress record's text). */
const UPDATE_TEXT_CHARS = 16 * 1024;
/** Artifacts of one remote task kept for the result; further ones are recorded as progress only. */
const MAX_ARTIFACTS = 64;
/** Bound on cancelling the remote task once the call is cancelled. */
const CANCEL_TIMEOUT_MS = 5_000;

interface DelegateArgs {
  url: string;
  message: string;
  skill?: string;
  task?: string;
}

/** The short name of a remote task state (`TASK_STATE_INPUT_REQUIRED` → `input-required`). */
function stateName(state: TaskState | undefined): string {
  const name = state === undefined ? 'TASK_STATE_UNSPECIFIED' : (TaskState[state] ?? 'TASK_STATE_UNSPECIFIED');
  return name.replace(/^TASK_STATE_/, '').toLowerCase().replace(/_/g, '-');
}

const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected']);
const FAILED = new Set(['failed', 'canceled', 'rejected']);

function partsText(parts: readonly Part[] | undefined): string {
  const out: string[] = [];
  for (const part of parts ?? []) {
    const c = part.content;
    if (c?.$case === 'text') out.push(c.value);
    else if (c?.$case === 'data') out.push(JSON.stringify(c.value));
    else if (c?.$case === 'url') out.push(`[file ${c.value}]`);
    else if (c?.$case === 'raw') out.push(`[${c.value.length} bytes${part.mediaType ? ` of ${part.mediaType}` : ''}]`);
  }
  return out.join('\n');
}

function cut(text: string, max: number, limit = 'a2aOutputChars'): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n[cut at ${max} characters (limit ${limit})]`;
}

/** What the call has seen of the remote task so far. */
class RemoteTask {
  id = '';
  state = 'submitted';
  statusText = '';
  readonly artifacts = new Map<string, { name: string; text: string }>();
  recorded = 0;
  seen = 0;

  constructor(
    private readonly kernel: KernelAccess,
    private readonly maxRecorded: number,
    /** Characters of artifact text kept per artifact (the result's bound): a remote cannot grow it past that. */
    private readonly maxChars: number,
  ) {}

  /** Takes one update in and records it in the run's log (within the bound). */
  async take(update: StreamResponse): Promise<void> {
    const p = update.payload;
    if (p === undefined) return;
    if (p.$case === 'task') {
      this.id = p.value.id;
      const text = this.status(p.value.status?.state, p.value.status?.message);
      for (const a of p.value.artifacts) this.artifact(a, false);
      await this.record({ kind: 'status', state: this.state, text });
    } else if (p.$case === 'message') {
      this.state = 'completed';
      this.statusText = partsText(p.value.parts).slice(0, this.maxChars + 1);
      await this.record({ kind: 'status', state: this.state, text: this.statusText });
    } else if (p.$case === 'statusUpdate') {
      this.id ||= p.value.taskId;
      const text = this.status(p.value.status?.state, p.value.status?.message);
      await this.record({ kind: 'status', state: this.state, text });
    } else if (p.$case === 'artifactUpdate' && p.value.artifact) {
      this.id ||= p.value.taskId;
      const text = this.artifact(p.value.artifact, p.value.append);
      await this.record({ kind: 'artifact', name: p.value.artifact.name || p.value.artifact.artifactId, text });
    }
  }

  /** Takes a status in; returns its own message's text (the last one seen is kept for the result). */
  private status(state: TaskState | undefined, message: Message | undefined): string {
    this.state = stateName(state);
    const text = message ? partsText(message.parts).slice(0, this.maxChars + 1) : '';
    if (text) this.statusText = text;
    return text;
  }

  private artifact(a: Artifact, append: boolean): string {
    const text = partsText(a.parts);
    const before = this.artifacts.get(a.artifactId);
    if (before === undefined && this.artifacts.size >= MAX_ARTIFACTS) return text;
    const kept = append && before ? before.text + text : text;
    this.artifacts.set(a.artifactId, { name: (a.name || a.artifactId).slice(0, 256), text: kept.slice(0, this.maxChars + 1) });
    return text;
  }

  private async record(update: { kind: 'status' | 'artifact'; state?: string; name?: string; text?: string }): Promise<void> {
    this.seen++;
    if (this.recorded >= this.maxRecorded) return;
    this.recorded++;
    await this.kernel.progress({
      kind: update.kind,
      subject: `a2a task ${this.id || '(unassigned)'}`,
      ...(update.state !== undefined ? { state: update.state } : {}),
      ...(update.name !== undefined ? { name: update.name.slice(0, 4096) } : {}),
      ...(update.text ? { text: cut(update.text, UPDATE_TEXT_CHARS - 64, 'of a recorded update') } : {}),
    });
  }

  result(url: URL, max: number): ToolResult {
    const lines = [`remote task ${this.id || '(none)'} at ${url.host}: ${this.state}`];
    if (this.statusText) lines.push(this.statusText);
    for (const a of this.artifacts.values()) lines.push(`\n[artifact ${a.name}]\n${a.text}`);
    const unrecorded = this.seen > this.recorded ? `\n[${this.seen} updates seen, the first ${this.recorded} recorded (limit a2aRecordedUpdates)]` : '';
    const content = cut(lines.join('\n'), max) + unrecorded;
    const data = {
      task: this.id,
      state: this.state,
      message: this.statusText,
      artifacts: [...this.artifacts.values()].map((a) => ({ name: a.name, text: cut(a.text, max) })),
      updates: this.seen,
    };
    return { content, isError: FAILED.has(this.state), data };
  }
}

/** The tool error the LLM sees for a failure of the remote side or of reaching it. */
function remoteError(err: unknown, url: URL): ToolError {
  if (err instanceof ToolError) return err;
  if (err instanceof A2aConnectionError) {
    return new ToolError(err.status === 401 || err.status === 403 ? 'Denied' : 'Failed', `${url.host}: ${err.message}`, err.status ? { status: err.status } : undefined);
  }
  if (err instanceof A2AError) {
    const data = (err as { data?: { name?: unknown } }).data;
    const name = typeof data?.name === 'string' ? data.name : err.name;
    const code = name === 'CapabilityDenied' || name === 'Unauthenticated' ? 'Denied' : 'Failed';
    return new ToolError(code, `the remote agent refused: ${name}: ${err.message.slice(0, 500)}`, { remote: name });
  }
  const cause = (err as { cause?: { code?: unknown } }).cause;
  const why = typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.message.slice(0, 300) : String(err);
  return new ToolError('Failed', `cannot reach the A2A agent at ${url.host}: ${why}`);
}

export interface A2aDelegateConfig {
  /** The data dir, where `a2a-peers.json` and relative credential files are; without it no peer is configured. */
  dataDir?: string;
}

export function createA2aDelegateTool(config: A2aDelegateConfig): Tool {
  return {
    manifest: {
      name: 'a2a_delegate',
      description:
        'Hand a task to a remote agent over the A2A protocol and wait for its outcome: its final state, its last message and its artifacts. ' +
        'Only the peers this host is configured for can be called (by their base URL). `skill` picks the remote agent (a skill id of its card); ' +
        '`task` continues a remote task that asked for input.',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'message'],
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 2048, description: "The remote agent's base URL (where its Agent Card is)." },
          message: { type: 'string', minLength: 1, maxLength: MESSAGE_CHARS, description: 'What the remote agent is asked to do.' },
          skill: { type: 'string', minLength: 1, maxLength: 256, description: 'The skill (on Toka: the agent) of the remote card to address.' },
          task: { type: 'string', minLength: 1, maxLength: 256, description: 'A remote task id to continue (answering its input-required).' },
        },
      },
      sideEffect: 'external',
      permission: 'tool:a2a',
    },
    async call(raw, ctx): Promise<ToolResult> {
      const args = raw as DelegateArgs;
      if (ctx.kernel === undefined) throw new ToolError('Failed', 'a2a_delegate runs only inside an agent run (its updates are recorded in the run)');
      let url: URL;
      try {
        url = a2aBaseUrl(args.url);
      } catch (err) {
        throw new ToolError('InvalidArguments', (err as Error).message);
      }
      const peer = await findPeer(config.dataDir, url);
      const timeout = AbortSignal.timeout(ctx.limits.a2aTimeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      const stopped = (): ToolError => {
        if (ctx.signal.aborted) return new ToolError('Cancelled', 'the tool call was cancelled');
        const e = limitExceeded('a2aTimeoutMs', ctx.limits.a2aTimeoutMs, 'the remote task took too long');
        return new ToolError('Timeout', e.message, e.data);
      };
      const credential = await peerCredential(config.dataDir!, peer);
      let token = credential;
      let narrowed = false;
      if (peer.perCallToken !== false) {
        const ttl = Math.min(1800, Math.ceil(ctx.limits.a2aTimeoutMs / 1000) + 30);
        token = await perCallToken(url, credential, ctx.agentId, ttl, signal);
        narrowed = true;
      }
      const remote = new RemoteTask(ctx.kernel, ctx.limits.a2aRecordedUpdates, ctx.limits.a2aOutputChars);
      let connection: A2aConnection | undefined;
      try {
        connection = await connectA2a(url.href, { token, ...(peer.binding ? { binding: peer.binding } : {}), signal });
        const request = SendMessageRequest.fromJSON({
          message: {
            messageId: crypto.randomUUID(),
            role: 'ROLE_USER',
            parts: [{ text: args.message }],
            ...(args.task !== undefined ? { taskId: args.task } : {}),
            ...(args.skill !== undefined ? { metadata: { skill: args.skill } } : {}),
          },
        });
        for await (const update of connection.client.sendMessageStream(request, { signal })) {
          await remote.take(update);
          if (TERMINAL.has(remote.state)) break;
        }
        return remote.result(url, ctx.limits.a2aOutputChars);
      } catch (err) {
        if (signal.aborted) {
          if (remote.id && connection && !TERMINAL.has(remote.state)) await cancelRemote(connection, remote.id);
          throw stopped();
        }
        throw remoteError(err, url);
      } finally {
        connection?.close();
        if (narrowed) await revokePerCallToken(url, token);
      }
    },
  };
}

/** Cancel the remote task (bounded; a refusal is left: the task may just have ended). */
async function cancelRemote(connection: A2aConnection, task: string): Promise<void> {
  try {
    await connection.client.cancelTask({ id: task, tenant: '', metadata: undefined }, { signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS) });
  } catch {
    return;
  }
}
