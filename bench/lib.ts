/**
 * Benchmark helpers: timing (warm-up, repeat until a minimum duration), statistics (ops/s, p50,
 * p99), the result record every suite returns, and the table/JSON renderers used by bench/run.ts.
 *
 * Timing model: an operation is timed one call at a time with performance.now() (every op in the
 * suites costs ≥ ~50 µs, so the ~0.1 µs clock overhead is noise). `opsPerSec` is calls / total
 * time of the measured phase; p50/p99 come from the per-call samples. Warm-up runs first (JIT,
 * noble's precomputed tables, lazy allocations) and is not counted.
 */

/** One row of a benchmark report. `value === null` means the operation is not available. */
export interface Result {
  /** Suite name (file name under bench/suites/). */
  suite: string
  /** Stable row id (machine-readable, e.g. 'partial'). */
  id: string
  /** Human label. */
  name: string
  /** Unit of `value`. */
  unit: 'ops/s' | 'MB/s' | '%'
  /** The measured figure, or null when not available (see `note`). */
  value: number | null
  /** Latency of one operation, milliseconds (ops/s rows). */
  p50Ms?: number
  p99Ms?: number
  meanMs?: number
  /** Number of timed operations (or passes, for MB/s rows). */
  samples?: number
  /** Cost in units of the suite's baseline (crypto: bare variable-base scalar multiplications). */
  multiple?: number
  /** Target, human-readable (e.g. '≤ 4×', '≥ 90%'). */
  target?: string
  /** Whether the target was met (absent when there is no target or no value). */
  targetMet?: boolean
  /** Free-form detail: why not available, what exactly was measured. */
  note?: string
  /** Secondary figures (e.g. wall-clock MB/s beside the CPU-time figure). */
  extra?: Record<string, number>
}

/** What a suite gets from the runner. */
export interface BenchContext {
  /** Short runs for smoke tests (less warm-up, shorter minimum time, smaller buffers). */
  quick: boolean
  /** When set, run only rows whose id is listed (suites may ignore it for rows others depend on). */
  rows?: string[]
  /** Progress messages (stderr). */
  log: (msg: string) => void
}

/** A suite module: bench/suites/<name>.ts. */
export interface Suite {
  run: (ctx: BenchContext) => Promise<Result[]>
}

export interface TimingOptions {
  /** Warm-up duration in ms (at least one call). */
  warmupMs: number
  /** Measure until at least this many ms have passed ... */
  minMs: number
  /** ... and at least this many calls were timed. */
  minSamples: number
  /** Hard cap on timed calls. */
  maxSamples: number
}

/** Default timing for full runs and for --quick. */
export function timingFor (quick: boolean): TimingOptions {
  return quick
    ? { warmupMs: 20, minMs: 100, minSamples: 5, maxSamples: 100_000 }
    : { warmupMs: 300, minMs: 2000, minSamples: 30, maxSamples: 1_000_000 }
}

export interface Timing {
  opsPerSec: number
  meanMs: number
  p10Ms: number
  p50Ms: number
  p99Ms: number
  samples: number
  /** p10 and p50 of the baseline calls interleaved with this measurement (see `measure`). */
  baselineP10Ms?: number
  baselineP50Ms?: number
}

/** A baseline operation to interleave with a measurement: `prepare` (untimed) then `run` (timed). */
export interface Baseline<B = unknown> {
  prepare: () => B
  run: (b: B) => unknown
}

/** Nearest-rank percentile of an ascending-sorted list (p in [0, 100]). */
export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number
}

/** Median of an unsorted list. */
export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/** Summarises per-call samples (ms). */
export function summarise (samplesMs: number[]): Timing {
  const sorted = [...samplesMs].sort((a, b) => a - b)
  const total = samplesMs.reduce((a, b) => a + b, 0)
  return {
    opsPerSec: samplesMs.length / (total / 1000),
    meanMs: total / samplesMs.length,
    p10Ms: percentile(sorted, 10),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    samples: samplesMs.length
  }
}

/**
 * Times `fn` call by call: warm-up, then repeats until both `minMs` and `minSamples` are reached.
 * `setup` (optional) runs before each call outside the timed region (fresh nonces and the like).
 * With a `baseline`, baseline calls are timed between calls of `fn` (one after each, as long as the
 * baseline has had no more time than `fn`), so both see the same machine load; the result's `baselineP50Ms` is their median (the ops/s and percentiles are
 * those of `fn` alone).
 */
export async function measure<S = void, B = unknown> (fn: (s: S) => unknown, opts: TimingOptions, setup?: () => S, baseline?: Baseline<B>): Promise<Timing> {
  const prep = setup ?? ((() => undefined) as () => S)
  const w0 = performance.now()
  do { const s = prep(); await fn(s) } while (performance.now() - w0 < opts.warmupMs)
  const samples: number[] = []
  const base: number[] = []
  let spent = 0
  let baseSpent = 0
  while (samples.length < opts.maxSamples && (samples.length < opts.minSamples || spent < opts.minMs)) {
    const s = prep()
    const a = performance.now()
    await fn(s)
    const d = performance.now() - a
    samples.push(d)
    spent += d
    // Interleave a baseline call whenever the baseline has had less time than `fn` (so cheap
    // operations do not pay for thousands of baseline calls; the total stays ≤ ~2× minMs).
    if (baseline !== undefined && (baseSpent <= spent || base.length < 5)) {
      const b = baseline.prepare()
      const c = performance.now()
      baseline.run(b)
      const bd = performance.now() - c
      base.push(bd)
      baseSpent += bd
    }
  }
  const t = summarise(samples)
  if (base.length > 0) {
    const sb = [...base].sort((x, y) => x - y)
    t.baselineP10Ms = percentile(sb, 10)
    t.baselineP50Ms = percentile(sb, 50)
  }
  return t
}

/**
 * Builds an ops/s row. `multiple` = p10(op) / p10(baseline), using the baseline calls interleaved
 * with this very measurement (`t.baselineP10Ms`) when there are any, else the separate `baseline`
 * timing. Low percentiles of interleaved calls, because on a shared machine a call is often
 * preempted by other processes, and the longer the operation the likelier that is: p50 then
 * inflates long operations relative to the short baseline and measures scheduling, not work.
 * The p50-based ratio is kept in `extra.multipleP50`.
 */
export function opsRow (suite: string, id: string, name: string, t: Timing, extra: Partial<Result> = {}, baseline?: Timing): Result {
  const r: Result = {
    suite, id, name, unit: 'ops/s', value: t.opsPerSec, p50Ms: t.p50Ms, p99Ms: t.p99Ms, meanMs: t.meanMs, samples: t.samples, ...extra
  }
  const b10 = t.baselineP10Ms ?? baseline?.p10Ms
  const b50 = t.baselineP50Ms ?? baseline?.p50Ms
  if (b10 !== undefined && b50 !== undefined) {
    r.multiple = t.p10Ms / b10
    r.extra = { ...r.extra, p10Ms: t.p10Ms, multipleP50: t.p50Ms / b50 }
  }
  return r
}

/** A row for an operation that could not be measured (module missing, API mismatch, error). */
export function unavailable (suite: string, id: string, name: string, why: string, extra: Partial<Result> = {}): Result {
  return { suite, id, name, unit: 'ops/s', value: null, note: `not available: ${why}`, ...extra }
}

/** Sets targetMet for a "multiple ≤ max" target. */
export function atMost (r: Result, max: number): Result {
  r.target = `≤ ${max}×`
  if (r.multiple !== undefined && r.value !== null) r.targetMet = r.multiple <= max
  return r
}

function fmtNum (v: number): string {
  if (!Number.isFinite(v)) return String(v)
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  if (v >= 1) return v.toFixed(2)
  return v.toPrecision(3)
}

/** Readable fixed-width table of results. */
export function formatTable (results: Result[]): string {
  const head = ['suite', 'operation', 'value', 'unit', '× base', 'p50 ms', 'p99 ms', 'target', 'ok']
  const rows = results.map(r => [
    r.suite,
    r.name,
    r.value === null ? 'not available' : fmtNum(r.value),
    r.value === null ? '' : r.unit,
    r.multiple === undefined ? '' : fmtNum(r.multiple),
    r.p50Ms === undefined ? '' : fmtNum(r.p50Ms),
    r.p99Ms === undefined ? '' : fmtNum(r.p99Ms),
    r.target ?? '',
    r.targetMet === undefined ? '' : r.targetMet ? 'yes' : 'NO'
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] as string).length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 1 || i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join('  ').trimEnd()
  const out = [line(head), widths.map(w => '-'.repeat(w)).join('  ')]
  for (const row of rows) out.push(line(row))
  const notes = results.filter(r => r.note !== undefined).map(r => `  ${r.suite}/${r.id}: ${r.note as string}`)
  if (notes.length > 0) out.push('', 'notes:', ...notes)
  return out.join('\n')
}

/** Machine description recorded with every report. */
export interface BenchMeta {
  date: string
  node: string
  platform: string
  cpus: number
  cpuModel: string
  quick: boolean
  suites: string[]
}

/** The JSON report: `{ meta, results }`. */
export interface BenchReport { meta: BenchMeta; results: Result[] }
