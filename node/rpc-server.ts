/**
 * The RPC server: one request per stream on RPC_PROTOCOL (docs/PROTOCOL.md).
 *
 * Per stream: identify the caller from the Noise-authenticated PeerId (a node of the cluster file or
 * an enrolled client; anyone else is refused by the gater before reaching here, and again here),
 * read ONE length-prefixed frame (≤ MAX_RPC_MESSAGE, within readTimeoutMs), decode it strictly,
 * authorize (NODE_ONLY_OPS are refused to clients), enforce a per-peer in-flight limit (BUSY),
 * run the handler under a deadline of min(request ttl, server cap) (TIMEOUT), and answer with
 * exactly one response frame. Every failure becomes a typed error response carrying only the
 * code; the stream is reset only when even that cannot be written (oversize frame, peer gone).
 * Each request is logged as one JSON line (op, id, caller, code, duration, sizes — no bodies).
 */
import type { Libp2p } from 'libp2p'
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { ErrorCode, KeymeshError, errorCode } from '../protocol/errors.ts'
import { MAX_RPC_MESSAGE } from '../protocol/constants.ts'
import {
  NODE_ONLY_OPS, RPC_PROTOCOL, UNKNOWN_REQUEST_ID, decodeRequest, encodeErrorResponse, encodeResponse, peekRequestId
} from '../protocol/rpc.ts'
import type { RpcOp } from '../protocol/rpc.ts'
import { nodeByPeerId } from '../protocol/cluster.ts'
import type { Caller, Handler, NodeContext } from './context.ts'
import type { HandlerTable } from './handlers/index.ts'
import { governanceOf } from './governance.ts'

/** Max concurrent inbound RPC streams per connection (libp2p default is 32). */
export const MAX_INBOUND_STREAMS = 256
/** Deadline to write the response, ms. */
const WRITE_TIMEOUT_MS = 10_000

/** The only operations a node of the OTHER view of a reshare (no index here) may call. */
export const TRANSITION_OPS: ReadonlySet<RpcOp> = new Set<RpcOp>(['status', 'keyset.get', 'cluster.get', 'reshare.round1', 'reshare.round2', 'reshare.view', 'reshare.result'])

/** Resolves the caller of a connection, or undefined for a peer not in the cluster file. */
export function callerOf (ctx: NodeContext, peerId: string): Caller | undefined {
  const node = nodeByPeerId(ctx.cluster, peerId)
  if (node !== undefined) return { peerId, kind: 'node', index: node.index }
  // A member of the other view of a pending reshare (a joining or removed node): a node, without
  // an index in this node's view (node/lifecycle/transition.ts).
  if (governanceOf(ctx)?.transitionPeers.has(peerId) === true) return { peerId, kind: 'node' }
  const client = ctx.cluster.clients.find(c => c.peerId === peerId)
  if (client !== undefined) return { peerId, kind: 'client', name: client.name }
  // Identities enrolled by the signed policy (node/governance.ts) need not be in the cluster file.
  const enrolled = governanceOf(ctx)?.identityName(peerId)
  if (enrolled !== undefined) return { peerId, kind: 'client', name: enrolled }
  return undefined
}

/** A running RPC server. */
export interface RpcServer {
  /** Requests currently in flight. */
  inflight: () => number
  /** Stops accepting streams and waits up to `graceMs` for in-flight requests. Never throws. */
  close: (graceMs?: number) => Promise<void>
}

/**
 * Registers the RPC handler on `node`. Throws only if libp2p refuses the registration.
 */
export async function startRpcServer (node: Libp2p, ctx: NodeContext, table: HandlerTable): Promise<RpcServer> {
  const perPeer = new Map<string, number>()
  let total = 0
  let closing = false
  const idle: Array<() => void> = []

  const onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const started = Date.now()
    const peerId = connection.remotePeer.toString()
    const caller = callerOf(ctx, peerId)
    if (caller === undefined || closing) {
      // The gater should have refused this peer; never serve it.
      ctx.log.warn('rpc refused', { peer: peerId, reason: caller === undefined ? 'not in cluster file' : 'shutting down' })
      stream.abort(new Error('refused'))
      return
    }
    const n = (perPeer.get(peerId) ?? 0) + 1
    perPeer.set(peerId, n)
    total++
    const lp = lpStream(stream, { maxDataLength: MAX_RPC_MESSAGE })
    let id = UNKNOWN_REQUEST_ID
    let op: RpcOp | undefined
    let code: ErrorCode | 'OK' = 'OK'
    let reqBytes = 0
    let resBytes = 0
    let reply: Uint8Array | undefined
    try {
      let frame: Uint8Array
      try {
        frame = (await lp.read({ signal: AbortSignal.timeout(ctx.config.readTimeoutMs) })).subarray()
      } catch (e) {
        // Oversize, truncated, timed out or reset before a full frame arrived.
        const name = (e as Error).name
        code = name === 'TimeoutError' || name === 'AbortError' ? ErrorCode.TIMEOUT : ErrorCode.BAD_INPUT
        reply = encodeErrorResponse(id, code)
        throw e
      }
      reqBytes = frame.length
      let req
      try {
        req = decodeRequest(frame)
      } catch (e) {
        id = peekRequestId(frame)
        code = errorCode(e) === ErrorCode.UNSUPPORTED_VERSION ? ErrorCode.UNSUPPORTED_VERSION : ErrorCode.BAD_INPUT
        reply = encodeErrorResponse(id, code)
        ctx.log.debug('rpc bad request', { peer: peerId, id, error: (e as Error).message })
        governanceOf(ctx)?.recordServerRefusal(peerId, 'unknown', code, `bad request: ${(e as Error).message}`.slice(0, 256))
        return
      }
      id = req.id
      op = req.op
      if (n > ctx.config.maxInflightPerPeer) {
        code = ErrorCode.BUSY
      } else if (NODE_ONLY_OPS.has(req.op) && caller.kind !== 'node') {
        code = ErrorCode.NOT_AUTHORIZED
      } else if (caller.kind === 'node' && caller.index === undefined && !TRANSITION_OPS.has(req.op)) {
        // A joining or removed node (transition peer) takes part in the reshare and learns the
        // membership; nothing else (no orders, policy pushes, partials, DKG).
        code = ErrorCode.NOT_AUTHORIZED
      } else {
        const handler = table[req.op] as Handler<RpcOp> | undefined
        if (handler === undefined) {
          code = ErrorCode.UNAVAILABLE
        } else {
          const deadline = Math.min(req.ttlMs, ctx.config.maxRequestMs)
          const signal = AbortSignal.any([AbortSignal.timeout(deadline), ctx.shutdownSignal])
          try {
            const body = await raceAbort(handler(ctx, req.body, caller, signal), signal)
            try {
              reply = encodeResponse(req.op, id, body)
            } catch (e) {
              // The handler returned a body outside the schema: our bug, not the caller's input.
              ctx.log.error('handler returned an invalid response body', { op: req.op, id, error: e as Error })
              throw new KeymeshError(ErrorCode.INTERNAL, 'invalid response body')
            }
          } catch (e) {
            code = signal.aborted && !(e instanceof KeymeshError) ? ErrorCode.TIMEOUT : errorCode(e)
            if (code === ErrorCode.INTERNAL) ctx.log.error('handler failed', { op: req.op, id, peer: peerId, error: e as Error })
          }
        }
      }
      if (reply === undefined) reply = encodeErrorResponse(id, code as ErrorCode)
      // Refusals decided here, before any handler (which audits everything else), are audited too.
      if (code === ErrorCode.BUSY || (code === ErrorCode.NOT_AUTHORIZED && NODE_ONLY_OPS.has(req.op) && caller.kind !== 'node')) {
        governanceOf(ctx)?.recordServerRefusal(peerId, req.op, code, code === ErrorCode.BUSY ? 'per-peer in-flight limit reached' : 'node-only operation')
      }
    } catch {
      // Frame could not be read: reply (best effort) below, or reset.
    } finally {
      try {
        if (reply !== undefined) {
          resBytes = reply.length
          const signal = AbortSignal.timeout(WRITE_TIMEOUT_MS)
          await lp.write(reply, { signal })
          await stream.close({ signal })
        } else {
          stream.abort(new Error('no response'))
        }
      } catch (e) {
        stream.abort(e as Error)
      }
      const left = (perPeer.get(peerId) ?? 1) - 1
      if (left <= 0) perPeer.delete(peerId); else perPeer.set(peerId, left)
      total--
      if (total === 0) for (const f of idle.splice(0)) f()
      ctx.log.info('rpc', {
        op: op ?? null,
        id,
        peer: peerId,
        kind: caller.kind,
        ...(caller.index !== undefined ? { index: caller.index } : {}),
        code,
        ms: Date.now() - started,
        reqBytes,
        resBytes
      })
    }
  }

  await node.handle(RPC_PROTOCOL, (stream, connection) => {
    // Never let a rejected promise escape into libp2p: every failure is handled above.
    onStream(stream, connection).catch(e => { ctx.log.error('rpc stream failed', { error: e as Error }) })
  }, { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_INBOUND_STREAMS })

  return {
    inflight: () => total,
    close: async (graceMs = 2_000) => {
      closing = true
      try { await node.unhandle(RPC_PROTOCOL) } catch { /* stopping anyway */ }
      if (total === 0) return
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, graceMs)
        idle.push(() => { clearTimeout(t); resolve() })
      })
    }
  }
}

/** Resolves/rejects with `p`, or rejects with a TIMEOUT KeymeshError when `signal` aborts first. */
function raceAbort<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new KeymeshError(ErrorCode.TIMEOUT, 'deadline passed'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(new KeymeshError(ErrorCode.TIMEOUT, 'deadline passed')) }
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(v => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e instanceof Error ? e : new Error(String(e))) })
  })
}
