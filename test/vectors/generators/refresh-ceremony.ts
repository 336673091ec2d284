/**
 * Known-answer vectors for the refresh ceremony's own formats (docs/PROTOCOL.md §11.6): the echo
 * digest context and the per-node digests over whole round-1 answers (§11.6.4), the result record
 * and its digest (§11.6.5), and the progress record "KMFP" (§11.6.6), from fixed seeds (a 2-of-3
 * dealt key used for both keys, dealings from refreshDealWithRng). Negative cases must be rejected
 * with the stated error code.
 */
import {
  RefreshPhase, encodeRefreshAnswer, encodeRefreshProgress, encodeRefreshResult, refreshEchoContext, refreshResultDigest
} from '../../../node/lifecycle/refresh-ceremony.ts'
import type { PerEpoch, RefreshProgress } from '../../../node/lifecycle/refresh-ceremony.ts'
import { dealingDigests } from '../../../protocol/reshare.ts'
import { encodeRefreshDealing, refreshDealWithRng } from '../../../protocol/refresh.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { dealKey, drbg } from './reshare.ts'

const CLUSTER = '5eed5eed5eed5eed5eed5eed5eed5eed'
const SESSION = 'f2-0123456789abcdef'
const BIND = new Uint8Array(32).fill(0xb1)
const EPOCHS = [1, 2]
const BASE = ['11'.repeat(32), '22'.repeat(32)]

const hexMap = (m: Map<number, PerEpoch>): Array<{ index: number, wrap: string[], sign: string[] }> =>
  [...m].sort((a, b) => a[0] - b[0]).map(([index, v]) => ({ index, wrap: v.wrap.map(toHex), sign: v.sign.map(toHex) }))

function progressCase (name: string, p: RefreshProgress): Record<string, unknown> {
  return {
    name, kind: 'progress', valid: true, session: p.session, phase: p.phase, bind: toHex(p.bind), epochs: p.epochs, base: p.base,
    round1: hexMap(p.round1), dealt: hexMap(p.dealt), round2: hexMap(p.round2), detail: p.detail, encoded: toHex(encodeRefreshProgress(p))
  }
}

/** Builds the vector file. Deterministic. */
export function generate (): Record<string, unknown> {
  const n = 3
  const keys = EPOCHS.map(e => dealKey(2, n, drbg(`keymesh/vectors/refresh-ceremony/key/${e}`)))
  const answers = new Map<number, PerEpoch>()
  const dealt = new Map<number, PerEpoch>()
  for (let j = 1; j <= n; j++) dealt.set(j, { wrap: [], sign: [] })
  for (let i = 1; i <= n; i++) {
    const a: PerEpoch = { wrap: [], sign: [] }
    for (const [x, key] of keys.entries()) {
      for (const kind of ['wrap', 'sign'] as const) {
        const d = refreshDealWithRng(key.shares[i - 1]!, key.pub, drbg(`keymesh/vectors/refresh-ceremony/deal/${i}/${x}/${kind}`))
        a[kind].push(encodeRefreshDealing(d.dealing))
        if (i === 1) for (let j = 1; j <= n; j++) dealt.get(j)![kind].push(d.subShares.get(j)!)
      }
    }
    answers.set(i, a)
  }
  const cases: Array<Record<string, unknown>> = []
  const context = refreshEchoContext(CLUSTER, SESSION, BIND, EPOCHS, BASE)
  const encoded = [1, 2, 3].map(i => encodeRefreshAnswer(EPOCHS, answers.get(i)!))
  cases.push({
    name: 'echo context and per-node digests of whole round-1 answers (2-of-3, epochs 1 and 2)',
    kind: 'echo', valid: true, clusterId: CLUSTER, session: SESSION, bind: toHex(BIND), epochs: EPOCHS, base: BASE,
    context: toHex(context), answers: encoded.map(toHex), digests: dealingDigests(encoded, context).map(toHex)
  })
  const ids = ['ab'.repeat(32), 'cd'.repeat(32)]
  const result = encodeRefreshResult(EPOCHS, ids)
  cases.push({ name: 'result record and digest', kind: 'result', valid: true, epochs: EPOCHS, keySetIds: ids, result: toHex(result), digest: refreshResultDigest(result) })

  const base = { session: SESSION, bind: BIND, epochs: EPOCHS, base: BASE, detail: '' }
  const fresh: RefreshProgress = { ...base, phase: RefreshPhase.ROUND1, round1: new Map([[1, answers.get(1)!]]), dealt, round2: new Map() }
  cases.push(progressCase('fresh record of node 1: own dealings and the sub-shares it deals', fresh))
  const round2 = new Map<number, PerEpoch>([[2, { wrap: [new Uint8Array(39).fill(2), new Uint8Array(39).fill(3)], sign: [new Uint8Array(39).fill(4), new Uint8Array(39).fill(5)] }]])
  const echoed: RefreshProgress = { ...base, phase: RefreshPhase.ROUND2, round1: answers, dealt, round2 }
  cases.push(progressCase('echo passed, one node\'s sub-shares received', echoed))
  const failed: RefreshProgress = { ...base, phase: RefreshPhase.FAILED, round1: answers, dealt: new Map(), round2: new Map(), detail: 'refresh f2-0123456789abcdef: echo check failed: node(s) 3' }
  cases.push(progressCase('failed record: public dealings only', failed))

  const good = encodeRefreshProgress(echoed)
  const bad = (name: string, b: Uint8Array, error: string): void => { cases.push({ name, kind: 'progress', valid: false, encoded: toHex(b), error }) }
  bad('truncated', good.subarray(0, good.length - 1), 'BAD_INPUT')
  const withTrailing = new Uint8Array(good.length + 1); withTrailing.set(good)
  bad('trailing byte', withTrailing, 'BAD_INPUT')
  const magic = good.slice(); magic[0] = 0x58
  bad('bad magic', magic, 'BAD_INPUT')
  const version = good.slice(); version[4] = 2
  bad('version 2', version, 'UNSUPPORTED_VERSION')
  const sessionLen = 2 + SESSION.length
  const phase = good.slice(); phase[5 + sessionLen] = 7
  bad('unknown phase', phase, 'BAD_INPUT')
  const epochsOff = 5 + sessionLen + 1 + 32 + 2
  const order = good.slice(); order.set([0, 0, 0, 1], epochsOff + 36) // second epoch = 1: not ascending
  bad('epochs not ascending', order, 'BAD_INPUT')
  const mapOff = epochsOff + 2 * 36
  const dup = encodeRefreshProgress({ ...echoed, round1: new Map([[1, answers.get(1)!]]) })
  const dupIdx = dup.slice(); dupIdx[mapOff] = 2 // count 2 …
  bad('round-1 count larger than the entries (truncated)', dupIdx, 'BAD_INPUT')
  return {
    format: 'refresh-ceremony',
    version: 1,
    description: 'Refresh ceremony (docs/PROTOCOL.md §11.6): echo context + digests over whole round-1 answers, result record + digest, KMFP progress records (valid ones re-encode byte for byte; invalid ones are rejected with `error`).',
    cases
  }
}
