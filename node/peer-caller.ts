/**
 * RPC calls over libp2p: `rpcCall` (one request on a new stream; used by the node's PeerCaller
 * and by `keymesh status`) and `Libp2pPeerCaller` (node → node, by cluster index).
 *
 * Nodes are dialed at the multiaddrs of the cluster file with `/p2p/<peerId>` appended, so Noise
 * checks the remote key against the cluster file's PeerId; libp2p reuses an open connection.
 * Every call has a deadline (ttl) that also bounds dialing; the ttl is sent to the server, which
 * applies min(ttl, its own cap).
 */
import type { Libp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { randomBytes } from 'node:crypto'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { MAX_RPC_MESSAGE } from '../protocol/constants.ts'
import { MAX_RPC_TTL_MS, RPC_PROTOCOL, decodeResponse, encodeRequest } from '../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../protocol/rpc.ts'
import type { ClusterFile, ClusterNode } from '../protocol/cluster.ts'
import type { PeerCaller } from './context.ts'

/** Dial addresses of a cluster node (its addresses + /p2p/peerId). */
export function nodeDialAddrs (node: ClusterNode): Multiaddr[] {
  return node.addresses.map(a => multiaddr(`${a}/p2p/${node.peerId}`))
}

/** A fresh random request id (16 hex). */
export function newRequestId (): string { return randomBytes(8).toString('hex') }

/**
 * Sends one request and reads one response. Throws KeymeshError: the peer's code (RemoteError),
 * TIMEOUT (deadline or `signal`), UNAVAILABLE (dial refused/failed, stream reset, peer closed
 * without answering — `detail` names the transport error), BAD_INPUT (malformed response).
 */
export async function rpcCall<O extends RpcOp> (
  host: Libp2p, to: Multiaddr[], op: O, body: RequestBodies[O], opts: { signal?: AbortSignal, ttlMs: number }
): Promise<ResponseBodies[O]> {
  const ttlMs = Math.min(Math.max(1, Math.floor(opts.ttlMs)), MAX_RPC_TTL_MS)
  const id = newRequestId()
  const frame = encodeRequest(op, body, id, ttlMs)
  const timeout = AbortSignal.timeout(ttlMs)
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([timeout, opts.signal])
  let stream
  try {
    stream = await host.dialProtocol(to, RPC_PROTOCOL, { signal, maxOutboundStreams: 256 })
  } catch (e) {
    // libp2p may hand out a connection whose muxer just closed (e.g. the remote restarted);
    // drop it and dial once more.
    if ((e as Error | undefined)?.name !== 'ConnectionClosedError' || signal.aborted || to[0] === undefined) throw transportError(e, signal, 'dial')
    try {
      await host.hangUp(to[0], { signal }).catch(() => {})
      stream = await host.dialProtocol(to, RPC_PROTOCOL, { signal, maxOutboundStreams: 256 })
    } catch (e2) {
      throw transportError(e2, signal, 'dial')
    }
  }
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_RPC_MESSAGE })
    await lp.write(frame, { signal })
    const res = (await lp.read({ signal })).subarray()
    await stream.close({ signal }).catch(() => {})
    return decodeResponse(op, id, res)
  } catch (e) {
    stream.abort(e instanceof Error ? e : new Error('rpc failed'))
    if (e instanceof KeymeshError) throw e
    throw transportError(e, signal, 'stream')
  }
}

function transportError (e: unknown, signal: AbortSignal, phase: string): KeymeshError {
  if (e instanceof KeymeshError) return e
  const name = (e as Error | undefined)?.name ?? 'Error'
  if (signal.aborted || name === 'TimeoutError' || name === 'AbortError') {
    return new KeymeshError(ErrorCode.TIMEOUT, `deadline passed during ${phase}`, { cause: e })
  }
  const code = (e as { code?: unknown } | undefined)?.code
  return new KeymeshError(ErrorCode.UNAVAILABLE, `${phase} failed: ${name}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: e })
}

/** PeerCaller over the node's libp2p host. */
export class Libp2pPeerCaller implements PeerCaller {
  constructor (
    private readonly host: Libp2p,
    private readonly cluster: ClusterFile,
    private readonly selfIndex: number,
    private readonly defaultTtlMs: number
  ) {}

  /** See PeerCaller.call. */
  async call<O extends RpcOp> (index: number, op: O, body: RequestBodies[O], opts: { signal?: AbortSignal, ttlMs?: number } = {}): Promise<ResponseBodies[O]> {
    const node = this.cluster.nodes[index - 1]
    if (node === undefined || index === this.selfIndex) throw new BadInputError('index', `no other cluster node with index ${index}`)
    const o: { signal?: AbortSignal, ttlMs: number } = { ttlMs: opts.ttlMs ?? this.defaultTtlMs }
    if (opts.signal !== undefined) o.signal = opts.signal
    return await rpcCall(this.host, nodeDialAddrs(node), op, body, o)
  }

  /** See PeerCaller.callNode. */
  async callNode<O extends RpcOp> (node: ClusterNode, op: O, body: RequestBodies[O], opts: { signal?: AbortSignal, ttlMs?: number } = {}): Promise<ResponseBodies[O]> {
    const o: { signal?: AbortSignal, ttlMs: number } = { ttlMs: opts.ttlMs ?? this.defaultTtlMs }
    if (opts.signal !== undefined) o.signal = opts.signal
    return await rpcCall(this.host, nodeDialAddrs(node), op, body, o)
  }
}
