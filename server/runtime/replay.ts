/**
 * Replay of one run from the log: the same runner code (`driveRun`) re-drives the run against a kernel
 * rebuilt from the log, with every non-deterministic input answered from what the log recorded, and every
 * step the runner takes is compared with the recorded one. Nothing real is called: no LLM, no tool, no clock.
 *
 * - State: the kernel is rebuilt from the log up to just before the run's `RunSubmitted`. From there the
 *   log's records are walked in order; the run's own steps (the runner's operations, made with the agent's
 *   token) are re-executed by the runner, every other record (other runs and agents, approvals, cancels,
 *   the effects of kernel tools) is applied at its recorded position, before the runner's next read.
 * - Inputs: the LLM answers with the next recorded `LlmTurnRecorded`, each tool with the next recorded
 *   `ToolResultRecorded`, the clock with the time the host stamped on the next recorded step, and the
 *   envelope of each step takes its id, time and fresh ids from the recorded events (the host assigns
 *   those, and they are in the events). The agent's session carries the recorded token id (`by.jti`) and
 *   its grant's permissions; it is built here, not by a host, because no verifying host may accept a token
 *   it did not see signed — which is also why the replay executes on a kernel of its own, never a host.
 * - Verdict: every produced event must equal the recorded one (canonical JSON, compared field by field),
 *   the runner must produce exactly the recorded steps, and the state digest after the run's last record
 *   must equal the digest of the log's own state at that record.
 */
import { canonicalJson } from '../../protocol/canonical.js';
import { isKnownPermission, type CapabilityClaims } from '../../protocol/capability.js';
import type { LogRecord } from '../../protocol/events.js';
import type { KernelEvent, Operation, OperationEnvelope } from '../../protocol/kernel.js';
import { agentSubject, type RunRecord, type RunToolResult } from '../../protocol/runtime.js';
import { HostError } from '../host/errors.js';
import type { Session } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import { Kernel, type OpcodeHandler } from '../kernel/kernel.js';
import type { EventLog } from '../store/event-log.js';
import { stateDigest } from '../store/hash.js';
import { findRun, runtimeState } from './lifecycle.js';
import { LlmError, type LlmProvider, type LlmTurn } from './llm/provider.js';
import { CONVERSATION_EVENTS, driveRun } from './runner.js';
import { ToolError, TOOL_ERROR_CODES, type ToolErrorCode } from './tools/errors.js';
import { NAMESPACE_SEPARATOR } from './tools/mcp-source.js';
import { ToolRegistry } from './tools/registry.js';
import { DEFAULT_TOOL_LIMITS } from './tools/types.js';

/** Event types of the steps a runner records itself (with the agent's own token). */
export const RUNNER_EVENTS = ['RunStarted', 'LlmTurnRecorded', 'ToolCallRequested', 'ToolResultRecorded', 'RunCompleted', 'RunFailed'] as const;

/** Records read per page while loading the log. */
const PAGE = 1000;
/** Longest value quoted in a difference (characters of its JSON). */
const QUOTE_CHARS = 500;

/** The first place where the replay and the log disagree. */
export interface ReplayDifference {
  /** Sequence number of the recorded record concerned (null when the log has no record there). */
  seq: number | null;
  /** Its event type (or what the runner produced, when the log has no record). */
  type: string | null;
  /** Path of the first differing field (`turn.toolCalls[0].name`), when both events exist. */
  field?: string;
  /** The recorded value at `field` (or the recorded event), as JSON, cut to 500 characters. */
  recorded?: string;
  /** The replayed value at `field` (or the produced event or operation), as JSON, cut to 500 characters. */
  replayed?: string;
  /** What went wrong, for people. */
  message: string;
}

export interface ReplayReport {
  /** The run replayed. */
  run: string;
  /** True when every step and the state digest are identical. */
  identical: boolean;
  /** The run's state at the end of the replay. */
  state: RunRecord['state'] | null;
  /** The run's own steps re-produced by the runner and compared. */
  compared: number;
  /** Other records applied at their recorded positions. */
  applied: number;
  /** Sequence numbers of the run's `RunSubmitted` and of its last record. */
  fromSeq: number;
  toSeq: number;
  /** State digests after `toSeq`: the log's and the replay's. */
  digest: { recorded: string; replayed: string };
  /** The first difference, when not identical. */
  difference?: ReplayDifference;
}

export interface ReplayOptions {
  /** The opcode handlers the log was written with (the runtime's). */
  handlers: OpcodeHandler[];
  /** The tool registry the run was offered (its manifests decide permissions and approvals; no tool is called). */
  tools: ToolRegistry;
  logger: Logger;
}

/** A run id, or the id of the queued task a run was started for. */
function submittedRun(record: LogRecord, id: string): RunRecord | undefined {
  if (record.event.type !== 'RunSubmitted') return undefined;
  const run = (record.event as unknown as { run: RunRecord }).run;
  return run.id === id || run.task === id ? run : undefined;
}

function runOf(event: KernelEvent): string | undefined {
  const run = (event as unknown as { run?: unknown }).run;
  if (typeof run === 'string') return run;
  if (typeof run === 'object' && run !== null && typeof (run as { id?: unknown }).id === 'string') return (run as { id: string }).id;
  return undefined;
}

/** Thrown inside the runner once the replay has found its first difference: stops the runner where it is. */
class ReplayStopped extends Error {}

/**
 * Replay the run `id` (or the run of queued task `id`) from `log`. Throws `UnknownEntity` when the log has no
 * such run; a replay that disagrees with the log resolves with `identical: false` and the first difference.
 */
export async function replayRun(log: EventLog, id: string, options: ReplayOptions): Promise<ReplayReport> {
  const kernel = new Kernel();
  for (const h of options.handlers) kernel.register(h);
  let window: LogRecord[] = [];
  let run: RunRecord | undefined;
  for (let afterSeq = 0; ; ) {
    const page = await log.read({ afterSeq, limit: PAGE });
    for (const record of page) {
      if (run === undefined) run = submittedRun(record, id);
      if (run === undefined) kernel.apply(record.event);
      else window.push(record);
    }
    if (page.length < PAGE) break;
    afterSeq = page[page.length - 1].seq;
  }
  if (run === undefined) throw new HostError('UnknownEntity', `the log has no run ${id}`, { entity: 'run', id });
  let last = 0;
  window.forEach((r, i) => {
    if (runOf(r.event) === run!.id) last = i;
  });
  window = window.slice(0, last + 1);

  const reference = new Kernel({ state: kernel.snapshot() });
  for (const h of options.handlers) reference.register(h);
  for (const r of window) reference.apply(r.event);

  const replay = new RunReplay(kernel, window, run, options);
  await replay.drive();
  const replayed = stateDigest(kernel.state);
  const recorded = stateDigest(reference.state);
  const difference =
    replay.difference ??
    (replayed !== recorded ? { seq: window[window.length - 1].seq, type: null, message: 'the replayed state digest differs from the recorded one' } : undefined);
  return {
    run: run.id,
    identical: difference === undefined,
    state: findRun(runtimeState(kernel.state), run.id)?.state ?? null,
    compared: replay.compared,
    applied: replay.applied,
    fromSeq: window[0].seq,
    toSeq: window[window.length - 1].seq,
    digest: { recorded, replayed },
    ...(difference ? { difference } : {}),
  };
}

/** One run re-driven: the cursor over the log window and what the runner's context answers from it. */
class RunReplay {
  difference: ReplayDifference | undefined;
  compared = 0;
  applied = 0;
  /** Next record of the window to apply or re-produce. */
  private pos = 0;
  private readonly subject: string;
  private readonly controller = new AbortController();
  private jti: string;

  constructor(
    private readonly kernel: Kernel,
    private readonly window: LogRecord[],
    private readonly run: RunRecord,
    private readonly options: ReplayOptions,
  ) {
    this.subject = agentSubject(run.agent);
    this.jti = '';
  }

  /** Re-enter the runner as the runtime did (at the start, after an approval, after a restart) while the log has steps of it. */
  async drive(): Promise<void> {
    this.applyOthers();
    while (this.pos < this.window.length && this.difference === undefined) {
      const before = this.pos;
      const outcome = await driveRun({
        run: this.current(),
        agentSession: async () => this.session(),
        submit: async (session, op) => this.submit(session, op),
        stage: async (session, op) => ({ events: this.submit(session, op).map((r) => r.event), durable: Promise.resolve() }),
        history: async () => this.history(),
        current: async () => this.current(),
        provider: this.provider(),
        tools: this.tools(),
        toolLimits: DEFAULT_TOOL_LIMITS,
        workspace: '',
        controller: this.controller,
        now: () => this.now(),
        logger: this.options.logger,
      }).catch((err: unknown) => {
        if (err instanceof ReplayStopped || this.difference !== undefined) return 'stopped';
        throw err;
      });
      if (this.difference !== undefined || this.controller.signal.aborted) return;
      this.applyOthers();
      if (this.pos === before && this.pos < this.window.length) {
        this.differ(this.window[this.pos], { message: `the runner stopped (${outcome}) where the log records a step of the run` });
        return;
      }
    }
  }

  // ---- the log cursor ------------------------------------------------------------------------------

  private isOwn(record: LogRecord): boolean {
    const e = record.event;
    return (RUNNER_EVENTS as readonly string[]).includes(e.type) && e.by.sub === this.subject && runOf(e) === this.run.id;
  }

  /** Apply every record that is not a step of the run, up to the run's next recorded step (or the end). */
  private applyOthers(): void {
    while (this.pos < this.window.length && !this.isOwn(this.window[this.pos])) {
      this.kernel.apply(this.window[this.pos].event);
      this.pos++;
      this.applied++;
    }
  }

  /** The run's next recorded step, once every record before it is applied. */
  private nextStep(): LogRecord | undefined {
    this.applyOthers();
    const next = this.window[this.pos];
    if (next !== undefined) this.jti = next.event.by.jti;
    return next;
  }

  private differ(record: LogRecord | undefined, d: Omit<ReplayDifference, 'seq' | 'type'> & { type?: string }): void {
    this.difference ??= { seq: record?.seq ?? null, type: d.type ?? record?.event.type ?? null, ...d };
    this.controller.abort(new ReplayStopped());
  }

  // ---- the runner's context ------------------------------------------------------------------------

  private current(): RunRecord {
    this.applyOthers();
    const run = findRun(runtimeState(this.kernel.state), this.run.id);
    if (run === undefined) throw new HostError('UnknownEntity', `unknown run ${this.run.id}`);
    return structuredClone(run);
  }

  private history(): LogRecord[] {
    this.applyOthers();
    return this.window
      .slice(0, this.pos)
      .filter((r) => (CONVERSATION_EVENTS as readonly string[]).includes(r.event.type) && runOf(r.event) === this.run.id);
  }

  /** The clock: the time the host stamped on the run's next recorded step (the last record's, past the end). */
  private now(): number {
    return (this.nextStep() ?? this.window[this.window.length - 1]).event.at;
  }

  /** The agent's session as its token was: the recorded token id, its grant's permissions. */
  private session(): Session {
    const next = this.nextStep();
    const agents = runtimeState(this.kernel.state).agents;
    const record = Object.hasOwn(agents, this.run.agent) ? agents[this.run.agent] : undefined;
    if (!record || record.grant === '' || !Object.hasOwn(this.kernel.state.grants, record.grant)) {
      throw new HostError('Unauthenticated', `agent ${this.run.agent} has no runtime grant`, { reason: 'ERR_GRANT_UNKNOWN' });
    }
    const grant = this.kernel.state.grants[record.grant];
    const iat = Math.floor((next ?? this.window[this.window.length - 1]).event.at / 1000);
    const claims: CapabilityClaims = {
      sub: this.subject,
      vault: this.run.vault,
      permissions: [...grant.permissions],
      iat,
      exp: iat + 1800,
      jti: this.jti || 'replay',
      grant: grant.id,
    };
    return { id: 'replay', principal: this.subject, claims, local: false };
  }

  /** One step of the runner: executed on the replay kernel with the recorded envelope, compared with the log. */
  private submit(session: Session, op: Operation): LogRecord[] {
    if (this.difference !== undefined) throw new ReplayStopped();
    const first = this.nextStep();
    const expected: LogRecord[] = [];
    for (let i = this.pos; first !== undefined && i < this.window.length && this.window[i].event.opId === first.event.opId; i++) {
      expected.push(this.window[i]);
    }
    const envelope: OperationEnvelope = {
      id: first?.event.opId ?? 'replay-unrecorded',
      at: first?.event.at ?? this.now(),
      origin: session.principal,
      claims: session.claims,
      ids: expected.flatMap((r) => recordedIds(r.event)),
      op,
    };
    let produced: KernelEvent[];
    try {
      produced = this.kernel.execute(envelope);
    } catch (err) {
      // A step the kernel refuses left no record in the original either: the runner sees the same error.
      if (first === undefined) throw HostError.from(err);
      this.differ(first, { message: `the kernel refused the replayed step (${(err as Error).message})`, replayed: quote(op) });
      throw new ReplayStopped();
    }
    if (first === undefined) {
      this.differ(undefined, { type: produced[0]?.type ?? op.type, message: 'the runner took a step the log does not have', replayed: quote(produced) });
      throw new ReplayStopped();
    }
    for (let i = 0; i < Math.max(produced.length, expected.length); i++) {
      const r = expected[i]?.event;
      const p = produced[i];
      if (r === undefined || p === undefined || canonicalJson(r) !== canonicalJson(p)) {
        const field = r !== undefined && p !== undefined ? firstDifference(r, p, '') : undefined;
        this.differ(expected[i] ?? first, {
          type: (r ?? p).type,
          message: r === undefined ? 'the runner produced an event more than the log has' : p === undefined ? 'the runner produced an event fewer' : 'the replayed event differs',
          ...(field !== undefined ? { field: field.path, recorded: quote(field.recorded), replayed: quote(field.replayed) } : { recorded: quote(r), replayed: quote(p) }),
        });
        throw new ReplayStopped();
      }
    }
    this.pos += expected.length;
    this.compared += expected.length;
    return expected;
  }

  /** The LLM: answers with the recorded turn of the run's next step. */
  private provider(): LlmProvider {
    return {
      name: 'replay',
      complete: async (_req, opts): Promise<LlmTurn> => {
        if (opts.signal.aborted) throw new LlmError('Cancelled', 'the LLM call was cancelled');
        const next = this.nextStep();
        if (next?.event.type === 'LlmTurnRecorded') return structuredClone((next.event as unknown as { turn: LlmTurn }).turn);
        this.stopAt(next, 'the runner asked the LLM');
        throw new LlmError('Cancelled', 'replay stopped');
      },
    };
  }

  /**
   * The tools: the run's manifests, each answering with the recorded result of the run's next step. Tools of
   * the agent's external MCP servers (`<server>__<tool>`) are not in the host's registry — their manifests
   * live on the servers, which a replay does not contact — so each is taken as its calls were recorded: the
   * permission it required and whether it waited for an approval (privileged).
   */
  private tools(): ToolRegistry {
    const registry = new ToolRegistry();
    const manifests = this.options.tools.list(['*']);
    const known = new Set(manifests.map((m) => m.name));
    for (const { event } of this.window) {
      if (event.type !== 'ToolCallRequested' || runOf(event) !== this.run.id) continue;
      const e = event as unknown as { call: { name: string }; decision: string; permission: string };
      if (known.has(e.call.name) || !e.call.name.includes(NAMESPACE_SEPARATOR) || !isKnownPermission(e.permission) || e.permission.includes('*')) continue;
      known.add(e.call.name);
      manifests.push({
        name: e.call.name,
        description: 'a tool of an external MCP server, as recorded',
        inputSchema: { type: 'object' },
        sideEffect: e.decision === 'approval' ? 'privileged' : 'external',
        permission: e.permission,
      });
    }
    for (const manifest of manifests) {
      registry.register({
        manifest,
        call: async () => {
          const next = this.nextStep();
          if (next?.event.type !== 'ToolResultRecorded') {
            this.stopAt(next, `the runner called the tool ${manifest.name}`);
            throw new ToolError('Cancelled', 'replay stopped');
          }
          const result = (next.event as unknown as { result: RunToolResult }).result;
          if (result.code !== undefined && (TOOL_ERROR_CODES as readonly string[]).includes(result.code)) {
            throw new ToolError(result.code as ToolErrorCode, result.content);
          }
          return { content: result.content, isError: result.isError };
        },
      });
    }
    return registry;
  }

  /**
   * The runner asked for an input the log has no answer to. When the log has no further step of the run, the
   * recorded run stopped right there (cancelled, or the host closed mid-call): the replay stops as it did.
   * Otherwise the runner took another path than the recorded one.
   */
  private stopAt(next: LogRecord | undefined, what: string): void {
    if (next === undefined) this.controller.abort(new ReplayStopped());
    else this.differ(next, { message: `${what} where the log records ${next.event.type}` });
  }
}

/** The fresh ids an operation's events used, in the order the kernel takes them (the host assigned them). */
function recordedIds(event: KernelEvent): string[] {
  const approval = (event as unknown as { approval?: { id?: unknown } }).approval;
  return typeof approval?.id === 'string' ? [approval.id] : [];
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text;
}

/** The first path (`a.b[2].c`) where two JSON values differ, with both values there. */
function firstDifference(a: unknown, b: unknown, path: string): { path: string; recorded: unknown; replayed: unknown } | undefined {
  if (canonicalJson(a) === canonicalJson(b)) return undefined;
  const bothObjects = typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b);
  if (!bothObjects) return { path: path || '(event)', recorded: a, replayed: b };
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
    const d = firstDifference(Object.hasOwn(ao, key) ? ao[key] : undefined, Object.hasOwn(bo, key) ? bo[key] : undefined, path ? `${path}.${key}` : key);
    if (d) return d;
  }
  return undefined;
}
