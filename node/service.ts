/**
 * The node service: `initNode` (create a data directory) and `startNode` (run the daemon).
 *
 * Start order: cluster file → identity (refuse if missing/corrupt) → storage key (refuse on a
 * wrong passphrase) → store (refuse if missing) → libp2p host with the allow-list gater → RPC
 * server → DKG ceremony (node/dkg-ceremony.ts `startDkgIfNeeded(ctx)`, when that module exists).
 * Nothing at start creates state: a node whose data directory is damaged stops with a message
 * instead of re-initialising (a new identity or empty store would strand the cluster's shares).
 *
 * Shutdown (SIGTERM/SIGINT or `stop()`): abort ctx.shutdownSignal, stop accepting RPC and wait
 * briefly for in-flight requests, stop the host, close the store (zeroes the storage key).
 */
import type { Libp2p } from 'libp2p'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { nodeByPeerId, parseClusterFile } from '../protocol/cluster.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { NotAuthorizedError } from '../protocol/errors.ts'
import { applyReshare, describeOrder, foldMembership } from '../protocol/membership.ts'
import type { Membership } from '../protocol/membership.ts'
import { parseSignedOrder, verifySignedOrder } from '../protocol/order.ts'
import { readMembership } from './lifecycle/membership-file.ts'
import { readLifecycleState } from './lifecycle/state.ts'
import { sleep } from './ceremony-kit.ts'
import { dataPaths } from './config.ts'
import type { NodeConfig, StorageKeySource } from './config.ts'
import { createNodeIdentity, loadNodeIdentity, peerIdOf } from './identity.ts'
import { INSECURE_DEV_WARNING, createStorageKey, unlockStorageKey } from './storage-key.ts'
import { LevelNodeStore } from './store.ts'
import { createHost } from './host.ts'
import { startRpcServer } from './rpc-server.ts'
import type { RpcServer } from './rpc-server.ts'
import { Libp2pPeerCaller } from './peer-caller.ts'
import { createLogger } from './log.ts'
import type { Logger } from './log.ts'
import type { NodeContext } from './context.ts'
import type { Faults } from './faults.ts'
import { handlers } from './handlers/index.ts'
import { auditedHandlers } from './handlers/audited.ts'
import { Governance } from './governance.ts'

const here = dirname(fileURLToPath(import.meta.url))

/** keymesh version (package.json), read once. */
export async function keymeshVersion (): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(here, '..', 'package.json'), 'utf8')) as { version?: unknown }
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0'
  } catch { return '0.0.0' }
}

/** Reads and validates a cluster file. Throws KeymeshError(BAD_INPUT) naming the path and field. */
export async function loadClusterFile (path: string): Promise<ClusterFile> {
  let text: string
  try { text = await readFile(path, 'utf8') } catch (e) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, `cannot read cluster file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try { return parseClusterFile(text) } catch (e) {
    if (e instanceof KeymeshError) throw new KeymeshError(e.code, `cluster file ${path}: ${e.message}`, { cause: e })
    throw e
  }
}

/** Result of `initNode`. */
export interface InitResult { peerId: string, dataDir: string, addresses: string[] }

/**
 * Creates a node data directory: DATA (0700), DATA/identity.key, DATA/storage-key.json, DATA/db.
 * Refuses (KeymeshError CONFLICT) when DATA already holds any of them. Throws BAD_INPUT for an
 * unreadable passphrase/key file.
 */
export async function initNode (cfg: NodeConfig, opts: { log?: Logger, scryptLogN?: number } = {}): Promise<InitResult> {
  const log = opts.log ?? createLogger({ level: cfg.logLevel })
  const p = dataPaths(cfg.dataDir)
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 })
  const st = await stat(cfg.dataDir)
  if (!st.isDirectory()) throw new KeymeshError(ErrorCode.BAD_INPUT, `${cfg.dataDir} is not a directory`)
  const existing = (await readdir(cfg.dataDir)).filter(f => ['identity.key', 'storage-key.json', 'db'].includes(f))
  if (existing.length > 0) {
    throw new KeymeshError(ErrorCode.CONFLICT, `${cfg.dataDir} is already initialised (has ${existing.join(', ')}); refusing to overwrite. Use another --data directory`)
  }
  if (cfg.storageKey.kind === 'insecure-dev') process.stderr.write(INSECURE_DEV_WARNING + '\n')
  const warn = (m: string): void => { log.warn(m) }
  const key = await createStorageKey(cfg.storageKey, p.storageParams, { warn, ...(opts.scryptLogN !== undefined ? { logN: opts.scryptLogN } : {}) })
  const store = await LevelNodeStore.open(p.db, key, { create: true })
  await store.close()
  const privateKey = await createNodeIdentity(p.identity)
  return { peerId: peerIdOf(privateKey), dataDir: cfg.dataDir, addresses: cfg.listen }
}

/** A running node. */
export interface RunningNode {
  ctx: NodeContext
  host: Libp2p
  /** Stops everything; idempotent; never throws. */
  stop: () => Promise<void>
  /** Resolves when the node asks to be reloaded under a new membership or stopped for good (removed). */
  restartRequested: Promise<{ how: 'reload' | 'stop', delayMs: number }>
}

/**
 * How this node stands in its cluster at start: a member of the effective view, a node joining by
 * a reshare order, or a node removed by a committed reshare. Throws KeymeshError (BAD_INPUT for a
 * bad --join order or a PeerId in no view; INTERNAL for a corrupt membership/lifecycle file).
 */
async function standing (cfg: NodeConfig, genesis: ClusterFile, peerId: string, log: Logger): Promise<
  | { kind: 'member', membership: Membership }
  | { kind: 'joining', membership: Membership, text: string, view: ClusterFile }
  | { kind: 'removed', membership: Membership, by: string }> {
  const membership = await readMembership(cfg.dataDir, genesis)
  if (nodeByPeerId(membership.cluster, peerId) !== undefined) {
    if (cfg.joinPath !== undefined) log.info('--join ignored: this node is a member of the cluster (membership revision ' + String(membership.revision) + ')')
    return { kind: 'member', membership }
  }
  // Removed by a committed order of the chain: it was a member before the order, not after.
  let prev = genesis
  for (const [i, text] of membership.orders.entries()) {
    const next = foldMembership(genesis, membership.orders.slice(0, i + 1)).cluster
    if (nodeByPeerId(prev, peerId) !== undefined && nodeByPeerId(next, peerId) === undefined) return { kind: 'removed', membership, by: text }
    prev = next
  }
  let text: string | undefined
  if (cfg.joinPath !== undefined) {
    try { text = await readFile(cfg.joinPath, 'utf8') } catch (e) {
      throw new KeymeshError(ErrorCode.BAD_INPUT, `cannot read --join ${cfg.joinPath}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
    }
  } else {
    const pending = (await readLifecycleState(cfg.dataDir)).pending
    if (pending !== null) text = pending
  }
  if (text === undefined) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, `this node's PeerId ${peerId} is not a node of cluster file ${cfg.clusterPath ?? ''} (membership revision ${membership.revision}); a new node joins with --join <signed reshare order>`)
  }
  let view: ClusterFile
  try {
    const order = verifySignedOrder(parseSignedOrder(text), genesis)
    if (order.op !== 'reshare') throw new KeymeshError(ErrorCode.BAD_INPUT, `expected a reshare order, got ${order.op}`)
    view = applyReshare(membership.cluster, order)
  } catch (e) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, `--join order: ${e instanceof Error ? e.message : 'invalid'}`, { cause: e })
  }
  if (nodeByPeerId(view, peerId) === undefined) throw new KeymeshError(ErrorCode.BAD_INPUT, `--join order does not list this node (PeerId ${peerId}) among its members`)
  return { kind: 'joining', membership, text, view }
}

/** Signature of the optional DKG hook in node/dkg-ceremony.ts. */
type DkgHook = (ctx: NodeContext) => unknown

async function loadDkgHook (log: Logger): Promise<DkgHook | undefined> {
  // The ceremony module is optional (written separately); load it only if the file exists so a
  // genuine error inside it is reported instead of being mistaken for "not there".
  const file = join(here, 'dkg-ceremony.ts')
  if (!existsSync(file)) return undefined
  const mod = await import(pathToFileURL(file).href) as { startDkgIfNeeded?: unknown }
  if (typeof mod.startDkgIfNeeded !== 'function') { log.warn('node/dkg-ceremony.ts has no startDkgIfNeeded export'); return undefined }
  return mod.startDkgIfNeeded as DkgHook
}

function describeKeySource (s: StorageKeySource): string {
  return s.kind === 'insecure-dev' ? 'insecure-dev' : `${s.kind}:${s.path}`
}

/**
 * Starts the node daemon. Throws KeymeshError with a clear message (BAD_INPUT for a missing or
 * corrupt data dir, cluster file or identity not in the cluster; VERIFICATION_FAILED for a wrong
 * passphrase; UNAVAILABLE when a listen address cannot be bound).
 */
export async function startNode (cfg: NodeConfig, opts: { log?: Logger, faults?: Faults } = {}): Promise<RunningNode> {
  const log = opts.log ?? createLogger({ level: cfg.logLevel })
  if (cfg.clusterPath === undefined) throw new KeymeshError(ErrorCode.BAD_INPUT, '--cluster: required')
  const p = dataPaths(cfg.dataDir)
  if (!existsSync(cfg.dataDir)) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, `data directory ${cfg.dataDir} does not exist. Run \`keymesh node init --data ${cfg.dataDir}\` for a new node, or restore it from backup`)
  }
  const genesis = await loadClusterFile(cfg.clusterPath)
  const privateKey = await loadNodeIdentity(p.identity)
  const peerId = peerIdOf(privateKey)
  const st = await standing(cfg, genesis, peerId, log)
  if (cfg.storageKey.kind === 'insecure-dev') process.stderr.write(INSECURE_DEV_WARNING + '\n')
  if (st.kind === 'removed') {
    // Defence in depth: the shares were deleted when the removal finished; delete again if a crash
    // came in between, then refuse to start.
    const key = await unlockStorageKey(cfg.storageKey, p.storageParams, { warn: m => { log.warn(m) } })
    const store = await LevelNodeStore.open(p.db, key)
    try { await store.deleteAllShares() } finally { await store.close() }
    const o = parseSignedOrder(st.by).order
    throw new NotAuthorizedError(`this node was removed from the cluster by reshare order ${describeOrder(st.by)}; its shares were deleted; remove it from your deployment (order nonce ${o.nonce})`)
  }
  const cluster = st.kind === 'joining' ? st.view : st.membership.cluster
  const self = nodeByPeerId(cluster, peerId)
  if (self === undefined) throw new KeymeshError(ErrorCode.INTERNAL, 'node not in its own view')
  const key = await unlockStorageKey(cfg.storageKey, p.storageParams, { warn: m => { log.warn(m) } })
  const store = await LevelNodeStore.open(p.db, key)
  const nlog = log.child({ node: self.index })
  const listen = cfg.listen.length > 0 ? cfg.listen : self.addresses
  // Policy and audit (node/governance.ts): the gater asks the policy in force (bootstrap rule:
  // the cluster file's clients) on every connection.
  let gov: Governance
  try {
    gov = await Governance.open({ dataDir: cfg.dataDir, cluster, privateKey, peerId, log: nlog, floor: { get: async () => await store.getPolicyFloor(), raise: async v => { await store.raisePolicyFloor(v) } } })
  } catch (e) {
    await store.close()
    throw e
  }
  let host: Libp2p
  try {
    host = await createHost({ privateKey, listen, allow: pid => gov.allowPeer(pid) })
  } catch (e) {
    await gov.close()
    await store.close()
    throw new KeymeshError(ErrorCode.UNAVAILABLE, `cannot listen on ${listen.join(', ')}: ${(e as Error).message}`, { cause: e })
  }
  const shutdown = new AbortController()
  const ctx: NodeContext = {
    config: cfg,
    cluster,
    selfIndex: self.index,
    peerId,
    store,
    log: nlog,
    peers: new Libp2pPeerCaller(host, cluster, self.index, cfg.peerCallTimeoutMs),
    startedAt: Date.now(),
    version: await keymeshVersion(),
    dkgStatus: { state: 'idle' },
    shutdownSignal: shutdown.signal,
    membership: { revision: st.membership.revision, orders: st.membership.orders },
    genesis
  }
  let requestRestart: (r: { how: 'reload' | 'stop', delayMs: number }) => void = () => {}
  const restartRequested = new Promise<{ how: 'reload' | 'stop', delayMs: number }>(resolve => { requestRestart = resolve })
  ctx.requestRestart = (how, delayMs) => { requestRestart({ how, delayMs }) }
  // Test-only fault injection (node/faults.ts): set only by test/fixtures/lying-node.ts; the CLI never passes it.
  if (opts.faults !== undefined) Object.assign(ctx, { faults: opts.faults })
  let server: RpcServer
  try {
    gov.attach(ctx, host)
    server = await startRpcServer(host, ctx, auditedHandlers(handlers))
  } catch (e) {
    await host.stop(); await gov.close(); await store.close()
    throw e
  }
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      nlog.info('node stopping')
      shutdown.abort()
      await server.close(2_000).catch(() => {})
      try { await host.stop() } catch (e) { nlog.warn('host stop failed', { error: e as Error }) }
      await gov.close() // records the stop and signs the final audit head
      await store.close().catch(e => { nlog.warn('store close failed', { error: e as Error }) })
      nlog.info('node stopped')
    })()
    return await stopping
  }
  nlog.info('node ready', {
    peerId,
    index: self.index,
    clusterId: cluster.clusterId,
    threshold: cluster.threshold,
    n: cluster.nodes.length,
    membershipRevision: st.membership.revision,
    joining: st.kind === 'joining',
    addresses: host.getMultiaddrs().map(a => a.toString()),
    keySource: describeKeySource(cfg.storageKey)
  })
  if (st.kind === 'member' && st.membership.orders.length > 0) {
    // Members removed by the LAST reshare may still be confirming its commit (reshare.result) after
    // this node reloaded: keep admitting them as nodes without an index (every other node-only op
    // needs an index or a session they are a member of).
    const prev = foldMembership(genesis, st.membership.orders.slice(0, -1)).cluster
    const removed = prev.nodes.filter(n => nodeByPeerId(cluster, n.peerId) === undefined)
    if (removed.length > 0) {
      const { setTransition } = await import('./lifecycle/transition.ts')
      setTransition(ctx, removed)
    }
  }
  if (st.kind === 'member') {
    // A member that was down during a reshare that removed it never saw the order: ask the others
    // for a newer membership (the members of a last reshare still admit the nodes it removed).
    // Repeated (MEMBERSHIP_CHECK_MS): a member cut off by a partition during a reshare never
    // restarts, and at start the members may still be reloading.
    watchMembership(ctx, genesis, st.membership).catch((e: unknown) => { nlog.warn('membership check failed', { error: e as Error }) })
  }
  if (st.kind === 'joining') {
    // No DKG hook: a joining node gets its shares from the reshare, never from a DKG.
    joinCluster(ctx, st.membership, st.text, genesis).catch((e: unknown) => {
      ctx.dkgStatus = { state: 'failed', detail: `join: ${e instanceof Error ? e.message : 'error'}`.slice(0, 240) }
      nlog.error('cannot join the cluster', { error: e as Error })
    })
    return { ctx, host, stop, restartRequested }
  }
  try {
    const hook = await loadDkgHook(nlog)
    if (hook !== undefined) {
      Promise.resolve(hook(ctx)).catch(e => {
        ctx.dkgStatus = { state: 'failed', detail: e instanceof KeymeshError ? e.code : 'INTERNAL' }
        nlog.error('DKG ceremony failed', { error: e as Error })
      })
    }
  } catch (e) {
    nlog.error('cannot load the DKG ceremony', { error: e as Error })
  }
  return { ctx, host, stop, restartRequested }
}

/** Interval of the membership check after the first minute (ms); every 5 s before. */
export const MEMBERSHIP_CHECK_MS = 30_000
const warnedRevisions = new WeakMap<NodeContext, Set<string>>()

/** Logs `msg` once per (node, key). Never throws. */
function warnOnce (ctx: NodeContext, key: string, msg: string, fields: Record<string, unknown>): void {
  let seen = warnedRevisions.get(ctx)
  if (seen === undefined) { seen = new Set(); warnedRevisions.set(ctx, seen) }
  if (seen.has(key)) return
  seen.add(key)
  ctx.log.warn(msg, fields)
}

/**
 * Runs checkRemovedWhileDown at start, every 5 s for the first minute, then every
 * MEMBERSHIP_CHECK_MS until the node stops; skipped while a lifecycle order is pending (its
 * ceremony handles the membership). Rejects only on a store or file failure.
 */
async function watchMembership (ctx: NodeContext, genesis: ClusterFile, start: Membership): Promise<void> {
  for (let round = 0; !ctx.shutdownSignal.aborted; round++) {
    const pending = (await readLifecycleState(ctx.config.dataDir)).pending
    // ctx.membership is extended by a commit here (before the reload): never "behind" ourselves.
    const orders = ctx.membership?.orders ?? start.orders
    const local = orders.length === start.orders.length ? start : foldMembership(genesis, orders)
    if (pending === null) {
      try { await checkRemovedWhileDown(ctx, genesis, local) } catch (e) {
        if (ctx.shutdownSignal.aborted) return
        warnOnce(ctx, `error:${e instanceof Error ? e.message : String(e)}`, 'membership check failed; retrying', { error: e as Error })
      }
    }
    await sleep(round < 12 ? 5_000 : MEMBERSHIP_CHECK_MS, ctx.shutdownSignal)
  }
}

/**
 * One membership check (watchMembership repeats it): asks the other nodes of this node's view for a newer membership
 * (cluster.get). When a chain that verifies against the genesis admins extends ours and no longer
 * lists this node, and at least k′ members of the membership after the removing order serve a
 * chain containing it (proof that it committed), the node was removed while it was down: it
 * deletes its shares, records the chain and stops (the next start refuses with exit 3). With fewer
 * confirmations it only warns (once). When the chain still lists this node, it catches up
 * (node/lifecycle/catch-up.ts). Throws on a store or file failure and when the catch-up fails.
 */
async function checkRemovedWhileDown (ctx: NodeContext, genesis: ClusterFile, local: Membership): Promise<void> {
  // Chains (admin-signed orders, folded onto the genesis) by answering PeerId.
  const chains = new Map<string, Membership>()
  const ask = async (nodes: ClusterFile['nodes']): Promise<void> => {
    await Promise.all(nodes.filter(n => n.peerId !== ctx.peerId && !chains.has(n.peerId)).map(async (n) => {
      const a = await ctx.peers.callNode?.(n, 'cluster.get', { have: local.revision }, { ttlMs: 3_000, signal: ctx.shutdownSignal }).catch(() => undefined)
      if (a?.orders === undefined || a.revision <= local.revision) return
      let m: Membership
      try { m = foldMembership(genesis, a.orders) } catch { return }
      if (local.orders.some((o, x) => m.orders[x] !== o)) return
      chains.set(n.peerId, m)
    }))
  }
  /** Members of another view are admitted (as transition peers: reshare.* and cluster.get only) so that they can be dialled. */
  const askOthers = async (nodes: ClusterFile['nodes']): Promise<void> => {
    const { setTransition, transitionOf } = await import('./lifecycle/transition.ts')
    const extra = nodes.filter(n => n.peerId !== ctx.peerId && !ctx.cluster.nodes.some(x => x.peerId === n.peerId) && !transitionOf(ctx).some(x => x.peerId === n.peerId))
    if (extra.length > 0) setTransition(ctx, [...transitionOf(ctx), ...extra])
    await ask(nodes)
  }
  await ask(ctx.cluster.nodes)
  let best: Membership | undefined
  for (const m of chains.values()) if (best === undefined || m.revision > best.revision) best = m
  if (best === undefined || ctx.shutdownSignal.aborted) return
  if (nodeByPeerId(best.cluster, ctx.peerId) !== undefined) {
    // Kept by a reshare it missed (down throughout): catch up when k′ members of the newest
    // membership serve a chain containing every order (members record it only after committing),
    // unless this node holds the order itself (then its resumed ceremony catches up).
    const pending = (await readLifecycleState(ctx.config.dataDir)).pending
    if (pending !== null) return
    const newest = best
    const vouch = (): number => newest.cluster.nodes.filter(n => { const m = chains.get(n.peerId); return m !== undefined && newest.orders.every((o, j) => m.orders[j] === o) }).length
    if (vouch() < newest.cluster.threshold) await askOthers(newest.cluster.nodes)
    if (vouch() < newest.cluster.threshold) {
      warnOnce(ctx, `keep:${newest.revision}`, 'a node serves a newer membership that keeps this node, but fewer than k′ of its members confirm it (yet); still serving the old one', { revision: newest.revision, confirmations: vouch(), needed: newest.cluster.threshold })
      return
    }
    const { catchUpMissedReshare } = await import('./lifecycle/catch-up.ts')
    await catchUpMissedReshare(ctx, newest)
    return
  }
  // The first order of the chain that removes this node, and the membership right after it.
  const x = best.orders.findIndex((_, j) => nodeByPeerId(foldMembership(genesis, best.orders.slice(0, j + 1)).cluster, ctx.peerId) === undefined)
  if (x < 0) return
  const removing = best.orders.slice(0, x + 1)
  const after = foldMembership(genesis, removing).cluster
  // Signatures prove the admins ORDERED the removal, not that it committed (a failed reshare's
  // order is just as well signed), and one member could serve such a chain. Only k′ members of the
  // membership after the order, each serving a chain that contains it (a member records the chain
  // only after committing), prove the commit: then deleting the shares is safe.
  const vouchers = (): number => after.nodes.filter(n => { const m = chains.get(n.peerId); return m !== undefined && removing.every((o, j) => m.orders[j] === o) }).length
  if (vouchers() < after.threshold) await askOthers(after.nodes)
  if (vouchers() < after.threshold) {
    warnOnce(ctx, `removed:${best.revision}`, 'a node reports that a reshare order removed this node, but fewer than k′ members of the new membership confirm it committed (yet); nothing deleted, still serving', { order: describeOrder(best.orders[x] as string), confirmations: vouchers(), needed: after.threshold })
    return
  }
  ctx.log.error('THIS NODE WAS REMOVED FROM THE CLUSTER by a reshare order while it was down; its shares are deleted now; it stops. Remove it from your deployment', { order: describeOrder(best.orders[x] as string), revision: best.revision, confirmations: vouchers() })
  await ctx.store.deleteAllShares()
  const { writeMembership } = await import('./lifecycle/membership-file.ts')
  await writeMembership(ctx.config.dataDir, genesis.clusterId, best.orders)
  ctx.requestRestart?.('stop', 0)
}

/**
 * A joining node: learns the latest membership chain from the order's members and its own view
 * (cluster.get; the highest revision that folds against the genesis admins and does not already
 * contain the order), then accepts the order as a receiver. Throws on a state-file failure.
 */
async function joinCluster (ctx: NodeContext, local: Membership, text: string, genesis: ClusterFile): Promise<void> {
  const order = parseSignedOrder(text).order
  const targets = [...(order.params.members ?? []), ...local.cluster.nodes].filter((n, i, a) => n.peerId !== ctx.peerId && a.findIndex(x => x.peerId === n.peerId) === i)
  let best = local
  const { setTransition } = await import('./lifecycle/transition.ts')
  setTransition(ctx, targets.filter(n => !ctx.cluster.nodes.some(x => x.peerId === n.peerId)))
  for (let round = 0; !ctx.shutdownSignal.aborted; round++) {
    let answered = 0
    await Promise.all(targets.map(async n => {
      try {
        const r = await ctx.peers.callNode?.(n, 'cluster.get', { have: 0 }, { ttlMs: 2_000, signal: ctx.shutdownSignal })
        if (r?.orders === undefined) return
        const m = foldMembership(genesis, r.orders)
        if (m.orders.some(o => parseSignedOrder(o).order.nonce === order.nonce)) return
        answered++
        if (m.revision > best.revision) best = m
      } catch { /* unreachable or not yet admitting us */ }
    }))
    if (answered > 0) break
    await new Promise(resolve => setTimeout(resolve, Math.min(2_000, 200 * (round + 1))))
  }
  if (ctx.shutdownSignal.aborted) return
  ctx.log.info('join: membership learned', { revision: best.revision, oldNodes: best.cluster.nodes.length, oldThreshold: best.cluster.threshold })
  const { acceptJoin } = await import('./lifecycle/manager.ts')
  const r = await acceptJoin(ctx, text, best.cluster, best.orders)
  if (!r.accepted) {
    ctx.dkgStatus = { state: 'failed', detail: `join refused: ${r.detail}`.slice(0, 240) }
    ctx.log.error('join order refused', { code: r.code ?? null, detail: r.detail })
  }
}

/**
 * Runs the node until SIGTERM/SIGINT, then stops cleanly and exits 0.
 * Throws what startNode throws.
 */
export async function runNode (cfg: NodeConfig): Promise<void> {
  let node = await startNode(cfg)
  const onSignal = (sig: string): void => {
    node.ctx.log.info('signal', { signal: sig })
    node.stop().then(() => process.exit(0), () => process.exit(1))
  }
  // Reshare: reload under the new membership (same process), or stop for good when removed.
  const loop = async (): Promise<void> => {
    for (;;) {
      const r = await node.restartRequested
      if (r.how === 'stop') {
        await node.stop()
        process.exit(0)
      }
      node.ctx.log.info('reloading under the new membership', { delayMs: r.delayMs })
      await new Promise(resolve => setTimeout(resolve, r.delayMs))
      await node.stop()
      node = await startNode(cfg)
    }
  }
  loop().catch((e: unknown) => {
    process.stderr.write(`error: reload failed: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  })
  // A stray rejected promise inside a library (e.g. a stream torn down by a misbehaving peer) must
  // not take the node down: log it and keep serving. Synchronous exceptions still crash (and the
  // service manager restarts the node).
  process.on('unhandledRejection', (reason) => {
    node.ctx.log.error('unhandled rejection', { error: reason instanceof Error ? reason : new Error(String(reason)) })
  })
  process.once('SIGTERM', () => { onSignal('SIGTERM') })
  process.once('SIGINT', () => { onSignal('SIGINT') })
}
