import { describe, expect, it } from 'vitest'
import { compactVerify, importJWK } from 'jose'
import { canonicalManifest, parseManifest, validateManifest } from '../../protocol/manifest.ts'
import { assembleJws, jwksFromKeySets, jwsSigningInput, parseJws, validateJwks, verifyJws } from '../../protocol/jws.ts'
import { frostAggregate, frostCommit, frostSignShare } from '../../protocol/frost.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { BadInputError, KeymeshError, VerificationError } from '../../protocol/errors.ts'
import { utf8 } from '../../protocol/bytes.ts'
import { CLUSTER, MANIFEST, makeKeySet } from './keygen-fixture.ts'


function frostSign (ks: KeySet, shares: KeyShare[], signers: number[], msg: Uint8Array): Uint8Array {
  const r1 = signers.map(i => frostCommit(shares[i - 1]!))
  const cs = r1.map(r => r.commitment)
  const sig = new Map(signers.map((i, j) => [i, frostSignShare(shares[i - 1]!, ks, r1[j]!.nonces, cs, msg)]))
  return frostAggregate(ks, cs, msg, sig)
}

describe('manifest', () => {
  it('canonical bytes are RFC 8785 (sorted keys, no whitespace) and parse back', () => {
    const b = canonicalManifest(MANIFEST)
    const s = new TextDecoder().decode(b)
    expect(s.startsWith('{"app":"billing-api","artifact":{"name":')).toBe(true)
    expect(s).not.toMatch(/\s/)
    expect(parseManifest(b)).toEqual(MANIFEST)
    // a non-canonical encoding of the same value is rejected
    expect(() => parseManifest(utf8(JSON.stringify(MANIFEST)))).toThrow(BadInputError)
    expect(() => parseManifest(utf8(s.replace('{', '{ ')))).toThrow(BadInputError)
  })

  it('rejects unknown fields, bad formats and oversize values', () => {
    const bad: Array<Record<string, unknown>> = [
      { ...MANIFEST, extra: 1 },
      { ...MANIFEST, v: 2 },
      { ...MANIFEST, type: 'other' },
      { ...MANIFEST, cluster: CLUSTER.toUpperCase() },
      { ...MANIFEST, epoch: 0 },
      { ...MANIFEST, epoch: 1.5 },
      { ...MANIFEST, app: '' },
      { ...MANIFEST, app: 'a'.repeat(129) },
      { ...MANIFEST, app: 'bad app' },
      { ...MANIFEST, env: '' },
      { ...MANIFEST, env: null },
      { ...MANIFEST, artifact: { ...MANIFEST.artifact, size: -1 } },
      { ...MANIFEST, artifact: { ...MANIFEST.artifact, size: 2 ** 53 } },
      { ...MANIFEST, artifact: { ...MANIFEST.artifact, sha256: 'ab' } },
      { ...MANIFEST, artifact: { ...MANIFEST.artifact, name: '../x' } },
      { ...MANIFEST, artifact: { ...MANIFEST.artifact, name: 'a\nb' } },
      { ...MANIFEST, artifact: { ...MANIFEST.artifact, extra: true } },
      { ...MANIFEST, envelope: 'cd'.repeat(31) },
      { ...MANIFEST, builder: 'not a peer id' },
      { ...MANIFEST, createdAt: '2026-02-30T00:00:00Z' },
      { ...MANIFEST, createdAt: '2026-11-25T03:04:05+01:00' },
      { ...MANIFEST, createdAt: '2026-11-25 03:04:05Z' },
      { ...MANIFEST, commit: 'ef'.repeat(21) },
      { ...MANIFEST, repository: 'has space' }
    ]
    for (const m of bad) expect(() => validateManifest(m), JSON.stringify(m).slice(0, 80)).toThrow(KeymeshError)
    const { env: _e, repository: _r, commit: _c, ...minimal } = MANIFEST
    expect(validateManifest({ ...minimal, artifact: { sha256: MANIFEST.artifact.sha256, size: 0 } })).toBeTruthy()
  })
})

describe('jws', () => {
  const { ks, signShares } = makeKeySet(2, 3)
  const other = makeKeySet(2, 3, { epoch: 2 })
  const jwks = jwksFromKeySets([other.ks, ks])
  const input = jwsSigningInput(MANIFEST)
  const sig = frostSign(ks, signShares, [1, 3], utf8(input))
  const jws = assembleJws(input, sig)

  it('a FROST-made JWS verifies here and with jose', async () => {
    expect(jwks.keys.map(k => k.kid)).toEqual([`keymesh:${CLUSTER}:1`, `keymesh:${CLUSTER}:2`])
    expect(verifyJws(jws, jwks)).toEqual(MANIFEST)
    expect(parseJws(jws).header).toEqual({ alg: 'EdDSA', kid: `keymesh:${CLUSTER}:1`, typ: 'keymesh-manifest+jws' })
    const jwk = jwks.keys[0]!
    const key = await importJWK(jwk, 'EdDSA')
    const res = await compactVerify(jws, key)
    expect(res.protectedHeader.kid).toBe(jwk.kid)
    expect(parseManifest(res.payload)).toEqual(MANIFEST)
    // and jose rejects it under the other epoch's key
    await expect(compactVerify(jws, await importJWK(jwks.keys[1]!, 'EdDSA'))).rejects.toThrow()
  })

  it('rejects a flip of any character', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    for (let i = 0; i < jws.length; i++) {
      const c = jws[i]!
      const r = c === '.' ? 'A' : alphabet[(alphabet.indexOf(c) + 1) % 64]!
      const t = jws.slice(0, i) + r + jws.slice(i + 1)
      expect(() => verifyJws(t, jwks), `position ${i}`).toThrow(KeymeshError)
    }
  })

  it('rejects structural problems, wrong keys and bad JWKS', () => {
    const [h, p, s] = jws.split('.') as [string, string, string]
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    expect(() => parseJws(`${h}.${p}`)).toThrow(BadInputError)
    expect(() => parseJws(`${jws}.x`)).toThrow(BadInputError)
    expect(() => parseJws(`${h}=.${p}.${s}`)).toThrow(BadInputError)
    expect(() => parseJws(`${enc({ alg: 'none', kid: `keymesh:${CLUSTER}:1`, typ: 'keymesh-manifest+jws' })}.${p}.${s}`)).toThrow(BadInputError)
    expect(() => parseJws(`${enc({ alg: 'EdDSA', crit: ['b64'], kid: `keymesh:${CLUSTER}:1`, typ: 'keymesh-manifest+jws' })}.${p}.${s}`)).toThrow(BadInputError)
    expect(() => parseJws(`${enc({ kid: `keymesh:${CLUSTER}:1`, alg: 'EdDSA', typ: 'keymesh-manifest+jws' })}.${p}.${s}`)).toThrow(BadInputError) // not canonical
    expect(() => parseJws(`${enc({ alg: 'EdDSA', kid: `keymesh:${CLUSTER}:2`, typ: 'keymesh-manifest+jws' })}.${p}.${s}`)).toThrow(BadInputError) // kid ≠ manifest epoch
    expect(() => parseJws('a'.repeat(20000))).toThrow(BadInputError)
    expect(() => assembleJws(input, sig.subarray(1))).toThrow(BadInputError)
    expect(() => verifyJws(jws, jwksFromKeySets([other.ks]))).toThrow(VerificationError)
    // a signature from another key under the right kid
    const forged = assembleJws(input, frostSign(other.ks, other.signShares, [2, 3], utf8(input)))
    expect(() => verifyJws(forged, jwks)).toThrow(VerificationError)
    expect(() => validateJwks({ keys: [{ ...jwks.keys[0], d: 'x' }] })).toThrow(BadInputError)
    expect(() => validateJwks({ keys: [{ ...jwks.keys[0], x: 'AAAA' }] })).toThrow(BadInputError)
    expect(() => validateJwks({ keys: [jwks.keys[0], jwks.keys[0]] })).toThrow(BadInputError)
    expect(() => validateJwks({ keys: [{ ...jwks.keys[0], crv: 'X25519' }] })).toThrow(BadInputError)
  })
})
