/**
 * The membership transition of a pending reshare order (docs/PROTOCOL.md §11.8): while it runs,
 * the node's connection gater and node-only op authorization admit the union of the old and new
 * members (node/governance.ts transitionPeers, node/rpc-server.ts callerOf), and the ceremony
 * reaches members of either view by PeerId and addresses.
 */
import type { ClusterNode } from '../../protocol/cluster.ts'
import type { NodeContext } from '../context.ts'
import { governanceOf } from '../governance.ts'

const transitions = new WeakMap<NodeContext, ClusterNode[]>()

/** Admits `nodes` (besides ctx.cluster's nodes) as nodes until cleared with `undefined`. Never throws. */
export function setTransition (ctx: NodeContext, nodes: ClusterNode[] | undefined): void {
  const gov = governanceOf(ctx)
  if (nodes === undefined) {
    transitions.delete(ctx)
    gov?.transitionPeers.clear()
    return
  }
  transitions.set(ctx, nodes)
  if (gov !== undefined) {
    gov.transitionPeers.clear()
    for (const n of nodes) if (n.peerId !== ctx.peerId) gov.transitionPeers.add(n.peerId)
  }
}

/** The extra nodes admitted now (empty when no reshare is pending). Never throws. */
export function transitionOf (ctx: NodeContext): ClusterNode[] { return transitions.get(ctx) ?? [] }
