/**
 * Shared pieces of the lifecycle integration tests (refresh, reshare): a raw-RPC client view that
 * trusts the first key set of each epoch, accepts later GENERATIONS of it only with the same
 * group keys, and unwraps by grouping the nodes' partials by the generation they name.
 */
import { randomBytes } from 'node:crypto'
import type { TestCluster } from './cluster.ts'
import { decodeKeySet, keySetId, signKey, wrapKey } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { wrap } from '../../protocol/wrap.ts'
import { encodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { openSealedPartial } from '../../protocol/partial.ts'
import type { Partial } from '../../protocol/partial.ts'
import { combine } from '../../protocol/combine.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { toHex } from '../../protocol/bytes.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import type { SignedOrder } from '../../protocol/order.ts'
import type { ResponseBodies } from '../../protocol/rpc.ts'

/** The kit; `cluster()` returns the running test cluster (assigned in beforeAll). */
export interface LifecycleKit {
  /** The first key set of each epoch (trust anchors) and every generation seen, by keySetId. */
  trusted: Map<number, KeySet>
  generations: Map<string, KeySet>
  recipient: ReturnType<typeof generateRecipientKeyPair>
  /** Records `ks` as the trusted key set of its epoch. */
  trust: (ks: KeySet) => void
  /** Pushes an order (signed object or canonical text) to node `i`. */
  push: (i: number, so: SignedOrder | string) => Promise<ResponseBodies['lifecycle.order']>
  /** A fresh data key wrapped to the trusted key set of `epoch`. */
  envelopeFor: (epoch: number, release: string) => { e: Envelope, key: Uint8Array }
  /** Generation `id` of `epoch` (fetched from node `from` once), accepted only with the trusted group keys. Throws otherwise. */
  generation: (epoch: number, id: string, from: number) => Promise<KeySet>
  /** One unwrap, no retries: every node once, grouped by generation, combined strictly with that generation's k. */
  unwrapOnce: (e: Envelope) => Promise<{ key: Uint8Array, ids: string[] }>
}

/**
 * `sameMembership`: a generation must also keep the trusted (k, n) — true for refresh tests, false
 * for reshare tests (a reshare changes them).
 */
export function lifecycleKit (cluster: () => TestCluster, opts: { sameMembership: boolean }): LifecycleKit {
  const trusted = new Map<number, KeySet>()
  const generations = new Map<string, KeySet>()
  const recipient = generateRecipientKeyPair()
  const generation = async (epoch: number, id: string, from: number): Promise<KeySet> => {
    const hit = generations.get(id)
    if (hit !== undefined) return hit
    const ks = decodeKeySet((await cluster().rpc(from, 'keyset.get', { epoch, keySetId: id })).keySet)
    const t = trusted.get(epoch) as KeySet
    const sameKeys = keySetId(ks) === id && ks.epoch === epoch && wrapKey(ks).equals(wrapKey(t)) && toHex(signKey(ks)) === toHex(signKey(t))
    if (!sameKeys || (opts.sameMembership && (ks.threshold !== t.threshold || ks.n !== t.n))) throw new Error(`node ${from} served a bad generation ${id}`)
    generations.set(id, ks)
    return ks
  }
  return {
    trusted,
    generations,
    recipient,
    trust: (ks) => { trusted.set(ks.epoch, ks); generations.set(keySetId(ks), ks) },
    push: async (i, so) => await cluster().rpc(i, 'lifecycle.order', { order: typeof so === 'string' ? so : encodeSignedOrder(so) }),
    envelopeFor: (epoch, release) => {
      const k = trusted.get(epoch) as KeySet
      const key = new Uint8Array(randomBytes(32))
      return { e: wrap(k, { clusterId: k.clusterId, epoch, purpose: 'release-key', app: 'shop', env: 'prod', release }, key), key }
    },
    generation,
    unwrapOnce: async (e) => {
      const c = cluster()
      const epoch = e.label.epoch
      const answers = await Promise.all(c.nodes.map(async x => await c.rpc(x.index, 'partial', { epoch, envelope: encodeEnvelope(e), recipient: recipient.publicKey }).then(r => ({ i: x.index, r }), () => undefined)))
      const groups = new Map<string, Partial[]>()
      for (const a of answers) {
        if (a === undefined) continue
        const ks = await generation(epoch, a.r.keySetId, a.i)
        const p = openSealedPartial(a.r.sealed, ks, [envelopeId(e)], a.i, recipient.secretKey) as Partial
        groups.set(a.r.keySetId, [...(groups.get(a.r.keySetId) ?? []), p])
      }
      for (const [id, ps] of groups) {
        const ks = generations.get(id) as KeySet
        if (ps.length >= ks.threshold) return { key: combine(ks, e, ps.slice(0, ks.threshold), { strict: true }), ids: [...groups.keys()] }
      }
      throw new Error(`no generation with k answers: ${[...groups].map(([id, ps]) => `${id.slice(0, 8)}:${ps.length}`).join(' ')}`)
    }
  }
}
