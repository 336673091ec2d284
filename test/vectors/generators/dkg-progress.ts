/**
 * Known-answer vectors for the DKG ceremony's own formats (docs/PROTOCOL.md):
 * the transcript-digest context (§6.2) with the digests it produces, and the progress record
 * "KMDP" (§6.4), built from a fixed-seed DKG (generators/dkg.ts `seededDkg`). Negative cases must
 * be rejected with the stated error code.
 */
import { encodeDkgProgress, transcriptContext, DkgPhase } from '../../../node/dkg-ceremony.ts'
import type { DkgProgress } from '../../../node/dkg-ceremony.ts'
import { encodeDkgRound1, transcriptDigests } from '../../../protocol/dkg.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { seededDkg } from './dkg.ts'

const CLUSTER = '5eed5eed5eed5eed5eed5eed5eed5eed'

interface Pair { index: number, wrap: string, sign: string }

function pairs (m: Map<number, { wrap: Uint8Array, sign: Uint8Array }>): Pair[] {
  return [...m].sort((a, b) => a[0] - b[0]).map(([index, v]) => ({ index, wrap: toHex(v.wrap), sign: toHex(v.sign) }))
}

function progressCase (name: string, p: DkgProgress): Record<string, unknown> {
  return {
    name,
    kind: 'progress',
    valid: true,
    session: p.session,
    phase: p.phase,
    wrapState: toHex(p.wrapState),
    signState: toHex(p.signState),
    round1: pairs(p.round1),
    round2: pairs(p.round2),
    detail: p.detail,
    encoded: toHex(encodeDkgProgress(p))
  }
}

/** Builds the vector file. Deterministic. */
export function generate (): Record<string, unknown> {
  const k = 2
  const n = 3
  const wrap = seededDkg(k, n, 'keymesh/vectors/dkg-progress/wrap')
  const sign = seededDkg(k, n, 'keymesh/vectors/dkg-progress/sign')
  const cases: Array<Record<string, unknown>> = []

  for (const purpose of ['wrap', 'sign'] as const) {
    const d = purpose === 'wrap' ? wrap : sign
    const context = transcriptContext(CLUSTER, 'e1-a0', purpose)
    cases.push({
      name: `transcript context and digests, ${purpose} key`,
      kind: 'context',
      valid: true,
      clusterId: CLUSTER,
      session: 'e1-a0',
      purpose,
      context: toHex(context),
      round1: d.round1s.map(p => toHex(encodeDkgRound1(p))),
      digests: transcriptDigests(d.round1s, context).map(toHex)
    })
  }

  // Node 1's record in each phase.
  const round1 = new Map<number, { wrap: Uint8Array, sign: Uint8Array }>()
  for (let i = 1; i <= n; i++) round1.set(i, { wrap: encodeDkgRound1(wrap.round1s[i - 1]!), sign: encodeDkgRound1(sign.round1s[i - 1]!) })
  const own = new Map([[1, round1.get(1)!]])
  const round2 = new Map<number, { wrap: Uint8Array, sign: Uint8Array }>()
  for (const j of [2, 3]) round2.set(j, { wrap: wrap.inbox[0]!.get(j)!, sign: sign.inbox[0]!.get(j)! })
  const base = { session: 'e1-a0', wrapState: wrap.stateBytes[0]!, signState: sign.stateBytes[0]!, round2: new Map(), detail: '' }
  const fresh: DkgProgress = { ...base, phase: DkgPhase.ROUND1, round1: own }
  cases.push(progressCase('fresh record: own round-1 packages only', fresh))
  const echoed: DkgProgress = { ...base, phase: DkgPhase.ROUND2, round1, round2: new Map([[3, round2.get(3)!]]) }
  cases.push(progressCase('echo passed, one round-2 package received', echoed))
  const finished: DkgProgress = { ...base, phase: DkgPhase.FINISHED, round1, round2 }
  cases.push(progressCase('finished: all round-2 packages', finished))
  const failed: DkgProgress = { session: 'e1-a0', phase: DkgPhase.FAILED, wrapState: new Uint8Array(0), signState: new Uint8Array(0), round1: own, round2: new Map(), detail: 'echo check failed: node(s) 3' }
  cases.push(progressCase('failed record: no secrets', failed))

  const good = encodeDkgProgress(echoed)
  const hex = (b: Uint8Array): string => toHex(b)
  const bad = (name: string, b: Uint8Array, error: string): void => { cases.push({ name, kind: 'progress', valid: false, encoded: hex(b), error }) }
  bad('truncated', good.subarray(0, good.length - 1), 'BAD_INPUT')
  bad('trailing byte', new Uint8Array([...good, 0]), 'BAD_INPUT')
  const v2 = new Uint8Array(good); v2[4] = 2
  bad('version 2', v2, 'UNSUPPORTED_VERSION')
  const magic = new Uint8Array(good); magic[0] = 0x6b
  bad('wrong magic', magic, 'BAD_INPUT')
  const phase = new Uint8Array(good); phase[4 + 1 + 2 + 5] = 4
  bad('unknown phase 4', phase, 'BAD_INPUT')
  // Two round-2 entries with the same index.
  const dup = encodeDkgProgress({ ...echoed, round2: new Map([[3, round2.get(3)!], [2, round2.get(2)!]]) })
  const dupBytes = new Uint8Array(dup)
  // Layout at the end: u8 count(2) ‖ entry(index 2) ‖ entry(index 3) ‖ var16 detail(empty);
  // entry = u8 index ‖ var16 wrap ‖ var16 sign. Turn the first index into a second 3.
  const entry = 1 + (2 + round2.get(2)!.wrap.length) + (2 + round2.get(2)!.sign.length)
  const r2Start = dupBytes.length - 2 - 2 * entry - 1
  if (dupBytes[r2Start] !== 2 || dupBytes[r2Start + 1] !== 2) throw new Error('vector layout changed')
  dupBytes[r2Start + 1] = 3
  bad('duplicate round-2 index', dupBytes, 'BAD_INPUT')
  const zero = new Uint8Array(dup); zero[r2Start + 1] = 0
  bad('round-2 index 0', zero, 'BAD_INPUT')

  return {
    format: 'dkg-progress',
    version: 1,
    description: 'DKG ceremony: transcript-digest context (§6.2) and the secret progress record "KMDP" (§6.4) of docs/PROTOCOL.md. Seeds: keymesh/vectors/dkg-progress/{wrap,sign}, k=2, n=3, cluster ' + CLUSTER + '.',
    cases
  }
}
