/**
 * The `lifecycle` event's reshare parameters (simulation/scenario.ts): `op: "reshare"` with
 * `newThreshold` and/or `remove` — parsing, every validation rule (field named), cumulative checks
 * over several reshares, --nodes/--threshold overrides re-checked, scheduling; and the checker's
 * reshare support (threshold in force over time, liveness windows).
 */
import { describe, expect, it } from 'vitest'
import { BadInputError } from '../../protocol/errors.ts'
import { buildSchedule } from '../../simulation/schedule.ts'
import { checkReshares, parseScenario, withOverrides } from '../../simulation/scenario.ts'
import type { Scenario } from '../../simulation/scenario.ts'
import { InvariantChecker } from '../../simulation/invariants.ts'
import type { OpRecord } from '../../simulation/workload.ts'
import { resolveScenario } from '../../simulation/simulate.ts'

const scen = (faults: unknown[], topology: { nodes: number, threshold: number, lying: number[] } = { nodes: 5, threshold: 3, lying: [] }): Scenario => parseScenario({
  format: 'keymesh.scenario', version: 1, name: 'unit', description: '', topology, durationS: 30, recoveryS: 2,
  workload: { concurrency: 2, deadlineMs: 3000, batchSize: 4, mix: { rewrap: 1 } }, faults, expect: {}
})

/** The field a BadInputError names. */
function fieldOf (f: () => unknown): string {
  try { f() } catch (e) {
    expect(e).toBeInstanceOf(BadInputError)
    return (e as BadInputError).message
  }
  throw new Error('did not throw')
}

describe('lifecycle reshare params: parsing', () => {
  it('accepts newThreshold, remove, or both, and schedules them', () => {
    const s = scen([
      { kind: 'crash', at: 3, targets: { nodes: [5] } },
      { kind: 'lifecycle', at: 6, op: 'reshare', remove: [5], completeWithinS: 25 },
      { kind: 'lifecycle', at: 12, op: 'reshare', newThreshold: 4 },
      { kind: 'lifecycle', at: 20, op: 'reshare', remove: [1, 2], newThreshold: 2 }
    ])
    expect(s.faults[1]).toMatchObject({ op: 'reshare', remove: [5], completeWithinS: 25 })
    expect(s.faults[2]).toMatchObject({ op: 'reshare', newThreshold: 4 })
    const ev = buildSchedule(s, 7).events.filter(e => e.action === 'lifecycle')
    expect(ev.map(e => e.action === 'lifecycle' ? [e.op, e.remove, e.newThreshold, e.boundMs] : [])).toEqual([
      ['reshare', [5], undefined, 25_000], ['reshare', undefined, 4, 30_000], ['reshare', [1, 2], 2, 30_000]
    ])
    expect(ev.map(e => e.label)).toEqual([
      'lifecycle: issue reshare removing 5 order', "lifecycle: issue reshare to k'=4 order", "lifecycle: issue reshare removing 1,2 to k'=2 order"
    ])
  })

  it('rejects malformed params, naming the field', () => {
    const r = (f: Record<string, unknown>): string => fieldOf(() => scen([{ kind: 'lifecycle', at: 6, ...f }]))
    expect(r({ op: 'reshare' })).toMatch(/faults\[0\]\.op.*newThreshold, remove or both/)
    expect(r({ op: 'reshare', newThreshold: 1 })).toMatch(/faults\[0\]\.newThreshold/)
    expect(r({ op: 'reshare', newThreshold: 3.5 })).toMatch(/faults\[0\]\.newThreshold/)
    expect(r({ op: 'reshare', newThreshold: '4' })).toMatch(/faults\[0\]\.newThreshold/)
    expect(r({ op: 'reshare', remove: [] })).toMatch(/faults\[0\]\.remove.*at least one/)
    expect(r({ op: 'reshare', remove: 5 })).toMatch(/faults\[0\]\.remove/)
    expect(r({ op: 'reshare', remove: [0] })).toMatch(/faults\[0\]\.remove\[0\]/)
    expect(r({ op: 'reshare', remove: [4, 4] })).toMatch(/faults\[0\]\.remove.*duplicate/)
    expect(r({ op: 'reshare', remove: [6] })).toMatch(/faults\[0\]\.remove.*not a member/)
    expect(r({ op: 'reshare', remove: [1, 2, 3, 4] })).toMatch(/faults\[0\]\.remove.*at least 2 members/)
    expect(r({ op: 'reshare', remove: [5], newThreshold: 5 })).toMatch(/faults\[0\]\.newThreshold.*at most n' = 4/)
    expect(r({ op: 'reshare', newThreshold: 3 })).toMatch(/faults\[0\]\.newThreshold.*changes nothing/)
    expect(r({ op: 'reshare', newThreshold: 6 })).toMatch(/faults\[0\]\.newThreshold.*at most n' = 5/)
    // Only for a reshare, and only on lifecycle events.
    expect(r({ op: 'refresh', newThreshold: 4 })).toMatch(/faults\[0\]\.newThreshold.*only for a reshare/)
    expect(r({ op: 'rotate', remove: [5] })).toMatch(/faults\[0\]\.remove.*only for a reshare/)
    expect(r({ op: 'reshare', remove: [5], minDecryptionEpoch: 2 })).toMatch(/minDecryptionEpoch/)
    expect(fieldOf(() => scen([{ kind: 'crash', at: 1, remove: [5] }]))).toMatch(/faults\[0\]\.remove.*only for kind 'lifecycle'/)
    expect(fieldOf(() => scen([{ kind: 'crash', at: 1, newThreshold: 4 }]))).toMatch(/faults\[0\]\.newThreshold.*only for kind 'lifecycle'/)
    // No lying nodes with a reshare (liars are tracked by topology index).
    expect(fieldOf(() => scen([{ kind: 'lifecycle', at: 6, op: 'reshare', remove: [5] }], { nodes: 5, threshold: 3, lying: [2] }))).toMatch(/lying/)
  })

  it('checks several reshares cumulatively, in issue order', () => {
    // After removing 5 and 4 (issued first although listed second), node 4 is no member any more.
    expect(fieldOf(() => scen([
      { kind: 'lifecycle', at: 12, op: 'reshare', remove: [4] },
      { kind: 'lifecycle', at: 6, op: 'reshare', remove: [4, 5] }
    ]))).toMatch(/faults\[0\]\.remove.*node 4 is not a member/)
    // k' defaults to min(k, n'): 3-of-5 → (remove 3) 2-of-2 keeps k = 2 … then newThreshold 2 changes nothing.
    expect(fieldOf(() => scen([
      { kind: 'lifecycle', at: 6, op: 'reshare', remove: [3, 4, 5] },
      { kind: 'lifecycle', at: 12, op: 'reshare', newThreshold: 2 }
    ]))).toMatch(/faults\[1\]\.newThreshold.*changes nothing/)
    expect(() => { checkReshares([{ kind: 'lifecycle', at: 1, op: 'reshare', remove: [2] }], { nodes: 3, threshold: 3, lying: [] }) }).not.toThrow()
  })

  it('re-checks the reshares under --nodes/--threshold overrides', () => {
    const s = scen([{ kind: 'lifecycle', at: 6, op: 'reshare', remove: [5], newThreshold: 4 }])
    expect(withOverrides(s, { nodes: 7 }).topology.nodes).toBe(7)
    expect(fieldOf(() => withOverrides(s, { nodes: 4 }))).toMatch(/remove.*not a member/)
    expect(withOverrides(s, { nodes: 5, threshold: 2 }).topology.threshold).toBe(2)
    const t = scen([{ kind: 'lifecycle', at: 6, op: 'reshare', newThreshold: 4 }])
    expect(fieldOf(() => withOverrides(t, { threshold: 4 }))).toMatch(/changes nothing/)
    expect(withOverrides(s, { durationS: 60 }).faults[0]).toMatchObject({ at: 12, remove: [5], newThreshold: 4 })
  })

  it('the shipped reshare-under-faults scenario parses: 3-of-5, node 5 crashed for good and removed at 6 s', async () => {
    const { scenario: s } = await resolveScenario('reshare-under-faults')
    expect(s.topology).toEqual({ nodes: 5, threshold: 3, lying: [] })
    const crash = s.faults.find(f => f.kind === 'crash')
    expect(crash).toMatchObject({ at: 3, targets: { nodes: [5] } })
    expect(crash?.duration).toBeUndefined()
    expect(s.faults.find(f => f.kind === 'lifecycle')).toMatchObject({ at: 6, op: 'reshare', remove: [5] })
    const ev = buildSchedule(s, 1).events
    expect(ev.some(e => e.action === 'start')).toBe(false)
  })

  it('the shipped reshare-member-down scenario parses: staying node 4 down across the order, restarted after it', async () => {
    const { scenario: s } = await resolveScenario('reshare-member-down')
    expect(s.topology).toEqual({ nodes: 5, threshold: 3, lying: [] })
    expect(s.faults.find(f => f.kind === 'lifecycle')).toMatchObject({ at: 6, op: 'reshare', remove: [5] })
    for (const seed of [1, 2, 3, 99]) {
      const ev = buildSchedule(s, seed).events
      const kill = ev.find(e => e.action === 'kill')
      const start = ev.find(e => e.action === 'start')
      const order = ev.find(e => e.action === 'lifecycle')
      expect(kill).toMatchObject({ node: 4 })
      expect(start).toMatchObject({ node: 4 })
      // Down before the order is issued, back well after it (the quorum commits without node 4).
      expect(kill!.t).toBeLessThan(order!.t)
      expect(start!.t - order!.t).toBeGreaterThanOrEqual(12_000)
      expect(start!.t).toBeLessThan(s.durationS * 1000 - 15_000)
    }
  })
})

describe('checker: reshare threshold and liveness windows', () => {
  const op = (id: number, startMs: number, endMs: number, ok: boolean): OpRecord => ({
    id, worker: 0, type: 'rewrap', startMs, endMs, ok, used: [], failures: [], blamed: [], wrongKeys: 0, checkedKeys: 1, partialOutput: false, hung: false, deadlineMs: 5000,
    ...(ok ? {} : { code: 'QUORUM_UNAVAILABLE' })
  })

  it('uses the threshold in force and exempts operations overlapping a window (+ recovery)', () => {
    const c = new InvariantChecker({ n: 5, k: 3, lying: [], recoveryMs: 1_000, seed: 1, replay: 'x', minQuorumSuccessRate: 1 })
    c.noteChange({ t: 0, reachable: [1, 2, 3, 4], honest: [1, 2, 3, 4], disturbance: false })
    expect(c.threshold(5_000)).toBe(3)
    const w = c.openWindow(10_000)
    expect(c.expectation(9_000, 9_500)).toBe('succeed')
    expect(c.expectation(9_500, 10_200)).toBe('exempt')
    expect(c.expectation(50_000, 50_100)).toBe('exempt') // open window: to the end
    c.closeWindow(w, 14_000)
    c.setThreshold(12_000, 4)
    expect(c.threshold(11_999)).toBe(3)
    expect(c.threshold(12_000)).toBe(4)
    expect(c.expectation(14_500, 15_000)).toBe('exempt') // within the recovery time after the window
    // k' = 4 with 4 reachable: must succeed; after a member is gone: 3 < 4 → must fail with QUORUM_UNAVAILABLE.
    expect(c.expectation(15_100, 15_500)).toBe('succeed')
    c.noteChange({ t: 20_000, reachable: [1, 2, 3], honest: [1, 2, 3], disturbance: true })
    expect(c.expectation(21_100, 21_500)).toBe('fail-quorum')
    c.onOp(op(1, 21_100, 21_500, true))
    expect(c.violations.map(v => v.invariant)).toEqual(['liveness.quorum-lost'])
    expect(c.violations[0]?.detail).toMatch(/fewer than 4 nodes/)
    c.onOp(op(2, 15_100, 15_500, false))
    expect(c.violations.map(v => v.invariant)).toEqual(['liveness.quorum-lost', 'liveness.quorum-ok'])
    expect(c.violations[1]?.detail).toMatch(/≥ 4 honest/)
  })

  it('a member down at the reshare order may report the old key set until it caught up; nobody else may', () => {
    const c = new InvariantChecker({ n: 5, k: 3, lying: [], recoveryMs: 1_000, seed: 1, replay: 'x', minQuorumSuccessRate: 1 })
    const A = 'a'.repeat(64)
    const B = 'b'.repeat(64)
    c.setReferenceKeySet(1, A)
    const tr = c.beginTransition(6_000, 'reshare', 1)
    c.onStatuses(7_000, [{ index: 1, epoch: 1, keySetId: B }, { index: 2, epoch: 1, keySetId: A }])
    expect(c.violations).toEqual([])
    // Nodes 1-3 committed at 15 s; node 4 (down at the order) lags.
    c.endTransition(tr, 15_000, 1, B, [4])
    expect(c.reference(16_000)).toEqual({ epoch: 1, keySetId: B })
    c.onStatuses(20_000, [{ index: 1, epoch: 1, keySetId: B }, { index: 4, epoch: 1, keySetId: A }])
    expect(c.violations).toEqual([])
    // A member that did commit may not go back to the old generation.
    c.onStatuses(20_500, [{ index: 2, epoch: 1, keySetId: A }])
    expect(c.violations.map(v => v.invariant)).toEqual(['consistency.keysets'])
    c.settleLagging(tr, 4, 23_000)
    c.onStatuses(24_000, [{ index: 4, epoch: 1, keySetId: B }, { index: 1, epoch: 1, keySetId: B }])
    expect(c.violations).toHaveLength(1)
    // Settled: the transition is over, node 4 must report the new reference too.
    c.onStatuses(25_000, [{ index: 4, epoch: 1, keySetId: A }])
    expect(c.violations.map(v => v.invariant)).toEqual(['consistency.keysets', 'consistency.keysets'])
    expect(c.violations[1]?.detail).toMatch(/node\(s\) 4 .*disagree/)
  })

  it('blaming an honest member is a violation inside a reshare window too', () => {
    const c = new InvariantChecker({ n: 5, k: 3, lying: [], recoveryMs: 1_000, seed: 1, replay: 'x', minQuorumSuccessRate: 1 })
    c.noteChange({ t: 0, reachable: [1, 2, 3, 4], honest: [1, 2, 3, 4], disturbance: false })
    const w = c.openWindow(10_000)
    c.closeWindow(w, 12_000)
    const blamed = (id: number, startMs: number, detail: string): OpRecord => ({
      ...op(id, startMs, startMs + 300, false), code: 'QUORUM_UNAVAILABLE', failures: [{ index: 2, code: 'VERIFICATION_FAILED', detail }]
    })
    c.onOp(blamed(1, 10_500, 'node 2 named key set generation 46890c20… of epoch 1 but cannot back it (… (n differ))'))
    c.onOp(blamed(2, 20_000, 'partial 2 failed its DLEQ proof'))
    // Op 2 is outside the window: a false blame, and a failure although 4 ≥ k members were reachable.
    expect(c.violations.map(v => [v.invariant, v.opId])).toEqual([['safety.no-false-blame', 1], ['safety.no-false-blame', 2], ['liveness.quorum-ok', 2]])
  })
})
