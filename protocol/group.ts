/**
 * The prime-order group: edwards25519's subgroup of order L, with strict encodings.
 *
 * Points are RFC 8032 §5.1.2 compressed encodings (32 bytes). Scalars are 32-byte little-endian
 * integers, canonical (< L). `decodePoint` accepts only canonical encodings of points on the curve,
 * not the identity, and torsion-free (in the prime-order subgroup): a small-order component would let
 * a caller learn a share modulo 8 from x_i·R (small-subgroup attack), so every point from outside goes
 * through it.
 *
 * The heavy operations sit behind `GroupBackend` so that a native backend (e.g. libsodium's
 * crypto_scalarmult_ed25519) can be swapped in later and cross-checked against noble, the reference.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { mulAddUnsafe, pippenger } from '@noble/curves/abstract/curve.js'
import { sha512 } from '@noble/hashes/sha2.js'
import { randomBytes } from 'node:crypto'
import { BadInputError } from './errors.ts'
import { POINT_LEN, SCALAR_LEN } from './constants.ts'
import { concat, equalBytes, u32, utf8 } from './bytes.ts'

/** A group element (noble's extended-coordinates Edwards point). Immutable. */
export type Point = InstanceType<typeof ed25519.Point>
/** A scalar modulo L. */
export type Scalar = bigint

export const PointCons = ed25519.Point
/** The base point B of RFC 8032. */
export const BASE: Point = ed25519.Point.BASE
export const IDENTITY: Point = ed25519.Point.ZERO
/** Group order L = 2^252 + 27742317777372353535851937790883648493. */
export const L: bigint = ed25519.Point.Fn.ORDER

/** Heavy group operations. Secret scalars go only to the constant-time `mul`/`mulBase`. */
export interface GroupBackend {
  readonly name: string
  /** k·B, constant time in k (k may be secret). */
  mulBase: (k: Scalar) => Point
  /** k·P, constant time in k (k may be secret). */
  mul: (p: Point, k: Scalar) => Point
  /** k·P for a public k (variable time). */
  mulPublic: (p: Point, k: Scalar) => Point
  /** Σ k_i·P_i for public scalars (variable time; Straus for few points, Pippenger for many). */
  msmPublic: (points: Point[], scalars: Scalar[]) => Point
}

/** Below this many terms Straus/Shamir interleaving beats Pippenger (measured: bench/). */
const PIPPENGER_THRESHOLD = 32

export const nobleBackend: GroupBackend = {
  name: 'noble',
  mulBase: k => BASE.multiply(k),
  mul: (p, k) => p.multiply(k),
  mulPublic: (p, k) => k === 0n ? IDENTITY : p.multiplyUnsafe(k),
  msmPublic: (points, scalars) => {
    if (points.length !== scalars.length) throw new RangeError('msm: length mismatch')
    if (points.length === 0) return IDENTITY
    return points.length < PIPPENGER_THRESHOLD
      ? mulAddUnsafe(PointCons, points, scalars)
      : pippenger(PointCons, points, scalars)
  }
}

let backend: GroupBackend = nobleBackend
/** The active backend. */
export function group (): GroupBackend { return backend }
/** Replaces the backend (tests and benchmarks cross-check it against noble). */
export function setGroupBackend (b: GroupBackend): void { backend = b }

export function mod (a: bigint): bigint { const r = a % L; return r < 0n ? r + L : r }
export function inv (a: bigint): bigint {
  if (mod(a) === 0n) throw new RangeError('inverse of zero')
  return ed25519.Point.Fn.inv(mod(a))
}

/** RFC 8032 encoding of a point. */
export function encodePoint (p: Point): Uint8Array { return p.toBytes() }

/**
 * Strict point decoding. Throws BadInputError(field) unless `b` is the canonical encoding of a
 * point on the curve that is not the identity and lies in the prime-order subgroup.
 */
export function decodePoint (field: string, b: unknown): Point {
  const p = decodePointUnchecked(field, b)
  if (!p.isTorsionFree()) throw new BadInputError(field, 'point is not in the prime-order subgroup')
  return p
}

/**
 * Decoding without the torsion check (≈ one scalar multiplication cheaper): canonical, on curve,
 * not identity, not of small order. Only for points whose subgroup membership is checked by other
 * means before any secret touches them (docs/PROTOCOL.md §4.4 explains where that holds).
 */
export function decodePointUnchecked (field: string, b: unknown): Point {
  if (!(b instanceof Uint8Array) || b.length !== POINT_LEN) throw new BadInputError(field, `expected a ${POINT_LEN}-byte point`)
  let p: Point
  try { p = PointCons.fromBytes(b, false) } catch { throw new BadInputError(field, 'not a valid curve point encoding') }
  if (!equalBytes(p.toBytes(), b)) throw new BadInputError(field, 'non-canonical point encoding')
  if (p.is0()) throw new BadInputError(field, 'point is the identity')
  if (p.isSmallOrder()) throw new BadInputError(field, 'point has small order')
  return p
}

/** 32-byte little-endian encoding of a scalar in [0, L). */
export function encodeScalar (k: Scalar): Uint8Array {
  if (k < 0n || k >= L) throw new RangeError('scalar out of range')
  const out = new Uint8Array(SCALAR_LEN)
  let v = k
  for (let i = 0; i < SCALAR_LEN; i++) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

/**
 * Strict scalar decoding: 32 bytes little-endian, value < L. `allowZero` false (the default)
 * also rejects 0. Throws BadInputError(field).
 */
export function decodeScalar (field: string, b: unknown, allowZero = false): Scalar {
  if (!(b instanceof Uint8Array) || b.length !== SCALAR_LEN) throw new BadInputError(field, `expected a ${SCALAR_LEN}-byte scalar`)
  let v = 0n
  for (let i = SCALAR_LEN - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
  if (v >= L) throw new BadInputError(field, 'scalar is not canonical (≥ L)')
  if (!allowZero && v === 0n) throw new BadInputError(field, 'scalar is zero')
  return v
}

function leToBigint (b: Uint8Array): bigint {
  let v = 0n
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
  return v
}

/** A uniformly random non-zero scalar (64 random bytes reduced mod L; bias < 2^-250). */
export function randomScalar (): Scalar {
  for (;;) {
    const k = mod(leToBigint(randomBytes(64)))
    if (k !== 0n) return k
  }
}

/**
 * Domain-separated hash to a scalar: SHA-512( u32(len(tag)) ‖ tag ‖ Σ u32(len(m)) ‖ m ) mod L,
 * read little-endian. Length prefixes make the encoding injective.
 */
export function hashToScalar (tag: string, ...msgs: Uint8Array[]): Scalar {
  const t = utf8(tag)
  const parts: Uint8Array[] = [u32(t.length), t]
  for (const m of msgs) parts.push(u32(m.length), m)
  return mod(leToBigint(sha512(concat(...parts))))
}

/**
 * Lagrange coefficient λ_i at x = 0 for the participant set `indices` (1-based node indices,
 * distinct): λ_i = Π_{j≠i} j / (j − i) mod L. Throws RangeError on duplicates or if i ∉ indices.
 */
export function lagrangeAtZero (indices: readonly number[], i: number): Scalar {
  if (!indices.includes(i)) throw new RangeError(`index ${i} not in participant set`)
  if (new Set(indices).size !== indices.length) throw new RangeError('duplicate participant index')
  let num = 1n
  let den = 1n
  for (const j of indices) {
    if (j === i) continue
    num = mod(num * BigInt(j))
    den = mod(den * BigInt(j - i))
  }
  return mod(num * inv(den))
}
