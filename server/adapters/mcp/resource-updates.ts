/**
 * `resources/subscribe` and `resources/unsubscribe` for one session: one host subscription per session,
 * shared by every subscribed URI and opened only while some subscribed resource has updates; each log record
 * that touches a subscribed URI becomes `notifications/resources/updated`.
 */
import { McpError, SubscribeRequestParamsSchema, UnsubscribeRequestParamsSchema } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../../../protocol/errors.js';
import type { LogRecord } from '../../../protocol/events.js';
import type { Subscription } from '../../store/event-log.js';
import { mcpError, resourceNotFound } from './errors.js';
import type { McpRegistry } from './registry.js';
import type { SessionScope } from './scope.js';

/**
 * Resolve `uri` once, at subscribe time: what tells whether a record touches it, null when the resource has
 * no updates, undefined when no resource or template serves it.
 */
export function resourceUpdateTest(registry: McpRegistry, uri: string): ((record: LogRecord) => boolean) | null | undefined {
  const fixed = registry.resource(uri);
  if (fixed) return fixed.touchedBy ? (record) => fixed.touchedBy?.(record) ?? false : null;
  const match = registry.matchTemplate(uri);
  if (!match) return undefined;
  const { spec } = match.entry;
  return spec.touchedBy ? (record) => spec.touchedBy?.(record, match.vars) ?? false : null;
}

export interface ResourceUpdates {
  /** End every subscription of the session (the host subscription included). */
  close(): void;
}

export function registerResourceUpdates(scope: SessionScope, maxSubscriptions: number): ResourceUpdates {
  const { server, dispatcher, registry, host, session } = scope;
  /** Subscribed URIs, each with what tells whether a record touches it (null: the resource has no updates). */
  const subscribed = new Map<string, ((record: LogRecord) => boolean) | null>();
  let hostSub: Promise<Subscription> | null = null;

  const touchedBy = (uri: string) => resourceUpdateTest(registry, uri);

  /** The host subscription for resource updates, opened once for the session (a promise: concurrent subscribes share it). */
  const openHostSub = (): Promise<Subscription> => {
    const opened: Promise<Subscription> = host.subscribe(
      session,
      { afterSeq: host.health().seq },
      {
        onRecord: async (record) => {
          for (const [u, touches] of subscribed) {
            if (touches?.(record)) await server.sendResourceUpdated({ uri: u }).catch(() => undefined);
          }
        },
        onEnd: (end) => {
          if (hostSub === opened) hostSub = null;
          if (!scope.closed) {
            void server
              .sendLoggingMessage({ level: 'warning', logger: 'toka', data: `resource updates ended: ${end.reason}` })
              .catch(() => undefined);
          }
        },
      },
    );
    // A refused subscribe leaves nothing open: the next resources/subscribe asks the host again.
    opened.catch(() => {
      if (hostSub === opened) hostSub = null;
    });
    return opened;
  };
  /** Stop resource updates: the host subscription is ended once it has opened (or at once if it has). */
  const dropHostSub = (): void => {
    const sub = hostSub;
    hostSub = null;
    void sub?.then((s) => s.unsubscribe(), () => undefined);
  };

  const subscriptionLimit = (uri: string): void => {
    if (!subscribed.has(uri) && subscribed.size >= maxSubscriptions) {
      throw new McpError(ErrorCodes.LimitExceeded, `more than ${maxSubscriptions} resource subscriptions`, {
        name: 'LimitExceeded',
        limit: 'mcp.maxSubscriptions',
        max: maxSubscriptions,
      });
    }
  };

  dispatcher.handle('resources/subscribe', SubscribeRequestParamsSchema, async (params) => {
    const uri = params.uri;
    const touched = touchedBy(uri);
    if (touched === undefined) throw resourceNotFound(uri);
    await scope.check();
    subscriptionLimit(uri);
    // Until the host subscription this request awaited is still the session's once it resolves: an
    // unsubscribe of the last watched URI, or the end of updates, may have dropped it meanwhile.
    for (let sub = hostSub; touched && !scope.closed; sub = hostSub) {
      const awaited = sub ?? (hostSub = openHostSub());
      try {
        await awaited;
      } catch (err) {
        throw mcpError(err);
      }
      if (hostSub === awaited) break;
    }
    if (scope.closed) return {};
    subscriptionLimit(uri);
    subscribed.set(uri, touched);
    return {};
  });

  dispatcher.handle('resources/unsubscribe', UnsubscribeRequestParamsSchema, async (params) => {
    subscribed.delete(params.uri);
    if (hostSub && ![...subscribed.values()].some(Boolean)) dropHostSub();
    return {};
  });

  return {
    close() {
      dropHostSub();
      subscribed.clear();
    },
  };
}
