/**
 * Structured logging: one JSON object per line on stderr, `{time, level, msg, ...fields}`.
 *
 * Never log secrets: callers pass only public identifiers, sizes, codes and durations as fields.
 * As a second line of defence, `Uint8Array` field values are replaced by their length and fields
 * whose name looks secret (`secret`, `share`, `passphrase`, `key` but not `keySetId`…) are
 * redacted.
 */

/** Log levels in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

/** Extra structured data on a log line (public values only). */
export type LogFields = Record<string, unknown>

/** A structured logger. Never throws. */
export interface Logger {
  debug: (msg: string, fields?: LogFields) => void
  info: (msg: string, fields?: LogFields) => void
  warn: (msg: string, fields?: LogFields) => void
  error: (msg: string, fields?: LogFields) => void
  /** A logger that adds `fields` to every line. */
  child: (fields: LogFields) => Logger
}

const SECRET_NAME = /(secret|passphrase|password|scalar|nonce|share$|^share|privateKey|storageKey)/i

function clean (fields: LogFields): LogFields {
  const out: LogFields = {}
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_NAME.test(k) && k !== 'shareCount') { out[k] = '[redacted]'; continue }
    if (v instanceof Uint8Array) { out[k] = `[${v.length} bytes]`; continue }
    if (v instanceof Error) { out[k] = { name: v.name, message: v.message, ...('code' in v ? { code: (v as { code: unknown }).code } : {}) }; continue }
    if (typeof v === 'bigint') { out[k] = '[bigint]'; continue }
    out[k] = v
  }
  return out
}

/**
 * Creates a logger writing to `write` (default: process.stderr). Lines below `level` are dropped.
 * Never throws (a failing sink is ignored: logging must not crash the daemon).
 */
export function createLogger (opts: { level?: LogLevel, base?: LogFields, write?: (line: string) => void } = {}): Logger {
  const min = ORDER[opts.level ?? 'info']
  const base = opts.base ?? {}
  const write = opts.write ?? ((line: string) => { process.stderr.write(line) })
  // Cleaned once, not on every line (the per-request `rpc` line is on the hot path).
  let cleanBase: LogFields
  try { cleanBase = clean(base) } catch { cleanBase = {} }
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[level] < min) return
    try {
      const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...cleanBase, ...(fields === undefined ? {} : clean(fields)) })
      write(line + '\n')
    } catch { /* never let logging crash the caller */ }
  }
  return {
    debug: (m, f) => { emit('debug', m, f) },
    info: (m, f) => { emit('info', m, f) },
    warn: (m, f) => { emit('warn', m, f) },
    error: (m, f) => { emit('error', m, f) },
    child: (f) => createLogger({ level: opts.level, base: { ...base, ...f }, write })
  }
}

/** A logger that drops everything (tests). */
export const nullLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => nullLogger }
