import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { dkgFinish, dkgRound2, dkgStart, decodeDkgRound1, decodeDkgRound2, encodeDkgRound1, decodeDkgState, encodeDkgState } from '../../protocol/dkg.ts'
import type { DkgRound1Package, DkgState } from '../../protocol/dkg.ts'
import { BASE, lagrangeAtZero, mod } from '../../protocol/group.ts'
import { KeymeshError } from '../../protocol/errors.ts'
import { toHex } from '../../protocol/bytes.ts'

function subsets (n: number, k: number): number[][] {
  const out: number[][] = []
  const rec = (start: number, acc: number[]): void => {
    if (acc.length === k) { out.push([...acc]); return }
    for (let i = start; i <= n; i++) rec(i + 1, [...acc, i])
  }
  rec(1, [])
  return out
}

function mutateRoundTrip<T> (enc: Uint8Array, pos: number, x: number, dec: (b: Uint8Array) => T, reenc: (v: T) => Uint8Array): void {
  const b = new Uint8Array(enc); const i = pos % b.length; b[i] = b[i]! ^ x
  try { const v = dec(b); expect(toHex(reenc(v))).toBe(toHex(b)) } catch (err) { expect(err).toBeInstanceOf(KeymeshError) }
}

describe('dkg properties', () => {
  it('every k-subset of shares interpolates to the group secret; no (k−1)-subset does', () => {
    fc.assert(fc.property(fc.constantFrom([2, 3], [3, 5], [2, 4], [4, 5]), ([k, n]) => {
      const states: DkgState[] = []
      const round1s: DkgRound1Package[] = []
      for (let i = 1; i <= n; i++) { const s = dkgStart(i, k, n); states.push(s.state); round1s.push(s.round1) }
      // test-only: the group secret is the sum of every dealer's constant term (no node knows it)
      const secret = states.reduce((a, s) => mod(a + s.coefficients[0]!), 0n)
      const inbox = states.map(() => new Map<number, Uint8Array>())
      for (const s of states) for (const [to, pkg] of dkgRound2(s, round1s)) inbox[to - 1]!.set(s.index, pkg)
      const outs = states.map((s, i) => dkgFinish(s, round1s, inbox[i]!))
      expect(BASE.multiply(secret).equals(outs[0]!.publicKey.commitments[0]!)).toBe(true)
      const interp = (set: number[]): bigint => set.reduce((a, i) => mod(a + lagrangeAtZero(set, i) * outs[i - 1]!.share.scalar), 0n)
      for (const set of subsets(n, k)) expect(interp(set)).toBe(secret)
      for (const set of subsets(n, k - 1)) {
        if (set.length === 1) expect(outs[set[0]! - 1]!.share.scalar).not.toBe(secret)
        else expect(interp(set)).not.toBe(secret)
      }
    }), { numRuns: 4 })
  })

  it('decoders reject or round-trip arbitrary mutations', () => {
    const { state, round1 } = dkgStart(2, 2, 3)
    const r1 = encodeDkgRound1(round1)
    const st = encodeDkgState(state)
    fc.assert(fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
      mutateRoundTrip(r1, pos, x, decodeDkgRound1, encodeDkgRound1)
      mutateRoundTrip(st, pos, x, decodeDkgState, encodeDkgState)
    }), { numRuns: 60 })
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 50 }), b => {
      try { const d = decodeDkgRound2(b); expect(d.share > 0n).toBe(true) } catch (err) { expect(err).toBeInstanceOf(KeymeshError) }
    }), { numRuns: 100 })
  })
})
