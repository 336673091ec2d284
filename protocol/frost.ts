/**
 * FROST threshold signing, RFC 9591 ciphersuite FROST(Ed25519, SHA-512) ("FROST-ED25519-SHA512-v1"),
 * through noble's `ed25519_FROST` (docs/PROTOCOL.md §4.3).
 *
 * The requesting client is the coordinator (RFC 9591 §5): it collects one `SigningCommitment` from
 * each of ≥ k signers (round one, §5.1), sends the commitment list and message to each (round two,
 * §5.2), and aggregates the signature shares (§5.3) into a standard 64-byte Ed25519 signature
 * (RFC 8032) over the message under S = KeySet.sign.commitments[0]. `frostAggregate` verifies the
 * result with node:crypto's Ed25519 and, if it does not verify, checks each share (§5.4) and names
 * the bad signers.
 *
 * Secrets: `SigningNonces` are secret and single-use, owned by the signing node between its commit
 * and its sign-share; noble zeroes them inside `frostSignShare` (a second use throws). The share
 * scalar is the node's (KeyShare, see keyset.ts).
 */
import { ed25519_FROST } from '@noble/curves/ed25519.js'
import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { BadInputError, VerificationError } from './errors.ts'
import { Reader, Writer, aint, abytes, concat, fromHex } from './bytes.ts'
import { ED25519_SIG_LEN, MAX_NODES, POINT_LEN, SCALAR_LEN, SIGNING_COMMITMENT_LEN } from './constants.ts'
import { L, decodePoint, decodePointUnchecked, decodeScalar, encodePoint, encodeScalar } from './group.ts'
import type { KeySet, KeyShare } from './keyset.ts'
import { signKey } from './keyset.ts'
import type { Rng } from './dkg.ts'

/** Round-one public commitment of signer `index` (RFC 9591 §5.1): hiding D_i and binding E_i, 32 bytes each. */
export interface SigningCommitment { index: number; hiding: Uint8Array; binding: Uint8Array }

/**
 * Secret, single-use nonces (d_i, e_i) of one signing session, 32-byte little-endian scalars.
 * Owned by the signing node; zeroed by `frostSignShare`. Never serialise or send them.
 */
export interface SigningNonces { readonly index: number; readonly hiding: Uint8Array; readonly binding: Uint8Array }

/** Encoding lengths (commitment, signature share, Ed25519 signature), defined in constants.ts, re-exported here. */
export { SIGNING_COMMITMENT_LEN, SIGNATURE_SHARE_LEN, ED25519_SIG_LEN } from './constants.ts'

const Id = ed25519_FROST.Identifier

/** noble's public FROST package (RFC 9591 group info) for a key set's sign key. */
export type FrostPublic = { signers: { min: number, max: number }, commitments: Uint8Array[], verifyingShares: Record<string, Uint8Array> }
/** Key sets are immutable once decoded; the noble package is derived once per key set object. */
const publicCache = new WeakMap<KeySet, FrostPublic>()

/** Builds (and caches) noble's FrostPublic package from KeySet.sign. Throws BadInputError when malformed. */
export function frostPublic (ks: KeySet): FrostPublic {
  const hit = publicCache.get(ks)
  if (hit !== undefined) return hit
  if (ks.sign.verifyingShares.length !== ks.n || ks.sign.commitments.length !== ks.threshold) throw new BadInputError('keySet.sign', 'wrong number of points')
  const verifyingShares: Record<string, Uint8Array> = {}
  ks.sign.verifyingShares.forEach((p, i) => { verifyingShares[Id.fromNumber(i + 1)] = encodePoint(p) })
  const pub = { signers: { min: ks.threshold, max: ks.n }, commitments: ks.sign.commitments.map(encodePoint), verifyingShares }
  publicCache.set(ks, pub)
  return pub
}

function nobleSecret (share: KeyShare): { identifier: string, signingShare: Uint8Array } {
  aint('share.index', share.index, 1, MAX_NODES)
  if (typeof share.scalar !== 'bigint' || share.scalar <= 0n || share.scalar >= L) throw new BadInputError('share.scalar', 'expected a scalar in [1, L)')
  return { identifier: Id.fromNumber(share.index), signingShare: encodeScalar(share.scalar) }
}

function nobleCommitment (c: SigningCommitment): { identifier: string, hiding: Uint8Array, binding: Uint8Array } {
  return { identifier: Id.fromNumber(c.index), hiding: c.hiding, binding: c.binding }
}

/**
 * Checks the shape of a commitment list against a key set: between k and n entries, indices in
 * 1..n, distinct, 32-byte points. The points themselves are decoded strictly (canonical, on the
 * curve, not the identity, in the prime-order subgroup: RFC 9591 §3.1 DeserializeElement) by
 * noble inside signShare/aggregate/verifyShare, whose failures we map to BadInputError; decoding
 * them here as well would double the dominant cost of a signing round. Throws BadInputError(field).
 */
export function validateCommitments (ks: KeySet, commitments: SigningCommitment[]): void {
  if (!Array.isArray(commitments) || commitments.length < ks.threshold || commitments.length > ks.n) {
    throw new BadInputError('frost.commitments', `expected between ${ks.threshold} and ${ks.n} commitments`)
  }
  const seen = new Set<number>()
  for (const c of commitments) {
    aint('frost.commitments[].index', c.index, 1, ks.n)
    if (seen.has(c.index)) throw new BadInputError('frost.commitments', `duplicate commitment for node ${c.index}`)
    seen.add(c.index)
    abytes(`frost.commitments[${c.index}].hiding`, c.hiding, POINT_LEN)
    abytes(`frost.commitments[${c.index}].binding`, c.binding, POINT_LEN)
  }
}

/**
 * Round one (RFC 9591 §5.1): fresh nonces and their public commitment. The nonces are secret and
 * must be used for at most one `frostSignShare`. Throws BadInputError on a malformed share.
 */
export function frostCommit (share: KeyShare): { nonces: SigningNonces; commitment: SigningCommitment } {
  return frostCommitWithRng(share, undefined)
}

/** Deterministic variant for known-answer vectors only (not re-exported from index.ts). */
export function frostCommitWithRng (share: KeyShare, rng: Rng | undefined): { nonces: SigningNonces; commitment: SigningCommitment } {
  const secret = nobleSecret(share)
  const g = ed25519_FROST.commit(secret, rng)
  secret.signingShare.fill(0)
  return {
    nonces: { index: share.index, hiding: g.nonces.hiding, binding: g.nonces.binding },
    commitment: { index: share.index, hiding: g.commitments.hiding, binding: g.commitments.binding }
  }
}

/**
 * Round two (RFC 9591 §5.2): this signer's share z_i over `msg` for the given commitment list
 * (which must contain this signer's own commitment, matching `nonces`). Consumes the nonces
 * (zeroed; reuse throws BadInputError). Throws BadInputError on malformed/inconsistent input.
 */
export function frostSignShare (share: KeyShare, ks: KeySet, nonces: SigningNonces, commitments: SigningCommitment[], msg: Uint8Array): Uint8Array {
  abytes('frost.msg', msg)
  validateCommitments(ks, commitments)
  if (nonces.index !== share.index) throw new BadInputError('frost.nonces', 'belong to another signer')
  abytes('frost.nonces.hiding', nonces.hiding, SCALAR_LEN)
  abytes('frost.nonces.binding', nonces.binding, SCALAR_LEN)
  if (nonces.hiding.every(b => b === 0) || nonces.binding.every(b => b === 0)) throw new BadInputError('frost.nonces', 'already used (nonces are single-use)')
  if (!commitments.some(c => c.index === share.index)) throw new BadInputError('frost.commitments', `no commitment for this signer (node ${share.index})`)
  const secret = nobleSecret(share)
  try {
    // noble checks our commitment equals our nonces·B and zeroes the nonces on success.
    return ed25519_FROST.signShare(secret, frostPublic(ks), { hiding: nonces.hiding, binding: nonces.binding }, commitments.map(nobleCommitment), msg)
  } catch (err) {
    throw new BadInputError('frost.signShare', err instanceof Error ? err.message : 'signing failed', { cause: err })
  } finally {
    secret.signingShare.fill(0)
  }
}

/**
 * Verifies one signature share (RFC 9591 §5.4): z_i·B = D_i + ρ_i·E_i + λ_i·c·S_i.
 * Returns false for a wrong or malformed share. Throws BadInputError when the commitment list is invalid.
 */
export function frostVerifyShare (ks: KeySet, commitments: SigningCommitment[], msg: Uint8Array, index: number, sigShare: Uint8Array): boolean {
  validateCommitments(ks, commitments)
  try {
    decodeScalar('frost.sigShare', sigShare, true)
    return ed25519_FROST.verifyShare(frostPublic(ks), commitments.map(nobleCommitment), msg, Id.fromNumber(index), sigShare)
  } catch {
    return false
  }
}

const ED25519_SPKI_PREFIX = fromHex('spki', '302a300506032b6570032100')

/** A node:crypto public KeyObject for a raw 32-byte Ed25519 key (RFC 8410 SubjectPublicKeyInfo). Throws BadInputError on a wrong length. */
export function ed25519PublicKeyObject (raw: Uint8Array): KeyObject {
  abytes('ed25519.publicKey', raw, 32)
  return createPublicKey({ key: Buffer.from(concat(ED25519_SPKI_PREFIX, raw)), format: 'der', type: 'spki' })
}

/** Standard Ed25519 verification (RFC 8032 via node:crypto/OpenSSL). Returns false on any failure. */
export function ed25519Verify (publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== ED25519_SIG_LEN) return false
  try { return nodeVerify(null, msg, ed25519PublicKeyObject(publicKey), sig) } catch { return false }
}

/**
 * Aggregates (RFC 9591 §5.3) the shares of the signers in `commitments` into a 64-byte Ed25519
 * signature and checks it with a standard Ed25519 verifier. `shares` maps signer index → 32-byte
 * share and must cover exactly the commitment list. Throws BadInputError (malformed commitment
 * list, share set mismatch) or VerificationError with blame = the signers whose shares are wrong.
 */
export function frostAggregate (ks: KeySet, commitments: SigningCommitment[], msg: Uint8Array, shares: Map<number, Uint8Array>): Uint8Array {
  abytes('frost.msg', msg)
  validateCommitments(ks, commitments)
  if (shares.size !== commitments.length || commitments.some(c => !shares.has(c.index))) {
    throw new BadInputError('frost.shares', 'shares must come from exactly the signers in the commitment list')
  }
  const malformed: number[] = []
  const sigShares: Record<string, Uint8Array> = {}
  for (const c of commitments) {
    const s = shares.get(c.index) as Uint8Array
    try { decodeScalar('frost.sigShare', s, true); sigShares[Id.fromNumber(c.index)] = s } catch { malformed.push(c.index) }
  }
  if (malformed.length > 0) throw new VerificationError(`frost: malformed signature share from node(s) ${malformed.join(', ')}`, malformed.sort((a, b) => a - b))
  const pub = frostPublic(ks)
  let sig: Uint8Array | undefined
  try {
    sig = ed25519_FROST.aggregate(pub, commitments.map(nobleCommitment), msg, sigShares)
  } catch { /* attributed below */ }
  if (sig !== undefined && ed25519Verify(signKey(ks), msg, sig)) return sig
  // A malformed commitment is its signer's fault (and would make every share look wrong).
  const badCommitment = commitments.filter(c => {
    try { decodePoint('c', c.hiding); decodePoint('c', c.binding); return false } catch { return true }
  }).map(c => c.index)
  if (badCommitment.length > 0) throw new VerificationError(`frost: invalid nonce commitment from node(s) ${badCommitment.join(', ')}`, badCommitment.sort((a, b) => a - b))
  const blame = commitments.filter(c => !frostVerifyShare(ks, commitments, msg, c.index, shares.get(c.index) as Uint8Array)).map(c => c.index).sort((a, b) => a - b)
  throw new VerificationError(blame.length > 0
    ? `frost: invalid signature share from node(s) ${blame.join(', ')}`
    : 'frost: aggregate signature does not verify', blame)
}

/** Encodes a commitment: u8 index ‖ hiding ‖ binding (65 bytes). Throws BadInputError. */
export function encodeSigningCommitment (c: SigningCommitment): Uint8Array {
  aint('frost.commitment.index', c.index, 1, MAX_NODES)
  abytes('frost.commitment.hiding', c.hiding, POINT_LEN)
  abytes('frost.commitment.binding', c.binding, POINT_LEN)
  return new Writer().u8(c.index).raw(c.hiding).raw(c.binding).bytes()
}

/**
 * Decoding: index 1..MAX_NODES, both points canonical, on the curve, not the identity and not of
 * small order (decodePointUnchecked). The prime-order-subgroup check is left to noble's strict
 * parsing inside frostSignShare/frostAggregate, which runs before any use of the points; no
 * secret ever multiplies a commitment. Throws BadInputError.
 */
export function decodeSigningCommitment (b: Uint8Array): SigningCommitment {
  abytes('frost.commitment', b, SIGNING_COMMITMENT_LEN)
  const r = new Reader(b, 'frost.commitment')
  const index = aint('frost.commitment.index', r.u8('index'), 1, MAX_NODES)
  const hiding = new Uint8Array(r.raw('hiding', POINT_LEN))
  const binding = new Uint8Array(r.raw('binding', POINT_LEN))
  r.end()
  decodePointUnchecked('frost.commitment.hiding', hiding)
  decodePointUnchecked('frost.commitment.binding', binding)
  return { index, hiding, binding }
}

/**
 * Commitment list: u8 count ‖ count × encoded commitment, strictly ascending index (one
 * canonical encoding per list). Throws BadInputError.
 */
export function encodeSigningCommitments (cs: SigningCommitment[]): Uint8Array {
  aint('frost.commitments.length', cs.length, 1, MAX_NODES)
  const sorted = [...cs].sort((a, b) => a.index - b.index)
  const w = new Writer().u8(sorted.length)
  for (const c of sorted) w.raw(encodeSigningCommitment(c))
  return w.bytes()
}

/** Strict decoding of a commitment list (ascending distinct indices). Throws BadInputError. */
export function decodeSigningCommitments (b: Uint8Array): SigningCommitment[] {
  abytes('frost.commitments', b)
  const r = new Reader(b, 'frost.commitments')
  const count = aint('frost.commitments.count', r.u8('count'), 1, MAX_NODES)
  const out: SigningCommitment[] = []
  for (let i = 0; i < count; i++) {
    const c = decodeSigningCommitment(r.raw('commitment', SIGNING_COMMITMENT_LEN))
    const prev = out[out.length - 1]
    if (prev !== undefined && c.index <= prev.index) throw new BadInputError('frost.commitments', 'indices must be strictly ascending')
    out.push(c)
  }
  r.end()
  return out
}

/** Encodes a signature share (32-byte scalar). Throws BadInputError when not a canonical scalar. */
export function encodeSignatureShare (s: Uint8Array): Uint8Array {
  decodeScalar('frost.sigShare', s, true)
  return new Uint8Array(s)
}

/** Decodes a signature share: exactly 32 bytes, little-endian, < L. Throws BadInputError. */
export function decodeSignatureShare (b: Uint8Array): Uint8Array {
  decodeScalar('frost.sigShare', b, true)
  return new Uint8Array(b)
}
