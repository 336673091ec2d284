/**
 * Proactive share refresh: same members, same threshold, same group key, new shares
 * (Herzberg–Jarecki–Krawczyk–Yung 1995; docs/PROTOCOL.md §10.3).
 *
 * Each holder i in the agreed dealer set Q (|Q| ≥ k) deals a random polynomial h_i of degree k−1
 * with h_i(0) = 0: its commitment is (identity, h_i1·B, …, h_i(k−1)·B) and verifiers check the
 * first point IS the identity (so the refresh cannot move the group key). Holder j's new share is
 * x'_j = x_j + Σ_{i∈Q} h_i(j); the new commitment is C'_t = C_t + Σ_i C_it (C'_0 = C_0 = X) and the
 * verifying shares follow from it. Shares from before the refresh no longer combine with shares
 * from after it: an attacker must collect k shares within one refresh period.
 *
 * Every holder (all n) must finish with the same Q and the same commitments: a holder that misses the
 * refresh keeps a share that matches nothing (it no longer equals x·B = V'_j) and must be given a new
 * one by a reshare. |Q| ≥ k guarantees at least one honest dealer against < k corruptions.
 *
 * Encoding: the identity is not a valid point encoding anywhere in keymesh (decodePoint refuses
 * it), so a refresh dealing carries only C_1..C_(k−1); the API's `commitment` arrays have k
 * entries with [0] = IDENTITY.
 *
 * Secrets: the zero-constant polynomial (local to `refreshDeal`), the "KMFS" sub-share packages
 * (owned by the dealer until the transport seals them, then by the recipient until
 * `refreshFinish` returns; callers zero them), the old and new shares (the holder's store; the old
 * share must be deleted once the new key set is committed — that deletion is what refresh buys).
 */
import { BadInputError, UnsupportedVersionError, VerificationError } from './errors.ts'
import { Reader, Writer, aint, abytes, equalBytes, utf8 } from './bytes.ts'
import { MAX_NODES, POINT_LEN } from './constants.ts'
import { IDENTITY, L, decodePoint, encodePoint, group, mod } from './group.ts'
import type { Point, Scalar } from './group.ts'
import { evalCommitment, validateThreshold } from './keyset.ts'
import type { GroupPublicKey, KeyShare } from './keyset.ts'
import type { Rng } from './dkg.ts'
import { checkOwnShare, decodeSubShare, encodeSubShare, evalPoly, pubParams, scalarFrom, validateIndexSet, verifyingSharesOf } from './reshare.ts'

/** Format version of the refresh packages. */
export const REFRESH_VERSION = 1
/** Public dealing: "KMFD". */
export const REFRESH_DEALING_MAGIC = 'KMFD'
/** Secret sub-share package: "KMFS". */
export const REFRESH_SUBSHARE_MAGIC = 'KMFS'
/** Largest encoded dealing. */
export const MAX_REFRESH_DEALING_LEN = 4 + 1 + 1 + 1 + 1 + (MAX_NODES - 1) * POINT_LEN

const MD = utf8(REFRESH_DEALING_MAGIC)
const MSUB = utf8(REFRESH_SUBSHARE_MAGIC)

/** The public part of one holder's refresh dealing. */
export interface RefreshDealing {
  /** 1-based index of the dealer. */
  dealer: number
  /** n: number of holders (recipients 1..n). */
  n: number
  /** k points; [0] is the identity (zero constant term). */
  commitment: Point[]
}

/**
 * Deals a zero-constant polynomial to every holder 1..n of the key `pub` (k = its threshold).
 * Returns the public dealing (broadcast it), its commitment, and one secret "KMFS" package per holder
 * index 1..n including the dealer's own (seal the others to their recipients; the caller owns and
 * should zero them). Throws BadInputError when the parameters are malformed or `share` does not match
 * its verifying share.
 */
export function refreshDeal (share: KeyShare, pub: GroupPublicKey): { dealing: RefreshDealing; commitment: Point[]; subShares: Map<number, Uint8Array> } {
  return refreshDealWithRng(share, pub, undefined)
}

/** Deterministic variant for known-answer vectors only (not re-exported from index.ts). */
export function refreshDealWithRng (share: KeyShare, pub: GroupPublicKey, rng: Rng | undefined): { dealing: RefreshDealing; commitment: Point[]; subShares: Map<number, Uint8Array> } {
  const { k, n } = pubParams(pub, 'refresh.pub')
  checkOwnShare(share, pub, n, 'refresh.share')
  const coeffs: Scalar[] = [0n]
  for (let t = 1; t < k; t++) coeffs.push(scalarFrom(rng))
  const commitment: Point[] = [IDENTITY]
  for (let t = 1; t < k; t++) commitment.push(group().mulBase(coeffs[t] as Scalar))
  const subShares = new Map<number, Uint8Array>()
  for (let j = 1; j <= n; j++) subShares.set(j, encodeSubShare(MSUB, REFRESH_VERSION, share.index, j, evalPoly(coeffs, BigInt(j))))
  coeffs.fill(0n)
  return { dealing: { dealer: share.index, n, commitment }, commitment, subShares }
}

/**
 * Public check of one refresh dealing: k points, [0] the identity, the others not. Throws
 * BadInputError when `dealerIndex` is out of range or `pub` is malformed, VerificationError with
 * blame [dealerIndex] when the dealing is wrong (in particular a non-zero constant term, which would
 * change the group key).
 */
export function verifyRefreshDealing (pub: GroupPublicKey, dealerIndex: number, commitment: Point[]): void {
  const { k, n } = pubParams(pub, 'refresh.pub')
  aint('refresh.dealerIndex', dealerIndex, 1, n)
  const blame = [dealerIndex]
  if (!Array.isArray(commitment) || commitment.length !== k) {
    throw new VerificationError(`refresh: dealing of node ${dealerIndex} has ${Array.isArray(commitment) ? commitment.length : 'no'} commitments, expected ${k}`, blame)
  }
  if (!(commitment[0] as Point).is0()) throw new VerificationError(`refresh: dealing of node ${dealerIndex} has a non-zero constant term (would change the group key)`, blame)
  for (let t = 1; t < k; t++) if ((commitment[t] as Point).is0()) throw new VerificationError(`refresh: dealing of node ${dealerIndex} commits to the identity at degree ${t}`, blame)
}

/**
 * Private check of one "KMFS" sub-share for holder `index`: decodes it, checks it is from
 * `dealerIndex` to `index`, Feldman-verifies s·B = Σ_t C_t·index^t. Returns the secret scalar.
 * Throws VerificationError with blame [dealerIndex] on any failure.
 */
export function verifyRefreshSubShare (index: number, dealerIndex: number, commitment: Point[], subShare: Uint8Array): Scalar {
  let d: { from: number, to: number, share: Scalar }
  try {
    d = decodeSubShare('refresh.subShare', MSUB, REFRESH_SUBSHARE_MAGIC, REFRESH_VERSION, subShare)
  } catch (err) {
    throw new VerificationError(`refresh: malformed sub-share from node ${dealerIndex}`, [dealerIndex], { cause: err })
  }
  if (d.from !== dealerIndex || d.to !== index) throw new VerificationError(`refresh: sub-share from node ${dealerIndex} is addressed ${d.from} → ${d.to}`, [dealerIndex])
  // Secret scalar: constant-time base multiplication (0·B is the identity, fine for mulBase).
  const lhs = d.share === 0n ? IDENTITY : group().mulBase(d.share)
  if (!lhs.equals(evalCommitment(commitment, index))) throw new VerificationError(`refresh: sub-share from node ${dealerIndex} does not match its commitment`, [dealerIndex])
  return d.share
}

/**
 * Finishes a refresh for holder `share.index`. `dealers` is the AGREED dealer set Q (≥ k, the same
 * on every holder); `commitments`/`subShares` map dealer index → its commitment (k points, [0] the
 * identity) and its "KMFS" package for this holder. Entries outside Q are ignored.
 * Returns the refreshed share and public key (same group key, new commitments and verifying shares).
 * Throws BadInputError (bad parameters, share not matching `pub`), or VerificationError whose blame
 * lists every dealer in Q with a missing or wrong dealing or sub-share.
 */
export function refreshFinish (share: KeyShare, pub: GroupPublicKey, dealers: number[], commitments: Map<number, Point[]>, subShares: Map<number, Uint8Array>): { share: KeyShare; publicKey: GroupPublicKey } {
  const { k, n } = pubParams(pub, 'refresh.pub')
  const Q = validateIndexSet('refresh.dealers', dealers, n, k)
  checkOwnShare(share, pub, n, 'refresh.share')
  const blame: number[] = []
  let first: unknown
  let x = share.scalar
  for (const i of Q) {
    try {
      const c = commitments.get(i)
      const s = subShares.get(i)
      if (c === undefined || s === undefined) throw new VerificationError(`refresh: missing dealing or sub-share from node ${i}`, [i])
      verifyRefreshDealing(pub, i, c)
      x = mod(x + verifyRefreshSubShare(share.index, i, c, s))
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err
      blame.push(i)
      first ??= err
    }
  }
  if (blame.length > 0) {
    throw new VerificationError(`refresh: bad or missing dealing from node(s) ${blame.join(', ')}; remove them from the dealer set and finish again (need ≥ ${k} dealers)`, blame, { cause: first })
  }
  const newCommitments: Point[] = [pub.commitments[0] as Point]
  for (let t = 1; t < k; t++) {
    let acc = pub.commitments[t] as Point
    for (const i of Q) acc = acc.add((commitments.get(i) as Point[])[t] as Point)
    newCommitments.push(acc)
  }
  const verifyingShares = verifyingSharesOf(newCommitments, n)
  if (x === 0n || !group().mulBase(x).equals(verifyingShares[share.index - 1] as Point)) {
    throw new VerificationError('refresh: own refreshed share does not match the new commitment', [])
  }
  return { share: { index: share.index, scalar: x }, publicKey: { commitments: newCommitments, verifyingShares } }
}

// ---------------------------------------------------------------------------------------------
// Codecs

/**
 * Binary dealing: "KMFD" ‖ u8 version=1 ‖ u8 dealer ‖ u8 k ‖ u8 n ‖ (k−1) × point (C_1..C_(k−1);
 * C_0 is the identity and not encoded). Throws BadInputError on malformed input, including a
 * non-identity C_0.
 */
export function encodeRefreshDealing (d: RefreshDealing): Uint8Array {
  aint('refresh.dealing.dealer', d.dealer, 1, MAX_NODES)
  const { k, n } = validateThreshold(Array.isArray(d.commitment) ? d.commitment.length : -1, d.n, 'refresh.dealing')
  aint('refresh.dealing.dealer', d.dealer, 1, n)
  if (!(d.commitment[0] as Point).is0()) throw new BadInputError('refresh.dealing.commitment[0]', 'must be the identity')
  const w = new Writer().raw(MD).u8(REFRESH_VERSION).u8(d.dealer).u8(k).u8(n)
  for (let t = 1; t < k; t++) w.raw(encodePoint(d.commitment[t] as Point))
  return w.bytes()
}

/**
 * Strict decoding (points canonical, not identity, torsion-free; dealer ≤ n; no trailing bytes).
 * Returns k commitments with [0] = IDENTITY. Throws BadInputError / UnsupportedVersionError.
 */
export function decodeRefreshDealing (b: Uint8Array): RefreshDealing {
  abytes('refresh.dealing', b)
  if (b.length > MAX_REFRESH_DEALING_LEN) throw new BadInputError('refresh.dealing', `longer than ${MAX_REFRESH_DEALING_LEN} bytes`)
  const r = new Reader(b, 'refresh.dealing')
  if (!equalBytes(r.raw('magic', 4), MD)) throw new BadInputError('refresh.dealing.magic', `expected "${REFRESH_DEALING_MAGIC}"`)
  const v = r.u8('version')
  if (v !== REFRESH_VERSION) throw new UnsupportedVersionError('refresh.dealing.version', v, String(REFRESH_VERSION))
  const dealer = r.u8('dealer')
  const { k, n } = validateThreshold(r.u8('threshold'), r.u8('n'), 'refresh.dealing')
  aint('refresh.dealing.dealer', dealer, 1, n)
  const commitment: Point[] = [IDENTITY]
  for (let t = 1; t < k; t++) commitment.push(decodePoint(`refresh.dealing.commitment[${t}]`, r.raw('commitment', POINT_LEN)))
  r.end()
  return { dealer, n, commitment }
}

/** Decodes a secret "KMFS" sub-share package (scalar may be 0). Throws BadInputError / UnsupportedVersionError. */
export function decodeRefreshSubShare (b: Uint8Array): { from: number; to: number; share: Scalar } {
  return decodeSubShare('refresh.subShare', MSUB, REFRESH_SUBSHARE_MAGIC, REFRESH_VERSION, b)
}

/** Encodes a secret "KMFS" sub-share package (39 bytes; the caller owns it). Throws BadInputError. */
export function encodeRefreshSubShare (from: number, to: number, share: Scalar): Uint8Array {
  aint('refresh.subShare.from', from, 1, MAX_NODES)
  aint('refresh.subShare.to', to, 1, MAX_NODES)
  if (typeof share !== 'bigint' || share < 0n || share >= L) throw new BadInputError('refresh.subShare.share', 'expected a scalar in [0, L)')
  return encodeSubShare(MSUB, REFRESH_VERSION, from, to, share)
}
