/**
 * The node side of the key lifecycle (docs/PROTOCOL.md, docs/LIFECYCLE.md):
 * accepting admin-signed orders, spreading them to the other nodes, running the ceremony they
 * ask for, and enforcing epoch retirement.
 *
 * Implemented: `rotate` — a fresh DKG for epoch e+1 with the same members and threshold, run by
 * the existing pull-based ceremony (node/dkg-ceremony.ts, session `e<e+1>-a<attempt>`), committed
 * with store.commitEpoch (older epochs and their shares are KEPT, so envelopes of every epoch keep
 * unwrapping; keyset.get without an epoch returns the newest). An optional `minDecryptionEpoch`
 * takes effect only after the new epoch has committed on this node: from then on partials and
 * FROST signing for older epochs are refused (`retiredGuard`).
 *
 * Implemented: `refresh` — proactive share refresh of every LIVE epoch (≥ max(1, minDecryptionEpoch))
 * without a new epoch (node/lifecycle/refresh-ceremony.ts, session `f<epoch>-<nonce16>`), committed
 * with store.replaceGenerations (one batch for all epochs; the key sets get a new generation).
 *
 * Implemented: `reshare` — membership and/or threshold change with the same group keys
 * (node/lifecycle/reshare-ceremony.ts, session `s<epoch>-<nonce16>`): old members deal, new members
 * receive and commit with store.commitReshare; then the membership chain (DATA/membership.json) is
 * extended BEFORE the pending order is cleared, and the node reloads under the new view (new
 * members, in turn by new index) or deletes its shares and stops (removed members).
 *
 * Order acceptance (`acceptOrder`), in this order, each refusal changing nothing:
 *   1. structure and ≥ adminThreshold valid admin signatures (protocol/order.ts);
 *   2. the op is supported;
 *   3. freshness: issuedAt not more than ORDER_MAX_SKEW_MS in the future, not older than ORDER_MAX_AGE_MS;
 *   4. replay: the nonce was never accepted before (DATA/lifecycle.json `seen`);
 *   5. applicability: this node has a committed epoch e, the order's target epoch is e+1 (rotate)
 *      or e (refresh), and no other order is pending;
 *   6. persist {pending: order, seen += nonce} atomically, THEN start the ceremony and the spreading.
 * The same order arriving again while it is pending answers accepted (idempotent relay).
 *
 * Spreading: the accepting node relays the signed order to every other node with `dkg.order`
 * (retrying with backoff until each answers); every node that accepts relays it too. The ceremony
 * itself is pull-based: nodes that have not got the order yet answer NOT_FOUND, which pollers retry.
 *
 * Secrets: none here; the ceremony owns its secrets (see node/dkg-ceremony.ts).
 */
import { ErrorCode, KeymeshError, errorCode } from '../../protocol/errors.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { encodeSignedOrder, orderSigningBytes, parseSignedOrder, verifySignedOrder } from '../../protocol/order.ts'
import type { Order } from '../../protocol/order.ts'
import type { OrderReceipt } from '../../protocol/rpc.ts'
import { DkgCeremony, dkgEnvFromContext, runCeremony } from '../dkg-ceremony.ts'
import { RefreshCeremony, committedRefreshDigest, refreshEnvFromContext, runRefresh } from './refresh-ceremony.ts'
import { refreshSessionId, reshareSessionId } from '../../protocol/rpc.ts'
import { applyReshare } from '../../protocol/membership.ts'
import type { ClusterFile, ClusterNode } from '../../protocol/cluster.ts'
import { ReshareCeremony, RESHARE_FAILED_NAME, RESHARE_PROGRESS_NAME, RESHARE_RESULT_NAME, runReshare } from './reshare-ceremony.ts'
import type { ReshareEnv } from './reshare-ceremony.ts'
import { liveEpochs } from './refresh-ceremony.ts'
import { setTransition } from './transition.ts'
import { writeMembership } from './membership-file.ts'
import type { NodeContext } from '../context.ts'
import { readLifecycleState, writeLifecycleState } from './state.ts'
import type { LifecycleState } from './state.ts'

/** An order may be issued at most this far in the future (clock skew between admin and node). */
export const ORDER_MAX_SKEW_MS = 5 * 60_000
/** An order older than this is refused as stale. */
export const ORDER_MAX_AGE_MS = 24 * 3_600_000
/** Backoff range of the order relay (ms). */
const RELAY_BACKOFF_MIN_MS = 250
const RELAY_BACKOFF_MAX_MS = 5_000
const RELAY_TTL_MS = 3_000

interface Manager {
  state: LifecycleState
  /** Serialises order handling and state writes. */
  lock: Promise<unknown>
  /** The order being executed (verified), if any. */
  running?: { order: Order, text: string, done: Promise<void>, stop: AbortController }
}

const managers = new WeakMap<NodeContext, Promise<Manager>>()

async function managerOf (ctx: NodeContext): Promise<Manager> {
  let m = managers.get(ctx)
  if (m === undefined) {
    m = readLifecycleState(ctx.config.dataDir).then(state => ({ state, lock: Promise.resolve() }))
    managers.set(ctx, m)
    // A failed read must not poison the cache forever (e.g. a transient EMFILE).
    m.catch(() => { managers.delete(ctx) })
  }
  return await m
}

async function locked<T> (m: Manager, fn: () => Promise<T>): Promise<T> {
  const run = m.lock.then(fn, fn)
  m.lock = run.catch(() => {})
  return await run
}

/** Why an order is not fresh (issued too far in the future or too long ago), or undefined. Throws nothing. */
function staleness (order: Order): string | undefined {
  const now = Date.now()
  const issued = Date.parse(order.issuedAt)
  if (issued > now + ORDER_MAX_SKEW_MS) return `order issuedAt ${order.issuedAt} is in the future (node clock ${new Date(now).toISOString()})`
  if (issued < now - ORDER_MAX_AGE_MS) return `order issuedAt ${order.issuedAt} is older than ${ORDER_MAX_AGE_MS / 3_600_000} h (stale); issue a new order`
  return undefined
}

function refuse (code: ErrorCode, detail: string): OrderReceipt { return { accepted: false, code, detail: detail.slice(0, 240) } }

/**
 * The lowest epoch this node still decrypts/signs for (0 = none retired). Throws
 * KeymeshError(INTERNAL) when the lifecycle state file is corrupt.
 */
export async function minDecryptionEpoch (ctx: NodeContext): Promise<number> {
  return (await managerOf(ctx)).state.minDecryptionEpoch
}

/**
 * The DKG attempt that committed `epoch` on this node (0 unless a rotation retry committed it).
 * Used by the dkg.* handlers to keep serving the result of the committing session. Throws
 * KeymeshError(INTERNAL) when the lifecycle state file is corrupt.
 */
export async function committedAttempt (ctx: NodeContext, epoch: number): Promise<number> {
  if (epoch === 1) return 0
  return (await managerOf(ctx)).state.committedAttempts[String(epoch)] ?? 0
}

/**
 * The order pending on this node (accepted, not finished), if any: its op, nonce and epoch.
 * Used by the refresh.* handlers to answer CONFLICT when a peer runs another order. Throws
 * KeymeshError(INTERNAL) when the lifecycle state file is corrupt.
 */
export async function pendingOrderInfo (ctx: NodeContext): Promise<{ op: Order['op'], nonce: string, epoch: number } | undefined> {
  const m = await managerOf(ctx)
  if (m.running !== undefined) return { op: m.running.order.op, nonce: m.running.order.nonce, epoch: m.running.order.epoch }
  if (m.state.pending === null) return undefined
  try {
    const o = parseSignedOrder(m.state.pending).order
    return { op: o.op, nonce: o.nonce, epoch: o.epoch }
  } catch { return undefined }
}

/**
 * Handles a pushed signed order (from an admin's client or relayed by a node). Never throws for a
 * bad order: refusals are answered `{accepted:false, code, detail}` so the admin sees the reason.
 * Throws KeymeshError(INTERNAL) only when the state file cannot be read or written.
 */
export async function acceptOrder (ctx: NodeContext, text: string): Promise<OrderReceipt> {
  const r = await decideOrder(ctx, text)
  // Refusals are logged here (the audit record of the request says only that it was handled).
  if (!r.accepted) ctx.log.warn('lifecycle order refused', { code: r.code ?? null, detail: r.detail })
  return r
}

async function decideOrder (ctx: NodeContext, text: string): Promise<OrderReceipt> {
  let order: Order
  try {
    order = verifySignedOrder(parseSignedOrder(text), ctx.cluster)
  } catch (e) {
    return refuse(errorCode(e), e instanceof Error ? e.message : 'invalid order')
  }
  const m = await managerOf(ctx)
  return await locked(m, async () => {
    if (m.running?.order.nonce === order.nonce) return { accepted: true, detail: `order ${order.nonce.slice(0, 8)} is already running (${order.op} to epoch ${order.epoch})` }
    if (order.op !== 'rotate' && order.op !== 'refresh' && order.op !== 'reshare') return refuse(ErrorCode.BAD_INPUT, `order op "${order.op}" is not supported by this node version; see docs/LIFECYCLE.md`)
    const stale = staleness(order)
    if (stale !== undefined) return refuse(ErrorCode.BAD_INPUT, stale)
    if (m.state.seen.includes(order.nonce)) {
      const done = order.op === 'rotate' && (await ctx.store.getKeySetId(order.epoch)) !== undefined
      return refuse(ErrorCode.CONFLICT, `order ${order.nonce.slice(0, 8)} was already accepted${done ? ` and epoch ${order.epoch} is committed` : ''}; a replayed order is refused`)
    }
    const cur = await ctx.store.currentEpoch()
    if (cur === undefined) return refuse(ErrorCode.UNAVAILABLE, 'this node has no committed key set yet (initial DKG not finished)')
    if (order.op === 'rotate' && order.epoch !== cur + 1) return refuse(ErrorCode.CONFLICT, `order targets epoch ${order.epoch}, but this node's current epoch is ${cur} (expected ${cur + 1})`)
    if (order.op === 'refresh' && order.epoch !== cur) return refuse(ErrorCode.CONFLICT, `refresh order names epoch ${order.epoch}, but this node's current epoch is ${cur} (a refresh keeps the current epoch: expected ${cur})`)
    if (order.op === 'reshare') {
      if (order.epoch !== cur) return refuse(ErrorCode.CONFLICT, `reshare order names epoch ${order.epoch}, but this node's current epoch is ${cur} (a reshare keeps the current epoch: expected ${cur})`)
      const why = reshareApplicable(ctx, order)
      if (why !== undefined) return refuse(ErrorCode.BAD_INPUT, why)
    }
    if (m.state.pending !== null || m.running !== undefined) return refuse(ErrorCode.CONFLICT, 'another lifecycle order is still in progress on this node')
    const canonical = encodeSignedOrder(parseSignedOrder(text))
    const next: LifecycleState = { ...m.state, seen: [...m.state.seen, order.nonce], pending: canonical }
    try { await writeLifecycleState(ctx.config.dataDir, next) } catch (e) {
      throw new KeymeshError(ErrorCode.INTERNAL, `cannot persist the lifecycle state: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
    }
    m.state = next
    ctx.log.info('lifecycle order accepted', { op: order.op, epoch: order.epoch, nonce: order.nonce, minDecryptionEpoch: order.params.minDecryptionEpoch ?? null })
    start(ctx, m, order, canonical)
    if (order.op === 'refresh') return { accepted: true, detail: `refresh of epoch ${order.epoch} and every live epoch started (session ${refreshSessionId(order.epoch, order.nonce)})` }
    if (order.op === 'reshare') return { accepted: true, detail: `reshare to ${order.params.newThreshold ?? 0}-of-${order.params.members?.length ?? 0} of every live epoch started (session ${reshareSessionId(order.epoch, order.nonce)})` }
    return { accepted: true, detail: `${order.op} to epoch ${order.epoch} started (session e${order.epoch}-a${order.params.attempt ?? 0})` }
  })
}

/**
 * SHA-256 of the order's signing bytes (tag ‖ 0x00 ‖ canonical order, signatures excluded): binds
 * the rotation's DKG transcript to the order, so conflicting orders for one session cannot
 * complete together (§11.3). Throws BadInputError for an invalid order (cannot happen: verified).
 */
export function orderDigest (order: Order): Uint8Array { return sha256(orderSigningBytes(order)) }

/** Starts the ceremony of an accepted order and the relay (background). Never throws. */
function start (ctx: NodeContext, m: Manager, order: Order, text: string): void {
  const stop = new AbortController()
  const signal = AbortSignal.any([stop.signal, ctx.shutdownSignal])
  const done = (async () => {
    const relay = relayOrder(ctx, text, signal)
    const t0 = Date.now()
    let c: DkgCeremony | RefreshCeremony | ReshareCeremony
    if (order.op === 'reshare') {
      const env = reshareEnv(ctx, m, order, signal)
      setTransition(ctx, [...env.oldNodes, ...env.newNodes].filter(n => !ctx.cluster.nodes.some(x => x.peerId === n.peerId)))
      c = new ReshareCeremony(env, order.epoch, order.nonce, orderDigest(order))
      await runReshare(ctx, c)
    } else if (order.op === 'refresh') {
      c = new RefreshCeremony(refreshEnvFromContext(ctx, async () => m.state.minDecryptionEpoch), order.epoch, order.nonce, orderDigest(order))
      await runRefresh(ctx, c)
    } else {
      c = new DkgCeremony(dkgEnvFromContext(ctx), order.epoch, order.params.attempt ?? 0, orderDigest(order))
      await runCeremony(ctx, c)
    }
    stop.abort()
    await relay
    if (ctx.shutdownSignal.aborted && c.state.state !== 'done') return // resumes after a restart
    // A refresh stopped by a LOCAL error (store, corrupt record) keeps its order pending, so that
    // the restarted node resumes it with the same dealings instead of leaving its peers waiting.
    if ((c instanceof RefreshCeremony || c instanceof ReshareCeremony) && c.stoppedLocally) { m.running = undefined; return }
    await locked(m, async () => { await finish(ctx, m, order, c.state.state === 'done', Date.now() - t0) })
  })().catch((e: unknown) => { ctx.log.error('lifecycle order failed', { op: order.op, epoch: order.epoch, code: errorCode(e) }) })
  m.running = { order, text, done, stop }
}

/** Ends an order: applies retirement after a commit, clears `pending`. Throws fs errors. */
async function finish (ctx: NodeContext, m: Manager, order: Order, ok: boolean, ms: number): Promise<void> {
  if (order.op === 'reshare') { await finishReshare(ctx, m, order, ok, ms); return }
  const min = ok && order.op === 'rotate' && order.params.minDecryptionEpoch !== undefined ? Math.max(m.state.minDecryptionEpoch, order.params.minDecryptionEpoch) : m.state.minDecryptionEpoch
  const attempt = order.params.attempt ?? 0
  const committedAttempts = ok && order.op === 'rotate' && attempt !== 0 ? { ...m.state.committedAttempts, [String(order.epoch)]: attempt } : m.state.committedAttempts
  const next: LifecycleState = { ...m.state, minDecryptionEpoch: min, pending: null, committedAttempts }
  await writeLifecycleState(ctx.config.dataDir, next)
  m.state = next
  m.running = undefined
  if (ok) ctx.log.info('lifecycle order done', { op: order.op, epoch: order.epoch, ms, minDecryptionEpoch: min })
  else ctx.log.warn('lifecycle order failed; nothing was committed', { op: order.op, epoch: order.epoch, ms, detail: ctx.dkgStatus.detail ?? '' })
}

/** Relays the order to every other node until each has answered (or `signal` aborts). Never rejects. */
async function relayOrder (ctx: NodeContext, text: string, signal: AbortSignal): Promise<void> {
  // A joining node has no old view to relay to (the admin pushed the order to the old members).
  if (joins.has(ctx)) return
  const others = ctx.cluster.nodes.map(n => n.index).filter(i => i !== ctx.selfIndex)
  await Promise.all(others.map(async (i) => {
    let backoff = RELAY_BACKOFF_MIN_MS
    while (!signal.aborted) {
      try {
        const r = await ctx.peers.call(i, 'dkg.order', { order: text }, { signal: AbortSignal.any([signal, AbortSignal.timeout(RELAY_TTL_MS)]), ttlMs: RELAY_TTL_MS })
        if (r.accepted || r.code !== ErrorCode.UNAVAILABLE) {
          if (!r.accepted) ctx.log.warn('lifecycle order refused by a peer', { peer: i, code: r.code ?? null, detail: r.detail })
          return
        }
      } catch { /* unreachable or busy: retry */ }
      await new Promise<void>(resolve => { const t = setTimeout(resolve, backoff); t.unref(); signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true }) })
      backoff = Math.min(RELAY_BACKOFF_MAX_MS, backoff * 2)
    }
  }))
}

/**
 * Called at node start once epoch 1 is committed: resumes a pending order (its ceremony resumes
 * from the persisted progress), or finishes one whose epoch committed just before a crash.
 * Throws KeymeshError(INTERNAL) when the state file is corrupt.
 */
export async function resumeLifecycle (ctx: NodeContext): Promise<void> {
  const m = await managerOf(ctx)
  await locked(m, async () => {
    if (m.state.pending === null || m.running !== undefined) return
    let order: Order
    try {
      order = verifySignedOrder(parseSignedOrder(m.state.pending), ctx.cluster)
    } catch (e) {
      // The cluster file changed under a pending order (e.g. admins replaced): drop it, loudly.
      ctx.log.error('pending lifecycle order no longer verifies; dropped', { code: errorCode(e) })
      const next = { ...m.state, pending: null }
      await writeLifecycleState(ctx.config.dataDir, next)
      m.state = next
      return
    }
    // Committed just before a crash: rotate → the epoch exists; refresh → its public result record;
    // reshare → its result marker (new members) or no shares left (a removed member).
    const committed = order.op === 'reshare'
      ? await reshareEndedHere(ctx, order)
      : order.op === 'refresh'
        ? (await committedRefreshDigest(ctx, refreshSessionId(order.epoch, order.nonce))) !== undefined
        : (await ctx.store.getKeySetId(order.epoch)) !== undefined
    if (committed) {
      await finish(ctx, m, order, true, 0)
      return
    }
    ctx.log.info('lifecycle order resumed', { op: order.op, epoch: order.epoch, nonce: order.nonce })
    start(ctx, m, order, m.state.pending)
  })
}

/** Resolves when the running order (if any) has ended. Never rejects. For tests and shutdown. */
export async function lifecycleIdle (ctx: NodeContext): Promise<void> {
  const m = managers.get(ctx)
  if (m === undefined) return
  await (await m.catch(() => undefined))?.running?.done
}

// ---------------------------------------------------------------------------------------------
// Reshare

/** Joining nodes: the old view (dealers) and the membership chain before the join order. */
const joins = new WeakMap<NodeContext, { oldView: ClusterFile, oldChain: string[] }>()

/** The view a reshare order applies to on this node: the old view of a joining node, else ctx.cluster. */
function oldViewOf (ctx: NodeContext): ClusterFile { return joins.get(ctx)?.oldView ?? ctx.cluster }
function oldChainOf (ctx: NodeContext): string[] { return joins.get(ctx)?.oldChain ?? ctx.membership?.orders ?? [] }

/** Why a verified reshare order cannot apply to this node's view, or undefined. Never throws. */
function reshareApplicable (ctx: NodeContext, order: Order): string | undefined {
  const view = oldViewOf(ctx)
  try { applyReshare(view, order) } catch (e) { return `reshare order does not apply to this cluster: ${e instanceof Error ? e.message : 'invalid'}` }
  const chain = oldChainOf(ctx)
  const lastText = chain[chain.length - 1]
  if (lastText !== undefined) {
    const last = parseSignedOrder(lastText).order
    if (Date.parse(order.issuedAt) <= Date.parse(last.issuedAt)) return `reshare order issued at ${order.issuedAt}, not after the last committed reshare (${last.issuedAt}); issue a new order`
  }
  const members = order.params.members ?? []
  const same = members.length === view.nodes.length && members.every((x, i) => x.peerId === view.nodes[i]?.peerId && x.addresses.join() === view.nodes[i]?.addresses.join())
  if (same && order.params.newThreshold === view.threshold) return 'reshare order changes neither the members nor the threshold (use a refresh order)'
  return undefined
}

function reshareEnv (ctx: NodeContext, m: Manager, order: Order, signal: AbortSignal): ReshareEnv {
  const log = ctx.log.child({ component: 'reshare' })
  const oldView = oldViewOf(ctx)
  const newNodes: ClusterNode[] = (order.params.members ?? []).map(x => ({ index: x.index, peerId: x.peerId, addresses: [...x.addresses] }))
  const selfOld = oldView.nodes.find(n => n.peerId === ctx.peerId)?.index
  const selfNew = newNodes.find(n => n.peerId === ctx.peerId)?.index
  const peers = ctx.peers
  return {
    clusterId: ctx.cluster.clusterId,
    oldNodes: oldView.nodes,
    newNodes,
    oldThreshold: oldView.threshold,
    newThreshold: order.params.newThreshold ?? 0,
    ...(selfOld !== undefined ? { selfOld } : {}),
    ...(selfNew !== undefined ? { selfNew } : {}),
    call: async (node, op, body, ttlMs, sig) => {
      if (peers.callNode === undefined) throw new KeymeshError(ErrorCode.INTERNAL, 'this node cannot call peers by address')
      return await peers.callNode(node, op, body, { signal: AbortSignal.any([sig, AbortSignal.timeout(ttlMs)]), ttlMs })
    },
    liveEpochs: async () => await liveEpochs(ctx, m.state.minDecryptionEpoch),
    generation: async (epoch) => {
      const w = await ctx.store.getCurrent(epoch, 'wrap')
      const s = await ctx.store.getCurrent(epoch, 'sign')
      if (w === undefined || s === undefined || w.keySetId !== s.keySetId) return undefined
      return { keySet: w.keySet, keySetId: w.keySetId, wrap: w.share, sign: s.share }
    },
    localKeySet: async (epoch) => await ctx.store.getKeySet(epoch),
    loadProgress: async (session) => await ctx.store.getDkg(session, RESHARE_PROGRESS_NAME),
    saveProgress: async (session, record) => { await ctx.store.putDkg(session, RESHARE_PROGRESS_NAME, record) },
    commit: async (session, entries, result) => { await ctx.store.commitReshare(entries, session, result) },
    committedResult: async (session) => await ctx.store.getDkg(session, RESHARE_RESULT_NAME),
    markFailed: async (session) => { await ctx.store.putDkg(session, RESHARE_FAILED_NAME, new Uint8Array([1])) },
    log: (msg, fields) => { log.info(msg, fields) },
    setStatus: (st) => { ctx.dkgStatus = st },
    signal
  }
}

/** Whether a pending reshare already ended here: committed (new member) or shares gone (removed). Throws on a store failure. */
async function reshareEndedHere (ctx: NodeContext, order: Order): Promise<boolean> {
  const isNew = (order.params.members ?? []).some(x => x.peerId === ctx.peerId)
  if (isNew) return (await ctx.store.getDkg(reshareSessionId(order.epoch, order.nonce), RESHARE_RESULT_NAME)) !== undefined
  const cur = await ctx.store.currentEpoch()
  return cur !== undefined && (await ctx.store.getShare(cur, 'wrap')) === undefined
}

/**
 * Ends a reshare order. Committed new member: membership chain extended (written BEFORE `pending`
 * is cleared, so a crash in between finishes it again at the next start), then a reload in turn (reloadInTurn)
 * under the new view. Removed member (its ceremony saw k' new members commit): ALL shares deleted,
 * chain extended, pending cleared, node stopped. Failed: pending cleared; the old view stays.
 * Throws fs / store errors.
 */
async function finishReshare (ctx: NodeContext, m: Manager, order: Order, ok: boolean, ms: number): Promise<void> {
  const text = m.state.pending ?? m.running?.text ?? ''
  const selfNew = (order.params.members ?? []).find(x => x.peerId === ctx.peerId)?.index
  const session = reshareSessionId(order.epoch, order.nonce)
  if (ok) {
    if (selfNew === undefined) await ctx.store.deleteAllShares(session)
    const chain = [...oldChainOf(ctx), encodeSignedOrder(parseSignedOrder(text))]
    await writeMembership(ctx.config.dataDir, ctx.cluster.clusterId, chain)
    // Served by cluster.get at once (clients switch to the new view before this node reloads).
    ctx.membership = { revision: chain.length + 1, orders: chain }
  }
  const next: LifecycleState = { ...m.state, pending: null }
  await writeLifecycleState(ctx.config.dataDir, next)
  m.state = next
  m.running = undefined
  if (!ok) {
    setTransition(ctx, undefined)
    ctx.log.warn('lifecycle order failed; nothing was committed', { op: order.op, epoch: order.epoch, ms, detail: ctx.dkgStatus.detail ?? '' })
    if (joins.has(ctx)) ctx.log.error('the reshare this node was joining by failed; it holds no shares. Stop it; it can join by a new order')
    return
  }
  if (selfNew === undefined) {
    ctx.log.error('THIS NODE WAS REMOVED FROM THE CLUSTER by reshare order; its shares were deleted; it stops now. Remove it from your deployment', { order: order.nonce.slice(0, 8), issuedAt: order.issuedAt, ms })
    ctx.requestRestart?.('stop', 0)
    return
  }
  ctx.log.info('lifecycle order done', { op: order.op, epoch: order.epoch, ms, newIndex: selfNew, threshold: order.params.newThreshold ?? null, n: order.params.members?.length ?? null })
  // In turn: at most one node of the new view reloads at a time (background; the lock is free).
  const members = (order.params.members ?? []).map(x => ({ index: x.index, peerId: x.peerId, addresses: [...x.addresses] }))
  // "Since": this ceremony's (re)start, or the order's issue time if earlier (a member that
  // restarted after the others reloaded must not wait for reloads that already happened).
  const since = Math.min(Date.now() - ms, Date.parse(order.issuedAt))
  reloadInTurn(ctx, members, selfNew, since).catch(() => { ctx.requestRestart?.('reload', selfNew * RELOAD_STAGGER_MS) })
}

/** A member that has not answered `status` this long counts as down when waiting for its reload (ms). */
export const RELOAD_PEER_SILENT_MS = 3_000
/** Longest wait for one lower-index member's reload (ms). */
export const RELOAD_PEER_CAP_MS = 15_000

/**
 * Reloads this member after every member with a lower new index has reloaded (its `status`
 * uptime is shorter than the time since the ceremony started) or is down (no answer for
 * RELOAD_PEER_SILENT_MS), at most RELOAD_PEER_CAP_MS per member. A fixed stagger (index × 1 s)
 * let reloads overlap on a loaded machine, and with a member down two overlapping reloads can
 * leave fewer than k′ members serving. Throws only if the node cannot call peers.
 */
async function reloadInTurn (ctx: NodeContext, members: ClusterNode[], selfNew: number, since: number): Promise<void> {
  const signal = ctx.shutdownSignal
  for (const p of members.filter(x => x.index < selfNew && x.peerId !== ctx.peerId)) {
    const t0 = Date.now()
    let heard = t0
    while (!signal.aborted && Date.now() - t0 < RELOAD_PEER_CAP_MS) {
      try {
        const st = await ctx.peers.callNode?.(p, 'status', {}, { ttlMs: 1_500, signal: AbortSignal.any([signal, AbortSignal.timeout(1_500)]) })
        if (st === undefined) throw new KeymeshError(ErrorCode.INTERNAL, 'this node cannot call peers by address')
        heard = Date.now()
        if (st.uptimeMs < Date.now() - since) break
      } catch (e) {
        if (errorCode(e) === ErrorCode.INTERNAL) throw e
        if (Date.now() - heard >= RELOAD_PEER_SILENT_MS) break
      }
      await new Promise<void>(resolve => { const t = setTimeout(resolve, 200); t.unref() })
    }
  }
  ctx.requestRestart?.('reload', 300)
}

/** Delay per new index before a node reloads under the new view (ms). */
export const RELOAD_STAGGER_MS = 1_000  // fallback only (reloadInTurn)

/**
 * A joining node (`node start --join`): records its old view and chain, then accepts the order
 * (pending + seen) and starts the ceremony as a receiver, or resumes it. Never throws for a bad
 * order (logged and refused); throws KeymeshError(INTERNAL) when the state file cannot be written.
 */
export async function acceptJoin (ctx: NodeContext, text: string, oldView: ClusterFile, oldChain: string[]): Promise<OrderReceipt> {
  joins.set(ctx, { oldView, oldChain })
  const m = await managerOf(ctx)
  const order = verifySignedOrder(parseSignedOrder(text), ctx.genesis ?? ctx.cluster)
  return await locked(m, async () => {
    if (m.running?.order.nonce === order.nonce) return { accepted: true, detail: 'already running' }
    const canonical = encodeSignedOrder(parseSignedOrder(text))
    if (m.state.pending === canonical) {
      ctx.log.info('lifecycle order resumed', { op: order.op, epoch: order.epoch, nonce: order.nonce })
      start(ctx, m, order, canonical)
      return { accepted: true, detail: 'resumed' }
    }
    const stale = staleness(order)
    if (stale !== undefined) return refuse(ErrorCode.BAD_INPUT, stale)
    if (m.state.seen.includes(order.nonce)) return refuse(ErrorCode.CONFLICT, `join order ${order.nonce.slice(0, 8)} was already used here (it failed or finished)`)
    const why = reshareApplicable(ctx, order)
    if (why !== undefined) return refuse(ErrorCode.BAD_INPUT, why)
    const next: LifecycleState = { ...m.state, seen: [...m.state.seen, order.nonce], pending: canonical }
    await writeLifecycleState(ctx.config.dataDir, next)
    m.state = next
    ctx.log.info('joining the cluster by reshare order', { nonce: order.nonce, epoch: order.epoch, newThreshold: order.params.newThreshold ?? null })
    start(ctx, m, order, canonical)
    return { accepted: true, detail: 'joining' }
  })
}
