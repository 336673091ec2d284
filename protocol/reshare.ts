/**
 * Resharing a threshold key to a new membership and/or threshold WITHOUT changing the group key
 * (docs/PROTOCOL.md §10.2). Used for k-of-n → k'-of-n' membership changes of either
 * key of an epoch (wrap or sign); the same arithmetic serves both.
 *
 * Scheme (Desmedt–Jajodia 1997 / Wong–Wang–Wing 2002 "redistribution", with Feldman VSS):
 *   - A set S of ≥ k OLD holders (old indices) each deals a fresh polynomial g_i of degree k'−1
 *     with g_i(0) = x_i, its own old share, to the NEW indices 1..n' (new numbering). The public
 *     commitment is (g_i0·B, …, g_i(k'−1)·B) and its first point must equal X_i, the dealer's OLD
 *     verifying share: that is what proves the dealer dealt its real share (`verifyDealing`).
 *   - New member j verifies each sub-share g_i(j) against its dealer's commitment (Feldman) and
 *     computes x'_j = Σ_{i∈Q} λ_i^Q · g_i(j) over the agreed qualified dealer set Q ⊆ S (|Q| ≥ k),
 *     λ^Q the Lagrange coefficients at 0 over the OLD indices in Q. The new commitment is
 *     C'_t = Σ_{i∈Q} λ_i^Q · C_it, so C'_0 = Σ λ_i X_i = X: the group key is unchanged (asserted).
 *
 * Deviation from the first sketch (g_i(0) = λ_i^S · x_i): dealers deal their UNWEIGHTED share and the
 * Lagrange weights are applied at finish over Q. For Q = S both give the same shares; dealing x_i
 * additionally lets the ceremony drop a dealer whose dealing failed (named in VerificationError.blame)
 * and finish with the remaining ≥ k dealers without asking anyone to deal again.
 *
 * Agreement: every new member MUST finish with the same Q and the same commitment of every dealer in
 * Q (the ceremony runs an echo check over the encoded dealings and agrees on Q, like the DKG; see the
 * spec). Different Q on different members give shares of the same key that are not on one polynomial.
 *
 * Secrets: the dealer's old share (owned by its store), the dealing polynomial (local to
 * `reshareDeal`, dropped on return; bigints cannot be wiped), each sub-share package (owned by the
 * dealer until the transport seals it to the recipient, then by the recipient until `reshareFinish`
 * returns; callers zero the buffers) and the new share (owned by the new member's store).
 */
import { BadInputError, UnsupportedVersionError, VerificationError } from './errors.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { Reader, Writer, aint, abytes, concat, equalBytes, u32, utf8 } from './bytes.ts'
import { MAX_NODES, MIN_THRESHOLD, POINT_LEN, SCALAR_LEN } from './constants.ts'
import { IDENTITY, L, decodePoint, decodeScalar, encodePoint, encodeScalar, group, lagrangeAtZero, mod, randomScalar } from './group.ts'
import type { Point, Scalar } from './group.ts'
import { evalCommitment, validateThreshold } from './keyset.ts'
import type { GroupPublicKey, KeySet, KeyShare } from './keyset.ts'
import type { Rng } from './dkg.ts'

/** Format version of the reshare packages. */
export const RESHARE_VERSION = 1
/** Public dealing: "KMRD". */
export const RESHARE_DEALING_MAGIC = 'KMRD'
/** Secret sub-share package: "KMRS". */
export const RESHARE_SUBSHARE_MAGIC = 'KMRS'
/** Encoded sub-share package length: magic ‖ version ‖ from ‖ to ‖ scalar. */
export const RESHARE_SUBSHARE_LEN = 4 + 1 + 1 + 1 + SCALAR_LEN
/** Largest encoded dealing. */
export const MAX_RESHARE_DEALING_LEN = 4 + 1 + 1 + 1 + 1 + MAX_NODES * POINT_LEN

const MD = utf8(RESHARE_DEALING_MAGIC)
const MSUB = utf8(RESHARE_SUBSHARE_MAGIC)

/** The public part of one old holder's dealing. */
export interface ReshareDealing {
  /** OLD 1-based index of the dealer. */
  dealer: number
  /** n': number of new members (recipients 1..n'). */
  newN: number
  /** k' points: g_t·B; [0] must equal the dealer's old verifying share X_dealer. */
  commitment: Point[]
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by refresh.ts)

/** Horner evaluation of a secret polynomial mod L (bigint arithmetic; not constant time). Throws nothing. */
export function evalPoly (coeffs: readonly Scalar[], x: bigint): Scalar {
  let acc = 0n
  for (let j = coeffs.length - 1; j >= 0; j--) acc = mod(acc * x + (coeffs[j] as Scalar))
  return acc
}

/** A uniform non-zero scalar from `rng` (64 bytes reduced mod L) or from the CSPRNG. Throws only if the rng does. */
export function scalarFrom (rng: Rng | undefined): Scalar {
  if (rng === undefined) return randomScalar()
  for (;;) {
    const b = rng(64)
    let v = 0n
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
    const k = mod(v)
    if (k !== 0n) return k
  }
}

/** (k, n) of a group public key, validated. Throws BadInputError(field). */
export function pubParams (pub: GroupPublicKey, field: string): { k: number, n: number } {
  if (typeof pub !== 'object' || pub === null || !Array.isArray(pub.commitments) || !Array.isArray(pub.verifyingShares)) {
    throw new BadInputError(field, 'expected a group public key')
  }
  return validateThreshold(pub.commitments.length, pub.verifyingShares.length, field)
}

/**
 * Validates a dealer/participant set: distinct integers in 1..n, at least `min` of them. Returns a
 * sorted copy. Throws BadInputError(field).
 */
export function validateIndexSet (field: string, set: unknown, n: number, min: number): number[] {
  if (!Array.isArray(set)) throw new BadInputError(field, 'expected an array of node indices')
  const seen = new Set<number>()
  for (const i of set) {
    aint(`${field}[]`, i, 1, n)
    if (seen.has(i as number)) throw new BadInputError(field, `duplicate index ${String(i)}`)
    seen.add(i as number)
  }
  if (seen.size < min) throw new BadInputError(field, `need at least ${min} dealers, got ${seen.size}`)
  return [...seen].sort((a, b) => a - b)
}

/** Checks that `share` is a well-formed share whose x·B equals the verifying share. Throws BadInputError. */
export function checkOwnShare (share: KeyShare, pub: GroupPublicKey, n: number, field: string): Point {
  if (typeof share !== 'object' || share === null) throw new BadInputError(field, 'expected a key share')
  aint(`${field}.index`, share.index, 1, n)
  if (typeof share.scalar !== 'bigint' || share.scalar <= 0n || share.scalar >= L) throw new BadInputError(`${field}.scalar`, 'expected a scalar in [1, L)')
  const X = pub.verifyingShares[share.index - 1] as Point
  // Secret scalar: constant-time base multiplication. Catches a corrupted store before it deals.
  if (!group().mulBase(share.scalar).equals(X)) throw new BadInputError(field, `share does not match verifying share ${share.index} of this key`)
  return X
}

/** Encodes a secret sub-share package: magic ‖ u8 version ‖ u8 from ‖ u8 to ‖ scalar (LE). Throws RangeError if s ∉ [0, L). */
export function encodeSubShare (magic: Uint8Array, version: number, from: number, to: number, s: Scalar): Uint8Array {
  const enc = encodeScalar(s)
  const out = new Writer().raw(magic).u8(version).u8(from).u8(to).raw(enc).bytes()
  enc.fill(0)
  return out
}

/** Decodes a sub-share package (scalar may be 0). Throws BadInputError / UnsupportedVersionError. */
export function decodeSubShare (what: string, magic: Uint8Array, magicName: string, version: number, b: unknown): { from: number, to: number, share: Scalar } {
  abytes(what, b, 4 + 1 + 1 + 1 + SCALAR_LEN)
  const r = new Reader(b as Uint8Array, what)
  if (!equalBytes(r.raw('magic', 4), magic)) throw new BadInputError(`${what}.magic`, `expected "${magicName}"`)
  const v = r.u8('version')
  if (v !== version) throw new UnsupportedVersionError(`${what}.version`, v, String(version))
  const from = aint(`${what}.from`, r.u8('from'), 1, MAX_NODES)
  const to = aint(`${what}.to`, r.u8('to'), 1, MAX_NODES)
  const share = decodeScalar(`${what}.share`, r.raw('share', SCALAR_LEN), true)
  r.end()
  return { from, to, share }
}

/** Evaluates every verifying share V_m = Σ_t C_t·m^t, m = 1..n (public data). Throws nothing for valid points. */
export function verifyingSharesOf (commitments: Point[], n: number): Point[] {
  const out: Point[] = []
  for (let m = 1; m <= n; m++) out.push(evalCommitment(commitments, m))
  return out
}

// ---------------------------------------------------------------------------------------------
// Dealing

/**
 * Deals this old holder's share to the new membership. `dealers` is the proposed dealer set S
 * (old indices, ≥ k, must contain this holder). Returns the public dealing (broadcast it), its
 * commitment, and one secret "KMRS" sub-share package per new index 1..newN (seal each to its
 * recipient; the caller owns and should zero them).
 * Throws BadInputError on bad parameters or when `oldShare` does not match its verifying share.
 */
export function reshareDeal (oldShare: KeyShare, oldPub: GroupPublicKey, dealers: number[], newThreshold: number, newN: number): { dealing: ReshareDealing; commitment: Point[]; subShares: Map<number, Uint8Array> } {
  return reshareDealWithRng(oldShare, oldPub, dealers, newThreshold, newN, undefined)
}

/** Deterministic variant for known-answer vectors only (not re-exported from index.ts). */
export function reshareDealWithRng (oldShare: KeyShare, oldPub: GroupPublicKey, dealers: number[], newThreshold: number, newN: number, rng: Rng | undefined): { dealing: ReshareDealing; commitment: Point[]; subShares: Map<number, Uint8Array> } {
  const { k, n } = pubParams(oldPub, 'reshare.oldPub')
  const S = validateIndexSet('reshare.dealers', dealers, n, k)
  const { k: k2, n: n2 } = validateThreshold(newThreshold, newN, 'reshare.new')
  const X = checkOwnShare(oldShare, oldPub, n, 'reshare.oldShare')
  if (!S.includes(oldShare.index)) throw new BadInputError('reshare.dealers', `does not contain this holder (old node ${oldShare.index})`)
  // g(0) = x_i; the other k'−1 coefficients uniform. Secret; local to this function.
  const coeffs: Scalar[] = [oldShare.scalar]
  for (let t = 1; t < k2; t++) coeffs.push(scalarFrom(rng))
  const commitment: Point[] = [X]
  for (let t = 1; t < k2; t++) commitment.push(group().mulBase(coeffs[t] as Scalar))
  const subShares = new Map<number, Uint8Array>()
  for (let j = 1; j <= n2; j++) subShares.set(j, encodeSubShare(MSUB, RESHARE_VERSION, oldShare.index, j, evalPoly(coeffs, BigInt(j))))
  coeffs.fill(0n)
  return { dealing: { dealer: oldShare.index, newN: n2, commitment }, commitment, subShares }
}

/**
 * Public check of one dealing against the OLD key: `dealerIndex` ∈ `dealers`, k' non-identity
 * points (k' = `newThreshold` when given), and C_0 = X_dealer (the dealer's old verifying share).
 * Throws BadInputError when `dealerIndex` is not in `dealers` or the old key is malformed (not the
 * dealer's fault), VerificationError with blame [dealerIndex] when the dealing is wrong.
 */
export function verifyDealing (oldPub: GroupPublicKey, dealers: number[], dealerIndex: number, commitment: Point[], newThreshold?: number): void {
  const { k, n } = pubParams(oldPub, 'reshare.oldPub')
  const S = validateIndexSet('reshare.dealers', dealers, n, k)
  aint('reshare.dealerIndex', dealerIndex, 1, n)
  if (!S.includes(dealerIndex)) throw new BadInputError('reshare.dealerIndex', `old node ${dealerIndex} is not in the dealer set`)
  const blame = [dealerIndex]
  if (!Array.isArray(commitment) || commitment.length < MIN_THRESHOLD || commitment.length > MAX_NODES || (newThreshold !== undefined && commitment.length !== newThreshold)) {
    throw new VerificationError(`reshare: dealing of old node ${dealerIndex} has ${Array.isArray(commitment) ? commitment.length : 'no'} commitments, expected ${newThreshold ?? 'between 2 and 64'}`, blame)
  }
  for (const p of commitment) if (p.is0()) throw new VerificationError(`reshare: dealing of old node ${dealerIndex} commits to the identity`, blame)
  if (!(commitment[0] as Point).equals(oldPub.verifyingShares[dealerIndex - 1] as Point)) {
    throw new VerificationError(`reshare: dealing of old node ${dealerIndex} does not deal its verifying share (C_0 ≠ X_${dealerIndex})`, blame)
  }
}

/**
 * Private check of one sub-share for new member `newIndex`: decodes the "KMRS" package, checks it is
 * from `dealerIndex` to `newIndex`, and Feldman-verifies s·B = Σ_t C_t·newIndex^t. Returns the
 * secret scalar (owned by the caller). Throws VerificationError with blame [dealerIndex] on any
 * failure (malformed, misaddressed or wrong share).
 */
export function verifySubShare (newIndex: number, dealerIndex: number, commitment: Point[], subShare: Uint8Array): Scalar {
  let d: { from: number, to: number, share: Scalar }
  try {
    d = decodeSubShare('reshare.subShare', MSUB, RESHARE_SUBSHARE_MAGIC, RESHARE_VERSION, subShare)
  } catch (err) {
    throw new VerificationError(`reshare: malformed sub-share from old node ${dealerIndex}`, [dealerIndex], { cause: err })
  }
  if (d.from !== dealerIndex || d.to !== newIndex) throw new VerificationError(`reshare: sub-share from old node ${dealerIndex} is addressed ${d.from} → ${d.to}`, [dealerIndex])
  // d.share is secret: constant-time base multiplication; the right side is public. (0·B is the
  // identity; noble's multiply refuses 0, and a zero sub-share is legitimate with probability 1/L.)
  const lhs = d.share === 0n ? IDENTITY : group().mulBase(d.share)
  if (!lhs.equals(evalCommitment(commitment, newIndex))) {
    throw new VerificationError(`reshare: sub-share from old node ${dealerIndex} does not match its commitment`, [dealerIndex])
  }
  return d.share
}

/**
 * Finishes resharing for new member `newIndex` (1..newN). `dealers` is the AGREED qualified set Q
 * (old indices, ≥ k; the same on every new member); `commitments` and `subShares` map old dealer
 * index → its (decoded) commitment and its encoded "KMRS" package for this member. Entries for
 * dealers outside Q are ignored (they were excluded).
 * Returns the new share x'_j = Σ λ_i^Q g_i(j) and the new group public key (k' commitments,
 * n' verifying shares) whose group key equals the old one.
 * Throws BadInputError (bad parameters), or VerificationError whose blame lists EVERY dealer in Q
 * with a missing, wrong or unverifiable dealing or sub-share (the ceremony removes them from Q,
 * re-agrees and calls again; the remaining dealings stay valid), or VerificationError with empty
 * blame if the result does not keep the group key (an inconsistent old key).
 */
export function reshareFinish (newIndex: number, oldPub: GroupPublicKey, dealers: number[], commitments: Map<number, Point[]>, subShares: Map<number, Uint8Array>, newThreshold: number, newN: number): { share: KeyShare; publicKey: GroupPublicKey } {
  const { k, n } = pubParams(oldPub, 'reshare.oldPub')
  const Q = validateIndexSet('reshare.dealers', dealers, n, k)
  const { k: k2, n: n2 } = validateThreshold(newThreshold, newN, 'reshare.new')
  aint('reshare.newIndex', newIndex, 1, n2)
  const blame: number[] = []
  let first: unknown
  const shares = new Map<number, Scalar>()
  for (const i of Q) {
    try {
      const c = commitments.get(i)
      const s = subShares.get(i)
      if (c === undefined || s === undefined) throw new VerificationError(`reshare: missing dealing or sub-share from old node ${i}`, [i])
      verifyDealing(oldPub, Q, i, c, k2)
      shares.set(i, verifySubShare(newIndex, i, c, s))
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err
      blame.push(i)
      first ??= err
    }
  }
  if (blame.length > 0) {
    throw new VerificationError(`reshare: bad or missing dealing from old node(s) ${blame.join(', ')}; remove them from the dealer set and finish again (need ≥ ${k} dealers)`, blame, { cause: first })
  }
  let x = 0n
  const newCommitments: Point[] = []
  const lambdas = Q.map(i => lagrangeAtZero(Q, i))
  Q.forEach((i, idx) => { x = mod(x + mod((lambdas[idx] as Scalar) * (shares.get(i) as Scalar))) })
  shares.clear()
  for (let t = 0; t < k2; t++) {
    newCommitments.push(group().msmPublic(Q.map(i => (commitments.get(i) as Point[])[t] as Point), lambdas))
  }
  if (!(newCommitments[0] as Point).equals(oldPub.commitments[0] as Point)) {
    throw new VerificationError('reshare: the reshared key differs from the old group key (old key set is inconsistent)', [])
  }
  const verifyingShares = verifyingSharesOf(newCommitments, n2)
  if (x === 0n || !group().mulBase(x).equals(verifyingShares[newIndex - 1] as Point)) {
    throw new VerificationError('reshare: own new share does not match the new commitment', [])
  }
  return { share: { index: newIndex, scalar: x }, publicKey: { commitments: newCommitments, verifyingShares } }
}

// ---------------------------------------------------------------------------------------------
// Codecs

/**
 * Binary dealing: "KMRD" ‖ u8 version=1 ‖ u8 dealer ‖ u8 k' ‖ u8 n' ‖ k' × point.
 * Throws BadInputError on out-of-range fields.
 */
export function encodeReshareDealing (d: ReshareDealing): Uint8Array {
  aint('reshare.dealing.dealer', d.dealer, 1, MAX_NODES)
  const { k, n } = validateThreshold(Array.isArray(d.commitment) ? d.commitment.length : -1, d.newN, 'reshare.dealing')
  const w = new Writer().raw(MD).u8(RESHARE_VERSION).u8(d.dealer).u8(k).u8(n)
  for (const p of d.commitment) w.raw(encodePoint(p))
  return w.bytes()
}

/**
 * Strict decoding of a dealing (points canonical, not identity, torsion-free; no trailing bytes).
 * The cryptographic check against the old key is `verifyDealing`.
 *
 * With `oldPub` (the trusted old key), C_0 is not decoded but compared byte for byte with the
 * encoding of X_dealer and replaced by that point: equal canonical encodings are the same point, so
 * the subgroup check (≈ 1.6 ms per point, the dominant cost of finishing) is skipped for it. A
 * mismatch is the dealer's fault: VerificationError with blame [dealer], as from `verifyDealing`.
 * Throws BadInputError / UnsupportedVersionError / VerificationError (only with `oldPub`).
 */
export function decodeReshareDealing (b: Uint8Array, oldPub?: GroupPublicKey): ReshareDealing {
  abytes('reshare.dealing', b)
  if (b.length > MAX_RESHARE_DEALING_LEN) throw new BadInputError('reshare.dealing', `longer than ${MAX_RESHARE_DEALING_LEN} bytes`)
  const r = new Reader(b, 'reshare.dealing')
  if (!equalBytes(r.raw('magic', 4), MD)) throw new BadInputError('reshare.dealing.magic', `expected "${RESHARE_DEALING_MAGIC}"`)
  const v = r.u8('version')
  if (v !== RESHARE_VERSION) throw new UnsupportedVersionError('reshare.dealing.version', v, String(RESHARE_VERSION))
  const dealer = aint('reshare.dealing.dealer', r.u8('dealer'), 1, MAX_NODES)
  const { k, n } = validateThreshold(r.u8('threshold'), r.u8('n'), 'reshare.dealing')
  const commitment: Point[] = []
  let X: Point | undefined
  if (oldPub !== undefined) {
    const { n: oldN } = pubParams(oldPub, 'reshare.oldPub')
    aint('reshare.dealing.dealer', dealer, 1, oldN)
    X = oldPub.verifyingShares[dealer - 1] as Point
  }
  for (let t = 0; t < k; t++) {
    const enc = r.raw('commitment', POINT_LEN)
    if (t === 0 && X !== undefined) {
      if (!equalBytes(enc, encodePoint(X))) throw new VerificationError(`reshare: dealing of old node ${dealer} does not deal its verifying share (C_0 ≠ X_${dealer})`, [dealer])
      commitment.push(X)
    } else {
      commitment.push(decodePoint(`reshare.dealing.commitment[${t}]`, enc))
    }
  }
  r.end()
  return { dealer, newN: n, commitment }
}

/** Decodes a secret "KMRS" sub-share package (scalar may be 0). Throws BadInputError / UnsupportedVersionError. */
export function decodeReshareSubShare (b: Uint8Array): { from: number; to: number; share: Scalar } {
  return decodeSubShare('reshare.subShare', MSUB, RESHARE_SUBSHARE_MAGIC, RESHARE_VERSION, b)
}

/** Encodes a secret "KMRS" sub-share package (39 bytes; the caller owns the result). Throws BadInputError. */
export function encodeReshareSubShare (from: number, to: number, share: Scalar): Uint8Array {
  aint('reshare.subShare.from', from, 1, MAX_NODES)
  aint('reshare.subShare.to', to, 1, MAX_NODES)
  if (typeof share !== 'bigint' || share < 0n || share >= L) throw new BadInputError('reshare.subShare.share', 'expected a scalar in [0, L)')
  return encodeSubShare(MSUB, RESHARE_VERSION, from, to, share)
}

// ---------------------------------------------------------------------------------------------
// Echo check

/** Tag of the lifecycle transcript digests (wanted in constants.ts Tag as LIFECYCLE_TRANSCRIPT). */
export const LIFECYCLE_TRANSCRIPT_TAG = 'keymesh/v1/lifecycle/transcript'

/**
 * Per-dealer digests of encoded dealings (reshare "KMRD" or refresh "KMFD"), for the ceremony's echo
 * check (compare with `compareTranscripts` from dkg.ts): result[x] = SHA-256( u32(len T) ‖ T ‖
 * u32(len ctx) ‖ ctx ‖ dealings[x] ), T = LIFECYCLE_TRANSCRIPT_TAG, ctx = caller context (cluster id,
 * epoch, session, key kind). `dealings` must be in ascending dealer order. Throws BadInputError.
 */
export function dealingDigests (dealings: Uint8Array[], context: Uint8Array = new Uint8Array(0)): Uint8Array[] {
  if (!Array.isArray(dealings) || dealings.length > MAX_NODES) throw new BadInputError('lifecycle.dealings', `expected at most ${MAX_NODES} dealings`)
  abytes('lifecycle.context', context)
  const t = utf8(LIFECYCLE_TRANSCRIPT_TAG)
  return dealings.map((d, x) => sha256(concat(u32(t.length), t, u32(context.length), context, abytes(`lifecycle.dealings[${x}]`, d))))
}

// ---------------------------------------------------------------------------------------------
// Key set of the next epoch

/**
 * Builds the key set that follows a reshare or refresh: same cluster id, `epoch`, the new wrap and
 * sign public keys (their lengths give k' and n'). Throws BadInputError on a malformed key or
 * epoch, VerificationError (empty blame) when either group key differs from `old`'s: a lifecycle
 * operation never changes the keys that wrapped data and published JWKS depend on.
 */
export function lifecycleKeySet (old: KeySet, epoch: number, wrap: GroupPublicKey, sign: GroupPublicKey): KeySet {
  aint('keySet.epoch', epoch, 1, 0xffffffff)
  const w = pubParams(wrap, 'keySet.wrap')
  const s = pubParams(sign, 'keySet.sign')
  if (w.k !== s.k || w.n !== s.n) throw new BadInputError('keySet', 'wrap and sign keys have different (k, n)')
  if (!(wrap.commitments[0] as Point).equals(old.wrap.commitments[0] as Point)) throw new VerificationError('lifecycle: new wrap key differs from the old wrap key', [])
  if (!(sign.commitments[0] as Point).equals(old.sign.commitments[0] as Point)) throw new VerificationError('lifecycle: new sign key differs from the old sign key', [])
  return { version: 1, clusterId: old.clusterId, epoch, threshold: w.k, n: w.n, wrap, sign }
}
