/**
 * Test fixture: a trusted dealer that builds a KeySet and wrap-key shares with a plain Shamir
 * polynomial (Feldman commitments), deterministic from a seed. Tests only — real clusters use DKG.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { concat, toHex, u32, utf8 } from '../../protocol/bytes.ts'
import { BASE, mod } from '../../protocol/group.ts'
import type { Point, Scalar } from '../../protocol/group.ts'
import type { GroupPublicKey, KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { Label } from '../../protocol/label.ts'

/** Deterministic byte stream: SHA-256(seed ‖ u32 counter) blocks. */
export function seededRng (seed: string): (n: number) => Uint8Array {
  let ctr = 0
  return (n: number) => {
    const out = new Uint8Array(n)
    for (let o = 0; o < n; o += 32) out.set(sha256(concat(utf8(seed), u32(ctr++))).subarray(0, Math.min(32, n - o)), o)
    return out
  }
}

function scalar (rng: (n: number) => Uint8Array): Scalar {
  const b = rng(64)
  let v = 0n
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
  return mod(v) === 0n ? 1n : mod(v)
}

function deal (k: number, n: number, rng: (n: number) => Uint8Array): { pk: GroupPublicKey, shares: KeyShare[], secret: Scalar } {
  const coeffs = Array.from({ length: k }, () => scalar(rng))
  const shares: KeyShare[] = []
  for (let i = 1; i <= n; i++) {
    let y = 0n
    for (let j = k - 1; j >= 0; j--) y = mod(y * BigInt(i) + (coeffs[j] as Scalar))
    shares.push({ index: i, scalar: y })
  }
  const commitments: Point[] = coeffs.map(c => BASE.multiply(c))
  return { pk: { commitments, verifyingShares: shares.map(s => BASE.multiply(s.scalar)) }, shares, secret: coeffs[0] as Scalar }
}

export interface Dealt { ks: KeySet; shares: KeyShare[]; secret: Scalar }

/** A k-of-n key set (wrap and sign keys) with the wrap-key shares. */
export function dealKeySet (k: number, n: number, seed = 'keymesh-test-dealer'): Dealt {
  const rng = seededRng(seed)
  const clusterId = toHex(sha256(utf8(seed)).subarray(0, 16))
  const wrap = deal(k, n, rng)
  const sign = deal(k, n, rng)
  return { ks: { version: 1, clusterId, epoch: 1, threshold: k, n, wrap: wrap.pk, sign: sign.pk }, shares: wrap.shares, secret: wrap.secret }
}

/** A valid label for a key set. */
export function labelFor (ks: KeySet, over: Partial<Label> = {}): Label {
  return { clusterId: ks.clusterId, epoch: ks.epoch, purpose: 'release-key', app: 'billing-api', env: 'prod', release: 'v1.2.3+build.7', ...over }
}
