/**
 * Checks one FROST known-answer case (see generators/frost.ts), including RFC 9591 Appendix E.1
 * run through the keymesh wrapper. Throws on mismatch.
 */
import { sha512 } from '@noble/hashes/sha2.js'
import { concat, fromHex, toHex, utf8 } from '../../../protocol/bytes.ts'
import { VerificationError, errorCode } from '../../../protocol/errors.ts'
import {
  decodeSigningCommitment, decodeSigningCommitments, ed25519Verify, encodeSigningCommitment, encodeSigningCommitments,
  frostAggregate, frostCommitWithRng, frostSignShare
} from '../../../protocol/frost.ts'
import { BASE, decodeScalar, encodePoint, encodeScalar, mod } from '../../../protocol/group.ts'
import { evalCommitment } from '../../../protocol/keyset.ts'
import type { KeySet } from '../../../protocol/keyset.ts'
import { drbg } from '../generators/dkg.ts'
import { seededSigning } from '../generators/frost.ts'

interface SignerData { hidingNonceRandomness: string, bindingNonceRandomness: string, hidingNonce: string, bindingNonce: string, hidingNonceCommitment: string, bindingNonceCommitment: string, bindingFactor: string, sigShare: string }
interface FrostCase {
  name: string
  valid: boolean
  rfc9591?: boolean
  // RFC case
  groupSecretKey?: string
  groupPublicKey?: string
  sharePolynomialCoefficients?: string[]
  participantShares?: Record<string, string>
  participantList?: number[]
  signers?: Record<string, SignerData>
  // keymesh cases
  signerIndices?: number[]
  nonceSeeds?: string[]
  nonces?: Array<{ hiding: string, binding: string }>
  commitments?: string[]
  commitmentList?: string
  sigShares?: string[]
  signKey?: string
  message?: string
  signature?: string
  decodeCommitment?: string
  decodeCommitmentList?: string
  error?: string
  blame?: number[]
}

function eq (name: string, what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name}: ${what} mismatch (got ${JSON.stringify(got)}, want ${JSON.stringify(want)})`)
}

/** A byte source that returns the given 32-byte values in order (RFC 9591 nonce randomness). */
function fixedRng (values: Uint8Array[]): (len?: number) => Uint8Array<ArrayBuffer> {
  let i = 0
  return (len = 32) => {
    const v = values[i++]
    if (v === undefined || v.length !== len) throw new Error('fixed rng exhausted or wrong length')
    return new Uint8Array(v)
  }
}

/** RFC 9591 §4.4 binding factor ρ_i = H1(GPK ‖ H4(msg) ‖ H5(encoded commitments) ‖ id), computed independently of noble. */
function bindingFactor (gpk: Uint8Array, msg: Uint8Array, list: Array<{ index: number, hiding: Uint8Array, binding: Uint8Array }>, index: number): string {
  const ctx = 'FROST-ED25519-SHA512-v1'
  const enc = concat(...list.flatMap(c => [encodeScalar(BigInt(c.index)), c.hiding, c.binding]))
  const h4 = sha512(concat(utf8(ctx + 'msg'), msg))
  const h5 = sha512(concat(utf8(ctx + 'com'), enc))
  const d = sha512(concat(utf8(ctx + 'rho'), gpk, h4, h5, encodeScalar(BigInt(index))))
  let v = 0n
  for (let i = d.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(d[i]!)
  return toHex(encodeScalar(mod(v)))
}

function checkRfc (c: FrostCase): void {
  const s = decodeScalar('groupSecretKey', fromHex('s', c.groupSecretKey))
  const a1 = decodeScalar('coefficient', fromHex('a1', c.sharePolynomialCoefficients![0]))
  eq(c.name, 'group public key', toHex(encodePoint(BASE.multiply(s))), c.groupPublicKey)
  const commitments = [BASE.multiply(s), BASE.multiply(a1)]
  const shareOf = (i: number): bigint => mod(s + a1 * BigInt(i))
  for (const [i, h] of Object.entries(c.participantShares!)) eq(c.name, `share ${i}`, toHex(encodeScalar(shareOf(Number(i)))), h)
  const pk = { commitments, verifyingShares: [1, 2, 3].map(i => evalCommitment(commitments, i)) }
  const ks: KeySet = { version: 1, clusterId: '00'.repeat(16), epoch: 1, threshold: 2, n: 3, wrap: pk, sign: pk }
  const msg = fromHex('message', (c as unknown as { message: string }).message)
  const list = c.participantList!
  const r1 = list.map(i => {
    const d = c.signers![String(i)]!
    const r = frostCommitWithRng({ index: i, scalar: shareOf(i) }, fixedRng([fromHex('hr', d.hidingNonceRandomness), fromHex('br', d.bindingNonceRandomness)]))
    eq(c.name, `hiding nonce ${i}`, toHex(r.nonces.hiding), d.hidingNonce)
    eq(c.name, `binding nonce ${i}`, toHex(r.nonces.binding), d.bindingNonce)
    eq(c.name, `hiding commitment ${i}`, toHex(r.commitment.hiding), d.hidingNonceCommitment)
    eq(c.name, `binding commitment ${i}`, toHex(r.commitment.binding), d.bindingNonceCommitment)
    return r
  })
  const cs = r1.map(r => r.commitment)
  for (const i of list) eq(c.name, `binding factor ${i}`, bindingFactor(encodePoint(commitments[0]!), msg, cs, i), c.signers![String(i)]!.bindingFactor)
  const shares = new Map<number, Uint8Array>()
  list.forEach((i, j) => {
    const z = frostSignShare({ index: i, scalar: shareOf(i) }, ks, r1[j]!.nonces, cs, msg)
    eq(c.name, `signature share ${i}`, toHex(z), c.signers![String(i)]!.sigShare)
    shares.set(i, z)
  })
  const sig = frostAggregate(ks, cs, msg, shares)
  eq(c.name, 'signature', toHex(sig), c.signature)
  if (!ed25519Verify(encodePoint(commitments[0]!), msg, sig)) throw new Error(`${c.name}: node:crypto rejects the signature`)
}

export function check (c: FrostCase): void {
  if (c.rfc9591 === true) { checkRfc(c); return }
  if (c.decodeCommitment !== undefined || c.decodeCommitmentList !== undefined) {
    let got: unknown
    try {
      if (c.decodeCommitment !== undefined) decodeSigningCommitment(fromHex('c', c.decodeCommitment))
      else decodeSigningCommitments(fromHex('cl', c.decodeCommitmentList))
    } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    eq(c.name, 'error code', errorCode(got), c.error)
    return
  }
  const { ks, shares } = seededSigning()
  const msg = fromHex('message', c.message)
  const signers = c.signerIndices!
  if (c.valid) {
    eq(c.name, 'sign key', toHex(encodePoint(ks.sign.commitments[0]!)), c.signKey)
    const r1 = signers.map((i, j) => frostCommitWithRng(shares[i - 1]!, drbg(c.nonceSeeds![j]!)))
    eq(c.name, 'nonces', r1.map(r => ({ hiding: toHex(r.nonces.hiding), binding: toHex(r.nonces.binding) })), c.nonces)
    const cs = r1.map(r => r.commitment)
    eq(c.name, 'commitments', cs.map(encodeSigningCommitment).map(toHex), c.commitments)
    eq(c.name, 'commitment list', toHex(encodeSigningCommitments(cs)), c.commitmentList)
    eq(c.name, 'decoded list', toHex(encodeSigningCommitments(decodeSigningCommitments(fromHex('cl', c.commitmentList)))), c.commitmentList)
    const z = signers.map((i, j) => toHex(frostSignShare(shares[i - 1]!, ks, r1[j]!.nonces, cs, msg)))
    eq(c.name, 'signature shares', z, c.sigShares)
    const sig = frostAggregate(ks, cs, msg, new Map(signers.map((i, j) => [i, fromHex('z', z[j])])))
    eq(c.name, 'signature', toHex(sig), c.signature)
    if (!ed25519Verify(fromHex('pk', c.signKey, 32), msg, sig)) throw new Error(`${c.name}: node:crypto rejects the signature`)
    return
  }
  const cs = c.commitments!.map(h => decodeSigningCommitment(fromHex('c', h)))
  let got: unknown
  try { frostAggregate(ks, cs, msg, new Map(signers.map((i, j) => [i, fromHex('z', c.sigShares![j])]))) } catch (e) { got = e }
  if (got === undefined) throw new Error(`${c.name}: accepted`)
  eq(c.name, 'error code', errorCode(got), c.error)
  eq(c.name, 'blame', got instanceof VerificationError ? got.blame : undefined, c.blame)
}
