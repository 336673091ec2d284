/** Checks one envelope known-answer case (see generators/envelope.ts). Throws on mismatch. */
import { decodeKeySet, wrapKey } from '../../../protocol/keyset.ts'
import { armorEnvelope, dearmorEnvelope, decodeEnvelope, encodeEnvelope, envelopeHeader, envelopeId } from '../../../protocol/envelope.ts'
import { deriveKek, envelopeChallenge, openDataKey, scalarFromWide, verifyEnvelope, wrapWithRandomness } from '../../../protocol/wrap.ts'
import { encodeLabel } from '../../../protocol/label.ts'
import type { Label } from '../../../protocol/label.ts'
import { encodePoint, encodeScalar } from '../../../protocol/group.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { expectFailure, replayRng, same } from '../../helpers/vectors-common.ts'

interface EnvelopeCase {
  name: string, valid: boolean, keySet: string, label?: Label, dataKey?: string, rBytes?: string, wBytes?: string,
  R?: string, header?: string, Z?: string, kek?: string, challenge?: string, envelope?: string, armor?: string, envelopeId?: string,
  error?: string, field?: string
}

export function check (c: EnvelopeCase): void {
  const ks = decodeKeySet(fromHex('keySet', c.keySet))
  if (!c.valid) {
    expectFailure(c.name, () => verifyEnvelope(ks, c.armor !== undefined ? dearmorEnvelope(c.armor) : decodeEnvelope(fromHex('envelope', c.envelope))), c.error as string, c.field)
    return
  }
  const dataKey = fromHex('dataKey', c.dataKey, 32)
  const e = wrapWithRandomness(ks, c.label as Label, dataKey, replayRng([c.rBytes as string, c.wBytes as string]))
  const X = wrapKey(ks)
  same(c.name, 'R', toHex(encodePoint(e.R)), c.R)
  const header = envelopeHeader(encodeLabel(e.label), e.R)
  same(c.name, 'header', toHex(header), c.header)
  const Z = X.multiply(scalarFromWide(fromHex('rBytes', c.rBytes, 64)))
  same(c.name, 'Z', toHex(encodePoint(Z)), c.Z)
  const kek = deriveKek(Z, e.R, X, header)
  same(c.name, 'kek', toHex(kek), c.kek)
  same(c.name, 'challenge', toHex(encodeScalar(envelopeChallenge(X, e).c)), c.challenge)
  same(c.name, 'envelope', toHex(encodeEnvelope(e)), c.envelope)
  same(c.name, 'armor', armorEnvelope(e), c.armor)
  same(c.name, 'envelopeId', toHex(envelopeId(e)), c.envelopeId)
  const d = decodeEnvelope(fromHex('envelope', c.envelope))
  verifyEnvelope(ks, d)
  verifyEnvelope(ks, dearmorEnvelope(c.armor as string))
  same(c.name, 'opened data key', toHex(openDataKey(kek, header, d.ciphertext) ?? new Uint8Array(0)), c.dataKey)
}
