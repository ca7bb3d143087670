import assert from 'node:assert/strict';
import { createProvider, LlmError, type LlmProvider } from '../../server/runtime/llm/index.js';
import { json, sampleRequest, silent, sse, TEST_KEY, within, WireServer } from '../helpers/llm-wire.js';

const completion = (message: Record<string, unknown>, finish: string) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-test-1',
  choices: [{ index: 0, message: { role: 'assistant', refusal: null, ...message }, finish_reason: finish, logprobs: null }],
  usage: { prompt_tokens: 33, completion_tokens: 9, total_tokens: 42 },
});

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  data: {
    id: 'chatcmpl-2',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'gpt-test-1',
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  },
});

const toolStream = [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: 'Read' }),
  chunk({ content: 'ing.' }),
  chunk({ tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'files_read', arguments: '' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"path":' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: ' "a.txt"}' } }] }),
  chunk({}, 'tool_calls'),
  { data: { id: 'chatcmpl-2', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-test-1', choices: [], usage: { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38 } } },
  { data: '[DONE]' },
];

describe('llm provider: openai (local server speaking Chat Completions)', () => {
  let wire: WireServer;
  let provider: LlmProvider;
  const make = (extra: Record<string, string> = {}, maxRetries?: number) =>
    createProvider(maxRetries === undefined ? {} : { maxRetries }, {
      env: { LLM_PROVIDER: 'openai', OPENAI_API_KEY: TEST_KEY, LLM_BASE_URL: `${wire.url}/v1`, LLM_MODEL: 'gpt-test-1', ...extra },
    });

  beforeEach(async () => {
    wire = await WireServer.start();
    provider = await make();
  });
  afterEach(() => wire.close());

  it('sends a non-streamed tool-use turn in the wire format and parses the reply', async () => {
    wire.reply(
      json(200, completion({ content: null, tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'files_read', arguments: '{"path":"a.txt"}' } }] }, 'tool_calls')),
    );
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.deepEqual(turn, {
      text: '',
      toolCalls: [{ id: 'call_9', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 33, outputTokens: 9 },
      model: 'gpt-test-1',
    });
    const [req] = wire.requests;
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.headers.authorization, `Bearer ${TEST_KEY}`);
    assert.equal(req.headers['openai-organization'], undefined);
    assert.deepEqual(req.body, {
      model: 'gpt-test-1',
      max_completion_tokens: 512,
      messages: [
        { role: 'system', content: 'You are a test agent.' },
        { role: 'user', content: 'What is in a.txt?' },
        {
          role: 'assistant',
          content: 'Listing first.',
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'files_list', arguments: '{"path":"."}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'a.txt\nb.txt' },
      ],
      tools: [{ type: 'function', function: { name: 'files_read', description: 'Read a file of the workspace', parameters: sampleRequest.tools[0].inputSchema } }],
    });
  });

  it('passes argument text that is not JSON on as the raw string (the loop schema check tells the model)', async () => {
    wire.reply(json(200, completion({ content: 'x', tool_calls: [{ id: 'c', type: 'function', function: { name: 'files_read', arguments: '{path: a.txt' } }] }, 'tool_calls')));
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.equal(turn.toolCalls[0].arguments, '{path: a.txt');
  });

  it('streams a tool-use turn (SSE): text deltas reach onText, arguments are assembled, usage is asked for', async () => {
    wire.reply(sse(toolStream));
    const deltas: string[] = [];
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal, onText: (d) => deltas.push(d) });
    assert.deepEqual(deltas, ['Read', 'ing.']);
    assert.deepEqual(turn, {
      text: 'Reading.',
      toolCalls: [{ id: 'call_9', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 30, outputTokens: 8 },
      model: 'gpt-test-1',
    });
    assert.equal(wire.requests[0].body.stream, true);
    assert.deepEqual(wire.requests[0].body.stream_options, { include_usage: true });
  });

  it('reports a tool error result with an Error: prefix and finish_reason length as max_tokens', async () => {
    wire.reply(json(200, completion({ content: 'cut' }, 'length')));
    const req = { ...sampleRequest, messages: [...sampleRequest.messages.slice(0, 2), { role: 'tool' as const, results: [{ callId: 'call_1', content: 'denied', isError: true }] }] };
    const turn = await provider.complete(req, { signal: new AbortController().signal });
    assert.equal(turn.stop, 'max_tokens');
    assert.deepEqual(wire.requests[0].body.messages.at(-1), { role: 'tool', tool_call_id: 'call_1', content: 'Error: denied' });
  });

  it('honours 429 retry-after, then succeeds', async () => {
    wire.reply(json(429, { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }, { 'retry-after': '1' }), json(200, completion({ content: 'ok' }, 'stop')));
    const started = Date.now();
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.equal(turn.text, 'ok');
    assert.equal(turn.stop, 'end');
    assert.equal(wire.requests.length, 2);
    assert.ok(Date.now() - started >= 950);
  });

  it('retries a 5xx and succeeds on the next attempt', async () => {
    wire.reply(json(503, { error: { message: 'busy', type: 'server_error' } }), json(200, completion({ content: 'ok' }, 'stop')));
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.equal(turn.text, 'ok');
    assert.equal(wire.requests.length, 2);
  });

  it('fails Unavailable after the last retry of a 5xx', async () => {
    provider = await make({}, 0);
    wire.reply(json(502, { error: { message: 'bad gateway', type: 'server_error' } }));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unavailable');
    assert.equal(wire.requests.length, 1);
  });

  it('fails BadRequest on a 400 (unknown model), without retrying', async () => {
    wire.reply(json(400, { error: { message: 'The model `nope` does not exist', type: 'invalid_request_error' } }));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadRequest');
    assert.match(err.message, /does not exist/);
    assert.equal(wire.requests.length, 1);
  });

  it('fails BadResponse on a malformed stream', async () => {
    wire.reply(sse([toolStream[0], toolStream[1], { data: '{"id": "chatcmpl-2", "choices": [' }]));
    const err = await provider
      .complete(sampleRequest, { signal: new AbortController().signal, onText: () => undefined })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadResponse');
  });

  it('cancelling mid-stream rejects Cancelled and closes the socket within a second', async () => {
    wire.reply(sse(toolStream.slice(0, 3), { hold: true }));
    const controller = new AbortController();
    const err = await provider
      .complete(sampleRequest, { signal: controller.signal, onText: () => controller.abort() })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
    assert.equal(await within(wire.closedEarly[0], 1000), true);
  });

  it('cancelling while waiting out a retry-after rejects Cancelled without a second request', async () => {
    wire.reply(json(429, { error: { message: 'slow' } }, { 'retry-after': '30' }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const err = await provider.complete(sampleRequest, { signal: controller.signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
    assert.equal(wire.requests.length, 1);
  });

  it('times out a request that gets no reply (LLM_TIMEOUT)', async () => {
    provider = await make({ LLM_TIMEOUT: '0.3' });
    wire.reply(silent);
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Timeout');
    assert.equal(await within(wire.closedEarly[0], 1000), true);
  });

  it('403 with the key echoed back: Unauthenticated, key redacted', async () => {
    wire.reply((res, req) => {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `key ${req.headers.authorization} lacks scope` } }));
    });
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unauthenticated');
    assert.ok(!`${err.message}${err.stack}`.includes(TEST_KEY));
  });

  it('a response body past the 8 MiB wire bound fails LimitExceeded', async () => {
    wire.reply(json(200, completion({ content: 'z'.repeat(9 * 1_048_576) }, 'stop')));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'LimitExceeded');
    assert.match(err.message, /8388608 bytes/);
  });

  it('a non-streamed reply past the 1 MiB output limit fails LimitExceeded', async () => {
    wire.reply(json(200, completion({ content: 'z'.repeat(1_048_577) }, 'stop')));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'LimitExceeded');
    assert.match(err.message, /1048576 bytes/);
  });

  it('a prompt part over 32,768 characters fails LimitExceeded before any request', async () => {
    const req = { ...sampleRequest, messages: [{ role: 'user' as const, text: 'y'.repeat(32_769) }] };
    const err = await provider.complete(req, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'LimitExceeded');
    assert.match(err.message, /32768/);
    assert.equal(wire.requests.length, 0);
  });
});
