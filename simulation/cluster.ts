/**
 * A real keymesh cluster for the simulation: node processes on 127.0.0.1 started through the
 * public CLI (`node bin/keymesh.js node init|start`, `cluster genesis`) — or, for a lying node,
 * through the test fixture entry point test/fixtures/lying-node.ts (spawned by path; faults cannot
 * be enabled from production config) — with a fault-injecting proxy on every directed link.
 *
 * Address plumbing (the proxies): `cluster genesis` writes the canonical cluster file with each
 * node's real listen address. Then each node i gets its OWN copy (DIR/cluster-node-i.json) in which
 * its own entry keeps the real address (it listens there) and peer j's address is the proxy of link
 * i→j; the client gets a copy (DIR/cluster-client.json) listing the client→j proxies. PeerIds are
 * unchanged, so Noise still authenticates every peer end to end; the proxies only see ciphertext.
 *
 * Node data directories use --insecure-dev-passphrase: simulation data is throw-away.
 * This file imports protocol/ and the client library's public API only.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseClusterFile, serializeClusterFile } from '../protocol/cluster.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { freeListenPorts, generateAdminKey, generateIdentity, writeIdentityFile } from '../client/index.ts'
import type { AdminKey } from '../client/index.ts'
import { toB64u } from '../protocol/bytes.ts'
import { LinkProxy } from './proxy.ts'
import type { LinkConditions } from './proxy.ts'
import type { Link } from './schedule.ts'
import type { CorruptPart } from './scenario.ts'

const here = dirname(fileURLToPath(import.meta.url))
/** Repository root. */
export const ROOT = resolve(here, '..')
/** The CLI shim (runs bin/keymesh.ts through tsx). */
export const KEYMESH_BIN = join(ROOT, 'bin', 'keymesh.js')
/** The lying-node test fixture (spawned by path with `node --import tsx`). */
export const LYING_NODE_FIXTURE = join(ROOT, 'test', 'fixtures', 'lying-node.ts')

/**
 * Lifecycle state of a node process as the harness knows it. 'removed': a committed reshare took
 * the node out of the cluster — never started again, never counted as a member.
 */
export type NodeState = 'down' | 'starting' | 'up' | 'paused' | 'wiped' | 'refused' | 'removed'

/** What a node's log said that the harness follows (reshare reloads; see SimCluster.onNodeEvent). */
export type NodeEvent = 'committed' | 'reloading' | 'ready' | 'exit'

/** One simulated node. */
export interface SimNode {
  index: number
  port: number
  peerId: string
  dataDir: string
  clusterPath: string
  lying: boolean
  state: NodeState
  proc?: ChildProcess
  /** Last lines of stderr (ring buffer). */
  tail: string[]
  /** Exit of the last process (code or signal). */
  exit?: number | string
  /** Message of the last refused start. */
  refusal?: string
  /** True between the node's 'reloading under the new membership' and its next 'node ready' (a reshare reload in the same process). */
  reloading?: boolean
  /** membershipRevision of the node's last 'node ready' line (1 = the cluster file). */
  readyRevision?: number
  /** Wall-clock time (Date.now()) of the last spawn of its process, and of its last 'node ready' line. */
  spawnedAt?: number
  readyAt?: number
  /**
   * How this process last repaired its shares after missing a reshare's commit (docs/PROTOCOL.md
   * §11.9), from its log: 'at start' (it never saw the order: 'caught up: shares repaired …') or
   * 'in the ceremony' (it held the order: 'reshare committed' with repairedFrom), and the members
   * (new indices) it repaired from. Reset at every spawn.
   */
  repaired?: { how: 'at start' | 'in the ceremony', from: number[], at: number }
}

/** Result of a start that is expected to be refused. */
export interface RefusalResult { refused: boolean, exit?: number | string, message: string }

/** Runs `node bin/keymesh.js ARGS`; resolves stdout or throws Error with stderr. */
async function runCli (args: string[], timeoutMs = 60_000): Promise<string> {
  return await new Promise((res, rej) => {
    const p = spawn(process.execPath, [KEYMESH_BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const t = setTimeout(() => { p.kill('SIGKILL') }, timeoutMs)
    p.on('error', rej)
    p.on('close', code => {
      clearTimeout(t)
      if (code === 0) res(out)
      else rej(new Error(`keymesh ${args.slice(0, 2).join(' ')} failed (${String(code)}): ${err.trim().split('\n').slice(-3).join(' | ')}`))
    })
  })
}

const TAIL = 60

/** Name of the simulated cluster's admin in its cluster file. */
export const ADMIN_NAME = 'sim-admin'

/** Options of `SimCluster.create`. */
export interface SimClusterOptions {
  dir: string
  n: number
  threshold: number
  lying?: number[]
  /** Deadline for one node to log 'node ready' (ms, default 30000). */
  readyTimeoutMs?: number
}

/** A simulated cluster with per-link proxies. */
export class SimCluster {
  readonly proxies = new Map<string, LinkProxy>()
  private closed = false
  /**
   * Called when a running node starts a reshare reload ('reloading'), is ready again after one or
   * after a start ('ready'), or exits ('exit'). Set by the runner; must not throw.
   */
  onNodeEvent?: (index: number, what: NodeEvent) => void

  private constructor (
    readonly dir: string,
    readonly threshold: number,
    readonly nodes: SimNode[],
    readonly cluster: ClusterFile,
    readonly clientClusterPath: string,
    readonly clientIdentityPath: string,
    private readonly readyTimeoutMs: number,
    /**
     * The cluster's only admin (adminThreshold 1), named ADMIN_NAME in the cluster file: it signs
     * the lifecycle orders of `lifecycle` events. Owned by this object, in memory only (simulation
     * data is throw-away); wiped by close().
     */
    readonly admin: AdminKey
  ) {}

  /** n */
  get n (): number { return this.nodes.length }

  /**
   * Inits n nodes (CLI, in parallel), writes a client identity, runs `cluster genesis`, starts a
   * proxy per directed link and writes the per-node and client cluster files. Does not start the
   * nodes. Throws Error with the CLI's stderr when a step fails.
   */
  static async create (o: SimClusterOptions): Promise<SimCluster> {
    await mkdir(o.dir, { recursive: true })
    const ports = await freeListenPorts(o.n)
    const inits = await Promise.all(ports.map(async (port, k) => {
      const dataDir = join(o.dir, `node-${k + 1}`)
      const out = await runCli(['node', 'init', '--data', dataDir, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--insecure-dev-passphrase', '--json'])
      return { dataDir, port, peerId: (JSON.parse(out) as { peerId: string }).peerId }
    }))
    const id = await generateIdentity()
    const admin = generateAdminKey()
    const clientIdentityPath = join(o.dir, 'client.identity.json')
    await writeIdentityFile(clientIdentityPath, id)
    const genesisPath = join(o.dir, 'cluster.json')
    await runCli(['cluster', 'genesis', '--threshold', String(o.threshold),
      ...inits.flatMap(x => ['--node', `${x.peerId}@/ip4/127.0.0.1/tcp/${x.port}`]),
      '--admin', `${ADMIN_NAME}=${toB64u(admin.publicKey)}`, '--admin-threshold', '1',
      '--client', `sim-client=${id.peerId.toString()}`, '--out', genesisPath])
    const cluster = parseClusterFile(await readFile(genesisPath, 'utf8'))
    const lying = new Set(o.lying ?? [])
    const nodes: SimNode[] = inits.map((x, k) => ({
      index: k + 1, ...x, clusterPath: join(o.dir, `cluster-node-${k + 1}.json`), lying: lying.has(k + 1), state: 'down', tail: []
    }))
    const c = new SimCluster(o.dir, o.threshold, nodes, cluster, join(o.dir, 'cluster-client.json'), clientIdentityPath, o.readyTimeoutMs ?? 30_000, admin)
    try {
      for (const to of nodes) {
        for (const from of [...nodes.map(x => x.index), 'client' as const]) {
          if (from === to.index) continue
          c.proxies.set(SimCluster.key({ from, to: to.index }), await LinkProxy.start(`${String(from)}->${to.index}`, to.port))
        }
      }
      const copy = (from: number | 'client'): ClusterFile => ({
        ...cluster,
        nodes: cluster.nodes.map(nd => nd.index === from ? nd : { ...nd, addresses: [c.proxy({ from, to: nd.index }).multiaddr] })
      })
      for (const nd of nodes) await writeFile(nd.clusterPath, serializeClusterFile(copy(nd.index)))
      await writeFile(c.clientClusterPath, serializeClusterFile(copy('client')))
    } catch (e) {
      await c.close()
      throw e
    }
    return c
  }

  private static key (l: Link): string { return `${String(l.from)}->${l.to}` }

  /** The proxy of a link. Throws RangeError for an unknown link. */
  proxy (l: Link): LinkProxy {
    const p = this.proxies.get(SimCluster.key(l))
    if (p === undefined) throw new RangeError(`no link ${SimCluster.key(l)}`)
    return p
  }

  /** Node `i`. Throws RangeError. */
  node (i: number): SimNode {
    const x = this.nodes[i - 1]
    if (x === undefined) throw new RangeError(`no node ${i}`)
    return x
  }

  private argv (x: SimNode): string[] {
    const common = ['--data', x.dataDir, '--cluster', x.clusterPath, '--insecure-dev-passphrase']
    if (x.lying) return ['--import', 'tsx', LYING_NODE_FIXTURE, ...common, '--corrupt-partial', '--corrupt-sign-share']
    // --listen: the node's own port even when its view lists the client's proxy as its address (a
    // reshare order built from the client's view, simulation/lifecycle.ts); without it a node
    // listens on its view's address. Same port as before any reshare.
    return [KEYMESH_BIN, 'node', 'start', ...common, '--listen', `/ip4/127.0.0.1/tcp/${x.port}`]
  }

  private spawnNode (x: SimNode): ChildProcess {
    delete x.exit
    delete x.repaired
    delete x.readyAt
    x.spawnedAt = Date.now()
    // The tail belongs to ONE process: an old 'node ready' line must never count for a new start.
    x.tail = []
    const p = spawn(process.execPath, this.argv(x), { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    x.proc = p
    let buf = ''
    p.stderr?.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        // Per-request 'rpc' lines are the bulk of the log; keep the rest.
        if (line.includes('"msg":"rpc"')) continue
        if (line.includes('"msg":"reloading under the new membership"')) {
          x.reloading = true
          this.onNodeEvent?.(x.index, 'reloading')
        } else if (line.includes('"msg":"node ready"')) {
          const m = /"membershipRevision":(\d+)/.exec(line)
          if (m !== null) x.readyRevision = Number(m[1])
          x.readyAt = Date.now()
          x.reloading = false
          this.onNodeEvent?.(x.index, 'ready')
        } else if (line.includes('"msg":"reshare committed"') && !line.includes('"repairedFrom":[')) {
          // A member committed: from now on it serves the new generation (and reloads in turn).
          this.onNodeEvent?.(x.index, 'committed')
        } else if (line.includes('"msg":"caught up: shares repaired') || (line.includes('"msg":"reshare committed"') && line.includes('"repairedFrom":['))) {
          const m = /"repairedFrom":\[([\d,]*)\]/.exec(line)
          x.repaired = { how: line.includes('"msg":"caught up') ? 'at start' : 'in the ceremony', from: (m?.[1] ?? '').split(',').filter(v => v !== '').map(Number), at: Date.now() }
        }
        x.tail.push(line)
        if (x.tail.length > TAIL) x.tail.shift()
      }
    })
    p.on('exit', (code, sig) => {
      x.exit = code ?? sig ?? 'unknown'
      x.reloading = false
      if (x.proc === p && (x.state === 'up' || x.state === 'starting' || x.state === 'paused')) x.state = 'down'
      if (x.proc === p) this.onNodeEvent?.(x.index, 'exit')
    })
    return p
  }

  /**
   * Starts node i and resolves when it logs 'node ready' (state 'up'). Throws Error with its last
   * stderr lines when it exits first or is not ready in time (state 'refused' / 'down'), or at once
   * for a node a reshare removed.
   */
  async start (i: number): Promise<void> {
    const x = this.node(i)
    if (x.state === 'removed') throw new Error(`node ${i} was removed from the cluster by a reshare; not started`)
    if (x.state === 'up' || x.state === 'starting' || x.state === 'paused') return
    x.state = 'starting'
    const p = this.spawnNode(x)
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => { p.kill('SIGKILL'); rej(new Error(`node ${i} not ready after ${this.readyTimeoutMs} ms: ${x.tail.slice(-5).join(' | ')}`)) }, this.readyTimeoutMs)
      // spawnNode's listener (registered first) has already split complete lines into x.tail.
      const onData = (): void => {
        if (x.tail.some(l => l.includes('"msg":"node ready"'))) {
          clearTimeout(t)
          p.stderr?.off('data', onData)
          p.off('exit', onExit)
          x.state = 'up'
          res()
        }
      }
      const onExit = (): void => {
        clearTimeout(t)
        x.state = 'refused'
        // The error lines, not the insecure-dev banner that precedes them.
        const errs = x.tail.filter(l => /error/i.test(l))
        x.refusal = (errs.length > 0 ? errs : x.tail).slice(-5).join(' | ')
        rej(new Error(`node ${i} exited (${String(x.exit)}) before ready: ${x.refusal}`))
      }
      p.stderr?.on('data', onData)
      p.once('exit', onExit)
    })
  }

  /**
   * Starts node i expecting a refusal (wiped or corrupted data dir). Resolves with what happened;
   * a node that does start is stopped again and reported as `refused: false`. Never throws.
   */
  async startExpectRefusal (i: number): Promise<RefusalResult> {
    try {
      await this.start(i)
      await this.term(i)
      return { refused: false, message: 'node started although its data directory was destroyed' }
    } catch (e) {
      const x = this.node(i)
      x.state = x.state === 'refused' ? 'refused' : 'down'
      return { refused: true, ...(x.exit !== undefined ? { exit: x.exit } : {}), message: (e as Error).message }
    }
  }

  private async waitExit (x: SimNode): Promise<void> {
    const p = x.proc
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return
    await new Promise<void>(res => { p.once('exit', () => { res() }) })
  }

  /** SIGKILL node i and wait for its exit. Never throws. */
  async kill (i: number): Promise<void> {
    const x = this.node(i)
    const p = x.proc
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) { if (x.state !== 'wiped' && x.state !== 'removed') x.state = 'down'; return }
    const done = this.waitExit(x)
    p.kill('SIGKILL')
    await done
    if (x.state !== 'removed') x.state = 'down'
  }

  /** SIGTERM node i (SIGCONT first if paused), wait up to 10 s, then SIGKILL. Never throws. */
  async term (i: number): Promise<void> {
    const x = this.node(i)
    const p = x.proc
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) { x.state = x.state === 'wiped' || x.state === 'removed' ? x.state : 'down'; return }
    const done = this.waitExit(x)
    if (x.state === 'paused') p.kill('SIGCONT')
    p.kill('SIGTERM')
    const t = setTimeout(() => { p.kill('SIGKILL') }, 10_000)
    await done
    clearTimeout(t)
    if (x.state !== 'removed') x.state = 'down'
  }

  /** SIGSTOP node i. Never throws. */
  pause (i: number): void {
    const x = this.node(i)
    if (x.state !== 'up' || x.proc === undefined) return
    x.proc.kill('SIGSTOP')
    x.state = 'paused'
  }

  /** SIGCONT node i. Never throws. */
  resume (i: number): void {
    const x = this.node(i)
    if (x.state !== 'paused' || x.proc === undefined) return
    x.proc.kill('SIGCONT')
    x.state = 'up'
  }

  /**
   * Marks node i as removed by a committed reshare: never started again; a process still running
   * gets `graceMs` to exit by itself (a removed node stops with exit 0), then SIGKILL. Resolves with
   * the exit of its last process (undefined when it never ran). Never throws.
   */
  async markRemoved (i: number, graceMs = 10_000): Promise<number | string | undefined> {
    const x = this.node(i)
    const p = x.proc
    const running = p !== undefined && p.exitCode === null && p.signalCode === null
    const paused = x.state === 'paused'
    x.state = 'removed'
    if (running) {
      if (paused) p.kill('SIGCONT')
      const t = setTimeout(() => { p.kill('SIGKILL') }, graceMs)
      await this.waitExit(x)
      clearTimeout(t)
    }
    return x.exit
  }

  /** Deletes node i's data directory (the node must be down). Never throws for a missing dir. */
  async wipe (i: number): Promise<void> {
    const x = this.node(i)
    await rm(x.dataDir, { recursive: true, force: true })
    x.state = 'wiped'
  }

  /**
   * Corrupts node i's data directory (the node must be down): overwrites 64 bytes in the middle
   * of its identity key file, storage-key parameters and every database file ('all'), only the
   * identity key ('identity'), or only the database's table and log files ('db-records': the
   * records, while CURRENT/MANIFEST stay intact). Never throws for missing files.
   */
  async corrupt (i: number, part: CorruptPart = 'all'): Promise<void> {
    const x = this.node(i)
    const smash = async (path: string): Promise<void> => {
      try {
        const fh = await open(path, 'r+')
        try {
          const st = await fh.stat()
          const junk = Buffer.alloc(Math.min(64, Math.max(1, st.size)), 0xa5)
          await fh.write(junk, 0, junk.length, Math.max(0, Math.floor(st.size / 2) - 32))
        } finally { await fh.close() }
      } catch { /* missing file: nothing to corrupt */ }
    }
    if (part !== 'db-records') await smash(join(x.dataDir, 'identity.key'))
    if (part === 'all') await smash(join(x.dataDir, 'storage-key.json'))
    if (part !== 'identity') {
      try {
        for (const f of await readdir(join(x.dataDir, 'db'))) {
          if (part === 'all' || f.endsWith('.log') || f.endsWith('.ldb') || f.endsWith('.sst')) await smash(join(x.dataDir, 'db', f))
        }
      } catch { /* no db dir */ }
    }
    x.state = 'wiped'
  }

  /** Applies conditions to links. Never throws for known links. */
  setLinks (links: Link[], set: Partial<LinkConditions>): void {
    for (const l of links) this.proxy(l).set(set)
  }

  /** Resets every open connection of the links; returns how many. */
  resetLinks (links: Link[]): number {
    let n = 0
    for (const l of links) n += this.proxy(l).resetConnections()
    return n
  }

  /** Heals every link and resumes every paused node. */
  healNetwork (): void {
    for (const p of this.proxies.values()) p.heal()
    for (const x of this.nodes) this.resume(x.index)
  }

  /** `close()`, then removes the cluster directory. Never throws. */
  async dispose (): Promise<void> {
    await this.close()
    await rm(this.dir, { recursive: true, force: true }).catch(() => {})
  }

  /** Stops every node (SIGTERM) and every proxy. Idempotent; never throws. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all(this.nodes.map(async x => { await this.term(x.index) }))
    await Promise.all([...this.proxies.values()].map(async p => { await p.close() }))
    this.admin.secretKey.fill(0)
  }
}
