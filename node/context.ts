/**
 * The contract between the node's infrastructure (service, RPC server, store, peer caller) and the
 * operation handlers (node/handlers/*.ts) and the DKG ceremony (node/dkg-ceremony.ts).
 *
 * A handler gets the node context, the decoded request body (already validated by
 * protocol/rpc.ts), the authenticated caller and an AbortSignal that fires at the request's
 * deadline (min(request ttl, server cap)) or when the node shuts down. It returns the response
 * body or throws a KeymeshError; the RPC server turns the error's code into the error response
 * (foreign errors become INTERNAL) and never sends the message to the peer.
 */
import type { RpcOp, RequestBodies, ResponseBodies, DkgState } from '../protocol/rpc.ts'
import type { ClusterFile, ClusterNode } from '../protocol/cluster.ts'
import type { NodeConfig } from './config.ts'
import type { NodeStore } from './store.ts'
import type { Logger } from './log.ts'

/** The authenticated remote peer of a request (PeerId verified by the Noise handshake). */
export interface Caller {
  peerId: string
  /** 'node' when the PeerId is a cluster node, 'client' when it is an enrolled client. */
  kind: 'node' | 'client'
  /** The caller's 1-based node index (nodes only). */
  index?: number
  /** The client's name in the cluster file (clients only). */
  name?: string
}

/**
 * Handler of one operation. Throws KeymeshError (its code goes on the wire); must honour
 * `signal` for long work.
 */
export type Handler<O extends RpcOp> = (ctx: NodeContext, body: RequestBodies[O], caller: Caller, signal: AbortSignal) => Promise<ResponseBodies[O]>

/** Calls other cluster nodes. */
export interface PeerCaller {
  /**
   * Calls `op` on node `index` (1-based). Resolves with the decoded response body. Throws
   * KeymeshError: the peer's own code for an error response (RemoteError), TIMEOUT when the
   * deadline (opts.ttlMs, default the configured peer-call timeout) passes or `signal` aborts,
   * UNAVAILABLE when the node cannot be reached, BAD_INPUT for a malformed response, and
   * BAD_INPUT('index') for an unknown index or the node itself.
   */
  call: <O extends RpcOp>(index: number, op: O, body: RequestBodies[O], opts?: { signal?: AbortSignal, ttlMs?: number }) => Promise<ResponseBodies[O]>
  /** Calls `op` on any node given by PeerId and addresses (members of another view during a reshare). Throws as `call`. */
  callNode?: <O extends RpcOp>(node: ClusterNode, op: O, body: RequestBodies[O], opts?: { signal?: AbortSignal, ttlMs?: number }) => Promise<ResponseBodies[O]>
}

/** Mutable DKG status shown by `status`. */
export interface DkgStatus { state: DkgState, detail?: string }

/** Everything a handler may use. One per running node. */
export interface NodeContext {
  config: NodeConfig
  cluster: ClusterFile
  /** This node's 1-based index in the cluster file. */
  selfIndex: number
  /** This node's PeerId (base58btc). */
  peerId: string
  store: NodeStore
  log: Logger
  peers: PeerCaller
  /** Date.now() at start. */
  startedAt: number
  /** keymesh version string. */
  version: string
  /** Updated by the DKG ceremony; read by `status`. */
  dkgStatus: DkgStatus
  /** Aborts when the node shuts down (background work such as the DKG ceremony should stop). */
  shutdownSignal: AbortSignal
  /** The membership chain this node serves with `cluster.get` (absent = genesis, revision 1). */
  membership?: { revision: number, orders: string[] }
  /** The genesis cluster file (`--cluster`); ctx.cluster is genesis folded with the membership chain. */
  genesis?: ClusterFile
  /**
   * Asks the node service to stop this instance and start again under the current membership
   * (after a reshare commit; `delayMs` staggers the nodes), or to stop for good (`stop`: a node
   * removed by a reshare). Absent in bare test contexts. Never throws.
   */
  requestRestart?: (how: 'reload' | 'stop', delayMs: number) => void
}
