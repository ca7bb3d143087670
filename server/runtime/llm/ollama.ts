/**
 * `ollama` (also `local`, the original Toka's name): a local model server through the `ollama` npm client
 * (`/api/chat` with tools; NDJSON streaming when the caller wants text as it arrives).
 */
import { Ollama, type ChatResponse, type Message } from 'ollama';
import { Policy, boundedFetch, httpError, type PolicyOptions } from './policy.js';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  LlmError,
  OutputBudget,
  checkRequest,
  finishTurn,
  stopOf,
  type LlmCallOptions,
  type LlmProvider,
  type LlmRequest,
  type LlmToolCall,
  type LlmTurn,
} from './provider.js';

export const OLLAMA_DEFAULT_MODEL = 'llama3.1';
export const OLLAMA_DEFAULT_URL = 'http://127.0.0.1:11434';

export interface OllamaOptions {
  model: string;
  host: string;
  policy: PolicyOptions;
}

export function ollamaProvider(options: OllamaOptions): LlmProvider {
  const policy = new Policy(options.policy, 'ollama');
  return {
    name: 'ollama',
    async complete(req: LlmRequest, opts: LlmCallOptions): Promise<LlmTurn> {
      checkRequest(req);
      const base = toParams(req, options.model);
      const reply = await policy.run(
        opts.signal,
        async ({ signal, streamed }) => {
          // One client per attempt: its fetch carries this attempt's signal, which the client itself does not
          // pass on non-streamed requests.
          const client = new Ollama({ host: options.host, fetch: httpErrors(boundedFetch(() => signal)) });
          if (!opts.onText) return client.chat({ ...base, stream: false });
          const budget = new OutputBudget();
          let text = '';
          const toolCalls: NonNullable<Message['tool_calls']> = [];
          let last: ChatResponse | undefined;
          for await (const part of await client.chat({ ...base, stream: true })) {
            const delta = part.message?.content ?? '';
            if (delta !== '') {
              budget.add(delta);
              text += delta;
              streamed.value = true;
              opts.onText(delta);
            }
            for (const call of part.message?.tool_calls ?? []) {
              budget.add(JSON.stringify(call.function?.arguments ?? null));
              toolCalls.push(call);
            }
            last = part;
          }
          if (!last) throw new LlmError('BadResponse', 'ollama: the stream ended without a reply');
          return { ...last, message: { role: 'assistant', content: text, tool_calls: toolCalls } };
        },
        classify,
      );
      return finishTurn(toTurn(reply, req.messages.length));
    },
  };
}

function toParams(req: LlmRequest, model: string) {
  const messages: Message[] = req.system !== undefined ? [{ role: 'system', content: req.system }] : [];
  const toolNames = new Map<string, string>();
  for (const m of req.messages) {
    if (m.role === 'user') messages.push({ role: 'user', content: m.text });
    else if (m.role === 'assistant') {
      for (const c of m.toolCalls) toolNames.set(c.id, c.name);
      messages.push({
        role: 'assistant',
        content: m.text,
        ...(m.toolCalls.length > 0
          ? { tool_calls: m.toolCalls.map((c) => ({ function: { name: c.name, arguments: (c.arguments ?? {}) as Record<string, unknown> } })) }
          : {}),
      });
    } else {
      for (const r of m.results) {
        const name = toolNames.get(r.callId);
        messages.push({
          role: 'tool',
          content: r.isError ? `Error: ${r.content}` : r.content,
          ...(name !== undefined ? { tool_name: name } : {}),
        });
      }
    }
  }
  return {
    model,
    messages,
    options: { num_predict: req.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS },
    ...(req.tools.length > 0
      ? {
          tools: req.tools.map((t) => ({
            type: 'function',
            function: { name: t.name, description: t.description, parameters: t.inputSchema as never },
          })),
        }
      : {}),
  };
}

/**
 * Ollama's tool calls carry no id; ours are `call_<n>_<i>`, n = messages in the request, so the same
 * request always yields the same ids (replay) and ids never repeat within a conversation.
 */
function toTurn(reply: ChatResponse, n: number): LlmTurn {
  if (!reply?.message || typeof reply.message.content !== 'string') {
    throw new LlmError('BadResponse', 'ollama: the reply has no message');
  }
  const toolCalls: LlmToolCall[] = (reply.message.tool_calls ?? []).map((c, i) => {
    if (typeof c?.function?.name !== 'string') throw new LlmError('BadResponse', 'ollama: a tool call has no name');
    return { id: `call_${n}_${i}`, name: c.function.name, arguments: c.function.arguments ?? {} };
  });
  return {
    text: reply.message.content,
    toolCalls,
    stop: stopOf(reply.done_reason === 'length', toolCalls),
    usage: { inputTokens: reply.prompt_eval_count ?? 0, outputTokens: reply.eval_count ?? 0 },
    model: reply.model,
  };
}

/**
 * Turns an error response into our `LlmError` before the ollama client sees it: that keeps `retry-after`
 * (the client's own error drops the headers) and keeps the client from printing to stdout (our wire in
 * stdio modes), which it does for an error body that is not JSON.
 */
function httpErrors(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    if (response.ok) return response;
    const text = await response.text();
    let message = text;
    try {
      const body = JSON.parse(text) as { error?: unknown };
      if (typeof body?.error === 'string') message = body.error;
    } catch {
      // not JSON: the text itself is the message
    }
    throw httpError('ollama', response.status, message.trim(), response.headers);
  };
}

function classify(err: unknown): LlmError {
  if (err instanceof TypeError) return new LlmError('Unavailable', `ollama: ${err.message}`);
  return new LlmError('BadResponse', `ollama: unusable reply: ${err instanceof Error ? err.message : String(err)}`);
}
