/**
 * HPKE (RFC 9180) base mode, single-shot seal/open, for sealing partial results to a recipient
 * (docs/PROTOCOL.md §5).
 *
 * Suite: KEM DHKEM(X25519, HKDF-SHA256) = 0x0020, KDF HKDF-SHA256 = 0x0001, AEAD AES-256-GCM =
 * 0x0002 (AES-128-GCM = 0x0001 is supported so the RFC 9180 Appendix A.1 vectors can be checked).
 * X25519 and AES-GCM come from node:crypto (native); HKDF Extract/Expand from @noble/hashes.
 * Measured faster than @hpke/core (WebCrypto, async) for our 100-byte messages; see the report.
 *
 * Single-shot means sequence number 0, so the AEAD nonce is base_nonce itself (RFC 9180 §5.2).
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { extract, expand } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { BadInputError, VerificationError } from './errors.ts'
import { abytes, concat, u16, utf8 } from './bytes.ts'
import {
  AEAD_TAG_LEN, HPKE_AEAD_AES_128_GCM, HPKE_AEAD_AES_256_GCM, HPKE_KDF_HKDF_SHA256, HPKE_KEM_X25519_SHA256, RECIPIENT_KEY_LEN
} from './constants.ts'

/** An X25519 key pair of a recipient (deploy target). The secret key is owned by the target. */
export interface RecipientKeyPair { publicKey: Uint8Array; secretKey: Uint8Array }

/** RFC 9180 §7.1–7.3 identifiers and the `enc` length, defined in constants.ts, re-exported here. */
export { HPKE_KEM_X25519_SHA256, HPKE_KDF_HKDF_SHA256, HPKE_AEAD_AES_128_GCM, HPKE_AEAD_AES_256_GCM, HPKE_ENC_LEN } from './constants.ts'
/** Supported AEAD ids. */
export type HpkeAeadId = typeof HPKE_AEAD_AES_128_GCM | typeof HPKE_AEAD_AES_256_GCM

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const HPKE_V1 = utf8('HPKE-v1')
const KEM_SUITE = concat(utf8('KEM'), u16(HPKE_KEM_X25519_SHA256))
const EMPTY = new Uint8Array(0)

function hpkeSuite (aead: HpkeAeadId): Uint8Array {
  return concat(utf8('HPKE'), u16(HPKE_KEM_X25519_SHA256), u16(HPKE_KDF_HKDF_SHA256), u16(aead))
}

/** RFC 9180 §4: LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm). */
function labeledExtract (suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concat(HPKE_V1, suite, utf8(label), ikm), salt)
}

/** RFC 9180 §4: LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L). */
function labeledExpand (suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, len: number): Uint8Array {
  return expand(sha256, prk, concat(u16(len), HPKE_V1, suite, utf8(label), info), len)
}

/**
 * Key import/export goes through JWK, not DER: on Node 20, DER (PKCS#8/SPKI) parsing costs
 * ≈ 0.2–0.6 ms per key versus ≈ 10–35 µs for JWK, and HPKE open/seal needs two or three of them.
 * Node requires `x` in a private OKP JWK but derives the key from `d` alone (OpenSSL
 * EVP_PKEY_new_raw_private_key), so a placeholder `x` is passed. That behaviour is checked once at
 * load against RFC 9180 A.1 (skRm → pkRm); if a Node version ever differs, DER is used instead.
 */
const PLACEHOLDER_X = 'A'.repeat(43)
const JWK_PRIVATE_OK = ((): boolean => {
  try {
    const sk = Buffer.from('4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8', 'hex')
    const k = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: sk.toString('base64url'), x: PLACEHOLDER_X }, format: 'jwk' })
    const x = (createPublicKey(k).export({ format: 'jwk' }) as { x?: string }).x
    return x === Buffer.from('3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d', 'hex').toString('base64url')
  } catch { return false }
})()

function privateKeyObject (field: string, sk: Uint8Array): KeyObject {
  abytes(field, sk, RECIPIENT_KEY_LEN)
  const d = Buffer.from(sk.buffer, sk.byteOffset, sk.length)
  try {
    return JWK_PRIVATE_OK
      ? createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: PLACEHOLDER_X }, format: 'jwk' })
      : createPrivateKey({ key: Buffer.concat([PKCS8_X25519, d]), format: 'der', type: 'pkcs8' })
  } catch { throw new BadInputError(field, 'not an X25519 secret key') }
}

function publicKeyObject (field: string, pk: Uint8Array): KeyObject {
  abytes(field, pk, RECIPIENT_KEY_LEN)
  const x = Buffer.from(pk.buffer, pk.byteOffset, pk.length).toString('base64url')
  try { return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' }) } catch { throw new BadInputError(field, 'not an X25519 public key') }
}

function rawPublic (k: KeyObject): Uint8Array {
  const x = (k.export({ format: 'jwk' }) as { x?: string }).x
  if (typeof x !== 'string') throw new Error('X25519 public key export failed')
  return new Uint8Array(Buffer.from(x, 'base64url'))
}

/** X25519 with the all-zero output check of RFC 9180 §7.1.4 (small-order peer keys). */
function dh (sk: KeyObject, pk: KeyObject, field: string): Uint8Array {
  let out: Uint8Array
  try { out = new Uint8Array(diffieHellman({ privateKey: sk, publicKey: pk })) } catch { throw new BadInputError(field, 'X25519 produced no shared secret (small-order public key)') }
  let acc = 0
  for (const b of out) acc |= b
  if (acc === 0) throw new BadInputError(field, 'X25519 shared secret is all zero (small-order public key)')
  return out
}

/** DHKEM ExtractAndExpand (RFC 9180 §4.1). */
function kemSharedSecret (dhOut: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dhOut)
  dhOut.fill(0)
  return labeledExpand(KEM_SUITE, prk, 'shared_secret', concat(enc, pkR), 32)
}

/** KeySchedule for mode_base (RFC 9180 §5.1): returns key and base_nonce (owned by the caller). */
function keySchedule (aead: HpkeAeadId, sharedSecret: Uint8Array, info: Uint8Array): { key: Uint8Array, nonce: Uint8Array } {
  const suite = hpkeSuite(aead)
  const pskIdHash = labeledExtract(suite, EMPTY, 'psk_id_hash', EMPTY)
  const infoHash = labeledExtract(suite, EMPTY, 'info_hash', info)
  const ctx = concat(new Uint8Array([0]), pskIdHash, infoHash)
  const secret = labeledExtract(suite, sharedSecret, 'secret', EMPTY)
  sharedSecret.fill(0)
  const key = labeledExpand(suite, secret, 'key', ctx, aead === HPKE_AEAD_AES_128_GCM ? 16 : 32)
  const nonce = labeledExpand(suite, secret, 'base_nonce', ctx, 12)
  secret.fill(0)
  return { key, nonce }
}

function cipherName (aead: HpkeAeadId): 'aes-128-gcm' | 'aes-256-gcm' {
  if (aead === HPKE_AEAD_AES_128_GCM) return 'aes-128-gcm'
  if (aead === HPKE_AEAD_AES_256_GCM) return 'aes-256-gcm'
  throw new BadInputError('hpke.aead', 'unsupported AEAD id')
}

/** A fresh X25519 key pair (node:crypto). The caller owns `secretKey`. Throws only if node:crypto fails. */
export function generateRecipientKeyPair (): RecipientKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const d = (privateKey.export({ format: 'jwk' }) as { d?: string }).d
  if (typeof d !== 'string') throw new Error('X25519 secret key export failed')
  return { publicKey: rawPublic(publicKey), secretKey: new Uint8Array(Buffer.from(d, 'base64url')) }
}

/** The X25519 public key of a 32-byte secret key. Throws BadInputError on a wrong length. */
export function recipientPublicKey (secretKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(privateKeyObject('recipientSecret', secretKey)))
}

/**
 * Deterministic seal for known-answer tests: `skE` is the ephemeral secret (RFC 9180 skEm).
 * Throws BadInputError on bad key lengths or a small-order recipient key.
 */
export function hpkeSealWithEphemeral (pkR: Uint8Array, info: Uint8Array, aad: Uint8Array, pt: Uint8Array, skE: Uint8Array, aead: HpkeAeadId = HPKE_AEAD_AES_256_GCM): { enc: Uint8Array, ct: Uint8Array } {
  return sealWith(pkR, privateKeyObject('hpke.skE', skE), info, aad, pt, aead)
}

/**
 * RFC 9180 SealBase single-shot to the recipient public key `pkR` with a fresh ephemeral key.
 * Throws BadInputError on a bad or small-order recipient key.
 */
export function hpkeSeal (pkR: Uint8Array, info: Uint8Array, aad: Uint8Array, pt: Uint8Array, aead: HpkeAeadId = HPKE_AEAD_AES_256_GCM): { enc: Uint8Array, ct: Uint8Array } {
  // The fresh ephemeral key stays a KeyObject (never exported): cheaper than a raw round trip.
  return sealWith(pkR, generateKeyPairSync('x25519').privateKey, info, aad, pt, aead)
}

/** SealBase with the ephemeral private key `skE` (RFC 9180 §5.1.1, §6.1). */
function sealWith (pkR: Uint8Array, skE: KeyObject, info: Uint8Array, aad: Uint8Array, pt: Uint8Array, aead: HpkeAeadId): { enc: Uint8Array, ct: Uint8Array } {
  const name = cipherName(aead)
  const pkObj = publicKeyObject('recipient', pkR)
  const enc = rawPublic(createPublicKey(skE))
  const ss = kemSharedSecret(dh(skE, pkObj, 'recipient'), enc, pkR)
  const { key, nonce } = keySchedule(aead, ss, info)
  const c = createCipheriv(name, key, nonce)
  c.setAAD(aad)
  const ct = new Uint8Array(concat(c.update(pt), c.final(), c.getAuthTag()))
  key.fill(0)
  return { enc, ct }
}

/**
 * RFC 9180 OpenBase single-shot. Returns the plaintext (owned by the caller).
 * Throws BadInputError (bad lengths, small-order enc) or VerificationError (AEAD tag mismatch:
 * wrong key, info, aad or tampered ciphertext).
 */
export function hpkeOpen (skR: Uint8Array, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ct: Uint8Array, aead: HpkeAeadId = HPKE_AEAD_AES_256_GCM): Uint8Array {
  const name = cipherName(aead)
  const skObj = privateKeyObject('recipientSecret', skR)
  const encObj = publicKeyObject('hpke.enc', enc)
  abytes('hpke.ciphertext', ct)
  if (ct.length < AEAD_TAG_LEN) throw new BadInputError('hpke.ciphertext', 'shorter than the AEAD tag')
  const pkR = rawPublic(createPublicKey(skObj))
  const ss = kemSharedSecret(dh(skObj, encObj, 'hpke.enc'), enc, pkR)
  const { key, nonce } = keySchedule(aead, ss, info)
  const d = createDecipheriv(name, key, nonce)
  d.setAAD(aad)
  d.setAuthTag(ct.subarray(ct.length - AEAD_TAG_LEN))
  const out = d.update(ct.subarray(0, ct.length - AEAD_TAG_LEN))
  key.fill(0)
  try { d.final() } catch {
    out.fill(0)
    throw new VerificationError('HPKE open failed: wrong recipient key, wrong context or tampered ciphertext')
  }
  return new Uint8Array(out)
}
