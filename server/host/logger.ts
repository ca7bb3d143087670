/**
 * Structured logs: one JSON object per line on stderr (stdout is the wire in stdio modes).
 * Fields named like secrets are redacted, so a careless `log.info('x', { token })` cannot leak one.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEY = /token|secret|authorization|password|private|^d$|^k$/i;

export interface Logger {
  level: LogLevel;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const base = options.base ?? {};
  const logger: Logger = {
    level: options.level ?? 'info',
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level: logger.level, write, base: { ...base, ...fields } }),
  };
  function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[logger.level]) return;
    const record = { t: new Date().toISOString(), level, msg, ...(redact({ ...base, ...fields }) as object) };
    write(`${JSON.stringify(record)}\n`);
  }
  return logger;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel): LogLevel {
  return value && value in ORDER ? (value as LogLevel) : fallback;
}
