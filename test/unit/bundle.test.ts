import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { wrap } from '../../protocol/wrap.ts'
import { envelopeId } from '../../protocol/envelope.ts'
import { decodeBundle, encodeBundle, openBundle } from '../../protocol/bundle.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { computeBatchPartial, sealPartial } from '../../protocol/partial.ts'
import { mod } from '../../protocol/group.ts'
import { BadInputError, UnsupportedVersionError, VerificationError } from '../../protocol/errors.ts'
import { dealKeySet, labelFor } from '../helpers/dealer.ts'
import { makeBundle } from '../helpers/bundle-fixture.ts'

const { ks, shares } = dealKeySet(2, 4, 'bundle-test')
const keys = [0, 1, 2].map(() => new Uint8Array(randomBytes(32)))
const envs = keys.map((k, j) => wrap(ks, labelFor(ks, { release: `r${j}` }), k))
const rk = generateRecipientKeyPair()

/** The field named by an UnsupportedVersionError (fails the test for any other outcome). */
function versionFieldOf (f: () => unknown): string {
  try { f() } catch (err) {
    expect(err).toBeInstanceOf(UnsupportedVersionError)
    expect((err as UnsupportedVersionError).code).toBe('UNSUPPORTED_VERSION')
    return (err as UnsupportedVersionError).field
  }
  throw new Error('expected an UnsupportedVersionError')
}

function fieldOf (f: () => unknown): string {
  try { f() } catch (err) {
    expect(err).toBeInstanceOf(BadInputError)
    return (err as BadInputError).field
  }
  throw new Error('expected a BadInputError')
}

describe('bundle', () => {
  const bundle = makeBundle(ks, [shares[0]!, shares[2]!, shares[3]!], envs, rk.publicKey)
  const bytes = encodeBundle(bundle)

  it('round-trips and opens to the data keys', () => {
    expect(Buffer.from(bytes.subarray(0, 4)).toString()).toBe('KMBU')
    const d = decodeBundle(bytes)
    expect(encodeBundle(d)).toEqual(bytes)
    expect(openBundle(d, ks, rk.secretKey)).toEqual(keys)
  })

  it('refuses another recipient and another key set', () => {
    const other = generateRecipientKeyPair()
    expect(fieldOf(() => openBundle(bundle, ks, other.secretKey))).toBe('recipientSecret')
    const ks2 = dealKeySet(2, 4, 'other').ks
    expect(fieldOf(() => openBundle(bundle, ks2, rk.secretKey))).toBe('bundle.keySetId')
  })

  it('blames a node whose sealed partial is wrong and still opens with k honest', () => {
    const ids = envs.map(envelopeId)
    const wrongShare = { index: 3, scalar: mod(shares[2]!.scalar + 5n) }
    const bad = { ...bundle, partials: bundle.partials.map(p => p.index === 3 ? { index: 3, sealed: sealPartial(computeBatchPartial(wrongShare, ks, envs), ks, ids, rk.publicKey) } : p) }
    const blamed: number[][] = []
    expect(openBundle(decodeBundle(encodeBundle(bad)), ks, rk.secretKey, { onBlame: b => blamed.push(b) })).toEqual(keys)
    expect(blamed).toEqual([[3]])
    const two = { ...bad, partials: bad.partials.filter(p => p.index !== 4) }
    try { openBundle(two, ks, rk.secretKey); throw new Error('no') } catch (err) {
      expect(err).toBeInstanceOf(VerificationError)
      expect((err as VerificationError).blame).toEqual([3])
    }
    // A sealed partial that does not open is blamed too.
    const garbled = { ...bundle, partials: bundle.partials.map(p => p.index === 1 ? { index: 1, sealed: p.sealed.map((b, i) => i === 40 ? b ^ 1 : b) } : p) }
    const blamed2: number[][] = []
    expect(openBundle(garbled, ks, rk.secretKey, { onBlame: b => blamed2.push(b) })).toEqual(keys)
    expect(blamed2).toEqual([[1]])
  })

  it('rejects malformed encodings with a named field', () => {
    const v = bytes.slice(); v[4] = 9
    expect(versionFieldOf(() => decodeBundle(v))).toBe('bundle.version')
    expect(fieldOf(() => decodeBundle(bytes.subarray(0, bytes.length - 1)))).toMatch(/^bundle\./)
    expect(fieldOf(() => decodeBundle(new Uint8Array([...bytes, 0])))).toBe('bundle')
    const zero = bytes.slice(); zero[69] = 0; zero[70] = 0
    expect(fieldOf(() => decodeBundle(zero))).toBe('bundle.count')
    const unordered = { ...bundle, partials: [...bundle.partials].reverse() }
    expect(fieldOf(() => encodeBundle(unordered))).toBe('bundle.partials.index')
  })
})
