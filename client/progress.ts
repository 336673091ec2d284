/**
 * Progress reporting for long client work (encrypt, decrypt, digest). The library reports events;
 * the CLI renders them on stderr (never stdout, which carries results and --json output).
 */

/** One progress event. */
export interface ProgressEvent {
  /** What is happening: 'keyset', 'encrypt', 'sign', 'publish', 'verify', 'rewrap', 'decrypt', … */
  phase: string
  /** Bytes (or items) done so far in this phase. */
  done?: number
  /** Total, when known. */
  total?: number
  /** A short human-readable note. */
  note?: string
}

/** Progress callback. Must not throw. */
export type ProgressFn = (ev: ProgressEvent) => void

/** A no-op progress callback. */
export const noProgress: ProgressFn = () => {}

/**
 * A progress renderer for a terminal's stderr: one line per phase change, and byte counters at most
 * every 250 ms (rewritten in place on a TTY). `quiet` renders nothing.
 */
export function stderrProgress (quiet = false): ProgressFn {
  if (quiet) return noProgress
  let lastPhase = ''
  let lastAt = 0
  const tty = process.stderr.isTTY === true
  return (ev) => {
    const now = Date.now()
    const phaseChanged = ev.phase !== lastPhase
    if (!phaseChanged && ev.done !== undefined && ev.total !== undefined && ev.done < ev.total && now - lastAt < 250) return
    lastAt = now
    let line = `keymesh: ${ev.phase}`
    if (ev.done !== undefined && ev.total !== undefined && ev.total > 0) {
      line += ` ${fmtBytes(ev.done)} / ${fmtBytes(ev.total)} (${Math.floor(100 * ev.done / ev.total)}%)`
    } else if (ev.done !== undefined) line += ` ${fmtBytes(ev.done)}`
    if (ev.note !== undefined) line += ` ${ev.note}`
    if (tty && !phaseChanged) process.stderr.write(`\r\x1b[K${line}`)
    else process.stderr.write(`${tty && lastPhase !== '' ? '\n' : ''}${line}${tty ? '' : '\n'}`)
    lastPhase = ev.phase
  }
}

/** Finishes a TTY progress line (newline) if one is open. */
export function endProgress (): void {
  if (process.stderr.isTTY === true) process.stderr.write('\n')
}

/** 1536 → "1.5 KiB". */
export function fmtBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}
