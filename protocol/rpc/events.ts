/** `toka/events/*`: the event log of the caller's vault (requires `events:read`). */
import { NotificationType, RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { LogRecord } from '../events.js';
import type { MessageDirection } from './common.js';

/** Bounds on the filter of an event query or subscription. */
export const EVENT_FILTER_LIMITS = {
  /** Longest `agent` id, in characters. */
  agentChars: 256,
  /** Most entries in `types`. */
  types: 32,
  /** Longest event type name in `types`, in characters. */
  typeChars: 256,
} as const;

const agentFilter = z.string().min(1).max(EVENT_FILTER_LIMITS.agentChars).optional();
const typesFilter = z.array(z.string().min(1).max(EVENT_FILTER_LIMITS.typeChars)).max(EVENT_FILTER_LIMITS.types).optional();
const afterSeq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();

export interface EventQuery {
  /** Records with seq > afterSeq: an integer ≥ 0 (default 0). */
  afterSeq?: number;
  /** Page size, an integer 1..1000 (default 100). */
  limit?: number;
  /** Only events about this agent id (1..256 characters). */
  agent?: string;
  /** Only these event types (at most 32 names of 1..256 characters). */
  types?: string[];
}

export interface EventQueryResult {
  /** The matching records, in seq order. */
  records: LogRecord[];
}

/** Read a page of log records. */
export namespace EventsQueryRequest {
  export const method = 'toka/events/query' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<EventQuery, EventQueryResult, ErrorData>(method);
  export const paramsSchema = z.object({
    afterSeq,
    limit: z.number().int().min(1).max(1000).optional(),
    agent: agentFilter,
    types: typesFilter,
  });
}

export interface SubscribeParams {
  /**
   * Deliver records with seq > afterSeq (an integer ≥ 0): missed ones first, then live ones; no gap, no
   * duplicate. Default: the current head (live only).
   */
  afterSeq?: number;
  /** Only events about this agent id (1..256 characters). */
  agent?: string;
  /** Only these event types (at most 32 names of 1..256 characters). */
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
  export const paramsSchema = z.object({ afterSeq, agent: agentFilter, types: typesFilter });
}

export interface UnsubscribeParams {
  /** The id `toka/events/subscribe` returned. */
  subscription: string;
}

export interface UnsubscribeResult {
  /** False when no subscription of this connection has that id (already ended, or never made). */
  found: boolean;
}

/** Stop a subscription. Unknown ids answer `{ found: false }`. */
export namespace EventsUnsubscribeRequest {
  export const method = 'toka/events/unsubscribe' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<UnsubscribeParams, UnsubscribeResult, ErrorData>(method);
  export const paramsSchema = z.object({ subscription: z.string() });
}

export interface EventNotificationParams {
  /** The subscription the record is delivered for. */
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
  /** The subscription that ended. */
  subscription: string;
  /**
   * `overflow`: the client fell more than the buffer bound behind — resubscribe with `afterSeq: lastDeliveredSeq`;
   * `error`: delivering a record failed (e.g. the connection could not take it) — resubscribe the same way;
   * `unauthenticated`: the token expired or was revoked; `closed`: the host is shutting down.
   */
  reason: 'overflow' | 'error' | 'unauthenticated' | 'closed';
  /** Seq of the last record delivered before the end (with `overflow` and `error`). */
  lastDeliveredSeq?: number;
}

/** The host ended a subscription. */
export namespace EventsEndedNotification {
  export const method = 'toka/events/ended' as const;
  export const messageDirection: MessageDirection = 'serverToClient';
  export const type = new NotificationType<EventsEndedParams>(method);
}
