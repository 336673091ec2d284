/**
 * The client's network side: a dial-only libp2p host (TCP + Noise + yamux) that speaks the
 * keymesh RPC protocol to the nodes of ONE cluster.
 *
 * - Identity: the host runs with the client identity's Ed25519 key, so every node sees (via the
 *   Noise handshake, which authenticates the static key) the PeerId its policy enrolled.
 * - Gater: the only peers this host will ever talk to are the cluster file's node PeerIds; it
 *   listens on nothing and refuses every inbound connection. Each dial carries `/p2p/<PeerId>`, so
 *   Noise refuses a server whose key does not match the cluster file (no TOFU).
 * - One request per stream, one length-prefixed frame each way (docs/PROTOCOL.md),
 *   with a per-call deadline (`timeoutMs`, also sent as the request's `ttl` so the node stops work
 *   that nobody waits for). Connections are reused across calls (libp2p dials by PeerId and keeps
 *   the connection open).
 *
 * Errors: a node's error response surfaces as RemoteError (a KeymeshError with the node's code);
 * transport failures become KeymeshError(UNAVAILABLE) (refused, reset, unreachable) or
 * KeymeshError(TIMEOUT); a malformed frame becomes BadInputError — in a quorum operation all of
 * these are recorded as that node's failure and routed around.
 */
import '../protocol/polyfill.ts'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { randomBytes } from 'node:crypto'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { MAX_RPC_MESSAGE } from '../protocol/constants.ts'
import { MAX_RPC_TTL_MS, RPC_PROTOCOL, decodeResponse, encodeRequest } from '../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../protocol/rpc.ts'
import type { ClusterFile, ClusterNode } from '../protocol/cluster.ts'
import type { ClientIdentity } from './identity.ts'

/** Default per-call deadline. */
export const DEFAULT_CALL_TIMEOUT_MS = 5_000
/** Successful calls remembered per operation for `latencyQuantile`. */
const LATENCY_WINDOW = 64
/** Streams in flight per node connection (batch rewraps and benchmarks run many at once). */
const MAX_STREAMS = 256

/** Options of one RPC call. */
export interface CallOptions {
  /** Deadline of this call in ms (1..60000). Default DEFAULT_CALL_TIMEOUT_MS. */
  timeoutMs?: number
  /** Aborts the call early (e.g. the whole operation finished or its deadline passed). */
  signal?: AbortSignal
}

/** Options of a transport. */
export interface TransportOptions {
  /** Per-dial timeout (ms). Default 3000. */
  dialTimeoutMs?: number
}

interface NodeAddr { index: number, peerId: PeerId, addrs: Multiaddr[] }

function nodeAddrs (cluster: ClusterFile): Map<number, NodeAddr> {
  const nodes = new Map<number, NodeAddr>()
  for (const n of cluster.nodes) {
    let peerId: PeerId
    try { peerId = peerIdFromString(n.peerId) } catch { throw new BadInputError(`cluster.nodes[${n.index - 1}].peerId`, 'not a valid PeerId') }
    const addrs = n.addresses.map(a => multiaddr(`${a}/p2p/${n.peerId}`))
    nodes.set(n.index, { index: n.index, peerId, addrs })
  }
  return nodes
}

/**
 * A dial-only RPC client for one cluster. Create with `ClientTransport.create`, close with
 * `close()` (idempotent). Safe to use concurrently.
 */
export class ClientTransport {
  private constructor (
    private current: ClusterFile,
    readonly identity: ClientIdentity,
    private readonly host: Libp2p,
    private nodes: Map<number, NodeAddr>,
    private readonly allowed: Set<string>
  ) {}

  /** The cluster view in use: the cluster file, or the membership adopted after a reshare. */
  get cluster (): ClusterFile { return this.current }

  /**
   * Switches to another view of the same cluster (a membership adopted after a reshare,
   * client/membership.ts): node indices, PeerIds and addresses are replaced; the gater admits
   * exactly the new nodes. Throws BadInputError for an unusable node entry or another cluster id.
   */
  async adoptMembership (cluster: ClusterFile): Promise<void> {
    if (cluster.clusterId !== this.current.clusterId) throw new BadInputError('cluster.clusterId', 'another cluster')
    const nodes = nodeAddrs(cluster)
    for (const n of nodes.values()) await this.host.peerStore.merge(n.peerId, { multiaddrs: n.addrs })
    this.allowed.clear()
    for (const n of cluster.nodes) this.allowed.add(n.peerId)
    this.nodes = nodes
    this.current = cluster
  }

  /**
   * Starts the host. Throws BadInputError('cluster') when a node address cannot be used.
   */
  static async create (cluster: ClusterFile, identity: ClientIdentity, opts: TransportOptions = {}): Promise<ClientTransport> {
    const nodes = nodeAddrs(cluster)
    const allowed = new Set(cluster.nodes.map(n => n.peerId))
    const deny = (p: PeerId): boolean => !allowed.has(p.toString())
    const gater: ConnectionGater = {
      denyDialPeer: deny,
      denyOutboundEncryptedConnection: deny,
      // A client never accepts connections.
      denyInboundConnection: () => true,
      denyInboundEncryptedConnection: () => true
    }
    const host = await createLibp2p({
      privateKey: identity.privateKey,
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: gater,
      connectionManager: { dialTimeout: opts.dialTimeoutMs ?? 3_000 }
    })
    for (const n of nodes.values()) {
      await host.peerStore.merge(n.peerId, { multiaddrs: n.addrs })
    }
    return new ClientTransport(cluster, identity, host, nodes, allowed)
  }

  /** Durations (ms) of the last LATENCY_WINDOW successful calls, per operation (for hedging). */
  private readonly recent = new Map<RpcOp, number[]>()

  /**
   * The q-quantile (0..1) of recent successful call durations of `op`, or undefined with fewer
   * than 8 samples. Used to pick a hedge delay that adapts to load: hedging earlier than a
   * normal answer takes only adds work to a busy cluster.
   */
  latencyQuantile (op: RpcOp, q: number): number | undefined {
    const xs = this.recent.get(op)
    if (xs === undefined || xs.length < 8) return undefined
    const s = [...xs].sort((a, b) => a - b)
    return s[Math.min(s.length - 1, Math.floor(q * s.length))]
  }

  /** 1-based indices of the cluster's nodes. */
  get indices (): number[] { return [...this.nodes.keys()] }

  /**
   * One RPC to node `index`. Resolves to the decoded body. Throws RemoteError (the node answered
   * with an error code), KeymeshError(TIMEOUT | UNAVAILABLE) (transport), BadInputError (malformed
   * response or unknown node index).
   */
  async call<O extends RpcOp> (index: number, op: O, body: RequestBodies[O], opts: CallOptions = {}): Promise<ResponseBodies[O]> {
    const node = this.nodes.get(index)
    if (node === undefined) throw new BadInputError('node', `no node ${index} in the cluster file`)
    return await this.send(node, op, body, opts)
  }

  /**
   * One RPC to a node of ANOTHER view of this cluster (a membership being checked before it is
   * adopted), given by PeerId and addresses; the peer is admitted for this call only. Throws as
   * `call`, BadInputError for an unusable node entry.
   */
  async callNode<O extends RpcOp> (n: ClusterNode, op: O, body: RequestBodies[O], opts: CallOptions = {}): Promise<ResponseBodies[O]> {
    const node = nodeAddrs({ ...this.current, nodes: [n] }).get(n.index) as NodeAddr
    const added = !this.allowed.has(n.peerId)
    if (added) this.allowed.add(n.peerId)
    try {
      await this.host.peerStore.merge(node.peerId, { multiaddrs: node.addrs })
      return await this.send(node, op, body, opts)
    } finally {
      if (added && ![...this.nodes.values()].some(x => x.peerId.toString() === n.peerId)) this.allowed.delete(n.peerId)
    }
  }

  private async send<O extends RpcOp> (node: NodeAddr, op: O, body: RequestBodies[O], opts: CallOptions): Promise<ResponseBodies[O]> {
    const index = node.index
    const timeoutMs = Math.max(1, Math.min(MAX_RPC_TTL_MS, Math.floor(opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS)))
    const id = randomBytes(8).toString('hex')
    const req = encodeRequest(op, body, id, timeoutMs)
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
    if (signal.aborted) throw abortError(opts.signal, timeoutMs, index)
    let res: Uint8Array
    const t0 = performance.now()
    try {
      const stream = await this.host.dialProtocol(node.peerId, RPC_PROTOCOL, { signal, maxOutboundStreams: MAX_STREAMS })
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_RPC_MESSAGE })
        await lp.write(req, { signal })
        res = (await lp.read({ signal })).subarray()
        await stream.close({ signal }).catch(() => {})
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
    } catch (err) {
      if (signal.aborted) throw abortError(opts.signal, timeoutMs, index)
      throw transportError(index, err)
    }
    const decoded = decodeResponse(op, id, res)
    let xs = this.recent.get(op)
    if (xs === undefined) { xs = []; this.recent.set(op, xs) }
    xs.push(performance.now() - t0)
    if (xs.length > LATENCY_WINDOW) xs.shift()
    return decoded
  }

  /** Stops the host and closes every connection. Never throws. */
  async close (): Promise<void> {
    try { await this.host.stop() } catch { /* already stopped */ }
  }
}

function abortError (outer: AbortSignal | undefined, timeoutMs: number, index: number): KeymeshError {
  if (outer?.aborted === true) return new KeymeshError(ErrorCode.TIMEOUT, `node ${index}: call cancelled (operation deadline or already done)`)
  return new KeymeshError(ErrorCode.TIMEOUT, `node ${index}: no answer within ${timeoutMs} ms`)
}

/** What a node closing the connection/stream right away looks like (its gater refused us, or it is stopping). */
export const CLOSED_REASON = 'connection closed by the node (not enrolled, overloaded or restarting?)'

/** Maps a libp2p/socket error to UNAVAILABLE with a short reason (no payload bytes). */
function transportError (index: number, err: unknown): KeymeshError {
  if (err instanceof KeymeshError) return err
  const e = err as { name?: string, code?: string, message?: string, type?: string }
  // libp2p sometimes rejects with a bare Event (socket closed during the upgrade).
  if (typeof Event !== 'undefined' && err instanceof Event) return new KeymeshError(ErrorCode.UNAVAILABLE, `node ${index}: ${CLOSED_REASON}`)
  const msg = String(e.message ?? err)
  let reason = e.name ?? 'Error'
  if (msg.includes('ECONNREFUSED')) reason = 'connection refused'
  else if (msg.includes('ECONNRESET')) reason = 'connection reset'
  else if (/EHOSTUNREACH|ENETUNREACH/.test(msg)) reason = 'unreachable'
  else if (/gater|Intercepted|denied/i.test(msg)) reason = 'refused by connection gater'
  else if (/identity key|Encryption/i.test(msg)) reason = `handshake failed (${msg.slice(0, 120)})`
  else if (/reset|EOF|closed/i.test(msg)) reason = CLOSED_REASON
  else reason = `${reason}: ${msg.slice(0, 160)}`
  return new KeymeshError(ErrorCode.UNAVAILABLE, `node ${index}: ${reason}`, { cause: err })
}
