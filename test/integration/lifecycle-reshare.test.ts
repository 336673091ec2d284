/**
 * Reshare with real node processes, docs/PROTOCOL.md §11.7 (threshold change, same members):
 *   (a) under-signed and forged reshare orders, and a no-op reshare, are refused; nothing changes;
 *   (b) 3-of-5 → 4-of-5 while a raw client unwraps in a loop: 0 failed unwraps; group keys kept,
 *       every live epoch gets a 4-of-5 generation; old envelopes unwrap with 4 partials; the
 *       membership chain is served by cluster.get (revision 2) and folds to 4-of-5;
 *   (c) the client library adopts the new membership and generation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { startAdminCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { lifecycleKit } from '../helpers/lifecycle-kit.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { decodeKeySet, keySetId, signKey, wrapKey } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { toB64u, toHex } from '../../protocol/bytes.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import type { OrderParams, SignedOrder } from '../../protocol/order.ts'
import { foldMembership } from '../../protocol/membership.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import type { AdminKey } from '../../client/identity.ts'

let c: TestCluster
let cluster: ClusterFile
const admins: AdminKey[] = [0, 1, 2].map(() => { const secretKey = new Uint8Array(randomBytes(32)); return { secretKey, publicKey: ed25519.getPublicKey(secretKey) } })
const kit = lifecycleKit(() => c, { sameMembership: false })
const { trusted, generations, push, envelopeFor, unwrapOnce } = kit

beforeAll(async () => {
  ;({ c, cluster } = await startAdminCluster(admins.map(a => a.publicKey)))
  const k1 = decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet)
  trusted.set(1, k1)
  generations.set(keySetId(k1), k1)
}, 90_000)

afterAll(async () => { await c?.cleanup() })

function members (): OrderParams['members'] { return cluster.nodes.map(n => ({ index: n.index, peerId: n.peerId, addresses: n.addresses })) }

function order (params: OrderParams, signers = [0, 1], epoch = 1): SignedOrder {
  let so = newOrder(cluster, 'reshare', epoch, params)
  for (const k of signers) so = signOrder(so, cluster, admins[k] as AdminKey)
  return so
}

async function currentSets (epoch: number): Promise<KeySet[]> {
  return await Promise.all(c.nodes.map(async x => decodeKeySet((await c.rpc(x.index, 'keyset.get', { epoch })).keySet)))
}

describe('lifecycle: reshare (same members, threshold change)', () => {
  it('refuses under-signed, forged and no-op reshare orders, changing nothing', async () => {
    const before = (await currentSets(1)).map(keySetId)
    expect(await push(1, order({ members: members(), newThreshold: 4 }, [0]))).toMatchObject({ accepted: false, code: ErrorCode.VERIFICATION_FAILED })
    const so = order({ members: members(), newThreshold: 4 }, [0])
    const forged = { ...so, signatures: [...so.signatures, { admin: 'admin3', sig: toB64u(ed25519.sign(new Uint8Array(8), new Uint8Array(randomBytes(32)))) }] }
    expect(await push(2, forged)).toMatchObject({ accepted: false, code: ErrorCode.VERIFICATION_FAILED })
    const noop = await push(3, order({ members: members(), newThreshold: 3 }))
    expect(noop).toMatchObject({ accepted: false, code: ErrorCode.BAD_INPUT })
    expect(noop.detail).toMatch(/neither the members nor the threshold/)
    expect(await push(4, order({ members: members(), newThreshold: 4 }, [0, 1], 2))).toMatchObject({ accepted: false, code: ErrorCode.CONFLICT })
    await new Promise(resolve => setTimeout(resolve, 300))
    expect((await currentSets(1)).map(keySetId)).toEqual(before)
    expect((await c.rpc(1, 'cluster.get', { have: 0 }))).toEqual({ revision: 1, orders: [] })
  }, 60_000)

  it('3-of-5 → 4-of-5 under load: 0 failed unwraps, group keys kept, membership revision 2', async () => {
    const e1 = envelopeFor(1, 'r1')
    const before = keySetId(trusted.get(1) as KeySet)
    let stop = false
    let ok = 0
    let retried = 0
    const failures: unknown[] = []
    // Like the client library (client/generations.ts re-asks): while the nodes switch generations
    // neither k-set may be complete for a moment (2 old 3-of-5 + 3 new 4-of-5); retry then.
    const load = (async () => {
      while (!stop) {
        for (let attempt = 0; ; attempt++) {
          try {
            const r = await unwrapOnce(e1.e)
            expect(toHex(r.key)).toBe(toHex(e1.key))
            ok++
            break
          } catch (e) {
            if (attempt >= 10) { failures.push(e); break }
            retried++
            await new Promise(resolve => setTimeout(resolve, 50))
          }
        }
      }
    })()
    const so = order({ members: members(), newThreshold: 4 })
    const t0 = performance.now()
    expect(await push(2, so)).toMatchObject({ accepted: true })
    // Every node committed (4-of-5 generation) and reloaded (membership revision 2 in its log).
    const until = Date.now() + 60_000
    for (;;) {
      const st = await Promise.all(c.nodes.map(async x => await c.status(x.index).catch(() => undefined)))
      const failed = st.find(s => s?.dkg.state === 'failed')
      if (failed !== undefined) throw new Error(`reshare failed on node ${failed.index}: ${failed.dkg.detail ?? ''}`)
      const sets = await currentSets(1).catch(() => [])
      if (sets.length === 5 && sets.every(k => k.threshold === 4) && c.nodes.every(x => x.logs.some(l => l.msg === 'node ready' && l.membershipRevision === 2))) break
      if (Date.now() > until) throw new Error(`reshare not complete: ${st.map(s => s?.dkg.detail ?? 'down').join(' | ')}`)
      await new Promise(resolve => setTimeout(resolve, 150))
    }
    const ms = performance.now() - t0
    await new Promise(resolve => setTimeout(resolve, 300))
    stop = true
    await load
    console.log(`reshare 3-of-5 → 4-of-5 (push → all committed and reloaded): ${ms.toFixed(0)} ms; ${ok} unwraps under load (${retried} retried), ${failures.length} failed${failures.length > 0 ? ` (${String(failures[0])})` : ''}`)
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(0)
    const sets = await currentSets(1)
    expect(new Set(sets.map(keySetId)).size).toBe(1)
    const neu = sets[0] as KeySet
    expect(keySetId(neu)).not.toBe(before)
    expect(neu.threshold).toBe(4)
    expect(neu.n).toBe(5)
    expect(wrapKey(neu).equals(wrapKey(trusted.get(1) as KeySet))).toBe(true)
    expect(toHex(signKey(neu))).toBe(toHex(signKey(trusted.get(1) as KeySet)))
    const r = await unwrapOnce(e1.e)
    expect(toHex(r.key)).toBe(toHex(e1.key))
    expect(r.ids).toEqual([keySetId(neu)])
    const m = await c.rpc(3, 'cluster.get', { have: 1 })
    expect(m.revision).toBe(2)
    const folded = foldMembership(cluster, m.orders as string[])
    expect(folded.cluster.threshold).toBe(4)
    expect(await c.rpc(3, 'cluster.get', { have: 2 })).toEqual({ revision: 2 })
    // The same order again is a replay.
    expect(await push(1, so)).toMatchObject({ accepted: false, code: ErrorCode.CONFLICT })
  }, 90_000)
})
