/**
 * Known-answer vectors for the artifact STREAM format (docs/PROTOCOL.md).
 * Fixed release key and salt (via the test-only artifactEncryptorWithSalt), chunk size 4096 so
 * multi-chunk cases stay small. Negative cases are built from the valid ones and must be rejected
 * with the stated error code.
 */
import {
  ARTIFACT_HEADER_LEN, artifactEncryptorWithSalt, artifactKeySchedule, encodeArtifactHeader, sealArtifactChunk
} from '../../../protocol/artifact.ts'
import { concat, fromHex, toHex } from '../../../protocol/bytes.ts'
import { ARTIFACT_MIN_CHUNK } from '../../../protocol/constants.ts'

const CS = ARTIFACT_MIN_CHUNK
const KEY = fromHex('key', '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')
const SALT = fromHex('salt', 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf')

function plaintext (n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 13 + 7) & 0xff
  return b
}

function encrypt (pt: Uint8Array): Uint8Array {
  const e = artifactEncryptorWithSalt(KEY, SALT, { chunkSize: CS })
  return concat(...e.push(pt), ...e.finish())
}

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = []
  const header = encodeArtifactHeader(CS, SALT)
  const ks = artifactKeySchedule(KEY, header)
  for (const [name, n] of [['empty', 0], ['one byte', 1], ['one full chunk', CS], ['full chunk plus one', CS + 1], ['two chunks and a tail', 2 * CS + 3]] as const) {
    const pt = plaintext(n)
    cases.push({
      name,
      valid: true,
      key: toHex(KEY),
      salt: toHex(SALT),
      chunkSize: CS,
      header: toHex(header),
      payloadKey: toHex(ks.payloadKey),
      aad: toHex(ks.aad),
      plaintext: toHex(pt),
      artifact: toHex(encrypt(pt))
    })
  }
  // Header/trailer cases use the small one-chunk artifact; chunk-order cases a two-chunk one.
  const small = encrypt(plaintext(1))
  const pt = plaintext(CS + 3)
  const a = encrypt(pt)
  const c0 = a.subarray(ARTIFACT_HEADER_LEN, ARTIFACT_HEADER_LEN + CS + 16)
  const c1 = a.subarray(ARTIFACT_HEADER_LEN + CS + 16)
  const edit = (i: number, f: (v: number) => number): Uint8Array => { const b = new Uint8Array(small); b[i] = f(b[i]!); return b }
  const bad: Array<[string, Uint8Array, string]> = [
    ['truncated at a chunk boundary', concat(header, c0), 'VERIFICATION_FAILED'],
    ['truncated inside the last chunk', small.subarray(0, small.length - 1), 'VERIFICATION_FAILED'],
    ['truncated to less than a tag', small.subarray(0, ARTIFACT_HEADER_LEN + 15), 'VERIFICATION_FAILED'],
    ['header only', header, 'VERIFICATION_FAILED'],
    ['truncated header', header.subarray(0, 24), 'BAD_INPUT'],
    ['chunks reordered', concat(header, c1, c0), 'VERIFICATION_FAILED'],
    ['first chunk dropped', concat(header, c1), 'VERIFICATION_FAILED'],
    ['trailing byte after the final chunk', concat(small, new Uint8Array([0])), 'VERIFICATION_FAILED'],
    ['ciphertext bit flipped', edit(ARTIFACT_HEADER_LEN, v => v ^ 1), 'VERIFICATION_FAILED'],
    ['tag bit flipped', edit(small.length - 1, v => v ^ 0x80), 'VERIFICATION_FAILED'],
    ['salt bit flipped', edit(9, v => v ^ 1), 'VERIFICATION_FAILED'],
    ['chunk size changed to 8192', edit(7, () => 0x20), 'VERIFICATION_FAILED'],
    ['chunk size below minimum', (() => { const b = edit(7, () => 0x0f); b[8] = 0xff; return b })(), 'BAD_INPUT'],
    ['chunk size above maximum', edit(5, () => 0x01), 'BAD_INPUT'],
    ['bad magic', edit(0, v => v ^ 1), 'BAD_INPUT'],
    ['version 2', edit(4, () => 2), 'UNSUPPORTED_VERSION'],
    ['final flag on the first chunk', concat(header, sealArtifactChunk(KEY, header, 0, true, pt.subarray(0, CS)), c1), 'VERIFICATION_FAILED'],
    ['last chunk without final flag', concat(header, c0, sealArtifactChunk(KEY, header, 1, false, pt.subarray(CS))), 'VERIFICATION_FAILED'],
    ['empty final chunk after a full chunk', concat(header, c0, sealArtifactChunk(KEY, header, 1, true, new Uint8Array(0))), 'VERIFICATION_FAILED']
  ]
  for (const [name, artifact, error] of bad) cases.push({ name, valid: false, key: toHex(KEY), artifact: toHex(artifact), error })
  cases.push({ name: 'wrong key', valid: false, key: toHex(new Uint8Array(32).fill(0xff)), artifact: toHex(small), error: 'VERIFICATION_FAILED' })
  ks.payloadKey.fill(0)
  return {
    format: 'artifact',
    version: 1,
    description: 'Streaming chunked AES-256-GCM artifacts (STREAM): header, HKDF payload key, header AAD, counter‖last-flag nonces. Valid cases give every intermediate value; invalid cases must be rejected with the given error code.',
    cases
  }
}
