/**
 * Wrap (anyone holding the public key set, no network) and envelope validity checks
 * (docs/PROTOCOL.md §3.3–§3.5).
 *
 *   r, w random;  R = r·B;  Z = r·X;  W = w·B
 *   header = "KMEV" ‖ u8 1 ‖ var16(label) ‖ enc(R)
 *   KEK = HKDF-SHA256(IKM = enc(Z), salt = enc(R) ‖ enc(X), info = utf8(Tag.WRAP_KDF) ‖ SHA-256(header), 32)
 *   ciphertext = AES-256-GCM(KEK, nonce = 0^12, aad = header, pt = dataKey)
 *   c = hashToScalar(Tag.WRAP_POK, enc(X), header, enc(W), ciphertext);  s = w + c·r mod L
 *
 * (W, s) is a Schnorr proof of knowledge of r bound to the label and the ciphertext (the
 * "Schnorr-signed ElGamal" / TDH2 idea): reusing R under another label changes the header and so
 * the challenge, and a fresh proof needs r. Verification is cofactored, 8·(s·B − c·R − W) = 0, which
 * matches nodes multiplying only 8·R (envelope.ts module doc) and lets single and batched checks
 * accept exactly the same set of envelopes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { BadInputError, VerificationError } from './errors.ts'
import { abytes, concat, utf8 } from './bytes.ts'
import { AEAD_NONCE_LEN, AEAD_TAG_LEN, DATA_KEY_LEN, Tag } from './constants.ts'
import { BASE, L, group, hashToScalar, mod } from './group.ts'
import { encodePointCached, encodePoints } from './dleq.ts'
import type { Point, Scalar } from './group.ts'
import { envelopeHeader } from './envelope.ts'
import type { Envelope } from './envelope.ts'
import { encodeLabel } from './label.ts'
import type { Label } from './label.ts'
import { wrapKey } from './keyset.ts'
import type { KeySet } from './keyset.ts'

/** A source of random bytes (tests and vector generators pass a seeded one). */
export type Rng = (n: number) => Uint8Array

const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LEN)

/** Bytes read little-endian, reduced mod L (64 bytes: bias < 2^-250). Throws nothing; may return 0 (callers check). */
export function scalarFromWide (b: Uint8Array): Scalar {
  let v = 0n
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
  return mod(v)
}

/**
 * KEK = HKDF-SHA256(IKM = enc(Z), salt = enc(R) ‖ enc(X), info = utf8(Tag.WRAP_KDF) ‖ SHA-256(header)).
 * The returned 32-byte key is owned by the caller, who zeroes it after use. Throws nothing for valid points.
 */
export function deriveKek (Z: Point, R: Point, X: Point, header: Uint8Array): Uint8Array {
  const [zb, rb, xb] = encodePoints([Z, R, X]) as [Uint8Array, Uint8Array, Uint8Array]
  const ikm = zb.slice()
  const kek = hkdf(sha256, ikm, concat(rb, xb), concat(utf8(Tag.WRAP_KDF), sha256(header)), 32)
  ikm.fill(0)
  return kek
}

/**
 * AES-256-GCM open of an envelope ciphertext with a 12-byte zero nonce (safe: each KEK is derived
 * from a fresh r and used for exactly one encryption). Returns the data key (owned by the caller)
 * or null when the tag does not verify. Never returns unauthenticated bytes; throws only on a
 * wrong-length KEK (RangeError from node:crypto).
 */
export function openDataKey (kek: Uint8Array, header: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (ciphertext.length !== DATA_KEY_LEN + AEAD_TAG_LEN) return null
  const d = createDecipheriv('aes-256-gcm', kek, ZERO_NONCE)
  d.setAAD(header)
  d.setAuthTag(ciphertext.subarray(DATA_KEY_LEN))
  const out = d.update(ciphertext.subarray(0, DATA_KEY_LEN))
  try {
    d.final()
  } catch {
    out.fill(0)
    return null
  }
  return new Uint8Array(out)
}

function labelMatches (ks: KeySet, label: Label): boolean {
  return label.clusterId === ks.clusterId && label.epoch === ks.epoch
}

/**
 * Deterministic core of `wrap` for known-answer vectors: `rng` supplies r and w (64 bytes each).
 * Not re-exported from protocol/index.ts. Throws like `wrap`, and RangeError if rng yields a zero scalar.
 */
export function wrapWithRandomness (ks: KeySet, label: Label, dataKey: Uint8Array, rng: Rng): Envelope {
  abytes('dataKey', dataKey, DATA_KEY_LEN)
  const labelBytes = encodeLabel(label)
  if (label.clusterId !== ks.clusterId) throw new BadInputError('label.clusterId', 'does not match the key set')
  if (label.epoch !== ks.epoch) throw new BadInputError('label.epoch', 'does not match the key set')
  const X = wrapKey(ks)
  const g = group()
  // r and w are secret ephemeral scalars owned by this call (bigints; cannot be wiped).
  const r = scalarFromWide(rng(64))
  const w = scalarFromWide(rng(64))
  if (r === 0n || w === 0n) throw new RangeError('rng returned a zero scalar')
  const R = g.mulBase(r)
  const Z = g.mul(X, r)
  const header = envelopeHeader(labelBytes, R)
  const kek = deriveKek(Z, R, X, header)
  const c = createCipheriv('aes-256-gcm', kek, ZERO_NONCE)
  c.setAAD(header)
  const ciphertext = new Uint8Array(concat(c.update(dataKey), c.final(), c.getAuthTag()))
  kek.fill(0)
  const W = g.mulBase(w)
  const ch = hashToScalar(Tag.WRAP_POK, encodePointCached(X), header, encodePointCached(W), ciphertext)
  const s = mod(w + ch * r)
  return { version: 1, label: { ...label }, R, W, s, ciphertext }
}

/**
 * Wraps a 32-byte data key under the key set's wrap key, bound to `label` (whose clusterId and
 * epoch must match the key set). The caller keeps ownership of `dataKey`.
 * Throws BadInputError (bad label, wrong data key length, label/key set mismatch).
 */
export function wrap (ks: KeySet, label: Label, dataKey: Uint8Array): Envelope {
  return wrapWithRandomness(ks, label, dataKey, n => new Uint8Array(randomBytes(n)))
}

/** The envelope header and proof challenge c (§3.3). Throws BadInputError on an invalid label. */
export function envelopeChallenge (X: Point, e: Envelope): { header: Uint8Array, c: Scalar } {
  const header = envelopeHeader(encodeLabel(e.label), e.R)
  return { header, c: hashToScalar(Tag.WRAP_POK, encodePointCached(X), header, encodePointCached(e.W), e.ciphertext) }
}

/**
 * Checks an envelope's label binding (clusterId/epoch = the key set's) and its proof of knowledge
 * of r: 8·(s·B − c·R − W) = 0. Public inputs only (variable time).
 * Throws VerificationError (no blame: an envelope is not a node's output) or BadInputError.
 */
export function verifyEnvelope (ks: KeySet, e: Envelope): void {
  if (!labelMatches(ks, e.label)) throw new VerificationError('envelope label is for another cluster or key epoch than the key set')
  const X = wrapKey(ks)
  const { c } = envelopeChallenge(X, e)
  if (!schnorrHolds(e.s, c, e.R, e.W)) throw new VerificationError('envelope proof of knowledge does not verify (tampered envelope or label)')
}

/** floor(a / b) for b > 0 (bigint division truncates toward zero). */
function floorDiv (a: bigint, b: bigint): bigint {
  const q = a / b
  return (a % b !== 0n && a < 0n) ? q - 1n : q
}

/**
 * Half-size decomposition c ≡ c0 / c1 (mod L) with |c0|, |c1| ≈ 2^126: the shortest vector of the
 * lattice {(a, b) : a ≡ c·b mod L}, found by Lagrange–Gauss reduction of (L, 0), (c, 1). This is
 * the verification speed-up of Antipa et al. ("Accelerated verification of ECDSA signatures",
 * SAC 2005) as used by Pornin (ePrint 2020/454) for Schnorr/EdDSA. Returns c1 > 0, c1 ≠ 0 mod L.
 */
export function halfSizeSplit (c: Scalar): { c0: bigint, c1: bigint } {
  let u: [bigint, bigint] = [L, 0n]
  let v: [bigint, bigint] = [mod(c), 1n]
  const dot = (a: [bigint, bigint], b: [bigint, bigint]): bigint => a[0] * b[0] + a[1] * b[1]
  for (;;) {
    if (dot(u, u) < dot(v, v)) { const t = u; u = v; v = t }
    const nv = dot(v, v)
    const q = floorDiv(2n * dot(u, v) + nv, 2n * nv)
    const r: [bigint, bigint] = [u[0] - q * v[0], u[1] - q * v[1]]
    if (dot(r, r) >= nv) break
    u = v
    v = r
  }
  return v[1] < 0n ? { c0: -v[0], c1: -v[1] } : { c0: v[0], c1: v[1] }
}

/**
 * Cofactored Schnorr check 8·(s·B − c·R − W) = 0, evaluated as
 * 8·((c1·s)·B − c0·R − c1·W) = 0 with the half-size split of c: since c1 ≠ 0 mod L and 8·(…) lies in
 * the prime-order subgroup, the two are equivalent, but R and W are multiplied by ~127-bit scalars
 * (one interleaved MSM) instead of R by a 253-bit one. Public inputs, variable time.
 */
function schnorrHolds (s: Scalar, c: Scalar, R: Point, W: Point): boolean {
  const { c0, c1 } = halfSizeSplit(c)
  const g = group()
  const points: Point[] = [W.negate()]
  const scalars: Scalar[] = [c1]
  if (c0 !== 0n) { points.push(c0 > 0n ? R.negate() : R); scalars.push(c0 > 0n ? c0 : -c0) }
  const lhs = g.mulPublic(BASE, mod(c1 * s)).add(g.msmPublic(points, scalars))
  return lhs.clearCofactor().is0()
}

/**
 * Batched `verifyEnvelope` for many envelopes: with fresh random 128-bit a_j,
 * 8·((Σ a_j s_j)·B − Σ a_j c_j·R_j − Σ a_j W_j) = 0, one multi-scalar multiplication. A bad envelope
 * passes with probability ≤ 2^-128. On failure, re-checks one by one to name the bad envelope.
 * Throws VerificationError or BadInputError.
 */
export function verifyEnvelopes (ks: KeySet, es: Envelope[]): void {
  if (!Array.isArray(es) || es.length === 0) throw new BadInputError('envelopes', 'expected a non-empty list')
  if (es.length === 1) { verifyEnvelope(ks, es[0] as Envelope); return }
  const X = wrapKey(ks)
  const rnd = randomBytes(16 * es.length)
  const points: Point[] = [BASE]
  const scalars: Scalar[] = [0n]
  let sumS = 0n
  for (let j = 0; j < es.length; j++) {
    const e = es[j] as Envelope
    if (!labelMatches(ks, e.label)) throw new VerificationError(`envelope ${j}: label is for another cluster or key epoch than the key set`)
    let a = 0n
    for (let b = 0; b < 16; b++) a = (a << 8n) | BigInt(rnd[16 * j + b] as number)
    a = a | 1n
    const { c } = envelopeChallenge(X, e)
    sumS = mod(sumS + a * e.s)
    points.push(e.R, e.W)
    scalars.push(mod(-a * c), mod(-a))
  }
  scalars[0] = sumS
  if (group().msmPublic(points, scalars).clearCofactor().is0()) return
  for (let j = 0; j < es.length; j++) {
    try { verifyEnvelope(ks, es[j] as Envelope) } catch (err) {
      if (err instanceof VerificationError) throw new VerificationError(`envelope ${j}: ${err.message}`)
      throw err
    }
  }
  throw new VerificationError('batched envelope proof check failed')
}
