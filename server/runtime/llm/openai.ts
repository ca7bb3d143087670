/**
 * `openai`: Chat Completions through the official `openai` SDK (function tools; streaming via the SDK's
 * `chat.completions.stream` when the caller wants text as it arrives). Chat Completions is also what
 * OpenAI-compatible servers speak, so `LLM_BASE_URL` can point at one.
 */
import OpenAI from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { Policy, boundedFetch, httpError, type PolicyOptions } from './policy.js';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  LlmError,
  OutputBudget,
  checkRequest,
  finishTurn,
  parseArguments,
  stopOf,
  type LlmCallOptions,
  type LlmProvider,
  type LlmRequest,
  type LlmToolCall,
  type LlmTurn,
} from './provider.js';

export const OPENAI_DEFAULT_MODEL = 'gpt-5.4';
export const OPENAI_DEFAULT_URL = 'https://api.openai.com/v1';

export interface OpenAiOptions {
  apiKey: string;
  model: string;
  baseUrl: string;
  policy: PolicyOptions;
}

export function openAiProvider(options: OpenAiOptions): LlmProvider {
  const policy = new Policy(options.policy, 'openai');
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseUrl,
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: options.policy.timeoutMs,
    fetch: boundedFetch(() => undefined),
    logLevel: 'off',
  });
  return {
    name: 'openai',
    async complete(req: LlmRequest, opts: LlmCallOptions): Promise<LlmTurn> {
      checkRequest(req);
      const params = toParams(req, options.model);
      const completion = await policy.run(
        opts.signal,
        async ({ signal, streamed }) => {
          if (!opts.onText) return client.chat.completions.create(params, { signal });
          const budget = new OutputBudget();
          const stream = client.chat.completions.stream(
            { ...params, stream: true, stream_options: { include_usage: true } },
            { signal },
          );
          try {
            for await (const chunk of stream) {
              const delta = chunk.choices[0]?.delta;
              for (const call of delta?.tool_calls ?? []) budget.add(call.function?.arguments ?? '');
              if (delta?.content) {
                budget.add(delta.content);
                streamed.value = true;
                opts.onText(delta.content);
              }
            }
          } catch (err) {
            stream.abort();
            throw err;
          }
          return stream.finalChatCompletion();
        },
        classify,
      );
      return finishTurn(toTurn(completion));
    },
  };
}

function toParams(req: LlmRequest, model: string): ChatCompletionCreateParamsNonStreaming {
  const messages: ChatCompletionMessageParam[] = req.system !== undefined ? [{ role: 'system', content: req.system }] : [];
  for (const m of req.messages) {
    if (m.role === 'user') messages.push({ role: 'user', content: m.text });
    else if (m.role === 'assistant') {
      messages.push({
        role: 'assistant',
        content: m.text === '' ? null : m.text,
        ...(m.toolCalls.length > 0
          ? {
              tool_calls: m.toolCalls.map((c) => ({
                id: c.id,
                type: 'function' as const,
                function: { name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}) },
              })),
            }
          : {}),
      });
    } else {
      for (const r of m.results) {
        messages.push({ role: 'tool', tool_call_id: r.callId, content: r.isError ? `Error: ${r.content}` : r.content });
      }
    }
  }
  return {
    model,
    max_completion_tokens: req.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
    messages,
    ...(req.tools.length > 0
      ? {
          tools: req.tools.map((t) => ({
            type: 'function' as const,
            function: { name: t.name, description: t.description, parameters: t.inputSchema as Record<string, unknown> },
          })),
        }
      : {}),
  };
}

function toTurn(completion: ChatCompletion): LlmTurn {
  const choice = completion?.choices?.[0];
  if (!choice?.message) throw new LlmError('BadResponse', 'openai: the reply has no choices');
  const toolCalls: LlmToolCall[] = [];
  for (const call of choice.message.tool_calls ?? []) {
    if (call.type !== 'function') continue;
    toolCalls.push({ id: call.id, name: call.function.name, arguments: parseArguments(call.function.arguments) });
  }
  return {
    text: choice.message.content ?? '',
    toolCalls,
    stop: stopOf(choice.finish_reason === 'length', toolCalls),
    usage: { inputTokens: completion.usage?.prompt_tokens ?? 0, outputTokens: completion.usage?.completion_tokens ?? 0 },
    model: completion.model,
  };
}

function classify(err: unknown): LlmError {
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    const body = err.error as { message?: unknown } | undefined;
    const detail = typeof body?.message === 'string' ? body.message : '';
    return httpError('openai', err.status, detail, err.headers);
  }
  if (err instanceof OpenAI.APIConnectionError) return new LlmError('Unavailable', `openai: ${err.message}`);
  return new LlmError('BadResponse', `openai: unusable reply: ${err instanceof Error ? err.message : String(err)}`);
}
