/**
 * Fault-injecting TCP proxy: one per directed link (node i → node j, client → node j).
 *
 * Node i dials node j at the address ITS cluster file lists for j; the harness gives each node its
 * own cluster file whose address for j is this proxy (PeerIds are authenticated by Noise inside
 * the stream, so addresses are only hints and the proxy sees only ciphertext). The proxy forwards
 * bytes both ways and can, per link, at any moment:
 *
 * - partition: existing connections are reset; new ones are accepted and black-holed (bytes are
 *   read and discarded, nothing reaches the target, nothing comes back), like a dropped route —
 *   the dialer only learns of it from its own timeout. With `partitionMode: 'reset'` new
 *   connections are reset at once instead (like a REJECT rule). Healing resets the black-holed
 *   sockets so the peers redial.
 * - add latency and jitter: each chunk is delivered `latencyMs + U(0, jitterMs)` after it arrived,
 *   in order (a chunk never overtakes the previous one). Applied in both directions, so one
 *   request/response round trip gains about 2·latency.
 * - limit bandwidth: each direction is a serial link of `bytesPerSec` (0 = unlimited).
 * - drop connections: `resetConnections()` resets every open connection (TCP RST both ways).
 *
 * Backpressure: a direction pauses its source socket while more than HIGH_WATER bytes wait in its
 * queue, so a slow link cannot make the proxy buffer without bound.
 */
import { createServer, connect } from 'node:net'
import type { Server, Socket, AddressInfo } from 'node:net'

/** Conditions of one link. */
export interface LinkConditions {
  partitioned: boolean
  /** 'blackhole' (default): silently swallow; 'reset': refuse new connections with RST. */
  partitionMode: 'blackhole' | 'reset'
  latencyMs: number
  jitterMs: number
  /** 0 = unlimited. */
  bytesPerSec: number
}

/** Counters of one link. */
export interface LinkStats {
  accepted: number
  blackholed: number
  reset: number
  bytesForwarded: number
}

const HIGH_WATER = 1 << 20

/** Conditions of a healthy link. */
export const HEALTHY: Readonly<LinkConditions> = Object.freeze({ partitioned: false, partitionMode: 'blackhole', latencyMs: 0, jitterMs: 0, bytesPerSec: 0 })

interface Chunk { buf: Buffer, at: number }

/** One direction of one proxied connection: a shaped, ordered queue into `dst`. */
class Direction {
  private readonly q: Chunk[] = []
  private queued = 0
  private lastTxEnd = 0
  private lastDeliver = 0
  private timer: NodeJS.Timeout | undefined
  private ended = false
  private closed = false

  constructor (private readonly link: LinkProxy, private readonly src: Socket, private readonly dst: Socket) {}

  push (buf: Buffer): void {
    if (this.closed) return
    const c = this.link.conditions
    const now = Date.now()
    if (c.latencyMs === 0 && c.jitterMs === 0 && c.bytesPerSec === 0 && this.q.length === 0) {
      this.link.stats.bytesForwarded += buf.length
      this.dst.write(buf)
      return
    }
    let txEnd = now
    if (c.bytesPerSec > 0) {
      const start = Math.max(now, this.lastTxEnd)
      txEnd = start + (buf.length * 1000) / c.bytesPerSec
      this.lastTxEnd = txEnd
    }
    const delay = c.latencyMs + (c.jitterMs > 0 ? Math.random() * c.jitterMs : 0)
    const at = Math.max(txEnd + delay, this.lastDeliver)
    this.lastDeliver = at
    this.q.push({ buf, at })
    this.queued += buf.length
    if (this.queued > HIGH_WATER) this.src.pause()
    this.arm()
  }

  end (): void {
    this.ended = true
    if (this.q.length === 0) this.dst.end()
  }

  close (): void {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.q.length = 0
  }

  private arm (): void {
    if (this.timer !== undefined || this.closed) return
    const head = this.q[0]
    if (head === undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush()
    }, Math.max(0, Math.ceil(head.at - Date.now())))
  }

  private flush (): void {
    const now = Date.now()
    while (this.q.length > 0 && (this.q[0] as Chunk).at <= now + 1) {
      const c = this.q.shift() as Chunk
      this.queued -= c.buf.length
      this.link.stats.bytesForwarded += c.buf.length
      this.dst.write(c.buf)
    }
    if (this.queued <= HIGH_WATER / 2 && this.src.isPaused()) this.src.resume()
    if (this.q.length === 0 && this.ended) this.dst.end()
    this.arm()
  }
}

/** A fault-injecting TCP proxy for one directed link. Create with `LinkProxy.start`. */
export class LinkProxy {
  conditions: LinkConditions = { ...HEALTHY }
  readonly stats: LinkStats = { accepted: 0, blackholed: 0, reset: 0, bytesForwarded: 0 }
  private readonly live = new Set<{ a: Socket, b: Socket, dirs: Direction[] }>()
  private readonly holes = new Set<Socket>()

  private constructor (readonly name: string, private readonly server: Server, readonly port: number, readonly targetPort: number, readonly targetHost: string) {}

  /**
   * Listens on 127.0.0.1 (random port) and forwards to targetHost:targetPort.
   * Throws the listen error (e.g. EADDRINUSE) — never for the target being down (that shows as a
   * connection reset to the dialer, the same as dialing a dead node).
   */
  static async start (name: string, targetPort: number, targetHost = '127.0.0.1'): Promise<LinkProxy> {
    const holder: { self?: LinkProxy } = {}
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, sock => { holder.self?.accept(sock) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    const self = new LinkProxy(name, server, (server.address() as AddressInfo).port, targetPort, targetHost)
    holder.self = self
    return self
  }

  /** The multiaddr of this proxy (what a cluster file lists). */
  get multiaddr (): string { return `/ip4/127.0.0.1/tcp/${this.port}` }

  /** Changes the link's conditions; a partition start resets open connections, its end frees black holes. Never throws. */
  set (c: Partial<LinkConditions>): void {
    const wasPartitioned = this.conditions.partitioned
    this.conditions = { ...this.conditions, ...c }
    if (!wasPartitioned && this.conditions.partitioned) this.resetConnections()
    if (wasPartitioned && !this.conditions.partitioned) {
      for (const s of this.holes) s.resetAndDestroy()
      this.holes.clear()
    }
  }

  /** Back to a healthy link (keeps open connections unless they were black-holed). Never throws. */
  heal (): void { this.set({ ...HEALTHY }) }

  /** Resets (RST) every open connection through this link; returns how many. Never throws. */
  resetConnections (): number {
    let n = 0
    for (const c of this.live) {
      for (const d of c.dirs) d.close()
      c.a.resetAndDestroy()
      c.b.resetAndDestroy()
      n++
    }
    this.live.clear()
    this.stats.reset += n
    return n
  }

  /** Number of open forwarded connections. */
  get openConnections (): number { return this.live.size }

  /** Stops listening and resets everything. Never throws. */
  async close (): Promise<void> {
    this.resetConnections()
    for (const s of this.holes) s.destroy()
    this.holes.clear()
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
  }

  private accept (a: Socket): void {
    this.stats.accepted++
    a.on('error', () => {})
    if (this.conditions.partitioned) {
      if (this.conditions.partitionMode === 'reset') { a.resetAndDestroy(); return }
      this.stats.blackholed++
      this.holes.add(a)
      a.on('data', () => {})
      a.on('close', () => { this.holes.delete(a) })
      a.resume()
      return
    }
    const b = connect({ port: this.targetPort, host: this.targetHost, allowHalfOpen: true })
    b.on('error', () => {})
    a.setNoDelay(true)
    b.setNoDelay(true)
    const ab = new Direction(this, a, b)
    const ba = new Direction(this, b, a)
    const entry = { a, b, dirs: [ab, ba] }
    this.live.add(entry)
    const teardown = (): void => {
      if (!this.live.delete(entry)) return
      ab.close(); ba.close()
      // A close on one side is passed on as a reset of the other (keeps the dialer's view honest:
      // a dead target looks like ECONNRESET, never like a silent hang).
      if (!a.destroyed) a.resetAndDestroy()
      if (!b.destroyed) b.resetAndDestroy()
    }
    a.on('data', (d: Buffer) => { ab.push(d) })
    b.on('data', (d: Buffer) => { ba.push(d) })
    a.on('end', () => { ab.end() })
    b.on('end', () => { ba.end() })
    a.on('close', teardown)
    b.on('close', teardown)
    b.once('connect', () => { a.resume() })
  }
}
