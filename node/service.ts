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
  const cluster = await loadClusterFile(cfg.clusterPath)
  const privateKey = await loadNodeIdentity(p.identity)
  const peerId = peerIdOf(privateKey)
  const self = nodeByPeerId(cluster, peerId)
  if (self === undefined) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, `this node's PeerId ${peerId} (from ${p.identity}) is not a node of cluster file ${cfg.clusterPath}`)
  }
  if (cfg.storageKey.kind === 'insecure-dev') process.stderr.write(INSECURE_DEV_WARNING + '\n')
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
    shutdownSignal: shutdown.signal
  }
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
    addresses: host.getMultiaddrs().map(a => a.toString()),
    keySource: describeKeySource(cfg.storageKey)
  })
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
  return { ctx, host, stop }
}

/**
 * Runs the node until SIGTERM/SIGINT, then stops cleanly and exits 0.
 * Throws what startNode throws.
 */
export async function runNode (cfg: NodeConfig): Promise<void> {
  const node = await startNode(cfg)
  const onSignal = (sig: string): void => {
    node.ctx.log.info('signal', { signal: sig })
    node.stop().then(() => process.exit(0), () => process.exit(1))
  }
  // A stray rejected promise inside a library (e.g. a stream torn down by a misbehaving peer) must
  // not take the node down: log it and keep serving. Synchronous exceptions still crash (and the
  // service manager restarts the node).
  process.on('unhandledRejection', (reason) => {
    node.ctx.log.error('unhandled rejection', { error: reason instanceof Error ? reason : new Error(String(reason)) })
  })
  process.once('SIGTERM', () => { onSignal('SIGTERM') })
  process.once('SIGINT', () => { onSignal('SIGINT') })
}
