/**
 * Known-answer vectors for the DKG packages (docs/PROTOCOL.md §4.2).
 * Every participant's randomness comes from a fixed-seed SHA-512 counter DRBG (`drbg`), fed to
 * the test-only `dkgStartWithRng`, so round-1/round-2 bytes, the (secret) state encoding, the
 * final shares and the group key are all reproducible. Negative cases must be rejected with the
 * stated error code and blame.
 */
import { sha512 } from '@noble/hashes/sha2.js'
import { dkgFinish, dkgRound2, dkgStartWithRng, encodeDkgRound1, encodeDkgState, transcriptDigests } from '../../../protocol/dkg.ts'
import type { DkgRound1Package, DkgState } from '../../../protocol/dkg.ts'
import { concat, toHex, u32, utf8 } from '../../../protocol/bytes.ts'
import { encodePoint, encodeScalar, mod } from '../../../protocol/group.ts'
import type { GroupPublicKey, KeyShare } from '../../../protocol/keyset.ts'

/** Deterministic byte source: SHA-512(seed ‖ u32 counter) blocks. Test vectors only. */
export function drbg (seed: string): (len?: number) => Uint8Array<ArrayBuffer> {
  let ctr = 0
  const s = utf8(seed)
  return (len = 32) => {
    const out = new Uint8Array(len)
    for (let o = 0; o < len; o += 64) out.set(sha512(concat(s, u32(ctr++))).subarray(0, Math.min(64, len - o)), o)
    return out
  }
}

export interface SeededDkg {
  states: DkgState[]
  stateBytes: Uint8Array[]
  round1s: DkgRound1Package[]
  round2: Array<Map<number, Uint8Array>>
  inbox: Array<Map<number, Uint8Array>>
  shares: KeyShare[]
  publicKey: GroupPublicKey
}

/** Runs a complete DKG with per-node seeds `${seed}/node/${i}`. */
export function seededDkg (k: number, n: number, seed: string): SeededDkg {
  const states: DkgState[] = []
  const round1s: DkgRound1Package[] = []
  for (let i = 1; i <= n; i++) { const s = dkgStartWithRng(i, k, n, drbg(`${seed}/node/${i}`)); states.push(s.state); round1s.push(s.round1) }
  const stateBytes = states.map(encodeDkgState)
  const round2 = states.map(s => dkgRound2(s, round1s))
  const inbox = states.map(() => new Map<number, Uint8Array>())
  round2.forEach((m, i) => { for (const [to, pkg] of m) inbox[to - 1]!.set(i + 1, pkg) })
  const outs = states.map((s, i) => dkgFinish(s, round1s, inbox[i]!))
  return { states, stateBytes, round1s, round2, inbox, shares: outs.map(o => o.share), publicKey: outs[0]!.publicKey }
}

const IDENTITY_ENC = new Uint8Array(32); IDENTITY_ENC[0] = 1

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = []
  for (const [k, n] of [[2, 3], [3, 5]] as const) {
    const seed = `keymesh/v1 dkg vector ${k}-of-${n}`
    const d = seededDkg(k, n, seed)
    cases.push({
      name: `${k}-of-${n} full run`,
      valid: true,
      seed,
      threshold: k,
      n,
      round1: d.round1s.map(encodeDkgRound1).map(toHex),
      state: d.stateBytes.map(toHex),
      transcriptDigests: transcriptDigests(d.round1s).map(toHex),
      // round2[i][j]: package from node i+1 to node j (j ≠ i+1), ascending j
      round2: d.round2.map(m => [...m.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => toHex(v))),
      shares: d.shares.map(s => toHex(encodeScalar(s.scalar))),
      commitments: d.publicKey.commitments.map(p => toHex(encodePoint(p))),
      verifyingShares: d.publicKey.verifyingShares.map(p => toHex(encodePoint(p)))
    })
  }
  // Negative cases on the 2-of-3 run.
  const seed = 'keymesh/v1 dkg vector 2-of-3'
  const d = seededDkg(2, 3, seed)
  const r1 = d.round1s.map(encodeDkgRound1)
  const badPok2 = new Uint8Array(r1[2]!); badPok2[badPok2.length - 32] = badPok2[badPok2.length - 32]! ^ 1 // flips a byte of z
  const share = d.inbox[0]!.get(2)!
  const badShare = new Uint8Array(share)
  let v = 0n
  for (let i = 38; i >= 7; i--) v = (v << 8n) | BigInt(badShare[i]!)
  badShare.set(encodeScalar(mod(v + 1n)), 7)
  cases.push(
    { name: 'proof of knowledge for another key (z altered)', valid: false, seed, threshold: 2, n: 3, node: 1, replaceRound1: { index: 3, hex: toHex(badPok2) }, error: 'VERIFICATION_FAILED', blame: [3] },
    { name: 'dealer 2 sends node 1 a wrong share', valid: false, seed, threshold: 2, n: 3, node: 1, replaceRound2: { from: 2, hex: toHex(badShare) }, error: 'VERIFICATION_FAILED', blame: [2] },
    { name: 'round-2 package addressed to another node', valid: false, seed, threshold: 2, n: 3, node: 1, replaceRound2: { from: 2, hex: toHex(d.inbox[2]!.get(2)!) }, error: 'VERIFICATION_FAILED', blame: [2] },
    { name: 'round-1 package truncated', valid: false, decodeRound1: toHex(r1[0]!.subarray(0, r1[0]!.length - 1)), error: 'BAD_INPUT' },
    { name: 'round-1 package with identity commitment', valid: false, decodeRound1: toHex(concat(r1[0]!.subarray(0, 7), IDENTITY_ENC, r1[0]!.subarray(39))), error: 'BAD_INPUT' },
    { name: 'round-1 package version 2', valid: false, decodeRound1: toHex(concat(r1[0]!.subarray(0, 4), new Uint8Array([2]), r1[0]!.subarray(5))), error: 'UNSUPPORTED_VERSION' }
  )
  return { format: 'dkg', version: 1, description: 'DKG round-1/round-2 packages, secret state encoding, transcript digests and outputs from fixed seeds (docs/PROTOCOL.md §4.2)', cases }
}
