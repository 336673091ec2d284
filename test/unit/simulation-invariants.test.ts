/**
 * The simulation's invariant checker on synthetic operation records: it must flag each kind of bug
 * the harness exists to catch (wrong key, trusted liar, false blame, hang, quorum-ok failure,
 * quorum-lost success or wrong error, partial output, key-set disagreement, a wiped node that
 * starts) and must not flag correct behaviour or operations inside a recovery window; around a
 * lifecycle order, key-set consistency accepts the old value or ONE new value until every node
 * committed, then only the new one; epoch key-set agreement and the completion record.
 */
import { describe, expect, it } from 'vitest'
import { InvariantChecker } from '../../simulation/invariants.ts'
import { checkEpochAgreement } from '../../simulation/lifecycle.ts'
import type { OpRecord } from '../../simulation/workload.ts'

const checker = (lying: number[] = []): InvariantChecker => {
  const c = new InvariantChecker({ n: 5, k: 3, lying, recoveryMs: 2_000, seed: 7, replay: 'keymesh simulate x --seed 7', minQuorumSuccessRate: 1 })
  c.noteChange({ t: 0, reachable: [1, 2, 3, 4, 5], honest: [1, 2, 3, 4, 5].filter(i => !lying.includes(i)), disturbance: false })
  return c
}
let nextId = 0
const op = (o: Partial<OpRecord> = {}): OpRecord => ({
  id: nextId++, worker: 0, type: 'rewrap', startMs: 5_000, endMs: 5_100, ok: true, used: [1, 3, 4], failures: [], blamed: [],
  wrongKeys: 0, checkedKeys: 1, partialOutput: false, hung: false, deadlineMs: 3_000, ...o
})
const names = (c: InvariantChecker): string[] => c.violations.map(v => v.invariant)

describe('InvariantChecker', () => {
  it('accepts correct operations', () => {
    const c = checker([2])
    c.onOp(op({ failures: [{ index: 2, code: 'VERIFICATION_FAILED', detail: 'bad proof' }] }))
    c.onOp(op({ type: 'wrap', used: [], checkedKeys: 0 }))
    c.finish(10_000, { lyingDetected: true, quorumOps: 1 })
    expect(c.violations).toEqual([])
    expect(c.counts['safety.correct-data-key']!.passed).toBe(1)
    expect(c.namedCounts[2]).toBe(1)
  })

  it('flags a wrong data key and a trusted liar, with seed, time and replay', () => {
    const c = checker([2])
    c.onOp(op({ wrongKeys: 1, used: [1, 2, 3] }))
    expect(names(c)).toEqual(['safety.correct-data-key', 'safety.liar-never-trusted'])
    expect(c.violations[0]).toMatchObject({ seed: 7, tMs: 5_100, replay: 'keymesh simulate x --seed 7' })
  })

  it('flags blame of an honest node and an undetected liar', () => {
    const c = checker([2])
    c.onOp(op({ failures: [{ index: 4, code: 'VERIFICATION_FAILED', detail: '' }] }))
    for (let i = 0; i < 12; i++) c.onOp(op())
    c.finish(10_000, { lyingDetected: true, quorumOps: 13 })
    expect(names(c)).toEqual(['safety.no-false-blame', 'safety.liar-detected'])
  })

  it('liveness: must-succeed failure, hang, partial output', () => {
    const c = checker()
    c.onOp(op({ ok: false, code: 'QUORUM_UNAVAILABLE', used: [] }))
    c.onOp(op({ hung: true }))
    c.onOp(op({ ok: false, code: 'TIMEOUT', partialOutput: true, used: [] }))
    expect(names(c)).toEqual(['liveness.quorum-ok', 'liveness.no-hang', 'liveness.no-partial-output', 'liveness.quorum-ok'])
  })

  it('quorum lost: QUORUM_UNAVAILABLE in time passes; success or another error fails; recovery window exempts', () => {
    const c = checker()
    c.noteChange({ t: 10_000, reachable: [1, 2], honest: [1, 2], disturbance: true })
    // Inside the recovery window (2 s): exempt either way.
    c.onOp(op({ startMs: 11_000, endMs: 11_500, ok: false, code: 'TIMEOUT', used: [] }))
    expect(c.violations).toEqual([])
    c.onOp(op({ startMs: 13_000, endMs: 13_400, ok: false, code: 'QUORUM_UNAVAILABLE', used: [] }))
    expect(c.violations).toEqual([])
    c.onOp(op({ startMs: 13_000, endMs: 13_400, ok: true }))
    c.onOp(op({ startMs: 13_000, endMs: 13_400, ok: false, code: 'INTERNAL', used: [] }))
    expect(names(c)).toEqual(['liveness.quorum-lost', 'liveness.quorum-lost'])
    expect(c.expectation(13_000, 13_400)).toBe('fail-quorum')
    expect(c.expectation(9_000, 10_500)).toBe('exempt')
  })

  it('a node booting on the host exempts quorum-ok (single-host artifact), not quorum-lost', () => {
    const c = checker()
    c.noteChange({ t: 10_000, reachable: [1, 2, 3], honest: [1, 2, 3], disturbance: true, starting: [4, 5] })
    expect(c.expectation(13_000, 14_000)).toBe('exempt')
    c.onOp(op({ startMs: 13_000, endMs: 14_000, ok: false, code: 'TIMEOUT', used: [] }))
    expect(c.violations).toEqual([])
    c.noteChange({ t: 20_000, reachable: [1, 2, 3, 4, 5], honest: [1, 2, 3, 4, 5], disturbance: true, starting: [] })
    expect(c.expectation(23_000, 24_000)).toBe('succeed')
    c.noteChange({ t: 30_000, reachable: [1, 2], honest: [1, 2], disturbance: true, starting: [3] })
    expect(c.expectation(33_000, 34_000)).toBe('fail-quorum')
  })

  it('consistency, refusal and sweep checks', () => {
    const c = checker()
    c.setReferenceKeySet(1, 'a'.repeat(64))
    c.onStatuses(1_000, [{ index: 1, epoch: 1, keySetId: 'a'.repeat(64) }])
    c.onStatuses(2_000, [{ index: 1, epoch: 1, keySetId: 'a'.repeat(64) }, { index: 2, epoch: 1, keySetId: 'b'.repeat(64) }])
    c.onRefusal(3_000, 4, true, 'node 4 exited (5) before ready: data directory /x does not exist')
    c.onRefusal(3_000, 5, false, 'node started although its data directory was destroyed')
    c.onRefusal(3_500, 3, true, 'node 3 exited (1) before ready: *  WARNING: banner about the data directory * | error: Corruption: bad entry in block', '/tmp/x/node-3')
    c.onRefusal(3_600, 2, true, 'node 2 exited (2) before ready: error: cannot open /tmp/x/node-2/db', '/tmp/x/node-2')
    c.onSweep(4_000, 10, 1)
    expect(names(c)).toEqual(['consistency.keysets', 'recovery.damaged-refuses', 'recovery.damaged-refuses', 'safety.acked-unwrappable'])
    expect(c.violations[2]!.detail).toContain('without a clear error')
    expect(c.counts['recovery.damaged-refuses']).toEqual({ passed: 2, failed: 2 })
    expect(c.counts['consistency.keysets']).toEqual({ passed: 1, failed: 1 })
  })

  const A = 'a'.repeat(64)
  const B = 'b'.repeat(64)
  const C = 'c'.repeat(64)
  const st = (xs: Array<[number, number, string]>): Array<{ index: number, epoch: number, keySetId: string }> => xs.map(([index, epoch, keySetId]) => ({ index, epoch, keySetId }))

  it('rotation: old or one new value while in progress, then only the new one', () => {
    const c = checker()
    c.setReferenceKeySet(1, A)
    const tr = c.beginTransition(6_000, 'rotate', 2)
    expect(tr.from).toEqual({ epoch: 1, keySetId: A })
    c.onStatuses(7_000, st([[1, 1, A], [2, 2, B], [3, 2, B]]))
    expect(c.violations).toEqual([])
    // Another new value, or the new id under the old epoch: flagged.
    c.onStatuses(8_000, st([[1, 2, C]]))
    c.onStatuses(8_500, st([[1, 1, B]]))
    expect(names(c)).toEqual(['consistency.keysets', 'consistency.keysets'])
    expect(c.violations[0]!.detail).toMatch(/during the rotate to epoch 2/)
    c.endTransition(tr, 10_000, 2, B)
    expect(c.reference()).toEqual({ epoch: 2, keySetId: B })
    expect(c.reference(9_000)).toEqual({ epoch: 1, keySetId: A })
    // A poll that started before the end still gets the transition's rule.
    c.onStatuses(9_500, st([[4, 1, A]]), 10_200)
    expect(c.violations).toHaveLength(2)
    c.onStatuses(11_000, st([[1, 2, B], [4, 2, B]]))
    expect(c.violations).toHaveLength(2)
    c.onStatuses(12_000, st([[4, 1, A]]))
    expect(names(c)).toEqual(['consistency.keysets', 'consistency.keysets', 'consistency.keysets'])
  })

  it('refresh: same epoch, one new key set id; an aborted order keeps the reference', () => {
    const c = checker()
    c.setReferenceKeySet(3, A)
    const tr = c.beginTransition(1_000, 'refresh', 3)
    c.onStatuses(2_000, st([[1, 3, A], [2, 3, C]]))
    c.onStatuses(2_500, st([[1, 4, C]]))
    expect(names(c)).toEqual(['consistency.keysets'])
    c.endTransition(tr, 3_000, 3, C)
    c.onStatuses(4_000, st([[1, 3, C], [2, 3, C]]))
    const tr2 = c.beginTransition(5_000, 'refresh', 3)
    c.abortTransition(tr2, 5_500)
    c.onStatuses(6_000, st([[1, 3, C]]))
    expect(c.violations).toHaveLength(1)
    expect(c.reference()).toEqual({ epoch: 3, keySetId: C })
  })

  it('lastDisturbance and recorded lifecycle / epoch-agreement checks', () => {
    const c = checker()
    c.noteChange({ t: 7_000, reachable: [1, 2, 3, 5], honest: [1, 2, 3, 5], disturbance: true })
    c.noteChange({ t: 8_000, reachable: [1, 2, 3, 5], honest: [1, 2, 3, 5], disturbance: false })
    c.noteChange({ t: 9_000, reachable: [1, 2, 3, 4, 5], honest: [1, 2, 3, 4, 5], disturbance: true })
    expect(c.lastDisturbance(6_000, 20_000)).toBe(9_000)
    expect(c.lastDisturbance(6_000, 8_500)).toBe(7_000)
    expect(c.lastDisturbance(9_500, 20_000)).toBeUndefined()
    c.record('lifecycle.completed', true, 10_000, () => 'x')
    c.record('lifecycle.completed', false, 11_000, () => 'not committed on node 4')
    const k = (id: string): { id: string, wrap: string, sign: string } => ({ id, wrap: 'w', sign: 's' })
    const agreed = checkEpochAgreement(c, 12_000, new Map([
      [1, new Map([[1, k(A)], [2, k(A)]])],
      [2, new Map([[1, k(B)], [3, k(C)]])]
    ]), 'at the end')
    expect(agreed.get(1)?.id).toBe(A)
    expect(names(c)).toEqual(['lifecycle.completed', 'consistency.epoch-keysets'])
    expect(c.violations[1]!.detail).toMatch(/at the end: nodes disagree on the key set of epoch 2/)
    expect(c.counts['consistency.epoch-keysets']).toEqual({ passed: 1, failed: 1 })
  })
})
