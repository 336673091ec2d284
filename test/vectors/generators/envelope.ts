/**
 * Known-answer vectors for wrap and the envelope format (docs/PROTOCOL.md
 * §3): fixed key set, label, data key and the 64-byte random inputs for r and w.
 */
import { encodeKeySet, wrapKey } from '../../../protocol/keyset.ts'
import { armorEnvelope, encodeEnvelope, envelopeHeader, envelopeId } from '../../../protocol/envelope.ts'
import { deriveKek, envelopeChallenge, scalarFromWide, wrapWithRandomness } from '../../../protocol/wrap.ts'
import { encodeLabel } from '../../../protocol/label.ts'
import { encodePoint, encodeScalar, L } from '../../../protocol/group.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { dealKeySet, labelFor, seededRng } from '../../helpers/dealer.ts'

export function generate (): unknown {
  const { ks } = dealKeySet(2, 3, 'keymesh-vectors-envelope')
  const rng = seededRng('keymesh-vectors-envelope-rng')
  const cases: Array<Record<string, unknown>> = []
  const labels = [labelFor(ks), labelFor(ks, { purpose: 'deployment-key', env: '', release: 'deploy-2026-11-25' })]
  let first: Uint8Array | undefined
  let firstArmor = ''
  labels.forEach((label, i) => {
    const dataKey = rng(32)
    const rBytes = rng(64)
    const wBytes = rng(64)
    const chunks = [rBytes, wBytes]
    const e = wrapWithRandomness(ks, label, dataKey, () => chunks.shift() as Uint8Array)
    const X = wrapKey(ks)
    const r = scalarFromWide(rBytes)
    const header = envelopeHeader(encodeLabel(label), e.R)
    const kek = deriveKek(X.multiply(r), e.R, X, header)
    const enc = encodeEnvelope(e)
    if (i === 0) { first = enc; firstArmor = armorEnvelope(e) }
    cases.push({
      name: `wrap ${label.purpose} ${label.env === '' ? '(no env)' : label.env}`,
      valid: true,
      keySet: toHex(encodeKeySet(ks)),
      label,
      dataKey: toHex(dataKey),
      rBytes: toHex(rBytes),
      wBytes: toHex(wBytes),
      R: toHex(encodePoint(e.R)),
      header: toHex(header),
      Z: toHex(encodePoint(X.multiply(r))),
      kek: toHex(kek),
      challenge: toHex(encodeScalar(envelopeChallenge(X, e).c)),
      envelope: toHex(enc),
      armor: armorEnvelope(e),
      envelopeId: toHex(envelopeId(e))
    })
  })
  const good = first as Uint8Array
  const labelLen = encodeLabel(labels[0]!).length
  const rOff = 7 + labelLen
  const wOff = rOff + 32
  const sOff = wOff + 32
  const at = (off: number, hex: string): string => { const b = good.slice(); b.set(Buffer.from(hex, 'hex'), off); return toHex(b) }
  const keySet = toHex(encodeKeySet(ks))
  const bad = (name: string, envelope: string, error: string, field?: string): Record<string, unknown> => ({ name, valid: false, keySet, envelope, error, ...(field !== undefined ? { field } : {}) })
  let sL = L
  const sLhex = Array.from({ length: 32 }, () => { const b = Number(sL & 0xffn); sL >>= 8n; return b.toString(16).padStart(2, '0') }).join('')
  const other = labelFor(ks, { app: 'other-app' })
  const moved = encodeEnvelope({ ...(wrapWithRandomness(ks, labels[0]!, rng(32), seededRng('moved'))), label: other })
  cases.push(
    bad('unknown version', at(4, '02'), 'UNSUPPORTED_VERSION', 'envelope.version'),
    bad('bad magic', at(0, '4b4d4556').replace(/^4b4d4556/, '4b4d4557'), 'BAD_INPUT', 'envelope.magic'),
    bad('R is the identity', at(rOff, '01' + '00'.repeat(31)), 'BAD_INPUT', 'envelope.R'),
    bad('R has order 8', at(rOff, 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'), 'BAD_INPUT', 'envelope.R'),
    bad('W non-canonical (y = p + 1)', at(wOff, 'ee' + 'ff'.repeat(30) + '7f'), 'BAD_INPUT', 'envelope.W'),
    bad('W has order 2', at(wOff, 'ec' + 'ff'.repeat(30) + '7f'), 'BAD_INPUT', 'envelope.W'),
    bad('s = L', at(sOff, sLhex), 'BAD_INPUT', 'envelope.s'),
    bad('truncated ciphertext', toHex(good.subarray(0, good.length - 1)), 'BAD_INPUT', 'envelope.ciphertext'),
    bad('trailing byte', toHex(good) + '00', 'BAD_INPUT', 'envelope'),
    bad('flipped ciphertext byte', at(good.length - 1, ((good[good.length - 1] as number) ^ 1).toString(16).padStart(2, '0')), 'VERIFICATION_FAILED'),
    bad('R reused under another label', toHex(moved), 'VERIFICATION_FAILED'),
    { name: 'truncated armor', valid: false, keySet, armor: firstArmor.split('\n').slice(0, -2).join('\n'), error: 'BAD_INPUT', field: 'envelope.armor' }
  )
  return {
    format: 'envelope',
    version: 1,
    description: 'wrap (docs/PROTOCOL.md §3): r = LE(rBytes) mod L, w = LE(wBytes) mod L; R = r·B; Z = r·X; KEK = HKDF-SHA256(enc(Z), enc(R)‖enc(X), "keymesh/v1/wrap/kdf"‖SHA-256(header)); ciphertext = AES-256-GCM(KEK, 0^12, dataKey, aad=header); c = hashToScalar("keymesh/v1/wrap/pok", enc(X), header, enc(W), ciphertext); s = w + c·r. Invalid cases: decode (or dearmor) then verifyEnvelope must fail with `error` (and `field`).',
    cases
  }
}
