/** `toka/state/*`: reading the world state of the caller's vault (requires `state:read`). */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { AgentRecord, AgentStatus, TaskRecord } from '../kernel.js';
import type { MessageDirection } from './common.js';

export interface StateQuery {
  /** Only this agent id. */
  agent?: string;
  /** Only children of this agent id. */
  parent?: string;
  /** Only agents with this status. */
  status?: AgentStatus;
  /** Include each agent's queued tasks. */
  includeTasks?: boolean;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Page size, an integer 1..500 (default 100). */
  limit?: number;
}

export interface AgentView extends AgentRecord {
  /** Number of queued tasks. */
  queuedTasks: number;
  /** Number of observations emitted. */
  observations: number;
  /** The queued tasks, oldest first (only with `includeTasks`). */
  tasks?: TaskRecord[];
}

export interface StateResult {
  /**
   * Sequence number of the last event the answer reflects; every event up to it is durable (a read never
   * shows state a crash could lose).
   */
  seq: number;
  /** Agents of the caller's vault, oldest first (creation time, then id). */
  agents: AgentView[];
  /** Present when more agents follow: pass it as `cursor`. */
  nextCursor?: string;
}

/** Read agents and their task queues, filtered and paged. */
export namespace StateGetRequest {
  export const method = 'toka/state/get' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<StateQuery, StateResult, ErrorData>(method);
  export const paramsSchema = z.object({
    agent: z.string().optional(),
    parent: z.string().optional(),
    status: z.enum(['active', 'idle', 'stopped']).optional(),
    includeTasks: z.boolean().optional(),
    cursor: z.string().optional(),
    limit: z.number().int().min(1).max(500).optional(),
  });
}
