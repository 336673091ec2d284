/**
 * Chaum–Pedersen proof of discrete-log equality, log_B X = log_H D, single and batched
 * (docs/PROTOCOL.md §4.2–§4.3; batching after RFC 9497 §2.2.1).
 *
 * Prove (secret x with X = x·B, D = x·H):
 *   t = hashToScalar(Tag.DLEQ_NONCE, rand32, enc(x), enc(H))   — hedged: fresh randomness and the
 *       secret, so neither a bad RNG nor a replayed input alone repeats a nonce for different inputs
 *   A1 = t·B, A2 = t·H
 *   c = hashToScalar(Tag.DLEQ, enc(B), enc(X), enc(H), enc(D), enc(A1), enc(A2))
 *   z = t + c·x mod L;  proof = enc(c) ‖ enc(z)  (64 bytes)
 * Verify: A1 = z·B − c·X, A2 = z·H − c·D, accept iff c = hashToScalar(Tag.DLEQ, …) as above.
 *
 * Batch (m pairs (H_j, D_j) under one x): seed = SHA-256(u32(len tag) ‖ Tag.DLEQ_BATCH ‖ enc(X) ‖
 * u32(m) ‖ enc(H_0) ‖ enc(D_0) ‖ … ), d_j = hashToScalar(Tag.DLEQ_BATCH, seed, u32(j)),
 * M = Σ d_j·H_j, Z = Σ d_j·D_j, then one DLEQ over (B, X, M, Z). The prover computes Z = x·M.
 *
 * X, H (and M) must be in the prime-order subgroup (partial.ts uses H = 8·R). D may carry a
 * small-order component: the verification equations, read in the prime-order subgroup, still force
 * the prime-order part of D to be x·H (soundness: for D_p ≠ x·H exactly one challenge value
 * works per hash query), and every user of D clears the cofactor (combine.ts uses 8·D).
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { BadInputError } from './errors.ts'
import { abytes, concat, u32, utf8 } from './bytes.ts'
import { DLEQ_PROOF_LEN, SCALAR_LEN, Tag } from './constants.ts'
import { BASE, L, PointCons, decodeScalar, encodeScalar, group, hashToScalar, mod } from './group.ts'
import type { Point, Scalar } from './group.ts'

const Fp = PointCons.Fp
const encCache = new WeakMap<Point, Uint8Array>()

/**
 * Records the known RFC 8032 encoding of a point just decoded from `bytes` (copied), so hashing it
 * later costs no field inversion. Points are immutable, so the cache can never go stale.
 * Call only with the bytes `p` was decoded from. Throws nothing.
 */
export function rememberEncoding (p: Point, bytes: Uint8Array): void {
  encCache.set(p, bytes.slice())
}

/**
 * RFC 8032 encodings of many points with one batched field inversion (Montgomery's trick) for
 * those not already cached. The returned arrays are shared with the cache: callers must not
 * modify them (concatenate or hash them only). Throws nothing for valid points.
 */
export function encodePoints (points: Point[]): Uint8Array[] {
  const out: Array<Uint8Array | undefined> = points.map(p => encCache.get(p))
  const todo: number[] = []
  for (let i = 0; i < points.length; i++) if (out[i] === undefined) todo.push(i)
  if (todo.length > 0) {
    const invs = Fp.invertBatch(todo.map(i => (points[i] as Point).Z))
    todo.forEach((i, t) => {
      const p = points[i] as Point
      const iz = invs[t] as bigint
      const x = Fp.mul(p.X, iz)
      const b = Fp.toBytes(Fp.mul(p.Y, iz))
      if ((x & 1n) === 1n) b[31] = (b[31] as number) | 0x80
      encCache.set(p, b)
      out[i] = b
    })
  }
  return out as Uint8Array[]
}

/** Cached RFC 8032 encoding of one point (shared array: do not modify). Throws nothing. */
export function encodePointCached (p: Point): Uint8Array {
  return encodePoints([p])[0] as Uint8Array
}

/** A Chaum–Pedersen proof (c, z). */
export interface DleqProof { c: bigint; z: bigint }

/** Encoded proof length LE32(c) ‖ LE32(z), defined in constants.ts, re-exported here. */
export { DLEQ_PROOF_LEN } from './constants.ts'

/** enc(c) ‖ enc(z), 64 bytes. Throws RangeError if a scalar is out of range. */
export function encodeDleqProof (p: DleqProof): Uint8Array {
  return concat(encodeScalar(p.c), encodeScalar(p.z))
}

/**
 * Strict decoding: exactly 64 bytes, both scalars canonical (< L; zero allowed — it only verifies
 * with negligible probability). Throws BadInputError(`${field}.c` / `${field}.z`).
 */
export function decodeDleqProof (field: string, b: Uint8Array): DleqProof {
  abytes(field, b, DLEQ_PROOF_LEN)
  return { c: decodeScalar(`${field}.c`, b.subarray(0, SCALAR_LEN), true), z: decodeScalar(`${field}.z`, b.subarray(SCALAR_LEN), true) }
}

function challenge (X: Point, H: Point, D: Point, A1: Point, A2: Point): Scalar {
  return hashToScalar(Tag.DLEQ, ...encodePoints([BASE, X, H, D, A1, A2]))
}

/**
 * Proves log_B X = log_H D for the secret x (owned by the caller; never stored here).
 * `rand32` is 32 fresh random bytes (hedging input). Constant time in x and t.
 * Throws BadInputError if rand32 is not 32 bytes.
 */
export function dleqProve (x: Scalar, X: Point, H: Point, D: Point, rand32: Uint8Array): DleqProof {
  abytes('rand32', rand32, 32)
  const xb = encodeScalar(x)
  const t = hashToScalar(Tag.DLEQ_NONCE, rand32, xb, encodePointCached(H))
  xb.fill(0)
  const g = group()
  const A1 = g.mulBase(t)
  const A2 = g.mul(H, t)
  const c = challenge(X, H, D, A1, A2)
  return { c, z: mod(t + c * x) }
}

/** Verifies a DLEQ proof over public inputs (variable time). Returns false on any mismatch; never throws for valid points. */
export function dleqVerify (X: Point, H: Point, D: Point, p: DleqProof): boolean {
  if (p.c < 0n || p.c >= L || p.z < 0n || p.z >= L) return false
  const g = group()
  const nc = mod(-p.c)
  const A1 = g.msmPublic([BASE, X], [p.z, nc])
  const A2 = g.msmPublic([H, D], [p.z, nc])
  if (A1.is0() || A2.is0()) return false
  return challenge(X, H, D, A1, A2) === p.c
}

/**
 * The RFC 9497 §2.2.1-style composite: returns the weights d_j and M = Σ d_j·H_j.
 * Throws BadInputError when the lists are empty or of different lengths.
 */
export function dleqComposite (X: Point, Hs: Point[], Ds: Point[]): { d: Scalar[], M: Point } {
  if (Hs.length === 0 || Hs.length !== Ds.length) throw new BadInputError('dleq.batch', 'expected equal, non-empty lists')
  const t = utf8(Tag.DLEQ_BATCH)
  const hb = encodePoints(Hs)
  const db = encodePoints(Ds)
  const parts: Uint8Array[] = [u32(t.length), t, encodePointCached(X), u32(Hs.length)]
  for (let j = 0; j < Hs.length; j++) parts.push(hb[j] as Uint8Array, db[j] as Uint8Array)
  const seed = sha256(concat(...parts))
  const d: Scalar[] = []
  for (let j = 0; j < Hs.length; j++) d.push(hashToScalar(Tag.DLEQ_BATCH, seed, u32(j)))
  return { d, M: group().msmPublic(Hs, d) }
}

/**
 * One proof that log_B X = log_{H_j} D_j for every j. The prover's Z = x·M costs one constant-time
 * multiplication. Throws BadInputError on bad list shapes or rand32.
 */
export function dleqBatchProve (x: Scalar, X: Point, Hs: Point[], Ds: Point[], rand32: Uint8Array): DleqProof {
  const { M } = dleqComposite(X, Hs, Ds)
  const Z = group().mul(M, x)
  return dleqProve(x, X, M, Z, rand32)
}

/** Verifies a batch proof (public inputs, variable time). Returns false on mismatch or bad shapes; does not throw. */
export function dleqBatchVerify (X: Point, Hs: Point[], Ds: Point[], p: DleqProof): boolean {
  if (Hs.length === 0 || Hs.length !== Ds.length) return false
  const { d, M } = dleqComposite(X, Hs, Ds)
  const Z = group().msmPublic(Ds, d)
  if (M.is0() || Z.is0()) return false
  return dleqVerify(X, M, Z, p)
}
