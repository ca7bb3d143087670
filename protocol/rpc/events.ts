/** `toka/events/*`: the event log of the caller's vault (requires `events:read`). */
import { NotificationType, RequestType } from 'vscode-jsonrpc';
import type { ErrorData } from '../errors.js';
import type { LogRecord } from '../events.js';
import type { MessageDirection } from './common.js';

export interface EventQuery {
  /** Records with seq > afterSeq (default 0). */
  afterSeq?: number;
  /** 1..1000 (default 100). */
  limit?: number;
  /** Only events about this agent id. */
  agent?: string;
  /** Only these event types. */
  types?: string[];
}

export interface EventQueryResult {
  records: LogRecord[];
}

/** Read a page of log records. */
export namespace EventsQueryRequest {
  export const method = 'toka/events/query' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<EventQuery, EventQueryResult, ErrorData>(method);
}

export interface SubscribeParams {
  /** Deliver records with seq > afterSeq: missed ones first, then live ones; no gap, no duplicate. Default: the current head (live only). */
  afterSeq?: number;
  agent?: string;
  types?: string[];
}

export interface SubscribeResult {
  /** Subscription id, echoed in every `toka/events/event`. */
  subscription: string;
  /** The log head when the subscription was made. */
  headSeq: number;
}

/** Start receiving `toka/events/event` notifications. At most 16 subscriptions per connection. */
export namespace EventsSubscribeRequest {
  export const method = 'toka/events/subscribe' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<SubscribeParams, SubscribeResult, ErrorData>(method);
}

export interface UnsubscribeParams {
  subscription: string;
}

/** Stop a subscription. Unknown ids answer `{ found: false }`. */
export namespace EventsUnsubscribeRequest {
  export const method = 'toka/events/unsubscribe' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<UnsubscribeParams, { found: boolean }, ErrorData>(method);
}

export interface EventNotificationParams {
  subscription: string;
  /** The record, with its sequence number. */
  record: LogRecord;
}

/** One log record for a subscription, in seq order. */
export namespace EventsEventNotification {
  export const method = 'toka/events/event' as const;
  export const messageDirection: MessageDirection = 'serverToClient';
  export const type = new NotificationType<EventNotificationParams>(method);
}

export interface EventsEndedParams {
  subscription: string;
  /**
   * `overflow`: the client fell more than the buffer bound behind — resubscribe with `afterSeq: lastDeliveredSeq`;
   * `unauthenticated`: the token expired or was revoked; `closed`: the host is shutting down.
   */
  reason: 'overflow' | 'unauthenticated' | 'closed';
  lastDeliveredSeq?: number;
}

/** The host ended a subscription. */
export namespace EventsEndedNotification {
  export const method = 'toka/events/ended' as const;
  export const messageDirection: MessageDirection = 'serverToClient';
  export const type = new NotificationType<EventsEndedParams>(method);
}
