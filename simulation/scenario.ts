/**
 * Scenario files (simulation/scenarios/*.json; operators can write their own): topology, workload,
 * fault schedule and expected outcome of one simulation run. `parseScenario` validates every
 * field (BadInputError naming it) so a typo fails before a cluster is started.
 *
 * ```json
 * { "format": "keymesh.scenario", "version": 1, "name": "minority-crash", "description": "…",
 *   "topology": { "nodes": 5, "threshold": 3, "lying": [] },
 *   "durationS": 20, "recoveryS": 3,
 *   "workload": { "concurrency": 3, "deadlineMs": 5000, "batchSize": 8, "failureBackoffMs": 200,
 *                 "mix": { "wrap": 3, "rewrap": 5, "batch": 1, "sign": 2, "deploy": 0.2 } },
 *   "faults": [ { "kind": "crash", "at": 5, "duration": 8, "targets": { "pick": "tolerable" } },
 *               { "kind": "lifecycle", "at": 6, "op": "rotate", "completeWithinS": 20 } ],
 *   "expect": { "minQuorumSuccessRate": 1, "lyingDetected": false, "refuseStart": [] } }
 * ```
 */
import { readFile } from 'node:fs/promises'
import { BadInputError } from '../protocol/errors.ts'

/** Operation types the workload driver issues. */
export const OP_TYPES = ['wrap', 'rewrap', 'batch', 'sign', 'deploy'] as const
export type OpType = typeof OP_TYPES[number]

/** Fault kinds. */
export const FAULT_KINDS = ['crash', 'stop', 'pause', 'restart-all', 'rolling-restart', 'partition', 'latency', 'bandwidth', 'drop', 'wipe', 'corrupt', 'lifecycle'] as const
export type FaultKind = typeof FAULT_KINDS[number]

/**
 * Lifecycle operations the `lifecycle` event issues (docs/LIFECYCLE.md): `rotate` = new epoch by a
 * fresh DKG; `refresh` = proactive share refresh of every live epoch (same epoch, same group keys,
 * new keySetIds); `reshare` = new threshold and/or members removed (same epoch, same group keys, a
 * new generation of every live epoch with k', n'; removed nodes delete their shares and stop).
 */
export const LIFECYCLE_OPS = ['rotate', 'refresh', 'reshare'] as const
export type LifecycleOp = typeof LIFECYCLE_OPS[number]

/** Default of `completeWithinS`: seconds after the last disturbance within which every node must have committed. */
export const DEFAULT_LIFECYCLE_BOUND_S = 30

/**
 * Which nodes a fault hits: explicit 1-based indices, or a seeded pick of distinct honest nodes:
 * a count, 'one', 'tolerable' (n−k: the most the cluster survives), 'fatal' (n−k+1: quorum lost)
 * or 'all'.
 */
export type TargetSpec = { nodes: number[] } | { pick: number | 'one' | 'tolerable' | 'fatal' | 'all' }

/** One fault of a scenario, in seconds from the start of the workload. */
export interface FaultSpec {
  kind: FaultKind
  at: number
  /** Seeded extra delay U(0, atJitter) s added to `at`. */
  atJitter?: number
  /** How long the fault lasts (s); absent = until the end (then healed before the final sweep). */
  duration?: number
  targets?: TargetSpec
  /**
   * latency / bandwidth: ONE link instead of every link of the targets — between two nodes (both
   * directed proxies a→b and b→a, since either side may have dialled the connection) or from the
   * client to a node (`["client", j]`). Exclusive with `targets`.
   */
  link?: [number | 'client', number]
  /** partition: which side the client is on. */
  clientSide?: 'majority' | 'minority'
  latencyMs?: number
  jitterMs?: number
  bytesPerSec?: number
  /** drop: reset connections every intervalMs during the fault (default once). */
  intervalMs?: number
  /** rolling-restart: seconds between restarts (default duration + 2). */
  gap?: number
  /** corrupt: what to damage — 'all' (default: identity key, storage-key parameters, every db file), 'identity', or 'db-records' (only the database's table/log files, not CURRENT/MANIFEST). */
  part?: CorruptPart
  /** lifecycle: the operation (required). */
  op?: LifecycleOp
  /** lifecycle (rotate only): the order's minDecryptionEpoch (epochs below it are retired once the rotation commits). */
  minDecryptionEpoch?: number
  /**
   * lifecycle (reshare only): the new threshold k' (default: min(k, n')). A reshare needs
   * `newThreshold`, `remove` or both.
   */
  newThreshold?: number
  /**
   * lifecycle (reshare only): nodes to remove, by their index in the scenario's topology (the
   * harness keeps those numbers for the whole run; the cluster renumbers the remaining members
   * 1..n' as `keymesh cluster reshare --remove` does). Removed nodes are gone for good.
   */
  remove?: number[]
  /**
   * lifecycle: the ceremony must be committed on every node within this many seconds after the
   * later of the order's issue and the last disturbance (node down/up/pause/partition) before it
   * completed (default DEFAULT_LIFECYCLE_BOUND_S). Checked as `lifecycle.completed`.
   */
  completeWithinS?: number
}

/** Parts of a data directory the `corrupt` fault can damage. */
export const CORRUPT_PARTS = ['all', 'identity', 'db-records'] as const
export type CorruptPart = typeof CORRUPT_PARTS[number]

/** Workload of a scenario. */
export interface WorkloadSpec {
  concurrency: number
  deadlineMs: number
  batchSize: number
  /** Relative weights per operation type. */
  mix: Partial<Record<OpType, number>>
  /** Pause between one worker's operations (ms, default 0: closed loop). */
  thinkMs?: number
  /** Wraps made before the clock starts (so the first rewraps have something to open). */
  prewrap?: number
  /** Pause of a worker after a failed operation (ms, default 200). */
  failureBackoffMs?: number
}

/** Expected outcome of a scenario. */
export interface ExpectSpec {
  /** Of the operations that must succeed (stable, ≥ k honest nodes reachable), the fraction that must (default 1). */
  minQuorumSuccessRate?: number
  /** A lying node must be named at least once (default: true when the topology has one). */
  lyingDetected?: boolean
  /** p99 latency bound (ms) of successful stable operations of the types in `p99Ops`. */
  maxP99Ms?: number
  /** Operation types `maxP99Ms` applies to (default rewrap, batch, sign). */
  p99Ops?: OpType[]
  /** Nodes expected to refuse to start after the scenario (wiped/corrupted); checked. */
  refuseStart?: 'faulted' | number[]
  /** Free text for the report. */
  note?: string
}

/** A scenario. */
export interface Scenario {
  format: 'keymesh.scenario'
  version: 1
  name: string
  description: string
  topology: { nodes: number, threshold: number, lying: number[] }
  durationS: number
  /** Operations starting within this many seconds after a fault begins or ends are exempt from liveness checks. */
  recoveryS: number
  workload: WorkloadSpec
  faults: FaultSpec[]
  expect: ExpectSpec
}

function obj (f: string, v: unknown, allowed: string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadInputError(f, 'expected an object')
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw new BadInputError(`${f}.${k}`, 'unknown field')
  return v as Record<string, unknown>
}
function num (f: string, v: unknown, lo: number, hi: number, int = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) throw new BadInputError(f, `expected ${int ? 'an integer' : 'a number'} in [${lo}, ${hi}]`)
  return v
}
function optNum (f: string, v: unknown, lo: number, hi: number, int = false): number | undefined {
  return v === undefined ? undefined : num(f, v, lo, hi, int)
}
function str (f: string, v: unknown, re: RegExp): string {
  if (typeof v !== 'string' || !re.test(v)) throw new BadInputError(f, `expected a string matching ${re.source}`)
  return v
}
function idxList (f: string, v: unknown): number[] {
  if (!Array.isArray(v)) throw new BadInputError(f, 'expected a list of node indices')
  return v.map((x, i) => num(`${f}[${i}]`, x, 1, 64, true))
}

function parseTargets (f: string, v: unknown): TargetSpec {
  const o = obj(f, v, ['nodes', 'pick'])
  if (o.nodes !== undefined) return { nodes: idxList(`${f}.nodes`, o.nodes) }
  const p = o.pick
  if (p === 'one' || p === 'tolerable' || p === 'fatal' || p === 'all') return { pick: p }
  return { pick: num(`${f}.pick`, p, 1, 64, true) }
}

function parseFault (f: string, v: unknown): FaultSpec {
  const o = obj(f, v, ['kind', 'at', 'atJitter', 'duration', 'targets', 'clientSide', 'latencyMs', 'jitterMs', 'bytesPerSec', 'intervalMs', 'gap', 'part', 'op', 'minDecryptionEpoch', 'completeWithinS', 'link', 'newThreshold', 'remove'])
  if (!(FAULT_KINDS as readonly unknown[]).includes(o.kind)) throw new BadInputError(`${f}.kind`, `expected one of ${FAULT_KINDS.join(', ')}`)
  const fs: FaultSpec = { kind: o.kind as FaultKind, at: num(`${f}.at`, o.at, 0, 86_400) }
  const set = <K extends keyof FaultSpec>(k: K, val: FaultSpec[K] | undefined): void => { if (val !== undefined) fs[k] = val }
  set('atJitter', optNum(`${f}.atJitter`, o.atJitter, 0, 3600))
  set('duration', optNum(`${f}.duration`, o.duration, 0, 86_400))
  if (o.targets !== undefined) fs.targets = parseTargets(`${f}.targets`, o.targets)
  if (o.clientSide !== undefined) {
    if (o.clientSide !== 'majority' && o.clientSide !== 'minority') throw new BadInputError(`${f}.clientSide`, "expected 'majority' or 'minority'")
    fs.clientSide = o.clientSide
  }
  set('latencyMs', optNum(`${f}.latencyMs`, o.latencyMs, 0, 60_000))
  set('jitterMs', optNum(`${f}.jitterMs`, o.jitterMs, 0, 60_000))
  set('bytesPerSec', optNum(`${f}.bytesPerSec`, o.bytesPerSec, 1, 1e10))
  set('intervalMs', optNum(`${f}.intervalMs`, o.intervalMs, 10, 3_600_000))
  set('gap', optNum(`${f}.gap`, o.gap, 0, 3600))
  if (o.part !== undefined) {
    if (!(CORRUPT_PARTS as readonly unknown[]).includes(o.part)) throw new BadInputError(`${f}.part`, `expected one of ${CORRUPT_PARTS.join(', ')}`)
    fs.part = o.part as CorruptPart
  }
  if (fs.kind === 'lifecycle') {
    // Only the fields a lifecycle event uses: a stray fault field is a typo, not something to ignore.
    for (const k of ['duration', 'targets', 'link', 'clientSide', 'latencyMs', 'jitterMs', 'bytesPerSec', 'intervalMs', 'gap', 'part']) {
      if (o[k] !== undefined) throw new BadInputError(`${f}.${k}`, 'not a field of a lifecycle event (kind, at, atJitter, op, minDecryptionEpoch, newThreshold, remove, completeWithinS)')
    }
    if (!(LIFECYCLE_OPS as readonly unknown[]).includes(o.op)) throw new BadInputError(`${f}.op`, `required for lifecycle: one of ${LIFECYCLE_OPS.join(', ')}`)
    fs.op = o.op as LifecycleOp
    set('minDecryptionEpoch', optNum(`${f}.minDecryptionEpoch`, o.minDecryptionEpoch, 1, 0xffffffff, true))
    if (fs.minDecryptionEpoch !== undefined && fs.op !== 'rotate') throw new BadInputError(`${f}.minDecryptionEpoch`, 'only a rotate order retires epochs')
    set('newThreshold', optNum(`${f}.newThreshold`, o.newThreshold, 2, 64, true))
    if (o.remove !== undefined) {
      const rm = idxList(`${f}.remove`, o.remove)
      if (rm.length === 0) throw new BadInputError(`${f}.remove`, 'expected at least one node index')
      if (new Set(rm).size !== rm.length) throw new BadInputError(`${f}.remove`, 'duplicate node index')
      fs.remove = rm
    }
    if (fs.op === 'reshare') {
      if (fs.newThreshold === undefined && fs.remove === undefined) throw new BadInputError(`${f}.op`, 'a reshare needs newThreshold, remove or both')
    } else {
      for (const k of ['newThreshold', 'remove'] as const) if (fs[k] !== undefined) throw new BadInputError(`${f}.${k}`, 'only for a reshare')
    }
    set('completeWithinS', optNum(`${f}.completeWithinS`, o.completeWithinS, 1, 3600))
    return fs
  }
  for (const k of ['op', 'minDecryptionEpoch', 'completeWithinS', 'newThreshold', 'remove']) {
    if (o[k] !== undefined) throw new BadInputError(`${f}.${k}`, `only for kind 'lifecycle'`)
  }
  if (o.link !== undefined) {
    if (fs.kind !== 'latency' && fs.kind !== 'bandwidth') throw new BadInputError(`${f}.link`, 'only for latency and bandwidth')
    if (fs.targets !== undefined) throw new BadInputError(`${f}.link`, 'give either link or targets')
    const l = o.link
    if (!Array.isArray(l) || l.length !== 2) throw new BadInputError(`${f}.link`, 'expected [a, b]: two node indices, or ["client", node]')
    const a = l[0] === 'client' ? 'client' as const : num(`${f}.link[0]`, l[0], 1, 64, true)
    const b = num(`${f}.link[1]`, l[1], 1, 64, true)
    if (a === b) throw new BadInputError(`${f}.link`, 'expected two different nodes')
    fs.link = [a, b]
  }
  if (fs.kind === 'latency' && fs.latencyMs === undefined) throw new BadInputError(`${f}.latencyMs`, 'required for latency')
  if (fs.kind === 'bandwidth' && fs.bytesPerSec === undefined) throw new BadInputError(`${f}.bytesPerSec`, 'required for bandwidth')
  return fs
}

/** Validates a parsed scenario object. Throws BadInputError naming the field. */
export function parseScenario (v: unknown): Scenario {
  const o = obj('scenario', v, ['format', 'version', 'name', 'description', 'topology', 'durationS', 'recoveryS', 'workload', 'faults', 'expect'])
  if (o.format !== 'keymesh.scenario') throw new BadInputError('scenario.format', "expected 'keymesh.scenario'")
  if (o.version !== 1) throw new BadInputError('scenario.version', 'expected 1')
  const t = obj('scenario.topology', o.topology, ['nodes', 'threshold', 'lying'])
  const nodes = num('scenario.topology.nodes', t.nodes, 2, 32, true)
  const threshold = num('scenario.topology.threshold', t.threshold, 2, nodes, true)
  const lying = t.lying === undefined ? [] : idxList('scenario.topology.lying', t.lying)
  const w = obj('scenario.workload', o.workload, ['concurrency', 'deadlineMs', 'batchSize', 'mix', 'thinkMs', 'prewrap', 'failureBackoffMs'])
  const mixO = obj('scenario.workload.mix', w.mix, [...OP_TYPES])
  const mix: Partial<Record<OpType, number>> = {}
  for (const k of OP_TYPES) if (mixO[k] !== undefined) mix[k] = num(`scenario.workload.mix.${k}`, mixO[k], 0, 1000)
  if (!Object.values(mix).some(x => x > 0)) throw new BadInputError('scenario.workload.mix', 'needs a positive weight')
  const workload: WorkloadSpec = {
    concurrency: num('scenario.workload.concurrency', w.concurrency, 1, 64, true),
    deadlineMs: num('scenario.workload.deadlineMs', w.deadlineMs, 100, 60_000, true),
    batchSize: num('scenario.workload.batchSize', w.batchSize ?? 8, 1, 256, true),
    mix
  }
  const think = optNum('scenario.workload.thinkMs', w.thinkMs, 0, 60_000)
  if (think !== undefined) workload.thinkMs = think
  const pre = optNum('scenario.workload.prewrap', w.prewrap, 0, 10_000, true)
  if (pre !== undefined) workload.prewrap = pre
  const backoff = optNum('scenario.workload.failureBackoffMs', w.failureBackoffMs, 0, 60_000, true)
  if (backoff !== undefined) workload.failureBackoffMs = backoff
  if (!Array.isArray(o.faults)) throw new BadInputError('scenario.faults', 'expected a list')
  const e = obj('scenario.expect', o.expect ?? {}, ['minQuorumSuccessRate', 'lyingDetected', 'maxP99Ms', 'p99Ops', 'refuseStart', 'note'])
  const expect: ExpectSpec = {}
  const r = optNum('scenario.expect.minQuorumSuccessRate', e.minQuorumSuccessRate, 0, 1)
  if (r !== undefined) expect.minQuorumSuccessRate = r
  if (e.lyingDetected !== undefined) {
    if (typeof e.lyingDetected !== 'boolean') throw new BadInputError('scenario.expect.lyingDetected', 'expected a boolean')
    expect.lyingDetected = e.lyingDetected
  }
  const p99 = optNum('scenario.expect.maxP99Ms', e.maxP99Ms, 1, 600_000)
  if (p99 !== undefined) expect.maxP99Ms = p99
  if (e.p99Ops !== undefined) {
    if (!Array.isArray(e.p99Ops) || e.p99Ops.length === 0 || !e.p99Ops.every(x => (OP_TYPES as readonly unknown[]).includes(x))) throw new BadInputError('scenario.expect.p99Ops', `expected a non-empty list of ${OP_TYPES.join(', ')}`)
    expect.p99Ops = e.p99Ops as OpType[]
  }
  if (e.refuseStart !== undefined) expect.refuseStart = e.refuseStart === 'faulted' ? 'faulted' : idxList('scenario.expect.refuseStart', e.refuseStart)
  if (e.note !== undefined) expect.note = str('scenario.expect.note', e.note, /^[\s\S]{0,2000}$/)
  const durationS = num('scenario.durationS', o.durationS, 1, 86_400)
  const faults = o.faults.map((x, i) => parseFault(`scenario.faults[${i}]`, x))
  faults.forEach((x, i) => {
    // An order issued after the workload ended would never be observed under load.
    if (x.kind === 'lifecycle' && x.at + (x.atJitter ?? 0) >= durationS) throw new BadInputError(`scenario.faults[${i}].at`, `a lifecycle event must be issued before the end of the workload (at + atJitter < durationS = ${durationS})`)
  })
  checkReshares(faults, { nodes, threshold, lying })
  return {
    format: 'keymesh.scenario',
    version: 1,
    name: str('scenario.name', o.name, /^[a-z0-9][a-z0-9-]{0,63}$/),
    description: str('scenario.description', o.description ?? '', /^[\s\S]{0,2000}$/),
    topology: { nodes, threshold, lying },
    durationS,
    recoveryS: num('scenario.recoveryS', o.recoveryS ?? 3, 0, 3600),
    workload,
    faults,
    expect
  }
}

/**
 * Checks the reshare events of a fault list against the topology, in the order they are issued
 * (`at`; a reshare starts from the membership the previous one left): every removed index is a
 * current member, at least 2 members remain, 2 ≤ k' ≤ n', the order changes something, and no
 * lying node (the oracle names liars by topology index; a renumbered cluster would mislead it).
 * Throws BadInputError naming the event.
 */
export function checkReshares (faults: FaultSpec[], topology: { nodes: number, threshold: number, lying: number[] }): void {
  const members = new Set(Array.from({ length: topology.nodes }, (_, i) => i + 1))
  let k = topology.threshold
  const order = faults.map((x, i) => ({ x, i })).filter(({ x }) => x.kind === 'lifecycle' && x.op === 'reshare').sort((a, b) => a.x.at - b.x.at || a.i - b.i)
  for (const { x, i } of order) {
    const f = `scenario.faults[${i}]`
    if (topology.lying.length > 0) throw new BadInputError(`${f}.op`, 'a reshare cannot be combined with lying nodes (liars are tracked by topology index)')
    for (const r of x.remove ?? []) if (!members.has(r)) throw new BadInputError(`${f}.remove`, `node ${r} is not a member at that point (members: ${[...members].join(',')})`)
    for (const r of x.remove ?? []) members.delete(r)
    if (members.size < 2) throw new BadInputError(`${f}.remove`, 'a cluster needs at least 2 members')
    const k2 = x.newThreshold ?? Math.min(k, members.size)
    if (k2 > members.size) throw new BadInputError(`${f}.newThreshold`, `expected at most n' = ${members.size}`)
    if ((x.remove ?? []).length === 0 && k2 === k) throw new BadInputError(`${f}.newThreshold`, `the reshare changes nothing (threshold already ${k}); use a refresh`)
    k = k2
  }
}

/** Reads and validates a scenario file. Throws BadInputError (unreadable, not JSON, invalid). */
export async function loadScenarioFile (path: string): Promise<Scenario> {
  let text: string
  try { text = await readFile(path, 'utf8') } catch (e) { throw new BadInputError('scenario', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`) }
  let j: unknown
  try { j = JSON.parse(text) } catch { throw new BadInputError('scenario', `${path} is not JSON`) }
  return parseScenario(j)
}

/**
 * Applies command-line overrides: --nodes/--threshold (the lying set is kept if still in range),
 * --duration (fault times are scaled by the same factor). Throws BadInputError on a bad combination.
 */
export function withOverrides (s: Scenario, o: { nodes?: number, threshold?: number, durationS?: number }): Scenario {
  const out: Scenario = structuredClone(s)
  if (o.nodes !== undefined || o.threshold !== undefined) {
    const n = o.nodes ?? s.topology.nodes
    const k = o.threshold ?? Math.min(s.topology.threshold, n)
    if (!(Number.isInteger(n) && n >= 2 && n <= 32)) throw new BadInputError('--nodes', 'expected 2..32')
    if (!(Number.isInteger(k) && k >= 2 && k <= n)) throw new BadInputError('--threshold', `expected 2..${n}`)
    out.topology = { nodes: n, threshold: k, lying: s.topology.lying.filter(i => i <= n) }
  }
  if (o.durationS !== undefined) {
    if (!(o.durationS >= 1)) throw new BadInputError('--duration', 'expected ≥ 1 second')
    const f = o.durationS / s.durationS
    out.durationS = o.durationS
    out.faults = out.faults.map(x => {
      const y = { ...x, at: x.at * f }
      if (x.duration !== undefined) y.duration = x.duration * f
      if (x.atJitter !== undefined) y.atJitter = x.atJitter * f
      if (x.gap !== undefined) y.gap = x.gap * f
      return y
    })
  }
  checkReshares(out.faults, out.topology)
  return out
}
