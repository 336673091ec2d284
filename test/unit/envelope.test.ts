import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { ARMOR_END, armorEnvelope, dearmorEnvelope, decodeEnvelope, encodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import { wrap } from '../../protocol/wrap.ts'
import { L, encodeScalar } from '../../protocol/group.ts'
import { BadInputError, UnsupportedVersionError } from '../../protocol/errors.ts'
import { encodeLabel } from '../../protocol/label.ts'
import { dealKeySet, labelFor } from '../helpers/dealer.ts'

const { ks } = dealKeySet(2, 3, 'envelope-test')
const env = wrap(ks, labelFor(ks), new Uint8Array(randomBytes(32)))
const bytes = encodeEnvelope(env)
const labelLen = encodeLabel(env.label).length
const rOff = 4 + 1 + 2 + labelLen
const wOff = rOff + 32
const sOff = wOff + 32

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
const withAt = (off: number, b: Uint8Array): Uint8Array => { const c = bytes.slice(); c.set(b, off); return c }
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

// Small-order and malformed encodings (RFC 8032 / "Taming the many EdDSAs" test set).
const IDENTITY = hex('0100000000000000000000000000000000000000000000000000000000000000')
const ORDER2 = hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')
const ORDER4 = hex('0000000000000000000000000000000000000000000000000000000000000000')
const ORDER8 = hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')
const NONCANON = hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f') // y = p + 1

describe('envelope', () => {
  it('round-trips binary and armor, with the documented layout', () => {
    expect(Buffer.from(bytes.subarray(0, 4)).toString()).toBe('KMEV')
    expect(bytes[4]).toBe(1)
    expect(bytes.length).toBe(sOff + 32 + 48)
    const d = decodeEnvelope(bytes)
    expect(encodeEnvelope(d)).toEqual(bytes)
    const a = armorEnvelope(env)
    expect(a.split('\n').slice(1, -2).every(l => l.length <= 64)).toBe(true)
    expect(encodeEnvelope(dearmorEnvelope(a))).toEqual(bytes)
    expect(encodeEnvelope(dearmorEnvelope(a.replace(/\n/g, '\r\n')))).toEqual(bytes)
    expect(envelopeId(d)).toEqual(envelopeId(env))
    expect(envelopeId(env)).toHaveLength(32)
  })

  it('rejects bad point encodings in R and W, naming the field', () => {
    for (const bad of [IDENTITY, ORDER2, ORDER4, ORDER8, NONCANON]) {
      expect(fieldOf(() => decodeEnvelope(withAt(rOff, bad)))).toBe('envelope.R')
      expect(fieldOf(() => decodeEnvelope(withAt(wOff, bad)))).toBe('envelope.W')
    }
  })

  it('rejects scalars ≥ L, wrong lengths, unknown versions, bad magic', () => {
    expect(fieldOf(() => decodeEnvelope(withAt(sOff, encodeScalarUnchecked(L))))).toBe('envelope.s')
    expect(fieldOf(() => decodeEnvelope(withAt(sOff, new Uint8Array(32))))).toBe('envelope.s')
    expect(fieldOf(() => decodeEnvelope(bytes.subarray(0, bytes.length - 1)))).toBe('envelope.ciphertext')
    expect(fieldOf(() => decodeEnvelope(new Uint8Array([...bytes, 0])))).toBe('envelope')
    expect(versionFieldOf(() => decodeEnvelope(withAt(4, new Uint8Array([2]))))).toBe('envelope.version')
    expect(versionFieldOf(() => encodeEnvelope({ ...env, version: 2 as 1 }))).toBe('envelope.version')
    expect(fieldOf(() => decodeEnvelope(withAt(0, new Uint8Array([0x4a]))))).toBe('envelope.magic')
    expect(fieldOf(() => encodeEnvelope({ ...env, ciphertext: new Uint8Array(47) }))).toBe('envelope.ciphertext')
    expect(fieldOf(() => encodeEnvelope({ ...env, s: L }))).toBe('envelope.s')
    expect(encodeScalar(L - 1n)).toHaveLength(32)
  })

  it('rejects truncated or malformed armor with a clear error', () => {
    const a = armorEnvelope(env)
    const lines = a.trim().split('\n')
    let err: unknown
    try { dearmorEnvelope(lines.slice(0, -1).join('\n')) } catch (e) { err = e }
    expect(err).toBeInstanceOf(BadInputError)
    expect((err as BadInputError).field).toBe('envelope.armor')
    expect((err as Error).message).toContain(ARMOR_END)
    expect(fieldOf(() => dearmorEnvelope(lines.slice(1).join('\n')))).toBe('envelope.armor')
    expect(fieldOf(() => dearmorEnvelope([lines[0], (lines[1] as string).slice(0, 60), ...lines.slice(2)].join('\n')))).toBe('envelope.armor')
    expect(fieldOf(() => dearmorEnvelope(a.replace('A', '*')))).toMatch(/^envelope/)
    // A body cut at a line boundary decodes as a truncated envelope.
    expect(fieldOf(() => dearmorEnvelope([lines[0], lines[1], lines[lines.length - 1]].join('\n')))).toMatch(/^envelope\./)
  })
})

function encodeScalarUnchecked (v: bigint): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}
