/**
 * A local development cluster: n real node processes on 127.0.0.1, started from one directory.
 *
 *   DIR/cluster.json             the cluster file (nodes + the demo identities enrolled as clients)
 *   DIR/dev-cluster.json         this tool's state: node ports, pids, how each node is started
 *   DIR/node-<i>/                node data directory (made by `keymesh node init`)
 *   DIR/node-<i>.storage-key     the node's storage key file (64 hex; dev only — a production
 *                                node keeps its key file / passphrase elsewhere)
 *   DIR/node-<i>.pid, .log       pid file and log (structured JSON lines) of the running node
 *   DIR/identities/{builder,target,relay}.json   demo client identities (mode 0600)
 *   DIR/identities/admin.json    a demo admin key (listed in the cluster file's admins)
 *
 * Nodes run detached (`node bin/keymesh.js node start …`), so `dev up` returns while they keep
 * running; `dev down` stops them (SIGTERM, then SIGKILL after a grace period). `devUp` waits
 * until every node reports the DKG done with the same key set id.
 *
 * Everything runs as separate processes through the public CLI; this file imports only protocol/
 * and the client library.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { CLUSTER_FORMAT, CLUSTER_VERSION, parseClusterFile, serializeClusterFile } from '../protocol/cluster.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { atomicWriteFile, exists } from './fsutil.ts'
import { generateAdminKey, generateIdentity, loadIdentity, writeAdminKeyFile, writeIdentityFile } from './identity.ts'
import { ClientTransport } from './transport.ts'
import { noProgress } from './progress.ts'
import type { ProgressFn } from './progress.ts'

const here = dirname(fileURLToPath(import.meta.url))
/** The CLI shim every node process runs. */
export const KEYMESH_BIN = resolve(here, '..', 'bin', 'keymesh.js')

/** Names of the demo identities `dev up` creates and enrolls. */
export const DEV_IDENTITIES = ['builder', 'target', 'relay'] as const
/** One of the demo identity names. */
export type DevIdentityName = typeof DEV_IDENTITIES[number]

/** How to start one node (argv after the node executable). */
export interface DevNodeState {
  index: number
  peerId: string
  port: number
  address: string
  dataDir: string
  keyFile: string
  log: string
  pidFile: string
  /** argv for `process.execPath` (script first). */
  argv: string[]
}

/** DIR/dev-cluster.json. */
export interface DevClusterState {
  format: 'keymesh.dev-cluster'
  version: 1
  dir: string
  clusterPath: string
  threshold: number
  nodes: DevNodeState[]
  identities: Record<DevIdentityName, string>
  adminKey: string
}

/** Options of `devUp`. */
export interface DevUpOptions {
  dir: string
  nodes?: number
  threshold?: number
  /** Wait for the DKG (ms, default 120000). */
  timeoutMs?: number
  /** Extra arguments for every `node start` (e.g. ['--max-inflight', '256']). */
  nodeArgs?: string[]
  /**
   * Test hook: a replacement argv (for `process.execPath`) to start node `index`, given the
   * standard start arguments (e.g. a fault-injecting fixture). Undefined = the normal CLI.
   */
  nodeCommand?: (index: number, startArgs: string[]) => string[] | undefined
  onProgress?: ProgressFn
}

/** Summary of a running dev cluster. */
export interface DevClusterInfo extends DevClusterState {
  cluster: ClusterFile
  epoch: number
  keySetId: string
}

function statePath (dir: string): string { return join(dir, 'dev-cluster.json') }

/** Reads DIR/dev-cluster.json. Throws BadInputError('dir') when DIR is not a dev cluster. */
export async function readDevState (dir: string): Promise<DevClusterState> {
  let text: string
  try { text = await readFile(statePath(dir), 'utf8') } catch { throw new BadInputError('dir', `${dir} is not a dev cluster directory (no dev-cluster.json); run \`keymesh dev up --dir ${dir}\``) }
  const s = JSON.parse(text) as DevClusterState
  if (s.format !== 'keymesh.dev-cluster' || s.version !== 1 || !Array.isArray(s.nodes)) throw new BadInputError('dir', `${statePath(dir)} is not a dev cluster state file`)
  return s
}

/**
 * Listen ports for local node processes are drawn from [LOCAL_PORT_MIN, LOCAL_PORT_MAX), below
 * Linux's default ephemeral range (32768–60999). A port picked by binding port 0 and closing it
 * lies INSIDE that range, where the kernel keeps handing out the same numbers to every listen(0)
 * (our proxies) and outgoing connection until the node binds it — a race that made clusters fail
 * with EADDRINUSE when several started at once. Outside the range only explicit binds compete.
 */
const LOCAL_PORT_MIN = 20_000
const LOCAL_PORT_MAX = 32_000

/**
 * `count` distinct TCP ports on 127.0.0.1 that were free a moment ago, for node listen addresses.
 * Each is checked by binding it. Throws KeymeshError(UNAVAILABLE) when none can be found.
 */
export async function freeListenPorts (count: number): Promise<number[]> {
  const ports: number[] = []
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 200 + count * 20) throw new KeymeshError(ErrorCode.UNAVAILABLE, `no free TCP port in ${LOCAL_PORT_MIN}–${LOCAL_PORT_MAX - 1} on 127.0.0.1`)
    const p = LOCAL_PORT_MIN + randomBytes(4).readUInt32BE(0) % (LOCAL_PORT_MAX - LOCAL_PORT_MIN)
    if (!ports.includes(p) && await canBind(p)) ports.push(p)
  }
  return ports
}

async function canBind (port: number): Promise<boolean> {
  return await new Promise(resolvePromise => {
    const s: Server = createServer()
    s.once('error', () => { resolvePromise(false) })
    s.listen(port, '127.0.0.1', () => { s.close(() => { resolvePromise(true) }) })
  })
}

/** Runs `node bin/keymesh.js ARGS`, resolves stdout; throws KeymeshError with stderr on failure. */
async function runCli (args: string[], timeoutMs = 60_000): Promise<string> {
  return await new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [KEYMESH_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.on('error', (e) => { clearTimeout(timer); reject(e) })
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0) resolvePromise(out)
      else reject(new KeymeshError(ErrorCode.INTERNAL, `keymesh ${args.slice(0, 2).join(' ')} exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))
    })
  })
}

/** True when a process with this pid exists. */
export function pidAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

async function readPid (file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim())
    return Number.isSafeInteger(n) && n > 1 ? n : undefined
  } catch { return undefined }
}

/**
 * Starts node `index` of a dev cluster (detached; pid file and log in DIR). No-op when it is
 * already running. Throws BadInputError for an unknown index.
 */
export async function startDevNode (dir: string, index: number): Promise<number> {
  const s = await readDevState(dir)
  const n = s.nodes.find(x => x.index === index)
  if (n === undefined) throw new BadInputError('node', `no node ${index} in ${dir}`)
  const old = await readPid(n.pidFile)
  if (old !== undefined && pidAlive(old)) return old
  const fd = openSync(n.log, 'a')
  try {
    const child = spawn(process.execPath, n.argv, { detached: true, stdio: ['ignore', fd, fd], cwd: s.dir })
    if (child.pid === undefined) throw new KeymeshError(ErrorCode.INTERNAL, `cannot start node ${index}`)
    child.unref()
    await writeFile(n.pidFile, `${child.pid}\n`)
    return child.pid
  } finally {
    closeSync(fd)
  }
}

/**
 * Stops node `index` (SIGTERM, SIGKILL after `graceMs`) and waits until the process is gone.
 * Returns false when it was not running.
 */
export async function stopDevNode (dir: string, index: number, graceMs = 5_000): Promise<boolean> {
  const s = await readDevState(dir)
  const n = s.nodes.find(x => x.index === index)
  if (n === undefined) throw new BadInputError('node', `no node ${index} in ${dir}`)
  const pid = await readPid(n.pidFile)
  await rm(n.pidFile, { force: true })
  if (pid === undefined || !pidAlive(pid)) return false
  try { process.kill(pid, 'SIGTERM') } catch { return false }
  const until = Date.now() + graceMs
  while (pidAlive(pid) && Date.now() < until) await sleep(50)
  if (pidAlive(pid)) {
    try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
    while (pidAlive(pid)) await sleep(20)
  }
  return true
}

function sleep (ms: number): Promise<void> { return new Promise(r => setTimeout(r, ms)) }

/**
 * Creates and starts a dev cluster in `dir` (must not contain one), and waits until the DKG is
 * done on every node. Throws BadInputError (bad sizes, DIR in use), KeymeshError(TIMEOUT) when the
 * DKG does not finish in time (the nodes are stopped again), INTERNAL when a node fails to start.
 */
export async function devUp (opts: DevUpOptions): Promise<DevClusterInfo> {
  const progress = opts.onProgress ?? noProgress
  const n = opts.nodes ?? 5
  const k = opts.threshold ?? 3
  if (!Number.isSafeInteger(n) || n < 2 || n > 64) throw new BadInputError('--nodes', 'expected 2..64')
  if (!Number.isSafeInteger(k) || k < 2 || k > n) throw new BadInputError('--threshold', `expected 2..${n}`)
  const dir = resolve(opts.dir)
  if (await exists(statePath(dir))) throw new BadInputError('dir', `${dir} already holds a dev cluster; run \`keymesh dev down --dir ${dir}\` first (or pick another directory)`)
  await mkdir(join(dir, 'identities'), { recursive: true, mode: 0o700 })

  progress({ phase: 'dev', note: `initialising ${n} nodes` })
  const ports = await freeListenPorts(n)
  // allSettled, not all: when one `node init` fails, the others must have finished before the
  // caller's clean-up removes the directory (else they recreate folders inside a removed tree).
  const inits = await Promise.allSettled(ports.map(async (port, j): Promise<DevNodeState> => {
    const index = j + 1
    const dataDir = join(dir, `node-${index}`)
    const keyFile = join(dir, `node-${index}.storage-key`)
    await atomicWriteFile(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600, exclusive: true, field: 'dir' })
    const address = `/ip4/127.0.0.1/tcp/${port}`
    const out = await runCli(['node', 'init', '--data', dataDir, '--listen', address, '--key-file', keyFile, '--json'])
    const peerId = (JSON.parse(out) as { peerId: string }).peerId
    return { index, peerId, port, address, dataDir, keyFile, log: join(dir, `node-${index}.log`), pidFile: join(dir, `node-${index}.pid`), argv: [] }
  }))
  const failedInit = inits.find(r => r.status === 'rejected')
  if (failedInit !== undefined) throw failedInit.reason
  const nodes = inits.map(r => (r as PromiseFulfilledResult<DevNodeState>).value)

  const identities = {} as Record<DevIdentityName, string>
  const clients: Array<{ name: string, peerId: string }> = []
  for (const name of DEV_IDENTITIES) {
    const id = await generateIdentity()
    const path = join(dir, 'identities', `${name}.json`)
    await writeIdentityFile(path, id)
    identities[name] = path
    clients.push({ name, peerId: id.peerId.toString() })
  }
  const admin = generateAdminKey()
  const adminKey = join(dir, 'identities', 'admin.json')
  await writeAdminKeyFile(adminKey, admin)
  admin.secretKey.fill(0)

  const cluster: ClusterFile = {
    format: CLUSTER_FORMAT,
    version: CLUSTER_VERSION,
    clusterId: randomBytes(16).toString('hex'),
    threshold: k,
    nodes: nodes.map(x => ({ index: x.index, peerId: x.peerId, addresses: [x.address] })),
    admins: [{ name: 'dev-admin', publicKey: admin.publicKey }],
    adminThreshold: 1,
    clients,
    createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  }
  const clusterPath = join(dir, 'cluster.json')
  await atomicWriteFile(clusterPath, serializeClusterFile(cluster), { exclusive: true, field: 'dir' })
  for (const x of nodes) {
    const startArgs = ['--data', x.dataDir, '--cluster', clusterPath, '--key-file', x.keyFile, ...(opts.nodeArgs ?? [])]
    x.argv = opts.nodeCommand?.(x.index, startArgs) ?? [KEYMESH_BIN, 'node', 'start', ...startArgs]
  }
  const state: DevClusterState = { format: 'keymesh.dev-cluster', version: 1, dir, clusterPath, threshold: k, nodes, identities, adminKey }
  await atomicWriteFile(statePath(dir), JSON.stringify(state, null, 2) + '\n', { field: 'dir' })

  progress({ phase: 'dev', note: `starting ${n} node processes` })
  for (const x of nodes) await startDevNode(dir, x.index)
  progress({ phase: 'dev', note: 'waiting for the DKG to finish on every node' })
  try {
    const ready = await waitForDkg(dir, { timeoutMs: opts.timeoutMs ?? 120_000 })
    return { ...state, cluster: parseClusterFile(await readFile(clusterPath, 'utf8')), ...ready }
  } catch (err) {
    await devDown(dir).catch(() => {})
    throw err
  }
}

/**
 * Waits until the given nodes (default all) report `dkg.state = 'done'` with one key set id.
 * Throws KeymeshError(TIMEOUT) naming the nodes that are not ready and the tail of their logs
 * when a node process died.
 */
export async function waitForDkg (dir: string, opts: { timeoutMs?: number, nodes?: number[] } = {}): Promise<{ epoch: number, keySetId: string }> {
  const s = await readDevState(dir)
  const cluster = parseClusterFile(await readFile(s.clusterPath, 'utf8'))
  const id = await loadIdentity(s.identities.builder)
  const t = await ClientTransport.create(cluster, id)
  const want = opts.nodes ?? s.nodes.map(x => x.index)
  const until = Date.now() + (opts.timeoutMs ?? 120_000)
  let last = new Map<number, string>()
  try {
    for (;;) {
      const rows = await Promise.all(want.map(async (i) => {
        try { return { i, st: await t.call(i, 'status', {}, { timeoutMs: 2_000 }) } } catch (e) { return { i, err: (e as Error).message } }
      }))
      last = new Map(rows.map(r => [r.i, r.st !== undefined ? `dkg ${r.st.dkg.state}${r.st.dkg.detail !== undefined ? ` (${r.st.dkg.detail})` : ''}` : `unreachable: ${r.err ?? ''}`]))
      const ids = new Set(rows.map(r => r.st?.dkg.state === 'done' ? r.st.keySetId : undefined))
      const first = rows[0]?.st
      if (ids.size === 1 && !ids.has(undefined) && !ids.has(null) && first !== undefined && first.epoch !== null && first.keySetId !== null) {
        return { epoch: first.epoch, keySetId: first.keySetId }
      }
      if (rows.some(r => r.st?.dkg.state === 'failed')) break
      for (const x of s.nodes.filter(n => want.includes(n.index))) {
        const pid = await readPid(x.pidFile)
        if (pid === undefined || !pidAlive(pid)) {
          const tail = (await readFile(x.log, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ')
          throw new KeymeshError(ErrorCode.INTERNAL, `node ${x.index} is not running (log ${x.log}: ${tail})`)
        }
      }
      if (Date.now() > until) break
      await sleep(250)
    }
  } finally {
    await t.close()
  }
  const detail = [...last.entries()].map(([i, v]) => `node ${i}: ${v}`).join('; ')
  throw new KeymeshError(ErrorCode.TIMEOUT, `the DKG did not finish: ${detail}`)
}

/** Stops every node of the dev cluster in `dir` (the directory is kept). Returns the stopped indices. */
export async function devDown (dir: string): Promise<number[]> {
  const s = await readDevState(resolve(dir))
  const stopped = await Promise.all(s.nodes.map(async n => (await stopDevNode(s.dir, n.index)) ? n.index : 0))
  return stopped.filter(i => i > 0)
}

/** Writes nothing; re-exported for the CLI's summary. */
export function describeDevCluster (info: DevClusterInfo): string {
  const lines = [
    `dev cluster ${info.cluster.clusterId}: ${info.threshold}-of-${info.nodes.length}, epoch ${info.epoch}, key set ${info.keySetId.slice(0, 16)}…`,
    `  cluster file: ${info.clusterPath}`,
    ...info.nodes.map(n => `  node ${n.index}: ${n.address}  ${n.peerId}  log ${n.log}`),
    ...DEV_IDENTITIES.map(name => `  identity ${name}: ${info.identities[name]}`),
    `  admin key: ${info.adminKey}`,
    `stop with: keymesh dev down --dir ${info.dir}`
  ]
  return lines.join('\n') + '\n'
}
