/**
 * Rewrap: recover a wrapped data key through any k nodes (docs/PROTOCOL.md).
 *
 * The client asks k nodes in parallel for a partial decryption of the envelope sealed to ITS
 * recipient key (HPKE; only this client can open them), hedging: a failed node is replaced at once
 * and every `hedgeMs` without enough answers one more node is asked. It opens each sealed partial
 * (a partial that does not open is that node's fault), combines k of them (Z = Σ λ_i·D_i), and
 * re-derives the KEK. When the combined key does not open the envelope, every DLEQ proof is
 * checked (`combine` does this and returns blame): a node whose proof fails is named, dropped and
 * replaced by another node — the call still succeeds while k honest nodes answer.
 * The whole call has a deadline; with fewer than k good answers by then (or as soon as that is
 * certain) it throws QuorumUnavailableError listing each node's failure. It never hangs.
 *
 * Generations (share refresh, client/generations.ts): every answer names the keySetId of the
 * generation whose share computed it; the sealed partial is opened and verified against that
 * generation's key set (fetched and checked against the trusted one when new; a node naming an
 * unknown or invalid generation is blamed), answers are grouped by generation and only one group
 * of k is ever combined. When the answers are split so that no group can reach k, the nodes
 * outside the newest group are re-asked with a short backoff within the deadline. The result says
 * which generation was used (`keySet`): k nodes vouched for it, so a caller may cache it.
 *
 * Secrets: the returned data key belongs to the caller, who zeroes it after use. Partials are
 * public-ish (they reveal Z only together with k−1 others) and are dropped after combining.
 */
import { ErrorCode, VerificationError } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { MAX_BATCH } from '../protocol/constants.ts'
import type { KeySet } from '../protocol/keyset.ts'
import { encodeEnvelope, envelopeId } from '../protocol/envelope.ts'
import type { Envelope } from '../protocol/envelope.ts'
import { verifyEnvelope, verifyEnvelopes } from '../protocol/wrap.ts'
import { openSealedPartial } from '../protocol/partial.ts'
import type { BatchPartial, Partial } from '../protocol/partial.ts'
import { combine, combineBatch, verifyPartial } from '../protocol/combine.ts'
import type { ClientTransport } from './transport.ts'
import { candidatesFor, hedgeDelay } from './quorum.ts'
import { GenerationHedger, idOf, namedGeneration, resolveGeneration } from './generations.ts'

/** Options of a rewrap. */
export interface RewrapOptions {
  /** Whole-call deadline in ms (default 10000). */
  deadlineMs?: number
  /** Ask one more node after this many ms without enough answers (default: 75, or 1.5 × recent p90 latency when larger). */
  hedgeMs?: number
  /** Check every DLEQ proof even when the key opens (default false: checked only on failure). */
  strict?: boolean
  /**
   * Verify the envelope's validity proof locally first (default false: every node verifies it
   * before touching its share, and when more than n − k nodes reject it the call fails with their
   * verdict anyway; deploy binds the envelope to the signed manifest by its id). Costs about one
   * multi-scalar multiplication per call.
   */
  verifyEnvelope?: boolean
  /** Nodes not to ask. */
  exclude?: number[]
  /** Preference order of nodes (default: random, which spreads load); unlisted nodes follow in random order. */
  order?: number[]
  /**
   * Signed release manifest JWS(s) naming the envelope(s), presented to the nodes (a policy with
   * requireSignedRelease demands it from deploy targets). `rewrap` sends the first one.
   */
  manifests?: string[]
  /** Admin approvals (JSON text each) presented to the nodes, when the policy asks for them. */
  approvals?: string[]
}

function presented (opts: RewrapOptions, batch: boolean): { manifest?: string, manifests?: string[], approvals?: string[] } {
  const out: { manifest?: string, manifests?: string[], approvals?: string[] } = {}
  if (opts.manifests !== undefined && opts.manifests.length > 0) {
    if (batch) out.manifests = opts.manifests
    else out.manifest = opts.manifests[0]
  }
  if (opts.approvals !== undefined && opts.approvals.length > 0) out.approvals = opts.approvals
  return out
}

/** Result of a rewrap. */
export interface RewrapResult {
  /** The data key (32 bytes). Owned by the caller: zero it when done. */
  dataKey: Uint8Array
  /** The k nodes whose partials were combined. */
  nodes: number[]
  /** Nodes that failed, were slow past the deadline, or were caught lying (blame). */
  failures: NodeFailure[]
  /**
   * The key-set generation the partials were combined under (the trusted one, or a newer
   * generation after a share refresh that the k combined nodes vouched for).
   */
  keySet: KeySet
}

/** Result of a batch rewrap. */
export interface RewrapBatchResult {
  /** Data keys in envelope order. Owned by the caller. */
  dataKeys: Uint8Array[]
  failures: NodeFailure[]
  /** The generation the last slice was combined under (k vouchers); absent when there was nothing to do. */
  keySet?: KeySet
}

/** One node's opened answer and the generation it belongs to. */
interface Opened<P> { p: P, ks: KeySet }


/**
 * Recovers the data key of `e` with k nodes. Throws VerificationError (the envelope is invalid, or
 * it does not open although k partials verify), QuorumUnavailableError (fewer than k correct
 * answers within the deadline; each node's failure listed), NotAuthorizedError (the nodes refuse
 * this client for the envelope's label), BadInputError (envelope/key set mismatch).
 */
export async function rewrap (t: ClientTransport, ks: KeySet, e: Envelope, opts: RewrapOptions = {}): Promise<RewrapResult> {
  if (opts.verifyEnvelope === true) verifyEnvelope(ks, e)
  // A reshare may have given the epoch a generation with another threshold (client/membership.ts).
  const k = Math.max(ks.threshold, t.cluster.threshold)
  const gk = new Map<string, number>([[idOf(ks), ks.threshold]])
  const kOf = (id: string): number => gk.get(id) ?? k
  const envBytes = encodeEnvelope(e)
  const ids = [envelopeId(e)]
  const deadlineMs = opts.deadlineMs ?? 10_000
  const recipient = t.identity.recipientPublicKey
  const h = new GenerationHedger<Opened<Partial>>(candidatesFor(t.indices, opts.exclude, opts.order), k, Math.max(ks.n, t.cluster.nodes.length), deadlineMs, opts.hedgeMs ?? hedgeDelay(t, 'partial', 75), idOf(ks), async (index, signal) => {
    const res = await t.call(index, 'partial', { epoch: ks.epoch, envelope: envBytes, recipient, ...presented(opts, false) }, { timeoutMs: deadlineMs, signal })
    const id = namedGeneration(index, res.keySetId, ks)
    const gks = await resolveGeneration(t, ks, id, { from: index, signal, timeoutMs: deadlineMs })
    gk.set(id, gks.threshold)
    const p = openSealedPartial(res.sealed, gks, ids, index, t.identity.recipientSecretKey)
    if (Array.isArray(p.D)) throw new VerificationError(`node ${index} returned a batch partial for a single envelope`, [index])
    return { keySetId: id, value: { p: p as Partial, ks: gks } }
  }, kOf)
  try {
    for (;;) {
      const group = await h.want()
      const first = [...group.answers.values()][0] as Opened<Partial>
      const pick = [...group.answers.values()].slice(0, first.ks.threshold)
      const gks = first.ks
      const ps = pick.map(o => o.p)
      try {
        const dataKey = combine(gks, e, ps, { strict: opts.strict === true })
        return { dataKey, nodes: ps.map(p => p.index).sort((a, b) => a - b), failures: [...h.failures], keySet: gks }
      } catch (err) {
        if (!(err instanceof VerificationError)) throw err
        let blame = err.blame
        if (blame.length === 0) blame = ps.filter(p => !verifyPartial(gks, e, p)).map(p => p.index)
        if (blame.length === 0) throw err // every proof holds: the envelope itself does not open
        for (const i of blame) h.drop(i, ErrorCode.VERIFICATION_FAILED, 'partial decryption failed its DLEQ proof (wrong or malicious answer)')
      }
    }
  } finally {
    h.close()
  }
}

/**
 * Recovers the data keys of many envelopes with one `partial.batch` request per node per
 * MAX_BATCH envelopes (one sealed batch partial with a single batched DLEQ proof, RFC 9497 §2.2
 * style). Same failure handling and errors as `rewrap`; the deadline (default 10 s + 10 ms per
 * envelope) applies to each slice of MAX_BATCH envelopes. Envelopes must share the key set's epoch.
 */
export async function rewrapBatch (t: ClientTransport, ks: KeySet, es: Envelope[], opts: RewrapOptions = {}): Promise<RewrapBatchResult> {
  const dataKeys: Uint8Array[] = []
  const failures: NodeFailure[] = []
  let used: KeySet | undefined
  try {
    for (let off = 0; off < es.length; off += MAX_BATCH) {
      const slice = es.slice(off, off + MAX_BATCH)
      const r = await rewrapSlice(t, ks, slice, opts)
      dataKeys.push(...r.dataKeys)
      used = r.keySet
      for (const f of r.failures) if (!failures.some(x => x.index === f.index)) failures.push(f)
    }
  } catch (err) {
    for (const key of dataKeys) key.fill(0)
    throw err
  }
  return { dataKeys, failures, keySet: used }
}

async function rewrapSlice (t: ClientTransport, ks: KeySet, es: Envelope[], opts: RewrapOptions): Promise<RewrapBatchResult> {
  if (es.length === 0) return { dataKeys: [], failures: [], keySet: ks }
  if (opts.verifyEnvelope === true) verifyEnvelopes(ks, es)
  // A reshare may have given the epoch a generation with another threshold (client/membership.ts).
  const k = Math.max(ks.threshold, t.cluster.threshold)
  const gk = new Map<string, number>([[idOf(ks), ks.threshold]])
  const kOf = (id: string): number => gk.get(id) ?? k
  const envBytes = es.map(encodeEnvelope)
  const ids = es.map(envelopeId)
  const deadlineMs = opts.deadlineMs ?? 10_000 + 10 * es.length
  const recipient = t.identity.recipientPublicKey
  const h = new GenerationHedger<Opened<BatchPartial>>(candidatesFor(t.indices, opts.exclude, opts.order), k, Math.max(ks.n, t.cluster.nodes.length), deadlineMs, opts.hedgeMs ?? hedgeDelay(t, 'partial.batch', 75 + 2 * es.length), idOf(ks), async (index, signal) => {
    const res = await t.call(index, 'partial.batch', { epoch: ks.epoch, envelopes: envBytes, recipient, ...presented(opts, true) }, { timeoutMs: deadlineMs, signal })
    const id = namedGeneration(index, res.keySetId, ks)
    const gks = await resolveGeneration(t, ks, id, { from: index, signal, timeoutMs: deadlineMs })
    gk.set(id, gks.threshold)
    const p = openSealedPartial(res.sealed, gks, ids, index, t.identity.recipientSecretKey)
    if (!Array.isArray(p.D)) throw new VerificationError(`node ${index} returned a single partial for a batch`, [index])
    return { keySetId: id, value: { p: p as BatchPartial, ks: gks } }
  }, kOf)
  try {
    for (;;) {
      const group = await h.want()
      const first = [...group.answers.values()][0] as Opened<BatchPartial>
      const pick = [...group.answers.values()].slice(0, first.ks.threshold)
      const gks = first.ks
      try {
        return { dataKeys: combineBatch(gks, es, pick.map(o => o.p), { strict: opts.strict === true }), failures: [...h.failures], keySet: gks }
      } catch (err) {
        if (!(err instanceof VerificationError) || err.blame.length === 0) throw err
        for (const i of err.blame) h.drop(i, ErrorCode.VERIFICATION_FAILED, 'batch partial failed its DLEQ proof (wrong or malicious answer)')
      }
    }
  } finally {
    h.close()
  }
}
