/**
 * A member that was DOWN during a reshare that kept it (docs/PROTOCOL.md §11.9): it never saw the
 * order, so at start it still serves the old membership and its old-generation shares. When at
 * least k′ members of the newest membership serve a chain that extends ours (proof that the
 * reshare committed: a member records the chain only after committing), this node adopts that
 * membership: it takes the last order's committed result (epochs and new keySetIds, checked
 * against the result digest) from k′ members that agree, fetches those key sets, rebuilds its
 * shares by share repair from those members (repair-target.ts), commits them in ONE store batch
 * with the session's result marker, records the chain and reloads under the new membership.
 *
 * Until it has caught up the node keeps its old-generation shares (useless with the new ones;
 * the other members no longer serve that generation); it replaces them at the commit.
 */
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { Membership } from '../../protocol/membership.ts'
import { parseSignedOrder } from '../../protocol/order.ts'
import { reshareSessionId } from '../../protocol/rpc.ts'
import type { NodeContext } from '../context.ts'
import { sleep } from '../ceremony-kit.ts'
import { encodeRefreshResult } from './refresh-ceremony.ts'
import { committedKeySet, committedResult } from './committed-result.ts'
import type { CommittedResult, MemberCall } from './committed-result.ts'
import { repairShares } from './repair-target.ts'
import { setTransition, transitionOf } from './transition.ts'
import { writeMembership } from './membership-file.ts'

/** How long the catch-up waits for k′ members to confirm the committed result (ms). */
export const CATCH_UP_CONFIRM_MS = 60_000

/**
 * Catches this node up with membership `best` (which lists it). Throws KeymeshError
 * (UNAVAILABLE: not enough members confirm the result or help with the repair — the membership
 * check retries later; CONFLICT: the committed key sets do not match this node's group keys);
 * `status` then shows the reason.
 */
export async function catchUpMissedReshare (ctx: NodeContext, best: Membership): Promise<void> {
  try { await catchUp(ctx, best) } catch (e) {
    if (!ctx.shutdownSignal.aborted) ctx.dkgStatus = { state: 'failed', detail: `catch-up: ${e instanceof Error ? e.message : String(e)}`.slice(0, 240) }
    throw e
  }
}

async function catchUp (ctx: NodeContext, best: Membership): Promise<void> {
  const after = best.cluster
  const self = after.nodes.find(n => n.peerId === ctx.peerId)
  const lastText = best.orders[best.orders.length - 1]
  if (self === undefined || lastText === undefined) return
  const order = parseSignedOrder(lastText).order
  const session = reshareSessionId(order.epoch, order.nonce)
  const log = ctx.log.child({ component: 'catch-up' })
  const extra = after.nodes.filter(n => !ctx.cluster.nodes.some(x => x.peerId === n.peerId))
  setTransition(ctx, [...transitionOf(ctx), ...extra])
  ctx.dkgStatus = { state: 'running', detail: `catching up with reshare ${session}: waiting for ${after.threshold} members to confirm it` }
  log.warn('this node missed a reshare that kept it (it was down); catching up by share repair', { session, newIndex: self.index, threshold: after.threshold, n: after.nodes.length })
  const others = after.nodes.filter(n => n.peerId !== ctx.peerId)
  const call: MemberCall = async (node, op, body, ttlMs, signal) => {
    if (ctx.peers.callNode === undefined) throw new KeymeshError(ErrorCode.INTERNAL, 'this node cannot call peers by address')
    return await ctx.peers.callNode(node, op, body, { signal: AbortSignal.any([signal, AbortSignal.timeout(ttlMs)]), ttlMs })
  }
  // 1. The committed result, from k′ members reporting the same one.
  let result: CommittedResult | undefined
  const deadline = Date.now() + CATCH_UP_CONFIRM_MS
  while (!ctx.shutdownSignal.aborted) {
    const r = await committedResult(others, session, call, ctx.shutdownSignal)
    if (r !== undefined && r.committers.length >= after.threshold) { result = r; break }
    if (Date.now() >= deadline) break
    await sleep(2_000, ctx.shutdownSignal)
  }
  if (result === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, `catch-up: fewer than ${after.threshold} members confirm the result of reshare ${session}; retrying later`)
  const helpers = after.nodes.filter(n => result.committers.includes(n.index))
  // 2. The committed key sets, checked against this node's group keys.
  const sets: Array<{ keySet: KeySet, keySetId: string, base: KeySet }> = []
  for (const [x, epoch] of result.epochs.entries()) {
    const id = result.keySetIds[x] as string
    const base = await ctx.store.getKeySet(epoch)
    if (base === undefined) throw new KeymeshError(ErrorCode.CONFLICT, `catch-up: this node holds no key set of epoch ${epoch}; restore it from its recovery kit instead`)
    const ks = await committedKeySet(epoch, id, helpers, ctx.cluster.clusterId, { threshold: after.threshold, n: after.nodes.length }, base, call, ctx.shutdownSignal)
    sets.push({ keySet: ks, keySetId: id, base })
  }
  ctx.dkgStatus = { state: 'running', detail: `catching up with reshare ${session}: repairing shares from members ${result.committers.join(',')}` }
  // 3. Share repair from the members that committed, then one store batch.
  const shares = await repairShares({
    self: self.index,
    threshold: after.threshold,
    candidates: helpers,
    call,
    log: (msg, fields) => { log.info(msg, fields) },
    signal: ctx.shutdownSignal
  }, sets)
  const entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }> = sets.map((s, x) => ({
    keySet: s.keySet, base: s.base, wrapShare: (shares[x] as { wrap: KeyShare }).wrap, signShare: (shares[x] as { sign: KeyShare }).sign
  }))
  await ctx.store.commitReshare(entries, session, encodeRefreshResult(result.epochs, result.keySetIds))
  await writeMembership(ctx.config.dataDir, ctx.cluster.clusterId, best.orders)
  ctx.membership = { revision: best.revision, orders: [...best.orders] }
  ctx.dkgStatus = { state: 'done', detail: `caught up with reshare ${session} by share repair (${after.threshold}-of-${after.nodes.length}, index ${self.index})` }
  log.info('caught up: shares repaired and committed; reloading under the new membership', { session, newIndex: self.index, repairedFrom: result.committers, epochs: result.epochs })
  ctx.requestRestart?.('reload', 0)
}
