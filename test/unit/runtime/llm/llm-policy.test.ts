import assert from 'node:assert/strict';
import { createProvider, LIMITS, LlmError, type LlmRequest } from '../../../../server/runtime/llm/index.js';
import { RateLimiter, retryAfterMs, scrub } from '../../../../server/runtime/llm/policy.js';
import { checkRequest } from '../../../../server/runtime/llm/provider.js';
import { json, sampleRequest, TEST_KEY, within, WireServer } from '../../../helpers/llm-wire.js';

const reply = json(200, { id: 'c', object: 'chat.completion', created: 1, model: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] });

describe('llm: policy and bounds', () => {
  it('the rate limiter allows N starts per 60 s window and makes the next wait for the window to pass', async () => {
    let offset = 0;
    const realStart = Date.now();
    const limiter = new RateLimiter(2, () => offset + (Date.now() - realStart));
    const signal = new AbortController().signal;
    await limiter.acquire(signal);
    await limiter.acquire(signal);
    offset = 59_850;
    const started = Date.now();
    await limiter.acquire(signal);
    assert.ok(Date.now() - started >= 100, 'waited for the first start to leave the window');
    await limiter.acquire(signal);
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 30);
    const err = await waiting;
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
  });

  it('LLM_RATE_LIMIT holds back a provider’s second request until the window allows it (cancellable)', async () => {
    const wire = await WireServer.start();
    try {
      const provider = await createProvider({}, { env: { LLM_PROVIDER: 'openai', OPENAI_API_KEY: TEST_KEY, LLM_BASE_URL: wire.url, LLM_RATE_LIMIT: '1' } });
      wire.reply(reply, reply);
      await provider.complete(sampleRequest, { signal: new AbortController().signal });
      const controller = new AbortController();
      const second = provider.complete(sampleRequest, { signal: controller.signal }).catch((e: unknown) => e);
      const sent = new Promise<boolean>((resolve) => {
        const poll = setInterval(() => wire.requests.length > 1 && (clearInterval(poll), resolve(true)), 10);
        setTimeout(() => clearInterval(poll), 400);
      });
      assert.equal(await within(sent, 300), false, 'the second request waited');
      controller.abort();
      assert.equal(((await second) as LlmError).code, 'Cancelled');
      assert.equal(wire.requests.length, 1);
    } finally {
      await wire.close();
    }
  });

  it('retry-after: seconds, HTTP date, retry-after-ms; absent or garbage gives nothing', () => {
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '2' })), 2000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '150', 'retry-after': '9' })), 150);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now), 5000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'soon' })), undefined);
    assert.equal(retryAfterMs(new Headers()), undefined);
  });

  it('scrub removes every occurrence of a secret and bounds the message', () => {
    assert.equal(scrub(`a ${TEST_KEY} b ${TEST_KEY}`, [TEST_KEY]), 'a [redacted] b [redacted]');
    assert.equal(scrub('x'.repeat(600), []).length, 501);
  });

  describe('request checks (every provider runs them before any I/O)', () => {
    const base: LlmRequest = { messages: [{ role: 'user', text: 'hi' }], tools: [] };
    const code = (req: unknown) => {
      try {
        checkRequest(req as LlmRequest);
        return 'ok';
      } catch (err) {
        assert.ok(err instanceof LlmError);
        return err.code;
      }
    };

    it('accepts a well-formed request and parts of exactly the limit', () => {
      assert.equal(code(sampleRequest), 'ok');
      assert.equal(code({ ...base, system: 's'.repeat(LIMITS.promptPartChars) }), 'ok');
    });

    it('LimitExceeded for each bound: prompt part, tool result, messages, tools, schema size', () => {
      assert.equal(code({ ...base, system: 's'.repeat(LIMITS.promptPartChars + 1) }), 'LimitExceeded');
      assert.equal(code({ ...base, messages: [{ role: 'tool', results: [{ callId: 'c', content: 'r'.repeat(LIMITS.promptPartChars + 1), isError: false }] }] }), 'LimitExceeded');
      assert.equal(code({ ...base, messages: Array.from({ length: LIMITS.messages + 1 }, () => base.messages[0]) }), 'LimitExceeded');
      const tool = (i: number) => ({ name: `t${i}`, description: 'd', inputSchema: { type: 'object' } });
      assert.equal(code({ ...base, tools: Array.from({ length: LIMITS.tools + 1 }, (_, i) => tool(i)) }), 'LimitExceeded');
      assert.equal(code({ ...base, tools: [{ ...tool(0), inputSchema: { type: 'object', description: 'd'.repeat(LIMITS.toolSchemaChars) } }] }), 'LimitExceeded');
    });

    it('BadRequest for malformed input: no messages, unknown role, bad tool name, duplicate tool, bad token count', () => {
      assert.equal(code(null), 'BadRequest');
      assert.equal(code({ ...base, messages: [] }), 'BadRequest');
      assert.equal(code({ ...base, messages: [{ role: 'system', text: 'x' }] }), 'BadRequest');
      assert.equal(code({ ...base, messages: [{ role: 'user', text: 5 }] }), 'BadRequest');
      assert.equal(code({ ...base, messages: [{ role: 'assistant', text: '', toolCalls: [{ name: 'x' }] }] }), 'BadRequest');
      assert.equal(code({ ...base, messages: [{ role: 'tool', results: [] }] }), 'BadRequest');
      assert.equal(code({ ...base, tools: [{ name: 'bad name!', description: 'd', inputSchema: {} }] }), 'BadRequest');
      const t = { name: 'dup', description: 'd', inputSchema: {} };
      assert.equal(code({ ...base, tools: [t, t] }), 'BadRequest');
      assert.equal(code({ ...base, tools: [{ ...t, inputSchema: [] }] }), 'BadRequest');
      assert.equal(code({ ...base, maxOutputTokens: 0 }), 'BadRequest');
      assert.equal(code({ ...base, maxOutputTokens: 1.5 }), 'BadRequest');
    });
  });
});
