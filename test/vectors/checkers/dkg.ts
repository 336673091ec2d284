/** Checks one DKG known-answer case (see generators/dkg.ts). Throws on mismatch. */
import { decodeDkgRound1, decodeDkgState, dkgFinish, dkgRound2, encodeDkgRound1, encodeDkgState, transcriptDigests } from '../../../protocol/dkg.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { VerificationError, errorCode } from '../../../protocol/errors.ts'
import { encodePoint, encodeScalar } from '../../../protocol/group.ts'
import { seededDkg } from '../generators/dkg.ts'

interface DkgCase {
  name: string
  valid: boolean
  seed?: string
  threshold?: number
  n?: number
  round1?: string[]
  state?: string[]
  transcriptDigests?: string[]
  round2?: string[][]
  shares?: string[]
  commitments?: string[]
  verifyingShares?: string[]
  node?: number
  replaceRound1?: { index: number, hex: string }
  replaceRound2?: { from: number, hex: string }
  decodeRound1?: string
  error?: string
  blame?: number[]
}

function eq (name: string, what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name}: ${what} mismatch`)
}

export function check (c: DkgCase): void {
  if (c.decodeRound1 !== undefined) {
    let got: unknown
    try { decodeDkgRound1(fromHex('round1', c.decodeRound1)) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    eq(c.name, 'error code', errorCode(got), c.error)
    return
  }
  const d = seededDkg(c.threshold as number, c.n as number, c.seed as string)
  if (c.valid) {
    eq(c.name, 'round1', d.round1s.map(encodeDkgRound1).map(toHex), c.round1)
    eq(c.name, 'state', d.stateBytes.map(toHex), c.state)
    eq(c.name, 'transcript digests', transcriptDigests(c.round1!.map(h => decodeDkgRound1(fromHex('r1', h)))).map(toHex), c.transcriptDigests)
    // recompute round 2 from the decoded state (resume path) and the decoded round-1 packages
    const round1s = c.round1!.map(h => decodeDkgRound1(fromHex('r1', h)))
    const states = c.state!.map(h => decodeDkgState(fromHex('state', h)))
    eq(c.name, 'state re-encoding', states.map(encodeDkgState).map(toHex), c.state)
    const r2 = states.map(s => [...dkgRound2(s, round1s).entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => toHex(v)))
    eq(c.name, 'round2', r2, c.round2)
    const n = c.n as number
    for (let i = 1; i <= n; i++) {
      const inbox = new Map<number, Uint8Array>()
      for (let j = 1; j <= n; j++) {
        if (j === i) continue
        inbox.set(j, fromHex('r2', c.round2![j - 1]![i < j ? i - 1 : i - 2]!))
      }
      const out = dkgFinish(states[i - 1]!, round1s, inbox)
      eq(c.name, `share ${i}`, toHex(encodeScalar(out.share.scalar)), c.shares![i - 1])
      eq(c.name, 'commitments', out.publicKey.commitments.map(p => toHex(encodePoint(p))), c.commitments)
      eq(c.name, 'verifying shares', out.publicKey.verifyingShares.map(p => toHex(encodePoint(p))), c.verifyingShares)
    }
    return
  }
  const me = c.node as number
  const round1s = [...d.round1s]
  if (c.replaceRound1 !== undefined) round1s[c.replaceRound1.index - 1] = decodeDkgRound1(fromHex('r1', c.replaceRound1.hex))
  const inbox = new Map(d.inbox[me - 1]!)
  if (c.replaceRound2 !== undefined) inbox.set(c.replaceRound2.from, fromHex('r2', c.replaceRound2.hex))
  let got: unknown
  try { dkgFinish(d.states[me - 1]!, round1s, inbox) } catch (e) { got = e }
  if (got === undefined) throw new Error(`${c.name}: accepted`)
  eq(c.name, 'error code', errorCode(got), c.error)
  if (c.blame !== undefined) eq(c.name, 'blame', got instanceof VerificationError ? got.blame : undefined, c.blame)
}
