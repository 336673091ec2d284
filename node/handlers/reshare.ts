/**
 * `cluster.get` (membership chain, any authenticated peer) and `reshare.round1|round2|view|result`
 * (the serving side of the reshare ceremony, node/lifecycle/reshare-ceremony.ts,
 * docs/PROTOCOL.md §11.8).
 *
 * reshare.* are node-to-node (NODE_ONLY_OPS; while a reshare order is pending the members of both
 * views count as nodes). The caller is identified by its authenticated PeerId: `reshare.round2`
 * hands a new member ONLY the sub-shares addressed to its new index.
 *
 * A session this node does not run now: committed here → `reshare.result` from the public result
 * marker (committed: true), everything else NOT_FOUND; another order pending → CONFLICT; the
 * session's order pending but not started → UNAVAILABLE; failed here → CONFLICT; else NOT_FOUND.
 */
import { ErrorCode, KeymeshError, NotAuthorizedError } from '../../protocol/errors.ts'
import { parseReshareSession } from '../../protocol/rpc.ts'
import type { RpcOp } from '../../protocol/rpc.ts'
import { RESHARE_FAILED_NAME, RESHARE_RESULT_NAME, reshareOf, reshareResultDigest } from '../lifecycle/reshare-ceremony.ts'
import type { ReshareCeremony } from '../lifecycle/reshare-ceremony.ts'
import { pendingOrderInfo } from '../lifecycle/manager.ts'
import { decodeRefreshResult } from '../lifecycle/refresh-ceremony.ts'
import type { Caller, Handler, NodeContext } from '../context.ts'

function nodeCaller (caller: Caller, op: RpcOp): void {
  if (caller.kind !== 'node') throw new NotAuthorizedError(`${op}: only cluster nodes may call this operation`)
}

async function resolve (ctx: NodeContext, session: string, op: RpcOp): Promise<ReshareCeremony | { digest: string, epochs: number[], keySetIds: string[] }> {
  const c = reshareOf(ctx)
  if (c !== undefined && c.session === session) return c
  const { nonce16 } = parseReshareSession(session)
  const marker = await ctx.store.getDkg(session, RESHARE_RESULT_NAME)
  if (marker !== undefined) {
    if (op === 'reshare.result') return { digest: reshareResultDigest(marker), ...decodeRefreshResult(marker) }
    throw new KeymeshError(ErrorCode.NOT_FOUND, `reshare: session ${session} is complete; only its result is served`)
  }
  const pending = await pendingOrderInfo(ctx)
  if (pending !== undefined) {
    if (pending.op !== 'reshare' || !pending.nonce.startsWith(nonce16)) throw new KeymeshError(ErrorCode.CONFLICT, `reshare: this node runs another lifecycle order (${pending.op} ${pending.nonce.slice(0, 8)})`)
    throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: ceremony not started yet; retry')
  }
  // Public marker: the sealed progress record is never decrypted for a peer's request.
  if (await ctx.store.getDkg(session, RESHARE_FAILED_NAME) !== undefined) throw new KeymeshError(ErrorCode.CONFLICT, `reshare: session ${session} failed`)
  throw new KeymeshError(ErrorCode.NOT_FOUND, `reshare: unknown session ${session}`)
}

function ceremony (r: ReshareCeremony | { digest: string, epochs: number[], keySetIds: string[] }): ReshareCeremony {
  if ('digest' in r) throw new KeymeshError(ErrorCode.NOT_FOUND, 'reshare: session complete')
  return r
}

function member (c: ReshareCeremony, caller: Caller, op: RpcOp): void {
  if (!c.isMember(caller.peerId)) throw new NotAuthorizedError(`${op}: caller is not a member of this reshare`)
}

/** The running ceremony of `session`, for a node caller that is a member of either view. Throws as described above. */
async function forMember (ctx: NodeContext, session: string, caller: Caller, op: RpcOp): Promise<ReshareCeremony> {
  nodeCaller(caller, op)
  const c = ceremony(await resolve(ctx, session, op))
  member(c, caller, op)
  return c
}

/** Answers `reshare.round1` (this old member's public dealings). Throws as described above. */
export const reshareRound1Handler: Handler<'reshare.round1'> = async (ctx, body, caller) =>
  (await forMember(ctx, body.session, caller, 'reshare.round1')).serveRound1(body.session)

/** Answers `reshare.round2` with the sub-shares addressed to the calling NEW member only. Throws as described above. */
export const reshareRound2Handler: Handler<'reshare.round2'> = async (ctx, body, caller) => {
  nodeCaller(caller, 'reshare.round2')
  const c = ceremony(await resolve(ctx, body.session, 'reshare.round2'))
  const j = c.newIndexOf(caller.peerId)
  if (j === undefined) throw new NotAuthorizedError('reshare.round2: served only to the new members of the order')
  return c.serveRound2(body.session, j)
}

/** Answers `reshare.view`. Throws as described above. */
export const reshareViewHandler: Handler<'reshare.view'> = async (ctx, body, caller) =>
  (await forMember(ctx, body.session, caller, 'reshare.view')).serveView(body.session)

/** Answers `reshare.result`. Throws as described above. */
export const reshareResultHandler: Handler<'reshare.result'> = async (ctx, body, caller) => {
  nodeCaller(caller, 'reshare.result')
  const r = await resolve(ctx, body.session, 'reshare.result')
  if ('digest' in r) return { digest: r.digest, committed: true, epochs: r.epochs, keySetIds: r.keySetIds }
  member(r, caller, 'reshare.result')
  return r.serveResult(body.session)
}

/** Answers `cluster.get`: the membership revision, and the chain when newer than `have`. Never throws. */
export const clusterGetHandler: Handler<'cluster.get'> = async (ctx, body) => {
  const m = ctx.membership ?? { revision: 1, orders: [] }
  return m.revision > body.have ? { revision: m.revision, orders: [...m.orders] } : { revision: m.revision }
}
