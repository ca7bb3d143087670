/**
 * `toka replay --task <id> [--data dir] [--json]`: re-run one agent run from the log, calling no LLM and no
 * tool, and check that it produces the same events and the same state digest (server/runtime/replay.ts).
 * Opens the data dir's log read-only, so it works next to a running host. Exit 0 when identical, 1 with the
 * first difference otherwise. See docs/agents.md, "Replay".
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, parseLogLevel } from '../host/logger.js';
import { RUNTIME_HANDLERS } from '../runtime/lifecycle.js';
import { replayRun, type ReplayReport } from '../runtime/replay.js';
import { runtimeTools } from '../runtime/start.js';
import { openEventLog } from '../store/index.js';
import { DATA, UsageError, dataDir } from './args.js';
import type { Command } from './commands.js';

function describe(report: ReplayReport): string {
  const lines = [
    `run ${report.run}: seq ${report.fromSeq}..${report.toSeq}, ${report.compared} steps re-produced, ${report.applied} other records applied, ends ${report.state ?? 'unknown'}`,
  ];
  const d = report.difference;
  if (d === undefined) {
    lines.push(`identical: every step and the state digest ${report.digest.replayed}`);
    return lines.join('\n');
  }
  lines.push(`DIFFERENT at ${d.seq === null ? 'the end of the log' : `seq ${d.seq}`}${d.type ? ` (${d.type})` : ''}: ${d.message}`);
  if (d.field !== undefined) lines.push(`  field ${d.field}`);
  if (d.recorded !== undefined) lines.push(`  recorded ${d.recorded}`);
  if (d.replayed !== undefined) lines.push(`  replayed ${d.replayed}`);
  lines.push(`  state digest: recorded ${report.digest.recorded}, replayed ${report.digest.replayed}`);
  return lines.join('\n');
}

export const replayCommand: Command = {
  summary: 're-run an agent run from the log (no LLM, no tool) and check its events and state digest: --task ID [--json]',
  options: {
    ...DATA,
    task: { type: 'string', value: '<id>', help: 'the run (A2A task) id, or the queued task a run was started for; required' },
    json: { type: 'boolean', help: 'print the report as JSON', default: 'a short text report' },
  },
  run: async (flags) => {
    const id = flags.task;
    if (typeof id !== 'string' || id === '') throw new UsageError('missing --task');
    const dir = dataDir(typeof flags.data === 'string' ? flags.data : undefined);
    const path = join(dir, 'events.db');
    if (!existsSync(path)) throw new UsageError(`no event log at ${path}`);
    const log = openEventLog({ kind: 'sqlite', path, readOnly: true });
    try {
      const logger = createLogger({ level: parseLogLevel(process.env.TOKA_LOG_LEVEL, 'warn') });
      const report = await replayRun(log, id, { handlers: RUNTIME_HANDLERS, tools: runtimeTools(), logger });
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${describe(report)}\n`);
      return report.identical ? 0 : 1;
    } finally {
      await log.close();
    }
  },
};
