/**
 * The simulation's seeded PRNG and fault schedule on their own: same seed → same stream and same
 * schedule; different seed → different choices; target resolution; every standard scenario file
 * parses and schedules at its own topology and at 5-of-9; scenario validation names the field;
 * the `lifecycle` event kind (rotate / refresh orders): parsing, validation, scheduling.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Prng } from '../../simulation/prng.ts'
import { buildSchedule, linkPair, linksOf, partitionLinks, resolveTargets } from '../../simulation/schedule.ts'
import { DEFAULT_LIFECYCLE_BOUND_S, loadScenarioFile, parseScenario, withOverrides } from '../../simulation/scenario.ts'
import type { Scenario } from '../../simulation/scenario.ts'
import { EXPERIMENTAL_SCENARIOS, SCENARIO_DIR, STANDARD_SCENARIOS } from '../../simulation/simulate.ts'

const base = (faults: unknown[], topology = { nodes: 5, threshold: 3, lying: [] as number[] }): Scenario => parseScenario({
  format: 'keymesh.scenario', version: 1, name: 'unit', description: '', topology, durationS: 30, recoveryS: 2,
  workload: { concurrency: 2, deadlineMs: 3000, batchSize: 4, mix: { rewrap: 1 } }, faults, expect: {}
})

describe('Prng', () => {
  it('same seed → same stream; different seeds or stream names → different streams', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), seed => {
      const a = new Prng(seed)
      const b = new Prng(seed)
      const xs = Array.from({ length: 16 }, () => a.nextU32())
      expect(Array.from({ length: 16 }, () => b.nextU32())).toEqual(xs)
      const c = new Prng(seed, 'other')
      expect(Array.from({ length: 16 }, () => c.nextU32())).not.toEqual(xs)
    }), { numRuns: 50 })
    expect(new Prng(1).nextU32()).not.toBe(new Prng(2).nextU32())
  })

  it('helpers stay in range and are roughly uniform', () => {
    const r = new Prng(12345)
    const counts = [0, 0, 0, 0, 0, 0]
    for (let i = 0; i < 6000; i++) {
      const x = r.int(1, 6)
      expect(x).toBeGreaterThanOrEqual(1)
      expect(x).toBeLessThanOrEqual(6)
      counts[x - 1]!++
    }
    for (const c of counts) expect(c).toBeGreaterThan(850)
    const f = r.float()
    expect(f).toBeGreaterThanOrEqual(0)
    expect(f).toBeLessThan(1)
    expect(r.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5])
    expect(r.weighted([0, 0, 1])).toBe(2)
    expect(() => r.weighted([0, 0])).toThrow(RangeError)
    expect(() => r.pick([])).toThrow(RangeError)
    expect(() => new Prng(1.5)).toThrow(RangeError)
  })
})

describe('buildSchedule', () => {
  const s = base([
    { kind: 'crash', at: 3, atJitter: 2, duration: 5, targets: { pick: 'tolerable' } },
    { kind: 'partition', at: 10, atJitter: 3, duration: 4, clientSide: 'minority' },
    { kind: 'rolling-restart', at: 15, duration: 1, gap: 2 },
    { kind: 'latency', at: 1, latencyMs: 200, jitterMs: 50, targets: { pick: 'one' } },
    { kind: 'wipe', at: 25, targets: { pick: 'one' } }
  ])

  it('same seed → identical schedule (events and windows)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), seed => {
      expect(buildSchedule(s, seed)).toEqual(buildSchedule(s, seed))
    }), { numRuns: 40 })
  })

  it('different seeds choose different targets or times', () => {
    const sig = (seed: number): string => JSON.stringify(buildSchedule(s, seed).events.map(e => [e.t, 'node' in e ? e.node : 0]))
    const seen = new Set(Array.from({ length: 20 }, (_, i) => sig(i)))
    expect(seen.size).toBeGreaterThan(10)
  })

  it('events are time-ordered and respect the spec', () => {
    const sch = buildSchedule(s, 99)
    for (let i = 1; i < sch.events.length; i++) expect(sch.events[i]!.t).toBeGreaterThanOrEqual(sch.events[i - 1]!.t)
    const kills = sch.events.filter(e => e.action === 'kill' && e.fault === 0)
    expect(kills).toHaveLength(2) // n − k = 2
    for (const k of kills) expect(k.t).toBeGreaterThanOrEqual(3000)
    for (const k of kills) expect(k.t).toBeLessThanOrEqual(5000)
    const starts = sch.events.filter(e => e.action === 'start' && e.fault === 0)
    expect(starts.map(e => e.t)).toEqual(kills.map(e => e.t + 5000))
    const rolling = sch.events.filter(e => e.fault === 2 && e.action === 'term')
    expect(rolling.map(e => 'node' in e ? e.node : 0).sort()).toEqual([1, 2, 3, 4, 5])
    const wipe = sch.events.filter(e => e.fault === 4)
    expect(wipe.map(e => e.action)).toEqual(['kill', 'wipe', 'start-expect-refusal'])
    expect(sch.windows).toHaveLength(4 + 5) // four faults, plus one window per node of the rolling restart
  })

  it('picks avoid lying nodes; explicit targets are kept', () => {
    const withLiar = base([], { nodes: 5, threshold: 3, lying: [2] })
    for (let seed = 0; seed < 30; seed++) {
      expect(resolveTargets({ pick: 'tolerable' }, withLiar, new Prng(seed))).not.toContain(2)
    }
    expect(resolveTargets({ nodes: [4, 2] }, withLiar, new Prng(0))).toEqual([4, 2])
    expect(resolveTargets({ pick: 'fatal' }, withLiar, new Prng(0))).toHaveLength(3)
    expect(resolveTargets({ pick: 'all' }, withLiar, new Prng(0))).toEqual([1, 2, 3, 4, 5])
    expect(() => resolveTargets({ nodes: [6] }, withLiar, new Prng(0))).toThrow(RangeError)
  })

  it('link sets: a partition cuts exactly the cross links; a slow node touches all its links', () => {
    const cut = partitionLinks([4, 5], 5, false)
    // node↔node: 2·3 pairs both ways = 12, plus client→4, client→5.
    expect(cut).toHaveLength(14)
    expect(cut).toContainEqual({ from: 'client', to: 4 })
    expect(cut).not.toContainEqual({ from: 'client', to: 1 })
    expect(cut).not.toContainEqual({ from: 1, to: 2 })
    const minority = partitionLinks([4, 5], 5, true)
    expect(minority.filter(l => l.from === 'client').map(l => l.to)).toEqual([1, 2, 3])
    expect(linksOf([3], 5)).toHaveLength(1 + 4 + 4)
  })
})

describe('scenario files', () => {
  it('every standard scenario parses and schedules, also at 5-of-9 and a shorter duration', async () => {
    const files = (await readdir(SCENARIO_DIR)).filter(f => f.endsWith('.json')).sort()
    expect(files.map(f => f.slice(0, -5)).sort()).toEqual([...STANDARD_SCENARIOS, ...EXPERIMENTAL_SCENARIOS].sort())
    for (const f of files) {
      const s = await loadScenarioFile(join(SCENARIO_DIR, f))
      expect(`${s.name}.json`).toBe(f)
      const a = buildSchedule(s, 1)
      expect(buildSchedule(s, 1)).toEqual(a)
      const big = withOverrides(s, { nodes: 9, threshold: 5, durationS: 10 })
      expect(big.topology).toMatchObject({ nodes: 9, threshold: 5 })
      for (const e of buildSchedule(big, 1).events) expect(e.t).toBeLessThanOrEqual(10_000 + 5_000)
    }
  })

  it('validation names the offending field', () => {
    expect(() => base([{ kind: 'explode', at: 1 }])).toThrow(/faults\[0\]\.kind/)
    expect(() => base([{ kind: 'latency', at: 1 }])).toThrow(/latencyMs/)
    expect(() => base([{ kind: 'crash', at: 1, bogus: 1 }])).toThrow(/faults\[0\]\.bogus/)
    expect(() => parseScenario({ format: 'keymesh.scenario', version: 1, name: 'x', topology: { nodes: 3, threshold: 4 }, durationS: 1, workload: { concurrency: 1, deadlineMs: 1000, mix: { wrap: 1 } }, faults: [] })).toThrow(/threshold/)
    expect(() => withOverrides(base([]), { nodes: 3, threshold: 4 })).toThrow(/--threshold/)
  })
})

describe('lifecycle events', () => {
  it('parse: op, minDecryptionEpoch (rotate only) and completeWithinS', () => {
    const s = base([
      { kind: 'lifecycle', at: 6, op: 'rotate' },
      { kind: 'lifecycle', at: 9, atJitter: 2, op: 'rotate', minDecryptionEpoch: 2, completeWithinS: 45 },
      { kind: 'lifecycle', at: 12, op: 'refresh' }
    ])
    expect(s.faults).toEqual([
      { kind: 'lifecycle', at: 6, op: 'rotate' },
      { kind: 'lifecycle', at: 9, atJitter: 2, op: 'rotate', minDecryptionEpoch: 2, completeWithinS: 45 },
      { kind: 'lifecycle', at: 12, op: 'refresh' }
    ])
  })

  it('validation names the offending field', () => {
    expect(() => base([{ kind: 'lifecycle', at: 6 }])).toThrow(/faults\[0\]\.op.*rotate, refresh/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'reshare' }])).toThrow(/faults\[0\]\.op/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'refresh', minDecryptionEpoch: 2 }])).toThrow(/faults\[0\]\.minDecryptionEpoch.*rotate/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'rotate', minDecryptionEpoch: 0 }])).toThrow(/minDecryptionEpoch/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'rotate', minDecryptionEpoch: 1.5 }])).toThrow(/minDecryptionEpoch/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'rotate', completeWithinS: 0 }])).toThrow(/completeWithinS/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'rotate', targets: { pick: 'one' } }])).toThrow(/faults\[0\]\.targets.*not a field of a lifecycle/)
    expect(() => base([{ kind: 'lifecycle', at: 6, op: 'rotate', duration: 3 }])).toThrow(/faults\[0\]\.duration/)
    expect(() => base([{ kind: 'crash', at: 1, op: 'rotate' }])).toThrow(/faults\[0\]\.op.*only for kind 'lifecycle'/)
    expect(() => base([{ kind: 'pause', at: 1, completeWithinS: 5 }])).toThrow(/faults\[0\]\.completeWithinS/)
    // durationS is 30: an order must be issued while the workload runs.
    expect(() => base([{ kind: 'lifecycle', at: 30, op: 'rotate' }])).toThrow(/faults\[0\]\.at.*before the end/)
    expect(() => base([{ kind: 'lifecycle', at: 28, atJitter: 3, op: 'rotate' }])).toThrow(/faults\[0\]\.at/)
  })

  it('schedule: one lifecycle action on the lifecycle chain, bound in ms, seeded jitter, a band', () => {
    const s = base([
      { kind: 'pause', at: 7, duration: 2, targets: { pick: 'one' } },
      { kind: 'lifecycle', at: 6, atJitter: 1, op: 'rotate', minDecryptionEpoch: 1 },
      { kind: 'lifecycle', at: 20, op: 'refresh', completeWithinS: 12 }
    ])
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), seed => {
      const sch = buildSchedule(s, seed)
      expect(buildSchedule(s, seed)).toEqual(sch)
      const lc = sch.events.filter(e => e.action === 'lifecycle')
      expect(lc).toHaveLength(2)
      expect(lc[0]).toMatchObject({ action: 'lifecycle', op: 'rotate', minDecryptionEpoch: 1, boundMs: DEFAULT_LIFECYCLE_BOUND_S * 1000, chain: 'lifecycle', fault: 1 })
      expect(lc[0]!.t).toBeGreaterThanOrEqual(6000)
      expect(lc[0]!.t).toBeLessThanOrEqual(7000)
      expect(lc[1]).toMatchObject({ op: 'refresh', boundMs: 12_000, t: 20_000, fault: 2 })
      expect(lc[1]).not.toHaveProperty('minDecryptionEpoch')
      for (let i = 1; i < sch.events.length; i++) expect(sch.events[i]!.t).toBeGreaterThanOrEqual(sch.events[i - 1]!.t)
      expect(sch.windows.filter(w => w.kind === 'lifecycle').map(w => [w.fault, w.label, w.endMs])).toEqual([[1, 'rotate (minDecryptionEpoch 1)', 30_000], [2, 'refresh', 30_000]])
    }), { numRuns: 20 })
    const times = new Set(Array.from({ length: 10 }, (_, seed) => buildSchedule(s, seed).events.find(e => e.action === 'lifecycle')!.t))
    expect(times.size).toBeGreaterThan(5)
  })

  it('--duration scales the issue time, not the completion bound', () => {
    const s = base([{ kind: 'lifecycle', at: 6, atJitter: 2, op: 'rotate', completeWithinS: 20 }])
    const half = withOverrides(s, { durationS: 15 })
    expect(half.faults[0]).toEqual({ kind: 'lifecycle', at: 3, atJitter: 1, op: 'rotate', completeWithinS: 20 })
    expect(buildSchedule(half, 3).events[0]).toMatchObject({ action: 'lifecycle', boundMs: 20_000 })
  })
})

describe('one-link faults', () => {
  it('latency on one link touches exactly its two directed proxies (or client→j), no seeded pick', () => {
    expect(linkPair([2, 5])).toEqual([{ from: 2, to: 5 }, { from: 5, to: 2 }])
    expect(linkPair(['client', 3])).toEqual([{ from: 'client', to: 3 }])
    const s = base([{ kind: 'latency', at: 1, duration: 4, latencyMs: 300, jitterMs: 50, link: [2, 5] }, { kind: 'crash', at: 2, targets: { pick: 'one' } }])
    const sch = buildSchedule(s, 5)
    const lat = sch.events.filter(e => e.fault === 0)
    expect(lat).toEqual([
      { action: 'links', links: [{ from: 2, to: 5 }, { from: 5, to: 2 }], set: { latencyMs: 300, jitterMs: 50 }, t: 1000, fault: 0, label: 'latency +300±50 ms on link 2↔5' },
      { action: 'links', links: [{ from: 2, to: 5 }, { from: 5, to: 2 }], set: { latencyMs: 0, jitterMs: 0 }, t: 5000, fault: 0, label: 'end latency on link 2↔5' }
    ])
    expect(sch.windows[0]).toMatchObject({ kind: 'latency', nodes: [2, 5], label: 'latency link 2↔5 +300±50 ms' })
    // The crash's pick is drawn from its own stream: unchanged by the link fault before it.
    const alone = buildSchedule(base([{ kind: 'latency', at: 1, latencyMs: 300, targets: { pick: 'one' } }, { kind: 'crash', at: 2, targets: { pick: 'one' } }]), 5)
    expect(sch.events.filter(e => e.fault === 1)).toEqual(alone.events.filter(e => e.fault === 1))
    expect(() => buildSchedule(withOverrides(s, { nodes: 4, threshold: 3 }), 5)).toThrow(RangeError)
  })

  it('validation', () => {
    expect(base([{ kind: 'bandwidth', at: 1, bytesPerSec: 1000, link: ['client', 2] }]).faults[0]!.link).toEqual(['client', 2])
    expect(() => base([{ kind: 'latency', at: 1, latencyMs: 5, link: [2, 2] }])).toThrow(/faults\[0\]\.link.*different/)
    expect(() => base([{ kind: 'latency', at: 1, latencyMs: 5, link: [2] }])).toThrow(/faults\[0\]\.link/)
    expect(() => base([{ kind: 'latency', at: 1, latencyMs: 5, link: [2, 'client'] }])).toThrow(/faults\[0\]\.link\[1\]/)
    expect(() => base([{ kind: 'latency', at: 1, latencyMs: 5, link: [1, 2], targets: { pick: 'one' } }])).toThrow(/either link or targets/)
    expect(() => base([{ kind: 'crash', at: 1, link: [1, 2] }])).toThrow(/faults\[0\]\.link.*only for latency and bandwidth/)
    expect(() => base([{ kind: 'lifecycle', at: 1, op: 'rotate', link: [1, 2] }])).toThrow(/faults\[0\]\.link/)
  })
})
