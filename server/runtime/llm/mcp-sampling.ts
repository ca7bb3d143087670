/**
 * `mcp-sampling`: asks the model of the connected MCP client (`sampling/createMessage`), through a function
 * shaped like the MCP SDK's `Server.createMessage`. When the client declared `sampling.tools` the request
 * carries the tools and the conversation's tool calls and results as `tool_use` / `tool_result` content;
 * otherwise it is text only: tools are not offered and earlier tool calls and results are written out as
 * text, so the model can only answer in text.
 */
import { McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type {
  CreateMessageRequest,
  CreateMessageResult,
  CreateMessageResultWithTools,
  SamplingMessage,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { Policy, type PolicyOptions } from './policy.js';
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

/** `Server.createMessage`, or anything with its shape (e.g. a bound method of the SDK's `Server`). */
export type CreateMessage = (
  params: CreateMessageRequest['params'],
  options?: RequestOptions,
) => Promise<CreateMessageResult | CreateMessageResultWithTools>;

/**
 * The MCP client session a run was requested from, as the runtime may ask its model: the SDK `Server` of
 * that session (its `createMessage`), what the client declared, and whether the session is still open.
 */
export interface SamplingClient {
  createMessage: CreateMessage;
  /** What the client declared in `initialize`: `sampling`, and `sampling.tools` within it. */
  capabilities(): { sampling: boolean; tools: boolean };
  /** False once the session has closed (the client left, or the host ended it). */
  isOpen(): boolean;
}

export interface McpSamplingOptions {
  client: SamplingClient;
  policy: PolicyOptions;
}

/**
 * Asks `client`'s model. A client that did not declare `sampling`, or whose session has closed (before or
 * during the request), fails the call with `SamplingUnavailable`; the client's own refusals are `Unavailable`.
 */
export function mcpSamplingProvider(options: McpSamplingOptions): LlmProvider {
  const policy = new Policy(options.policy, 'mcp-sampling');
  const { client } = options;
  return {
    name: 'mcp-sampling',
    async complete(req: LlmRequest, opts: LlmCallOptions): Promise<LlmTurn> {
      checkRequest(req);
      if (!client.isOpen()) throw sessionClosed();
      const declared = client.capabilities();
      if (!declared.sampling) throw noSampling();
      const withTools = req.tools.length > 0 && declared.tools;
      const params = toParams(req, withTools);
      const result = await policy.run(
        opts.signal,
        ({ signal }) => client.createMessage(params, { signal, timeout: options.policy.timeoutMs }),
        (err) => (client.isOpen() ? classify(err) : sessionClosed()),
      );
      const turn = finishTurn(toTurn(result));
      if (turn.text !== '') opts.onText?.(turn.text);
      return turn;
    },
  };
}

/** A run that needs the requesting MCP client's model where there is none to ask. */
export function samplingUnavailable(why: string): LlmError {
  return new LlmError('SamplingUnavailable', `mcp-sampling: ${why}`);
}

function sessionClosed(): LlmError {
  return samplingUnavailable('the MCP session that requested the run has closed');
}

function noSampling(): LlmError {
  return samplingUnavailable('the MCP client that requested the run did not declare the sampling capability');
}

function toParams(req: LlmRequest, withTools: boolean): CreateMessageRequest['params'] {
  const messages: SamplingMessage[] = [];
  for (const m of req.messages) {
    if (m.role === 'user') messages.push({ role: 'user', content: { type: 'text', text: m.text } });
    else if (m.role === 'assistant') {
      if (withTools) {
        const content: SamplingMessage['content'] = [
          ...(m.text !== '' ? [{ type: 'text' as const, text: m.text }] : []),
          ...m.toolCalls.map((c) => ({ type: 'tool_use' as const, id: c.id, name: c.name, input: asRecord(c.arguments) })),
        ];
        messages.push({ role: 'assistant', content });
      } else {
        const calls = m.toolCalls.map((c) => `[called tool ${c.name} (${c.id}) with ${JSON.stringify(c.arguments ?? {})}]`);
        messages.push({ role: 'assistant', content: { type: 'text', text: [m.text, ...calls].filter((s) => s !== '').join('\n') } });
      }
    } else if (withTools) {
      messages.push({
        role: 'user',
        content: m.results.map((r) => ({
          type: 'tool_result' as const,
          toolUseId: r.callId,
          content: [{ type: 'text' as const, text: r.content }],
          isError: r.isError,
        })),
      });
    } else {
      const text = m.results.map((r) => `[result of ${r.callId}${r.isError ? ' (error)' : ''}]\n${r.content}`).join('\n');
      messages.push({ role: 'user', content: { type: 'text', text } });
    }
  }
  return {
    messages,
    maxTokens: req.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
    ...(req.system !== undefined ? { systemPrompt: req.system } : {}),
    ...(withTools
      ? {
          tools: req.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as { type: 'object' } })),
          toolChoice: { mode: 'auto' as const },
        }
      : {}),
  };
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
}

function toTurn(result: CreateMessageResult | CreateMessageResultWithTools): LlmTurn {
  if (result === null || typeof result !== 'object' || result.role !== 'assistant') {
    throw new LlmError('BadResponse', 'mcp-sampling: the client did not answer with an assistant message');
  }
  const blocks = Array.isArray(result.content) ? result.content : [result.content];
  const budget = new OutputBudget();
  let text = '';
  const toolCalls: LlmToolCall[] = [];
  for (const block of blocks) {
    if (block?.type === 'text') {
      budget.add(block.text);
      text += block.text;
    } else if (block?.type === 'tool_use') {
      toolCalls.push({ id: block.id, name: block.name, arguments: block.input });
    } else {
      throw new LlmError('BadResponse', `mcp-sampling: the client's model answered with ${String(block?.type)} content, which an agent cannot use`);
    }
  }
  return {
    text,
    toolCalls,
    stop: stopOf(result.stopReason === 'maxTokens', toolCalls),
    usage: { inputTokens: 0, outputTokens: 0 },
    model: typeof result.model === 'string' ? result.model : 'unknown',
  };
}

function classify(err: unknown): LlmError {
  if (err instanceof McpError) {
    if (err.code === ErrorCode.RequestTimeout) return new LlmError('Timeout', `mcp-sampling: ${err.message}`);
    if (err.code === ErrorCode.InvalidParams || err.code === ErrorCode.InvalidRequest) {
      return new LlmError('BadRequest', `mcp-sampling: ${err.message}`);
    }
    return new LlmError('Unavailable', `mcp-sampling: the client refused: ${err.message}`);
  }
  return new LlmError('Unavailable', `mcp-sampling: ${err instanceof Error ? err.message : String(err)}`);
}
