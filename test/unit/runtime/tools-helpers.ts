/** Shared fixtures for the tool tests: a real temporary workspace and a call context. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolError, type ToolErrorCode } from '../../../server/runtime/tools/errors.js';
import { DEFAULT_TOOL_LIMITS, type ToolContext, type ToolLimits } from '../../../server/runtime/tools/types.js';

/** A fresh directory holding `ws/` (the workspace) and `outside/` (a sibling the tools must not reach). */
export function sandbox(): { dir: string; ws: string; outside: string; cleanup: () => void } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'toka-tools-')));
  const ws = join(dir, 'ws');
  const outside = join(dir, 'outside');
  mkdirSync(ws);
  mkdirSync(outside);
  return { dir, ws, outside, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function ctx(workspace: string, limits: Partial<ToolLimits> = {}, signal: AbortSignal = new AbortController().signal): ToolContext {
  return { signal, workspace, limits: { ...DEFAULT_TOOL_LIMITS, ...limits }, agentId: 'agent-test' };
}

/** Awaits `p` and asserts it rejects with a ToolError of `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: ToolErrorCode): Promise<ToolError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ToolError, `expected a ToolError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected a ToolError ${code}, but the call succeeded`);
}
