/**
 * `refresh.round1`, `refresh.echo`, `refresh.round2`, `refresh.result`: the serving side of the
 * proactive refresh ceremony (node/lifecycle/refresh-ceremony.ts, docs/PROTOCOL.md §11.6).
 *
 * Node-to-node only (NODE_ONLY_OPS; checked again here): `refresh.round2` hands each node the
 * secret sub-shares addressed to IT, identified by its authenticated PeerId → node index.
 *
 * Resolution of a session this node does not run right now:
 *   - the session committed here (public result record) → `refresh.result` is served from it,
 *     everything else NOT_FOUND;
 *   - this node has ANOTHER lifecycle order pending → CONFLICT (a node split between two orders
 *     fails fast instead of waiting forever);
 *   - the session's order is pending here but its ceremony has not started yet → UNAVAILABLE;
 *   - the session failed here (failed progress record) → CONFLICT;
 *   - otherwise NOT_FOUND (the order has not reached this node yet; pollers retry).
 */
import { ErrorCode, KeymeshError, NotAuthorizedError } from '../../protocol/errors.ts'
import { parseRefreshSession } from '../../protocol/rpc.ts'
import type { RpcOp } from '../../protocol/rpc.ts'
import { committedRefreshDigest, refreshFailedHere, refreshOf } from '../lifecycle/refresh-ceremony.ts'
import type { RefreshCeremony } from '../lifecycle/refresh-ceremony.ts'
import { pendingOrderInfo } from '../lifecycle/manager.ts'
import type { Caller, Handler, NodeContext } from '../context.ts'

function callerIndex (caller: Caller, op: RpcOp): number {
  if (caller.kind !== 'node' || caller.index === undefined) throw new NotAuthorizedError(`${op}: only cluster nodes may call this operation`)
  return caller.index
}

async function resolve (ctx: NodeContext, session: string, op: RpcOp): Promise<RefreshCeremony | { digest: string }> {
  const c = refreshOf(ctx)
  if (c !== undefined && c.session === session) return c
  const { nonce16 } = parseRefreshSession(session)
  // Committed here first: a node that already runs the NEXT order must still confirm this one
  // to a peer that is finishing it (never CONFLICT for a session it committed).
  const digest = await committedRefreshDigest(ctx, session)
  if (digest !== undefined) {
    if (op === 'refresh.result') return { digest }
    throw new KeymeshError(ErrorCode.NOT_FOUND, `refresh: session ${session} is complete; only its result is served`)
  }
  const pending = await pendingOrderInfo(ctx)
  if (pending !== undefined) {
    if (pending.op !== 'refresh' || !pending.nonce.startsWith(nonce16)) throw new KeymeshError(ErrorCode.CONFLICT, `refresh: this node runs another lifecycle order (${pending.op} ${pending.nonce.slice(0, 8)})`)
    throw new KeymeshError(ErrorCode.UNAVAILABLE, 'refresh: ceremony not started yet; retry')
  }
  if (await refreshFailedHere(ctx, session)) throw new KeymeshError(ErrorCode.CONFLICT, `refresh: session ${session} failed`)
  throw new KeymeshError(ErrorCode.NOT_FOUND, `refresh: unknown session ${session}`)
}

function ceremony (r: RefreshCeremony | { digest: string }): RefreshCeremony {
  if ('digest' in r) throw new KeymeshError(ErrorCode.NOT_FOUND, 'refresh: session complete')
  return r
}

/** Answers `refresh.round1` (this node's dealings). Throws as described above. */
export const refreshRound1Handler: Handler<'refresh.round1'> = async (ctx, body, caller) => {
  callerIndex(caller, 'refresh.round1')
  return ceremony(await resolve(ctx, body.session, 'refresh.round1')).serveRound1(body.session)
}

/** Answers `refresh.echo` (digests of every node's round-1 answer). Throws as described above. */
export const refreshEchoHandler: Handler<'refresh.echo'> = async (ctx, body, caller) => {
  callerIndex(caller, 'refresh.echo')
  return ceremony(await resolve(ctx, body.session, 'refresh.echo')).serveEcho(body.session)
}

/** Answers `refresh.round2` with the sub-shares addressed to the calling node only. Throws as described above. */
export const refreshRound2Handler: Handler<'refresh.round2'> = async (ctx, body, caller) => {
  const idx = callerIndex(caller, 'refresh.round2')
  return ceremony(await resolve(ctx, body.session, 'refresh.round2')).serveRound2(body.session, idx)
}

/** Answers `refresh.result` (the result digest). Throws as described above. */
export const refreshResultHandler: Handler<'refresh.result'> = async (ctx, body, caller) => {
  callerIndex(caller, 'refresh.result')
  const r = await resolve(ctx, body.session, 'refresh.result')
  if ('digest' in r) return { digest: r.digest }
  return r.serveResult(body.session)
}
