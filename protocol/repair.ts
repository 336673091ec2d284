/**
 * Share repair: a member that missed a key-set generation rebuilds ITS OWN share of that
 * generation from a helper set H of members that hold theirs, without any helper learning another
 * member's share and without the target learning anything beyond its own share
 * (docs/PROTOCOL.md §10.6). "Repairable threshold scheme", Laing & Stinson 2017 (eprint 2017/1155,
 * §4.1.1 enrollment); the same three steps as ZF FROST's `frost_core::keys::repairable`.
 *
 * Let s_i be helper i's share (a point on the degree-(k−1) sharing polynomial f, s_i = f(i)), r the
 * target's index (r ∉ H, |H| ≥ k so that f is determined by H), and
 *   λ_i^H(r) = Π_{m∈H, m≠i} (r − m) / (i − m) mod L,
 * the Lagrange coefficient of i over H evaluated at x = r, so that f(r) = Σ_{i∈H} λ_i^H(r)·s_i.
 *
 *   Step 1 (`repairSplit`, at each helper i): δ_i = λ_i^H(r)·s_i, split additively into |H| pieces
 *     δ_{i,j} (j ∈ H): |H|−1 uniform, the last (largest j) = δ_i − Σ(others). Piece δ_{i,j} goes
 *     sealed to helper j ("KMRP", from=i, to=j); δ_{i,i} stays.
 *   Step 2 (`repairSum`, at each helper j): σ_j = Σ_{i∈H} δ_{i,j}, sent sealed to r ("KMRT",
 *     from=j, to=r).
 *   Step 3 (`repairFinish`, at r): s_r = Σ_{j∈H} σ_j = Σ_i δ_i = f(r), and s_r·B MUST equal the
 *     committed verifying share V_r of the generation's GroupPublicKey. A helper that lies anywhere
 *     makes this check fail; the scheme cannot say which helper lied, so the failure blames all of H
 *     and the caller retries with another helper set. A lying helper causes a refusal, never a
 *     wrong share.
 *
 * Secrets: the helper's share (its store), δ_i and every piece δ_{i,j} (owned by helper i until its
 * transport seals the piece to j, then by j until `repairSum` returns; callers zero the buffers),
 * every σ_j (owned by j until sealed to r, then by r until `repairFinish` returns) and the repaired
 * share (the target's store). Pieces and sums are uniformly random on their own, but a piece must
 * still never be sent in the clear: all |H| pieces of one helper sum to λ_i·s_i, and all σ_j to s_r.
 * Intermediate values are bigints, which cannot be wiped and whose arithmetic is not constant
 * time (as in reshare.ts); encodings this module creates and drops are zeroed.
 */
import { BadInputError, VerificationError } from './errors.ts'
import { aint, utf8 } from './bytes.ts'
import { MAX_NODES, MIN_THRESHOLD, SCALAR_LEN } from './constants.ts'
import { L, group, inv, mod } from './group.ts'
import type { Point, Scalar } from './group.ts'
import type { GroupPublicKey, KeyShare } from './keyset.ts'
import type { Rng } from './dkg.ts'
import { decodeSubShare, encodeSubShare, pubParams, scalarFrom } from './reshare.ts'

/** Format version of the repair messages. */
export const REPAIR_VERSION = 1
/** Secret piece δ_{i,j} (helper i → helper j): "KMRP". */
export const REPAIR_PIECE_MAGIC = 'KMRP'
/** Secret sum σ_j (helper j → target r): "KMRT". */
export const REPAIR_SUM_MAGIC = 'KMRT'
/** Encoded piece or sum: magic 4 ‖ u8 version ‖ u8 from ‖ u8 to ‖ scalar 32 (LE) = 39 bytes. */
export const REPAIR_MESSAGE_LEN: number = 4 + 1 + 1 + 1 + SCALAR_LEN

const MPIECE = utf8(REPAIR_PIECE_MAGIC)
const MSUM = utf8(REPAIR_SUM_MAGIC)

// ---------------------------------------------------------------------------------------------
// Validation

/**
 * The helper set H: an array of distinct integers in 1..`max`, at least `min` of them (min ≥ 2).
 * Returns a sorted copy. Throws BadInputError('repair.helpers').
 */
function helperSet (helpers: unknown, max: number, min: number): number[] {
  if (!Array.isArray(helpers)) throw new BadInputError('repair.helpers', 'expected an array of node indices')
  const seen = new Set<number>()
  for (const i of helpers) {
    aint('repair.helpers[]', i, 1, max)
    if (seen.has(i as number)) throw new BadInputError('repair.helpers', `duplicate index ${String(i)}`)
    seen.add(i as number)
  }
  if (seen.size < min) throw new BadInputError('repair.helpers', `need at least ${min} helpers, got ${seen.size}`)
  return [...seen].sort((a, b) => a - b)
}

/** Validates H and the target r (1..max, r ∉ H). Returns sorted H. Throws BadInputError. */
function params (helpers: unknown, target: unknown, max: number, min: number): number[] {
  const H = helperSet(helpers, max, min)
  aint('repair.target', target, 1, max)
  if (H.includes(target as number)) throw new BadInputError('repair.target', `node ${String(target)} is in the helper set; a member cannot repair its own share`)
  return H
}

/**
 * Checks that `msgs` is a Map whose keys are exactly H (no missing, no extra entries). Missing or
 * extra entries are the caller's error (it must collect one message from every helper before
 * calling): BadInputError(field).
 */
function exactlyH (field: string, msgs: unknown, H: readonly number[]): ReadonlyMap<number, unknown> {
  if (!(msgs instanceof Map)) throw new BadInputError(field, 'expected a Map from helper index to message')
  const extra = [...msgs.keys()].filter(k => !H.includes(k as number))
  if (extra.length > 0) throw new BadInputError(field, `entries from outside the helper set: ${extra.map(String).join(', ')}`)
  const missing = H.filter(j => !msgs.has(j))
  if (missing.length > 0) throw new BadInputError(field, `missing entries from helper(s) ${missing.join(', ')}`)
  return msgs as ReadonlyMap<number, unknown>
}

/**
 * Decodes every message in `msgs` (keys = H) with `magic`, requiring from = sender and to = `to`.
 * Returns the sum of their scalars mod L (secret). Every sender whose message does not decode or is
 * labelled wrongly is named: one VerificationError with blame = those senders (ascending).
 */
function sumMessages (what: string, magic: Uint8Array, magicName: string, H: readonly number[], to: number, msgs: ReadonlyMap<number, unknown>): Scalar {
  const blame: number[] = []
  let first: unknown
  let acc = 0n
  for (const j of H) {
    let d: { from: number, to: number, share: Scalar }
    try {
      d = decodeSubShare(`repair.${what}`, magic, magicName, REPAIR_VERSION, msgs.get(j))
    } catch (err) {
      blame.push(j)
      first ??= err
      continue
    }
    if (d.from !== j || d.to !== to) {
      blame.push(j)
      first ??= new VerificationError(`repair: ${what} from node ${j} is labelled ${d.from} → ${d.to}, expected ${j} → ${to}`, [j])
      continue
    }
    acc = mod(acc + d.share)
  }
  if (blame.length > 0) {
    throw new VerificationError(`repair: malformed or mislabelled ${what} from node(s) ${blame.join(', ')}`, blame, { cause: first })
  }
  return acc
}

// ---------------------------------------------------------------------------------------------
// API

/**
 * λ_i^H(target) = Π_{m∈H, m≠i} (target − m)/(i − m) mod L: the Lagrange coefficient of helper i over
 * the helper set H, evaluated at x = target (never 0, since target ∉ H). Public value.
 * Throws BadInputError when H is not ≥ 2 distinct indices in 1..64, target ∉ 1..64 or target ∈ H,
 * or i ∉ H.
 */
export function repairCoefficient (helpers: readonly number[], i: number, target: number): bigint {
  const H = params(helpers, target, MAX_NODES, MIN_THRESHOLD)
  aint('repair.index', i, 1, MAX_NODES)
  if (!H.includes(i)) throw new BadInputError('repair.index', `node ${i} is not in the helper set`)
  let num = 1n
  let den = 1n
  for (const m of H) {
    if (m === i) continue
    num = mod(num * BigInt(target - m))
    den = mod(den * BigInt(i - m))
  }
  return mod(num * inv(den))
}

/**
 * Step 1 at helper `share.index` ∈ H: the pieces δ_{i,j} of δ_i = λ_i^H(target)·s_i, one encoded
 * "KMRP" message (from = i, to = j, 39 bytes) per helper j ∈ H, own piece included, keyed by j in
 * ascending order. SECRET: the caller owns the buffers, seals each to its helper and zeroes them.
 * The share is not checked against a verifying share here (no public key is passed); a wrong share
 * makes `repairFinish` refuse.
 * Throws BadInputError (bad H or target, share.index ∉ H, share not an index in 1..64 with a scalar
 * in [1, L)).
 */
export function repairSplit (share: KeyShare, helpers: readonly number[], target: number): Map<number, Uint8Array> {
  return repairSplitWithRng(share, helpers, target, undefined)
}

/**
 * Deterministic variant of `repairSplit` for known-answer vectors only (not re-exported from
 * index.ts): the |H|−1 random pieces come from `scalarFrom(rng)` in ascending recipient order
 * (CSPRNG when `rng` is undefined). Throws as `repairSplit`, or whatever `rng` throws.
 */
export function repairSplitWithRng (share: KeyShare, helpers: readonly number[], target: number, rng: Rng | undefined): Map<number, Uint8Array> {
  const H = params(helpers, target, MAX_NODES, MIN_THRESHOLD)
  if (typeof share !== 'object' || share === null) throw new BadInputError('repair.share', 'expected a key share')
  aint('repair.share.index', share.index, 1, MAX_NODES)
  if (typeof share.scalar !== 'bigint' || share.scalar <= 0n || share.scalar >= L) throw new BadInputError('repair.share.scalar', 'expected a scalar in [1, L)')
  if (!H.includes(share.index)) throw new BadInputError('repair.share.index', `node ${share.index} is not in the helper set`)
  // δ_i and the running sum are secret bigints (cannot be wiped; see the module comment).
  const delta = mod(repairCoefficient(H, share.index, target) * share.scalar)
  const pieces = new Map<number, Uint8Array>()
  let rest = delta
  H.forEach((j, x) => {
    // The last recipient gets the remainder so the pieces sum to δ_i; every other piece is uniform
    // (scalarFrom never returns 0: statistical distance 1/L from uniform, irrelevant here).
    const piece = x === H.length - 1 ? rest : scalarFrom(rng)
    rest = mod(rest - piece)
    pieces.set(j, encodeSubShare(MPIECE, REPAIR_VERSION, share.index, j, piece))
  })
  return pieces
}

/**
 * Step 2 at helper `self` ∈ H: `pieces` maps every sender i ∈ H (self included) to the "KMRP"
 * piece it sent to `self`. Returns σ_self = Σ_i δ_{i,self} encoded as "KMRT" (from = self,
 * to = target, 39 bytes). SECRET: the caller owns the result, seals it to the target and zeroes it;
 * it also still owns (and should zero) the pieces.
 * Throws BadInputError (bad H, target or self; self ∉ H; `pieces` not a Map with exactly the keys
 * of H), VerificationError with blame = every sender whose piece is malformed (length, magic,
 * version, non-canonical scalar) or not labelled from = sender, to = self.
 */
export function repairSum (self: number, helpers: readonly number[], target: number, pieces: ReadonlyMap<number, Uint8Array>): Uint8Array {
  const H = params(helpers, target, MAX_NODES, MIN_THRESHOLD)
  aint('repair.self', self, 1, MAX_NODES)
  if (!H.includes(self)) throw new BadInputError('repair.self', `node ${self} is not in the helper set`)
  const msgs = exactlyH('repair.pieces', pieces, H)
  const sigma = sumMessages('piece', MPIECE, REPAIR_PIECE_MAGIC, H, self, msgs)
  return encodeSubShare(MSUM, REPAIR_VERSION, self, target, sigma)
}

/**
 * Step 3 at the target: `sums` maps every helper j ∈ H to its "KMRT" sum σ_j. Returns the repaired
 * share {index: target, scalar: Σ_j σ_j} after checking scalar·B = pub.verifyingShares[target−1]
 * (the committed verifying share of this generation). SECRET: the caller owns the share (store it,
 * then zero the sums).
 * Throws BadInputError (malformed `pub`; H not ≥ k distinct indices in 1..n; target ∉ 1..n or
 * target ∈ H; `sums` not a Map with exactly the keys of H), VerificationError with blame = every
 * helper whose sum is malformed or not labelled from = j, to = target, and VerificationError with
 * blame = all of H (ascending) when the result is zero or does not match the verifying share —
 * some helper lied or used a wrong share, and the scheme cannot tell which: retry with another
 * helper set.
 */
export function repairFinish (target: number, pub: GroupPublicKey, helpers: readonly number[], sums: ReadonlyMap<number, Uint8Array>): KeyShare {
  const { k, n } = pubParams(pub, 'repair.pub')
  // |H| ≥ k: fewer helpers cannot determine the degree-(k−1) polynomial, so the result would be
  // wrong for a reason that is nobody's fault; refuse it as a caller error instead.
  const H = params(helpers, target, n, k)
  const msgs = exactlyH('repair.sums', sums, H)
  const s = sumMessages('sum', MSUM, REPAIR_SUM_MAGIC, H, target, msgs)
  // Secret scalar: constant-time base multiplication. s = 0 cannot match a (non-identity)
  // verifying share, and noble's multiply refuses 0, so it is tested first.
  if (s === 0n || !group().mulBase(s).equals(pub.verifyingShares[target - 1] as Point)) {
    throw new VerificationError(`repair: the repaired share of node ${target} does not match its verifying share; one of helpers ${H.join(', ')} sent a wrong value — retry with another helper set`, [...H])
  }
  return { index: target, scalar: s }
}
