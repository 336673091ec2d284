/**
 * Share repair, target side (docs/PROTOCOL.md §10.6, §11.9; helper side: repair-helper.ts).
 *
 * A member that missed the commit of key-set generations rebuilds its wrap and sign shares of each
 * from a helper set of exactly k members that hold them: it opens one repair id on every helper,
 * then collects every helper's sums and adds them up (protocol/repair.ts repairFinish, which checks
 * the share against the committed verifying share). A helper that does not answer is left out of
 * the next attempt; a result that does not verify (one of the helpers lied; the scheme cannot tell
 * which) is retried with another helper set, REPAIR_ATTEMPTS times at most.
 *
 * Secrets owned here: the sums received (wiped after use) and the repaired shares, handed to the
 * caller (bigints; they cannot be wiped in memory).
 */
import { randomBytes } from 'node:crypto'
import { ErrorCode, KeymeshError, VerificationError, errorCode } from '../../protocol/errors.ts'
import { repairFinish } from '../../protocol/repair.ts'
import { toHex } from '../../protocol/bytes.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { ClusterNode } from '../../protocol/cluster.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import { sleep } from '../ceremony-kit.ts'

/** Helper sets tried at most. */
export const REPAIR_ATTEMPTS = 6
/** How long one attempt waits for every helper to open and to serve its sums (ms). */
export const REPAIR_ATTEMPT_MS = 30_000
/** Per-call deadline (ms). */
export const REPAIR_TARGET_CALL_TTL_MS = 2_000

/** What the target needs. */
export interface RepairTargetEnv {
  /** The target's index in the helpers' membership. */
  self: number
  /** k of the generations being repaired (= the helpers' membership threshold). */
  threshold: number
  /** Members that hold the generations (preference order); at least k. */
  candidates: ClusterNode[]
  call: <O extends RpcOp>(node: ClusterNode, op: O, body: RequestBodies[O], ttlMs: number, signal: AbortSignal) => Promise<ResponseBodies[O]>
  log: (msg: string, fields: Record<string, unknown>) => void
  signal: AbortSignal
}

/** One repaired generation: wrap and sign shares at index `self` (SECRET, owned by the caller). */
export interface RepairedShares { wrap: KeyShare, sign: KeyShare }

const KINDS = ['wrap', 'sign'] as const

/**
 * Repairs this member's shares of `keySets` (one generation per epoch, ascending epochs, each with
 * threshold = env.threshold). Throws KeymeshError UNAVAILABLE when fewer than k helpers answer or
 * every attempt failed (the message says which helpers were tried), or when `signal` aborts.
 */
export async function repairShares (env: RepairTargetEnv, keySets: Array<{ keySet: KeySet, keySetId: string }>): Promise<RepairedShares[]> {
  const k = env.threshold
  const epochs = keySets.map(x => x.keySet.epoch)
  const keySetIds = keySets.map(x => x.keySetId)
  const suspects = new Map<number, number>()
  const tried: string[] = []
  let rotate = 0
  for (let attempt = 1; attempt <= REPAIR_ATTEMPTS; attempt++) {
    if (env.signal.aborted) break
    // Prefer helpers that have not failed; rotate after a result that did not verify.
    const pool = [...env.candidates].filter(c => c.index !== env.self)
    const ordered = [...pool.slice(rotate % Math.max(1, pool.length)), ...pool.slice(0, rotate % Math.max(1, pool.length))]
      .sort((a, b) => (suspects.get(a.index) ?? 0) - (suspects.get(b.index) ?? 0))
    if (ordered.length < k) throw new KeymeshError(ErrorCode.UNAVAILABLE, `share repair: ${ordered.length} member(s) hold the generation, ${k} needed`)
    const H = ordered.slice(0, k).sort((a, b) => a.index - b.index)
    const helpers = H.map(h => h.index)
    tried.push(helpers.join(','))
    const repair = toHex(randomBytes(16))
    const stop = new AbortController()
    const signal = AbortSignal.any([env.signal, stop.signal, AbortSignal.timeout(REPAIR_ATTEMPT_MS)])
    const sums = new Map<number, ResponseBodies['repair.sum']>()
    const silent: number[] = []
    env.log('share repair attempt', { attempt, repair, helpers, epochs })
    await Promise.all(H.map(async (h) => {
      const body = { repair, epochs, keySetIds, helpers }
      const ok = await until(signal, async () => { await env.call(h, 'repair.open', body, REPAIR_TARGET_CALL_TTL_MS, signal); return true })
      if (!ok) { silent.push(h.index); stop.abort(); return }
      const got = await until(signal, async () => {
        const r = await env.call(h, 'repair.sum', { repair }, REPAIR_TARGET_CALL_TTL_MS, signal)
        if (r.wrap.length !== epochs.length) throw new KeymeshError(ErrorCode.BAD_INPUT, `helper ${h.index} sent ${r.wrap.length} sums for ${epochs.length} epochs`)
        sums.set(h.index, r)
        return true
      })
      if (!got) { silent.push(h.index); stop.abort() }
    }))
    if (env.signal.aborted) break
    if (sums.size < k) {
      for (const i of silent) suspects.set(i, (suspects.get(i) ?? 0) + 1)
      env.log('share repair: helpers did not answer', { attempt, silent })
      rotate++
      await sleep(2_000, env.signal)
      continue
    }
    try {
      const out: RepairedShares[] = []
      for (let x = 0; x < keySets.length; x++) {
        const ks = (keySets[x] as { keySet: KeySet }).keySet
        const r = {} as Record<typeof KINDS[number], KeyShare>
        for (const kind of KINDS) {
          const m = new Map<number, Uint8Array>(helpers.map(i => [i, ((sums.get(i) as ResponseBodies['repair.sum'])[kind][x] as Uint8Array)]))
          r[kind] = repairFinish(env.self, ks[kind], helpers, m)
        }
        out.push({ wrap: r.wrap, sign: r.sign })
      }
      return out
    } catch (e) {
      if (!(e instanceof VerificationError) && errorCode(e) !== ErrorCode.BAD_INPUT) throw e
      env.log('share repair: the result did not verify; another helper set is tried', { attempt, helpers, blame: helpers, code: errorCode(e) })
      for (const i of helpers) suspects.set(i, (suspects.get(i) ?? 0) + 1)
      rotate++
    } finally {
      for (const s of sums.values()) for (const kind of KINDS) for (const b of s[kind]) b.fill(0)
    }
  }
  if (env.signal.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'share repair: stopped')
  throw new KeymeshError(ErrorCode.UNAVAILABLE, `share repair failed after ${tried.length} helper set(s) (${tried.map(t => `{${t}}`).join(' ')}); bring more members up and restart this node`)
}

/** Retries `f` with backoff while it throws, until it returns true or `signal` aborts (→ false). */
async function until (signal: AbortSignal, f: () => Promise<boolean>): Promise<boolean> {
  for (let round = 0; !signal.aborted; round++) {
    try { if (await f()) return true } catch (e) {
      if (errorCode(e) === ErrorCode.BAD_INPUT) return false
    }
    await sleep(Math.min(1_000, 150 * (round + 1)), signal)
  }
  return false
}
