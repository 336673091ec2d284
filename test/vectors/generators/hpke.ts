/**
 * Known-answer vectors for HPKE base mode (docs/PROTOCOL.md §5): RFC 9180
 * Appendix A.1.1 (AES-128-GCM) verbatim, plus keymesh's suite (AES-256-GCM) from fixed keys.
 */
import { HPKE_AEAD_AES_128_GCM, HPKE_AEAD_AES_256_GCM, hpkeSealWithEphemeral, recipientPublicKey } from '../../../protocol/hpke.ts'
import { toHex, utf8 } from '../../../protocol/bytes.ts'
import { seededRng } from '../../helpers/dealer.ts'

export function generate (): unknown {
  const rfc = {
    name: 'RFC 9180 A.1.1 DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, sequence 0',
    valid: true,
    aead: HPKE_AEAD_AES_128_GCM,
    skRm: '4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8',
    pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
    skEm: '52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736',
    enc: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
    info: '4f6465206f6e2061204772656369616e2055726e',
    aad: '436f756e742d30',
    pt: '4265617574792069732074727574682c20747275746820626561757479',
    ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a'
  }
  const rng = seededRng('keymesh-vectors-hpke')
  const skR = rng(32)
  const skE = rng(32)
  const pkR = recipientPublicKey(skR)
  const info = utf8('keymesh/v1/partial/seal')
  const pt = rng(98)
  const s = hpkeSealWithEphemeral(pkR, info, new Uint8Array(0), pt, skE, HPKE_AEAD_AES_256_GCM)
  const ours = { name: 'keymesh suite: AES-256-GCM, empty aad', valid: true, aead: HPKE_AEAD_AES_256_GCM, skRm: toHex(skR), pkRm: toHex(pkR), skEm: toHex(skE), enc: toHex(s.enc), info: toHex(info), aad: '', pt: toHex(pt), ct: toHex(s.ct) }
  const flip = Buffer.from(ours.ct, 'hex'); flip[5] = (flip[5] as number) ^ 0x80
  return {
    format: 'hpke',
    version: 1,
    description: 'RFC 9180 SealBase/OpenBase single-shot with DHKEM(X25519, HKDF-SHA256) (0x0020), HKDF-SHA256 (0x0001), AEAD `aead` (1 = AES-128-GCM, 2 = AES-256-GCM). skEm is the ephemeral secret. Invalid cases: OpenBase must fail with `error`.',
    cases: [
      rfc,
      ours,
      { ...ours, name: 'flipped ciphertext bit', valid: false, ct: flip.toString('hex'), error: 'VERIFICATION_FAILED' },
      { ...ours, name: 'wrong info', valid: false, info: toHex(utf8('keymesh/v1/other')), error: 'VERIFICATION_FAILED' },
      { ...ours, name: 'small-order enc (all zero)', valid: false, enc: '00'.repeat(32), error: 'BAD_INPUT', field: 'hpke.enc' }
    ]
  }
}
