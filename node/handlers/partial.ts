/**
 * `partial` and `partial.batch`: a node's partial unwrap of envelopes, DLEQ-proven and sealed to
 * the recipient (brief §2.2–2.4; docs/PROTOCOL.md §4–5).
 *
 * Order of checks, each before any use of the share:
 *   1. strict envelope decoding (BAD_INPUT naming the field);
 *   2. context binding: label.clusterId is this cluster and label.epoch is the requested epoch
 *      (BAD_INPUT), the epoch has a committed key set here (NOT_FOUND);
 *   3. authorization of the caller for each label (NOT_AUTHORIZED);
 *   4. computePartial / computeBatchPartial, which verify the envelope proof (binding R to the
 *      label and ciphertext) before multiplying by the share (VERIFICATION_FAILED);
 *   5. sealPartial to the recipient's X25519 key (BAD_INPUT for a bad key).
 * The node never sees a data key: it returns x_i·8R, not the KEK.
 *
 * Generations (proactive refresh, docs/PROTOCOL.md §11.6): the key set and the share are read as
 * ONE consistent pair of the epoch's current generation (store.getCurrent), and the response names
 * that generation (`keySetId`), so the client verifies the DLEQ proof against the right verifying
 * share even while a refresh commits (the HPKE info of the seal binds the same key set).
 *
 * Secrets: the wrap share is read from the store per request and dropped when the handler
 * returns (a bigint: it cannot be wiped).
 */
import { BadInputError, ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { BASE } from '../../protocol/group.ts'
import { decodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { encodeLabel } from '../../protocol/label.ts'
import { computeBatchPartial, computePartial, sealPartial } from '../../protocol/partial.ts'
import type { BatchPartial, Partial } from '../../protocol/partial.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { toHex } from '../../protocol/bytes.ts'
import { MAX_BATCH } from '../../protocol/constants.ts'
import { faultsOf } from '../faults.ts'
import type { Handler, NodeContext } from '../context.ts'
import { authorize } from './authz.ts'
import { parseSignedOrder } from '../../protocol/order.ts'

/**
 * The current generation of `epoch` (key set and its id) and this node's share of `kind`, read as
 * one consistent pair. Throws KeymeshError NOT_FOUND when the epoch has no key set (or no share)
 * on this node, INTERNAL when the stored share has another index.
 */
export async function epochKeys (ctx: NodeContext, epoch: number, kind: 'wrap' | 'sign'): Promise<{ ks: KeySet, share: KeyShare, keySetId: string }> {
  const cur = await ctx.store.getCurrent(epoch, kind)
  if (cur === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `no key set or ${kind} share for epoch ${epoch} on this node`)
  const { keySet: ks, share, keySetId } = cur
  if (share.index !== ctx.selfIndex && share.index !== committedIndex(ctx)) throw new KeymeshError(ErrorCode.INTERNAL, `stored ${kind} share has index ${share.index}, expected ${ctx.selfIndex}`)
  return { ks, share, keySetId }
}

const indexCache = new WeakMap<NodeContext, { last: string, index: number | undefined }>()

/**
 * This node's index in the membership after the last committed reshare order (ctx.membership is
 * extended at the commit, before the staggered reload that updates ctx.selfIndex): between the
 * two, a member whose index changed serves the new generation with its new index. Never throws.
 */
function committedIndex (ctx: NodeContext): number | undefined {
  const orders = ctx.membership?.orders
  const last = orders?.[orders.length - 1]
  if (last === undefined) return undefined
  const hit = indexCache.get(ctx)
  if (hit?.last === last) return hit.index
  let index: number | undefined
  try { index = parseSignedOrder(last).order.params.members?.find(m => m.peerId === ctx.peerId)?.index } catch { index = undefined }
  indexCache.set(ctx, { last, index })
  return index
}

/** Decodes one envelope and checks its context against this cluster and the requested epoch. Throws BadInputError. */
function decodeForEpoch (ctx: NodeContext, field: string, bytes: Uint8Array, epoch: number): Envelope {
  let e: Envelope
  try {
    e = decodeEnvelope(bytes)
  } catch (err) {
    if (err instanceof KeymeshError) throw err
    throw new BadInputError(field, 'malformed envelope')
  }
  if (e.label.clusterId !== ctx.cluster.clusterId) throw new BadInputError(`${field}.label.clusterId`, 'envelope belongs to another cluster')
  if (e.label.epoch !== epoch) throw new BadInputError(`${field}.label.epoch`, `envelope is for epoch ${e.label.epoch}, request says ${epoch}`)
  return e
}

/** Throws KeymeshError TIMEOUT when the request deadline passed (before expensive work). */
export function checkDeadline (signal: AbortSignal): void {
  if (signal.aborted) throw new KeymeshError(ErrorCode.TIMEOUT, 'request deadline passed')
}

/** The lying node's corruption (test fixture only): D + B for every point. Proof left as is. */
function corrupt<P extends Partial | BatchPartial> (p: P): P {
  return (Array.isArray(p.D) ? { ...p, D: p.D.map(D => D.add(BASE)) } : { ...p, D: (p.D as Partial['D']).add(BASE) }) as P
}

/**
 * Answers `partial`. Throws KeymeshError: BAD_INPUT (malformed envelope, foreign cluster, epoch
 * mismatch, bad recipient key), NOT_FOUND (no key set for the epoch), NOT_AUTHORIZED,
 * VERIFICATION_FAILED (envelope proof does not verify).
 */
export const partialHandler: Handler<'partial'> = async (ctx, body, caller, signal) => {
  const e = decodeForEpoch(ctx, 'envelope', body.envelope, body.epoch)
  const { ks, share, keySetId } = await epochKeys(ctx, body.epoch, 'wrap')
  // Computed once (it re-encodes the envelope and hashes it) for the decision and the seal.
  const ids = [envelopeId(e)]
  await authorize(ctx, caller, {
    op: 'partial',
    label: e.label,
    recipient: body.recipient,
    envelopeIds: ids,
    ...(body.manifest !== undefined ? { manifests: [body.manifest] } : {}),
    ...(body.approvals !== undefined ? { approvals: body.approvals } : {})
  })
  checkDeadline(signal)
  let p = computePartial(share, ks, e)
  if (faultsOf(ctx)?.corruptPartial === true) p = corrupt(p)
  return { sealed: sealPartial(p, ks, ids, body.recipient), keySetId }
}

/**
 * Answers `partial.batch` (1..MAX_BATCH envelopes, one batched DLEQ proof, one sealed
 * BatchPartial). Every envelope must pass every check; one bad envelope fails the whole request
 * (nothing partial is returned). Throws like `partialHandler`.
 */
export const partialBatchHandler: Handler<'partial.batch'> = async (ctx, body, caller, signal) => {
  if (body.envelopes.length === 0 || body.envelopes.length > MAX_BATCH) throw new BadInputError('envelopes', `expected 1..${MAX_BATCH} envelopes`)
  const es = body.envelopes.map((b, j) => decodeForEpoch(ctx, `envelopes[${j}]`, b, body.epoch))
  const { ks, share, keySetId } = await epochKeys(ctx, body.epoch, 'wrap')
  // One decision per distinct label (a batch usually shares one release context), covering the
  // ids of every envelope with that label.
  const groups = new Map<string, { label: Envelope['label'], ids: Uint8Array[] }>()
  const ids = es.map(envelopeId)
  for (const [j, e] of es.entries()) {
    const key = toHex(encodeLabel(e.label))
    const g = groups.get(key) ?? { label: e.label, ids: [] }
    g.ids.push(ids[j] as Uint8Array)
    groups.set(key, g)
  }
  for (const g of groups.values()) {
    await authorize(ctx, caller, {
      op: 'partial.batch',
      label: g.label,
      recipient: body.recipient,
      envelopeIds: g.ids,
      ...(body.manifests !== undefined ? { manifests: body.manifests } : {}),
      ...(body.approvals !== undefined ? { approvals: body.approvals } : {})
    })
  }
  checkDeadline(signal)
  let p = computeBatchPartial(share, ks, es)
  if (faultsOf(ctx)?.corruptPartial === true) p = corrupt(p)
  return { sealed: sealPartial(p, ks, ids, body.recipient), keySetId }
}
