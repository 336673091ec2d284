/**
 * Node side of unwrapping: a partial decryption D_i with a DLEQ proof, and sealing it to the
 * recipient with HPKE (docs/PROTOCOL.md §4 and §5).
 *
 * For an envelope with ephemeral key R the node uses the cofactor-cleared R̂ = 8·R (always in the
 * prime-order subgroup, never the identity because decoding rejects small-order R), so its secret
 * share x_i is never multiplied by a point with a small-order component (no share bits mod 8 can
 * leak) without paying a torsion check. D_i = x_i·R̂ and the proof shows log_B X_i = log_R̂ D_i.
 * The recipient folds the 1/8 into the Lagrange coefficients (combine.ts).
 *
 * The envelope proof is always verified before the share is touched (brief §2.4).
 */
import { randomBytes } from 'node:crypto'
import { sha256 } from '@noble/hashes/sha2.js'
import { BadInputError, VerificationError } from './errors.ts'
import { Reader, Writer, abytes, aint, concat, fromHex, utf8 } from './bytes.ts'
import {
  DLEQ_PROOF_LEN, HPKE_ENC_LEN, MAX_BATCH, MAX_NODES, MAX_SEALED_PARTIAL_LEN, PARTIAL_KIND_BATCH, PARTIAL_KIND_SINGLE, POINT_LEN, Tag
} from './constants.ts'
import { decodePointUnchecked, group } from './group.ts'
import type { Point } from './group.ts'
import { decodeDleqProof, dleqBatchProve, dleqProve, encodeDleqProof, encodePoints, rememberEncoding } from './dleq.ts'
import type { DleqProof } from './dleq.ts'
import { hpkeOpen, hpkeSeal, hpkeSealWithEphemeral } from './hpke.ts'
import { keySetId } from './keyset.ts'
import type { KeySet, KeyShare } from './keyset.ts'
import { verifyEnvelope, verifyEnvelopes } from './wrap.ts'
import type { Rng } from './wrap.ts'
import type { Envelope } from './envelope.ts'

/** A node's partial decryption of one envelope. */
export interface Partial { index: number; D: Point; proof: DleqProof }
/** A node's partial decryptions of m envelopes with one batched proof. */
export interface BatchPartial { index: number; D: Point[]; proof: DleqProof }

/** Format constants (kind bytes, MAX_SEALED_PARTIAL_LEN), defined in constants.ts, re-exported here. */
export { PARTIAL_KIND_SINGLE, PARTIAL_KIND_BATCH, MAX_SEALED_PARTIAL_LEN } from './constants.ts'

/** R̂ = 8·R: the cofactor-cleared ephemeral key every partial is computed on. Throws nothing. */
export function clearedR (e: Envelope): Point {
  return e.R.clearCofactor()
}

function verifyingShare (ks: KeySet, index: number): Point {
  aint('share.index', index, 1, ks.n)
  const Xi = ks.wrap.verifyingShares[index - 1]
  if (Xi === undefined) throw new BadInputError('share.index', 'no verifying share for this index')
  return Xi
}

/** Deterministic core of `computePartial` (`rng` gives the 32-byte DLEQ hedge); throws like it. Not re-exported from index.ts. */
export function computePartialWithRandomness (share: KeyShare, ks: KeySet, e: Envelope, rng: Rng): Partial {
  const Xi = verifyingShare(ks, share.index)
  verifyEnvelope(ks, e)
  const H = clearedR(e)
  // share.scalar is the node's secret, owned by its store; used only in constant-time mul here.
  const D = group().mul(H, share.scalar)
  return { index: share.index, D, proof: dleqProve(share.scalar, Xi, H, D, rng(32)) }
}

/**
 * Node side: verifies the envelope (label binding + proof) first, then D_i = x_i·(8R) and a DLEQ
 * proof. Throws VerificationError (bad envelope) or BadInputError (bad share index).
 */
export function computePartial (share: KeyShare, ks: KeySet, e: Envelope): Partial {
  return computePartialWithRandomness(share, ks, e, n => new Uint8Array(randomBytes(n)))
}

/** Deterministic core of `computeBatchPartial`; throws like it. Not re-exported from index.ts. */
export function computeBatchPartialWithRandomness (share: KeyShare, ks: KeySet, es: Envelope[], rng: Rng): BatchPartial {
  const Xi = verifyingShare(ks, share.index)
  if (!Array.isArray(es) || es.length === 0 || es.length > MAX_BATCH) throw new BadInputError('envelopes', `expected 1..${MAX_BATCH} envelopes`)
  verifyEnvelopes(ks, es)
  const g = group()
  const Hs = es.map(clearedR)
  const D = Hs.map(H => g.mul(H, share.scalar))
  return { index: share.index, D, proof: dleqBatchProve(share.scalar, Xi, Hs, D, rng(32)) }
}

/**
 * Node side, m envelopes: one batched envelope check (one MSM), m constant-time multiplications
 * and one batched DLEQ proof. Throws VerificationError (a bad envelope) or BadInputError.
 */
export function computeBatchPartial (share: KeyShare, ks: KeySet, es: Envelope[]): BatchPartial {
  return computeBatchPartialWithRandomness(share, ks, es, n => new Uint8Array(randomBytes(n)))
}

function isBatch (p: Partial | BatchPartial): p is BatchPartial { return Array.isArray(p.D) }

/**
 * Plaintext of a sealed partial: Partial = u8 1 ‖ u8 index ‖ D ‖ c ‖ z;
 * BatchPartial = u8 2 ‖ u8 index ‖ u16 m ‖ m×D ‖ c ‖ z. Throws BadInputError on bad shapes.
 */
export function encodePartial (p: Partial | BatchPartial): Uint8Array {
  aint('partial.index', p.index, 1, MAX_NODES)
  const w = new Writer()
  if (isBatch(p)) {
    if (p.D.length === 0 || p.D.length > MAX_BATCH) throw new BadInputError('partial.D', `expected 1..${MAX_BATCH} points`)
    w.u8(PARTIAL_KIND_BATCH).u8(p.index).u16(p.D.length)
    for (const D of encodePoints(p.D)) w.raw(D)
  } else {
    w.u8(PARTIAL_KIND_SINGLE).u8(p.index).raw(encodePoints([p.D])[0] as Uint8Array)
  }
  return w.raw(encodeDleqProof(p.proof)).bytes()
}

/**
 * Strict decoding of the plaintext. D points are decoded without the torsion check (canonical,
 * on curve, not identity, not small order): the recipient only ever uses 8·D, so a small-order
 * component has no effect, and the DLEQ proof fixes the prime-order part (spec §6.2).
 * Throws BadInputError(`partial.<field>`).
 */
export function decodePartial (b: Uint8Array): Partial | BatchPartial {
  abytes('partial', b)
  const r = new Reader(b, 'partial')
  const kind = r.u8('kind')
  if (kind !== PARTIAL_KIND_SINGLE && kind !== PARTIAL_KIND_BATCH) throw new BadInputError('partial.kind', `unknown kind ${kind}`)
  const index = aint('partial.index', r.u8('index'), 1, MAX_NODES)
  if (kind === PARTIAL_KIND_SINGLE) {
    const Db = r.raw('D', POINT_LEN)
    const D = decodePointUnchecked('partial.D', Db)
    rememberEncoding(D, Db)
    const proof = decodeDleqProof('partial.proof', r.raw('proof', DLEQ_PROOF_LEN))
    r.end()
    return { index, D, proof }
  }
  const m = r.u16('m')
  if (m === 0 || m > MAX_BATCH) throw new BadInputError('partial.m', `expected 1..${MAX_BATCH}`)
  const D: Point[] = []
  for (let j = 0; j < m; j++) {
    const Db = r.raw('D', POINT_LEN)
    const Dj = decodePointUnchecked(`partial.D[${j}]`, Db)
    rememberEncoding(Dj, Db)
    D.push(Dj)
  }
  const proof = decodeDleqProof('partial.proof', r.raw('proof', DLEQ_PROOF_LEN))
  r.end()
  return { index, D, proof }
}

/** keySetId as 32 bytes, memoised per KeySet object (key sets are immutable once built). */
const idCache = new WeakMap<KeySet, Uint8Array>()
function keySetIdBytes (ks: KeySet): Uint8Array {
  let id = idCache.get(ks)
  if (id === undefined) { id = fromHex('keySetId', keySetId(ks), 32); idCache.set(ks, id) }
  return id
}

/**
 * HPKE info = utf8(Tag.PARTIAL_SEAL) ‖ keySetId (32 bytes) ‖ u8 index ‖ SHA-256(envelopeId_0 ‖ …).
 * Binds the sealed partial to the key set, the node and the exact envelope list.
 * Throws BadInputError (bad id list, index out of range, malformed key set).
 */
export function partialSealInfo (ks: KeySet, envelopeIds: Uint8Array[], index: number): Uint8Array {
  if (!Array.isArray(envelopeIds) || envelopeIds.length === 0 || envelopeIds.length > MAX_BATCH) throw new BadInputError('envelopeIds', `expected 1..${MAX_BATCH} ids`)
  envelopeIds.forEach((id, j) => abytes(`envelopeIds[${j}]`, id, 32))
  aint('partial.index', index, 1, MAX_NODES)
  return concat(utf8(Tag.PARTIAL_SEAL), keySetIdBytes(ks), new Uint8Array([index]), sha256(concat(...envelopeIds)))
}

/**
 * Seals a partial to the recipient's X25519 public key: enc(32) ‖ HPKE ciphertext (aad empty).
 * Throws BadInputError (bad recipient key, shapes, or m ≠ envelopeIds.length).
 */
export function sealPartial (p: Partial | BatchPartial, ks: KeySet, envelopeIds: Uint8Array[], recipient: Uint8Array): Uint8Array {
  return sealPartialWithEphemeral(p, ks, envelopeIds, recipient)
}

/** Deterministic core of `sealPartial` for known-answer vectors (`skE`: the HPKE ephemeral secret); throws like it. */
export function sealPartialWithEphemeral (p: Partial | BatchPartial, ks: KeySet, envelopeIds: Uint8Array[], recipient: Uint8Array, skE?: Uint8Array): Uint8Array {
  if (isBatch(p) ? p.D.length !== envelopeIds.length : envelopeIds.length !== 1) throw new BadInputError('envelopeIds', 'count does not match the partial')
  const pt = encodePartial(p)
  const info = partialSealInfo(ks, envelopeIds, p.index)
  const { enc, ct } = skE === undefined
    ? hpkeSeal(recipient, info, new Uint8Array(0), pt)
    : hpkeSealWithEphemeral(recipient, info, new Uint8Array(0), pt, skE)
  pt.fill(0)
  return concat(enc, ct)
}

/**
 * Opens a sealed partial from node `index` for the given envelopes. The plaintext must name the
 * same index and carry one D per envelope. Throws VerificationError with blame [index] (does not
 * open, or its content is malformed/mismatched) or BadInputError (bad arguments, bad recipient key).
 */
export function openSealedPartial (sealed: Uint8Array, ks: KeySet, envelopeIds: Uint8Array[], index: number, recipientSecret: Uint8Array): Partial | BatchPartial {
  abytes('sealedPartial', sealed)
  if (sealed.length > MAX_SEALED_PARTIAL_LEN) throw new BadInputError('sealedPartial', 'too long')
  if (sealed.length < HPKE_ENC_LEN + 16) throw new BadInputError('sealedPartial', 'truncated')
  const info = partialSealInfo(ks, envelopeIds, index)
  let pt: Uint8Array
  try {
    pt = hpkeOpen(recipientSecret, sealed.subarray(0, HPKE_ENC_LEN), info, new Uint8Array(0), sealed.subarray(HPKE_ENC_LEN))
  } catch (err) {
    if (err instanceof BadInputError && err.field === 'recipientSecret') throw err
    throw new VerificationError(`sealed partial from node ${index} does not open (tampered, or sealed to another recipient or context)`, [index], { cause: err })
  }
  let p: Partial | BatchPartial
  try { p = decodePartial(pt) } catch (err) {
    throw new VerificationError(`sealed partial from node ${index} is malformed`, [index], { cause: err })
  }
  if (p.index !== index) throw new VerificationError(`sealed partial from node ${index} names node ${p.index}`, [index])
  if (isBatch(p) ? p.D.length !== envelopeIds.length : envelopeIds.length !== 1) throw new VerificationError(`sealed partial from node ${index} covers the wrong number of envelopes`, [index])
  return p
}
