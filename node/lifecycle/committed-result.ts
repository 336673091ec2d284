/**
 * What a late member needs to learn about a reshare that committed without it (docs/PROTOCOL.md
 * §11.8.4 step 6, §11.9.2): the committed result (epochs and new keySetIds, bound by the result
 * digest) as reported by the members that committed it, and the committed key sets themselves.
 * Shared by the ceremony's watcher (reshare-ceremony.ts) and the start-up catch-up (catch-up.ts).
 * Public data only.
 */
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { decodeKeySet, keySetId as computeKeySetId } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import type { ClusterNode } from '../../protocol/cluster.ts'
import type { Point } from '../../protocol/group.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { concat, toHex, u32, utf8 } from '../../protocol/bytes.ts'
import { sleep } from '../ceremony-kit.ts'
import { encodeRefreshResult } from './refresh-ceremony.ts'

/** Domain tag of the reshare result digest. */
export const RESHARE_RESULT_TAG = 'keymesh/v1/reshare/result'

/**
 * The result digest every new member must agree on before committing: SHA-256( u32 len(T) ‖ T ‖
 * u16 E ‖ E × (u32 epoch ‖ new keySetId (32)) ), T = RESHARE_RESULT_TAG. Returns 64 hex.
 */
export function reshareResultDigest (result: Uint8Array): string {
  const t = utf8(RESHARE_RESULT_TAG)
  return toHex(sha256(concat(u32(t.length), t, result)))
}

/** Calls `op` on a member by PeerId/addresses with a per-call deadline. Throws the transport's errors. */
export type MemberCall = <O extends RpcOp>(node: ClusterNode, op: O, body: RequestBodies[O], ttlMs: number, signal: AbortSignal) => Promise<ResponseBodies[O]>

/** A committed result and the members that reported it. */
export interface CommittedResult { digest: string, epochs: number[], keySetIds: string[], committers: number[] }

/** Per-call deadline of the result and key set queries (ms). */
export const COMMITTED_CALL_TTL_MS = 2_000

/**
 * Asks every member of `members` once for `reshare.result {session}` and returns the committed
 * result reported by the most members (ties: any), or undefined when none. An answer counts only
 * when committed and its epochs/keySetIds hash to its digest. Never throws.
 */
export async function committedResult (members: ClusterNode[], session: string, call: MemberCall, signal: AbortSignal): Promise<CommittedResult | undefined> {
  const seen = new Map<string, CommittedResult>()
  await Promise.all(members.map(async m => {
    try {
      const r = await call(m, 'reshare.result', { session }, COMMITTED_CALL_TTL_MS, signal)
      if (!r.committed || r.epochs === undefined || r.keySetIds === undefined) return
      if (reshareResultDigest(encodeRefreshResult(r.epochs, r.keySetIds)) !== r.digest) return
      const e = seen.get(r.digest) ?? { digest: r.digest, epochs: r.epochs, keySetIds: r.keySetIds, committers: [] }
      e.committers.push(m.index)
      seen.set(r.digest, e)
    } catch { /* down, not yet, or another view */ }
  }))
  let best: CommittedResult | undefined
  for (const e of seen.values()) if (best === undefined || e.committers.length > best.committers.length) best = e
  return best
}

/**
 * Fetches key set (epoch, id) from one of `from` (members that committed it), accepted only when
 * its id, epoch and clusterId match, with (k, n) = `expect` and the same group keys as `base`
 * (when given). Throws KeymeshError UNAVAILABLE when no member serves it after `rounds` rounds,
 * CONFLICT when a served key set has other (k, n) or other group keys (the caller refuses it).
 */
export async function committedKeySet (epoch: number, id: string, from: ClusterNode[], clusterId: string, expect: { threshold: number, n: number }, base: KeySet | undefined, call: MemberCall, signal: AbortSignal, rounds = 20): Promise<KeySet> {
  for (let round = 0; ; round++) {
    for (const node of from) {
      let ks: KeySet
      try {
        const res = await call(node, 'keyset.get', { epoch, keySetId: id }, COMMITTED_CALL_TTL_MS, signal)
        ks = decodeKeySet(res.keySet)
      } catch { continue }
      if (computeKeySetId(ks) !== id || ks.epoch !== epoch || ks.clusterId !== clusterId) continue
      if (ks.threshold !== expect.threshold || ks.n !== expect.n) throw new KeymeshError(ErrorCode.CONFLICT, `the committed key set of epoch ${epoch} is ${ks.threshold}-of-${ks.n}, expected ${expect.threshold}-of-${expect.n}`)
      if (base !== undefined && (!ks.wrap.commitments[0]?.equals(base.wrap.commitments[0] as Point) || !ks.sign.commitments[0]?.equals(base.sign.commitments[0] as Point))) {
        throw new KeymeshError(ErrorCode.CONFLICT, `the committed key set of epoch ${epoch} has other group keys than this node's; refusing it`)
      }
      return ks
    }
    if (signal.aborted || round + 1 >= rounds) throw new KeymeshError(ErrorCode.UNAVAILABLE, `key set ${id.slice(0, 16)}… of epoch ${epoch} not available from members ${from.map(f => f.index).join(',')}`)
    await sleep(Math.min(2_000, 200 * (round + 1)), signal)
  }
}
