/**
 * `dkg.round1`, `dkg.echo`, `dkg.round2`, `dkg.result`: the serving side of the pull-based DKG
 * ceremony (node/dkg-ceremony.ts, docs/PROTOCOL.md).
 *
 * Node-to-node only: the RPC server already refuses clients (NODE_ONLY_OPS); these handlers check
 * again (defence in depth) and need the caller's node index, because `dkg.round2` hands each
 * node the secret package addressed to IT and to nobody else.
 *
 * Errors: NOT_AUTHORIZED (not a node), NOT_FOUND (a session this node does not run, or data of a
 * completed session that is no longer kept), UNAVAILABLE (the data does not exist yet; the
 * poller retries), CONFLICT (the session failed on this node).
 */
import { ErrorCode, KeymeshError, NotAuthorizedError } from '../../protocol/errors.ts'
import { dkgSessionId, parseDkgSession } from '../../protocol/rpc.ts'
import type { RpcOp } from '../../protocol/rpc.ts'
import { ceremonyOf } from '../dkg-ceremony.ts'
import { committedAttempt } from '../lifecycle/manager.ts'
import type { DkgCeremony } from '../dkg-ceremony.ts'
import type { Caller, Handler, NodeContext } from '../context.ts'

function callerIndex (caller: Caller, op: RpcOp): number {
  if (caller.kind !== 'node' || caller.index === undefined) throw new NotAuthorizedError(`${op}: only cluster nodes may call this operation`)
  return caller.index
}

/**
 * The ceremony running `session`, or — when this node runs none — the answer from the committed
 * state: a session whose epoch is committed here serves `dkg.result` only (NOT_FOUND for the
 * rest), the first session of an epoch not yet committed is UNAVAILABLE (the ceremony may not
 * have started yet), anything else is NOT_FOUND.
 */
async function resolve (ctx: NodeContext, session: string, op: RpcOp): Promise<DkgCeremony | { keySetId: string }> {
  const c = ceremonyOf(ctx)
  if (c !== undefined && c.session === session) return c
  const { epoch, attempt } = parseDkgSession(session)
  const id = await ctx.store.getKeySetId(epoch)
  // A committed epoch keeps answering the result of the session that committed it (attempt 0, or
  // the attempt of a rotation retry: node/lifecycle/manager.ts) while this node runs a later
  // epoch's ceremony or after a restart, so a node still confirming that epoch is not stranded.
  if (id !== undefined && (c === undefined || c.epoch !== epoch) && session === dkgSessionId(epoch, await committedAttempt(ctx, epoch))) {
    if (op === 'dkg.result') return { keySetId: id }
    throw new KeymeshError(ErrorCode.NOT_FOUND, `dkg: session ${session} is complete; only its result is served`)
  }
  if (c === undefined && id === undefined && epoch === 1 && attempt === 0) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'dkg: ceremony not started yet; retry')
  throw new KeymeshError(ErrorCode.NOT_FOUND, `dkg: unknown session ${session}`)
}

/** Answers `dkg.round1` (this node's own round-1 packages). Throws as described above. */
export const dkgRound1Handler: Handler<'dkg.round1'> = async (ctx, body, caller) => {
  callerIndex(caller, 'dkg.round1')
  const r = await resolve(ctx, body.session, 'dkg.round1')
  if (!('serveRound1' in r)) throw new KeymeshError(ErrorCode.NOT_FOUND, 'dkg: no round 1 for this session')
  return r.serveRound1(body.session)
}

/** Answers `dkg.echo` (per-sender transcript digests). Throws as described above. */
export const dkgEchoHandler: Handler<'dkg.echo'> = async (ctx, body, caller) => {
  callerIndex(caller, 'dkg.echo')
  const r = await resolve(ctx, body.session, 'dkg.echo')
  if (!('serveEcho' in r)) throw new KeymeshError(ErrorCode.NOT_FOUND, 'dkg: no echo for this session')
  return r.serveEcho(body.session)
}

/** Answers `dkg.round2` with the packages addressed to the calling node only. Throws as described above. */
export const dkgRound2Handler: Handler<'dkg.round2'> = async (ctx, body, caller) => {
  const idx = callerIndex(caller, 'dkg.round2')
  const r = await resolve(ctx, body.session, 'dkg.round2')
  if (!('serveRound2' in r)) throw new KeymeshError(ErrorCode.NOT_FOUND, 'dkg: no round 2 for this session')
  return r.serveRound2(body.session, idx)
}

/** Answers `dkg.result` (this node's key set id). Throws as described above. */
export const dkgResultHandler: Handler<'dkg.result'> = async (ctx, body, caller) => {
  callerIndex(caller, 'dkg.result')
  const r = await resolve(ctx, body.session, 'dkg.result')
  if ('keySetId' in r) return { keySetId: r.keySetId }
  return r.serveResult(body.session)
}
