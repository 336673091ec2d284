import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { frostAggregate, frostCommit, frostSignShare, ed25519Verify, decodeSigningCommitment, encodeSigningCommitment } from '../../protocol/frost.ts'
import { decodeKeySet, encodeKeySet, keySetId, signKey } from '../../protocol/keyset.ts'
import { assembleJws, jwksFromKeySets, jwsSigningInput, verifyJws } from '../../protocol/jws.ts'
import { KeymeshError, VerificationError } from '../../protocol/errors.ts'
import { toHex, utf8 } from '../../protocol/bytes.ts'
import { MANIFEST, makeKeySet } from '../unit/keygen-fixture.ts'

describe('frost / keyset / jws properties', () => {
  const { ks, signShares } = makeKeySet(3, 6)

  it('any k..n subset of signers, any message, verifies with node:crypto Ed25519', () => {
    fc.assert(fc.property(fc.shuffledSubarray([1, 2, 3, 4, 5, 6], { minLength: 3, maxLength: 6 }), fc.uint8Array({ maxLength: 200 }), (signers, msg) => {
      const r1 = signers.map(i => frostCommit(signShares[i - 1]!))
      const cs = r1.map(r => r.commitment)
      const shares = new Map(signers.map((i, j) => [i, frostSignShare(signShares[i - 1]!, ks, r1[j]!.nonces, cs, msg)]))
      const sig = frostAggregate(ks, cs, msg, shares)
      expect(ed25519Verify(signKey(ks), msg, sig)).toBe(true)
      // corrupting any one share names exactly that signer
      const victim = signers[0]!
      const bad = new Map(shares); const s = new Uint8Array(bad.get(victim)!); s[0] = s[0]! ^ 1; bad.set(victim, s)
      try { frostAggregate(ks, cs, msg, bad); expect.fail('accepted a bad share') } catch (err) {
        expect(err).toBeInstanceOf(VerificationError)
        expect((err as VerificationError).blame).toEqual([victim])
      }
    }), { numRuns: 5 })
  })

  it('a mutated key set encoding is rejected or decodes to a different key set id', () => {
    const enc = encodeKeySet(ks)
    const id = keySetId(ks)
    fc.assert(fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
      const b = new Uint8Array(enc); const i = pos % b.length; b[i] = b[i]! ^ x
      try { expect(keySetId(decodeKeySet(b))).not.toBe(id) } catch (err) { expect(err).toBeInstanceOf(KeymeshError) }
    }), { numRuns: 60 })
  })

  it('a mutated commitment decodes strictly or is rejected', () => {
    const enc = encodeSigningCommitment(frostCommit(signShares[0]!).commitment)
    fc.assert(fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
      const b = new Uint8Array(enc); const i = pos % b.length; b[i] = b[i]! ^ x
      try { expect(toHex(encodeSigningCommitment(decodeSigningCommitment(b)))).toBe(toHex(b)) } catch (err) { expect(err).toBeInstanceOf(KeymeshError) }
    }), { numRuns: 100 })
  })

  it('any single-character change to a signed JWS is rejected', () => {
    const input = jwsSigningInput(MANIFEST)
    const msg = utf8(input)
    const r1 = [1, 2, 3].map(i => frostCommit(signShares[i - 1]!))
    const cs = r1.map(r => r.commitment)
    const sig = frostAggregate(ks, cs, msg, new Map([1, 2, 3].map((i, j) => [i, frostSignShare(signShares[i - 1]!, ks, r1[j]!.nonces, cs, msg)])))
    const jws = assembleJws(input, sig)
    const jwks = jwksFromKeySets([ks])
    expect(verifyJws(jws, jwks)).toEqual(MANIFEST)
    fc.assert(fc.property(fc.nat(), fc.integer({ min: 1, max: 127 }), (pos, c) => {
      const i = pos % jws.length
      const ch = String.fromCharCode(c)
      fc.pre(ch !== jws[i])
      const t = jws.slice(0, i) + ch + jws.slice(i + 1)
      expect(() => verifyJws(t, jwks)).toThrow(KeymeshError)
    }), { numRuns: 150 })
  })
})
