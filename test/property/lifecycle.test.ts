import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BadInputError, KeymeshError, VerificationError } from '../../protocol/errors.ts'
import { toHex } from '../../protocol/bytes.ts'
import { BASE } from '../../protocol/group.ts'
import type { KeyShare } from '../../protocol/keyset.ts'
import { checkVerifyingShares } from '../../protocol/keyset.ts'
import { decodeReshareDealing, decodeReshareSubShare, encodeReshareDealing, encodeReshareSubShare, reshareDeal } from '../../protocol/reshare.ts'
import { decodeRefreshDealing, encodeRefreshDealing, refreshDeal } from '../../protocol/refresh.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { decodeRecoveryPiece, encodeRecoveryPiece, openRecoveryPiece, recoveryExport, recoveryRestore } from '../../protocol/recovery.ts'
import { dealKey, interpolate, simulateRefresh, simulateReshare } from '../vectors/generators/reshare.ts'

/** A random subset of 1..n of the given size (fast-check). */
const subsetOf = (n: number, size: number): fc.Arbitrary<number[]> =>
  fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i + 1), { minLength: size, maxLength: size }).map(a => [...a].sort((x, y) => x - y))

const SHAPES = [
  { k: 3, n: 5, k2: 3, n2: 5 },
  { k: 3, n: 5, k2: 4, n2: 7 },
  { k: 2, n: 3, k2: 3, n2: 5 }
] as const

describe('lifecycle properties', () => {
  for (const { k, n, k2, n2 } of SHAPES) {
    it(`reshare ${k}-of-${n} → ${k2}-of-${n2}: same group key, any ${k2} new shares give the secret, ${k2 - 1} do not`, () => {
      fc.assert(fc.property(
        fc.integer({ min: k, max: n }).chain(size => subsetOf(n, size)),
        subsetOf(n2, k2),
        (dealers, pick) => {
          const old = dealKey(k, n)
          const run = simulateReshare(old, dealers, k2, n2)
          expect(run.publicKey.commitments[0]!.equals(old.pub.commitments[0]!)).toBe(true)
          checkVerifyingShares(run.publicKey, 'reshared')
          const chosen = pick.map(j => run.shares[j - 1]!)
          expect(interpolate(chosen)).toBe(old.secret)
          expect(interpolate(chosen.slice(1))).not.toBe(old.secret)
        }), { numRuns: 10 })
    })
  }

  it('a bad dealer is named and excluded; ≥ k honest dealers still complete', () => {
    fc.assert(fc.property(
      subsetOf(5, 4), fc.nat(3), fc.constantFrom('commitment', 'subshare', 'missing'), fc.integer({ min: 1, max: 5 }),
      (dealers, badPos, how, victim) => {
        const old = dealKey(3, 5)
        const bad = dealers[badPos]!
        const tamper = (i: number, d: { commitment: typeof old.pub.commitments, subShares: Map<number, Uint8Array> }): void => {
          if (i !== bad) return
          if (how === 'commitment') {
            const other = dealKey(3, 5)
            const fake = reshareDeal(other.shares[bad - 1]!, other.pub, dealers, 3, 5)
            d.commitment = fake.commitment; d.subShares = fake.subShares
          } else if (how === 'subshare') {
            d.subShares.set(victim, encodeReshareSubShare(bad, victim, 42n))
          } else {
            d.subShares.delete(victim)
          }
        }
        let err: unknown
        try { simulateReshare(old, dealers, 3, 5, { tamper }) } catch (e) { err = e }
        expect(err).toBeInstanceOf(VerificationError)
        expect((err as VerificationError).blame).toEqual([bad])
        const honest = dealers.filter(i => i !== bad)
        // Same dealer randomness is not needed: the honest dealings are reused as they are.
        const run = simulateReshare(old, dealers, 3, 5, { tamper, qualified: honest })
        expect(run.publicKey.commitments[0]!.equals(old.pub.commitments[0]!)).toBe(true)
        expect(interpolate(run.shares.slice(0, 3))).toBe(old.secret)
      }), { numRuns: 10 })
  })

  it('a removed node\'s old share is useless with the new shares', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), subsetOf(4, 2), (removed, others) => {
      const old = dealKey(3, 5)
      const dealers = [1, 2, 3, 4, 5].filter(i => i !== removed).slice(0, 3)
      const run = simulateReshare(old, dealers, 3, 4)
      const stale = old.shares[removed - 1]!
      for (const idx of [1, 2, 3, 4].filter(i => !others.includes(i))) {
        expect(interpolate([...others.map(j => run.shares[j - 1]!), { index: idx, scalar: stale.scalar }])).not.toBe(old.secret)
      }
      expect(run.publicKey.verifyingShares.some(V => V.equals(BASE.multiply(stale.scalar)))).toBe(false)
    }), { numRuns: 10 })
  })

  it('refresh: group key kept; any k new shares agree; one stale share among k−1 new ones does not', () => {
    fc.assert(fc.property(
      fc.constantFrom([2, 3], [3, 5], [4, 6]).chain(([k, n]) => fc.tuple(fc.constant(k!), fc.constant(n!), fc.integer({ min: k!, max: n! }).chain(s => subsetOf(n!, s)), subsetOf(n!, k!), fc.nat())),
      ([k, n, dealers, pick, stalePos]) => {
        const cur = dealKey(k, n)
        const r = simulateRefresh(cur, dealers)
        expect(r.publicKey.commitments[0]!.equals(cur.pub.commitments[0]!)).toBe(true)
        expect(interpolate(pick.map(j => r.shares[j - 1]!))).toBe(cur.secret)
        const stale = pick[stalePos % k]!
        const mixed: KeyShare[] = pick.map(j => j === stale ? cur.shares[j - 1]! : r.shares[j - 1]!)
        expect(interpolate(mixed)).not.toBe(cur.secret)
      }), { numRuns: 15 })
  })

  it('recovery: any t of m pieces restore the share; t−1 are refused', async () => {
    const keys = Array.from({ length: 6 }, () => generateRecipientKeyPair())
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 2, max: 6 }).chain(m => fc.tuple(fc.constant(m), fc.integer({ min: 2, max: m }))).chain(([m, t]) => fc.tuple(fc.constant(m), fc.constant(t), subsetOf(m, t))),
      fc.constantFrom<'wrap' | 'sign'>('wrap', 'sign'),
      async ([m, t, chosen], keyKind) => {
        const key = dealKey(2, 3)
        const meta = { clusterId: 'c0ffee00'.repeat(4), epoch: 7, nodeIndex: 3, keyKind }
        const pieces = await recoveryExport(key.shares[2]!, meta, keys.slice(0, m).map((c, i) => ({ name: `custodian-${i + 1}`, publicKey: c.publicKey })), t)
        const opened = chosen.map(c => openRecoveryPiece(pieces[c - 1]!, keys[c - 1]!.secretKey))
        const expected = { ...meta, verifyingShare: key.pub.verifyingShares[2]! }
        const got = await recoveryRestore(opened, expected)
        expect(got.scalar).toBe(key.shares[2]!.scalar)
        await expect(recoveryRestore(opened.slice(1), expected)).rejects.toBeInstanceOf(BadInputError)
      }), { numRuns: 10 })
  })

  it('decoders never crash: a mutated encoding decodes to itself or throws a KeymeshError', async () => {
    const old = dealKey(3, 5)
    const rd = encodeReshareDealing(reshareDeal(old.shares[0]!, old.pub, [1, 2, 3], 3, 5).dealing)
    const rsub = reshareDeal(old.shares[0]!, old.pub, [1, 2, 3], 3, 5).subShares.get(2)!
    const fd = encodeRefreshDealing(refreshDeal(old.shares[1]!, old.pub).dealing)
    const kp = generateRecipientKeyPair(); const kp2 = generateRecipientKeyPair()
    const piece = encodeRecoveryPiece((await recoveryExport(old.shares[0]!, { clusterId: 'ab'.repeat(16), epoch: 1, nodeIndex: 1, keyKind: 'wrap' }, [{ name: 'a', publicKey: kp.publicKey }, { name: 'b', publicKey: kp2.publicKey }], 2))[0]!)
    const cases: Array<[Uint8Array, (b: Uint8Array) => Uint8Array]> = [
      [rd, b => encodeReshareDealing(decodeReshareDealing(b))],
      [rsub, b => { const d = decodeReshareSubShare(b); return encodeReshareSubShare(d.from, d.to, d.share) }],
      [fd, b => encodeRefreshDealing(decodeRefreshDealing(b))],
      [piece, b => encodeRecoveryPiece(decodeRecoveryPiece(b))]
    ]
    fc.assert(fc.property(fc.nat(3), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (which, pos, x, truncate) => {
      const [enc, roundTrip] = cases[which]!
      const b = truncate ? enc.subarray(0, pos % enc.length) : new Uint8Array(enc)
      if (!truncate) b[pos % b.length] = b[pos % b.length]! ^ x
      try { expect(toHex(roundTrip(b))).toBe(toHex(b)) } catch (err) { expect(err).toBeInstanceOf(KeymeshError) }
    }), { numRuns: 300 })
  })
})
