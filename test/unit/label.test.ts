import { describe, expect, it } from 'vitest'
import { decodeLabel, encodeLabel, validateLabel } from '../../protocol/label.ts'
import type { Label } from '../../protocol/label.ts'
import { BadInputError, UnsupportedVersionError } from '../../protocol/errors.ts'

const good: Label = { clusterId: '0123456789abcdef0123456789abcdef', epoch: 7, purpose: 'release-key', app: 'billing-api', env: 'prod', release: 'v1.2.3+build.7' }

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

describe('label', () => {
  it('round-trips and has the documented byte layout', () => {
    const b = encodeLabel(good)
    expect(b[0]).toBe(1)
    expect(b[1]).toBe(0); expect(b[2]).toBe(32)
    expect(Buffer.from(b.subarray(3, 35)).toString()).toBe(good.clusterId)
    expect(Array.from(b.subarray(35, 39))).toEqual([0, 0, 0, 7])
    expect(decodeLabel(b)).toEqual(good)
    expect(decodeLabel(encodeLabel({ ...good, env: '' })).env).toBe('')
  })

  it('validates every field and names it', () => {
    expect(fieldOf(() => validateLabel({ ...good, clusterId: 'ABCDEF0123456789abcdef0123456789' }))).toBe('label.clusterId')
    expect(fieldOf(() => validateLabel({ ...good, epoch: 0 }))).toBe('label.epoch')
    expect(fieldOf(() => validateLabel({ ...good, epoch: 2 ** 32 }))).toBe('label.epoch')
    expect(fieldOf(() => validateLabel({ ...good, purpose: 'Release' }))).toBe('label.purpose')
    expect(fieldOf(() => validateLabel({ ...good, purpose: 'a'.repeat(33) }))).toBe('label.purpose')
    expect(fieldOf(() => validateLabel({ ...good, app: '' }))).toBe('label.app')
    expect(fieldOf(() => validateLabel({ ...good, app: 'a b' }))).toBe('label.app')
    expect(fieldOf(() => validateLabel({ ...good, env: 'x'.repeat(129) }))).toBe('label.env')
    expect(fieldOf(() => validateLabel({ ...good, release: '' }))).toBe('label.release')
    expect(fieldOf(() => validateLabel({ ...good, extra: 1 }))).toBe('label.extra')
    expect(fieldOf(() => validateLabel(null))).toBe('label')
  })

  it('rejects malformed encodings with a named field', () => {
    const b = encodeLabel(good)
    const v2 = b.slice(); v2[0] = 2
    expect(() => decodeLabel(v2)).toThrow(UnsupportedVersionError)
    expect(versionFieldOf(() => decodeLabel(v2))).toBe('label.version')
    expect(fieldOf(() => decodeLabel(b.subarray(0, b.length - 1)))).toMatch(/^label\./)
    expect(fieldOf(() => decodeLabel(new Uint8Array([...b, 0])))).toBe('label')
    const badUtf8 = b.slice(); badUtf8[b.length - 1] = 0xff
    expect(fieldOf(() => decodeLabel(badUtf8))).toBe('label.release')
    const badEpoch = b.slice(); badEpoch.set([0, 0, 0, 0], 35)
    expect(fieldOf(() => decodeLabel(badEpoch))).toBe('label.epoch')
  })
})
