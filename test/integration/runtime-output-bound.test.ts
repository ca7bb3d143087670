import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunToolResult } from '../../protocol/runtime.js';
import { Host } from '../../server/host/host.js';
import { createLogger } from '../../server/host/logger.js';
import { LIMITS, parseTranscript, scriptedProvider } from '../../server/runtime/llm/index.js';
import { boundedContent } from '../../server/runtime/runner.js';
import { AgentRuntime, RUNTIME_HANDLERS } from '../../server/runtime/runtime.js';
import { analyzeSpecText } from '../../server/runtime/spec/index.js';
import { runtimeTools } from '../../server/runtime/start.js';

const quiet = createLogger({ level: 'silent' });

const SPEC = `
metadata: {name: reader, version: v0.1.0, created: "2026-11-20", workstream: Output Bounds}
spec: {name: Reader Agent, domain: documentation, priority: low}
capabilities: {primary: [reading]}
objectives:
  - {description: Read a large file, deliverable: what it read, validation: The run completes}
tasks:
  default:
    - {description: Read big.txt, priority: low}
security:
  capabilities_required: [filesystem-read]
`;

describe('tool output bound', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-output-bound-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('cuts a tool result longer than the prompt part limit with a marker, so the next LLM turn is accepted', async () => {
    const host = await Host.open({ dataDir: join(dir, 'data'), logger: quiet, handlers: RUNTIME_HANDLERS, rateLimit: false });
    const provider = scriptedProvider(
      parseTranscript({
        turns: [
          { toolCalls: [{ id: 'r1', name: 'fs_read', arguments: { path: 'big.txt' } }] },
          { expect: { toolResults: [{ callId: 'r1', isError: false, contains: 'of 40000 characters kept]' }] }, text: 'read it' },
        ],
      }),
    );
    const runtime = await AgentRuntime.start({ host, provider: () => provider, tools: runtimeTools(), workspaceRoot: join(dir, 'workspaces'), logger: quiet });
    try {
      const { token } = await host.mint(host.localSession('v'), {
        subject: 'dev',
        permissions: ['agent:spawn', 'capability:grant', 'task:run', 'task:schedule', 'state:read', 'events:read', 'tool:fs-read'],
      });
      const dev = await host.authenticate(token);
      const a = analyzeSpecText('reader.agent.yaml', SPEC);
      const { agent } = await runtime.spawn(dev, { spec: a.spec!, digest: a.digest!, document: a.document });
      mkdirSync(join(dir, 'workspaces', agent), { recursive: true });
      writeFileSync(join(dir, 'workspaces', agent, 'big.txt'), 'x'.repeat(40_000));
      const { runs } = await runtime.run(dev, { agent, input: 'read big.txt' });
      const run = await runtime.waitForEnd(dev, runs[0]);
      assert.equal(run.state, 'completed', JSON.stringify(run.reason));
      const [recorded] = await host.queryEvents(dev, { types: ['ToolResultRecorded'], limit: 10 });
      const result = (recorded.event as unknown as { result: RunToolResult }).result;
      assert.ok(result.content.length <= LIMITS.promptPartChars, `${result.content.length} characters recorded`);
      assert.match(result.content, /^x+\n\[tool output truncated: \d+ of 40000 characters kept\]$/);
      const kept = Number(/truncated: (\d+) of/.exec(result.content)![1]);
      assert.equal(result.content.indexOf('\n'), kept, 'the marker states how much was kept');
    } finally {
      await runtime.close();
      await host.close();
    }
  });

  it('leaves output within the limit alone and never splits a surrogate pair', () => {
    assert.equal(boundedContent('short'), 'short');
    const exact = 'y'.repeat(LIMITS.promptPartChars);
    assert.equal(boundedContent(exact), exact);
    const emoji = '😀'.repeat(LIMITS.promptPartChars);
    for (const text of [emoji, `a${emoji}`]) {
      const cut = boundedContent(text);
      assert.ok(cut.length <= LIMITS.promptPartChars);
      assert.doesNotMatch(cut, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/, 'no lone surrogate');
      assert.match(cut, /\[tool output truncated: \d+ of \d+ characters kept\]$/);
    }
  });
});
