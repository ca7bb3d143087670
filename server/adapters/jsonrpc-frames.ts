/** What the JSON-RPC readers of the stdio face and the WebSocket face share. */

/** Why a parsed JSON value is not a JSON-RPC 2.0 message, with the id to answer with; null when it is one. */
export interface InvalidMessage {
  id: string | number | null;
  reason: string;
}

/**
 * Check one parsed JSON value against JSON-RPC 2.0: an object with `jsonrpc: "2.0"` that is a request or
 * notification (string `method`; `id`, when present, a string or a number; `params`, when present, an object
 * or an array) or a response (a string or number `id` and exactly one of `result` and an `error` object with
 * a numeric `code` and a string `message`). Batches are not supported.
 */
export function invalidJsonRpcMessage(message: unknown): InvalidMessage | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return { id: null, reason: Array.isArray(message) ? 'batches are not supported' : 'a JSON-RPC message must be an object' };
  }
  const m = message as Record<string, unknown>;
  const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  if (m.jsonrpc !== '2.0') return { id, reason: 'jsonrpc must be "2.0"' };
  if ('method' in m) {
    if (typeof m.method !== 'string') return { id, reason: 'method must be a string' };
    if ('id' in m && id === null) return { id, reason: 'id must be a string or a number' };
    if ('params' in m && (typeof m.params !== 'object' || m.params === null)) return { id, reason: 'params must be an object or an array' };
    return null;
  }
  if (!('result' in m) && !('error' in m)) return { id, reason: 'neither a request, a notification nor a response' };
  if (id === null) return { id, reason: 'a response id must be a string or a number' };
  if ('result' in m && 'error' in m) return { id, reason: 'a response has either result or error, not both' };
  if ('error' in m) {
    const e = m.error;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return { id, reason: 'error must be an object' };
    const { code, message: text } = e as Record<string, unknown>;
    if (typeof code !== 'number' || !Number.isInteger(code) || typeof text !== 'string') {
      return { id, reason: 'error must have an integer code and a string message' };
    }
  }
  return null;
}
