import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { BASE, IDENTITY, encodePoint } from '../../protocol/group.ts'
import type { Point } from '../../protocol/group.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { decodeKeySet, encodeKeySet } from '../../protocol/keyset.ts'
import {
  dealingDigests, decodeReshareDealing, decodeReshareSubShare, encodeReshareDealing, encodeReshareSubShare, lifecycleKeySet, reshareDeal,
  reshareFinish, verifyDealing, verifySubShare
} from '../../protocol/reshare.ts'
import { ed25519Verify, frostAggregate, frostCommit, frostSignShare } from '../../protocol/frost.ts'
import { wrap } from '../../protocol/wrap.ts'
import { compareTranscripts } from '../../protocol/dkg.ts'
import { computePartial } from '../../protocol/partial.ts'
import { combine } from '../../protocol/combine.ts'
import { dealKey, drbg, interpolate, simulateReshare } from '../vectors/generators/reshare.ts'
import { seededDkg } from '../vectors/generators/dkg.ts'

function keySetOf (wrapKey: ReturnType<typeof dealKey>, signKey: ReturnType<typeof dealKey>, k: number, n: number): KeySet {
  return { version: 1, clusterId: 'ab'.repeat(16), epoch: 1, threshold: k, n, wrap: wrapKey.pub, sign: signKey.pub }
}

describe('reshare', () => {
  const old = dealKey(3, 5, drbg('unit reshare old'))

  it('3-of-5 → 3-of-5 with other dealers keeps the group key; any 3 new shares give the secret', () => {
    const run = simulateReshare(old, [1, 2, 4], 3, 5)
    expect(run.publicKey.commitments[0]!.equals(old.pub.commitments[0]!)).toBe(true)
    expect(run.publicKey.commitments).toHaveLength(3)
    expect(run.publicKey.verifyingShares).toHaveLength(5)
    for (const s of run.shares) expect(BASE.multiply(s.scalar).equals(run.publicKey.verifyingShares[s.index - 1]!)).toBe(true)
    expect(interpolate([run.shares[0]!, run.shares[2]!, run.shares[4]!])).toBe(old.secret)
    expect(interpolate([run.shares[1]!, run.shares[3]!, run.shares[4]!])).toBe(old.secret)
    // shares really changed
    expect(run.shares[0]!.scalar).not.toBe(old.shares[0]!.scalar)
    // two new shares are not enough (degree 2)
    expect(interpolate([run.shares[0]!, run.shares[1]!])).not.toBe(old.secret)
  })

  it('works on a real DKG output (dkgFinish public key and shares)', () => {
    const d = seededDkg(3, 5, 'unit reshare on dkg')
    const run = simulateReshare({ pub: d.publicKey, shares: d.shares }, [2, 4, 5], 4, 6)
    expect(run.publicKey.commitments[0]!.equals(d.publicKey.commitments[0]!)).toBe(true)
    expect(interpolate(run.shares.slice(2))).toBe(interpolate(d.shares.slice(0, 3)))
  })

  it('more than k dealers also work (Lagrange over the whole set)', () => {
    const run = simulateReshare(old, [1, 2, 3, 4, 5], 2, 3)
    expect(interpolate(run.shares.slice(0, 2))).toBe(old.secret)
    expect(run.publicKey.commitments[0]!.equals(old.pub.commitments[0]!)).toBe(true)
  })

  it('a dealer that deals another value is named; the others finish without re-dealing', () => {
    let err: unknown
    try {
      simulateReshare(old, [1, 2, 3, 5], 3, 5, {
        tamper: (i, d) => {
          if (i !== 2) return
          // dealer 2 deals a fresh random polynomial (not its share): C_0 ≠ X_2
          const other = dealKey(3, 5)
          const fake = reshareDeal(other.shares[1]!, other.pub, [1, 2, 3], 3, 5)
          d.commitment = fake.commitment; d.subShares = fake.subShares
        }
      })
    } catch (e) { err = e }
    expect(err).toBeInstanceOf(VerificationError)
    expect((err as VerificationError).blame).toEqual([2])
    // Same dealings, qualified set without 2: succeeds for every member with the same key.
    const dealt = new Map<number, ReturnType<typeof reshareDeal>>()
    for (const i of [1, 2, 3, 5]) dealt.set(i, reshareDeal(old.shares[i - 1]!, old.pub, [1, 2, 3, 5], 3, 5))
    const other = dealKey(3, 5)
    const forged = reshareDeal(other.shares[1]!, other.pub, [1, 2, 3], 3, 5)
    dealt.set(2, forged)
    const shares: KeyShare[] = []
    for (let j = 1; j <= 5; j++) {
      const cs = new Map<number, Point[]>(); const ss = new Map<number, Uint8Array>()
      for (const [i, d] of dealt) { cs.set(i, d.commitment); ss.set(i, d.subShares.get(j)!) }
      expect(() => reshareFinish(j, old.pub, [1, 2, 3, 5], cs, ss, 3, 5)).toThrow(VerificationError)
      const out = reshareFinish(j, old.pub, [1, 3, 5], cs, ss, 3, 5)
      expect(out.publicKey.commitments[0]!.equals(old.pub.commitments[0]!)).toBe(true)
      shares.push(out.share)
    }
    expect(interpolate(shares.slice(2))).toBe(old.secret)
  })

  it('a bad sub-share to one member is blamed by that member only; all bad dealers are listed', () => {
    const dealers = [1, 2, 3, 4]
    const dealt = dealers.map(i => reshareDeal(old.shares[i - 1]!, old.pub, dealers, 3, 5))
    const good = dealt[2]!.subShares.get(4)!
    dealt[2]!.subShares.set(4, encodeReshareSubShare(3, 4, 12345n))
    dealt[3]!.subShares.set(4, encodeReshareSubShare(4, 4, 999n))
    const inputs = (j: number): [Map<number, Point[]>, Map<number, Uint8Array>] => {
      const cs = new Map<number, Point[]>(); const ss = new Map<number, Uint8Array>()
      dealers.forEach((i, d) => { cs.set(i, dealt[d]!.commitment); ss.set(i, dealt[d]!.subShares.get(j)!) })
      return [cs, ss]
    }
    const [cs4, ss4] = inputs(4)
    try { reshareFinish(4, old.pub, dealers, cs4, ss4, 3, 5); expect.unreachable() } catch (e) {
      expect(e).toBeInstanceOf(VerificationError)
      expect((e as VerificationError).blame).toEqual([3, 4])
    }
    const [cs1, ss1] = inputs(1)
    expect(() => reshareFinish(1, old.pub, dealers, cs1, ss1, 3, 5)).not.toThrow()
    expect(() => verifySubShare(4, 3, dealt[2]!.commitment, good)).not.toThrow()
    expect(() => verifySubShare(4, 3, dealt[2]!.commitment, dealt[2]!.subShares.get(4)!)).toThrow(VerificationError)
    // misaddressed: the package for member 5 offered to member 4
    try { verifySubShare(4, 1, dealt[0]!.commitment, dealt[0]!.subShares.get(5)!); expect.unreachable() } catch (e) {
      expect((e as VerificationError).blame).toEqual([1])
    }
    // missing sub-share
    ss1.delete(2)
    try { reshareFinish(1, old.pub, dealers, cs1, ss1, 3, 5); expect.unreachable() } catch (e) { expect((e as VerificationError).blame).toEqual([2]) }
  })

  it('verifyDealing checks the dealer set, the length and C_0 = X_i', () => {
    const d = reshareDeal(old.shares[0]!, old.pub, [1, 2, 3], 4, 7)
    expect(() => verifyDealing(old.pub, [1, 2, 3], 1, d.commitment, 4)).not.toThrow()
    expect(() => verifyDealing(old.pub, [1, 2, 3], 4, d.commitment, 4)).toThrow(BadInputError)
    expect(() => verifyDealing(old.pub, [1, 2, 3], 1, d.commitment, 3)).toThrow(VerificationError)
    try { verifyDealing(old.pub, [1, 2, 3], 2, d.commitment, 4); expect.unreachable() } catch (e) { expect((e as VerificationError).blame).toEqual([2]) }
    expect(() => verifyDealing(old.pub, [1, 2, 3], 1, [d.commitment[0]!, IDENTITY, d.commitment[2]!, d.commitment[3]!], 4)).toThrow(VerificationError)
  })

  it('refuses bad parameters at the boundary', () => {
    expect(() => reshareDeal(old.shares[0]!, old.pub, [1, 2], 3, 5)).toThrow(BadInputError) // fewer than k dealers
    expect(() => reshareDeal(old.shares[0]!, old.pub, [2, 3, 4], 3, 5)).toThrow(BadInputError) // not a dealer
    expect(() => reshareDeal(old.shares[0]!, old.pub, [1, 1, 2, 3], 3, 5)).toThrow(BadInputError) // duplicate
    expect(() => reshareDeal(old.shares[0]!, old.pub, [1, 2, 3], 6, 5)).toThrow(BadInputError) // k' > n'
    expect(() => reshareDeal(old.shares[0]!, old.pub, [1, 2, 3], 1, 5)).toThrow(BadInputError) // k' < 2
    expect(() => reshareDeal({ index: 1, scalar: old.shares[1]!.scalar }, old.pub, [1, 2, 3], 3, 5)).toThrow(BadInputError) // wrong share
    expect(() => reshareFinish(6, old.pub, [1, 2, 3], new Map(), new Map(), 3, 5)).toThrow(BadInputError)
    expect(() => reshareFinish(1, old.pub, [1, 2], new Map(), new Map(), 3, 5)).toThrow(BadInputError)
  })

  it('a removed node\'s old share is useless with the new shares', () => {
    // 3-of-5 → 3-of-4: old node 5 leaves (new members 1..4)
    const run = simulateReshare(old, [1, 2, 3], 3, 4)
    const removed = old.shares[4]!
    // as new index 4 (the index it would claim), and as itself
    expect(interpolate([run.shares[0]!, run.shares[1]!, { index: 4, scalar: removed.scalar }])).not.toBe(old.secret)
    expect(interpolate([run.shares[0]!, run.shares[1]!, removed])).not.toBe(old.secret)
    expect(BASE.multiply(removed.scalar).equals(run.publicKey.verifyingShares[3]!)).toBe(false)
  })

  it('dealing digests for the echo check differ per dealing and per context', () => {
    const ds = [1, 2, 3].map(i => encodeReshareDealing(reshareDeal(old.shares[i - 1]!, old.pub, [1, 2, 3], 3, 5).dealing))
    const a = dealingDigests(ds, new TextEncoder().encode('ctx-a'))
    const b = dealingDigests(ds, new TextEncoder().encode('ctx-b'))
    expect(a).toHaveLength(3)
    expect(a[0]).not.toEqual(a[1])
    expect(a[0]).not.toEqual(b[0])
    expect(dealingDigests(ds, new TextEncoder().encode('ctx-a'))).toEqual(a)
    expect(compareTranscripts(a, new Map([[2, a], [3, [a[0]!, b[1]!, a[2]!]]]))).toEqual([2])
  })

  it('codecs round-trip and are strict', () => {
    const d = reshareDeal(old.shares[2]!, old.pub, [1, 3, 5], 4, 7)
    const enc = encodeReshareDealing(d.dealing)
    expect(enc.length).toBe(8 + 4 * 32)
    const back = decodeReshareDealing(enc)
    expect(back.dealer).toBe(3); expect(back.newN).toBe(7)
    expect(back.commitment.map(p => encodePoint(p))).toEqual(d.commitment.map(p => encodePoint(p)))
    expect(() => decodeReshareDealing(enc.subarray(0, enc.length - 1))).toThrow(BadInputError)
    // with the old key, C_0 is compared to X_dealer instead of decoded; a mismatch blames the dealer
    const fast = decodeReshareDealing(enc, old.pub)
    expect(fast.commitment.map(p => encodePoint(p))).toEqual(d.commitment.map(p => encodePoint(p)))
    const relabelled = new Uint8Array(enc); relabelled[5] = 2
    try { decodeReshareDealing(relabelled, old.pub); expect.unreachable() } catch (e) {
      expect(e).toBeInstanceOf(VerificationError)
      expect((e as VerificationError).blame).toEqual([2])
    }
    expect(decodeReshareDealing(relabelled).dealer).toBe(2) // without the old key: caught by verifyDealing
    const bad = new Uint8Array(enc); bad[7] = 3 // n' < k'
    expect(() => decodeReshareDealing(bad)).toThrow(BadInputError)
    const sub = d.subShares.get(7)!
    expect(sub.length).toBe(39)
    const ds = decodeReshareSubShare(sub)
    expect(ds.from).toBe(3); expect(ds.to).toBe(7)
    expect(() => decodeReshareSubShare(randomBytes(39))).toThrow(BadInputError)
    // zero sub-share is a valid encoding (probability 1/L from honest dealers)
    expect(decodeReshareSubShare(encodeReshareSubShare(1, 2, 0n)).share).toBe(0n)
  })

  it('wrap and sign keys: data wrapped before the reshare opens after it; FROST signs under the same Ed25519 key', () => {
    const w = dealKey(3, 5); const s = dealKey(3, 5)
    const ksOld = keySetOf(w, s, 3, 5)
    const label = { clusterId: ksOld.clusterId, epoch: 1, purpose: 'release-key', app: 'billing', env: 'prod', release: 'v1' }
    const dataKey = new Uint8Array(randomBytes(32))
    const env = wrap(ksOld, label, dataKey)
    const rw = simulateReshare(w, [2, 4, 5], 4, 7)
    const rs = simulateReshare(s, [1, 3, 5], 4, 7)
    const ksNew = lifecycleKeySet(ksOld, 1, rw.publicKey, rs.publicKey)
    expect(decodeKeySet(encodeKeySet(ksNew)).threshold).toBe(4)
    const partials = [7, 2, 5, 3].map(j => computePartial(rw.shares[j - 1]!, ksNew, env))
    expect(combine(ksNew, env, partials, { strict: true })).toEqual(dataKey)
    const msg = new TextEncoder().encode('release manifest after reshare')
    const signers = [1, 4, 6, 7].map(j => rs.shares[j - 1]!)
    const rounds = signers.map(sh => frostCommit(sh))
    const commitments = rounds.map(r => r.commitment)
    const sigShares = new Map(signers.map((sh, i) => [sh.index, frostSignShare(sh, ksNew, rounds[i]!.nonces, commitments, msg)]))
    const sig = frostAggregate(ksNew, commitments, msg, sigShares)
    expect(ed25519Verify(encodePoint(ksOld.sign.commitments[0]!), msg, sig)).toBe(true)
    // lifecycleKeySet refuses a key change
    expect(() => lifecycleKeySet(ksOld, 1, rs.publicKey, rw.publicKey)).toThrow(VerificationError)
  })
})
