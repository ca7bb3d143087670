/**
 * `anthropic`: the Messages API through the official `@anthropic-ai/sdk` (tool use; streaming via the SDK's
 * `messages.stream` when the caller wants text as it arrives).
 */
import Anthropic from '@anthropic-ai/sdk';
import type { MessageCreateParamsNonStreaming, MessageParam, Message } from '@anthropic-ai/sdk/resources/messages/messages';
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

export const ANTHROPIC_DEFAULT_MODEL = 'claude-sonnet-5-5';
export const ANTHROPIC_DEFAULT_URL = 'https://api.anthropic.com';

export interface AnthropicOptions {
  apiKey: string;
  model: string;
  baseUrl: string;
  policy: PolicyOptions;
}

export function anthropicProvider(options: AnthropicOptions): LlmProvider {
  const policy = new Policy(options.policy, 'anthropic');
  const client = new Anthropic({
    apiKey: options.apiKey,
    baseURL: options.baseUrl,
    maxRetries: 0,
    timeout: options.policy.timeoutMs,
    fetch: boundedFetch(() => undefined),
    logLevel: 'off',
    openTelemetry: false,
  });
  return {
    name: 'anthropic',
    async complete(req: LlmRequest, opts: LlmCallOptions): Promise<LlmTurn> {
      checkRequest(req);
      const params = toParams(req, options.model);
      const message = await policy.run(
        opts.signal,
        async ({ signal, streamed }) => {
          if (!opts.onText) return client.messages.create(params, { signal });
          const budget = new OutputBudget();
          const stream = client.messages.stream(params, { signal });
          try {
            for await (const event of stream) {
              if (event.type !== 'content_block_delta') continue;
              if (event.delta.type === 'text_delta') {
                budget.add(event.delta.text);
                streamed.value = true;
                opts.onText(event.delta.text);
              } else if (event.delta.type === 'input_json_delta') {
                budget.add(event.delta.partial_json);
              }
            }
          } catch (err) {
            stream.abort();
            throw err;
          }
          return stream.finalMessage();
        },
        classify,
      );
      return finishTurn(toTurn(message));
    },
  };
}

function toParams(req: LlmRequest, model: string): MessageCreateParamsNonStreaming {
  const messages: MessageParam[] = req.messages.map((m): MessageParam => {
    if (m.role === 'user') return { role: 'user', content: m.text };
    if (m.role === 'assistant') {
      return {
        role: 'assistant',
        content: [
          ...(m.text !== '' ? [{ type: 'text' as const, text: m.text }] : []),
          ...m.toolCalls.map((c) => ({ type: 'tool_use' as const, id: c.id, name: c.name, input: c.arguments ?? {} })),
        ],
      };
    }
    return {
      role: 'user',
      content: m.results.map((r) => ({
        type: 'tool_result' as const,
        tool_use_id: r.callId,
        content: r.content,
        is_error: r.isError,
      })),
    };
  });
  return {
    model,
    max_tokens: req.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
    messages,
    ...(req.system !== undefined ? { system: req.system } : {}),
    ...(req.tools.length > 0
      ? {
          tools: req.tools.map((t) => ({
            name: t.name,
            description: t.description,
            input_schema: t.inputSchema as { type: 'object' },
          })),
        }
      : {}),
  };
}

function toTurn(message: Message): LlmTurn {
  if (!message || !Array.isArray(message.content)) throw new LlmError('BadResponse', 'anthropic: the reply has no content');
  let text = '';
  const toolCalls: LlmToolCall[] = [];
  for (const block of message.content) {
    if (block.type === 'text') text += block.text;
    else if (block.type === 'tool_use') toolCalls.push({ id: block.id, name: block.name, arguments: block.input });
  }
  const usage = message.usage;
  return {
    text,
    toolCalls,
    stop: stopOf(message.stop_reason === 'max_tokens', toolCalls),
    usage: {
      inputTokens: (usage?.input_tokens ?? 0) + (usage?.cache_creation_input_tokens ?? 0) + (usage?.cache_read_input_tokens ?? 0),
      outputTokens: usage?.output_tokens ?? 0,
    },
    model: message.model,
  };
}

function classify(err: unknown): LlmError {
  if (err instanceof Anthropic.APIError && typeof err.status === 'number') {
    const body = err.error as { error?: { message?: unknown } } | undefined;
    const detail = typeof body?.error?.message === 'string' ? body.error.message : '';
    return httpError('anthropic', err.status, detail, err.headers);
  }
  if (err instanceof Anthropic.APIConnectionError) return new LlmError('Unavailable', `anthropic: ${err.message}`);
  return new LlmError('BadResponse', `anthropic: unusable reply: ${err instanceof Error ? err.message : String(err)}`);
}
