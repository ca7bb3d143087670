import assert from 'node:assert/strict';
import { createProvider, LlmError, type LlmProvider } from '../../server/runtime/llm/index.js';
import { json, sampleRequest, silent, sse, TEST_KEY, within, WireServer } from '../helpers/llm-wire.js';

const message = (content: unknown[], stop: string) => ({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-test-1',
  content,
  stop_reason: stop,
  stop_sequence: null,
  usage: { input_tokens: 40, output_tokens: 12, cache_read_input_tokens: 5 },
});

const streamOf = (text: string[], tool: { id: string; name: string; json: string[] } | null, stop: string) => [
  { event: 'message_start', data: { type: 'message_start', message: { ...message([], null as never), stop_reason: null, usage: { input_tokens: 40, output_tokens: 1 } } } },
  { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
  ...text.map((t) => ({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } } })),
  { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
  ...(tool
    ? [
        { event: 'content_block_start', data: { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: tool.id, name: tool.name, input: {} } } },
        ...tool.json.map((j) => ({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: j } } })),
        { event: 'content_block_stop', data: { type: 'content_block_stop', index: 1 } },
      ]
    : []),
  { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 17 } } },
  { event: 'message_stop', data: { type: 'message_stop' } },
];

describe('llm provider: anthropic (local server speaking the Messages API)', () => {
  let wire: WireServer;
  let provider: LlmProvider;
  const make = (extra: Record<string, string> = {}, maxRetries?: number) =>
    createProvider(maxRetries === undefined ? {} : { maxRetries }, {
      env: { ANTHROPIC_API_KEY: TEST_KEY, LLM_BASE_URL: wire.url, LLM_MODEL: 'claude-test-1', ...extra },
    });

  beforeEach(async () => {
    wire = await WireServer.start();
    provider = await make();
  });
  afterEach(() => wire.close());

  it('sends a non-streamed tool-use turn in the wire format and parses the reply', async () => {
    wire.reply(json(200, message([{ type: 'text', text: 'Reading it.' }, { type: 'tool_use', id: 'toolu_9', name: 'files_read', input: { path: 'a.txt' } }], 'tool_use')));
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.deepEqual(turn, {
      text: 'Reading it.',
      toolCalls: [{ id: 'toolu_9', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 45, outputTokens: 12 },
      model: 'claude-test-1',
    });
    const [req] = wire.requests;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/v1/messages');
    assert.equal(req.headers.authorization, `Bearer ${TEST_KEY}`);
    assert.match(String(req.headers['anthropic-version']), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(req.body.stream, undefined);
    assert.deepEqual(req.body, {
      model: 'claude-test-1',
      max_tokens: 512,
      system: 'You are a test agent.',
      messages: [
        { role: 'user', content: 'What is in a.txt?' },
        { role: 'assistant', content: [{ type: 'text', text: 'Listing first.' }, { type: 'tool_use', id: 'call_1', name: 'files_list', input: { path: '.' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'a.txt\nb.txt', is_error: false }] },
      ],
      tools: [{ name: 'files_read', description: 'Read a file of the workspace', input_schema: sampleRequest.tools[0].inputSchema }],
    });
  });

  it('streams a tool-use turn (SSE): text deltas reach onText, tool input is assembled from JSON deltas', async () => {
    wire.reply(sse(streamOf(['Read', 'ing.'], { id: 'toolu_2', name: 'files_read', json: ['{"pa', 'th": "a.txt"}'] }, 'tool_use')));
    const deltas: string[] = [];
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal, onText: (d) => deltas.push(d) });
    assert.deepEqual(deltas, ['Read', 'ing.']);
    assert.deepEqual(turn, {
      text: 'Reading.',
      toolCalls: [{ id: 'toolu_2', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 40, outputTokens: 17 },
      model: 'claude-test-1',
    });
    assert.equal(wire.requests[0].body.stream, true);
  });

  it('reports max_tokens when the reply was cut at the limit', async () => {
    wire.reply(json(200, message([{ type: 'text', text: 'partial' }], 'max_tokens')));
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.equal(turn.stop, 'max_tokens');
  });

  it('honours 429 retry-after, then succeeds', async () => {
    wire.reply(
      json(429, { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }, { 'retry-after': '1' }),
      json(200, message([{ type: 'text', text: 'done' }], 'end_turn')),
    );
    const started = Date.now();
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.equal(turn.text, 'done');
    assert.equal(turn.stop, 'end');
    assert.equal(wire.requests.length, 2);
    assert.ok(Date.now() - started >= 950, 'waited as long as retry-after said');
  });

  it('gives up at once on a retry-after longer than the longest wait, reporting it', async () => {
    wire.reply(json(429, { type: 'error', error: { type: 'rate_limit_error', message: 'quota' } }, { 'retry-after': '3600' }));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'RateLimited');
    assert.equal(err.retryAfterMs, 3_600_000);
    assert.equal(wire.requests.length, 1);
  });

  it('retries a 5xx with bounded backoff and fails Unavailable when retries run out', async () => {
    provider = await make({}, 1);
    wire.reply(
      json(529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }),
      json(500, { type: 'error', error: { type: 'api_error', message: 'Internal' } }),
      json(200, message([{ type: 'text', text: 'never reached' }], 'end_turn')),
    );
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unavailable');
    assert.match(err.message, /HTTP 500: Internal/);
    assert.equal(wire.requests.length, 2);
  });

  it('fails BadResponse on a malformed stream', async () => {
    wire.reply(sse([streamOf(['ok'], null, 'end_turn')[0], { event: 'content_block_start', data: '{"type": "content_block_start", "ind' }]));
    const err = await provider
      .complete(sampleRequest, { signal: new AbortController().signal, onText: () => undefined })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadResponse');
  });

  it('fails BadResponse on a stream cut short (no message_stop)', async () => {
    wire.reply(sse(streamOf(['ok'], null, 'end_turn').slice(0, 3)));
    const err = await provider
      .complete(sampleRequest, { signal: new AbortController().signal, onText: () => undefined })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadResponse');
  });

  it('cancelling mid-stream rejects Cancelled and closes the socket within a second', async () => {
    wire.reply(sse(streamOf(['first'], null, 'end_turn').slice(0, 3), { hold: true }));
    const controller = new AbortController();
    const err = await provider
      .complete(sampleRequest, { signal: controller.signal, onText: () => controller.abort() })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
    assert.equal(await within(wire.closedEarly[0], 1000), true, 'the server saw the connection close');
  });

  it('times out a request that gets no reply (LLM_TIMEOUT) and closes the socket', async () => {
    provider = await make({ LLM_TIMEOUT: '0.3' });
    wire.reply(silent);
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Timeout');
    assert.equal(await within(wire.closedEarly[0], 1000), true);
  });

  it('401: Unauthenticated, not retried, and the key never appears in the error even when the server echoes it', async () => {
    wire.reply((res, req) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: `invalid key: ${req.headers.authorization}` } }));
    });
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unauthenticated');
    assert.equal(wire.requests.length, 1);
    assert.match(err.message, /\[redacted\]/);
    assert.ok(!err.message.includes(TEST_KEY));
    assert.ok(!JSON.stringify(err).includes(TEST_KEY));
    assert.ok(!String(err.stack).includes(TEST_KEY));
  });

  it('a streamed reply past the 1 MiB response limit fails LimitExceeded', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    wire.reply(sse(streamOf(Array.from({ length: 17 }, () => chunk), null, 'end_turn')));
    let received = 0;
    const err = await provider
      .complete(sampleRequest, { signal: new AbortController().signal, onText: (d) => (received += d.length) })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'LimitExceeded');
    assert.ok(received <= 1_048_576);
  });
});
