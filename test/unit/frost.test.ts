import { describe, expect, it } from 'vitest'
import { createPublicKey, verify } from 'node:crypto'
import {
  decodeSigningCommitment, decodeSigningCommitments, encodeSigningCommitment, encodeSigningCommitments,
  frostAggregate, frostCommit, frostSignShare, frostVerifyShare, decodeSignatureShare
} from '../../protocol/frost.ts'
import type { SigningCommitment, SigningNonces } from '../../protocol/frost.ts'
import { signKey } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { encodeScalar, decodeScalar, mod } from '../../protocol/group.ts'
import { concat, fromHex, toHex, utf8 } from '../../protocol/bytes.ts'
import { makeKeySet } from './keygen-fixture.ts'

function sign (ks: KeySet, shares: KeyShare[], signers: number[], msg: Uint8Array): { sig: Uint8Array, commitments: SigningCommitment[], sigShares: Map<number, Uint8Array> } {
  const round1 = signers.map(i => frostCommit(shares[i - 1]!))
  const commitments = round1.map(r => r.commitment)
  const sigShares = new Map<number, Uint8Array>()
  for (const [j, i] of signers.entries()) sigShares.set(i, frostSignShare(shares[i - 1]!, ks, round1[j]!.nonces, commitments, msg))
  return { sig: frostAggregate(ks, commitments, msg, sigShares), commitments, sigShares }
}

function nodeVerify (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.from(concat(fromHex('p', '302a300506032b6570032100'), pk)), format: 'der', type: 'spki' })
  return verify(null, msg, key, sig)
}

describe('frost', () => {
  const { ks, signShares } = makeKeySet(3, 5, { dkg: true })
  const msg = utf8('release manifest bytes')

  it('any k (and more) of n signers produce a standard Ed25519 signature', () => {
    for (const signers of [[1, 2, 3], [2, 4, 5], [1, 3, 5], [5, 4, 1], [1, 2, 3, 4, 5]]) {
      const { sig } = sign(ks, signShares, signers, msg)
      expect(sig).toHaveLength(64)
      expect(nodeVerify(signKey(ks), msg, sig)).toBe(true)
      expect(nodeVerify(signKey(ks), utf8('other'), sig)).toBe(false)
    }
  })

  it('blames a wrong signature share', () => {
    const round1 = [1, 3, 4].map(i => frostCommit(signShares[i - 1]!))
    const commitments = round1.map(r => r.commitment)
    const sigShares = new Map<number, Uint8Array>()
    for (const [j, i] of [1, 3, 4].entries()) sigShares.set(i, frostSignShare(signShares[i - 1]!, ks, round1[j]!.nonces, commitments, msg))
    const bad = new Map(sigShares)
    bad.set(3, encodeScalar(mod(decodeScalar('t', sigShares.get(3)!, true) + 1n)))
    expect(frostVerifyShare(ks, commitments, msg, 3, bad.get(3)!)).toBe(false)
    expect(frostVerifyShare(ks, commitments, msg, 1, bad.get(1)!)).toBe(true)
    try { frostAggregate(ks, commitments, msg, bad); expect.fail('should throw') } catch (err) {
      expect(err).toBeInstanceOf(VerificationError)
      expect((err as VerificationError).blame).toEqual([3])
    }
    // a non-canonical share is blamed too
    const nc = new Map(sigShares); nc.set(4, new Uint8Array(32).fill(0xff))
    try { frostAggregate(ks, commitments, msg, nc); expect.fail('should throw') } catch (err) {
      expect((err as VerificationError).blame).toEqual([4])
    }
    // the honest set still aggregates
    expect(nodeVerify(signKey(ks), msg, frostAggregate(ks, commitments, msg, sigShares))).toBe(true)
  })

  it('nonces are single-use', () => {
    const a = frostCommit(signShares[0]!)
    const b = frostCommit(signShares[1]!)
    const cs = [a.commitment, b.commitment, frostCommit(signShares[2]!).commitment]
    frostSignShare(signShares[0]!, ks, a.nonces, cs, msg)
    expect(a.nonces.hiding.every(x => x === 0)).toBe(true)
    expect(() => frostSignShare(signShares[0]!, ks, a.nonces, cs, msg)).toThrow(BadInputError)
    // wrong nonces for the published commitment
    const other: SigningNonces = frostCommit(signShares[1]!).nonces
    expect(() => frostSignShare(signShares[1]!, ks, other, cs, msg)).toThrow(BadInputError)
  })

  it('rejects malformed commitment lists', () => {
    const cs = [1, 2, 3].map(i => frostCommit(signShares[i - 1]!).commitment)
    const n = frostCommit(signShares[0]!).nonces
    expect(() => frostSignShare(signShares[0]!, ks, n, cs.slice(0, 2), msg)).toThrow(BadInputError) // < k
    expect(() => frostSignShare(signShares[0]!, ks, n, [cs[0]!, cs[0]!, cs[1]!], msg)).toThrow(BadInputError) // dup
    const badPoint = { ...cs[1]!, hiding: new Uint8Array(32) }
    expect(() => frostSignShare(signShares[0]!, ks, n, [cs[0]!, badPoint, cs[2]!], msg)).toThrow(BadInputError)
    expect(() => frostAggregate(ks, cs, msg, new Map([[1, new Uint8Array(32)]]))).toThrow(BadInputError)
  })

  it('commitment and share codecs are strict', () => {
    const cs = [3, 1, 2].map(i => frostCommit(signShares[i - 1]!).commitment)
    const enc = encodeSigningCommitment(cs[0]!)
    expect(enc).toHaveLength(65)
    const dec = decodeSigningCommitment(enc)
    expect(dec.index).toBe(3)
    expect(toHex(dec.hiding)).toBe(toHex(cs[0]!.hiding))
    const list = encodeSigningCommitments(cs)
    expect(decodeSigningCommitments(list).map(c => c.index)).toEqual([1, 2, 3])
    const unsorted = concat(new Uint8Array([2]), encodeSigningCommitment(cs[0]!), encodeSigningCommitment(cs[1]!))
    expect(() => decodeSigningCommitments(unsorted)).toThrow(BadInputError)
    expect(() => decodeSigningCommitment(enc.subarray(1))).toThrow(BadInputError)
    const z = new Uint8Array(enc); z[0] = 0
    expect(() => decodeSigningCommitment(z)).toThrow(BadInputError)
    expect(() => decodeSignatureShare(new Uint8Array(32).fill(0xff))).toThrow(BadInputError)
    expect(() => decodeSignatureShare(new Uint8Array(31))).toThrow(BadInputError)
  })
})
