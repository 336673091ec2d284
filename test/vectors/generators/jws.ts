/**
 * Known-answer vectors for the manifest JWS (RFC 7515 compact, alg EdDSA) and the JWKS
 * (docs/PROTOCOL.md §4.5). The signature is a FROST aggregate from the
 * seeded 3-of-5 key set of generators/frost.ts with seeded nonces, so the compact JWS is fixed.
 * Invalid cases are compact strings verifyJws must reject with the stated error code.
 */
import { toHex, utf8 } from '../../../protocol/bytes.ts'
import { frostAggregate, frostCommitWithRng, frostSignShare } from '../../../protocol/frost.ts'
import { assembleJws, jwksFromKeySets, jwsSigningInput } from '../../../protocol/jws.ts'
import { drbg } from './dkg.ts'
import { seededSigning } from './frost.ts'
import { VECTOR_MANIFEST } from './manifest.ts'

export function seededJws (): { compact: string, signingInput: string, jwks: unknown } {
  const { ks, shares } = seededSigning()
  const input = jwsSigningInput(VECTOR_MANIFEST)
  const msg = utf8(input)
  const signers = [1, 3, 5]
  const r1 = signers.map(i => frostCommitWithRng(shares[i - 1]!, drbg(`keymesh/v1 jws vector nonces signer ${i}`)))
  const cs = r1.map(r => r.commitment)
  const sig = frostAggregate(ks, cs, msg, new Map(signers.map((i, j) => [i, frostSignShare(shares[i - 1]!, ks, r1[j]!.nonces, cs, msg)])))
  return { compact: assembleJws(input, sig), signingInput: input, jwks: jwksFromKeySets([ks]) }
}

export function generate (): unknown {
  const { compact, signingInput, jwks } = seededJws()
  const [h, p, s] = compact.split('.') as [string, string, string]
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const kid = `keymesh:${VECTOR_MANIFEST.cluster}:1`
  const flip = (str: string, i: number): string => str.slice(0, i) + (str[i] === 'A' ? 'B' : 'A') + str.slice(i + 1)
  const cases: Array<Record<string, unknown>> = [
    { name: 'FROST-signed manifest', valid: true, manifest: VECTOR_MANIFEST, signingInput, signingInputHex: toHex(utf8(signingInput)), compact, jwks }
  ]
  const bad: Array<[string, string, string]> = [
    ['payload byte changed', `${h}.${flip(p, 10)}.${s}`, 'BAD_INPUT'],
    ['signature byte changed', `${h}.${p}.${flip(s, 5)}`, 'VERIFICATION_FAILED'],
    ['header alg none', `${b64({ alg: 'none', kid, typ: 'keymesh-manifest+jws' })}.${p}.${s}`, 'BAD_INPUT'],
    ['header alg HS256', `${b64({ alg: 'HS256', kid, typ: 'keymesh-manifest+jws' })}.${p}.${s}`, 'BAD_INPUT'],
    ['extra header parameter', `${b64({ alg: 'EdDSA', b64: false, kid, typ: 'keymesh-manifest+jws' })}.${p}.${s}`, 'BAD_INPUT'],
    ['header not canonical', `${b64({ typ: 'keymesh-manifest+jws', alg: 'EdDSA', kid })}.${p}.${s}`, 'BAD_INPUT'],
    ['kid of an unknown epoch', `${b64({ alg: 'EdDSA', kid: kid.replace(/:1$/, ':2'), typ: 'keymesh-manifest+jws' })}.${p}.${s}`, 'BAD_INPUT'],
    ['padded base64url', `${h}.${p}.${s}==`, 'BAD_INPUT'],
    ['two parts', `${h}.${p}`, 'BAD_INPUT'],
    ['empty signature', `${h}.${p}.`, 'BAD_INPUT']
  ]
  for (const [name, c, error] of bad) cases.push({ name, valid: false, compact: c, jwks, error })
  return { format: 'jws', version: 1, description: 'Manifest JWS (compact, EdDSA, FROST-made) and JWKS (docs/PROTOCOL.md §4.5)', cases }
}
