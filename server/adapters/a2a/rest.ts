/**
 * The A2A HTTP+JSON (REST) binding at `/a2a/rest` (A2A v1.0 §11). It only translates: a route (verb, path,
 * query, body) becomes one A2A method and its params, which go through the same JSON-RPC transport handler
 * and the same request handler as `/a2a/jsonrpc` (handler.ts), so both bindings give the same answers; the
 * result is the method's JSON (`{"task": …}` for SendMessage, the Task, the ListTasksResponse, …) and an error
 * is the spec's `google.rpc.Status` body with its HTTP status: A2A errors carry an ErrorInfo of domain
 * `a2a-protocol.org` (TaskNotFound 404, the others 400), Toka's refusals one of domain `toka.dev` (401, 403,
 * 413, 429, 503). Streams are Server-Sent Events whose `data` is a StreamResponse and whose `id` is the log
 * position; `:subscribe` with `Last-Event-ID` resumes after it. See docs/a2a.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TaskState } from '@a2a-js/sdk';
import {
  A2AError,
  ContentTypeNotSupportedError,
  ERROR_INFO_TYPE,
  fromJsonRpcErrorResponse,
  JsonRpcTransportError,
  RequestMalformedError,
  restStatusFor,
  toRestErrorBody,
  VersionNotSupportedError,
} from '@a2a-js/sdk/errors';
import { ServerCallContext, type JsonRpcTransportHandler } from '@a2a-js/sdk/server';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import type { Logger } from '../../host/logger.js';
import { BodyTooLarge, bearerToken, httpStatusOf, readBody, sendJson } from '../http-request.js';
import { A2A_VERSION, REST_PATH } from './card.js';
import { A2A_LIMITS, Hangup, STATE, TokaUser } from './handler.js';
import { refusalHeaders } from './refusal.js';
import { writeSse } from './sse.js';
import { eventId, parseEventId, type UpdatePosition } from './tasks.js';

/** The ErrorInfo domain of Toka's own refusals (auth, bounds, rate limits). */
export const TOKA_ERROR_DOMAIN = 'toka.dev';
const A2A_JSON = 'application/a2a+json';

export interface RestBindingOptions {
  host: Host;
  /** The JSON-RPC transport handler over Toka's request handler (the one `/a2a/jsonrpc` uses). */
  jsonrpc: JsonRpcTransportHandler;
  logger: Logger;
  /** Every open stream of the face (shared with the other bindings), for its bound and for shutdown. */
  streams: Set<Hangup>;
  maxStreams: number;
  keepAliveMs: number;
}

/** One A2A method call a route stands for. */
interface Call {
  method: string;
  params: Record<string, unknown>;
}

type Query = URLSearchParams;
type Body = Record<string, unknown>;

/** A route: the verbs it answers and, per verb, the call it makes of the path, query and body. */
interface Route {
  verbs: Partial<Record<'GET' | 'POST' | 'DELETE', (query: Query, body: Body) => Call>>;
}

/** The error answer of the binding: the HTTP status, the `{"error": google.rpc.Status}` body, extra headers. */
export interface RestError {
  status: number;
  body: { error: { code: number; status: string; message: string; details: unknown[] } };
  headers: Record<string, string>;
}

export function restBinding(options: RestBindingOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { host, jsonrpc, logger, streams, maxStreams, keepAliveMs } = options;

  /** Answer with the binding's error body. */
  const fail = (res: ServerResponse, e: RestError): void => sendJson(res, e.status, e.body, { 'content-type': A2A_JSON, ...e.headers });

  /** The error answer for anything a method threw (or its JSON-RPC error turned back into the A2A error). */
  const errorOf = (err: unknown, context?: ServerCallContext): RestError => {
    const refusal = context?.state.get(STATE.refusal) as HostError | undefined;
    if (refusal ?? err instanceof HostError) return tokaError((refusal ?? err) as HostError, logger);
    if (err instanceof A2AError && !(err instanceof JsonRpcTransportError)) {
      const status = restStatusFor(err);
      return { status, body: toRestErrorBody(err, status) as RestError['body'], headers: {} };
    }
    logger.error('a2a rest request failed', { err });
    return internalError();
  };

  /** The caller's session, or the refusal (401 unless the host refused otherwise: rate limit, unavailable). */
  async function authenticate(req: IncomingMessage): Promise<{ session: Session } | { refused: RestError }> {
    const token = bearerToken(req.headers.authorization);
    if (token === null) return { refused: tokaError(new HostError('Unauthenticated', 'a Bearer capability token is required', { reason: 'ERR_TOKEN_MISSING' }), logger) };
    try {
      return { session: await host.authenticate(token) };
    } catch (err) {
      const e = HostError.from(err);
      const kept = ['Unauthenticated', 'CapabilityDenied', 'RateLimited', 'Unavailable', 'InternalError'].includes(e.errorName);
      return { refused: tokaError(kept ? e : new HostError('Unauthenticated', e.message, e.details), logger) };
    }
  }

  return async (req, res) => {
    // The raw path (as the prefix router saw it, no dot-segment folding); segments are decoded one by one.
    const [path, search = ''] = (req.url ?? '/').split(/\?(.*)/s, 2);
    const query = new URLSearchParams(search);
    const verb = req.method ?? '';
    const route = routeOf(path.slice(REST_PATH.length));
    if (route instanceof RequestMalformedError) {
      req.resume();
      return fail(res, errorOf(route));
    }
    if (route === null) {
      req.resume();
      return fail(res, plainError(404, 'NOT_FOUND', `no HTTP+JSON route at ${path.slice(0, 200)}`));
    }
    const build = Object.hasOwn(route.verbs, verb) ? route.verbs[verb as keyof Route['verbs']] : undefined;
    if (!build) {
      req.resume();
      const allow = Object.keys(route.verbs).join(', ');
      return fail(res, { ...plainError(405, 'UNIMPLEMENTED', `${verb.slice(0, 16)} is not allowed on ${path.slice(0, 200)} (allowed: ${allow})`), headers: { allow } });
    }
    const auth = await authenticate(req);
    if ('refused' in auth) {
      req.resume();
      return fail(res, auth.refused);
    }
    const { session } = auth;
    const version = headerOf(req, 'a2a-version');
    if (version !== A2A_VERSION) {
      req.resume();
      return fail(
        res,
        errorOf(
          new VersionNotSupportedError(
            version === undefined ? `send the A2A-Version: ${A2A_VERSION} header (without it a request means 0.3)` : `A2A-Version ${version.slice(0, 32)} is not supported; use ${A2A_VERSION}`,
          ),
        ),
      );
    }
    const type = req.headers['content-type']?.split(';')[0].trim().toLowerCase();
    if (type !== undefined && type !== '' && type !== 'application/json' && type !== A2A_JSON) {
      req.resume();
      return fail(res, errorOf(new ContentTypeNotSupportedError(`Content-Type ${type.slice(0, 64)} is not supported: send application/json or ${A2A_JSON}`)));
    }
    let body: Body = {};
    if (verb === 'POST') {
      let text: string;
      try {
        text = await readBody(req, A2A_LIMITS.maxBodyBytes);
      } catch (err) {
        if (!(err instanceof BodyTooLarge)) throw err;
        const tooLarge = tokaError(
          new HostError('LimitExceeded', `body exceeds ${A2A_LIMITS.maxBodyBytes} bytes`, { limit: 'a2a.maxBodyBytes', max: A2A_LIMITS.maxBodyBytes }),
          logger,
        );
        return fail(res, { ...tooLarge, headers: { connection: 'close' } });
      }
      if (text.trim() !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return fail(res, errorOf(new RequestMalformedError('the body is not valid JSON')));
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail(res, errorOf(new RequestMalformedError('the body must be a JSON object')));
        body = parsed as Body;
      }
    } else {
      req.resume();
    }
    let call: Call;
    try {
      call = build(query, body);
    } catch (err) {
      return fail(res, errorOf(err));
    }

    const hangup = Hangup.of(res);
    const state = new Map<string, unknown>([[STATE.hangup, hangup]]);
    const lastEventId = headerOf(req, 'last-event-id');
    if (lastEventId !== undefined && call.method === 'SubscribeToTask') {
      const position = parseEventId(lastEventId);
      if (!position) return fail(res, errorOf(new RequestMalformedError('Last-Event-ID is not an event id of this host')));
      state.set(STATE.resumeAfter, position satisfies UpdatePosition);
    }
    const context = new ServerCallContext({ user: new TokaUser(session), requestedVersion: version, state });
    const answer = await jsonrpc.handle({ jsonrpc: '2.0', id: 0, method: call.method, params: call.params }, context);

    if (!(Symbol.asyncIterator in answer)) {
      // errorOf prefers the host refusal the handler left in the context over the JSON-RPC error.
      if (answer.error) return fail(res, errorOf(fromJsonRpcErrorResponse({ jsonrpc: '2.0', id: null, error: answer.error as { code: number; message: string } }), context));
      return sendJson(res, 200, answer.result, { 'content-type': A2A_JSON });
    }
    if (streams.size >= maxStreams) {
      await answer.return(undefined);
      const busy = tokaError(new HostError('Unavailable', `${maxStreams} streams are open; try again later`, { limit: 'a2a.maxStreams', max: maxStreams }), logger);
      return fail(res, { ...busy, headers: { 'retry-after': '1' } });
    }
    streams.add(hangup);
    try {
      await writeSse(res, answer, {
        keepAliveMs,
        hangup,
        eventId: () => eventId(context.state.get(STATE.position) as UpdatePosition),
        data: (update) => JSON.stringify(update.result),
        errorEvent: (err) => `event: error\ndata: ${JSON.stringify(errorOf(err, context).body)}\n\n`,
        refuse: (err) => fail(res, errorOf(err, context)),
      });
    } finally {
      streams.delete(hangup);
    }
  };
}

// ---- routes --------------------------------------------------------------------------------------------

/**
 * The route of a path under `/a2a/rest` (A2A v1.0 §11.3), null when there is none, or RequestMalformed for a
 * path segment that does not decode.
 */
function routeOf(path: string): Route | null | RequestMalformedError {
  if (path === '/extendedAgentCard') return { verbs: { GET: (q) => call('GetExtendedAgentCard', only(q, [])) } };
  if (path === '/message:send') return { verbs: { POST: (q, b) => call('SendMessage', { ...only(q, []), ...b }) } };
  if (path === '/message:stream') return { verbs: { POST: (q, b) => call('SendStreamingMessage', { ...only(q, []), ...b }) } };
  if (path === '/tasks') return { verbs: { GET: (q) => call('ListTasks', listParams(q)) } };
  const segments = path.split('/');
  if (segments[0] !== '' || segments[1] !== 'tasks' || segments.length < 3 || segments.length > 5) return null;
  let decoded: string[];
  try {
    decoded = segments.slice(2).map((s) => decodeURIComponent(s));
  } catch {
    return new RequestMalformedError('a path segment is not valid percent-encoding');
  }
  if (decoded.some((s) => s === '')) return null;
  if (segments.length === 3) {
    const [task] = decoded;
    const action = /^(.*):(cancel|subscribe)$/s.exec(task);
    if (action?.[2] === 'cancel') return { verbs: { POST: (q, b) => call('CancelTask', { ...only(q, []), ...b, id: action[1] }) } };
    if (action?.[2] === 'subscribe') {
      const subscribe = (q: Query) => call('SubscribeToTask', { ...only(q, []), id: action[1] });
      return { verbs: { GET: subscribe, POST: subscribe } };
    }
    return { verbs: { GET: (q) => call('GetTask', { ...only(q, ['historyLength']), id: task }) } };
  }
  if (decoded[1] !== 'pushNotificationConfigs') return null;
  const [taskId, , configId] = decoded;
  if (configId === undefined) {
    return {
      verbs: {
        POST: (q, b) => call('CreateTaskPushNotificationConfig', { ...only(q, []), ...b, taskId }),
        GET: (q) => call('ListTaskPushNotificationConfigs', { ...only(q, ['pageSize', 'pageToken']), taskId }),
      },
    };
  }
  return {
    verbs: {
      GET: (q) => call('GetTaskPushNotificationConfig', { ...only(q, []), taskId, id: configId }),
      DELETE: (q) => call('DeleteTaskPushNotificationConfig', { ...only(q, []), taskId, id: configId }),
    },
  };
}

function call(method: string, params: Record<string, unknown>): Call {
  return { method, params };
}

/** The ListTasks params of a query (§11.5: camelCase names, numbers and booleans as strings, the state's enum name). */
function listParams(q: Query): Record<string, unknown> {
  const params = only(q, ['contextId', 'status', 'pageSize', 'pageToken', 'historyLength', 'statusTimestampAfter', 'includeArtifacts']);
  const status = params.status;
  if (typeof status === 'string') params.status = stateName(status);
  const include = params.includeArtifacts;
  if (include !== undefined) {
    if (include !== 'true' && include !== 'false') throw new RequestMalformedError('includeArtifacts must be true or false');
    params.includeArtifacts = include === 'true';
  }
  return params;
}

/** `TASK_STATE_WORKING`, or the short form `working` / `input-required`, as the enum name. */
function stateName(value: string): string {
  const name = value.startsWith('TASK_STATE_') ? value : `TASK_STATE_${value.toUpperCase().replace(/-/g, '_')}`;
  if (!/^TASK_STATE_[A-Z_]{1,32}$/.test(name) || typeof (TaskState as unknown as Record<string, unknown>)[name] !== 'number') {
    throw new RequestMalformedError(`status ${JSON.stringify(value.slice(0, 40))} is not a task state (e.g. TASK_STATE_WORKING or working)`);
  }
  return name;
}

/**
 * The query's parameters, each at most once and all of them among `allowed` (plus `tenant`, which must be
 * empty: this host has no tenants); integer ones (`pageSize`, `historyLength`) as numbers.
 */
function only(q: Query, allowed: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(q.keys())) {
    const values = q.getAll(key);
    if (values.length > 1) throw new RequestMalformedError(`query parameter ${key.slice(0, 40)} is given ${values.length} times`);
    const [value] = values;
    if (key === 'tenant') {
      if (value !== '') throw new RequestMalformedError('this host has no tenants: leave tenant empty');
      continue;
    }
    if (!allowed.includes(key)) {
      throw new RequestMalformedError(`unknown query parameter ${JSON.stringify(key.slice(0, 40))}${allowed.length ? ` (known: ${allowed.join(', ')})` : ''}`);
    }
    if (key === 'pageSize' || key === 'historyLength') {
      if (!/^\d{1,9}$/.test(value)) throw new RequestMalformedError(`${key} must be a non-negative integer`);
      out[key] = Number(value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

// ---- errors --------------------------------------------------------------------------------------------

/** The gRPC status name of an HTTP status (AIP-193), for the `status` field. */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'RESOURCE_EXHAUSTED',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/**
 * A Toka refusal as the binding's error: its HTTP status, and an ErrorInfo whose reason is the error name
 * (UPPER_SNAKE_CASE), domain `toka.dev`, metadata its details as strings. Internal errors say no more than that.
 */
export function tokaError(e: HostError, logger: Logger): RestError {
  if (e.errorName === 'InternalError') {
    logger.error('a2a rest request failed', { message: e.message });
    return internalError();
  }
  const status = httpStatusOf(e);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(e.details)) metadata[key] = typeof value === 'string' ? value : JSON.stringify(value);
  const reason = e.errorName.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return {
    status,
    body: { error: { code: status, status: STATUS_NAMES[status] ?? 'UNKNOWN', message: e.message, details: [{ '@type': ERROR_INFO_TYPE, reason, domain: TOKA_ERROR_DOMAIN, metadata }] } },
    headers: refusalHeaders(e),
  };
}

function plainError(status: number, name: string, message: string): RestError {
  return { status, body: { error: { code: status, status: name, message, details: [] } }, headers: {} };
}

function internalError(): RestError {
  return plainError(500, 'INTERNAL', 'internal error');
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
