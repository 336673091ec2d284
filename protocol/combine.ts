/**
 * Recipient side: combine k partials into the envelope's KEK and open the data key, optimistic or
 * strict, with blame (docs/PROTOCOL.md §6).
 *
 * Partials are D_i = x_i·R̂ with R̂ = 8·R (partial.ts), so
 *   Z = r·X = Σ_{i∈S} (λ_i / 64)·(8·D_i)     (λ_i Lagrange at 0 over the index set S, |S| = k)
 * computed with one public multi-scalar multiplication. Using 8·D_i (three doublings) instead of
 * D_i means a small-order component in a partial never matters, so no D needs a torsion check.
 *
 * Optimistic (default): combine the first k partials and try the AEAD; the AEAD tag authenticates
 * Z (through the KEK), so success proves the result right without checking any proof, and the D_i
 * there need no check at all.
 * On failure, or always with `strict`, every partial's DLEQ proof is checked against its verifying
 * share; failing nodes are blamed; if at least k pass, those are combined.
 * Never returns anything but a fully authenticated data key.
 */
import { BadInputError, VerificationError } from './errors.ts'
import { aint } from './bytes.ts'
import { group, inv, lagrangeAtZero, mod } from './group.ts'
import type { Point, Scalar } from './group.ts'
import { dleqBatchVerify, dleqVerify } from './dleq.ts'
import type { Envelope } from './envelope.ts'
import { envelopeHeader } from './envelope.ts'
import { encodeLabel } from './label.ts'
import { wrapKey } from './keyset.ts'
import type { KeySet } from './keyset.ts'
import { clearedR } from './partial.ts'
import type { BatchPartial, Partial } from './partial.ts'
import { deriveKek, openDataKey } from './wrap.ts'

/** Options of combine/combineBatch. */
export interface CombineOptions {
  /** Verify every proof before combining (default false: optimistic). */
  strict?: boolean
  /** Called with the indices of nodes whose partial failed verification, when the call still succeeds. */
  onBlame?: (blame: number[]) => void
}

const INV64 = inv(64n)

function checkIndices (ks: KeySet, ps: Array<{ index: number }>, what: string): void {
  if (!Array.isArray(ps)) throw new BadInputError(what, 'expected a list')
  const seen = new Set<number>()
  for (const p of ps) {
    aint(`${what}.index`, p.index, 1, ks.n)
    if (seen.has(p.index)) throw new BadInputError(`${what}.index`, `duplicate node index ${p.index}`)
    seen.add(p.index)
  }
  if (ps.length < ks.threshold) throw new BadInputError(what, `need at least ${ks.threshold} partials, got ${ps.length}`)
}

/** μ_i = λ_i / 64 for the index set (applied to 8·D_i). */
function coefficients (indices: number[]): Scalar[] {
  return indices.map(i => mod(lagrangeAtZero(indices, i) * INV64))
}

/** Z = Σ μ_i·(8·D_i): clearing the cofactor of every D_i makes a small-order component irrelevant. */
function combineZ (Ds: Point[], mu: Scalar[]): Point {
  return group().msmPublic(Ds.map(D => D.clearCofactor()), mu)
}

function tryOpen (ks: KeySet, e: Envelope, Z: Point): Uint8Array | null {
  if (Z.is0()) return null
  const header = envelopeHeader(encodeLabel(e.label), e.R)
  const kek = deriveKek(Z, e.R, wrapKey(ks), header)
  const key = openDataKey(kek, header, e.ciphertext)
  kek.fill(0)
  return key
}

function assertLabel (ks: KeySet, e: Envelope): void {
  if (e.label.clusterId !== ks.clusterId || e.label.epoch !== ks.epoch) throw new VerificationError('envelope label is for another cluster or key epoch than the key set')
}

/**
 * Checks one partial: index in range and the DLEQ proof log_B X_i = log_{8R} D_i. D needs no
 * torsion check: the proof fixes its prime-order part and combine uses only 8·D (spec §6.2).
 * Returns false on any failure (public inputs, variable time); throws nothing for well-typed input.
 */
export function verifyPartial (ks: KeySet, e: Envelope, p: Partial): boolean {
  if (!Number.isSafeInteger(p.index) || p.index < 1 || p.index > ks.n) return false
  const Xi = ks.wrap.verifyingShares[p.index - 1]
  if (Xi === undefined || p.D.is0()) return false
  return dleqVerify(Xi, clearedR(e), p.D, p.proof)
}

/** Batch form of verifyPartial: one D per envelope and the batched DLEQ proof holds. Returns false on any failure; does not throw. */
export function verifyBatchPartial (ks: KeySet, es: Envelope[], p: BatchPartial, Hs: Point[] = es.map(clearedR)): boolean {
  if (!Number.isSafeInteger(p.index) || p.index < 1 || p.index > ks.n) return false
  const Xi = ks.wrap.verifyingShares[p.index - 1]
  if (Xi === undefined || p.D.length !== es.length) return false
  for (const D of p.D) if (D.is0()) return false
  return dleqBatchVerify(Xi, Hs, p.D, p.proof)
}

/**
 * Opens an envelope from ≥ k partials. Returns the 32-byte data key (owned by the caller, who
 * zeroes it after use). Throws BadInputError (fewer than k partials, duplicate or out-of-range
 * indices) or VerificationError (with `blame` = nodes whose partial failed; fewer than k valid, or
 * the envelope itself does not open with verified partials).
 */
export function combine (ks: KeySet, e: Envelope, partials: Partial[], opts: CombineOptions = {}): Uint8Array {
  checkIndices(ks, partials, 'partials')
  assertLabel(ks, e)
  const k = ks.threshold
  const combineSet = (ps: Partial[]): Uint8Array | null => {
    const set = ps.slice(0, k)
    const Z = combineZ(set.map(p => p.D), coefficients(set.map(p => p.index)))
    return tryOpen(ks, e, Z)
  }
  if (opts.strict !== true) {
    const key = combineSet(partials)
    if (key !== null) return key
  }
  const good: Partial[] = []
  const blamed: number[] = []
  for (const p of partials) {
    if (verifyPartial(ks, e, p)) good.push(p)
    else blamed.push(p.index)
  }
  blamed.sort((a, b) => a - b)
  if (good.length < k) throw new VerificationError(`only ${good.length} of the ${k} needed partials verify; bad nodes: ${blamed.join(', ')}`, blamed)
  const key = combineSet(good)
  if (key === null) throw new VerificationError('the envelope does not open with verified partials: its ciphertext is invalid', blamed)
  if (blamed.length > 0) opts.onBlame?.(blamed)
  return key
}

/**
 * Opens m envelopes from ≥ k batch partials (each with one D per envelope, in order). Returns the
 * m data keys (owned by the caller). Throws like `combine`; a VerificationError for an envelope
 * that does not open with verified partials names the envelope's position.
 */
export function combineBatch (ks: KeySet, es: Envelope[], partials: BatchPartial[], opts: CombineOptions = {}): Uint8Array[] {
  if (!Array.isArray(es) || es.length === 0) throw new BadInputError('envelopes', 'expected a non-empty list')
  checkIndices(ks, partials, 'partials')
  for (const e of es) assertLabel(ks, e)
  const k = ks.threshold
  const combineSet = (ps: BatchPartial[]): Array<Uint8Array | null> => {
    const set = ps.slice(0, k)
    const mu = coefficients(set.map(p => p.index))
    return es.map((e, j) => {
      const Ds = set.map(p => p.D[j])
      if (Ds.some(D => D === undefined)) return null
      return tryOpen(ks, e, combineZ(Ds as Point[], mu))
    })
  }
  const wipe = (keys: Array<Uint8Array | null>): void => { for (const key of keys) key?.fill(0) }
  if (opts.strict !== true) {
    const keys = combineSet(partials)
    if (keys.every(key => key !== null)) return keys as Uint8Array[]
    wipe(keys)
  }
  const Hs = es.map(clearedR)
  const good: BatchPartial[] = []
  const blamed: number[] = []
  for (const p of partials) {
    if (verifyBatchPartial(ks, es, p, Hs)) good.push(p)
    else blamed.push(p.index)
  }
  blamed.sort((a, b) => a - b)
  if (good.length < k) throw new VerificationError(`only ${good.length} of the ${k} needed partials verify; bad nodes: ${blamed.join(', ')}`, blamed)
  const keys = combineSet(good)
  const bad = keys.findIndex(key => key === null)
  if (bad >= 0) {
    wipe(keys)
    throw new VerificationError(`envelope ${bad} does not open with verified partials: its ciphertext is invalid`, blamed)
  }
  if (blamed.length > 0) opts.onBlame?.(blamed)
  return keys as Uint8Array[]
}
