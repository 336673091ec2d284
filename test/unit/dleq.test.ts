import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { decodeDleqProof, dleqBatchProve, dleqBatchVerify, dleqProve, dleqVerify, encodeDleqProof, encodePoints } from '../../protocol/dleq.ts'
import { BASE, L, PointCons, mod, randomScalar } from '../../protocol/group.ts'
import { BadInputError } from '../../protocol/errors.ts'

const x = randomScalar()
const X = BASE.multiply(x)
const H = BASE.multiply(randomScalar())
const D = H.multiply(x)
const rnd = (): Uint8Array => new Uint8Array(randomBytes(32))

describe('dleq', () => {
  it('proves and verifies log_B X = log_H D', () => {
    const p = dleqProve(x, X, H, D, rnd())
    expect(dleqVerify(X, H, D, p)).toBe(true)
    expect(encodeDleqProof(p)).toHaveLength(64)
    expect(dleqVerify(X, H, D, decodeDleqProof('p', encodeDleqProof(p)))).toBe(true)
  })

  it('rejects a wrong D, a wrong X, and tampered c or z', () => {
    const p = dleqProve(x, X, H, D, rnd())
    expect(dleqVerify(X, H, D.add(BASE), p)).toBe(false)
    expect(dleqVerify(X.add(BASE), H, D, p)).toBe(false)
    expect(dleqVerify(X, H, D, { c: mod(p.c + 1n), z: p.z })).toBe(false)
    expect(dleqVerify(X, H, D, { c: p.c, z: mod(p.z + 1n) })).toBe(false)
    expect(dleqVerify(X, H, D, { c: p.c + L, z: p.z })).toBe(false)
    // A proof made with another secret for the same D fails.
    const y = randomScalar()
    expect(dleqVerify(X, H, D, dleqProve(y, X, H, D, rnd()))).toBe(false)
  })

  it('uses a fresh nonce per call (hedged), so two proofs of the same statement differ', () => {
    const a = dleqProve(x, X, H, D, rnd())
    const b = dleqProve(x, X, H, D, rnd())
    expect(a.c).not.toBe(b.c)
  })

  it('batch: one proof covers every pair, and any wrong pair fails', () => {
    const Hs = Array.from({ length: 5 }, () => BASE.multiply(randomScalar()))
    const Ds = Hs.map(h => h.multiply(x))
    const p = dleqBatchProve(x, X, Hs, Ds, rnd())
    expect(dleqBatchVerify(X, Hs, Ds, p)).toBe(true)
    const bad = [...Ds]; bad[3] = bad[3]!.add(BASE)
    expect(dleqBatchVerify(X, Hs, bad, p)).toBe(false)
    expect(dleqBatchVerify(X, Hs, [...Ds].reverse(), p)).toBe(false)
    expect(dleqBatchVerify(X, Hs.slice(1), Ds.slice(1), p)).toBe(false)
    expect(dleqBatchVerify(X, [], [], p)).toBe(false)
  })

  it('decodes proofs strictly', () => {
    const enc = encodeDleqProof(dleqProve(x, X, H, D, rnd()))
    expect(() => decodeDleqProof('proof', enc.subarray(0, 63))).toThrow(BadInputError)
    const big = enc.slice(); big.fill(0xff, 32)
    try { decodeDleqProof('proof', big); throw new Error('no') } catch (err) {
      expect(err).toBeInstanceOf(BadInputError)
      expect((err as BadInputError).field).toBe('proof.z')
    }
  })

  it('batched point encoding matches RFC 8032 toBytes', () => {
    const pts = Array.from({ length: 7 }, () => BASE.multiply(randomScalar()))
    const encs = encodePoints(pts)
    pts.forEach((p, i) => expect(encs[i]).toEqual(p.toBytes()))
    expect(PointCons.fromBytes(encs[0]!).equals(pts[0]!)).toBe(true)
  })
})
