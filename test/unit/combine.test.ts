import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { wrap } from '../../protocol/wrap.ts'
import { envelopeId } from '../../protocol/envelope.ts'
import { computeBatchPartial, computePartial, decodePartial, encodePartial, openSealedPartial, sealPartial } from '../../protocol/partial.ts'
import type { BatchPartial, Partial } from '../../protocol/partial.ts'
import { combine, combineBatch, verifyBatchPartial, verifyPartial } from '../../protocol/combine.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { BASE, PointCons, mod, randomScalar } from '../../protocol/group.ts'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { dealKeySet, labelFor } from '../helpers/dealer.ts'

const { ks, shares } = dealKeySet(3, 5, 'combine-test')
const dataKey = new Uint8Array(randomBytes(32))
const env = wrap(ks, labelFor(ks), dataKey)
const partials = shares.map(s => computePartial(s, ks, env))
const ORDER8 = PointCons.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')

function blameOf (f: () => unknown): number[] {
  try { f() } catch (err) {
    expect(err).toBeInstanceOf(VerificationError)
    return (err as VerificationError).blame
  }
  throw new Error('expected a VerificationError')
}

describe('partial + combine', () => {
  it('k partials combine to the data key, optimistic and strict', () => {
    expect(combine(ks, env, partials.slice(0, 3))).toEqual(dataKey)
    expect(combine(ks, env, [partials[4]!, partials[1]!, partials[2]!], { strict: true })).toEqual(dataKey)
    for (const p of partials) expect(verifyPartial(ks, env, p)).toBe(true)
  })

  it('k−1 partials are refused', () => {
    expect(() => combine(ks, env, partials.slice(0, 2))).toThrow(BadInputError)
    expect(() => combine(ks, env, [partials[0]!, partials[0]!, partials[1]!])).toThrow(/duplicate/)
  })

  it('a partial from a wrong share is caught, blamed, and routed around when k honest remain', () => {
    const wrongShare = { index: 2, scalar: mod(shares[1]!.scalar + 1n) }
    const bad = computePartial(wrongShare, ks, env)
    expect(verifyPartial(ks, env, bad)).toBe(false)
    const blamed: number[][] = []
    expect(combine(ks, env, [partials[0]!, bad, partials[2]!, partials[3]!], { onBlame: b => blamed.push(b) })).toEqual(dataKey)
    expect(blamed).toEqual([[2]])
    expect(blameOf(() => combine(ks, env, [partials[0]!, bad, partials[2]!]))).toEqual([2])
    // strict mode checks even when the optimistic path would have worked
    const strictBlame: number[][] = []
    expect(combine(ks, env, [partials[0]!, partials[2]!, partials[3]!, bad], { strict: true, onBlame: b => strictBlame.push(b) })).toEqual(dataKey)
    expect(strictBlame).toEqual([[2]])
  })

  it('a partial with a small-order component added never changes the result', () => {
    const tweaked: Partial = { ...partials[0]!, D: partials[0]!.D.add(ORDER8) }
    // combine uses 8·D, so the optimistic path still opens
    expect(combine(ks, env, [tweaked, partials[1]!, partials[2]!])).toEqual(dataKey)
  })

  it('proofs transplanted between nodes or envelopes fail', () => {
    const env2 = wrap(ks, labelFor(ks, { release: 'other' }), dataKey)
    expect(verifyPartial(ks, env2, partials[0]!)).toBe(false)
    expect(verifyPartial(ks, env, { ...partials[0]!, index: 2 })).toBe(false)
    expect(verifyPartial(ks, env, { ...partials[0]!, proof: partials[1]!.proof })).toBe(false)
  })

  it('a node refuses an invalid envelope before touching its share', () => {
    expect(() => computePartial(shares[0]!, ks, { ...env, s: mod(env.s + 1n) })).toThrow(VerificationError)
    expect(() => computePartial({ index: 9, scalar: 1n }, ks, env)).toThrow(BadInputError)
  })

  it('seals to the recipient and opens; wrong recipient, index, envelope list or flipped bytes fail with blame', () => {
    const rk = generateRecipientKeyPair()
    const other = generateRecipientKeyPair()
    const ids = [envelopeId(env)]
    const sealed = sealPartial(partials[2]!, ks, ids, rk.publicKey)
    const p = openSealedPartial(sealed, ks, ids, 3, rk.secretKey) as Partial
    expect(encodePartial(p)).toEqual(encodePartial(partials[2]!))
    expect(blameOf(() => openSealedPartial(sealed, ks, ids, 3, other.secretKey))).toEqual([3])
    expect(blameOf(() => openSealedPartial(sealed, ks, ids, 4, rk.secretKey))).toEqual([4])
    expect(blameOf(() => openSealedPartial(sealed, ks, [envelopeId(wrap(ks, labelFor(ks), dataKey))], 3, rk.secretKey))).toEqual([3])
    for (let i = 0; i < sealed.length; i++) {
      const bad = sealed.slice(); bad[i] = (bad[i] as number) ^ 0x40
      expect(() => openSealedPartial(bad, ks, ids, 3, rk.secretKey)).toThrow()
    }
    expect(() => sealPartial(partials[2]!, ks, [...ids, ...ids], rk.publicKey)).toThrow(BadInputError)
  })

  it('decodes partial plaintexts strictly', () => {
    const b = encodePartial(partials[0]!)
    expect(b.length).toBe(98)
    expect(() => decodePartial(b.subarray(0, 97))).toThrow(BadInputError)
    const k3 = b.slice(); k3[0] = 3
    expect(() => decodePartial(k3)).toThrow(/partial.kind/)
    const id = b.slice(); id.set(new Uint8Array(32), 2)
    expect(() => decodePartial(id)).toThrow(/partial.D/)
    const small = b.slice(); small.set(ORDER8.toBytes(), 2)
    expect(() => decodePartial(small)).toThrow(/partial.D/)
    const big = b.slice(); big.fill(0xff, 66)
    expect(() => decodePartial(big)).toThrow(/partial.proof.z/)
  })
})

describe('batch partial + combineBatch', () => {
  const envs = Array.from({ length: 4 }, (_, j) => wrap(ks, labelFor(ks, { release: `r${j}` }), new Uint8Array(randomBytes(32))))
  const keys = envs.map((_, j) => j)
  const bps = shares.map(s => computeBatchPartial(s, ks, envs))

  it('opens every envelope from k batch partials', () => {
    const out = combineBatch(ks, envs, [bps[1]!, bps[3]!, bps[4]!])
    expect(out).toHaveLength(keys.length)
    out.forEach((k, j) => expect(combine(ks, envs[j]!, shares.slice(0, 3).map(s => computePartial(s, ks, envs[j]!)))).toEqual(k))
    expect(combineBatch(ks, envs, bps.slice(0, 3), { strict: true })).toEqual(out)
    for (const p of bps) expect(verifyBatchPartial(ks, envs, p)).toBe(true)
  })

  it('blames a node with one wrong D among many and still succeeds with k honest', () => {
    const D = [...bps[0]!.D]; D[2] = D[2]!.add(BASE)
    const bad: BatchPartial = { ...bps[0]!, D }
    expect(verifyBatchPartial(ks, envs, bad)).toBe(false)
    const blamed: number[][] = []
    const out = combineBatch(ks, envs, [bad, bps[1]!, bps[2]!, bps[3]!], { onBlame: b => blamed.push(b) })
    expect(out).toEqual(combineBatch(ks, envs, bps.slice(1, 4)))
    expect(blamed).toEqual([[1]])
    expect(blameOf(() => combineBatch(ks, envs, [bad, bps[1]!, bps[2]!]))).toEqual([1])
    const wrongShare = computeBatchPartial({ index: 5, scalar: randomScalar() }, ks, envs)
    expect(blameOf(() => combineBatch(ks, envs, [bps[0]!, wrongShare, bps[2]!]))).toEqual([5])
  })

  it('seals and opens a batch partial', () => {
    const rk = generateRecipientKeyPair()
    const ids = envs.map(envelopeId)
    const sealed = sealPartial(bps[0]!, ks, ids, rk.publicKey)
    const p = openSealedPartial(sealed, ks, ids, 1, rk.secretKey) as BatchPartial
    expect(p.D).toHaveLength(4)
    expect(blameOf(() => openSealedPartial(sealed, ks, ids.slice(1), 1, rk.secretKey))).toEqual([1])
  })
})
