/**
 * The size, CPU and duration spellings of agent specs, parsed to integers. Each returns `undefined` for a
 * spelling it does not accept or a value beyond `Number.MAX_SAFE_INTEGER`; the schema has already checked
 * the spelling, so the loader reports `undefined` as out of range.
 */

const SIZE_UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['B', 1],
  ['KB', 1024],
  ['MB', 1024 ** 2],
  ['GB', 1024 ** 3],
  ['TB', 1024 ** 4],
]);

/** `512MB`, `1GB`, `64KB`, `100B`, `1024` or the number 1024 → bytes (1 KB = 1024 B). */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = /^(\d+)([KMGT]?B)?$/.exec(value);
  if (!m) return undefined;
  return safe(Number(m[1]) * (SIZE_UNITS.get(m[2] ?? '') ?? Number.NaN));
}

/**
 * CPU as a share of one core → millicores (1000 = one core). `50%` is a percent; a bare number up to 1 is a
 * fraction (`0.75`), above 1 a percent (`90`). Zero is not a bound and gives `undefined`.
 */
export function parseCpu(value: string | number): number | undefined {
  let share: number;
  if (typeof value === 'number') {
    share = value <= 1 ? value : value / 100;
  } else {
    const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(value);
    if (!m) return undefined;
    const n = Number(m[1]);
    share = m[2] === '%' || n > 1 ? n / 100 : n;
  }
  const millicores = Math.round(share * 1000);
  return Number.isFinite(share) && millicores > 0 ? safe(millicores) : undefined;
}

const DURATION_UNITS: ReadonlyMap<string, number> = new Map([
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['h', 3_600_000],
  ['d', 86_400_000],
]);

/** `100ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of seconds → milliseconds. Zero gives `undefined`. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? safe(value * 1000) : undefined;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value);
  if (!m) return undefined;
  const ms = Number(m[1]) * (DURATION_UNITS.get(m[2] ?? 's') ?? Number.NaN);
  return ms > 0 ? safe(ms) : undefined;
}

function safe(n: number): number | undefined {
  return Number.isSafeInteger(n) ? n : undefined;
}
