import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { createLogger } from '../../../../server/host/logger.js';
import { createProvider, LlmError, PROVIDER_NAMES } from '../../../../server/runtime/llm/index.js';
import { LLM_PROVIDERS } from '../../../../server/runtime/spec/index.js';
import { json, sampleRequest, TEST_KEY, WireServer } from '../../../helpers/llm-wire.js';

const misconfigured = async (p: Promise<unknown>, pattern: RegExp) => {
  const err = await p.catch((e: unknown) => e);
  assert.ok(err instanceof LlmError, `expected LlmError, got ${String(err)}`);
  assert.equal(err.code, 'Misconfigured');
  assert.match(err.message, pattern);
  assert.ok(!err.message.includes(TEST_KEY));
};

describe('llm: createProvider from the environment', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toka-llm-config-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("the spec schema's llm.provider names exactly the providers", () => {
    assert.deepEqual([...LLM_PROVIDERS], [...PROVIDER_NAMES]);
  });

  it('without LLM_PROVIDER, the first provider with a key wins: anthropic, openai, then local', async () => {
    assert.equal((await createProvider({}, { env: { OPENAI_API_KEY: 'o', ANTHROPIC_API_KEY: 'a' } })).name, 'anthropic');
    assert.equal((await createProvider({}, { env: { OPENAI_API_KEY: 'o', LOCAL_LLM_ENDPOINT: 'http://127.0.0.1:1' } })).name, 'openai');
    assert.equal((await createProvider({}, { env: { LOCAL_LLM_ENDPOINT: 'http://127.0.0.1:1' } })).name, 'ollama');
    await misconfigured(createProvider({}, { env: {} }), /no LLM provider configured/);
  });

  it('LLM_PROVIDER picks a provider; an unknown name lists the known ones; a chosen provider needs its key', async () => {
    assert.equal((await createProvider({}, { env: { LLM_PROVIDER: 'openai', OPENAI_API_KEY: 'o', ANTHROPIC_API_KEY: 'a' } })).name, 'openai');
    assert.equal((await createProvider({}, { env: { LLM_PROVIDER: 'local' } })).name, 'ollama');
    await misconfigured(createProvider({}, { env: { LLM_PROVIDER: 'gemini' } }), /anthropic, openai, ollama, local, scripted, mcp-sampling/);
    await misconfigured(createProvider({}, { env: { LLM_PROVIDER: 'anthropic' } }), /ANTHROPIC_API_KEY \(or ANTHROPIC_API_KEY_FILE\) is not set/);
  });

  it('LLM_RATE_LIMIT, LLM_TIMEOUT and LLM_BASE_URL are checked, naming the variable', async () => {
    const env = { ANTHROPIC_API_KEY: TEST_KEY };
    await misconfigured(createProvider({}, { env: { ...env, LLM_RATE_LIMIT: '0' } }), /LLM_RATE_LIMIT must be an integer/);
    await misconfigured(createProvider({}, { env: { ...env, LLM_RATE_LIMIT: '2.5' } }), /LLM_RATE_LIMIT/);
    await misconfigured(createProvider({}, { env: { ...env, LLM_TIMEOUT: 'soon' } }), /LLM_TIMEOUT must be a number/);
    await misconfigured(createProvider({}, { env: { ...env, LLM_TIMEOUT: '-1' } }), /LLM_TIMEOUT/);
    await misconfigured(createProvider({}, { env: { ...env, LLM_BASE_URL: 'not a url' } }), /LLM_BASE_URL is not a URL/);
    await misconfigured(createProvider({}, { env: { ...env, LLM_BASE_URL: 'file:///etc/passwd' } }), /http\(s\)/);
    await misconfigured(createProvider({}, { env: { ...env, LLM_BASE_URL: 'http://u:p@127.0.0.1/' } }), /credentials/);
  });

  describe('keys from secret files', () => {
    let wire: WireServer;
    beforeEach(async () => {
      wire = await WireServer.start();
    });
    afterEach(() => wire.close());

    it('reads ANTHROPIC_API_KEY_FILE (trimmed) and sends that key', async () => {
      const file = join(dir, 'anthropic.key');
      await writeFile(file, `${TEST_KEY}\n`, { mode: 0o600 });
      const provider = await createProvider({}, { env: { ANTHROPIC_API_KEY_FILE: file, LLM_BASE_URL: wire.url } });
      assert.equal(provider.name, 'anthropic');
      wire.reply(json(200, { id: 'm', type: 'message', role: 'assistant', model: 'x', content: [], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } }));
      await provider.complete(sampleRequest, { signal: new AbortController().signal });
      assert.equal(wire.requests[0].headers.authorization, `Bearer ${TEST_KEY}`);
    });

    it('reads OPENAI_API_KEY_FILE', async () => {
      const file = join(dir, 'openai.key');
      await writeFile(file, TEST_KEY, { mode: 0o600 });
      const provider = await createProvider({}, { env: { OPENAI_API_KEY_FILE: file, LLM_BASE_URL: wire.url } });
      assert.equal(provider.name, 'openai');
      wire.reply(json(200, { id: 'c', object: 'chat.completion', created: 1, model: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] }));
      await provider.complete(sampleRequest, { signal: new AbortController().signal });
      assert.equal(wire.requests[0].headers.authorization, `Bearer ${TEST_KEY}`);
    });

    it('refuses both forms at once, a missing, empty or non-regular file, and a key with control characters', async () => {
      const file = join(dir, 'k');
      await writeFile(file, TEST_KEY, { mode: 0o600 });
      await misconfigured(createProvider({}, { env: { ANTHROPIC_API_KEY: TEST_KEY, ANTHROPIC_API_KEY_FILE: file } }), /not both/);
      await misconfigured(createProvider({}, { env: { ANTHROPIC_API_KEY_FILE: join(dir, 'missing') } }), /cannot read \(ENOENT\)/);
      const empty = join(dir, 'empty');
      await writeFile(empty, '\n', { mode: 0o600 });
      await misconfigured(createProvider({}, { env: { ANTHROPIC_API_KEY_FILE: empty } }), /is empty/);
      await misconfigured(createProvider({}, { env: { ANTHROPIC_API_KEY_FILE: dir } }), /not a regular file/);
      await misconfigured(createProvider({}, { env: { ANTHROPIC_API_KEY: `${TEST_KEY}\r\nX-Injected: 1` } }), /control characters/);
    });

    it('warns about a group- or world-readable key file without printing the key; the key never reaches the log', async () => {
      const file = join(dir, 'loose.key');
      await writeFile(file, TEST_KEY);
      await chmod(file, 0o644);
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', write: (line) => lines.push(line) });
      const provider = await createProvider({ maxRetries: 0 }, { env: { ANTHROPIC_API_KEY_FILE: file, LLM_BASE_URL: wire.url }, logger });
      const warning = lines.map((l) => JSON.parse(l)).find((r) => r.level === 'warn');
      assert.ok(warning, 'a warning was logged');
      assert.match(warning.msg, /readable by group or others/);
      wire.reply((res, req) => void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: String(req.headers.authorization) } })));
      const err = await provider.complete(sampleRequest, { signal: new AbortController().signal }).catch((e: unknown) => e);
      logger.error('llm call failed', { err });
      assert.ok(lines.length >= 3);
      for (const line of lines) assert.ok(!line.includes(TEST_KEY), `key in log line ${line}`);
      assert.ok(!inspect(provider, { depth: 10, showHidden: true }).includes(TEST_KEY));
      assert.ok(!JSON.stringify(provider).includes(TEST_KEY));
    });
  });
});
