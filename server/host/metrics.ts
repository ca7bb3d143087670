/**
 * In-process counters rendered as Prometheus text (GET /metrics). Label sets are bounded: operation types
 * come from registered opcodes (unknown ones count as `invalid`), error names from protocol/errors.ts.
 */
import type { LogStats } from '../store/event-log.js';

const LATENCY_BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000];
const MAX_LABELS = 128;

export class Metrics {
  private readonly ops = new Map<string, number>();
  private readonly errors = new Map<string, number>();
  private readonly buckets = new Array<number>(LATENCY_BUCKETS_MS.length).fill(0);
  private latencySum = 0;
  private latencyCount = 0;
  private subscriberCount = 0;
  private readonly connectionCounts = new Map<string, number>();

  operation(type: string, ms: number): void {
    bump(this.ops, type);
    this.latencySum += ms;
    this.latencyCount++;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]) this.buckets[i]++;
  }

  error(name: string): void {
    bump(this.errors, name);
  }

  subscribers(delta: number): void {
    this.subscriberCount += delta;
  }

  connections(transport: string, delta: number): void {
    this.connectionCounts.set(transport, (this.connectionCounts.get(transport) ?? 0) + delta);
  }

  connectionCount(transport: string): number {
    return this.connectionCounts.get(transport) ?? 0;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(gauges: { logSeq: number; ready: boolean; log?: LogStats }): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('toka_operations_total', 'counter', 'Operations appended to the log, by operation type.');
    for (const [type, n] of this.ops) lines.push(`toka_operations_total{type="${esc(type)}"} ${n}`);
    family('toka_errors_total', 'counter', 'Failed requests, by error name.');
    for (const [name, n] of this.errors) lines.push(`toka_errors_total{name="${esc(name)}"} ${n}`);
    family('toka_operation_duration_ms', 'histogram', 'Submit latency through verify, kernel and durable append.');
    LATENCY_BUCKETS_MS.forEach((le, i) => lines.push(`toka_operation_duration_ms_bucket{le="${le}"} ${this.buckets[i]}`));
    lines.push(`toka_operation_duration_ms_bucket{le="+Inf"} ${this.latencyCount}`);
    lines.push(`toka_operation_duration_ms_sum ${this.latencySum.toFixed(3)}`, `toka_operation_duration_ms_count ${this.latencyCount}`);
    family('toka_log_seq', 'gauge', 'Sequence number of the last durable log record.');
    lines.push(`toka_log_seq ${gauges.logSeq}`);
    if (gauges.log) {
      family('toka_log_commits_total', 'counter', 'Log transactions committed by group commit (one fsync each on SQLite).');
      lines.push(`toka_log_commits_total ${gauges.log.transactions}`);
      family('toka_log_appends_total', 'counter', 'Appends (operations\' event batches) committed; appends per commit is the group-commit batching.');
      lines.push(`toka_log_appends_total ${gauges.log.batches}`);
      family('toka_log_records_total', 'counter', 'Records committed since the host started.');
      lines.push(`toka_log_records_total ${gauges.log.records}`);
    }
    family('toka_subscribers', 'gauge', 'Open event subscriptions.');
    lines.push(`toka_subscribers ${this.subscriberCount}`);
    family('toka_connections', 'gauge', 'Open connections, by transport.');
    for (const [transport, n] of this.connectionCounts) lines.push(`toka_connections{transport="${esc(transport)}"} ${n}`);
    family('toka_ready', 'gauge', '1 when the host accepts operations.');
    lines.push(`toka_ready ${gauges.ready ? 1 : 0}`);
    return `${lines.join('\n')}\n`;
  }
}

function bump(map: Map<string, number>, key: string): void {
  if (!map.has(key) && map.size >= MAX_LABELS) key = 'other';
  map.set(key, (map.get(key) ?? 0) + 1);
}

function esc(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
