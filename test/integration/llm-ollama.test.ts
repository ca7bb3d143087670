import assert from 'node:assert/strict';
import { createProvider, LlmError, type LlmProvider } from '../../server/runtime/llm/index.js';
import { json, ndjson, sampleRequest, silent, within, WireServer } from '../helpers/llm-wire.js';
import { waitFor } from '../helpers/wait.js';

const part = (message: Record<string, unknown>, done = false, extra: Record<string, unknown> = {}) => ({
  model: 'llama-test',
  created_at: '2026-01-01T00:00:00Z',
  message: { role: 'assistant', content: '', ...message },
  done,
  ...extra,
});
const final = { done_reason: 'stop', prompt_eval_count: 21, eval_count: 6, total_duration: 1, load_duration: 1, prompt_eval_duration: 1, eval_duration: 1 };

describe('llm provider: ollama (local server speaking /api/chat)', () => {
  let wire: WireServer;
  let provider: LlmProvider;
  const make = (extra: Record<string, string> = {}, maxRetries?: number) =>
    createProvider(maxRetries === undefined ? {} : { maxRetries }, {
      env: { LLM_PROVIDER: 'local', LOCAL_LLM_ENDPOINT: wire.url, LLM_MODEL: 'llama-test', ...extra },
    });

  beforeEach(async () => {
    wire = await WireServer.start();
    provider = await make();
  });
  afterEach(() => wire.close());

  it('sends a non-streamed tool-use turn in the wire format and parses the reply', async () => {
    wire.reply(json(200, part({ content: 'Reading.', tool_calls: [{ function: { name: 'files_read', arguments: { path: 'a.txt' } } }] }, true, final)));
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    assert.deepEqual(turn, {
      text: 'Reading.',
      toolCalls: [{ id: 'call_3_0', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 21, outputTokens: 6 },
      model: 'llama-test',
    });
    const [req] = wire.requests;
    assert.equal(req.path, '/api/chat');
    assert.equal(req.headers.authorization, undefined);
    assert.deepEqual(req.body, {
      model: 'llama-test',
      stream: false,
      options: { num_predict: 512 },
      messages: [
        { role: 'system', content: 'You are a test agent.' },
        { role: 'user', content: 'What is in a.txt?' },
        { role: 'assistant', content: 'Listing first.', tool_calls: [{ function: { name: 'files_list', arguments: { path: '.' } } }] },
        { role: 'tool', content: 'a.txt\nb.txt', tool_name: 'files_list' },
      ],
      tools: [{ type: 'function', function: { name: 'files_read', description: 'Read a file of the workspace', parameters: sampleRequest.tools[0].inputSchema } }],
    });
  });

  it('streams a tool-use turn (NDJSON): text deltas reach onText, tool calls and usage are collected', async () => {
    wire.reply(
      ndjson([
        part({ content: 'Read' }),
        part({ content: 'ing.' }),
        part({ tool_calls: [{ function: { name: 'files_read', arguments: { path: 'a.txt' } } }] }),
        part({}, true, final),
      ]),
    );
    const deltas: string[] = [];
    const turn = await provider.complete(sampleRequest, { signal: new AbortController().signal, onText: (d) => deltas.push(d) });
    assert.deepEqual(deltas, ['Read', 'ing.']);
    assert.deepEqual(turn, {
      text: 'Reading.',
      toolCalls: [{ id: 'call_3_0', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 21, outputTokens: 6 },
      model: 'llama-test',
    });
    assert.equal(wire.requests[0].body.stream, true);
  });

  it('honours 429 retry-after, then retries a 5xx with a text body, printing nothing on stdout', async () => {
    wire.reply(
      json(429, { error: 'too many requests' }, { 'retry-after': '1' }),
      (res) => void res.writeHead(500, { 'content-type': 'text/plain' }).end('model runner crashed'),
      json(200, part({ content: 'ok' }, true, final)),
    );
    const started = Date.now();
    const written: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
    let turn;
    try {
      turn = await provider.complete(sampleRequest, { signal: new AbortController().signal });
    } finally {
      process.stdout.write = write;
    }
    assert.equal(turn.text, 'ok');
    assert.equal(wire.requests.length, 3);
    assert.ok(Date.now() - started >= 1000 + 450, 'waited retry-after, then a backoff');
    assert.deepEqual(written, []);
  });

  it('fails Unavailable with the server message once retries run out', async () => {
    provider = await make({}, 0);
    wire.reply((res) => void res.writeHead(503, { 'content-type': 'text/plain' }).end('loading model'));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unavailable');
    assert.match(err.message, /HTTP 503: loading model/);
  });

  it('fails BadRequest on a 404 (model not pulled)', async () => {
    wire.reply(json(404, { error: "model 'llama-test' not found" }));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadRequest');
    assert.match(err.message, /not found/);
  });

  it('fails BadResponse on a malformed stream that never finishes', async () => {
    wire.reply(ndjson([part({ content: 'ok' }), '{"model": "llama-test", "message": {', 'not json at all']));
    const warn = console.warn;
    console.warn = () => undefined;
    let err: unknown;
    try {
      err = await provider.complete(sampleRequest, { signal: new AbortController().signal, onText: () => undefined }).catch((e: unknown) => e);
    } finally {
      console.warn = warn;
    }
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadResponse');
  });

  it('fails BadResponse when a stream reports an error', async () => {
    wire.reply(ndjson([part({ content: 'ok' }), { error: 'out of memory' }]));
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal, onText: () => undefined }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'BadResponse');
    assert.match(err.message, /out of memory/);
  });

  it('cancelling mid-stream rejects Cancelled and closes the socket within a second', async () => {
    wire.reply(ndjson([part({ content: 'first' })], { hold: true }));
    const controller = new AbortController();
    const err = await provider
      .complete(sampleRequest, { signal: controller.signal, onText: () => controller.abort() })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
    assert.equal(await within(wire.closedEarly[0], 1000), true);
  });

  it('cancelling a non-streamed request closes its socket too (the client passes no signal itself)', async () => {
    wire.reply(silent);
    const controller = new AbortController();
    const pending = provider.complete(sampleRequest, { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => wire.requests.length > 0, 5000, 'the request to reach the server');
    controller.abort();
    const err = await pending;
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
    assert.equal(await within(wire.closedEarly[0], 1000), true);
  });

  it('times out a request that gets no reply (LLM_TIMEOUT)', async () => {
    provider = await make({ LLM_TIMEOUT: '0.3' });
    wire.reply(silent);
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Timeout');
    assert.equal(await within(wire.closedEarly[0], 1000), true);
  });

  it('is unavailable when nothing listens at the endpoint', async () => {
    const url = wire.url;
    await wire.close();
    provider = await createProvider({ maxRetries: 0 }, { env: { LLM_PROVIDER: 'ollama', LOCAL_LLM_ENDPOINT: url } });
    const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Unavailable');
    wire = await WireServer.start();
  });
});
