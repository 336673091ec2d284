/**
 * Share repair, helper side (docs/PROTOCOL.md §10.6 crypto, §11.9 ceremony; protocol/repair.ts).
 *
 * A member that missed the commit of a key-set generation (it was down during a reshare) rebuilds
 * its shares from a helper set H of exactly k members that hold theirs. The target r opens the
 * same repair id on every helper (`repair.open`); each helper i splits λ_i^H(r)·s_i into |H|
 * random pieces (one per helper, per epoch and key), fetches the pieces the other helpers dealt to
 * it (`repair.piece`, served only to the authenticated helper they are addressed to), and sums
 * them into σ_i, which only r may fetch (`repair.sum`). No helper sees anything but uniformly
 * random pieces; r sees only the sums, and checks the result against the committed verifying
 * share (a lying helper causes a refusal, never a wrong share).
 *
 * Who may ask: a member of this node's CURRENT membership, for its own index only (the
 * authenticated PeerId), for generations that are current here; every request is recorded in the
 * audit log by the RPC layer (node/handlers/audited.ts). Holding a node's identity key therefore
 * lets one fetch that node's shares — as it lets one receive its sub-shares in any ceremony: keep
 * identity.key as protected as the storage passphrase (docs/OPERATIONS.md).
 *
 * Secrets owned here: the pieces this helper dealt (until served or expired) and the pieces and
 * sums it received / computed (wiped when the session expires). Sessions live REPAIR_SESSION_TTL_MS
 * in memory only: a restarted helper forgets them and the target starts over with a new id.
 */
import { ErrorCode, KeymeshError, NotAuthorizedError, errorCode } from '../../protocol/errors.ts'
import { repairSplit, repairSum } from '../../protocol/repair.ts'
import { checkOwnShare } from '../../protocol/reshare.ts'
import type { RequestBodies, ResponseBodies } from '../../protocol/rpc.ts'
import type { Caller, NodeContext } from '../context.ts'
import { sleep } from '../ceremony-kit.ts'

/** How long a helper keeps a repair session (ms). */
export const REPAIR_SESSION_TTL_MS = 120_000
/** Most repair sessions a helper runs at once (a cap on memory and work). */
export const MAX_REPAIR_SESSIONS = 16
/** Per-call deadline of a helper fetching pieces from another helper (ms). */
export const REPAIR_CALL_TTL_MS = 2_000

const KINDS = ['wrap', 'sign'] as const
type Msgs = { wrap: Uint8Array[], sign: Uint8Array[] }

interface Session {
  id: string
  target: number
  helpers: number[]
  epochs: number[]
  keySetIds: string[]
  /** Pieces dealt by this helper, by recipient helper index (SECRET). */
  dealt: Map<number, Msgs>
  /** This helper's sums once every piece arrived (SECRET). */
  sums?: Msgs
  failed?: string
  stop: AbortController
  timer: NodeJS.Timeout
}

const sessions = new WeakMap<NodeContext, Map<string, Session>>()

function wipe (m: Msgs | undefined): void {
  if (m === undefined) return
  for (const k of KINDS) for (const b of m[k]) b.fill(0)
}

function drop (ctx: NodeContext, s: Session): void {
  s.stop.abort()
  clearTimeout(s.timer)
  for (const m of s.dealt.values()) wipe(m)
  wipe(s.sums)
  sessions.get(ctx)?.delete(s.id)
}

function targetIndex (ctx: NodeContext, caller: Caller, op: string): number {
  if (caller.kind !== 'node' || caller.index === undefined || ctx.cluster.nodes[caller.index - 1]?.peerId !== caller.peerId) {
    throw new NotAuthorizedError(`${op}: only a member of this node's current membership may ask for a repair`)
  }
  return caller.index
}

/**
 * `repair.open`: validates the request against this node's membership and current generations,
 * deals the pieces and starts fetching the other helpers' pieces. Idempotent for the same id and
 * parameters. Throws NotAuthorizedError (caller not a member), BAD_INPUT (helper set not exactly
 * k members, target in H, this node not in H), CONFLICT (a generation is not current here; the
 * same id with other parameters), UNAVAILABLE (too many sessions; no shares yet).
 */
export async function openRepair (ctx: NodeContext, caller: Caller, body: RequestBodies['repair.open']): Promise<ResponseBodies['repair.open']> {
  const { helpers, epochs, keySetIds } = body
  const k = ctx.cluster.threshold
  const n = ctx.cluster.nodes.length
  // Right after a reshare commit this node still runs under the old membership until its reload:
  // indices and k may differ. Ask the target to retry then (public key sets only: no share is
  // read before the caller is checked).
  for (const epoch of epochs) {
    const ks = await ctx.store.getKeySet(epoch)
    if (ks !== undefined && (ks.threshold !== k || ks.n !== n)) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'repair.open: this node is about to reload under a new membership; retry')
  }
  const target = targetIndex(ctx, caller, 'repair.open')
  if (helpers.length !== k) throw new KeymeshError(ErrorCode.BAD_INPUT, `repair.open: expected exactly ${k} helpers, got ${helpers.length}`)
  if (helpers.some(h => h > n)) throw new KeymeshError(ErrorCode.BAD_INPUT, `repair.open: helper index above n = ${n}`)
  if (helpers.includes(target)) throw new KeymeshError(ErrorCode.BAD_INPUT, 'repair.open: the target cannot be one of its helpers')
  if (!helpers.includes(ctx.selfIndex)) throw new KeymeshError(ErrorCode.BAD_INPUT, `repair.open: this node (index ${ctx.selfIndex}) is not in the helper set`)
  let table = sessions.get(ctx)
  if (table === undefined) { table = new Map(); sessions.set(ctx, table) }
  const old = table.get(body.repair)
  if (old !== undefined) {
    const same = old.target === target && old.helpers.join() === helpers.join() && old.epochs.join() === epochs.join() && old.keySetIds.join() === keySetIds.join()
    if (!same) throw new KeymeshError(ErrorCode.CONFLICT, 'repair.open: this repair id is in use with other parameters')
    return { opened: true }
  }
  // One repair per target: a new repair id from the same member replaces its older one (a retry
  // with another helper set), so one member can never hold more than one slot.
  for (const x of [...table.values()]) if (x.target === target) drop(ctx, x)
  if (table.size >= MAX_REPAIR_SESSIONS) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'repair.open: too many repairs in progress; retry later')
  // Shares of the named generations; each must be current here (the target repairs what k members hold).
  const shares: Array<{ wrap: Parameters<typeof repairSplit>[0], sign: Parameters<typeof repairSplit>[0] }> = []
  for (const [x, epoch] of epochs.entries()) {
    const w = await ctx.store.getCurrent(epoch, 'wrap')
    const s = await ctx.store.getCurrent(epoch, 'sign')
    if (w === undefined || s === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, `repair.open: this node holds no shares of epoch ${epoch}`)
    if (w.keySetId !== keySetIds[x] || s.keySetId !== keySetIds[x]) throw new KeymeshError(ErrorCode.CONFLICT, `repair.open: generation ${(keySetIds[x] as string).slice(0, 16)}… of epoch ${epoch} is not current here`)
    if (w.keySet.threshold !== k || w.keySet.n !== n) throw new KeymeshError(ErrorCode.CONFLICT, `repair.open: epoch ${epoch} is ${w.keySet.threshold}-of-${w.keySet.n} here, the membership ${k}-of-${n}; retry after this node reloads`)
    // A helper whose own share does not match its verifying share would only make the target's
    // check fail; refuse early instead (reshare.ts checkOwnShare).
    checkOwnShare(w.share, w.keySet.wrap, n, 'wrap share')
    checkOwnShare(s.share, s.keySet.sign, n, 'sign share')
    shares.push({ wrap: w.share, sign: s.share })
  }
  const dealt = new Map<number, Msgs>(helpers.map(h => [h, { wrap: [], sign: [] }]))
  for (const sh of shares) {
    for (const kind of KINDS) {
      const pieces = repairSplit(sh[kind], helpers, target)
      for (const h of helpers) (dealt.get(h) as Msgs)[kind].push(pieces.get(h) as Uint8Array)
    }
  }
  const stop = new AbortController()
  const session: Session = { id: body.repair, target, helpers: [...helpers], epochs: [...epochs], keySetIds: [...keySetIds], dealt, stop, timer: setTimeout(() => { drop(ctx, session) }, REPAIR_SESSION_TTL_MS) }
  session.timer.unref()
  table.set(body.repair, session)
  ctx.log.info('share repair opened', { repair: body.repair, target, helpers, epochs })
  gather(ctx, session).catch((e: unknown) => {
    session.failed = errorCode(e)
    ctx.log.warn('share repair: could not collect pieces', { repair: body.repair, code: errorCode(e) })
  })
  return { opened: true }
}

/** Fetches every other helper's piece for this helper, then computes the sums. Throws on abort. */
async function gather (ctx: NodeContext, s: Session): Promise<void> {
  const received = new Map<number, Msgs>([[ctx.selfIndex, s.dealt.get(ctx.selfIndex) as Msgs]])
  const signal = AbortSignal.any([s.stop.signal, ctx.shutdownSignal])
  await Promise.all(s.helpers.filter(h => h !== ctx.selfIndex).map(async (h) => {
    const node = ctx.cluster.nodes[h - 1]
    if (node === undefined) throw new KeymeshError(ErrorCode.BAD_INPUT, `no node ${h}`)
    for (let round = 0; ; round++) {
      if (signal.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'repair: stopped')
      try {
        const r = await ctx.peers.call(h, 'repair.piece', { repair: s.id }, { signal: AbortSignal.any([signal, AbortSignal.timeout(REPAIR_CALL_TTL_MS)]), ttlMs: REPAIR_CALL_TTL_MS })
        if (r.wrap.length !== s.epochs.length) throw new KeymeshError(ErrorCode.BAD_INPUT, `helper ${h} sent ${r.wrap.length} pieces for ${s.epochs.length} epochs`)
        received.set(h, r)
        return
      } catch (e) {
        if (errorCode(e) === ErrorCode.BAD_INPUT || errorCode(e) === ErrorCode.NOT_AUTHORIZED || errorCode(e) === ErrorCode.CONFLICT) throw e
      }
      await sleep(Math.min(500, 100 * (round + 1)), signal)
    }
  }))
  const sums: Msgs = { wrap: [], sign: [] }
  for (let x = 0; x < s.epochs.length; x++) {
    for (const kind of KINDS) {
      const pieces = new Map<number, Uint8Array>([...received.entries()].map(([h, m]) => [h, m[kind][x] as Uint8Array]))
      sums[kind].push(repairSum(ctx.selfIndex, s.helpers, s.target, pieces))
    }
  }
  for (const [h, m] of received) if (h !== ctx.selfIndex) wipe(m)
  s.sums = sums
}

function sessionOf (ctx: NodeContext, id: string): Session {
  const s = sessions.get(ctx)?.get(id)
  if (s === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'repair: not opened on this node (yet); retry')
  return s
}

/**
 * `repair.piece`: the pieces this helper dealt to the calling helper. Throws NotAuthorizedError
 * (caller not another helper of the session), UNAVAILABLE (not opened here yet).
 */
export function servePiece (ctx: NodeContext, caller: Caller, body: RequestBodies['repair.piece']): ResponseBodies['repair.piece'] {
  const s = sessionOf(ctx, body.repair)
  const h = caller.kind === 'node' ? caller.index : undefined
  if (h === undefined || h === ctx.selfIndex || !s.helpers.includes(h) || ctx.cluster.nodes[h - 1]?.peerId !== caller.peerId) throw new NotAuthorizedError('repair.piece: served only to the other helpers of the repair')
  const m = s.dealt.get(h) as Msgs
  return { wrap: m.wrap.map(b => b.slice()), sign: m.sign.map(b => b.slice()) }
}

/**
 * `repair.sum`: this helper's sums, to the target only. Throws NotAuthorizedError (caller is not
 * the target), UNAVAILABLE (pieces still arriving), CONFLICT (this helper could not collect them).
 */
export function serveSum (ctx: NodeContext, caller: Caller, body: RequestBodies['repair.sum']): ResponseBodies['repair.sum'] {
  const s = sessionOf(ctx, body.repair)
  if (caller.kind !== 'node' || caller.index !== s.target || ctx.cluster.nodes[s.target - 1]?.peerId !== caller.peerId) throw new NotAuthorizedError('repair.sum: served only to the member being repaired')
  if (s.failed !== undefined) throw new KeymeshError(ErrorCode.CONFLICT, `repair: this helper could not collect the pieces (${s.failed}); start over with another helper set`)
  if (s.sums === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'repair: pieces still arriving; retry')
  return { wrap: s.sums.wrap.map(b => b.slice()), sign: s.sums.sign.map(b => b.slice()) }
}
