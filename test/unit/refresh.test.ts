import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { BASE, IDENTITY, encodePoint } from '../../protocol/group.ts'
import type { Point } from '../../protocol/group.ts'
import type { KeyShare } from '../../protocol/keyset.ts'
import { checkVerifyingShares } from '../../protocol/keyset.ts'
import {
  decodeRefreshDealing, decodeRefreshSubShare, encodeRefreshDealing, encodeRefreshSubShare, refreshDeal, refreshDealWithRng,
  refreshFinish, verifyRefreshDealing, verifyRefreshSubShare
} from '../../protocol/refresh.ts'
import { reshareDeal } from '../../protocol/reshare.ts'
import { dealKey, drbg, interpolate, simulateRefresh } from '../vectors/generators/reshare.ts'

function combos (n: number, k: number): number[][] {
  const out: number[][] = []
  const rec = (start: number, acc: number[]): void => {
    if (acc.length === k) { out.push([...acc]); return }
    for (let i = start; i <= n; i++) rec(i + 1, [...acc, i])
  }
  rec(1, [])
  return out
}

describe('refresh', () => {
  const cur = dealKey(3, 5, drbg('unit refresh'))

  it('keeps the group key; every k new shares give the same key; an old share mixed with new ones does not', () => {
    const r = simulateRefresh(cur, [1, 2, 4])
    expect(r.publicKey.commitments[0]!.equals(cur.pub.commitments[0]!)).toBe(true)
    checkVerifyingShares(r.publicKey, 'refreshed')
    for (const s of r.shares) {
      expect(s.scalar).not.toBe(cur.shares[s.index - 1]!.scalar)
      expect(BASE.multiply(s.scalar).equals(r.publicKey.verifyingShares[s.index - 1]!)).toBe(true)
      expect(BASE.multiply(cur.shares[s.index - 1]!.scalar).equals(r.publicKey.verifyingShares[s.index - 1]!)).toBe(false)
    }
    for (const set of combos(5, 3)) {
      expect(interpolate(set.map(i => r.shares[i - 1]!))).toBe(cur.secret)
      // one pre-refresh share (each position in turn) with k−1 post-refresh shares
      for (const stale of set) {
        const mixed = set.map(i => i === stale ? cur.shares[i - 1]! : r.shares[i - 1]!)
        expect(interpolate(mixed)).not.toBe(cur.secret)
      }
    }
  })

  it('a dealing with a non-zero constant term is refused and blamed', () => {
    // A holder that deals a reshare-style polynomial (constant = its share) would move the key.
    const evil = reshareDeal(cur.shares[1]!, cur.pub, [1, 2, 3], 3, 5)
    try { verifyRefreshDealing(cur.pub, 2, evil.commitment); expect.unreachable() } catch (e) {
      expect(e).toBeInstanceOf(VerificationError)
      expect((e as VerificationError).blame).toEqual([2])
      expect((e as Error).message).toMatch(/non-zero constant/)
    }
    const ds = [1, 2, 3].map(i => refreshDeal(cur.shares[i - 1]!, cur.pub))
    const cs = new Map<number, Point[]>([[1, ds[0]!.commitment], [2, evil.commitment], [3, ds[2]!.commitment]])
    const ss = new Map<number, Uint8Array>([[1, ds[0]!.subShares.get(4)!], [2, encodeRefreshSubShare(2, 4, 5n)], [3, ds[2]!.subShares.get(4)!]])
    try { refreshFinish(cur.shares[3]!, cur.pub, [1, 2, 3], cs, ss); expect.unreachable() } catch (e) {
      expect((e as VerificationError).blame).toEqual([2])
    }
    // Without dealer 2 there are only 2 < k dealers: refused as bad input.
    expect(() => refreshFinish(cur.shares[3]!, cur.pub, [1, 3], cs, ss)).toThrow(BadInputError)
  })

  it('a bad sub-share is blamed; the rest finish consistently without it', () => {
    const dealers = [1, 2, 3, 5]
    const ds = new Map(dealers.map(i => [i, refreshDeal(cur.shares[i - 1]!, cur.pub)]))
    ds.get(5)!.subShares.set(2, encodeRefreshSubShare(5, 2, 77n))
    const cs = new Map<number, Point[]>([...ds].map(([i, d]) => [i, d.commitment]))
    const mine = (j: number): Map<number, Uint8Array> => new Map([...ds].map(([i, d]) => [i, d.subShares.get(j)!]))
    try { refreshFinish(cur.shares[1]!, cur.pub, dealers, cs, mine(2)); expect.unreachable() } catch (e) {
      expect((e as VerificationError).blame).toEqual([5])
    }
    const shares: KeyShare[] = []
    let key: Point | undefined
    for (const s of cur.shares) {
      const out = refreshFinish(s, cur.pub, [1, 2, 3], cs, mine(s.index))
      shares.push(out.share)
      key ??= out.publicKey.commitments[1]
      expect(out.publicKey.commitments[1]!.equals(key!)).toBe(true)
    }
    expect(interpolate(shares.slice(0, 3))).toBe(cur.secret)
    expect(interpolate(shares.slice(2, 5))).toBe(cur.secret)
  })

  it('sub-share checks: misaddressed, malformed, wrong', () => {
    const d = refreshDeal(cur.shares[0]!, cur.pub)
    expect(verifyRefreshSubShare(3, 1, d.commitment, d.subShares.get(3)!)).toBeTypeOf('bigint')
    expect(() => verifyRefreshSubShare(2, 1, d.commitment, d.subShares.get(3)!)).toThrow(VerificationError)
    expect(() => verifyRefreshSubShare(3, 1, d.commitment, new Uint8Array(39))).toThrow(VerificationError)
    expect(() => verifyRefreshSubShare(3, 1, d.commitment, encodeRefreshSubShare(1, 3, 1n))).toThrow(VerificationError)
  })

  it('refuses a share that does not match its verifying share, and bad dealer sets', () => {
    expect(() => refreshDeal({ index: 2, scalar: cur.shares[0]!.scalar }, cur.pub)).toThrow(BadInputError)
    expect(() => refreshFinish(cur.shares[0]!, cur.pub, [1, 2, 2], new Map(), new Map())).toThrow(BadInputError)
    expect(() => refreshFinish(cur.shares[0]!, cur.pub, [1, 2, 6], new Map(), new Map())).toThrow(BadInputError)
  })

  it('codec: C_0 is implicit, round-trips, strict', () => {
    const d = refreshDealWithRng(cur.shares[2]!, cur.pub, drbg('refresh codec'))
    expect(d.commitment[0]!.is0()).toBe(true)
    const enc = encodeRefreshDealing(d.dealing)
    expect(enc.length).toBe(8 + 2 * 32)
    const back = decodeRefreshDealing(enc)
    expect(back.dealer).toBe(3); expect(back.n).toBe(5)
    expect(back.commitment[0]!.equals(IDENTITY)).toBe(true)
    expect(back.commitment.slice(1).map(p => encodePoint(p))).toEqual(d.commitment.slice(1).map(p => encodePoint(p)))
    expect(() => verifyRefreshDealing(cur.pub, 3, back.commitment)).not.toThrow()
    expect(() => encodeRefreshDealing({ ...d.dealing, commitment: [BASE, ...d.commitment.slice(1)] })).toThrow(BadInputError)
    const bad = new Uint8Array(enc); bad[5] = 6 // dealer > n
    expect(() => decodeRefreshDealing(bad)).toThrow(BadInputError)
    expect(() => decodeRefreshDealing(enc.subarray(0, 40))).toThrow(BadInputError)
    expect(decodeRefreshSubShare(d.subShares.get(1)!).to).toBe(1)
    // deterministic with a fixed rng
    expect(encodeRefreshDealing(refreshDealWithRng(cur.shares[2]!, cur.pub, drbg('refresh codec')).dealing)).toEqual(enc)
  })

  it('two refreshes in a row still give the key; shares of different periods never mix', () => {
    const r1 = simulateRefresh(cur, [1, 2, 3])
    const r2 = simulateRefresh({ pub: r1.publicKey, shares: r1.shares }, [3, 4, 5])
    expect(interpolate([r2.shares[0]!, r2.shares[3]!, r2.shares[4]!])).toBe(cur.secret)
    expect(interpolate([r1.shares[0]!, r2.shares[3]!, r2.shares[4]!])).not.toBe(cur.secret)
  })
})
