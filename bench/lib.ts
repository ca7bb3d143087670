/**
 * Benchmark helpers. Every figure is printed as a ratio against a baseline measured in the same run,
 * alternating candidate and baseline rounds so machine noise hits both alike; the median round counts.
 */
export interface Rate {
  /** Operations per second (median of rounds). */
  perSecond: number;
  rounds: number[];
}

/** Run `round()` `rounds` times; each returns how many operations it did; report the median rate. */
export async function measure(rounds: number, round: () => Promise<number> | number): Promise<Rate> {
  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = process.hrtime.bigint();
    const n = await round();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    rates.push(n / seconds);
  }
  return { perSecond: median(rates), rounds: rates };
}

/** What `compare` measured: both rates and candidate ÷ baseline. */
export interface Comparison {
  candidate: Rate;
  baseline: Rate;
  ratio: number;
}

/** After one unmeasured warm-up round each, measure candidate and baseline in alternation (c, b, b, c, c, b, ...). */
export async function compare(
  rounds: number,
  candidate: () => Promise<number> | number,
  baseline: () => Promise<number> | number,
): Promise<Comparison> {
  const c: number[] = [];
  const b: number[] = [];
  // One unmeasured round each first: a freshly started server (or code path) is still being compiled by the
  // JIT, and a cold first round would count against whichever side has more code to warm up.
  await candidate();
  await baseline();
  for (let i = 0; i < rounds; i++) {
    // Alternate which side goes first, so neither always runs on a warmer (or noisier) machine.
    if (i % 2 === 0) {
      c.push((await measure(1, candidate)).perSecond);
      b.push((await measure(1, baseline)).perSecond);
    } else {
      b.push((await measure(1, baseline)).perSecond);
      c.push((await measure(1, candidate)).perSecond);
    }
  }
  const candidateRate = { perSecond: median(c), rounds: c };
  const baselineRate = { perSecond: median(b), rounds: b };
  return { candidate: candidateRate, baseline: baselineRate, ratio: candidateRate.perSecond / baselineRate.perSecond };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface Row {
  name: string;
  candidate: number;
  baselineName: string;
  baseline: number;
  ratio: number;
  /** Minimum acceptable ratio, if the issue sets one. */
  target?: number;
}

/** The table row for a comparison. */
export function comparisonRow(name: string, baselineName: string, result: Comparison, target?: number): Row {
  return { name, candidate: result.candidate.perSecond, baselineName, baseline: result.baseline.perSecond, ratio: result.ratio, target };
}

export function printRows(title: string, rows: Row[]): void {
  const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
  process.stdout.write(`\n## ${title}\n\n`);
  process.stdout.write('| measure | ops/s | baseline | baseline ops/s | ratio | target | met |\n|---|---:|---|---:|---:|---:|---|\n');
  for (const r of rows) {
    const met = r.target === undefined ? '' : r.ratio >= r.target ? 'yes' : 'NO';
    process.stdout.write(
      `| ${r.name} | ${fmt(r.candidate)} | ${r.baselineName} | ${fmt(r.baseline)} | ${r.ratio.toFixed(2)}× | ${r.target !== undefined ? `≥ ${r.target}×` : ''} | ${met} |\n`,
    );
  }
}
