/**
 * `status`: public facts about this node, for any authenticated caller. No secrets: index,
 * PeerId, cluster id, current epoch and key set id, uptime, DKG state.
 */
import type { Handler } from '../context.ts'

/** Answers `status`. Throws only on a store failure (INTERNAL). */
export const statusHandler: Handler<'status'> = async (ctx) => {
  const epoch = await ctx.store.currentEpoch()
  const keySetId = epoch === undefined ? null : (await ctx.store.getKeySetId(epoch)) ?? null
  const dkg = ctx.dkgStatus.detail === undefined
    ? { state: ctx.dkgStatus.state }
    : { state: ctx.dkgStatus.state, detail: ctx.dkgStatus.detail.slice(0, 256) }
  return {
    version: ctx.version,
    index: ctx.selfIndex,
    peerId: ctx.peerId,
    clusterId: ctx.cluster.clusterId,
    epoch: epoch ?? null,
    keySetId,
    uptimeMs: Math.max(0, Date.now() - ctx.startedAt),
    dkg
  }
}
