/**
 * The one interface the agent loop calls to ask a model for its next turn, whatever the model is.
 *
 * A turn (`LlmTurn`) is plain JSON: the runtime records it as an event, so a run replays without calling
 * the model. Every provider checks the same bounds on the way in (`checkRequest`) and on the way out
 * (`OutputBudget`), and fails with an `LlmError` carrying a stable `code`.
 */

/** A tool the model may call: its name, what it does, and the JSON Schema of its arguments. */
export interface LlmToolSpec {
  name: string;
  description: string;
  /** JSON Schema (an object schema) of the arguments. */
  inputSchema: object;
}

/** A tool call the model asked for. `arguments` is the parsed JSON the model gave (not yet validated). */
export interface LlmToolCall {
  /** Unique within the conversation; tool results name it as `callId`. */
  id: string;
  name: string;
  /**
   * Usually an object. When a provider returned argument text that is not JSON, this is that raw string,
   * so the caller's schema check rejects it and the model sees why (instead of the run failing).
   */
  arguments: unknown;
}

/** One message of the conversation, in the loop's terms (each provider maps it onto its own wire). */
export type LlmMessage =
  | { role: 'user'; text: string }
  | { role: 'assistant'; text: string; toolCalls: LlmToolCall[] }
  | { role: 'tool'; results: { callId: string; content: string; isError: boolean }[] };

export interface LlmRequest {
  system?: string;
  messages: LlmMessage[];
  tools: LlmToolSpec[];
  /** Most tokens the model may produce this turn; default `DEFAULT_MAX_OUTPUT_TOKENS`. */
  maxOutputTokens?: number;
}

/** The model's turn. Plain JSON (recorded as an event; replays without the model). */
export interface LlmTurn {
  text: string;
  toolCalls: LlmToolCall[];
  /** `tool_use` whenever `toolCalls` is non-empty; `max_tokens` when the output was cut at the limit. */
  stop: 'end' | 'tool_use' | 'max_tokens';
  usage: { inputTokens: number; outputTokens: number };
  /** The model that answered, as the provider reported it. */
  model: string;
}

export interface LlmCallOptions {
  /** Aborting cancels the call, including the HTTP request in flight, and rejects with `Cancelled`. */
  signal: AbortSignal;
  /** Streamed text as it arrives. Providers stream when this is given and ask for one reply when not. */
  onText?(delta: string): void;
}

export interface LlmProvider {
  /** `anthropic`, `openai`, `ollama`, `scripted` or `mcp-sampling`. */
  readonly name: string;
  complete(req: LlmRequest, opts: LlmCallOptions): Promise<LlmTurn>;
}

/**
 * Why a call failed:
 * - `RateLimited` the provider said 429 (after our retries); `retryAfterMs` when it said how long to wait.
 * - `Unavailable` network error, 5xx, or overloaded (after our retries); also "no provider configured".
 * - `BadResponse` the reply could not be used: malformed JSON or stream, a stream cut short.
 * - `BadRequest` the provider refused the request itself (4xx other than 401/403/429: unknown model...).
 * - `Unauthenticated` 401/403: missing or wrong key.
 * - `Cancelled` the caller's signal aborted.
 * - `Timeout` one request took longer than the configured timeout (`LLM_TIMEOUT`).
 * - `LimitExceeded` a bound of this module (message names it) — prompt, output, transcript size.
 * - `TranscriptMismatch` the scripted provider's transcript does not match the conversation.
 * - `Misconfigured` the provider could not be built from its configuration (message says which setting).
 * - `SamplingUnavailable` an `mcp-sampling` run has no MCP client to ask: it was not requested from an MCP
 *   session (or the host restarted since), the client did not declare `sampling`, or its session closed.
 */
export type LlmErrorCode =
  | 'RateLimited'
  | 'Unavailable'
  | 'BadResponse'
  | 'BadRequest'
  | 'Unauthenticated'
  | 'Cancelled'
  | 'Timeout'
  | 'LimitExceeded'
  | 'TranscriptMismatch'
  | 'Misconfigured'
  | 'SamplingUnavailable';

export class LlmError extends Error {
  override readonly name = 'LlmError';
  readonly code: LlmErrorCode;
  /** How long the provider asked us to wait before trying again (from `retry-after`), when it said. */
  readonly retryAfterMs?: number;
  constructor(code: LlmErrorCode, message: string, options: { retryAfterMs?: number } = {}) {
    super(message);
    this.code = code;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** Bounds every provider enforces (documented in docs/llm-providers.md). */
export const LIMITS = {
  /** Characters in one piece of prompt: the system prompt, one message's text, one tool result. */
  promptPartChars: 32_768,
  /** Messages in one request. */
  messages: 1_000,
  /** Tools offered in one request. */
  tools: 128,
  /** Characters of one tool's JSON Schema (as JSON). */
  toolSchemaChars: 65_536,
  /** UTF-8 bytes of one turn's output: its text plus the JSON of its tool-call arguments. */
  outputBytes: 1_048_576,
  /** Bytes of one raw HTTP response body (SSE / NDJSON framing included). */
  wireBytes: 8 * 1_048_576,
  /** Largest `maxOutputTokens` a request may ask for. */
  maxOutputTokens: 131_072,
} as const;

export const DEFAULT_MAX_OUTPUT_TOKENS = 4_096;

const TOOL_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

/** Checks a request's shape and bounds; throws `LimitExceeded` (naming the bound) or `BadRequest`. */
export function checkRequest(req: LlmRequest): void {
  const bad = (what: string) => new LlmError('BadRequest', `invalid LLM request: ${what}`);
  const part = (where: string, text: unknown) => {
    if (typeof text !== 'string') throw bad(`${where} must be a string`);
    if (text.length > LIMITS.promptPartChars) {
      throw new LlmError(
        'LimitExceeded',
        `${where} is ${text.length} characters; the prompt limit is ${LIMITS.promptPartChars} per part`,
      );
    }
  };
  if (req === null || typeof req !== 'object') throw bad('not an object');
  if (req.system !== undefined) part('system prompt', req.system);
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw bad('messages must be a non-empty array');
  if (req.messages.length > LIMITS.messages) {
    throw new LlmError('LimitExceeded', `${req.messages.length} messages; the limit is ${LIMITS.messages}`);
  }
  if (!Array.isArray(req.tools)) throw bad('tools must be an array');
  if (req.tools.length > LIMITS.tools) {
    throw new LlmError('LimitExceeded', `${req.tools.length} tools; the limit is ${LIMITS.tools}`);
  }
  const names = new Set<string>();
  for (const [i, tool] of req.tools.entries()) {
    if (tool === null || typeof tool !== 'object' || typeof tool.name !== 'string' || !TOOL_NAME.test(tool.name)) {
      throw bad(`tools[${i}].name must match ${TOOL_NAME}`);
    }
    if (names.has(tool.name)) throw bad(`tool ${tool.name} is offered twice`);
    names.add(tool.name);
    part(`tool ${tool.name} description`, tool.description);
    if (tool.inputSchema === null || typeof tool.inputSchema !== 'object' || Array.isArray(tool.inputSchema)) {
      throw bad(`tool ${tool.name} inputSchema must be an object`);
    }
    const schemaChars = JSON.stringify(tool.inputSchema).length;
    if (schemaChars > LIMITS.toolSchemaChars) {
      throw new LlmError(
        'LimitExceeded',
        `tool ${tool.name} schema is ${schemaChars} characters; the limit is ${LIMITS.toolSchemaChars}`,
      );
    }
  }
  for (const [i, m] of req.messages.entries()) {
    const where = `messages[${i}]`;
    if (m === null || typeof m !== 'object') throw bad(`${where} is not an object`);
    if (m.role === 'user') part(`${where} text`, m.text);
    else if (m.role === 'assistant') {
      part(`${where} text`, m.text);
      if (!Array.isArray(m.toolCalls)) throw bad(`${where}.toolCalls must be an array`);
      for (const [j, call] of m.toolCalls.entries()) {
        if (typeof call?.id !== 'string' || call.id === '' || typeof call.name !== 'string') {
          throw bad(`${where}.toolCalls[${j}] needs a string id and name`);
        }
        part(`${where}.toolCalls[${j}] arguments`, JSON.stringify(call.arguments ?? null));
      }
    } else if (m.role === 'tool') {
      if (!Array.isArray(m.results) || m.results.length === 0) throw bad(`${where}.results must be a non-empty array`);
      for (const [j, r] of m.results.entries()) {
        if (typeof r?.callId !== 'string' || typeof r.isError !== 'boolean') {
          throw bad(`${where}.results[${j}] needs a string callId and a boolean isError`);
        }
        part(`${where}.results[${j}] content`, r.content);
      }
    } else {
      throw bad(`${where}.role must be user, assistant or tool`);
    }
  }
  const max = req.maxOutputTokens;
  if (max !== undefined && (!Number.isInteger(max) || max < 1 || max > LIMITS.maxOutputTokens)) {
    throw bad(`maxOutputTokens must be an integer in 1..${LIMITS.maxOutputTokens}`);
  }
}

/** Counts a turn's output as it arrives and throws `LimitExceeded` once it passes `LIMITS.outputBytes`. */
export class OutputBudget {
  private used = 0;
  add(piece: string): void {
    this.used += Buffer.byteLength(piece, 'utf8');
    if (this.used > LIMITS.outputBytes) {
      throw new LlmError('LimitExceeded', `the model's output passed the response limit of ${LIMITS.outputBytes} bytes`);
    }
  }
}

/** Checks a finished turn against the output limit and returns it as plain JSON. */
export function finishTurn(turn: LlmTurn): LlmTurn {
  const budget = new OutputBudget();
  budget.add(turn.text);
  for (const call of turn.toolCalls) budget.add(JSON.stringify(call.arguments ?? null));
  return JSON.parse(JSON.stringify(turn)) as LlmTurn;
}

/** The stop reason from what the provider said: cut at the limit, else tool use whenever tools were called. */
export function stopOf(cutAtLimit: boolean, toolCalls: readonly LlmToolCall[]): LlmTurn['stop'] {
  if (cutAtLimit) return 'max_tokens';
  return toolCalls.length > 0 ? 'tool_use' : 'end';
}

/** Parses tool-call argument text; text that is not JSON is passed on as the raw string (see LlmToolCall). */
export function parseArguments(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
