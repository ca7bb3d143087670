/**
 * `scripted`: replies from a transcript file instead of a model — deterministic runs for tests and demos.
 *
 * The transcript is one JSON document (format in docs/llm-providers.md):
 *   { "model"?: string, "turns": [ { "expect"?: {...}, "text"?: string, "toolCalls"?: [...],
 *     "stop"?: "end" | "tool_use" | "max_tokens", "usage"?: {...}, "delayMs"?: number } ] }
 * The turn answered is chosen by the conversation itself: the n-th turn answers a request holding n-1
 * assistant messages. So one provider serves any number of conversations, and a replayed request always
 * gets the same turn. A turn's `expect` checks the request first; a mismatch is `TranscriptMismatch`.
 */
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { LlmError, checkRequest, finishTurn, stopOf, type LlmCallOptions, type LlmProvider, type LlmRequest, type LlmTurn } from './provider.js';
import { sleep } from './policy.js';

/** Largest transcript file read. */
export const TRANSCRIPT_MAX_BYTES = 4 * 1_048_576;
/** Longest `delayMs` a turn may ask for. */
export const TRANSCRIPT_MAX_DELAY_MS = 60_000;

const ExpectedResult = z.strictObject({
  callId: z.string().optional(),
  isError: z.boolean().optional(),
  /** The whole content, exactly. */
  content: z.string().optional(),
  /** A substring of the content. */
  contains: z.string().optional(),
});

const Turn = z.strictObject({
  expect: z
    .strictObject({
      /** The request's last message is `tool` with exactly these results, in order. */
      toolResults: z.array(ExpectedResult).optional(),
      /** The request's last message is `user` and its text contains this. */
      userContains: z.string().optional(),
      /** These tools (by name) are offered. */
      toolsOffered: z.array(z.string()).optional(),
    })
    .optional(),
  text: z.string().default(''),
  toolCalls: z
    .array(z.strictObject({ id: z.string().min(1), name: z.string().min(1), arguments: z.unknown().default({}) }))
    .default([]),
  stop: z.enum(['end', 'tool_use', 'max_tokens']).optional(),
  usage: z.strictObject({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() }).optional(),
  /** Wait this long before answering (cancellable), to exercise timeouts and cancellation. */
  delayMs: z.number().int().min(0).max(TRANSCRIPT_MAX_DELAY_MS).optional(),
});

const Transcript = z.strictObject({
  model: z.string().default('scripted'),
  turns: z.array(Turn).min(1),
});

export type ScriptedTranscript = z.input<typeof Transcript>;
type ParsedTurn = z.output<typeof Turn>;

/** Reads and validates a transcript file; errors name the file and the path of the bad field. */
export async function loadTranscript(path: string): Promise<z.output<typeof Transcript>> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new LlmError('Misconfigured', `scripted: cannot read transcript ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (size > TRANSCRIPT_MAX_BYTES) {
    throw new LlmError('LimitExceeded', `scripted: transcript ${path} is ${size} bytes; the limit is ${TRANSCRIPT_MAX_BYTES}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new LlmError('Misconfigured', `scripted: transcript ${path} is not JSON: ${(err as Error).message}`);
  }
  return parseTranscript(doc, path);
}

export function parseTranscript(doc: unknown, source = 'transcript'): z.output<typeof Transcript> {
  const parsed = Transcript.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new LlmError('Misconfigured', `scripted: ${source}: ${at}: ${issue.message}`);
  }
  return parsed.data;
}

export function scriptedProvider(transcript: z.output<typeof Transcript>, source = 'transcript'): LlmProvider {
  return {
    name: 'scripted',
    async complete(req: LlmRequest, opts: LlmCallOptions): Promise<LlmTurn> {
      checkRequest(req);
      if (opts.signal.aborted) throw new LlmError('Cancelled', 'the LLM call was cancelled');
      const index = req.messages.filter((m) => m.role === 'assistant').length;
      const turn = transcript.turns[index];
      if (!turn) {
        throw new LlmError('TranscriptMismatch', `scripted: ${source} has ${transcript.turns.length} turns; turn ${index + 1} was asked for`);
      }
      checkExpectations(turn, index, req, source);
      if (turn.delayMs) await sleep(turn.delayMs, opts.signal);
      if (turn.text !== '') opts.onText?.(turn.text);
      const toolCalls = turn.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
      return finishTurn({
        text: turn.text,
        toolCalls,
        stop: turn.stop ?? stopOf(false, toolCalls),
        usage: turn.usage ?? { inputTokens: 0, outputTokens: 0 },
        model: transcript.model,
      });
    },
  };
}

function checkExpectations(turn: ParsedTurn, index: number, req: LlmRequest, source: string): void {
  const expect = turn.expect;
  if (!expect) return;
  const fail = (what: string) => new LlmError('TranscriptMismatch', `scripted: ${source} turn ${index + 1}: ${what}`);
  const last = req.messages[req.messages.length - 1];
  if (expect.userContains !== undefined) {
    if (last.role !== 'user') throw fail(`expected a user message last, got ${last.role}`);
    if (!last.text.includes(expect.userContains)) throw fail(`the user message does not contain ${JSON.stringify(expect.userContains)}`);
  }
  if (expect.toolsOffered !== undefined) {
    const offered = new Set(req.tools.map((t) => t.name));
    const missing = expect.toolsOffered.filter((name) => !offered.has(name));
    if (missing.length > 0) throw fail(`tools not offered: ${missing.join(', ')}`);
  }
  if (expect.toolResults !== undefined) {
    if (last.role !== 'tool') throw fail(`expected tool results last, got a ${last.role} message`);
    if (last.results.length !== expect.toolResults.length) {
      throw fail(`expected ${expect.toolResults.length} tool results, got ${last.results.length}`);
    }
    expect.toolResults.forEach((want, i) => {
      const got = last.results[i];
      const at = `tool result ${i + 1}`;
      if (want.callId !== undefined && got.callId !== want.callId) throw fail(`${at}: callId ${got.callId}, expected ${want.callId}`);
      if (want.isError !== undefined && got.isError !== want.isError) throw fail(`${at}: isError ${got.isError}, expected ${want.isError}`);
      if (want.content !== undefined && got.content !== want.content) {
        throw fail(`${at}: content ${JSON.stringify(got.content.slice(0, 200))}, expected ${JSON.stringify(want.content.slice(0, 200))}`);
      }
      if (want.contains !== undefined && !got.content.includes(want.contains)) {
        throw fail(`${at}: content ${JSON.stringify(got.content.slice(0, 200))} does not contain ${JSON.stringify(want.contains)}`);
      }
    });
  }
}
