import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProvider, LlmError, type LlmMessage, type LlmProvider, type LlmRequest } from '../../server/runtime/llm/index.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/llm/read-file.transcript.json', import.meta.url));
const tools = [{ name: 'files_read', description: 'Read a file', inputSchema: { type: 'object' } }];
const signal = () => new AbortController().signal;
const request = (messages: LlmMessage[]): LlmRequest => ({ messages, tools });
const first: LlmMessage = { role: 'user', text: 'What does a.txt say?' };
const call: LlmMessage = { role: 'assistant', text: 'Reading it.', toolCalls: [{ id: 'call_1', name: 'files_read', arguments: { path: 'a.txt' } }] };

describe('llm provider: scripted (transcript replay)', () => {
  let provider: LlmProvider;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toka-llm-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    provider = await createProvider({}, { env: { LLM_PROVIDER: 'scripted', LLM_TRANSCRIPT: FIXTURE } });
  });

  it('replays a two-turn tool conversation, each turn checked against what it expects', async () => {
    const texts: string[] = [];
    const one = await provider.complete(request([first]), { signal: signal(), onText: (t) => texts.push(t) });
    assert.deepEqual(one, {
      text: 'Reading it.',
      toolCalls: [{ id: 'call_1', name: 'files_read', arguments: { path: 'a.txt' } }],
      stop: 'tool_use',
      usage: { inputTokens: 20, outputTokens: 8 },
      model: 'scripted-demo',
    });
    const two = await provider.complete(
      request([first, call, { role: 'tool', results: [{ callId: 'call_1', content: 'hello world', isError: false }] }]),
      { signal: signal(), onText: (t) => texts.push(t) },
    );
    assert.deepEqual(two, { text: 'a.txt says hello.', toolCalls: [], stop: 'end', usage: { inputTokens: 0, outputTokens: 0 }, model: 'scripted-demo' });
    assert.deepEqual(texts, ['Reading it.', 'a.txt says hello.']);
  });

  it('the turn answered follows from the conversation, so the same request gets the same turn again', async () => {
    const a = await provider.complete(request([first]), { signal: signal() });
    const b = await provider.complete(request([first]), { signal: signal() });
    assert.deepEqual(a, b);
  });

  it('a tool result the transcript does not expect is a TranscriptMismatch naming the turn and the difference', async () => {
    const err = await provider
      .complete(request([first, call, { role: 'tool', results: [{ callId: 'call_1', content: 'permission denied', isError: true }] }]), { signal: signal() })
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'TranscriptMismatch');
    assert.match(err.message, /turn 2: tool result 1: isError true, expected false/);
  });

  it('a conversation longer than the transcript is a TranscriptMismatch', async () => {
    const err = await provider
      .complete(
        request([
          first,
          call,
          { role: 'tool', results: [{ callId: 'call_1', content: 'hello', isError: false }] },
          { role: 'assistant', text: 'a.txt says hello.', toolCalls: [] },
          { role: 'user', text: 'and b.txt?' },
        ]),
        { signal: signal() },
      )
      .catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'TranscriptMismatch');
    assert.match(err.message, /has 2 turns; turn 3 was asked for/);
  });

  it('checks the first turn too: wrong user text, missing tool', async () => {
    const wrongText = await provider.complete(request([{ role: 'user', text: 'hi' }]), { signal: signal() }).catch((e: unknown) => e);
    assert.equal((wrongText as LlmError).code, 'TranscriptMismatch');
    const noTool = await provider.complete({ messages: [first], tools: [] }, { signal: signal() }).catch((e: unknown) => e);
    assert.equal((noTool as LlmError).code, 'TranscriptMismatch');
    assert.match((noTool as LlmError).message, /tools not offered: files_read/);
  });

  it('a delayed turn is cancellable', async () => {
    const path = join(dir, 'slow.json');
    await writeFile(path, JSON.stringify({ turns: [{ text: 'late', delayMs: 30_000 }] }));
    provider = await createProvider({ provider: 'scripted', transcript: path }, { env: {} });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const err = await provider.complete(request([first]), { signal: controller.signal }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Cancelled');
  });

  it('a bad transcript is refused when the provider is built, naming the file and the field', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ turns: [{ text: 'ok' }, { toolCalls: [{ id: '', name: 'x' }] }] }));
    const err = await createProvider({ provider: 'scripted', transcript: path }, { env: {} }).catch((e: unknown) => e);
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'Misconfigured');
    assert.ok(err.message.includes(path));
    assert.match(err.message, /turns\.1\.toolCalls\.0\.id/);
    const notJson = join(dir, 'not.json');
    await writeFile(notJson, 'turns:\n  - text: hi\n');
    const err2 = await createProvider({ provider: 'scripted', transcript: notJson }, { env: {} }).catch((e: unknown) => e);
    assert.equal((err2 as LlmError).code, 'Misconfigured');
    const unknownField = join(dir, 'unknown.json');
    await writeFile(unknownField, JSON.stringify({ turns: [{ txt: 'typo' }] }));
    const err3 = await createProvider({ provider: 'scripted', transcript: unknownField }, { env: {} }).catch((e: unknown) => e);
    assert.equal((err3 as LlmError).code, 'Misconfigured');
    const missing = await createProvider({ provider: 'scripted' }, { env: {} }).catch((e: unknown) => e);
    assert.match((missing as LlmError).message, /LLM_TRANSCRIPT/);
  });
});
