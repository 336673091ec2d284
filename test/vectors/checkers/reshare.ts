/** Checks one reshare known-answer case (see generators/reshare.ts). Throws on mismatch. */
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { VerificationError, errorCode } from '../../../protocol/errors.ts'
import { BASE, decodePoint, decodeScalar, encodePoint, encodeScalar } from '../../../protocol/group.ts'
import type { Point } from '../../../protocol/group.ts'
import { checkVerifyingShares } from '../../../protocol/keyset.ts'
import type { GroupPublicKey } from '../../../protocol/keyset.ts'
import { decodeReshareDealing, decodeReshareSubShare, encodeReshareDealing, reshareFinish } from '../../../protocol/reshare.ts'
import { reshareCase } from '../generators/reshare.ts'

interface ReshareVector {
  name: string
  valid: boolean
  seed?: string
  threshold?: number
  n?: number
  dealers?: number[]
  newThreshold?: number
  newN?: number
  oldShares?: string[]
  oldCommitments?: string[]
  dealings?: string[]
  subShares?: string[][]
  newShares?: string[]
  newCommitments?: string[]
  newVerifyingShares?: string[]
  of?: string
  replaceDealing?: { dealer: number, hex: string }
  replaceSubShare?: { dealer: number, hex: string }
  member?: number
  decodeDealing?: string
  decodeSubShare?: string
  error?: string
  blame?: number[]
}
interface VectorFile { cases: ReshareVector[] }

function eq (name: string, what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name}: ${what} mismatch`)
}

function oldPubOf (c: ReshareVector): GroupPublicKey {
  const commitments = c.oldCommitments!.map((h, i) => decodePoint(`c${i}`, fromHex('c', h, 32)))
  const verifyingShares = c.oldShares!.map(h => BASE.multiply(decodeScalar('s', fromHex('s', h, 32))))
  const pub = { commitments, verifyingShares }
  checkVerifyingShares(pub, 'oldPub')
  return pub
}

/** Finishes member `j` from the vector's bytes (decoding every dealing and package). */
function finish (c: ReshareVector, j: number, override?: { dealing?: { dealer: number, hex: string }, sub?: { dealer: number, hex: string } }): ReturnType<typeof reshareFinish> {
  const pub = oldPubOf(c)
  const commitments = new Map<number, Point[]>()
  const subs = new Map<number, Uint8Array>()
  c.dealers!.forEach((i, d) => {
    const hex = override?.dealing?.dealer === i ? override.dealing.hex : c.dealings![d]!
    // odd members use the fast path (C_0 compared with X_dealer), even members strict decoding
    const dec = j % 2 === 1 ? decodeReshareDealing(fromHex('dealing', hex), pub) : decodeReshareDealing(fromHex('dealing', hex))
    commitments.set(i, dec.commitment)
    subs.set(i, fromHex('sub', override?.sub?.dealer === i ? override.sub.hex : c.subShares![d]![j - 1]!))
  })
  return reshareFinish(j, pub, c.dealers!, commitments, subs, c.newThreshold!, c.newN!)
}

export function check (c: ReshareVector, file: VectorFile): void {
  if (c.decodeDealing !== undefined || c.decodeSubShare !== undefined) {
    let got: unknown
    try {
      if (c.decodeDealing !== undefined) decodeReshareDealing(fromHex('d', c.decodeDealing))
      else decodeReshareSubShare(fromHex('s', c.decodeSubShare!))
    } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    eq(c.name, 'error code', errorCode(got), c.error)
    return
  }
  if (c.valid) {
    // Recompute from the seeds: every byte must match.
    const again = reshareCase(c.threshold!, c.n!, c.dealers!, c.newThreshold!, c.newN!)
    for (const key of ['oldShares', 'oldCommitments', 'dealings', 'subShares', 'newShares', 'newCommitments', 'newVerifyingShares'] as const) {
      eq(c.name, key, again[key], c[key])
    }
    // And from the bytes alone: decode, verify, finish every member.
    for (const h of c.dealings!) eq(c.name, 'dealing re-encoding', toHex(encodeReshareDealing(decodeReshareDealing(fromHex('d', h)))), h)
    for (let j = 1; j <= c.newN!; j++) {
      const out = finish(c, j)
      eq(c.name, `new share ${j}`, toHex(encodeScalar(out.share.scalar)), c.newShares![j - 1])
      eq(c.name, 'new commitments', out.publicKey.commitments.map(p => toHex(encodePoint(p))), c.newCommitments)
      eq(c.name, 'group key unchanged', toHex(encodePoint(out.publicKey.commitments[0]!)), c.oldCommitments![0])
    }
    return
  }
  const base = file.cases.find(x => x.valid && x.name === c.of)
  if (base === undefined) throw new Error(`${c.name}: base case "${c.of}" missing`)
  let got: unknown
  try { finish(base, c.member!, { dealing: c.replaceDealing, sub: c.replaceSubShare }) } catch (e) { got = e }
  if (got === undefined) throw new Error(`${c.name}: accepted`)
  eq(c.name, 'error code', errorCode(got), c.error)
  if (c.blame !== undefined) eq(c.name, 'blame', got instanceof VerificationError ? got.blame : null, c.blame)
}
