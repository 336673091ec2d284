import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { Aes128Gcm, Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import { HPKE_AEAD_AES_128_GCM, HPKE_AEAD_AES_256_GCM, generateRecipientKeyPair, hpkeOpen, hpkeSeal, hpkeSealWithEphemeral, recipientPublicKey } from '../../protocol/hpke.ts'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'

const h = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const u8 = (b: ArrayBuffer | Uint8Array): Uint8Array => new Uint8Array(b)

// RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode_base, sequence 0.
const A1 = {
  info: '4f6465206f6e2061204772656369616e2055726e',
  skEm: '52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736',
  pkEm: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
  skRm: '4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8',
  pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
  pt: '4265617574792069732074727574682c20747275746820626561757479',
  aad: '436f756e742d30',
  ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a'
}

describe('hpke (RFC 9180 base mode)', () => {
  it('matches RFC 9180 A.1.1', () => {
    expect(recipientPublicKey(h(A1.skRm))).toEqual(h(A1.pkRm))
    const { enc, ct } = hpkeSealWithEphemeral(h(A1.pkRm), h(A1.info), h(A1.aad), h(A1.pt), h(A1.skEm), HPKE_AEAD_AES_128_GCM)
    expect(Buffer.from(enc).toString('hex')).toBe(A1.pkEm)
    expect(Buffer.from(ct).toString('hex')).toBe(A1.ct)
    expect(hpkeOpen(h(A1.skRm), enc, h(A1.info), h(A1.aad), ct, HPKE_AEAD_AES_128_GCM)).toEqual(h(A1.pt))
  })

  it('interoperates with @hpke/core both ways (AES-256-GCM and AES-128-GCM)', async () => {
    for (const [aeadId, aead] of [[HPKE_AEAD_AES_256_GCM, new Aes256Gcm()], [HPKE_AEAD_AES_128_GCM, new Aes128Gcm()]] as const) {
      const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead })
      const kp = generateRecipientKeyPair()
      const info = new Uint8Array(randomBytes(40))
      const pt = new Uint8Array(randomBytes(98))
      // ours → theirs
      const sealed = hpkeSeal(kp.publicKey, info, new Uint8Array(0), pt, aeadId)
      const skR = await suite.kem.deserializePrivateKey(kp.secretKey.slice().buffer)
      const opened = await suite.open({ recipientKey: skR, enc: sealed.enc.slice().buffer, info: info.slice().buffer }, sealed.ct.slice().buffer)
      expect(u8(opened)).toEqual(pt)
      // theirs → ours
      const pkR = await suite.kem.deserializePublicKey(kp.publicKey.slice().buffer)
      const theirs = await suite.seal({ recipientPublicKey: pkR, info: info.slice().buffer }, pt.slice().buffer)
      expect(hpkeOpen(kp.secretKey, u8(theirs.enc), info, new Uint8Array(0), u8(theirs.ct), aeadId)).toEqual(pt)
    }
  })

  it('fails closed on a wrong key, info, aad, or any flipped ciphertext byte', () => {
    const kp = generateRecipientKeyPair()
    const other = generateRecipientKeyPair()
    const info = new Uint8Array([1, 2, 3])
    const { enc, ct } = hpkeSeal(kp.publicKey, info, new Uint8Array(0), new Uint8Array(10))
    expect(() => hpkeOpen(other.secretKey, enc, info, new Uint8Array(0), ct)).toThrow(VerificationError)
    expect(() => hpkeOpen(kp.secretKey, enc, new Uint8Array([1, 2]), new Uint8Array(0), ct)).toThrow(VerificationError)
    expect(() => hpkeOpen(kp.secretKey, enc, info, new Uint8Array([0]), ct)).toThrow(VerificationError)
    for (let i = 0; i < ct.length; i++) {
      const bad = ct.slice(); bad[i] = (bad[i] as number) ^ 1
      expect(() => hpkeOpen(kp.secretKey, enc, info, new Uint8Array(0), bad)).toThrow(VerificationError)
    }
  })

  it('rejects small-order and malformed keys with BadInputError', () => {
    const kp = generateRecipientKeyPair()
    expect(() => hpkeSeal(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), new Uint8Array(1))).toThrow(BadInputError)
    expect(() => hpkeSeal(new Uint8Array(31), new Uint8Array(0), new Uint8Array(0), new Uint8Array(1))).toThrow(/recipient/)
    expect(() => hpkeOpen(kp.secretKey, new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), new Uint8Array(16))).toThrow(BadInputError)
    expect(() => hpkeOpen(new Uint8Array(5), kp.publicKey, new Uint8Array(0), new Uint8Array(0), new Uint8Array(16))).toThrow(/recipientSecret/)
  })
})
