/**
 * Lifecycle operations (node/lifecycle/manager.ts, docs/PROTOCOL.md):
 *
 * - `lifecycle.order`: an admin's client pushes a signed order. The caller needs no special role:
 *   the order authorises itself by ≥ adminThreshold admin signatures checked here (the policy
 *   gate in front still decides who may connect at all).
 * - `dkg.order`: the same order relayed node to node (node-only: NODE_ONLY_OPS, checked again).
 * - `retiredGuard(h)`: wraps partial/partial.batch/frost.* so that epochs below the retirement
 *   line (an order's minDecryptionEpoch, effective once the new epoch committed) are refused with
 *   NOT_AUTHORIZED before the handler touches a share.
 */
import { NotAuthorizedError } from '../../protocol/errors.ts'
import type { Handler } from '../context.ts'
import { acceptOrder, minDecryptionEpoch } from '../lifecycle/manager.ts'

/** Answers `lifecycle.order`. Refusals are answers (`accepted:false`); throws INTERNAL on a state-file failure. */
export const lifecycleOrderHandler: Handler<'lifecycle.order'> = async (ctx, body) => await acceptOrder(ctx, body.order)

/** Answers `dkg.order` (node to node). Throws NotAuthorizedError for a non-node caller, else as above. */
export const dkgOrderHandler: Handler<'dkg.order'> = async (ctx, body, caller) => {
  if (caller.kind !== 'node') throw new NotAuthorizedError('dkg.order: only cluster nodes may relay orders')
  return await acceptOrder(ctx, body.order)
}

type EpochOp = 'partial' | 'partial.batch' | 'frost.commit' | 'frost.sign'

/**
 * Wraps an epoch-scoped handler with the retirement check. The wrapped handler throws
 * NotAuthorizedError for a retired epoch, otherwise what `h` throws.
 */
export function retiredGuard<O extends EpochOp> (h: Handler<O>): Handler<O> {
  return async (ctx, body, caller, signal) => {
    const min = await minDecryptionEpoch(ctx)
    const epoch = (body as { epoch: number }).epoch
    if (epoch < min) throw new NotAuthorizedError(`epoch ${epoch} is retired on this node (minimum decryption epoch ${min})`)
    return await h(ctx, body, caller, signal)
  }
}
