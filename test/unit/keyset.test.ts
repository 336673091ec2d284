import { describe, expect, it } from 'vitest'
import {
  decodeKeySet, encodeKeySet, keySetFromJSON, keySetId, keySetToJSON, signKey, wrapKey
} from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { BadInputError, UnsupportedVersionError } from '../../protocol/errors.ts'
import { BASE, PointCons, decodePoint, encodePoint } from '../../protocol/group.ts'
import { toHex } from '../../protocol/bytes.ts'
import { makeKeySet } from './keygen-fixture.ts'

const HEADER = 4 + 1 + 16 + 4 + 2

describe('keyset', () => {
  const { ks } = makeKeySet(3, 5, { epoch: 7 })
  const enc = encodeKeySet(ks)

  it('round-trips binary and JSON; id is stable', () => {
    expect(enc.length).toBe(HEADER + 2 * (3 + 5) * 32)
    const dec = decodeKeySet(enc)
    expect(toHex(encodeKeySet(dec))).toBe(toHex(enc))
    expect(keySetId(dec)).toBe(keySetId(ks))
    expect(keySetId(ks)).toMatch(/^[0-9a-f]{64}$/)
    const j = JSON.parse(JSON.stringify(keySetToJSON(ks))) as unknown
    expect(toHex(encodeKeySet(keySetFromJSON(j)))).toBe(toHex(enc))
    expect(wrapKey(dec).equals(ks.wrap.commitments[0]!)).toBe(true)
    expect(toHex(signKey(dec))).toBe(toHex(encodePoint(ks.sign.commitments[0]!)))
    expect(dec.epoch).toBe(7)
  })

  it('rejects verifying shares that do not match the commitments', () => {
    for (const [key, i] of [['wrap', 0], ['wrap', 4], ['sign', 2]] as const) {
      const bad: KeySet = { ...ks, [key]: { ...ks[key], verifyingShares: ks[key].verifyingShares.map((p, j) => j === i ? p.add(BASE) : p) } }
      expect(() => decodeKeySet(encodeKeySet(bad))).toThrow(BadInputError)
      expect(() => keySetFromJSON(keySetToJSON(bad))).toThrow(BadInputError)
    }
    // swapping two verifying shares is caught as well
    const vs = [...ks.sign.verifyingShares]; [vs[0], vs[1]] = [vs[1]!, vs[0]!]
    expect(() => decodeKeySet(encodeKeySet({ ...ks, sign: { ...ks.sign, verifyingShares: vs } }))).toThrow(BadInputError)
  })

  it('rejects wrong k/n, bad points, bad framing', () => {
    const mut = (f: (b: Uint8Array) => void): Uint8Array => { const b = new Uint8Array(enc); f(b); return b }
    expect(() => decodeKeySet(mut(b => { b[25] = 1 }))).toThrow(BadInputError) // k = 1
    expect(() => decodeKeySet(mut(b => { b[25] = 6 }))).toThrow(BadInputError) // k > n
    expect(() => decodeKeySet(mut(b => { b[26] = 65 }))).toThrow(BadInputError) // n > MAX
    expect(() => decodeKeySet(mut(b => { b[26] = 4 }))).toThrow(BadInputError) // n shrinks: trailing bytes
    expect(() => decodeKeySet(mut(b => { b[0] = 0x58 }))).toThrow(BadInputError) // magic
    expect(() => decodeKeySet(mut(b => { b[4] = 2 }))).toThrow(UnsupportedVersionError)
    expect(() => decodeKeySet(mut(b => { b.fill(0, 21, 25) }))).toThrow(BadInputError) // epoch 0
    expect(() => decodeKeySet(enc.subarray(0, enc.length - 1))).toThrow(BadInputError)
    expect(() => decodeKeySet(new Uint8Array([...enc, 0]))).toThrow(BadInputError)
    // identity, non-canonical, small-order and off-subgroup points
    const identity = new Uint8Array(32); identity[0] = 1
    const nonCanon = new Uint8Array(32).fill(0xff); nonCanon[31] = 0x7f
    const smallOrder = new Uint8Array(32); smallOrder[31] = 0x80 // (0,-1)
    const torsioned = BASE.add(PointCons.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa')).toBytes()
    expect(() => decodePoint('t', torsioned)).toThrow(/prime-order subgroup/)
    for (const p of [identity, nonCanon, smallOrder, torsioned]) {
      expect(() => decodeKeySet(mut(b => { b.set(p, HEADER + 32) }))).toThrow(BadInputError)
    }
    expect(() => encodeKeySet({ ...ks, clusterId: 'XYZ' })).toThrow(BadInputError)
    expect(() => encodeKeySet({ ...ks, threshold: 6 })).toThrow(BadInputError)
    expect(() => keySetFromJSON({ ...keySetToJSON(ks), extra: 1 })).toThrow(BadInputError)
  })
})
