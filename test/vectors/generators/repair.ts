/**
 * Known-answer vectors for share repair (docs/PROTOCOL.md §10.6), and the in-process helper the
 * repair tests use: a whole repair (every helper splits and sums, the target finishes) in one
 * process.
 *
 * Keys come from the fixed-seed trusted dealer of generators/reshare.ts (same arithmetic as a DKG
 * output); each helper's split randomness from `drbg(seed/helper/i)` fed to the test-only
 * `repairSplitWithRng`.
 */
import { toHex } from '../../../protocol/bytes.ts'
import { encodePoint, encodeScalar } from '../../../protocol/group.ts'
import type { GroupPublicKey, KeyShare } from '../../../protocol/keyset.ts'
import { repairCoefficient, repairFinish, repairSplitWithRng, repairSum } from '../../../protocol/repair.ts'
import { dealKey, drbg } from './reshare.ts'

export interface RepairRun {
  /** pieces.get(i).get(j): the piece helper i sends to helper j. */
  pieces: Map<number, Map<number, Uint8Array>>
  /** sums.get(j): σ_j sent by helper j to the target. */
  sums: Map<number, Uint8Array>
  /** The repaired share. */
  share: KeyShare
}

/**
 * Runs a whole repair of `target` from `helpers` in one process. `seed` makes the splits
 * deterministic (CSPRNG when undefined). `tamperPiece`/`tamperSum` may replace messages in flight.
 * Throws whatever repairSum / repairFinish throw.
 */
export function simulateRepair (key: { pub: GroupPublicKey, shares: KeyShare[] }, helpers: number[], target: number, opts: {
  seed?: string
  tamperPiece?: (from: number, to: number, piece: Uint8Array) => Uint8Array
  tamperSum?: (from: number, sum: Uint8Array) => Uint8Array
} = {}): RepairRun {
  const pieces = new Map<number, Map<number, Uint8Array>>()
  for (const i of helpers) {
    const share = key.shares.find(s => s.index === i) as KeyShare
    pieces.set(i, repairSplitWithRng(share, helpers, target, opts.seed === undefined ? undefined : drbg(`${opts.seed}/helper/${i}`)))
  }
  const sums = new Map<number, Uint8Array>()
  for (const j of helpers) {
    const inbox = new Map<number, Uint8Array>()
    for (const i of helpers) {
      const p = pieces.get(i)!.get(j)!
      inbox.set(i, opts.tamperPiece === undefined ? p : opts.tamperPiece(i, j, p))
    }
    const s = repairSum(j, helpers, target, inbox)
    sums.set(j, opts.tamperSum === undefined ? s : opts.tamperSum(j, s))
  }
  return { pieces, sums, share: repairFinish(target, key.pub, helpers, sums) }
}

/** The fixed seed of one vector case. */
export function repairSeed (k: number, n: number, helpers: number[], target: number): string {
  return `keymesh/v1 repair vector ${k}-of-${n} helpers ${helpers.join(',')} target ${target}`
}

/** One vector case: fixed key and split seeds; every byte of the run. */
export function repairCase (k: number, n: number, helpers: number[], target: number): Record<string, unknown> {
  const seed = repairSeed(k, n, helpers, target)
  const key = dealKey(k, n, drbg(`${seed}/key`))
  const run = simulateRepair(key, helpers, target, { seed })
  if (run.share.scalar !== key.shares[target - 1]!.scalar) throw new Error('repair vector: repaired share differs from the dealt share')
  return {
    name: `${k}-of-${n}, helpers ${helpers.join(',')}, target ${target}`,
    valid: true,
    seed,
    threshold: k,
    n,
    helpers,
    target,
    commitments: key.pub.commitments.map(p => toHex(encodePoint(p))),
    // helperShares[a]: share of helpers[a]; coefficients[a]: λ_{helpers[a]}^H(target) (32 bytes LE)
    helperShares: helpers.map(i => toHex(encodeScalar(key.shares[i - 1]!.scalar))),
    coefficients: helpers.map(i => toHex(encodeScalar(repairCoefficient(helpers, i, target)))),
    // pieces[a][b]: KMRP from helpers[a] to helpers[b]
    pieces: helpers.map(i => helpers.map(j => toHex(run.pieces.get(i)!.get(j)!))),
    // sums[b]: KMRT from helpers[b] to the target
    sums: helpers.map(j => toHex(run.sums.get(j)!)),
    result: toHex(encodeScalar(run.share.scalar)),
    verifyingShare: toHex(encodePoint(key.pub.verifyingShares[target - 1]!))
  }
}

/** Flips the lowest bit of the scalar's first (least significant) byte in a 39-byte hex message. */
function flipScalar (hex: string): string {
  return hex.slice(0, 14) + (parseInt(hex.slice(14, 16), 16) ^ 1).toString(16).padStart(2, '0') + hex.slice(16)
}

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = [
    repairCase(2, 3, [1, 3], 2),
    repairCase(3, 5, [1, 2, 4], 5),
    repairCase(5, 9, [2, 3, 5, 8, 9], 1)
  ]
  const of = '3-of-5, helpers 1,2,4, target 5'
  const base = cases[1] as { pieces: string[][], sums: string[] }
  // Step 2 negatives (at helper `self`): replace the piece from `from`.
  cases.push({ name: 'piece addressed to another helper is blamed on its sender', valid: false, of, step: 'sum', self: 4, replace: { from: 1, hex: base.pieces[0]![1]! }, error: 'VERIFICATION_FAILED', blame: [1] })
  cases.push({ name: 'piece relabelled as from another sender is blamed', valid: false, of, step: 'sum', self: 2, replace: { from: 4, hex: base.pieces[0]![1]! }, error: 'VERIFICATION_FAILED', blame: [4] })
  const p = base.pieces[1]![0]!
  cases.push({ name: 'piece with sum magic KMRT', valid: false, of, step: 'sum', self: 1, replace: { from: 2, hex: '4b4d5254' + p.slice(8) }, error: 'VERIFICATION_FAILED', blame: [2] })
  cases.push({ name: 'piece with version 2', valid: false, of, step: 'sum', self: 1, replace: { from: 2, hex: p.slice(0, 8) + '02' + p.slice(10) }, error: 'VERIFICATION_FAILED', blame: [2] })
  cases.push({ name: 'piece with non-canonical scalar', valid: false, of, step: 'sum', self: 1, replace: { from: 2, hex: p.slice(0, 14) + 'ff'.repeat(32) }, error: 'VERIFICATION_FAILED', blame: [2] })
  cases.push({ name: 'piece with trailing byte', valid: false, of, step: 'sum', self: 1, replace: { from: 2, hex: p + '00' }, error: 'VERIFICATION_FAILED', blame: [2] })
  // Step 3 negatives (at the target).
  cases.push({ name: 'wrong sum is refused, blaming the whole helper set', valid: false, of, step: 'finish', replace: { from: 2, hex: flipScalar(base.sums[1]!) }, error: 'VERIFICATION_FAILED', blame: [1, 2, 4] })
  cases.push({ name: 'sum addressed to another target is blamed on its sender', valid: false, of, step: 'finish', replace: { from: 4, hex: base.sums[2]!.slice(0, 12) + '03' + base.sums[2]!.slice(14) }, error: 'VERIFICATION_FAILED', blame: [4] })
  cases.push({ name: 'sum with piece magic KMRP', valid: false, of, step: 'finish', replace: { from: 1, hex: '4b4d5250' + base.sums[0]!.slice(8) }, error: 'VERIFICATION_FAILED', blame: [1] })
  // Parameter negatives.
  cases.push({ name: 'target in the helper set', valid: false, of, step: 'finish', helpers: [1, 2, 4], target: 4, error: 'BAD_INPUT' })
  cases.push({ name: 'fewer helpers than the threshold', valid: false, of, step: 'finish', helpers: [1, 2], target: 5, error: 'BAD_INPUT' })
  cases.push({ name: 'duplicate helper', valid: false, of, step: 'finish', helpers: [1, 2, 2, 4], target: 5, error: 'BAD_INPUT' })
  return {
    format: 'repair',
    version: 1,
    description: 'Share repair (docs/PROTOCOL.md §10.6): Lagrange coefficients λ_i^H(r), KMRP pieces, KMRT sums and the repaired share, from fixed seeds (trusted-dealer key; split randomness drbg(seed/helper/i) consumed by scalarFrom in ascending recipient order). Negative cases must fail with the stated error code and blame.',
    cases
  }
}
