import { describe, expect, it } from 'vitest'
import { ed25519_FROST } from '@noble/curves/ed25519.js'
import {
  compareTranscripts, decodeDkgRound1, decodeDkgRound2, decodeDkgState, dkgFinish, dkgRound2, dkgStart,
  encodeDkgRound1, encodeDkgState, transcriptDigests, verifyRound1
} from '../../protocol/dkg.ts'
import type { DkgRound1Package, DkgState } from '../../protocol/dkg.ts'
import { BASE, L, encodePoint, encodeScalar, lagrangeAtZero, mod } from '../../protocol/group.ts'
import { VerificationError, BadInputError } from '../../protocol/errors.ts'
import { toHex } from '../../protocol/bytes.ts'

function start (k: number, n: number): { states: DkgState[], round1s: DkgRound1Package[] } {
  const states: DkgState[] = []
  const round1s: DkgRound1Package[] = []
  for (let i = 1; i <= n; i++) { const s = dkgStart(i, k, n); states.push(s.state); round1s.push(s.round1) }
  return { states, round1s }
}

function inboxes (states: DkgState[], round1s: DkgRound1Package[]): Array<Map<number, Uint8Array>> {
  const inbox = states.map(() => new Map<number, Uint8Array>())
  for (const s of states) for (const [to, pkg] of dkgRound2(s, round1s)) inbox[to - 1]!.set(s.index, pkg)
  return inbox
}

function expectBlame (f: () => unknown, blame: number[]): void {
  try { f() } catch (err) {
    expect(err).toBeInstanceOf(VerificationError)
    expect((err as VerificationError).blame).toEqual(blame)
    return
  }
  expect.fail('expected a VerificationError')
}

describe('dkg', () => {
  for (const [k, n] of [[2, 3], [3, 5]] as const) {
    it(`runs ${k}-of-${n} in memory; every participant agrees; matches noble round3`, () => {
      const { states, round1s } = start(k, n)
      const inbox = inboxes(states, round1s)
      const outs = states.map((s, i) => dkgFinish(s, round1s, inbox[i]!))
      const gk = toHex(encodePoint(outs[0]!.publicKey.commitments[0]!))
      for (const o of outs) {
        expect(toHex(encodePoint(o.publicKey.commitments[0]!))).toBe(gk)
        expect(o.publicKey.commitments).toHaveLength(k)
        expect(o.publicKey.verifyingShares).toHaveLength(n)
        expect(BASE.multiply(o.share.scalar).equals(o.publicKey.verifyingShares[o.share.index - 1]!)).toBe(true)
      }
      // k shares interpolate to the group secret
      const idx = Array.from({ length: k }, (_, i) => i + 1)
      let x = 0n
      for (const i of idx) x = mod(x + lagrangeAtZero(idx, i) * outs[i - 1]!.share.scalar)
      expect(BASE.multiply(x).equals(outs[0]!.publicKey.commitments[0]!)).toBe(true)

      // cross-check with noble's own round1→round2→round3 on the same polynomials
      const Id = ed25519_FROST.Identifier
      const nobleR1 = round1s.map(p => ({ identifier: Id.fromNumber(p.index), commitment: p.commitment.map(encodePoint), proofOfKnowledge: p.proofOfKnowledge }))
      const secrets = states.map(s => ({ identifier: BigInt(s.index), coefficients: [...s.coefficients], commitment: s.round1.commitment.map(encodePoint), signers: { min: k, max: n }, step: 1 as const }))
      const r2 = secrets.map((sec, i) => ed25519_FROST.DKG.round2(sec, nobleR1.filter((_, j) => j !== i)))
      // our round-2 packages carry exactly noble's shares
      for (let i = 0; i < n; i++) {
        for (let to = 1; to <= n; to++) {
          if (to === i + 1) continue
          const ours = decodeDkgRound2(inbox[to - 1]!.get(i + 1)!)
          expect([ours.from, ours.to]).toEqual([i + 1, to])
          expect(toHex(encodeScalar(ours.share))).toBe(toHex(r2[i]![Id.fromNumber(to)]!.signingShare))
        }
      }
      for (let i = 0; i < n; i++) {
        const mine = Id.fromNumber(i + 1)
        const recv = r2.filter((_, j) => j !== i).map(m => m[mine]!)
        const key = ed25519_FROST.DKG.round3(secrets[i]!, nobleR1.filter((_, j) => j !== i), recv)
        expect(toHex(key.secret.signingShare)).toBe(toHex(encodeScalar(outs[i]!.share.scalar)))
        expect(key.public.commitments.map(toHex)).toEqual(outs[i]!.publicKey.commitments.map(p => toHex(encodePoint(p))))
        for (let m = 1; m <= n; m++) {
          expect(toHex(key.public.verifyingShares[Id.fromNumber(m)]!)).toBe(toHex(encodePoint(outs[i]!.publicKey.verifyingShares[m - 1]!)))
        }
      }
    })
  }

  it('blames a dealer that sends a bad share', () => {
    const { states, round1s } = start(3, 5)
    const inbox = inboxes(states, round1s)
    // node 4 sends node 2 a share for someone else (valid scalar, wrong value)
    const good = decodeDkgRound2(inbox[1]!.get(4)!)
    const bad = new Uint8Array(inbox[1]!.get(4)!)
    bad.set(encodeScalar(mod(good.share + 1n)), 7)
    inbox[1]!.set(4, bad)
    expectBlame(() => dkgFinish(states[1]!, round1s, inbox[1]!), [4])
    // others are unaffected
    expect(() => dkgFinish(states[0]!, round1s, inbox[0]!)).not.toThrow()
    // malformed (non-canonical scalar) and missing packages are blamed too
    const nc = new Uint8Array(inbox[2]!.get(5)!); nc.set(encodeScalar(L - 1n), 7); nc[38] = 0xff
    inbox[2]!.set(5, nc); inbox[2]!.delete(1)
    expectBlame(() => dkgFinish(states[2]!, round1s, inbox[2]!), [1, 5])
  })

  it('blames a bad proof of knowledge (round 2 and finish)', () => {
    const { states, round1s } = start(2, 3)
    const other = dkgStart(3, 2, 3).round1
    // node 3 publishes commitments whose proof belongs to another polynomial
    const forged = { ...round1s[2]!, proofOfKnowledge: other.proofOfKnowledge }
    const t = [round1s[0]!, round1s[1]!, forged]
    expectBlame(() => verifyRound1(forged, 2), [3])
    expectBlame(() => dkgRound2(states[0]!, t), [3])
    expectBlame(() => dkgFinish(states[1]!, t, new Map()), [3])
  })

  it('names an equivocating dealer via the echo check', () => {
    const { round1s } = start(3, 5)
    const alt = dkgStart(2, 3, 5).round1 // node 2 shows nodes 4,5 a different package
    const view1 = transcriptDigests(round1s)
    const view2 = transcriptDigests(round1s.map(p => p.index === 2 ? alt : p))
    expect(view1).toHaveLength(5)
    expect(compareTranscripts(view1, new Map([[2, view1], [3, view1]]))).toEqual([])
    expect(compareTranscripts(view1, new Map([[3, view1], [4, view2], [5, view2]]))).toEqual([2])
    expect(() => compareTranscripts(view1, new Map([[4, view1.slice(1)]]))).toThrow(VerificationError)
    // the context separates runs
    expect(toHex(transcriptDigests(round1s, new Uint8Array([1]))[0]!)).not.toBe(toHex(view1[0]!))
  })

  it('state round-trips; round2 after resume is byte-identical', () => {
    const { states, round1s } = start(3, 5)
    const before = dkgRound2(states[2]!, round1s)
    const resumed = decodeDkgState(encodeDkgState(states[2]!))
    const after = dkgRound2(resumed, [...round1s].reverse())
    expect([...after.keys()]).toEqual([...before.keys()])
    for (const [j, b] of before) expect(toHex(after.get(j)!)).toBe(toHex(b))
    expect(toHex(encodeDkgState(resumed))).toBe(toHex(encodeDkgState(states[2]!)))
    // a corrupted state is rejected
    const enc = encodeDkgState(states[2]!); enc[8] = (enc[8]! ^ 1)
    expect(() => decodeDkgState(enc)).toThrow(BadInputError)
  })

  it('round-1 codec is strict', () => {
    const { round1s } = start(2, 3)
    const enc = encodeDkgRound1(round1s[0]!)
    expect(toHex(encodeDkgRound1(decodeDkgRound1(enc)))).toBe(toHex(enc))
    expect(() => decodeDkgRound1(enc.subarray(0, enc.length - 1))).toThrow(BadInputError)
    expect(() => decodeDkgRound1(new Uint8Array([...enc, 0]))).toThrow(BadInputError)
    const badPoint = new Uint8Array(enc); badPoint.fill(0, 7, 39)
    expect(() => decodeDkgRound1(badPoint)).toThrow(BadInputError)
  })

  it('rejects bad parameters', () => {
    expect(() => dkgStart(0, 2, 3)).toThrow(BadInputError)
    expect(() => dkgStart(4, 2, 3)).toThrow(BadInputError)
    expect(() => dkgStart(1, 1, 3)).toThrow(BadInputError)
    expect(() => dkgStart(1, 4, 3)).toThrow(BadInputError)
    expect(() => dkgStart(1, 2, 65)).toThrow(BadInputError)
  })
})
