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

/** The refresh ceremony's session id on the nodes for an order (REFRESH.md): `f<epoch>-<first 16 hex of the nonce>`. */
export function refreshSession (epoch: number, nonce: string): string { return `f${epoch}-${nonce.slice(0, 16)}` }

/** Per-node progress of a refresh, from its `status`. */
export type RefreshNodeState = 'done' | 'pending' | 'failed' | 'unreachable'

/**
 * Classifies one node's `status` for a refresh of `epoch` by order `nonce` that started while the
 * epoch's key set id was `beforeId`: 'done' when it reports the epoch with another key set id (or
 * its ceremony says this session committed), 'failed' when its ceremony reports this session
 * failed, 'unreachable' without an answer, else 'pending'. Pure; throws nothing.
 */
export function refreshNodeState (s: ResponseBodies['status'] | undefined, epoch: number, nonce: string, beforeId: string): RefreshNodeState {
  if (s === undefined) return 'unreachable'
  const session = refreshSession(epoch, nonce)
  const mine = s.dkg.detail?.includes(`refresh ${session}`) === true
  if (mine && s.dkg.state === 'failed') return 'failed'
  if (s.epoch === epoch && s.keySetId !== null && s.keySetId !== beforeId) return 'done'
  if (mine && s.dkg.state === 'done') return 'done'
  return 'pending'
}

/**
 * Polls `status` of every node until every node has committed the refresh (resolves with the
 * statuses; throws KeymeshError VERIFICATION_FAILED when the nodes then report different key set
 * ids for the epoch), a node reports this refresh failed (throws KeymeshError CONFLICT naming it and
 * its reason: nothing was committed anywhere), or `timeoutMs` passes (throws KeymeshError TIMEOUT
 * listing the nodes not done and their state). `onProgress` gets a line after each poll:
 * "refresh epoch 3: 4/5 nodes have the new key set".
 */
export async function waitForRefresh (t: ClientTransport, epoch: number, nonce: string, beforeId: string, opts: { timeoutMs?: number, pollMs?: number, onProgress?: (line: string) => void } = {}): Promise<Array<ResponseBodies['status']>> {
  const until = Date.now() + (opts.timeoutMs ?? 600_000)
  for (;;) {
    const st = await Promise.all(t.indices.map(async i => await t.call(i, 'status', {}, { timeoutMs: 3_000 }).catch(() => undefined)))
    const states = st.map(s => refreshNodeState(s, epoch, nonce, beforeId))
    const failedAt = states.indexOf('failed')
    if (failedAt >= 0) {
      const s = st[failedAt] as ResponseBodies['status']
      throw new KeymeshError(ErrorCode.CONFLICT, `refresh of epoch ${epoch} failed on node ${s.index}: ${s.dkg.detail ?? 'no detail'}. Nothing was committed; fix the named node and issue a new refresh order`)
    }
    const done = states.filter(x => x === 'done').length
    opts.onProgress?.(`refresh epoch ${epoch}: ${done}/${st.length} nodes have the new key set`)
    if (done === st.length) {
      // Every node reports the epoch's new key set: they must all report the SAME one.
      const fresh = await Promise.all(t.indices.map(async i => await t.call(i, 'status', {}, { timeoutMs: 3_000 }).catch(() => undefined)))
      const ids = new Set(fresh.map(s => s?.keySetId ?? null).filter(x => x !== null))
      if (ids.size > 1) throw new KeymeshError(ErrorCode.VERIFICATION_FAILED, `refresh of epoch ${epoch}: the nodes report different key sets afterwards (${[...ids].map(x => x.slice(0, 16)).join(', ')}); inspect the nodes' logs`)
      return fresh.map((s, k) => s ?? st[k]) as Array<ResponseBodies['status']>
    }
    if (Date.now() > until) {
      const lag = t.indices.map((i, k) => ({ i, x: states[k], s: st[k] })).filter(y => y.x !== 'done')
        .map(y => `node ${y.i} ${y.x ?? ''}${y.x === 'pending' && y.s !== undefined ? ` (${y.s.dkg.detail ?? y.s.dkg.state})` : ''}`)
      throw new KeymeshError(ErrorCode.TIMEOUT, `refresh of epoch ${epoch} not committed everywhere in time: ${lag.join('; ')}. A refresh needs every node up; it continues when the missing nodes come back`)
    }
    await new Promise(resolve => setTimeout(resolve, opts.pollMs ?? 250))
  }
}
