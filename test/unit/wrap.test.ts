import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { verifyEnvelope, verifyEnvelopes, wrap, wrapWithRandomness, envelopeChallenge, halfSizeSplit } from '../../protocol/wrap.ts'
import { decodeEnvelope, encodeEnvelope } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { BASE, L, PointCons, mod, randomScalar } from '../../protocol/group.ts'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { computePartial } from '../../protocol/partial.ts'
import { combine } from '../../protocol/combine.ts'
import { dealKeySet, labelFor, seededRng } from '../helpers/dealer.ts'

const { ks, shares } = dealKeySet(2, 3, 'wrap-test')
const dataKey = new Uint8Array(randomBytes(32))
const env = wrap(ks, labelFor(ks), dataKey)
const ORDER8 = PointCons.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')

describe('wrap / verifyEnvelope', () => {
  it('wraps a data key that k nodes can open, and the proof verifies', () => {
    verifyEnvelope(ks, env)
    verifyEnvelope(ks, decodeEnvelope(encodeEnvelope(env)))
    const ps = [computePartial(shares[0]!, ks, env), computePartial(shares[2]!, ks, env)]
    expect(combine(ks, env, ps)).toEqual(dataKey)
  })

  it('is deterministic given the randomness', () => {
    const a = wrapWithRandomness(ks, labelFor(ks), dataKey, seededRng('x'))
    const b = wrapWithRandomness(ks, labelFor(ks), dataKey, seededRng('x'))
    expect(encodeEnvelope(a)).toEqual(encodeEnvelope(b))
  })

  it('rejects bad inputs to wrap', () => {
    expect(() => wrap(ks, labelFor(ks), new Uint8Array(31))).toThrow(BadInputError)
    expect(() => wrap(ks, labelFor(ks, { epoch: 2 }), dataKey)).toThrow(/label.epoch/)
    expect(() => wrap(ks, labelFor(ks, { clusterId: 'ff'.repeat(16) }), dataKey)).toThrow(/label.clusterId/)
  })

  it('rejects R reused under another label, even with a fresh proof attempt by someone not knowing r', () => {
    const other = labelFor(ks, { app: 'other-app' })
    // 1. Same (W, s, ciphertext) under the new label.
    const moved: Envelope = { ...env, label: other }
    expect(() => verifyEnvelope(ks, moved)).toThrow(VerificationError)
    // 2. A fresh Schnorr attempt: the attacker knows only R, so picks w' and s' = w' (cannot add c·r).
    for (let i = 0; i < 5; i++) {
      const w = randomScalar()
      const forged: Envelope = { ...env, label: other, W: BASE.multiply(w), s: w }
      expect(() => verifyEnvelope(ks, forged)).toThrow(VerificationError)
      expect(() => computePartial(shares[0]!, ks, forged)).toThrow(VerificationError)
    }
    // 3. Choosing W after s: W = s·B − c·R needs c, which depends on W.
    const s = randomScalar()
    const guessW = BASE.multiply(s).subtract(env.R.multiply(envelopeChallenge(ks.wrap.commitments[0]!, env).c))
    expect(() => verifyEnvelope(ks, { ...env, label: other, W: guessW, s })).toThrow(VerificationError)
  })

  it('rejects an envelope whose label names another cluster or epoch than the key set', () => {
    const ks2 = { ...ks, epoch: 2 }
    expect(() => verifyEnvelope(ks2, env)).toThrow(VerificationError)
  })

  it('accepts a mixed-order R made by the holder of r, and nodes then only ever use its prime-order part', () => {
    // A wrapper that knows r adds an order-8 point to R. The cofactored check accepts it, and the
    // node multiplies 8·R, so its answer is identical to the one for the clean R: nothing about
    // x_i mod 8 leaks.
    const X = ks.wrap.commitments[0]!
    const w = randomScalar()
    const W = BASE.multiply(w)
    const r = randomScalar()
    const R2 = BASE.multiply(r).add(ORDER8)
    const d2: Envelope = { ...env, R: R2, W, s: 0n }
    const c2 = envelopeChallenge(X, d2).c
    const e2: Envelope = { ...d2, s: mod(w + c2 * r) }
    verifyEnvelope(ks, e2)
    expect(e2.R.isTorsionFree()).toBe(false)
    verifyEnvelope(ks, decodeEnvelope(encodeEnvelope(e2)))
    const p = computePartial(shares[0]!, ks, e2)
    expect(p.D.equals(BASE.multiply(r).multiply(8n).multiply(shares[0]!.scalar))).toBe(true)
  })

  it('batch-verifies many envelopes and names a bad one', () => {
    const es = Array.from({ length: 6 }, (_, j) => wrap(ks, labelFor(ks, { release: `r${j}` }), dataKey))
    verifyEnvelopes(ks, es)
    const bad = [...es]
    bad[4] = { ...es[4]!, s: mod(es[4]!.s + 1n) }
    expect(() => verifyEnvelopes(ks, bad)).toThrow(/envelope 4/)
    // Torsion added to W: the cofactored check treats single and batch the same way.
    const tw = [...es]
    tw[2] = { ...es[2]!, W: es[2]!.W.add(ORDER8) }
    expect(() => verifyEnvelope(ks, tw[2]!)).toThrow(VerificationError)
    expect(() => verifyEnvelopes(ks, tw)).toThrow(VerificationError)
    expect(() => verifyEnvelopes(ks, [])).toThrow(BadInputError)
  })

  it('splits challenges into half-size fractions c ≡ c0/c1 (mod L) for the fast check', () => {
    for (const c of [0n, 1n, 2n, L - 1n, L - 2n, ...Array.from({ length: 200 }, () => randomScalar())]) {
      const { c0, c1 } = halfSizeSplit(c)
      expect(mod(c0 - c * c1)).toBe(0n)
      expect(c1 > 0n).toBe(true)
      expect((c0 < 0n ? -c0 : c0) < 2n ** 127n && c1 < 2n ** 127n).toBe(true)
    }
  })
})
