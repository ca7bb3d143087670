import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CreateMessageRequestSchema, ErrorCode, McpError, type CreateMessageRequest } from '@modelcontextprotocol/sdk/types.js';
import { createProvider, LlmError, type LlmProvider } from '../../server/runtime/llm/index.js';
import { sampleRequest, within } from '../helpers/llm-wire.js';
import { waitFor } from '../helpers/wait.js';

type Handler = (params: CreateMessageRequest['params'], signal: AbortSignal) => Promise<unknown>;

/** A real SDK client (whose sampling handler plays the user's model) connected to a real SDK server. */
async function connect(tools: boolean, handler: Handler): Promise<{ provider: LlmProvider; server: Server; close: () => Promise<void> }> {
  const server = new Server({ name: 'toka-test', version: '1.0.0' }, { capabilities: {} });
  const client = new Client({ name: 'test-client', version: '1.0.0' }, { capabilities: { sampling: tools ? { tools: {} } : {} } });
  client.setRequestHandler(CreateMessageRequestSchema, (req, extra) => handler(req.params, extra.signal) as never);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  const provider = await createProvider(
    { provider: 'mcp-sampling' },
    {
      env: {},
      sampling: {
        createMessage: (params, options) => server.createMessage(params, options),
        capabilities: () => ({ sampling: Boolean(server.getClientCapabilities()?.sampling), tools: Boolean(server.getClientCapabilities()?.sampling?.tools) }),
        isOpen: () => server.transport !== undefined,
      },
    },
  );
  return { provider, server, close: async () => void (await Promise.all([client.close(), server.close()])) };
}

describe('llm provider: mcp-sampling (real SDK client and server, in-memory transport)', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('asks a tool-capable client with tools and tool_use / tool_result content, and parses its tool call', async () => {
    const seen: CreateMessageRequest['params'][] = [];
    const c = await connect(true, async (params) => {
      seen.push(params);
      return {
        role: 'assistant',
        model: 'client-model-1',
        stopReason: 'toolUse',
        content: [
          { type: 'text', text: 'Reading.' },
          { type: 'tool_use', id: 'tu_1', name: 'files_read', input: { path: 'a.txt' } },
        ],
      };
    });
    close = c.close;
    const deltas: string[] = [];
    const turn = await c.provider.complete(sampleRequest, { signal: new AbortController().signal, onText: (d) => deltas.push(d) });
    assert.deepEqual(turn, {
      text: 'Reading.',
      toolCalls: [{ id: 'tu_1', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 0, outputTokens: 0 },
      model: 'client-model-1',
    });
    assert.deepEqual(deltas, ['Reading.']);
    const [params] = seen;
    assert.equal(params.systemPrompt, 'You are a test agent.');
    assert.equal(params.maxTokens, 512);
    assert.deepEqual(params.toolChoice, { mode: 'auto' });
    assert.deepEqual(params.tools, [{ name: 'files_read', description: 'Read a file of the workspace', inputSchema: sampleRequest.tools[0].inputSchema }]);
    assert.deepEqual(params.messages, [
      { role: 'user', content: { type: 'text', text: 'What is in a.txt?' } },
      { role: 'assistant', content: [{ type: 'text', text: 'Listing first.' }, { type: 'tool_use', id: 'call_1', name: 'files_list', input: { path: '.' } }] },
      { role: 'user', content: [{ type: 'tool_result', toolUseId: 'call_1', content: [{ type: 'text', text: 'a.txt\nb.txt' }], isError: false }] },
    ]);
  });

  it('asks a client without sampling tools in text only: no tools, tool history written out', async () => {
    const seen: CreateMessageRequest['params'][] = [];
    const c = await connect(false, async (params) => {
      seen.push(params);
      return { role: 'assistant', model: 'client-model-2', stopReason: 'endTurn', content: { type: 'text', text: 'a.txt holds notes.' } };
    });
    close = c.close;
    const turn = await c.provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.deepEqual(turn, { text: 'a.txt holds notes.', toolCalls: [], stop: 'end', usage: { inputTokens: 0, outputTokens: 0 }, model: 'client-model-2' });
    const [params] = seen;
    assert.equal(params.tools, undefined);
    assert.equal(params.toolChoice, undefined);
    assert.deepEqual(params.messages[1], {
      role: 'assistant',
      content: { type: 'text', text: 'Listing first.\n[called tool files_list (call_1) with {"path":"."}]' },
    });
    assert.deepEqual(params.messages[2], { role: 'user', content: { type: 'text', text: '[result of call_1]\na.txt\nb.txt' } });
  });

  it('a client that refuses the request: Unavailable, asked once', async () => {
    let calls = 0;
    const c = await connect(true, async () => {
      calls++;
      throw new McpError(ErrorCode.InternalError, 'User rejected sampling request');
    });
    close = c.close;
    const err = await c.provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unavailable');
    assert.match(err.message, /User rejected/);
    assert.equal(calls, 1);
  });

  it('a reply the agent cannot use (an image) is BadResponse', async () => {
    const c = await connect(true, async () => ({ role: 'assistant', model: 'm', content: { type: 'image', data: 'AAAA', mimeType: 'image/png' } }));
    close = c.close;
    const err = await c.provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadResponse');
  });

  it('cancelling reaches the client: its handler signal aborts within a second', async () => {
    let clientSignal: AbortSignal | undefined;
    const c = await connect(true, (_params, signal) => {
      clientSignal = signal;
      return new Promise(() => undefined);
    });
    close = c.close;
    // The MCP SDK (1.32) ignores `notifications/cancelled` for request id 0 (a falsy-id check in
    // Protocol._oncancel), so the sampling request must not be the server's first request.
    await c.server.ping();
    const controller = new AbortController();
    const pending = c.provider.complete(sampleRequest, { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => clientSignal, 5000, 'the client to receive the sampling request');
    const aborted = new Promise<boolean>((resolve) => clientSignal!.addEventListener('abort', () => resolve(true)));
    controller.abort();
    const err = await pending;
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
    assert.equal(await within(aborted, 1000), true);
  });

  it('cannot be built without an MCP session', async () => {
    const err = await createProvider({ provider: 'mcp-sampling' }, { env: {} }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Misconfigured');
  });
});
