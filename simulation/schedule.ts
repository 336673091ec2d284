/**
 * Turns a scenario's fault list into a concrete, time-ordered event schedule, drawing every choice
 * (targets, jittered start times, rolling order) from the seeded PRNG: the same scenario, topology
 * and seed always give the same schedule (unit-tested).
 */
import { Prng } from './prng.ts'
import type { LinkConditions } from './proxy.ts'
import { DEFAULT_LIFECYCLE_BOUND_S } from './scenario.ts'
import type { CorruptPart, FaultSpec, LifecycleOp, Scenario, TargetSpec } from './scenario.ts'

/** A directed link: `from` dials `to` (`'client'` is the workload's client). */
export interface Link { from: number | 'client', to: number }

/** One action of the schedule, at `t` ms after the workload starts. */
export type SimAction =
  | { action: 'kill' | 'term' | 'start' | 'pause' | 'resume' | 'wipe' | 'start-expect-refusal', node: number }
  | { action: 'corrupt', node: number, part: CorruptPart }
  | { action: 'links', links: Link[], set: Partial<LinkConditions> }
  | { action: 'reset-links', links: Link[] }
  /**
   * Issue an admin-signed lifecycle order through the client library (rotate: to the nodes'
   * current epoch + 1; refresh: of the current epoch) and follow it until every node committed.
   * `boundMs`: the lifecycle.completed bound. Lifecycle actions run on one chain: an order is issued
   * only once the previous one has completed (or missed its bound), as an operator would.
   * reshare: `newThreshold` / `remove` (topology indices) as in the scenario.
   */
  | { action: 'lifecycle', op: LifecycleOp, minDecryptionEpoch?: number, boundMs: number, newThreshold?: number, remove?: number[] }

/**
 * A scheduled action. Node actions run on a chain (default: one per node), so an action waits for
 * the previous one on its chain (a start for its kill; a rolling restart's next stop for the
 * previous node to be ready again): `t` is the earliest time, not a promise.
 */
export type SimEvent = SimAction & { t: number, fault: number, label: string, chain?: string }

/** A fault as a time band (for the timeline and the report). */
export interface FaultWindow {
  fault: number
  kind: string
  label: string
  startMs: number
  /** End of the fault; the run's end when it lasts until then. */
  endMs: number
  nodes: number[]
}

/** A complete schedule. */
export interface Schedule { seed: number, events: SimEvent[], windows: FaultWindow[] }

/** Resolves a target spec to node indices (seeded; picks avoid lying nodes). Throws RangeError when not enough nodes. */
export function resolveTargets (spec: TargetSpec | undefined, s: Scenario, rng: Prng): number[] {
  const n = s.topology.nodes
  const k = s.topology.threshold
  const all = Array.from({ length: n }, (_, i) => i + 1)
  const t = spec ?? { pick: 'one' }
  if ('nodes' in t) {
    for (const i of t.nodes) if (i > n) throw new RangeError(`target node ${i} > n = ${n}`)
    return [...t.nodes]
  }
  if (t.pick === 'all') return all
  const count = t.pick === 'one' ? 1 : t.pick === 'tolerable' ? n - k : t.pick === 'fatal' ? n - k + 1 : t.pick
  const honest = all.filter(i => !s.topology.lying.includes(i))
  const pool = rng.shuffle(count <= honest.length ? honest : all)
  if (count > pool.length) throw new RangeError(`cannot pick ${count} of ${n} nodes`)
  return pool.slice(0, count).sort((a, b) => a - b)
}

/** Every link into or out of `nodes` (node↔node both ways, client→node). */
export function linksOf (nodes: number[], n: number): Link[] {
  const out: Link[] = []
  for (const j of nodes) {
    out.push({ from: 'client', to: j })
    for (let x = 1; x <= n; x++) {
      if (x === j) continue
      out.push({ from: x, to: j })
      if (!nodes.includes(x)) out.push({ from: j, to: x })
    }
  }
  return out
}

/**
 * The directed proxies of one link: a→b and b→a between two nodes (either may have dialled the
 * connection), or client→b.
 */
export function linkPair (l: [number | 'client', number]): Link[] {
  const [a, b] = l
  return a === 'client' ? [{ from: 'client', to: b }] : [{ from: a, to: b }, { from: b, to: a }]
}

/** Links cut by a partition into `side` and the rest, with the client on `clientWithSide` or the rest. */
export function partitionLinks (side: number[], n: number, clientWithSide: boolean): Link[] {
  const out: Link[] = []
  for (let a = 1; a <= n; a++) {
    for (let b = 1; b <= n; b++) {
      if (a !== b && side.includes(a) !== side.includes(b)) out.push({ from: a, to: b })
    }
    if (side.includes(a) !== clientWithSide) out.push({ from: 'client', to: a })
  }
  return out
}

const sec = (x: number): number => Math.round(x * 1000)

/**
 * Builds the schedule of `s` for `seed`. Deterministic. Throws RangeError when a target cannot be
 * resolved for the topology.
 */
export function buildSchedule (s: Scenario, seed: number): Schedule {
  const root = new Prng(seed, `faults:${s.name}`)
  const n = s.topology.nodes
  const endMs = sec(s.durationS)
  const events: SimEvent[] = []
  const windows: FaultWindow[] = []
  s.faults.forEach((f: FaultSpec, id: number) => {
    const rng = root.fork(`fault-${id}`)
    const at = sec(f.at + (f.atJitter !== undefined && f.atJitter > 0 ? rng.range(0, f.atJitter) : 0))
    const end = f.duration !== undefined ? Math.min(endMs, at + sec(f.duration)) : endMs
    const ev = (t: number, a: SimAction, label: string, chain?: string): void => { events.push({ ...a, t, fault: id, label, ...(chain !== undefined ? { chain } : {}) } as SimEvent) }
    const win = (kind: string, label: string, startMs: number, stop: number, nodes: number[]): void => { windows.push({ fault: id, kind, label, startMs, endMs: stop, nodes }) }
    const nodesLabel = (xs: number[]): string => xs.join(',')
    switch (f.kind) {
      case 'crash':
      case 'stop':
      case 'pause': {
        const targets = resolveTargets(f.targets, s, rng)
        const [down, up] = f.kind === 'crash' ? ['kill', 'start'] as const : f.kind === 'stop' ? ['term', 'start'] as const : ['pause', 'resume'] as const
        for (const j of targets) {
          ev(at, { action: down, node: j }, `${f.kind} node ${j}`)
          if (f.duration !== undefined && end < endMs) ev(end, { action: up, node: j }, `${up} node ${j}`)
        }
        win(f.kind, `${f.kind} ${nodesLabel(targets)}`, at, end, targets)
        break
      }
      case 'restart-all': {
        const targets = resolveTargets(f.targets ?? { pick: 'all' }, s, rng)
        for (const j of targets) ev(at, { action: 'kill', node: j }, `kill node ${j} (full restart)`)
        for (const j of targets) ev(end, { action: 'start', node: j }, `start node ${j} from disk`)
        win(f.kind, `full restart ${nodesLabel(targets)}`, at, end, targets)
        break
      }
      case 'rolling-restart': {
        const targets = rng.shuffle(resolveTargets(f.targets ?? { pick: 'all' }, s, rng))
        const down = sec(f.duration ?? 1)
        const gap = sec(f.gap ?? (f.duration ?? 1) + 2)
        targets.forEach((j, q) => {
          const t0 = at + q * gap
          // One chain for the whole rolling restart: the next node goes down only once the
          // previous one is ready again (what an operator does), and never before its time.
          ev(t0, { action: 'term', node: j }, `rolling: stop node ${j}`, `rolling-${id}`)
          ev(t0 + down, { action: 'start', node: j }, `rolling: start node ${j}`, `rolling-${id}`)
          win('restart', `restart ${j}`, t0, t0 + down, [j])
        })
        break
      }
      case 'partition': {
        const side = resolveTargets(f.targets ?? { pick: 'tolerable' }, s, rng)
        const clientWithSide = f.clientSide === 'minority'
        const links = partitionLinks(side, n, clientWithSide)
        ev(at, { action: 'links', links, set: { partitioned: true } }, `partition {${nodesLabel(side)}} | rest; client with ${clientWithSide ? 'minority' : 'majority'}`)
        if (end < endMs) ev(end, { action: 'links', links, set: { partitioned: false } }, 'heal partition')
        win(f.kind, `partition {${nodesLabel(side)}}, client on ${clientWithSide ? 'minority' : 'majority'}`, at, end, side)
        break
      }
      case 'latency':
      case 'bandwidth': {
        // One link (no seeded pick: the rng stream of target-based faults is unchanged), or every link of the targets.
        const targets = f.link !== undefined ? f.link.filter((x): x is number => x !== 'client') : resolveTargets(f.targets, s, rng)
        for (const j of targets) if (j > n) throw new RangeError(`link node ${j} > n = ${n}`)
        const links = f.link !== undefined ? linkPair(f.link) : linksOf(targets, n)
        const where = f.link !== undefined ? `link ${String(f.link[0])}↔${f.link[1]}` : `node ${nodesLabel(targets)}`
        const set: Partial<LinkConditions> = f.kind === 'latency'
          ? { latencyMs: f.latencyMs ?? 0, jitterMs: f.jitterMs ?? 0 }
          : { bytesPerSec: f.bytesPerSec ?? 0 }
        const undo: Partial<LinkConditions> = f.kind === 'latency' ? { latencyMs: 0, jitterMs: 0 } : { bytesPerSec: 0 }
        const what = f.kind === 'latency' ? `+${f.latencyMs ?? 0}±${f.jitterMs ?? 0} ms` : `${f.bytesPerSec ?? 0} B/s`
        ev(at, { action: 'links', links, set }, `${f.kind} ${what} on ${where}`)
        if (end < endMs) ev(end, { action: 'links', links, set: undo }, `end ${f.kind} on ${where}`)
        win(f.kind, `${f.kind} ${f.link !== undefined ? where : nodesLabel(targets)} ${what}`, at, end, targets)
        break
      }
      case 'drop': {
        const targets = resolveTargets(f.targets, s, rng)
        const links = linksOf(targets, n)
        const every = f.intervalMs
        if (every === undefined) ev(at, { action: 'reset-links', links }, `drop connections of node ${nodesLabel(targets)}`)
        else for (let t = at; t < end; t += every) ev(t, { action: 'reset-links', links }, `drop connections of node ${nodesLabel(targets)}`)
        win(f.kind, `drop conns ${nodesLabel(targets)}`, at, every === undefined ? at + 200 : end, targets)
        break
      }
      case 'lifecycle': {
        const op = f.op ?? 'rotate'
        const a: SimAction = {
          action: 'lifecycle', op, boundMs: sec(f.completeWithinS ?? DEFAULT_LIFECYCLE_BOUND_S),
          ...(f.minDecryptionEpoch !== undefined ? { minDecryptionEpoch: f.minDecryptionEpoch } : {}),
          ...(f.newThreshold !== undefined ? { newThreshold: f.newThreshold } : {}),
          ...(f.remove !== undefined ? { remove: [...f.remove] } : {})
        }
        const what = op === 'rotate'
          ? `rotate${f.minDecryptionEpoch !== undefined ? ` (minDecryptionEpoch ${f.minDecryptionEpoch})` : ''}`
          : op === 'refresh' ? 'refresh' : `reshare${f.remove !== undefined ? ` removing ${f.remove.join(',')}` : ''}${f.newThreshold !== undefined ? ` to k'=${f.newThreshold}` : ''}`
        ev(at, a, `lifecycle: issue ${what} order`, 'lifecycle')
        // The band ends when the runner sees every node committed (it updates endMs); until then: the run's end.
        win('lifecycle', what, at, endMs, [])
        break
      }
      case 'wipe':
      case 'corrupt': {
        const targets = resolveTargets(f.targets, s, rng)
        const restartAt = Math.min(endMs, at + sec(f.duration ?? 1))
        for (const j of targets) {
          ev(at, { action: 'kill', node: j }, `kill node ${j} before ${f.kind}`)
          ev(at, f.kind === 'wipe' ? { action: 'wipe', node: j } : { action: 'corrupt', node: j, part: f.part ?? 'all' },
            f.kind === 'wipe' ? `wipe data dir of node ${j}` : `corrupt data dir of node ${j} (${f.part ?? 'all'})`)
          ev(restartAt, { action: 'start-expect-refusal', node: j }, `restart node ${j} (must refuse)`)
        }
        win(f.kind, `${f.kind} disk ${nodesLabel(targets)}`, at, endMs, targets)
        break
      }
    }
  })
  // Stable order: time, then fault, then insertion (Array.prototype.sort is stable).
  events.sort((a, b) => a.t - b.t || a.fault - b.fault)
  return { seed, events, windows }
}
