import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { BASE, L, decodeScalar, encodeScalar, lagrangeAtZero, mod } from '../../protocol/group.ts'
import type { GroupPublicKey, KeyShare } from '../../protocol/keyset.ts'
import { decodeSubShare } from '../../protocol/reshare.ts'
import { utf8 } from '../../protocol/bytes.ts'
import {
  REPAIR_MESSAGE_LEN, REPAIR_PIECE_MAGIC, REPAIR_SUM_MAGIC, REPAIR_VERSION, repairCoefficient, repairFinish, repairSplit,
  repairSplitWithRng, repairSum
} from '../../protocol/repair.ts'
import { dealKey, drbg, interpolate } from '../vectors/generators/reshare.ts'
import { simulateRepair } from '../vectors/generators/repair.ts'
import { seededDkg } from '../vectors/generators/dkg.ts'

const PIECE = utf8(REPAIR_PIECE_MAGIC)
const SUM = utf8(REPAIR_SUM_MAGIC)

/** A random k-subset of 1..n without `exclude` (Math.random: test data, not secrets). */
function randomHelpers (n: number, k: number, exclude: number): number[] {
  const pool = Array.from({ length: n }, (_, i) => i + 1).filter(i => i !== exclude)
  for (let i = pool.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [pool[i], pool[j]] = [pool[j]!, pool[i]!] }
  return pool.slice(0, k)
}

/** Runs `f`, which must throw VerificationError; returns its blame. */
function blameOf (f: () => unknown): number[] {
  let err: unknown
  try { f() } catch (e) { err = e }
  expect(err).toBeInstanceOf(VerificationError)
  return (err as VerificationError).blame
}

/** Decodes a piece (test helper). */
function pieceScalar (b: Uint8Array): bigint {
  return decodeSubShare('p', PIECE, REPAIR_PIECE_MAGIC, REPAIR_VERSION, b).share
}

/** The inbox of helper `j`: the piece every helper of H sent it. */
function inboxOf (pieces: Map<number, Map<number, Uint8Array>>, j: number): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>()
  for (const [i, out] of pieces) m.set(i, out.get(j)!)
  return m
}

describe('repairCoefficient', () => {
  it('is the Lagrange coefficient at the target: Σ λ_i^H(r)·f(i) = f(r) and it equals lagrangeAtZero at the shifted set', () => {
    const key = dealKey(3, 5, drbg('unit repair coeff'))
    const H = [1, 3, 4]
    for (const r of [2, 5]) {
      const acc = H.reduce((a, i) => mod(a + repairCoefficient(H, i, r) * key.shares[i - 1]!.scalar), 0n)
      expect(acc).toBe(key.shares[r - 1]!.scalar)
    }
    // Direct small example: H = {1, 3}, r = 2 → λ_1 = λ_3 = 1/2.
    const half = (L + 1n) / 2n
    expect(repairCoefficient([1, 3], 1, 2)).toBe(half)
    expect(repairCoefficient([3, 1], 3, 2)).toBe(half)
    // With H = {1, 2}, r = 3: λ_1 = (3−2)/(1−2) = −1, λ_2 = (3−1)/(2−1) = 2.
    expect(repairCoefficient([1, 2], 1, 3)).toBe(L - 1n)
    expect(repairCoefficient([1, 2], 2, 3)).toBe(2n)
    // Σ_i λ_i^H(r) = 1 (interpolating the constant 1).
    const sumOne = [1, 4, 6, 9].reduce((a, i) => mod(a + repairCoefficient([1, 4, 6, 9], i, 7)), 0n)
    expect(sumOne).toBe(1n)
    // Translation invariance, an independent formula: λ_i^H(r) = λ_(i−r) at 0 over {m − r : m ∈ H}.
    for (const [H, r] of [[[2, 5, 7], 1], [[2, 5, 7], 64], [[10, 20, 30, 40, 50], 33]] as const) {
      for (const i of H) expect(repairCoefficient(H, i, r)).toBe(lagrangeAtZero(H.map(m => m - r), i - r))
    }
  })

  it('refuses bad sets, targets and indices', () => {
    expect(() => repairCoefficient([1], 1, 2)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 2, 2], 1, 3)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 2], 1, 2)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 2], 3, 4)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 2], 1, 0)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 2], 1, 65)).toThrow(BadInputError)
    expect(() => repairCoefficient([0, 2], 2, 3)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 65], 1, 3)).toThrow(BadInputError)
    expect(() => repairCoefficient([1, 2.5], 1, 3)).toThrow(BadInputError)
    expect(() => repairCoefficient('12' as unknown as number[], 1, 3)).toThrow(BadInputError)
  })
})

describe('repair', () => {
  for (const [k, n] of [[3, 5], [5, 9]] as const) {
    it(`${k}-of-${n}: every index is repaired exactly from a random helper set`, () => {
      const key = dealKey(k, n)
      for (let r = 1; r <= n; r++) {
        const H = randomHelpers(n, k, r)
        const run = simulateRepair(key, H, r)
        expect(run.share.index).toBe(r)
        expect(run.share.scalar).toBe(key.shares[r - 1]!.scalar)
        // every message is 39 bytes, labelled, and the pieces of helper i sum to λ_i·s_i
        for (const i of H) {
          const out = run.pieces.get(i)!
          expect([...out.keys()]).toEqual([...H].sort((a, b) => a - b))
          let acc = 0n
          for (const [j, p] of out) {
            expect(p.length).toBe(REPAIR_MESSAGE_LEN)
            const d = decodeSubShare('p', PIECE, REPAIR_PIECE_MAGIC, REPAIR_VERSION, p)
            expect([d.from, d.to]).toEqual([i, j])
            acc = mod(acc + d.share)
          }
          expect(acc).toBe(mod(repairCoefficient(H, i, r) * key.shares[i - 1]!.scalar))
        }
        for (const [j, s] of run.sums) {
          expect(s.length).toBe(REPAIR_MESSAGE_LEN)
          const d = decodeSubShare('s', SUM, REPAIR_SUM_MAGIC, REPAIR_VERSION, s)
          expect([d.from, d.to]).toEqual([j, r])
        }
      }
    })
  }

  it('works on a real DKG output, with more helpers than the threshold, and the repaired share combines', () => {
    const d = seededDkg(3, 5, 'unit repair on dkg')
    const key = { pub: d.publicKey, shares: d.shares }
    const run = simulateRepair(key, [1, 3, 4, 5], 2)
    expect(run.share.scalar).toBe(d.shares[1]!.scalar)
    expect(interpolate([run.share, d.shares[0]!, d.shares[4]!])).toBe(interpolate(d.shares.slice(0, 3)))
  })

  it('the public API (CSPRNG split) gives fresh pieces every time, the same result', () => {
    const key = dealKey(3, 5)
    const H = [2, 3, 5]
    const a = repairSplit(key.shares[1]!, H, 1)
    const b = repairSplit(key.shares[1]!, H, 1)
    for (const j of H) expect(pieceScalar(a.get(j)!)).not.toBe(pieceScalar(b.get(j)!))
    const sumA = H.reduce((acc, j) => mod(acc + pieceScalar(a.get(j)!)), 0n)
    const sumB = H.reduce((acc, j) => mod(acc + pieceScalar(b.get(j)!)), 0n)
    expect(sumA).toBe(sumB)
    expect(simulateRepair(key, H, 1).share.scalar).toBe(key.shares[0]!.scalar)
  })

  it('the seeded split is deterministic', () => {
    const key = dealKey(2, 3, drbg('unit repair det'))
    const a = repairSplitWithRng(key.shares[0]!, [1, 3], 2, drbg('x'))
    const b = repairSplitWithRng(key.shares[0]!, [1, 3], 2, drbg('x'))
    for (const j of [1, 3]) expect(a.get(j)).toEqual(b.get(j))
  })

  describe('a lying helper causes a refusal, never a wrong share', () => {
    const key = dealKey(3, 5, drbg('unit repair lie'))
    const H = [1, 2, 4]
    const r = 5

    function reencode (b: Uint8Array, magic: Uint8Array, f: (s: bigint) => bigint): Uint8Array {
      const d = decodeSubShare('m', magic, 'm', REPAIR_VERSION, b)
      const out = new Uint8Array(b)
      out.set(encodeScalar(f(d.share)), 7)
      return out
    }

    it('one wrong piece (correctly labelled) → VerificationError blaming all of H', () => {
      for (const [from, to] of [[1, 2], [4, 4], [2, 1]] as const) {
        const blame = blameOf(() => simulateRepair(key, H, r, {
          tamperPiece: (i, j, p) => i === from && j === to ? reencode(p, PIECE, s => mod(s + 1n)) : p
        }))
        expect(blame).toEqual([1, 2, 4])
      }
    })

    it('one wrong sum → VerificationError blaming all of H (given in any order)', () => {
      const blame = blameOf(() => simulateRepair(key, [4, 1, 2], r, {
        tamperSum: (j, s) => j === 2 ? reencode(s, SUM, x => mod(x + 7n)) : s
      }))
      expect(blame).toEqual([1, 2, 4])
    })

    it('a helper using a wrong share → refused', () => {
      const bad = { pub: key.pub, shares: key.shares.map(s => s.index === 4 ? { index: 4, scalar: mod(s.scalar + 1n) } : s) }
      expect(blameOf(() => simulateRepair(bad, H, r))).toEqual([1, 2, 4])
    })

    it('sums that add up to 0 → refused (never a zero share)', () => {
      const run = simulateRepair(key, H, r)
      const sums = new Map(run.sums)
      const total = [...sums.values()].reduce((a, s) => mod(a + decodeSubShare('s', SUM, 's', 1, s).share), 0n)
      sums.set(1, reencode(sums.get(1)!, SUM, x => mod(x - total)))
      expect(blameOf(() => repairFinish(r, key.pub, H, sums))).toEqual([1, 2, 4])
    })

    it('a right share checked against the wrong generation key → refused', () => {
      const other = dealKey(3, 5)
      const run = simulateRepair(key, H, r)
      expect(blameOf(() => repairFinish(r, other.pub, H, run.sums))).toEqual([1, 2, 4])
    })
  })

  describe('malformed, mislabelled, duplicate and missing messages', () => {
    const key = dealKey(3, 5, drbg('unit repair malformed'))
    const H = [1, 3, 5]
    const r = 2
    const pieces = new Map(H.map(i => [i, repairSplitWithRng(key.shares[i - 1]!, H, r, drbg(`m/${i}`))]))
    const inbox3 = inboxOf(pieces, 3)
    const goodSums = new Map(H.map(j => [j, repairSum(j, H, r, inboxOf(pieces, j))]))

    it('sanity: the unmodified inputs work', () => {
      expect(repairFinish(r, key.pub, H, goodSums).scalar).toBe(key.shares[r - 1]!.scalar)
    })

    it('a piece addressed to another helper, relabelled sender, or a duplicate of another piece is blamed on its sender', () => {
      // piece 1→5 delivered to 3
      expect(blameOf(() => repairSum(3, H, r, new Map([...inbox3, [1, pieces.get(1)!.get(5)!]])))).toEqual([1])
      // helper 5 forwards helper 1's piece to 3 (duplicate of the entry from 1)
      expect(blameOf(() => repairSum(3, H, r, new Map([...inbox3, [5, inbox3.get(1)!]])))).toEqual([5])
      // two bad senders are both named
      const swapped = new Map([...inbox3, [1, inbox3.get(5)!], [5, inbox3.get(1)!]])
      expect(blameOf(() => repairSum(3, H, r, swapped))).toEqual([1, 5])
    })

    it('a piece with wrong magic, version, length or a non-canonical scalar is blamed on its sender', () => {
      const p = inbox3.get(5)!
      const variants: Uint8Array[] = []
      let v = new Uint8Array(p); v.set(SUM, 0); variants.push(v)
      v = new Uint8Array(p); v[4] = 2; variants.push(v)
      variants.push(p.subarray(0, 38))
      v = new Uint8Array(40); v.set(p); variants.push(v)
      v = new Uint8Array(p); v.fill(0xff, 7); variants.push(v)
      v = new Uint8Array(p); v[5] = 0; variants.push(v)
      for (const bad of variants) expect(blameOf(() => repairSum(3, H, r, new Map([...inbox3, [5, bad]])))).toEqual([5])
      expect(blameOf(() => repairSum(3, H, r, new Map<number, Uint8Array>([...inbox3, [5, 'x' as unknown as Uint8Array]])))).toEqual([5])
      // a KMRT sum is not a piece
      expect(blameOf(() => repairSum(3, H, r, new Map([...inbox3, [1, goodSums.get(1)!]])))).toEqual([1])
    })

    it('missing or extra pieces, a non-Map, bad self/target/H are caller errors', () => {
      const missing = new Map(inbox3); missing.delete(5)
      expect(() => repairSum(3, H, r, missing)).toThrow(BadInputError)
      expect(() => repairSum(3, H, r, new Map([...inbox3, [4, inbox3.get(1)!]]))).toThrow(BadInputError)
      expect(() => repairSum(3, H, r, Object.fromEntries(inbox3) as unknown as Map<number, Uint8Array>)).toThrow(BadInputError)
      expect(() => repairSum(4, H, r, inbox3)).toThrow(BadInputError)
      expect(() => repairSum(3, H, 3, inbox3)).toThrow(BadInputError)
      expect(() => repairSum(3, [3], r, new Map([[3, inbox3.get(3)!]]))).toThrow(BadInputError)
      expect(() => repairSum(3, [1, 3, 3, 5], r, inbox3)).toThrow(BadInputError)
    })

    it('sums: mislabelled, wrong magic, missing, extra', () => {
      // σ_3 relabelled as coming from 1 (i.e. 3's sum delivered under 1)
      expect(blameOf(() => repairFinish(r, key.pub, H, new Map([...goodSums, [1, goodSums.get(3)!]])))).toEqual([1])
      // a sum addressed to another target
      const other = new Uint8Array(goodSums.get(5)!); other[6] = 4
      expect(blameOf(() => repairFinish(r, key.pub, H, new Map([...goodSums, [5, other]])))).toEqual([5])
      // a piece is not a sum
      expect(blameOf(() => repairFinish(r, key.pub, H, new Map([...goodSums, [3, inbox3.get(3)!]])))).toEqual([3])
      const missing = new Map(goodSums); missing.delete(1)
      expect(() => repairFinish(r, key.pub, H, missing)).toThrow(BadInputError)
      expect(() => repairFinish(r, key.pub, H, new Map([...goodSums, [4, goodSums.get(1)!]]))).toThrow(BadInputError)
    })

    it('finish: target ∈ H, |H| < k, indices beyond n, a malformed key are refused as BadInputError', () => {
      expect(() => repairFinish(3, key.pub, H, goodSums)).toThrow(BadInputError)
      expect(() => repairFinish(r, key.pub, [1, 3], new Map([[1, goodSums.get(1)!], [3, goodSums.get(3)!]]))).toThrow(BadInputError)
      expect(() => repairFinish(6, key.pub, H, goodSums)).toThrow(BadInputError)
      expect(() => repairFinish(r, key.pub, [1, 3, 6], goodSums)).toThrow(BadInputError)
      expect(() => repairFinish(r, {} as GroupPublicKey, H, goodSums)).toThrow(BadInputError)
    })
  })

  it('split refuses r ∈ H, |H| < 2, share ∉ H, zero or non-canonical share', () => {
    const key = dealKey(2, 4, drbg('unit repair split'))
    const s1 = key.shares[0]!
    expect(() => repairSplit(s1, [1, 2], 2)).toThrow(BadInputError)
    expect(() => repairSplit(s1, [1], 2)).toThrow(BadInputError)
    expect(() => repairSplit(s1, [], 2)).toThrow(BadInputError)
    expect(() => repairSplit(s1, [2, 3], 4)).toThrow(BadInputError)
    expect(() => repairSplit({ index: 1, scalar: 0n }, [1, 2], 3)).toThrow(BadInputError)
    expect(() => repairSplit({ index: 1, scalar: L }, [1, 2], 3)).toThrow(BadInputError)
    expect(() => repairSplit({ index: 1, scalar: 5 } as unknown as KeyShare, [1, 2], 3)).toThrow(BadInputError)
    expect(() => repairSplit(null as unknown as KeyShare, [1, 2], 3)).toThrow(BadInputError)
    expect(() => repairSplit(s1, [1, 2], 65)).toThrow(BadInputError)
    // the error message never carries the share
    let err: unknown
    try { repairSplit({ index: 9, scalar: s1.scalar }, [1, 2], 3) } catch (e) { err = e }
    expect(err).toBeInstanceOf(BadInputError)
    expect((err as Error).message).not.toContain(s1.scalar.toString(16))
    expect((err as Error).message).not.toContain(s1.scalar.toString())
  })

  it('pieces a helper receives are not the others\' weighted shares (nothing leaks trivially)', () => {
    const key = dealKey(3, 5, drbg('unit repair leak'))
    const H = [1, 2, 3]
    const r = 4
    const run = simulateRepair(key, H, r, { seed: 'leak' })
    const secretsOf = (i: number): bigint[] => {
      const s = key.shares[i - 1]!.scalar
      return [s, mod(repairCoefficient(H, i, r) * s)]
    }
    for (const j of H) {
      const inbox = inboxOf(run.pieces, j)
      for (const [i, p] of inbox) {
        if (i === j) continue
        const got = pieceScalar(p)
        for (const x of secretsOf(i)) expect(got).not.toBe(x)
      }
      // σ_j is neither the target share nor any helper's (weighted) share
      const sigma = decodeSubShare('s', SUM, 's', 1, run.sums.get(j)!).share
      expect(sigma).not.toBe(key.shares[r - 1]!.scalar)
      for (const i of H) for (const x of secretsOf(i)) expect(sigma).not.toBe(x)
    }
    // the repaired value as encoded equals the dealt one (sanity, so the above is not vacuous)
    expect(decodeScalar('x', encodeScalar(run.share.scalar))).toBe(key.shares[r - 1]!.scalar)
    expect(BASE.multiply(run.share.scalar).equals(key.pub.verifyingShares[r - 1]!)).toBe(true)
  })
})
