/**
 * The `toka/*` protocol bound to any vscode-jsonrpc style connection (the stdio language-server connection,
 * the WebSocket message connection and the admin socket connection all fit). Every method is bound by its
 * request definition from `protocol/rpc` (the `type` object and the one schema that decodes its params), so
 * the server cannot drift from the contract the clients import. The binding only decodes params, calls the
 * host, and encodes results and errors: authorisation, rate limits and the log live in the host.
 */
import {
  ResponseError,
  type CancellationToken,
  type Disposable,
  type NotificationType,
  type RequestParam,
  type RequestType,
} from 'vscode-jsonrpc';
import type { z } from 'zod';
import type { ErrorData } from '../../protocol/errors.js';
import {
  CapabilityDelegateRequest,
  CapabilityListRequest,
  CapabilityMintRequest,
  CapabilityRevokeRequest,
  EventsEndedNotification,
  EventsEventNotification,
  EventsQueryRequest,
  EventsSubscribeRequest,
  EventsUnsubscribeRequest,
  AgentRunRequest,
  AgentSpawnRequest,
  AgentTerminateRequest,
  ApprovalListRequest,
  ApprovalResolveRequest,
  HostInfoRequest,
  KernelSubmitRequest,
  TaskCancelRequest,
  TaskGetRequest,
  TaskListRequest,
  LogVerifyRequest,
  StateGetRequest,
  TOKA_PROTOCOL_VERSION,
  WorkstreamPlanRequest,
  WorkstreamRunRequest,
  type WorkstreamAgentReport,
  type HostInfo,
  type RequestDefinition,
} from '../../protocol/rpc/index.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { AgentRuntime } from '../runtime/runtime.js';
import { Orchestration, localClient, planWorkstreamSpecs, type AgentReport, type ProgressEvent } from '../runtime/orchestrate.js';
import { analyzeSpecText } from '../runtime/spec/index.js';
import type { Subscription } from '../store/event-log.js';
import { TOKA_VERSION } from '../host/version.js';

/** A request handler as the binding registers it: params are still undecoded wire input. */
export type RawRequestHandler<R> = (params: unknown, token: CancellationToken) => Promise<R>;

/** The part of a JSON-RPC connection the binding needs. */
export interface RpcConnection {
  /** Serve the request `type` with `handler` (see `onTypedRequest`). */
  onRequest<P, R>(type: RequestType<P, R, ErrorData>, handler: RawRequestHandler<R>): Disposable;
  sendNotification<P>(type: NotificationType<P>, params: RequestParam<P>): Promise<void>;
  sendProgress?(token: string | number, value: unknown): Promise<void>;
}

/** The registration call of a vscode-jsonrpc `MessageConnection` or vscode-languageserver `Connection`. */
interface RequestRegistrar {
  onRequest(method: string, handler: (...args: unknown[]) => unknown): Disposable;
}

/**
 * Register `handler` for `type` on a vscode-jsonrpc style connection. The connection's own dispatch on a
 * typed registration answers absent params with an InvalidParams error that names no field, and spreads
 * by-position params over the handler's arguments; this one hands the handler what arrived instead — absent
 * params as `undefined`, one by-position value as that value — and refuses more than one by-position value
 * as InvalidParams naming `params`. The schema of the method then decides.
 */
export function onTypedRequest<P, R>(
  connection: RequestRegistrar,
  type: RequestType<P, R, ErrorData>,
  handler: RawRequestHandler<R>,
): Disposable {
  return connection.onRequest(type.method, (...args: unknown[]) => {
    const token = args[args.length - 1] as CancellationToken;
    const given = args.slice(0, -1);
    if (given.length > 1) {
      throw toResponseError(new HostError('InvalidParams', 'params must be an object, not a list', { field: 'params' }));
    }
    return handler(given[0], token);
  });
}

/**
 * Decode `params` with the method's schema. Absent params decode as `{}` (a method whose fields are all
 * optional may be called without params). A mismatch is InvalidParams whose `data.field` is the top-level
 * field at fault (`params` when the params are not an object at all).
 */
export function decodeParams<P>(definition: { method: string; paramsSchema: z.ZodType<P> }, params: unknown): P {
  const decoded = definition.paramsSchema.safeParse(params ?? {});
  if (decoded.success) return decoded.data;
  const issue = decoded.error.issues[0];
  // An unknown field of a strict schema is reported at the object that holds it: name the field itself.
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys.slice(0, 1)] : issue.path;
  const field = path.length > 0 ? String(path[0]) : 'params';
  const where = path.length > 0 ? path.map(String).join('.') : 'params';
  throw new HostError('InvalidParams', `${definition.method}: ${where}: ${issue.message}`, { field });
}

/** Most subscriptions one connection may hold. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 16;
/** Most `toka/*` requests one connection may have unanswered at once; more are refused with LimitExceeded. */
export const MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION = 32;

/** Anything thrown below an adapter as the JSON-RPC error of its answer (unknown errors become InternalError). */
export function toResponseError(err: unknown): ResponseError<unknown> {
  const e = HostError.from(err);
  return new ResponseError(e.code, e.message, e.data);
}

export interface TokaBinding {
  /** End every subscription of this connection (call when it closes). */
  dispose(): void;
}

/**
 * Serve `toka/*` on `connection` for `session`. `session()` is read per request so an adapter can swap
 * the session's token (e.g. after re-authentication) without rebinding.
 */
export function bindTokaProtocol(connection: RpcConnection, host: Host, session: () => Session, runtime?: AgentRuntime): TokaBinding {
  const subscriptions = new Map<string, Subscription>();
  let pendingSubscriptions = 0;
  let nextSubscription = 1;
  let disposed = false;
  const disposables: Disposable[] = [];
  /** Workstreams this connection runs: cancelled when it closes (nobody would follow or cancel them). */
  const workstreams = new Set<Orchestration>();
  let inFlight = 0;

  const handle = <P, R>(definition: RequestDefinition<P, R>, fn: (params: P, token: CancellationToken) => Promise<R>) => {
    disposables.push(
      connection.onRequest(definition.type, async (params, token) => {
        if (inFlight >= MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION) {
          throw toResponseError(
            new HostError('LimitExceeded', `at most ${MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION} requests in flight per connection`, {
              limit: 'requestsInFlightPerConnection',
              max: MAX_REQUESTS_IN_FLIGHT_PER_CONNECTION,
            }),
          );
        }
        inFlight++;
        try {
          return await fn(decodeParams(definition, params), token);
        } catch (err) {
          throw toResponseError(err);
        } finally {
          inFlight--;
        }
      }),
    );
  };

  handle(KernelSubmitRequest, async ({ op }) => host.submit(session(), op));

  handle(StateGetRequest, async (query) => host.getState(session(), query));

  handle(EventsQueryRequest, async (query) => ({ records: await host.queryEvents(session(), query) }));

  handle(EventsSubscribeRequest, async (params) => {
    // Concurrent subscribes all reach this check before any of them is stored: count those still pending.
    if (subscriptions.size + pendingSubscriptions >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
      throw new HostError('LimitExceeded', `at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection`, {
        limit: 'subscriptionsPerConnection',
        max: MAX_SUBSCRIPTIONS_PER_CONNECTION,
      });
    }
    const id = `s${nextSubscription++}`;
    const headSeq = host.headSeq();
    let ended = false;
    let sub: Subscription;
    pendingSubscriptions++;
    try {
      sub = await host.subscribe(
        session(),
        { afterSeq: params.afterSeq ?? headSeq, agent: params.agent, types: params.types },
        {
          onRecord: (record) => connection.sendNotification(EventsEventNotification.type, { subscription: id, record }),
          onEnd: (end) => {
            ended = true;
            subscriptions.delete(id);
            void connection
              .sendNotification(EventsEndedNotification.type, {
                subscription: id,
                reason: end.reason,
                ...('lastDeliveredSeq' in end ? { lastDeliveredSeq: end.lastDeliveredSeq } : {}),
              })
              .catch(() => undefined);
          },
        },
      );
    } finally {
      pendingSubscriptions--;
    }
    if (disposed) {
      // The connection went away while the host was subscribing: nobody would ever end this subscription.
      sub.unsubscribe();
      throw new HostError('Unavailable', 'the connection is closing');
    }
    if (!ended) subscriptions.set(id, sub);
    return { subscription: id, headSeq };
  });

  handle(EventsUnsubscribeRequest, async ({ subscription }) => {
    const sub = subscriptions.get(subscription);
    sub?.unsubscribe();
    subscriptions.delete(subscription);
    return { found: sub !== undefined };
  });

  handle(CapabilityMintRequest, async (request) => host.mint(session(), request));

  handle(CapabilityDelegateRequest, async (request) => host.delegate(session(), request));

  handle(CapabilityRevokeRequest, async (request) => {
    const result = await host.revoke(session(), request);
    return { seq: result.records[result.records.length - 1].seq };
  });

  handle(CapabilityListRequest, async () => ({ grants: await host.listGrants(session()) }));

  /** The agent runtime, or Unavailable when this host serves without one (read-only tools, tests). */
  const agents = (): AgentRuntime => {
    if (!runtime) throw new HostError('Unavailable', 'the agent runtime is not running on this host');
    return runtime;
  };

  handle(AgentSpawnRequest, async ({ spec, uri, parent }) => {
    const analysis = analyzeSpecText(uri ?? 'spec.agent.yaml', spec);
    const errors = analysis.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0 || !analysis.spec || !analysis.digest) {
      throw new HostError('InvalidParams', `the spec has ${errors.length} error(s): ${errors[0]?.message ?? 'no spec'}`, {
        field: 'spec',
        diagnostics: errors.slice(0, 50),
      });
    }
    return agents().spawn(session(), { spec: analysis.spec, digest: analysis.digest, document: analysis.document }, { parent });
  });

  handle(AgentRunRequest, async (request) => ({ tasks: (await agents().run(session(), request)).runs }));

  handle(AgentTerminateRequest, async (request) => {
    await agents().terminate(session(), request);
    return {};
  });

  handle(TaskGetRequest, async ({ task }) => agents().getRun(session(), task));

  handle(TaskListRequest, async (query) => ({ tasks: await agents().listRuns(session(), query) }));

  handle(TaskCancelRequest, async ({ task, reason }) => agents().cancel(session(), { run: task, reason }));

  handle(ApprovalListRequest, async () => ({ approvals: await agents().approvals(session()) }));

  handle(ApprovalResolveRequest, async ({ task, ...decision }) => agents().resolve(session(), { run: task, ...decision }));

  handle(WorkstreamPlanRequest, async ({ specs }) => {
    await host.check(session());
    const { plan, diagnostics } = planWorkstreamSpecs(specs);
    if (!plan) return { ok: false, waves: [], agents: [], diagnostics };
    const agents = plan.waves.flatMap((wave, index) =>
      wave.map((name) => {
        const a = plan.agents.get(name)!;
        return { name, uri: a.file, wave: index, priority: a.priority, requires: a.requires };
      }),
    );
    return { ok: true, waves: plan.waves, agents, diagnostics };
  });

  handle(WorkstreamRunRequest, async ({ specs, input, limits, concurrency, workDoneToken: progressToken }, token) => {
    const runtime = agents();
    const { plan, diagnostics } = planWorkstreamSpecs(specs);
    if (!plan) {
      const errors = diagnostics.filter((d) => d.severity === 'error');
      throw new HostError('InvalidParams', `the workstream has ${errors.length} error(s): ${errors[0]?.message ?? 'no plan'}`, {
        field: 'specs',
        diagnostics: errors.slice(0, 50),
      });
    }
    const report = (value: unknown) => {
      if (progressToken !== undefined && connection.sendProgress) void connection.sendProgress(progressToken, value).catch(() => undefined);
    };
    const total = plan.agents.size;
    let ended = 0;
    const onProgress = (event: ProgressEvent) => {
      if (event.kind === 'agent' && event.report.status !== 'running') ended++;
      report({ kind: 'report', message: progressText(event, plan.waves.length), percentage: Math.round((ended / total) * 100) });
    };
    const orchestration = new Orchestration(localClient(host, runtime, session()), plan, { input, limits, concurrency, onProgress });
    workstreams.add(orchestration);
    const cancelled = token.onCancellationRequested(() => void orchestration.cancel('cancelled by the client'));
    // A token cancelled before dispatch notifies its listeners only on a later timer tick: cancel now.
    if (token.isCancellationRequested) void orchestration.cancel('cancelled by the client');
    report({ kind: 'begin', title: `Running ${total} agent${total === 1 ? '' : 's'} in ${plan.waves.length} wave${plan.waves.length === 1 ? '' : 's'}`, cancellable: true, percentage: 0 });
    try {
      const result = await orchestration.run();
      return { ...result, agents: result.agents.map(wireReport) };
    } finally {
      workstreams.delete(orchestration);
      cancelled.dispose();
      report({ kind: 'end' });
    }
  });

  handle(HostInfoRequest, async (): Promise<HostInfo> => {
    const claims = await host.check(session());
    const health = host.health();
    return {
      name: 'toka',
      version: TOKA_VERSION,
      protocolVersion: TOKA_PROTOCOL_VERSION,
      store: health.store,
      seq: health.seq,
      ready: health.ready,
      session: { principal: session().principal, vault: claims.vault, permissions: claims.permissions, exp: claims.exp },
    };
  });

  handle(LogVerifyRequest, async ({ workDoneToken: progressToken }, token) => {
    const abort = new AbortController();
    const cancelled = token.onCancellationRequested(() => abort.abort());
    // A token cancelled before dispatch notifies its listeners only on a later timer tick: abort now.
    if (token.isCancellationRequested) abort.abort();
    const report = (value: unknown) => {
      if (progressToken !== undefined && connection.sendProgress) void connection.sendProgress(progressToken, value).catch(() => undefined);
    };
    report({ kind: 'begin', title: 'Verifying the event log', cancellable: true, percentage: 0 });
    try {
      return await host.verifyLog(session(), {
        signal: abort.signal,
        onProgress: (fraction, message) => report({ kind: 'report', message, percentage: Math.round(fraction * 100) }),
      });
    } finally {
      cancelled.dispose();
      report({ kind: 'end' });
    }
  });

  return {
    dispose() {
      disposed = true;
      for (const orchestration of workstreams) void orchestration.cancel('the connection closed');
      for (const sub of subscriptions.values()) sub.unsubscribe();
      subscriptions.clear();
      for (const d of disposables) d.dispose();
    },
  };
}

/** One line of workstream progress, as `$/progress` reports carry it. */
function progressText(event: ProgressEvent, waves: number): string {
  switch (event.kind) {
    case 'wave':
      return `wave ${event.index + 1}/${waves}: ${event.agents.join(', ')}`;
    case 'agent':
      return `${event.report.name}: ${event.report.status}${event.report.reason ? ` (${event.report.reason})` : ''}`;
    case 'step':
      return `${event.name}: ${event.step}`;
  }
}

/** An agent's report as the protocol names it (its spec's `uri`). */
function wireReport({ file, ...rest }: AgentReport): WorkstreamAgentReport {
  return { ...rest, uri: file };
}
