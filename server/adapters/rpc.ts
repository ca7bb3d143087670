/**
 * The `toka/*` protocol bound to any vscode-jsonrpc style connection (the stdio language-server connection
 * and the WebSocket message connection both fit). It only decodes params, calls the host, and encodes
 * results and errors: authorisation, rate limits and the log live in the host.
 */
import { ResponseError, type CancellationToken, type Disposable } from 'vscode-jsonrpc';
import type { Operation } from '../../protocol/kernel.js';
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
  HostInfoRequest,
  KernelSubmitRequest,
  LogVerifyRequest,
  StateGetRequest,
  TOKA_PROTOCOL_VERSION,
  type HostInfo,
} from '../../protocol/rpc/index.js';
import { HostError } from '../host/errors.js';
import type { Host, Session } from '../host/host.js';
import type { Subscription } from '../store/event-log.js';
import { TOKA_VERSION } from '../host/version.js';

/** The part of a JSON-RPC connection the binding needs. */
export interface RpcConnection {
  onRequest(method: string, handler: (params: unknown, token: CancellationToken) => unknown): Disposable;
  sendNotification(method: string, params: unknown): Promise<void>;
  sendProgress?(token: string | number, value: unknown): Promise<void>;
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
export function bindTokaProtocol(connection: RpcConnection, host: Host, session: () => Session): TokaBinding {
  const subscriptions = new Map<string, Subscription>();
  let pendingSubscriptions = 0;
  let nextSubscription = 1;
  let disposed = false;
  const disposables: Disposable[] = [];
  let inFlight = 0;

  const handle = <P, R>(method: string, fn: (params: P, token: CancellationToken) => Promise<R>) => {
    disposables.push(
      connection.onRequest(method, async (params, token) => {
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
          return await fn((params ?? {}) as P, token);
        } catch (err) {
          throw toResponseError(err);
        } finally {
          inFlight--;
        }
      }),
    );
  };

  handle(KernelSubmitRequest.method, async (p: Record<string, unknown>) => {
    const params = object(p);
    if (typeof params.op !== 'object' || params.op === null || Array.isArray(params.op)) {
      throw new HostError('InvalidParams', 'op must be an object', { field: 'op' });
    }
    return host.submit(session(), params.op as Operation);
  });

  handle(StateGetRequest.method, async (p) => {
    const params = object(p);
    return host.getState(session(), {
      agent: optString(params, 'agent'),
      parent: optString(params, 'parent'),
      status: optEnum(params, 'status', ['active', 'idle', 'stopped'] as const),
      includeTasks: optBoolean(params, 'includeTasks'),
      cursor: optString(params, 'cursor'),
      limit: optNumber(params, 'limit'),
    });
  });

  handle(EventsQueryRequest.method, async (p) => {
    const params = object(p);
    const records = await host.queryEvents(session(), {
      afterSeq: optNumber(params, 'afterSeq'),
      limit: optNumber(params, 'limit'),
      agent: optString(params, 'agent'),
      types: optStrings(params, 'types'),
    });
    return { records };
  });

  handle(EventsSubscribeRequest.method, async (p) => {
    const params = object(p);
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
        {
          afterSeq: optNumber(params, 'afterSeq') ?? headSeq,
          agent: optString(params, 'agent'),
          types: optStrings(params, 'types'),
        },
        {
          onRecord: (record) => connection.sendNotification(EventsEventNotification.method, { subscription: id, record }),
          onEnd: (end) => {
            ended = true;
            subscriptions.delete(id);
            void connection
              .sendNotification(EventsEndedNotification.method, {
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

  handle(EventsUnsubscribeRequest.method, async (p) => {
    const id = reqString(object(p), 'subscription');
    const sub = subscriptions.get(id);
    sub?.unsubscribe();
    subscriptions.delete(id);
    return { found: sub !== undefined };
  });

  handle(CapabilityMintRequest.method, async (p) => {
    const params = object(p);
    return host.mint(session(), {
      subject: reqString(params, 'subject'),
      permissions: reqStrings(params, 'permissions'),
      ttlSeconds: optNumber(params, 'ttlSeconds'),
      alg: optEnum(params, 'alg', ['HS256', 'EdDSA'] as const),
      grantExpiresAt: optNumber(params, 'grantExpiresAt'),
      label: optString(params, 'label'),
    });
  });

  handle(CapabilityDelegateRequest.method, async (p) => {
    const params = object(p);
    return host.delegate(session(), {
      subject: reqString(params, 'subject'),
      permissions: reqStrings(params, 'permissions'),
      ttlSeconds: optNumber(params, 'ttlSeconds'),
      alg: optEnum(params, 'alg', ['HS256', 'EdDSA'] as const),
    });
  });

  handle(CapabilityRevokeRequest.method, async (p) => {
    const params = object(p);
    const result = await host.revoke(session(), {
      jti: optString(params, 'jti'),
      token: optString(params, 'token'),
      grant: optString(params, 'grant'),
      reason: optString(params, 'reason'),
    });
    return { seq: result.records[result.records.length - 1].seq };
  });

  handle(CapabilityListRequest.method, async () => ({ grants: await host.listGrants(session()) }));

  handle(HostInfoRequest.method, async (): Promise<HostInfo> => {
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

  handle(LogVerifyRequest.method, async (p: Record<string, unknown>, token) => {
    const params = object(p);
    const workDone = params.workDoneToken;
    const progressToken = typeof workDone === 'string' || typeof workDone === 'number' ? workDone : undefined;
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
      for (const sub of subscriptions.values()) sub.unsubscribe();
      subscriptions.clear();
      for (const d of disposables) d.dispose();
    },
  };
}

// ---- param decoding: wrong shapes are InvalidParams naming the field ------------------------------------

function invalid(field: string, expected: string): HostError {
  return new HostError('InvalidParams', `${field} must be ${expected}`, { field });
}

function object(p: unknown): Record<string, unknown> {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw invalid('params', 'an object');
  return p as Record<string, unknown>;
}

function optString(p: Record<string, unknown>, field: string): string | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(field, 'a string');
  return v;
}

function reqString(p: Record<string, unknown>, field: string): string {
  const v = optString(p, field);
  if (v === undefined) throw invalid(field, 'a string');
  return v;
}

function optNumber(p: Record<string, unknown>, field: string): number | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(field, 'a number');
  return v;
}

function optBoolean(p: Record<string, unknown>, field: string): boolean | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(field, 'a boolean');
  return v;
}

function optStrings(p: Record<string, unknown>, field: string): string[] | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > 100 || !v.every((s) => typeof s === 'string')) throw invalid(field, 'an array of ≤ 100 strings');
  return v as string[];
}

function reqStrings(p: Record<string, unknown>, field: string): string[] {
  const v = optStrings(p, field);
  if (v === undefined) throw invalid(field, 'an array of strings');
  return v;
}

function optEnum<T extends string>(p: Record<string, unknown>, field: string, values: readonly T[]): T | undefined {
  const v = optString(p, field);
  if (v !== undefined && !values.includes(v as T)) throw invalid(field, `one of ${values.join(', ')}`);
  return v as T | undefined;
}
