/**
 * Reports: per scenario `report.json`, `report.md` and `timeline.svg` (faults as bands, per-second
 * success rate and latency, violations as red ticks), plus `index.md` / `index.json` over all
 * scenarios of a run. Pure functions from results to text, and one writer.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FaultWindow } from './schedule.ts'
import type { CheckCount, Violation } from './invariants.ts'
import type { OpRecord } from './workload.ts'
import type { Scenario } from './scenario.ts'
import type { LifecycleRecord } from './lifecycle.ts'

/** Latency percentiles (ms). */
export interface Latency { p50: number, p95: number, p99: number, max: number, count: number }

/** Per-type operation counters. */
export interface OpCounts { attempted: number, succeeded: number, failed: number, byError: Record<string, number> }

/** One executed fault event (for the report). */
export interface ExecutedEvent { tMs: number, label: string, fault: number, note?: string }

/** The result of one scenario run. */
export interface ScenarioResult {
  scenario: string
  description: string
  seed: number
  topology: { nodes: number, threshold: number, lying: number[] }
  durationS: number
  recoveryS: number
  replay: string
  startedAt: string
  wallS: number
  setupS: number
  ops: OpCounts & { byType: Record<string, OpCounts> }
  latency: Latency & { byType: Record<string, Latency>, stableQuorum: Latency }
  invariants: Record<string, CheckCount>
  violations: Violation[]
  faults: FaultWindow[]
  /** Lifecycle events: when each order was issued and when every node committed it. */
  lifecycle?: LifecycleRecord[]
  events: ExecutedEvent[]
  expected: Scenario['expect']
  liarNamed: Record<number, number>
  /** Acked wraps + builds verified by the final sweep. */
  sweep: {
    checked: number
    wrong: number
    error?: string
    /** Acknowledged wraps re-opened per envelope epoch. */
    epochs?: Record<string, number>
    /** With a committed reshare: wraps re-opened that were acknowledged before its order / after its commit. */
    reshare?: { before: number, after: number }
  }
  /** Per-second series for the timeline. */
  series: Array<{ s: number, ok: number, failed: number, p50: number, p99: number }>
  passed: boolean
  /** Set when the run could not be carried out (setup failure etc.). */
  error?: string
}

/** Percentiles of a list of latencies (nearest-rank). */
export function percentiles (xs: number[]): Latency {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number): number => s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] as number
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.length === 0 ? 0 : s[s.length - 1] as number, count: s.length }
}

/** Counts operations. */
export function countOps (ops: OpRecord[]): OpCounts {
  const byError: Record<string, number> = {}
  let ok = 0
  for (const op of ops) {
    if (op.ok) ok++
    else byError[op.code ?? 'INTERNAL'] = (byError[op.code ?? 'INTERNAL'] ?? 0) + 1
  }
  return { attempted: ops.length, succeeded: ok, failed: ops.length - ok, byError }
}

/** Per-second success and latency series over [0, durationS]. */
export function series (ops: OpRecord[], durationS: number): ScenarioResult['series'] {
  const out: ScenarioResult['series'] = []
  const buckets = new Map<number, OpRecord[]>()
  for (const op of ops) {
    const s = Math.floor(op.endMs / 1000)
    const b = buckets.get(s) ?? []
    b.push(op)
    buckets.set(s, b)
  }
  const last = Math.max(Math.ceil(durationS), ...buckets.keys())
  for (let s = 0; s <= last; s++) {
    const b = buckets.get(s) ?? []
    const lat = percentiles(b.filter(o => o.ok).map(o => o.endMs - o.startMs))
    out.push({ s, ok: b.filter(o => o.ok).length, failed: b.filter(o => !o.ok).length, p50: lat.p50, p99: lat.p99 })
  }
  return out
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const COLORS: Record<string, string> = {
  crash: '#e15759', stop: '#f28e2b', pause: '#b07aa1', 'restart-all': '#e15759', restart: '#f28e2b', partition: '#4e79a7',
  latency: '#edc948', bandwidth: '#9c755f', drop: '#76b7b2', wipe: '#7f0000', corrupt: '#7f0000', lifecycle: '#59a14f'
}

/** The SVG timeline of one scenario. */
export function timelineSvg (r: ScenarioResult): string {
  const W = 960
  const left = 60
  const right = 20
  const plotW = W - left - right
  const dur = Math.max(1, r.series.length - 1, r.durationS)
  const x = (ms: number): number => left + (Math.min(ms, dur * 1000) / (dur * 1000)) * plotW
  const rows = Math.max(1, r.faults.length)
  const bandH = 14
  const faultTop = 40
  const faultH = rows * (bandH + 4)
  const rateTop = faultTop + faultH + 20
  const rateH = 120
  const latTop = rateTop + rateH + 40
  const latH = 120
  const H = latTop + latH + 40
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`)
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  parts.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(r.scenario)} — seed ${r.seed}, ${r.topology.threshold}-of-${r.topology.nodes}${r.passed ? ' — PASS' : ' — FAIL'}</text>`)
  // Fault bands (also shaded behind the plots).
  r.faults.forEach((f, i) => {
    const y = faultTop + i * (bandH + 4)
    const c = COLORS[f.kind] ?? '#999'
    const x0 = x(f.startMs)
    const w = Math.max(2, x(f.endMs) - x0)
    parts.push(`<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${bandH}" fill="${c}" opacity="0.8"><title>${esc(f.label)}</title></rect>`)
    parts.push(`<text x="${(x0 + 3).toFixed(1)}" y="${y + 11}" fill="black">${esc(f.label)}</text>`)
    for (const top of [rateTop, latTop]) parts.push(`<rect x="${x0.toFixed(1)}" y="${top}" width="${w.toFixed(1)}" height="${top === rateTop ? rateH : latH}" fill="${c}" opacity="0.12"/>`)
  })
  if (r.faults.length === 0) parts.push(`<text x="${left}" y="${faultTop + 11}" fill="#666">no faults</text>`)
  // Axes.
  for (const [top, h, label] of [[rateTop, rateH, 'success %'], [latTop, latH, 'latency ms']] as const) {
    parts.push(`<line x1="${left}" y1="${top + h}" x2="${W - right}" y2="${top + h}" stroke="#333"/>`)
    parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + h}" stroke="#333"/>`)
    parts.push(`<text x="${left - 5}" y="${top - 5}" text-anchor="start" font-weight="bold">${label}</text>`)
  }
  for (let s = 0; s <= dur; s += Math.max(1, Math.ceil(dur / 20))) {
    const xx = x(s * 1000)
    parts.push(`<text x="${xx.toFixed(1)}" y="${latTop + latH + 14}" text-anchor="middle">${s}s</text>`)
    parts.push(`<line x1="${xx.toFixed(1)}" y1="${latTop + latH}" x2="${xx.toFixed(1)}" y2="${latTop + latH + 4}" stroke="#333"/>`)
  }
  // Success rate (per second; ops/s as bars of failures).
  const ry = (p: number): number => rateTop + rateH - p * rateH
  parts.push(`<text x="${left - 5}" y="${rateTop + 4}" text-anchor="end">100</text><text x="${left - 5}" y="${rateTop + rateH}" text-anchor="end">0</text>`)
  const pts: string[] = []
  for (const b of r.series) {
    const tot = b.ok + b.failed
    if (tot === 0) continue
    pts.push(`${x(b.s * 1000 + 500).toFixed(1)},${ry(b.ok / tot).toFixed(1)}`)
    if (b.failed > 0) parts.push(`<rect x="${x(b.s * 1000).toFixed(1)}" y="${ry(b.failed / tot).toFixed(1)}" width="${(plotW / dur * 0.9).toFixed(1)}" height="${(rateTop + rateH - ry(b.failed / tot)).toFixed(1)}" fill="#e15759" opacity="0.35"><title>${b.s}s: ${b.failed} failed / ${tot}</title></rect>`)
  }
  if (pts.length > 0) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="#59a14f" stroke-width="2"/>`)
  // Latency p50/p99.
  const maxLat = Math.max(10, ...r.series.map(b => b.p99))
  const ly = (ms: number): number => latTop + latH - (ms / maxLat) * latH
  parts.push(`<text x="${left - 5}" y="${latTop + 4}" text-anchor="end">${maxLat}</text><text x="${left - 5}" y="${latTop + latH}" text-anchor="end">0</text>`)
  for (const [key, color] of [['p50', '#4e79a7'], ['p99', '#f28e2b']] as const) {
    const lp = r.series.filter(b => b.ok > 0).map(b => `${x(b.s * 1000 + 500).toFixed(1)},${ly(b[key]).toFixed(1)}`)
    if (lp.length > 0) parts.push(`<polyline points="${lp.join(' ')}" fill="none" stroke="${color}" stroke-width="1.5"/>`)
  }
  parts.push(`<text x="${W - right - 120}" y="${latTop - 5}" fill="#4e79a7">p50</text><text x="${W - right - 80}" y="${latTop - 5}" fill="#f28e2b">p99</text>`)
  // Violations.
  for (const v of r.violations) {
    const xx = x(v.tMs)
    parts.push(`<line x1="${xx.toFixed(1)}" y1="${rateTop}" x2="${xx.toFixed(1)}" y2="${latTop + latH}" stroke="red" stroke-width="1"><title>${esc(v.invariant)}: ${esc(v.detail)}</title></line>`)
  }
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

const fmtCounts = (c: OpCounts): string => `${c.attempted} | ${c.succeeded} | ${c.failed} | ${Object.entries(c.byError).map(([k, v]) => `${k} ${v}`).join(', ') || '—'}`

/** The Markdown report of one scenario. */
export function scenarioMarkdown (r: ScenarioResult): string {
  const L: string[] = []
  L.push(`# Scenario \`${r.scenario}\` — ${r.passed ? 'PASS' : 'FAIL'}`, '')
  L.push(r.description, '')
  L.push(`- seed: \`${r.seed}\` — replay: \`${r.replay}\``)
  L.push(`- topology: ${r.topology.threshold}-of-${r.topology.nodes}${r.topology.lying.length > 0 ? `, lying node(s) ${r.topology.lying.join(', ')}` : ''}`)
  L.push(`- duration ${r.durationS} s (recovery window ${r.recoveryS} s), setup ${r.setupS.toFixed(1)} s, wall ${r.wallS.toFixed(1)} s, started ${r.startedAt}`)
  if (r.expected.note !== undefined) L.push(`- expected outcome: ${r.expected.note}`)
  if (r.error !== undefined) L.push('', `**Run error:** ${r.error}`)
  L.push('', '![timeline](timeline.svg)', '', '## Operations', '', '| type | attempted | succeeded | failed | failures by error class |', '| --- | ---: | ---: | ---: | --- |')
  for (const [t, c] of Object.entries(r.ops.byType)) L.push(`| ${t} | ${fmtCounts(c)} |`)
  L.push(`| **all** | ${fmtCounts(r.ops)} |`, '')
  L.push('## Latency (ms, successful operations)', '', '| type | n | p50 | p95 | p99 | max |', '| --- | ---: | ---: | ---: | ---: | ---: |')
  for (const [t, l] of Object.entries(r.latency.byType)) L.push(`| ${t} | ${l.count} | ${l.p50} | ${l.p95} | ${l.p99} | ${l.max} |`)
  L.push(`| **all** | ${r.latency.count} | ${r.latency.p50} | ${r.latency.p95} | ${r.latency.p99} | ${r.latency.max} |`)
  L.push(`| stable quorum ops | ${r.latency.stableQuorum.count} | ${r.latency.stableQuorum.p50} | ${r.latency.stableQuorum.p95} | ${r.latency.stableQuorum.p99} | ${r.latency.stableQuorum.max} |`, '')
  L.push('## Invariants', '', '| invariant | passed | failed |', '| --- | ---: | ---: |')
  for (const [k, c] of Object.entries(r.invariants)) if (c.passed + c.failed > 0) L.push(`| ${k} | ${c.passed} | ${c.failed} |`)
  L.push('')
  if (r.topology.lying.length > 0) L.push(`Lying node(s) named: ${r.topology.lying.map(i => `node ${i} × ${r.liarNamed[i] ?? 0}`).join(', ')}`, '')
  const perEpoch = Object.entries(r.sweep.epochs ?? {})
  L.push(`Final sweep: ${r.sweep.checked} acknowledged wraps/builds re-opened${perEpoch.length > 1 ? ` (wraps by epoch: ${perEpoch.map(([e, c]) => `${e}: ${c}`).join(', ')})` : ''}, ${r.sweep.wrong} wrong${r.sweep.reshare !== undefined ? ` (wraps acknowledged before the reshare: ${r.sweep.reshare.before}, after its commit: ${r.sweep.reshare.after})` : ''}${r.sweep.error !== undefined ? `, error: ${r.sweep.error}` : ''}.`, '')
  if ((r.lifecycle ?? []).length > 0) {
    L.push('## Lifecycle', '', '| op | issued (s) | epoch | key set before → after | all committed (s) | took (s) | bound | per node committed (s) | push |', '| --- | ---: | --- | --- | ---: | ---: | --- | --- | --- |')
    for (const x of r.lifecycle ?? []) {
      const s = (ms: number | undefined): string => ms === undefined ? '—' : (ms / 1000).toFixed(2)
      const nodes = Object.entries(x.committedMs).map(([i, t]) => `${i}: ${s(t)}`).join(', ')
      const push = Object.entries(x.pushed).map(([i, p]) => `${i}: ${p}`).join('; ')
      L.push(`| ${x.op}${x.minDecryptionEpoch !== undefined ? ` (min ${x.minDecryptionEpoch})` : ''} | ${s(x.issuedMs)} | ${x.epochBefore ?? '?'} → ${x.targetEpoch ?? '?'} | ${x.keySetIdBefore?.slice(0, 12) ?? '?'} → ${x.keySetIdAfter?.slice(0, 12) ?? '—'} | ${s(x.allCommittedMs)} | ${x.allCommittedMs !== undefined && x.issuedMs !== undefined ? s(x.allCommittedMs - x.issuedMs) : '—'} | ${x.boundMs / 1000} s after ${s(x.boundFromMs)} | ${nodes || '—'} | ${push || '—'}${x.error !== undefined ? ` — error: ${x.error}` : ''} |`)
    }
    // Reshare members that were down at the order: when each was restarted, committed and ready.
    for (const x of r.lifecycle ?? []) {
      const s = (ms: number | undefined): string => ms === undefined ? '—' : (ms / 1000).toFixed(2)
      for (const [i, m] of Object.entries(x.late ?? {})) {
        L.push('', `Node ${i} was down when the ${x.op} order was issued (${s(x.issuedMs)} s): restarted ${s(m.restartedMs)} s, shares repaired ${s(m.repairedMs)} s, committed ${s(m.committedMs)} s, ready under membership revision ${x.revision ?? '?'} ${s(m.readyMs)} s${m.repaired !== undefined ? ` (shares repaired ${m.repaired.how} from member(s) ${m.repaired.from.join(',')})` : ''}${m.error !== undefined ? ` — NOT caught up: ${m.error}` : ''}.`)
      }
    }
    L.push('')
  }
  L.push('## Violations', '')
  if (r.violations.length === 0) L.push('None.')
  for (const v of r.violations.slice(0, 100)) L.push(`- **${v.invariant}** at ${(v.tMs / 1000).toFixed(2)} s (seed ${v.seed}): ${v.detail}`)
  if (r.violations.length > 100) L.push(`- … ${r.violations.length - 100} more in report.json`)
  L.push('', '## Fault events', '', '| t (s) | event | note |', '| ---: | --- | --- |')
  for (const e of r.events) L.push(`| ${(e.tMs / 1000).toFixed(2)} | ${e.label} | ${e.note ?? ''} |`)
  return L.join('\n') + '\n'
}

/** One row of the summary table. */
export function summaryRow (r: ScenarioResult): string {
  const inv = Object.values(r.invariants).reduce((a, c) => ({ passed: a.passed + c.passed, failed: a.failed + c.failed }), { passed: 0, failed: 0 })
  return `| ${r.scenario} | ${r.topology.threshold}/${r.topology.nodes} | ${r.seed} | ${r.ops.attempted} | ${r.ops.succeeded} | ${r.ops.failed} | ${Object.entries(r.ops.byError).map(([k, v]) => `${k} ${v}`).join(', ') || '—'} | ${r.latency.p50} | ${r.latency.p95} | ${r.latency.p99} | ${inv.passed} | ${inv.failed} | ${r.passed ? 'PASS' : 'FAIL'} |`
}

/** The summary table (Markdown). */
export function summaryTable (rs: ScenarioResult[]): string {
  return ['| scenario | k/n | seed | ops | ok | failed | failures by class | p50 ms | p95 ms | p99 ms | checks ok | checks failed | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rs.map(summaryRow)].join('\n') + '\n'
}

/** Writes DIR/<scenario>/{report.json,report.md,timeline.svg}. Throws on I/O errors. */
export async function writeScenarioReport (dir: string, r: ScenarioResult): Promise<string> {
  const d = join(dir, r.scenario)
  await mkdir(d, { recursive: true })
  await writeFile(join(d, 'report.json'), JSON.stringify(r, null, 2) + '\n')
  await writeFile(join(d, 'report.md'), scenarioMarkdown(r))
  await writeFile(join(d, 'timeline.svg'), timelineSvg(r))
  return d
}

/** Writes DIR/index.md and DIR/index.json. Throws on I/O errors. */
export async function writeIndex (dir: string, rs: ScenarioResult[]): Promise<void> {
  await mkdir(dir, { recursive: true })
  const md = ['# keymesh simulation report', '', `${rs.filter(r => r.passed).length} of ${rs.length} scenarios passed.`, '',
    summaryTable(rs), '', ...rs.map(r => `- [${r.scenario}](${r.scenario}/report.md) — ${r.passed ? 'PASS' : `FAIL (${r.violations.length} violations)`} — replay: \`${r.replay}\``), '']
  await writeFile(join(dir, 'index.md'), md.join('\n'))
  await writeFile(join(dir, 'index.json'), JSON.stringify(rs.map(r => ({
    scenario: r.scenario, seed: r.seed, passed: r.passed, ops: { attempted: r.ops.attempted, succeeded: r.ops.succeeded, failed: r.ops.failed, byError: r.ops.byError },
    latency: { p50: r.latency.p50, p95: r.latency.p95, p99: r.latency.p99 }, violations: r.violations.length, replay: r.replay, report: `${r.scenario}/report.md`
  })), null, 2) + '\n')
}
