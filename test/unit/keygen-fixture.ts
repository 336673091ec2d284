/**
 * Test fixtures: key sets made by a full in-memory DKG (the real code path) or, where speed
 * matters and the test is about something else, by a dealer polynomial (same shape, same checks).
 */
import { dkgFinish, dkgRound2, dkgStart } from '../../protocol/dkg.ts'
import type { DkgRound1Package, DkgState } from '../../protocol/dkg.ts'
import { BASE, randomScalar, mod } from '../../protocol/group.ts'
import type { Point } from '../../protocol/group.ts'
import { evalCommitment } from '../../protocol/keyset.ts'
import type { GroupPublicKey, KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { Manifest } from '../../protocol/manifest.ts'

export const CLUSTER = '00112233445566778899aabbccddeeff'

/** Runs one complete in-memory DKG; returns every node's share and the (agreed) public key. */
export function runDkg (k: number, n: number): { shares: KeyShare[], publicKey: GroupPublicKey } {
  const states: DkgState[] = []
  const round1s: DkgRound1Package[] = []
  for (let i = 1; i <= n; i++) { const s = dkgStart(i, k, n); states.push(s.state); round1s.push(s.round1) }
  const inbox = states.map(() => new Map<number, Uint8Array>())
  for (const s of states) for (const [to, pkg] of dkgRound2(s, round1s)) inbox[to - 1]!.set(s.index, pkg)
  const outs = states.map((s, i) => dkgFinish(s, round1s, inbox[i]!))
  return { shares: outs.map(o => o.share), publicKey: outs[0]!.publicKey }
}

/** A dealer-made threshold key (fast fixture). */
export function dealerKey (k: number, n: number): { shares: KeyShare[], publicKey: GroupPublicKey, secret: bigint } {
  const coeffs = Array.from({ length: k }, () => randomScalar())
  const commitments: Point[] = coeffs.map(a => BASE.multiply(a))
  const shares: KeyShare[] = []
  const verifyingShares: Point[] = []
  for (let i = 1; i <= n; i++) {
    let acc = 0n
    for (let j = k - 1; j >= 0; j--) acc = mod(acc * BigInt(i) + coeffs[j]!)
    shares.push({ index: i, scalar: acc })
    verifyingShares.push(evalCommitment(commitments, i))
  }
  return { shares, publicKey: { commitments, verifyingShares }, secret: coeffs[0]! }
}

export function makeKeySet (k: number, n: number, opts: { dkg?: boolean, epoch?: number } = {}): { ks: KeySet, wrapShares: KeyShare[], signShares: KeyShare[] } {
  const w = opts.dkg === true ? runDkg(k, n) : dealerKey(k, n)
  const s = opts.dkg === true ? runDkg(k, n) : dealerKey(k, n)
  const ks: KeySet = { version: 1, clusterId: CLUSTER, epoch: opts.epoch ?? 1, threshold: k, n, wrap: w.publicKey, sign: s.publicKey }
  return { ks, wrapShares: w.shares, signShares: s.shares }
}

/** A complete, valid manifest used by the manifest/JWS tests and vectors. */
export const MANIFEST: Manifest = {
  v: 1,
  type: 'keymesh.release-manifest',
  cluster: CLUSTER,
  epoch: 1,
  app: 'billing-api',
  release: 'v2.3.1',
  env: 'prod',
  artifact: { sha256: 'ab'.repeat(32), size: 123456789, name: 'billing-api-v2.3.1.tar.gz.kmx' },
  envelope: 'cd'.repeat(32),
  builder: '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
  createdAt: '2026-11-25T03:04:05.123Z',
  repository: 'https://git.example.com/acme/billing-api',
  commit: 'ef'.repeat(20)
}
