/**
 * What the A2A face's interop tests share: the agent spec they publish, the permissions of their user, the SDK
 * client's authenticated fetch, a SendMessage request, reading a task, and an SSE reader for raw streams.
 */
import assert from 'node:assert/strict';
import { SendMessageRequest, TaskState, type StreamResponse, type Task } from '@a2a-js/sdk';

/** The spec of an agent `name` published over A2A. */
export const a2aSpec = (name: string) => `
metadata:
  name: ${name}
  version: v0.1.0
  created: "2026-11-20"
  workstream: A2A Tests
spec:
  name: ${name} agent
  domain: testing
  priority: medium
capabilities:
  primary: [answer-${name}]
objectives:
  - description: Answer what ${name} is asked
    deliverable: a reply to the caller
    validation: The reply is there
tasks:
  default:
    - description: Answer the question it gets
      priority: low
dependencies:
  required: []
security:
  sandbox: true
  capabilities_required: [filesystem-read, filesystem-write, git-access]
  resource_limits: {max_memory: 256MB, max_cpu: 50%, timeout: 10m}
`;

/** The permissions the tests' user holds. */
export const A2A_USER = ['agent:spawn', 'capability:grant', 'task:run', 'task:schedule', 'task:cancel', 'task:approve', 'state:read', 'events:read', 'tool:fs-read', 'tool:fs-write', 'tool:shell'];

/** `fetch` with the bearer `token` on every request (the SDK client's `fetchImpl`). */
export function authFetch(token: string): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
}

/** A SendMessage request of `text` (or a data part), optionally to a skill or continuing a task. */
export function sendRequest(text: string, options: { skill?: string; taskId?: string; returnImmediately?: boolean; data?: unknown } = {}): SendMessageRequest {
  return SendMessageRequest.fromJSON({
    message: {
      messageId: `m-${Math.random().toString(36).slice(2)}`,
      role: 'ROLE_USER',
      parts: options.data !== undefined ? [{ data: options.data }] : [{ text }],
      ...(options.taskId ? { taskId: options.taskId } : {}),
      ...(options.skill ? { metadata: { skill: options.skill } } : {}),
    },
    ...(options.returnImmediately ? { configuration: { returnImmediately: true } } : {}),
  });
}

/** `result` as a task (asserted). */
export function asTask(result: unknown): Task {
  assert.ok(result && typeof result === 'object' && 'status' in result, `expected a task, got ${JSON.stringify(result)}`);
  return result as Task;
}

/** The text of every part of the task's history, data parts as JSON. */
export function textOf(task: Task): string[] {
  return task.history.flatMap((m) => m.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : JSON.stringify(p.content?.value))));
}

/**
 * What a stream of StreamResponses says: the kind of each (`task`, `artifactUpdate`, `status:<state name>`, ...)
 * and the parts' values of every status update's message, in order.
 */
export function streamSummary(events: StreamResponse[]): { kinds: (string | undefined)[]; said: unknown[] } {
  const kinds = events.map((e) => (e.payload?.$case === 'statusUpdate' ? `status:${TaskState[e.payload.value.status!.state]}` : e.payload?.$case));
  const said = events.flatMap((e) => (e.payload?.$case === 'statusUpdate' ? (e.payload.value.status?.message?.parts ?? []).map((p) => p.content?.value) : []));
  return { kinds, said };
}

/** The events of an SSE response, read until it ends or `stop` says so. */
export async function readSse(res: Response, stop: (events: SseEvent[]) => boolean = () => false): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: SseEvent = { data: undefined };
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) event.id = line.slice(4);
        if (line.startsWith('event: ')) event.event = line.slice(7);
        if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6));
      }
      if (event.data !== undefined) events.push(event);
    }
    if (stop(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: any;
}
