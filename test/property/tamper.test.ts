import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { verifyEnvelope, wrap } from '../../protocol/wrap.ts'
import { decodeEnvelope, encodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import { computePartial, openSealedPartial, sealPartial } from '../../protocol/partial.ts'
import { decodeDleqProof, dleqVerify, encodeDleqProof } from '../../protocol/dleq.ts'
import { decodeBundle, encodeBundle, openBundle } from '../../protocol/bundle.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { dealKeySet, labelFor } from '../helpers/dealer.ts'
import { makeBundle } from '../helpers/bundle-fixture.ts'

const { ks, shares } = dealKeySet(2, 3, 'tamper-property')
const keys = [new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32))]
const envs = keys.map((key, j) => wrap(ks, labelFor(ks, { release: `r${j}` }), key))
const env = envs[0]!
const envBytes = encodeEnvelope(env)
const rk = generateRecipientKeyPair()
const ids = [envelopeId(env)]
const partial = computePartial(shares[1]!, ks, env)
const sealed = sealPartial(partial, ks, ids, rk.publicKey)
const proofBytes = encodeDleqProof(partial.proof)
const bundleK = encodeBundle(makeBundle(ks, [shares[0]!, shares[2]!], envs, rk.publicKey))
const bundleK1 = encodeBundle(makeBundle(ks, shares, envs, rk.publicKey))

/** A position in `b` and a non-zero XOR mask. */
const flip = (b: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.tuple(fc.nat({ max: b.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, m]) => {
    const c = b.slice(); c[i] = (c[i] as number) ^ m; return c
  })

describe('tampering property', () => {
  it('any flipped envelope byte is rejected (decoding or proof)', () => {
    fc.assert(fc.property(flip(envBytes), bad => {
      expect(() => verifyEnvelope(ks, decodeEnvelope(bad))).toThrow()
    }), { numRuns: 200 })
  })

  it('any flipped sealed-partial byte is rejected', () => {
    fc.assert(fc.property(flip(sealed), bad => {
      expect(() => openSealedPartial(bad, ks, ids, 2, rk.secretKey)).toThrow()
    }), { numRuns: 150 })
  })

  it('any flipped proof byte is rejected', () => {
    const H = env.R.clearCofactor()
    const Xi = ks.wrap.verifyingShares[1]!
    fc.assert(fc.property(flip(proofBytes), bad => {
      let ok: boolean
      try { ok = dleqVerify(Xi, H, partial.D, decodeDleqProof('proof', bad)) } catch { ok = false }
      expect(ok).toBe(false)
    }), { numRuns: 150 })
  })

  it('any flipped byte of a bundle with exactly k partials is rejected', () => {
    fc.assert(fc.property(flip(bundleK), bad => {
      expect(() => openBundle(decodeBundle(bad), ks, rk.secretKey)).toThrow()
    }), { numRuns: 120 })
  })

  it('with k+1 partials a flipped byte is rejected or routed around with blame, never a wrong key', () => {
    fc.assert(fc.property(flip(bundleK1), bad => {
      const blamed: number[][] = []
      let out: Uint8Array[] | undefined
      try { out = openBundle(decodeBundle(bad), ks, rk.secretKey, { onBlame: b => blamed.push(b) }) } catch { out = undefined }
      if (out !== undefined) {
        expect(out).toEqual(keys)
        expect(blamed).toHaveLength(1)
      }
    }), { numRuns: 80 })
  })
})
