/**
 * Known-answer vectors for resharing (docs/PROTOCOL.md §10.2) and, in the same file,
 * the in-process helpers the lifecycle tests use: a seeded trusted dealer for an old key and
 * whole-cluster simulations of reshare and refresh (every party in one process).
 *
 * Old keys come from a fixed-seed trusted dealer (the arithmetic after the DKG is the same); each
 * dealer's randomness from `drbg(seed/dealer/i)` fed to the test-only `reshareDealWithRng`.
 */
import { drbg } from './dkg.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { BASE, encodePoint, encodeScalar, mod } from '../../../protocol/group.ts'
import type { Point, Scalar } from '../../../protocol/group.ts'
import type { GroupPublicKey, KeyShare } from '../../../protocol/keyset.ts'
import type { Rng } from '../../../protocol/dkg.ts'
import { encodeReshareDealing, reshareDealWithRng, reshareFinish, scalarFrom } from '../../../protocol/reshare.ts'
import { refreshDealWithRng, refreshFinish } from '../../../protocol/refresh.ts'

export { drbg }

/** A k-of-n key from a trusted dealer (tests only): public key, shares 1..n, the secret. */
export interface DealtKey { pub: GroupPublicKey; shares: KeyShare[]; secret: Scalar }

/** Deals a k-of-n key with Feldman commitments from `rng` (CSPRNG when undefined). */
export function dealKey (k: number, n: number, rng?: Rng): DealtKey {
  const coeffs = Array.from({ length: k }, () => scalarFrom(rng))
  const shares: KeyShare[] = []
  for (let i = 1; i <= n; i++) {
    let y = 0n
    for (let j = k - 1; j >= 0; j--) y = mod(y * BigInt(i) + (coeffs[j] as Scalar))
    shares.push({ index: i, scalar: y })
  }
  const commitments: Point[] = coeffs.map(c => BASE.multiply(c))
  return { pub: { commitments, verifyingShares: shares.map(s => BASE.multiply(s.scalar)) }, shares, secret: coeffs[0] as Scalar }
}

/** Interpolates the secret at 0 from shares (any ≥ k of one polynomial). */
export function interpolate (shares: KeyShare[]): Scalar {
  const idx = shares.map(s => s.index)
  let acc = 0n
  for (const s of shares) {
    let num = 1n
    let den = 1n
    for (const j of idx) { if (j === s.index) continue; num = mod(num * BigInt(j)); den = mod(den * BigInt(j - s.index)) }
    acc = mod(acc + s.scalar * num * modInv(den))
  }
  return acc
}

function modInv (a: bigint): bigint {
  // Fermat: a^(L−2) mod L (tests only).
  const L = 2n ** 252n + 27742317777372353535851937790883648493n
  let r = 1n; let b = mod(a); let e = L - 2n
  while (e > 0n) { if ((e & 1n) === 1n) r = (r * b) % L; b = (b * b) % L; e >>= 1n }
  return r
}

export interface ReshareRun {
  dealings: Map<number, { commitment: Point[]; subShares: Map<number, Uint8Array>; encoded: Uint8Array }>
  shares: KeyShare[]
  publicKey: GroupPublicKey
}

/**
 * Runs a whole reshare in one process: every dealer in `dealers` deals, every new member 1..n2
 * finishes with `qualified` (default: all dealers). `tamper` may replace dealings/sub-shares in
 * flight. Throws whatever reshareFinish throws.
 */
export function simulateReshare (old: { pub: GroupPublicKey, shares: KeyShare[] }, dealers: number[], k2: number, n2: number, opts: {
  seed?: string
  qualified?: number[]
  tamper?: (dealer: number, d: { commitment: Point[]; subShares: Map<number, Uint8Array> }) => void
} = {}): ReshareRun {
  const dealings: ReshareRun['dealings'] = new Map()
  for (const i of dealers) {
    const share = old.shares.find(s => s.index === i) as KeyShare
    const d = reshareDealWithRng(share, old.pub, dealers, k2, n2, opts.seed === undefined ? undefined : drbg(`${opts.seed}/dealer/${i}`))
    const encoded = encodeReshareDealing(d.dealing)
    const entry = { commitment: d.commitment, subShares: d.subShares, encoded }
    opts.tamper?.(i, entry)
    dealings.set(i, entry)
  }
  const Q = opts.qualified ?? dealers
  const shares: KeyShare[] = []
  let publicKey: GroupPublicKey | undefined
  for (let j = 1; j <= n2; j++) {
    const commitments = new Map<number, Point[]>()
    const subs = new Map<number, Uint8Array>()
    for (const [i, d] of dealings) { commitments.set(i, d.commitment); subs.set(i, d.subShares.get(j) as Uint8Array) }
    const out = reshareFinish(j, old.pub, Q, commitments, subs, k2, n2)
    shares.push(out.share)
    publicKey ??= out.publicKey
  }
  return { dealings, shares, publicKey: publicKey as GroupPublicKey }
}

/** Runs a whole refresh in one process (every holder deals and finishes with `dealers`). */
export function simulateRefresh (cur: { pub: GroupPublicKey, shares: KeyShare[] }, dealers: number[], seed?: string): { shares: KeyShare[]; publicKey: GroupPublicKey; commitments: Map<number, Point[]>; subShares: Map<number, Map<number, Uint8Array>> } {
  const commitments = new Map<number, Point[]>()
  const subShares = new Map<number, Map<number, Uint8Array>>()
  for (const i of dealers) {
    const d = refreshDealWithRng(cur.shares.find(s => s.index === i) as KeyShare, cur.pub, seed === undefined ? undefined : drbg(`${seed}/dealer/${i}`))
    commitments.set(i, d.commitment)
    subShares.set(i, d.subShares)
  }
  const shares: KeyShare[] = []
  let publicKey: GroupPublicKey | undefined
  for (const s of cur.shares) {
    const mine = new Map<number, Uint8Array>()
    for (const [i, m] of subShares) mine.set(i, m.get(s.index) as Uint8Array)
    const out = refreshFinish(s, cur.pub, dealers, commitments, mine)
    shares.push(out.share)
    publicKey ??= out.publicKey
  }
  return { shares, publicKey: publicKey as GroupPublicKey, commitments, subShares }
}

const hexPts = (ps: Point[]): string[] => ps.map(p => toHex(encodePoint(p)))

/** One vector case: fixed old key and dealer seeds; all bytes of the run. */
export function reshareCase (k: number, n: number, dealers: number[], k2: number, n2: number): Record<string, unknown> {
  const seed = `keymesh/v1 reshare vector ${k}-of-${n} to ${k2}-of-${n2}`
  const old = dealKey(k, n, drbg(`${seed}/old`))
  const run = simulateReshare(old, dealers, k2, n2, { seed })
  return {
    name: `${k}-of-${n} → ${k2}-of-${n2}, dealers ${dealers.join(',')}`,
    valid: true,
    seed,
    threshold: k,
    n,
    dealers,
    newThreshold: k2,
    newN: n2,
    oldShares: old.shares.map(s => toHex(encodeScalar(s.scalar))),
    oldCommitments: hexPts(old.pub.commitments),
    dealings: dealers.map(i => toHex(run.dealings.get(i)!.encoded)),
    // subShares[d][j-1]: package from dealers[d] to new member j
    subShares: dealers.map(i => [...run.dealings.get(i)!.subShares.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => toHex(v))),
    newShares: run.shares.map(s => toHex(encodeScalar(s.scalar))),
    newCommitments: hexPts(run.publicKey.commitments),
    newVerifyingShares: hexPts(run.publicKey.verifyingShares)
  }
}

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = [
    reshareCase(2, 3, [1, 3], 3, 5),
    reshareCase(3, 5, [2, 3, 5], 3, 5)
  ]
  const base = reshareCase(3, 5, [2, 3, 5], 3, 5) as { dealings: string[], subShares: string[][] }
  // Negative: dealing of dealer 3 whose C_0 is not X_3 (the commitment of dealer 2 relabelled).
  const d2 = base.dealings[0]!
  const relabelled = d2.slice(0, 10) + '03' + d2.slice(12)
  cases.push({ name: 'dealing that does not deal its verifying share is blamed', valid: false, of: '3-of-5 → 3-of-5, dealers 2,3,5', replaceDealing: { dealer: 3, hex: relabelled }, member: 1, error: 'VERIFICATION_FAILED', blame: [3] })
  // Negative: sub-share from dealer 5 to member 2 with the scalar's low byte flipped.
  const s = base.subShares[2]![1]!
  const flipped = s.slice(0, 14) + (parseInt(s.slice(14, 16), 16) ^ 1).toString(16).padStart(2, '0') + s.slice(16)
  cases.push({ name: 'wrong sub-share is blamed on its dealer', valid: false, of: '3-of-5 → 3-of-5, dealers 2,3,5', replaceSubShare: { dealer: 5, hex: flipped }, member: 2, error: 'VERIFICATION_FAILED', blame: [5] })
  // Negative: misaddressed sub-share (to member 3 given to member 2).
  cases.push({ name: 'misaddressed sub-share is blamed', valid: false, of: '3-of-5 → 3-of-5, dealers 2,3,5', replaceSubShare: { dealer: 2, hex: base.subShares[0]![2]! }, member: 2, error: 'VERIFICATION_FAILED', blame: [2] })
  // Decoding negatives.
  cases.push({ name: 'dealing with bad magic', valid: false, decodeDealing: '4b4d5258' + d2.slice(8), error: 'BAD_INPUT' })
  cases.push({ name: 'dealing with version 2', valid: false, decodeDealing: d2.slice(0, 8) + '02' + d2.slice(10), error: 'UNSUPPORTED_VERSION' })
  cases.push({ name: 'dealing with trailing byte', valid: false, decodeDealing: d2 + '00', error: 'BAD_INPUT' })
  const ident = '01' + '00'.repeat(31)
  cases.push({ name: 'dealing committing to the identity', valid: false, decodeDealing: d2.slice(0, 16 + 64) + ident + d2.slice(16 + 128), error: 'BAD_INPUT' })
  cases.push({ name: 'sub-share with non-canonical scalar', valid: false, decodeSubShare: s.slice(0, 14) + 'ff'.repeat(32), error: 'BAD_INPUT' })
  return {
    format: 'reshare',
    version: 1,
    description: 'Resharing to a new membership/threshold with the same group key (docs/PROTOCOL.md §10.2): KMRD dealings, KMRS sub-share packages, new shares and public key, from fixed seeds. Negative cases must fail with the stated error code and blame.',
    cases
  }
}
