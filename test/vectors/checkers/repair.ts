/** Checks one share-repair known-answer case (see generators/repair.ts). Throws on mismatch. */
import { fromHex, toHex, utf8 } from '../../../protocol/bytes.ts'
import { VerificationError, errorCode } from '../../../protocol/errors.ts'
import { BASE, decodePoint, decodeScalar, encodePoint, encodeScalar, mod } from '../../../protocol/group.ts'
import type { GroupPublicKey } from '../../../protocol/keyset.ts'
import { checkVerifyingShares } from '../../../protocol/keyset.ts'
import { decodeSubShare, verifyingSharesOf } from '../../../protocol/reshare.ts'
import {
  REPAIR_MESSAGE_LEN, REPAIR_PIECE_MAGIC, REPAIR_SUM_MAGIC, REPAIR_VERSION, repairCoefficient, repairFinish, repairSum
} from '../../../protocol/repair.ts'
import { repairCase } from '../generators/repair.ts'

interface RepairVector {
  name: string
  valid: boolean
  seed?: string
  threshold?: number
  n?: number
  helpers?: number[]
  target?: number
  commitments?: string[]
  helperShares?: string[]
  coefficients?: string[]
  pieces?: string[][]
  sums?: string[]
  result?: string
  verifyingShare?: string
  of?: string
  step?: 'sum' | 'finish'
  self?: number
  replace?: { from: number, hex: string }
  error?: string
  blame?: number[]
}
interface VectorFile { cases: RepairVector[] }

function eq (name: string, what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name}: ${what} mismatch`)
}

/** The generation's public key from the vector's commitments alone. */
function pubOf (c: RepairVector): GroupPublicKey {
  const commitments = c.commitments!.map((h, i) => decodePoint(`c${i}`, fromHex('c', h, 32)))
  const pub = { commitments, verifyingShares: verifyingSharesOf(commitments, c.n!) }
  checkVerifyingShares(pub, 'pub')
  return pub
}

/** Step 2 at helper `self` from the vector's bytes (optionally one piece replaced). */
function sumAt (c: RepairVector, self: number, replace?: { from: number, hex: string }): Uint8Array {
  const b = c.helpers!.indexOf(self)
  const inbox = new Map<number, Uint8Array>()
  c.helpers!.forEach((i, a) => inbox.set(i, fromHex('piece', replace?.from === i ? replace.hex : c.pieces![a]![b]!)))
  return repairSum(self, c.helpers!, c.target!, inbox)
}

/** Step 3 at the target from the vector's bytes (optionally one sum replaced / other parameters). */
function finishAt (c: RepairVector, replace?: { from: number, hex: string }, helpers = c.helpers!, target = c.target!): ReturnType<typeof repairFinish> {
  const sums = new Map<number, Uint8Array>()
  c.helpers!.forEach((j, b) => sums.set(j, fromHex('sum', replace?.from === j ? replace.hex : c.sums![b]!)))
  return repairFinish(target, pubOf(c), helpers, sums)
}

export function check (c: RepairVector, file: VectorFile): void {
  if (c.valid) {
    // Recompute from the seed: every byte must match.
    const again = repairCase(c.threshold!, c.n!, c.helpers!, c.target!)
    for (const key of ['commitments', 'helperShares', 'coefficients', 'pieces', 'sums', 'result', 'verifyingShare'] as const) {
      eq(c.name, key, again[key], c[key])
    }
    // And from the bytes alone.
    const H = c.helpers!
    const r = c.target!
    const pub = pubOf(c)
    eq(c.name, 'verifying share', toHex(encodePoint(pub.verifyingShares[r - 1]!)), c.verifyingShare)
    H.forEach((i, a) => {
      const lambda = repairCoefficient(H, i, r)
      eq(c.name, `coefficient ${i}`, toHex(encodeScalar(lambda)), c.coefficients![a])
      const s = decodeScalar('share', fromHex('share', c.helperShares![a]!, 32))
      eq(c.name, `helper share ${i} on the key`, BASE.multiply(s).equals(pub.verifyingShares[i - 1]!), true)
      // The pieces of helper i: 39 bytes, KMRP, labelled i → j, summing to λ_i·s_i.
      let acc = 0n
      H.forEach((j, b) => {
        const bytes = fromHex('piece', c.pieces![a]![b]!, REPAIR_MESSAGE_LEN)
        const d = decodeSubShare('piece', utf8(REPAIR_PIECE_MAGIC), REPAIR_PIECE_MAGIC, REPAIR_VERSION, bytes)
        eq(c.name, `piece ${i}→${j} labels`, [d.from, d.to], [i, j])
        acc = mod(acc + d.share)
      })
      eq(c.name, `pieces of ${i} sum to λ·s`, toHex(encodeScalar(acc)), toHex(encodeScalar(mod(lambda * s))))
    })
    H.forEach((j, b) => {
      const sum = sumAt(c, j)
      eq(c.name, `sum of ${j}`, toHex(sum), c.sums![b])
      const d = decodeSubShare('sum', utf8(REPAIR_SUM_MAGIC), REPAIR_SUM_MAGIC, REPAIR_VERSION, sum)
      eq(c.name, `sum ${j} labels`, [d.from, d.to], [j, r])
    })
    const out = finishAt(c)
    eq(c.name, 'repaired index', out.index, r)
    eq(c.name, 'repaired share', toHex(encodeScalar(out.scalar)), c.result)
    return
  }
  const base = file.cases.find(x => x.valid && x.name === c.of)
  if (base === undefined) throw new Error(`${c.name}: base case "${c.of}" missing`)
  let got: unknown
  try {
    if (c.step === 'sum') sumAt(base, c.self!, c.replace)
    else finishAt(base, c.replace, c.helpers ?? base.helpers, c.target ?? base.target)
  } catch (e) { got = e }
  if (got === undefined) throw new Error(`${c.name}: accepted`)
  eq(c.name, 'error code', errorCode(got), c.error)
  if (c.blame !== undefined) eq(c.name, 'blame', got instanceof VerificationError ? got.blame : null, c.blame)
}
