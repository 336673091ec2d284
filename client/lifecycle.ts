/**
 * Admin side of the key lifecycle (docs/LIFECYCLE.md): build a lifecycle order, sign it with one
 * admin key (several admins sign the same order file in turn when adminThreshold > 1), push it to
 * the nodes, and wait until the cluster has executed it.
 *
 * Orders are self-authorising (protocol/order.ts): nodes accept one only with ≥ adminThreshold
 * valid admin signatures, so the pushing client needs no special role. Nodes relay an accepted
 * order to each other; pushing to every reachable node only makes the start faster and tolerates
 * nodes that are down.
 */
import { randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { BadInputError, ErrorCode, KeymeshError, QuorumUnavailableError, errorCode } from '../protocol/errors.ts'
import { equalBytes, toB64u, toHex } from '../protocol/bytes.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { encodeSignedOrder, orderSigningBytes, parseSignedOrder, validateOrder } from '../protocol/order.ts'
import type { Order, OrderOp, OrderParams, SignedOrder } from '../protocol/order.ts'
import type { OrderReceipt, ResponseBodies } from '../protocol/rpc.ts'
import type { AdminKey } from './identity.ts'
import type { ClientTransport } from './transport.ts'

/**
 * A new unsigned order for `cluster` (fresh random nonce, issuedAt = now).
 * Throws BadInputError for invalid parameters.
 */
export function newOrder (cluster: ClusterFile, op: OrderOp, epoch: number, params: OrderParams = {}, now = new Date()): SignedOrder {
  const order: Order = validateOrder({
    format: 'keymesh.order',
    version: 1,
    clusterId: cluster.clusterId,
    op,
    epoch,
    nonce: toHex(new Uint8Array(randomBytes(16))),
    params,
    issuedAt: now.toISOString()
  })
  return { order, signatures: [] }
}

/**
 * Adds `key`'s signature to the order (replacing an earlier one by the same admin). Throws
 * BadInputError when the key is not an admin of the cluster file or the order is for another cluster.
 */
export function signOrder (so: SignedOrder, cluster: ClusterFile, key: AdminKey): SignedOrder {
  const order = validateOrder(so.order)
  if (order.clusterId !== cluster.clusterId) throw new BadInputError('order.clusterId', `order is for cluster ${order.clusterId}, not ${cluster.clusterId}`)
  const admin = cluster.admins.find(a => equalBytes(a.publicKey, key.publicKey))
  if (admin === undefined) throw new BadInputError('--admin-key', 'this key is not an admin of the cluster file')
  const sig = toB64u(ed25519.sign(orderSigningBytes(order), key.secretKey))
  return { order, signatures: [...so.signatures.filter(s => s.admin !== admin.name), { admin: admin.name, sig }] }
}

/** Canonical text of a signed order (what is written to an order file and pushed). Throws BadInputError. */
export function orderText (so: SignedOrder): string { return encodeSignedOrder(so) }

/** Parses an order file's text. Throws BadInputError. */
export function readOrderText (text: string): SignedOrder { return parseSignedOrder(text.trim()) }

/** Per-node outcome of a push. */
export interface PushResult { index: number, receipt?: OrderReceipt, error?: ErrorCode }

/**
 * Pushes a signed order to every node in parallel. Resolves with every node's answer. Throws
 * KeymeshError: the code of the nodes' common refusal when none accepted (e.g. VERIFICATION_FAILED
 * for missing signatures, CONFLICT for a replay or a wrong target epoch), QUORUM_UNAVAILABLE when
 * no node could be reached.
 */
export async function pushOrder (t: ClientTransport, so: SignedOrder, opts: { timeoutMs?: number } = {}): Promise<PushResult[]> {
  const text = encodeSignedOrder(so)
  const results = await Promise.all(t.indices.map(async (index): Promise<PushResult> => {
    try {
      return { index, receipt: await t.call(index, 'lifecycle.order', { order: text }, { timeoutMs: opts.timeoutMs ?? 10_000 }) }
    } catch (e) { return { index, error: errorCode(e) } }
  }))
  if (results.some(r => r.receipt?.accepted === true)) return results
  const refusal = results.find(r => r.receipt !== undefined)
  if (refusal?.receipt !== undefined) {
    throw new KeymeshError(refusal.receipt.code ?? ErrorCode.BAD_INPUT, `order refused by node ${refusal.index}: ${refusal.receipt.detail}`)
  }
  throw new QuorumUnavailableError(1, 0, results.map(r => ({ index: r.index, code: r.error ?? ErrorCode.UNAVAILABLE, detail: 'order not delivered' })))
}

/**
 * Polls `status` of every node until every node reports `epoch` ≥ target with its DKG done
 * (resolves with the statuses), a node reports the ceremony failed (throws KeymeshError CONFLICT
 * naming it), or `timeoutMs` passes (throws KeymeshError TIMEOUT listing the laggards).
 * `onProgress` receives a one-line summary after each poll.
 */
export async function waitForEpoch (t: ClientTransport, epoch: number, opts: { timeoutMs?: number, onProgress?: (line: string) => void } = {}): Promise<Array<ResponseBodies['status']>> {
  const until = Date.now() + (opts.timeoutMs ?? 300_000)
  for (;;) {
    const st = await Promise.all(t.indices.map(async i => await t.call(i, 'status', {}, { timeoutMs: 3_000 }).catch(() => undefined)))
    const failed = st.find(s => s !== undefined && s.dkg.state === 'failed' && (s.epoch ?? 0) < epoch)
    if (failed !== undefined) throw new KeymeshError(ErrorCode.CONFLICT, `node ${failed.index}: ceremony for epoch ${epoch} failed: ${failed.dkg.detail ?? ''}`)
    const done = st.filter(s => s !== undefined && (s.epoch ?? 0) >= epoch)
    opts.onProgress?.(`epoch ${epoch}: ${done.length}/${st.length} nodes committed`)
    if (done.length === st.length) return st as Array<ResponseBodies['status']>
    if (Date.now() > until) {
      const lag = st.map((s, k) => ({ s, i: t.indices[k] })).filter(x => x.s === undefined || (x.s.epoch ?? 0) < epoch).map(x => x.i)
      throw new KeymeshError(ErrorCode.TIMEOUT, `epoch ${epoch} not committed on node(s) ${lag.join(',')} in time`)
    }
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}
