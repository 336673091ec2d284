/**
 * Test harness: a real keymesh cluster on 127.0.0.1 — real node processes, real TCP, real level DBs.
 *
 * API
 * ```ts
 * const c = await startTestCluster({ n: 3, threshold: 2 })   // init + genesis + start all, wait 'node ready'
 * c.dir, c.clusterPath, c.cluster (parsed ClusterFile), c.clientIdentityPath, c.clientPeerId
 * c.clientIdentityPaths[0..1], c.clientPeerIds[0..1]  // two enrolled clients; [0] is the one above
 * const x2 = await c.client((await loadClientIdentity(c.clientIdentityPaths[1])).peerKey)
 * c.nodes[i-1]: { index, dataDir, port, peerId, proc?, logs: LogLine[], stderr: string, exit? }
 * await c.rpc(i, 'status', {}, { ttlMs })  // call node i as the enrolled client (one shared libp2p host)
 * await c.status(i)                        // shorthand; throws KeymeshError when unreachable
 * await c.waitFor(st => st.every(s => s?.epoch === 1), 30_000)  // polls status of every node
 *                                          // (undefined for an unreachable node) until true
 * await c.stop(i)      // SIGTERM, waits for exit, returns the exit code
 * await c.kill(i)      // SIGKILL, waits for exit
 * await c.start(i)     // (re)starts node i, waits for 'node ready'
 * await c.stopAll()    // stops every running node and the client host (call in afterAll)
 * await c.cleanup()    // stopAll + remove the temp dir
 * const x = await c.client(key?)   // another dial-only client host: key = a libp2p PrivateKey,
 *                                  // default a fresh random (unenrolled) key
 * await x.rpc(i, op, body); await x.raw(i, frame, { prefixed?, close?, timeoutMs? })
 *                                  // raw: write ONE length-prefixed frame (or raw bytes), read one
 *                                  // (returns the response bytes, or throws on reset/EOF/timeout)
 * await x.stop()
 * runCli(args, opts?) → { code, stdout, stderr }  // runs `node bin/keymesh.js ...args`
 * ```
 * Options: n (3), threshold (2), start (true), nodeArgs (extra args for `node start`; keep
 * --log-level at info or debug: the harness waits for the info line 'node ready'),
 * env (extra env for node processes). Each node logs JSON lines on stderr; `logs` holds the parsed
 * lines (non-JSON lines such as the insecure-dev banner go only to `stderr`).
 *
 * Node processes use --insecure-dev-passphrase; never use this harness's data outside tests.
 */
import '../../protocol/polyfill.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Libp2p } from 'libp2p'
import type { PrivateKey } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { MAX_RPC_MESSAGE } from '../../protocol/constants.ts'
import { RPC_PROTOCOL } from '../../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { createHost } from '../../node/host.ts'
import { nodeDialAddrs, rpcCall } from '../../node/peer-caller.ts'
import { createClientIdentity, loadClientIdentity, peerIdOf } from '../../node/identity.ts'
import { readFile, writeFile } from 'node:fs/promises'
import { freeListenPorts } from '../../client/dev-cluster.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** Path of the CLI shim. */
export const KEYMESH_BIN = join(ROOT, 'bin', 'keymesh.js')

/** A parsed JSON log line of a node. */
export type LogLine = Record<string, unknown> & { time: string, level: string, msg: string }

/** Result of a CLI run. */
export interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs `node bin/keymesh.js ...args` to completion. Never rejects (except on spawn failure). */
export async function runCli (args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, input?: string } = {}): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [KEYMESH_BIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL') }, opts.timeoutMs ?? 30_000)
    p.on('error', reject)
    p.on('close', code => { clearTimeout(t); resolve({ code, stdout, stderr }) })
    p.stdin.end(opts.input ?? '')
  })
}

/** One free TCP listen port on 127.0.0.1, outside the ephemeral range (client/dev-cluster.ts explains why). */
export async function freePort (): Promise<number> {
  return (await freeListenPorts(1))[0] as number
}

/** One node of a test cluster. */
export interface TestNode {
  index: number
  dataDir: string
  port: number
  peerId: string
  proc?: ChildProcess
  logs: LogLine[]
  stderr: string
  /** Exit code (or signal name) of the last process, once it exited. */
  exit?: number | string
}

/** A dial-only client host. */
export interface TestClient {
  peerId: string
  host: Libp2p
  rpc: <O extends RpcOp>(i: number, op: O, body: RequestBodies[O], opts?: { ttlMs?: number, signal?: AbortSignal }) => Promise<ResponseBodies[O]>
  /**
   * Sends one raw frame payload (length-prefixed here unless `prefixed` is false: then the bytes go
   * as-is and the write side is closed unless `close` is false) and reads one response frame.
   */
  raw: (i: number, bytes: Uint8Array, opts?: { prefixed?: boolean, close?: boolean, timeoutMs?: number }) => Promise<Uint8Array>
  stop: () => Promise<void>
}

/** A running test cluster. */
export interface TestCluster {
  dir: string
  n: number
  threshold: number
  clusterPath: string
  cluster: ClusterFile
  /** The enrolled client used by `rpc`/`status` (name test-client-1). */
  clientIdentityPath: string
  clientPeerId: string
  /** Both enrolled clients (test-client-1, test-client-2); use [1] for a second independent peer. */
  clientIdentityPaths: string[]
  clientPeerIds: string[]
  nodes: TestNode[]
  rpc: TestClient['rpc']
  status: (i: number, ttlMs?: number) => Promise<ResponseBodies['status']>
  waitFor: (pred: (st: Array<ResponseBodies['status'] | undefined>) => boolean, timeoutMs?: number) => Promise<Array<ResponseBodies['status'] | undefined>>
  /** (Re)starts node i; `args` are extra `node start` arguments (e.g. ['--join', orderPath]). */
  start: (i: number, args?: string[]) => Promise<void>
  /** Inits `count` more nodes (indices n+1…, not in the cluster file, not started): for reshare tests. */
  addNodes: (count: number) => Promise<TestNode[]>
  stop: (i: number) => Promise<number | string | undefined>
  kill: (i: number) => Promise<void>
  stopAll: () => Promise<void>
  cleanup: () => Promise<void>
  client: (key?: PrivateKey) => Promise<TestClient>
}

/** Options of startTestCluster. */
export interface TestClusterOptions {
  n?: number
  threshold?: number
  /** Start the node processes (default true). */
  start?: boolean
  nodeArgs?: string[]
  env?: NodeJS.ProcessEnv
  /** Deadline for one node to log 'node ready', ms (default 20000). */
  readyTimeoutMs?: number
}

async function makeClient (cluster: ClusterFile, key: PrivateKey, extra: TestNode[] = []): Promise<TestClient> {
  const nodeIds = new Set(cluster.nodes.map(n => n.peerId))
  // Nodes added later (addNodes) are looked up in `extra` (the harness's live node list).
  const host = await createHost({ privateKey: key, listen: [], allow: pid => nodeIds.has(pid) || extra.some(x => x.peerId === pid) })
  const target = (i: number): ReturnType<typeof nodeDialAddrs> => {
    const node = cluster.nodes[i - 1]
    if (node !== undefined) return nodeDialAddrs(node)
    const x = extra.find(y => y.index === i)
    if (x === undefined) throw new Error(`no node ${i}`)
    return nodeDialAddrs({ index: i, peerId: x.peerId, addresses: [`/ip4/127.0.0.1/tcp/${x.port}`] })
  }
  return {
    peerId: peerIdOf(key),
    host,
    rpc: async (i, op, body, opts = {}) => await rpcCall(host, target(i), op, body, { ttlMs: opts.ttlMs ?? 10_000, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) }),
    raw: async (i, bytes, opts = {}) => {
      const signal = AbortSignal.timeout(opts.timeoutMs ?? 10_000)
      const stream = await host.dialProtocol(target(i), RPC_PROTOCOL, { signal, maxOutboundStreams: 1024 })
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_RPC_MESSAGE })
        if (opts.prefixed === false) {
          if (bytes.length > 0 && !stream.send(bytes)) await stream.onDrain({ signal })
          if (opts.close !== false) await stream.close({ signal })
        } else {
          await lp.write(bytes, { signal })
        }
        const res = (await lp.read({ signal })).subarray()
        await stream.close({ signal }).catch(() => {})
        return res
      } catch (e) {
        stream.abort(e as Error)
        throw e
      }
    },
    stop: async () => { await host.stop() }
  }
}

/**
 * Creates a temp dir, inits n nodes (CLI), writes the cluster file with `cluster genesis` (plus one
 * generated client identity), and starts the nodes. Throws when any step fails (with its stderr).
 */
export async function startTestCluster (opts: TestClusterOptions = {}): Promise<TestCluster> {
  const n = opts.n ?? 3
  const threshold = opts.threshold ?? 2
  const dir = await mkdtemp(join(tmpdir(), 'keymesh-test-'))
  const ports = await freeListenPorts(n)
  const inits = await Promise.all(ports.map(async (port, k) => {
    const dataDir = join(dir, `node${k + 1}`)
    const r = await runCli(['node', 'init', '--data', dataDir, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--insecure-dev-passphrase', '--json'])
    if (r.code !== 0) throw new Error(`node init ${k + 1} failed (${String(r.code)}): ${r.stderr}`)
    return { dataDir, port, peerId: (JSON.parse(r.stdout) as { peerId: string }).peerId }
  }))
  const clientIdentityPaths = [join(dir, 'client.identity.json'), join(dir, 'client2.identity.json')]
  const clientIds = await Promise.all(clientIdentityPaths.map(async p => await createClientIdentity(p)))
  const clientIdentityPath = clientIdentityPaths[0] as string
  const clientPeerIds = clientIds.map(x => peerIdOf(x.peerKey))
  const clientPeerId = clientPeerIds[0] as string
  const clusterPath = join(dir, 'cluster.json')
  const g = await runCli(['cluster', 'genesis', '--threshold', String(threshold),
    ...inits.flatMap(x => ['--node', `${x.peerId}@/ip4/127.0.0.1/tcp/${x.port}`]),
    ...clientPeerIds.flatMap((p, k) => ['--client', `test-client-${k + 1}=${p}`]), '--out', clusterPath])
  if (g.code !== 0) throw new Error(`cluster genesis failed: ${g.stderr}`)
  const cluster = parseClusterFile(await readFile(clusterPath, 'utf8'))
  const nodes: TestNode[] = inits.map((x, k) => ({ index: k + 1, ...x, logs: [], stderr: '' }))
  const main = await makeClient(cluster, (await loadClientIdentity(clientIdentityPath)).peerKey, nodes)
  const extra: TestClient[] = []
  const readyTimeout = opts.readyTimeoutMs ?? 20_000

  const node = (i: number): TestNode => {
    const x = nodes[i - 1]
    if (x === undefined) throw new Error(`no node ${i}`)
    return x
  }

  const start = async (i: number, args: string[] = []): Promise<void> => {
    const x = node(i)
    if (x.proc !== undefined && x.exit === undefined) throw new Error(`node ${i} is already running`)
    delete x.exit
    const p = spawn(process.execPath, [KEYMESH_BIN, 'node', 'start', '--data', x.dataDir, '--cluster', clusterPath, '--insecure-dev-passphrase', ...(opts.nodeArgs ?? []), ...args],
      { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] })
    x.proc = p
    let buf = ''
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => { reject(new Error(`node ${i} not ready after ${readyTimeout} ms: ${x.stderr.slice(-2000)}`)) }, readyTimeout)
      p.stderr?.on('data', (d: Buffer) => {
        const s = d.toString()
        x.stderr += s
        buf += s
        let nl
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          if (!line.startsWith('{')) continue
          try {
            const j = JSON.parse(line) as LogLine
            x.logs.push(j)
            if (j.msg === 'node ready') { clearTimeout(t); resolve() }
          } catch { /* not a log line */ }
        }
      })
      p.on('exit', (code, sig) => {
        x.exit = code ?? sig ?? 'unknown'
        clearTimeout(t)
        reject(new Error(`node ${i} exited (${String(x.exit)}) before ready: ${x.stderr.slice(-2000)}`))
      })
    })
  }

  const waitExit = async (x: TestNode): Promise<void> => {
    const p = x.proc
    if (p === undefined || x.exit !== undefined) return
    await new Promise<void>(resolve => { p.once('exit', () => { resolve() }) })
  }

  const stop = async (i: number): Promise<number | string | undefined> => {
    const x = node(i)
    if (x.proc === undefined || x.exit !== undefined) return x.exit
    const done = waitExit(x)
    x.proc.kill('SIGTERM')
    const t = setTimeout(() => { x.proc?.kill('SIGKILL') }, 10_000)
    await done
    clearTimeout(t)
    return x.exit
  }

  const kill = async (i: number): Promise<void> => {
    const x = node(i)
    if (x.proc === undefined || x.exit !== undefined) return
    const done = waitExit(x)
    x.proc.kill('SIGKILL')
    await done
  }

  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map(async x => await stop(x.index)))
    await Promise.all([main, ...extra.splice(0)].map(async c => { await c.stop().catch(() => {}) }))
  }

  const status = async (i: number, ttlMs = 5_000): Promise<ResponseBodies['status']> => await main.rpc(i, 'status', {}, { ttlMs })

  const c: TestCluster = {
    dir,
    n,
    threshold,
    clusterPath,
    cluster,
    clientIdentityPath,
    clientPeerId,
    clientIdentityPaths,
    clientPeerIds,
    nodes,
    rpc: main.rpc,
    status,
    waitFor: async (pred, timeoutMs = 30_000) => {
      const until = Date.now() + timeoutMs
      for (;;) {
        const st = await Promise.all(nodes.map(async x => await status(x.index, 2_000).catch(() => undefined)))
        if (pred(st)) return st
        if (Date.now() > until) throw new Error(`waitFor: condition not met after ${timeoutMs} ms; last status: ${JSON.stringify(st)}`)
        await new Promise(resolve => setTimeout(resolve, 200))
      }
    },
    start,
    addNodes: async (count) => {
      const ports = await freeListenPorts(count)
      const added = await Promise.all(ports.map(async (port, k) => {
        const index = nodes.length + k + 1
        const dataDir = join(dir, `node${index}`)
        const r = await runCli(['node', 'init', '--data', dataDir, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--insecure-dev-passphrase', '--json'])
        if (r.code !== 0) throw new Error(`node init ${index} failed (${String(r.code)}): ${r.stderr}`)
        const x: TestNode = { index, dataDir, port, peerId: (JSON.parse(r.stdout) as { peerId: string }).peerId, logs: [], stderr: '' }
        return x
      }))
      nodes.push(...added)
      return added
    },
    stop,
    kill,
    stopAll,
    cleanup: async () => { await stopAll(); await rm(dir, { recursive: true, force: true }) },
    client: async (key) => {
      const cl = await makeClient(cluster, key ?? await generateKeyPair('Ed25519'))
      extra.push(cl)
      return cl
    }
  }
  if (opts.start !== false) {
    try {
      await Promise.all(nodes.map(async x => { await start(x.index) }))
    } catch (e) {
      await c.cleanup()
      throw e
    }
  }
  return c
}

/**
 * A 3-of-5 (or `opts`) cluster whose cluster file names `admins` (admin1, admin2, …) with
 * `adminThreshold` (default 2) and `clients` enrolled besides the test clients, every node started and its initial DKG done. Throws when a node's
 * DKG did not finish ('done') within 60 s.
 */
export async function startAdminCluster (admins: Uint8Array[], opts: TestClusterOptions & { adminThreshold?: number, clients?: ClusterFile['clients'] } = {}): Promise<{ c: TestCluster, cluster: ClusterFile }> {
  const { adminThreshold, clients, ...rest } = opts
  const c = await startTestCluster({ n: 5, threshold: 3, ...rest, start: false })
  const base = parseClusterFile(await readFile(c.clusterPath, 'utf8'))
  const cluster: ClusterFile = { ...base, admins: admins.map((publicKey, k) => ({ name: `admin${k + 1}`, publicKey })), adminThreshold: adminThreshold ?? 2, clients: [...base.clients, ...(clients ?? [])] }
  await writeFile(c.clusterPath, serializeClusterFile(cluster))
  await Promise.all(c.nodes.map(async x => { await c.start(x.index) }))
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 60_000)
  if (!st.every(x => x?.dkg.state === 'done')) {
    await c.cleanup()
    throw new Error(`initial DKG did not finish: ${st.map(x => x?.dkg.state ?? 'down').join(',')}`)
  }
  return { c, cluster }
}
