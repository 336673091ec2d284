/**
 * Proactive share refresh with real node processes (3-of-5), docs/PROTOCOL.md §11.6:
 *   (f) a refresh order while a rotation is pending is refused CONFLICT;
 *   (e) forged / under-signed / mis-targeted refresh orders and a mis-targeted reshare order are refused, nothing changes;
 *   (a) a refresh of both live epochs while a client unwraps in a loop: 0 failed unwraps (the loop
 *       asks every node once and combines within one generation, no retries);
 *   (b) group keys unchanged, keySetIds changed, old generations still served, old envelopes unwrap,
 *       FROST signing across the generation change answers CONFLICT;
 *   (c) shares read from STOPPED nodes' stores: k new shares interpolate to the group key, one old
 *       share with k−1 new ones does not;
 *   (d) a node SIGKILLed mid-refresh and restarted: the refresh completes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { startAdminCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { lifecycleKit } from '../helpers/lifecycle-kit.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { decodeKeySet, keySetId, signKey, wrapKey } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { toB64u, toHex, utf8 } from '../../protocol/bytes.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { BASE, lagrangeAtZero, mod } from '../../protocol/group.ts'
import type { OrderOp, OrderParams, SignedOrder } from '../../protocol/order.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import type { AdminKey } from '../../client/identity.ts'
import { configFromOptions, dataPaths } from '../../node/config.ts'
import { unlockStorageKey } from '../../node/storage-key.ts'
import { LevelNodeStore } from '../../node/store.ts'
import { loadClientIdentity } from '../../node/identity.ts'
import { KeymeshClient } from '../../client/client.ts'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

let c: TestCluster
let cluster: ClusterFile
const admins: AdminKey[] = [0, 1, 2].map(() => { const secretKey = new Uint8Array(randomBytes(32)); return { secretKey, publicKey: ed25519.getPublicKey(secretKey) } })
/** Trusted key sets by epoch (first generation) and every generation seen, by keySetId. */
const kit = lifecycleKit(() => c, { sameMembership: true })
const { trusted, generations, push, envelopeFor, unwrapOnce } = kit

beforeAll(async () => {
  ;({ c, cluster } = await startAdminCluster(admins.map(a => a.publicKey)))
  const k1 = decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet)
  trusted.set(1, k1)
  generations.set(keySetId(k1), k1)
}, 90_000)

afterAll(async () => { await c?.cleanup() })

function order (op: OrderOp, epoch: number, params: OrderParams = {}, signers = [0, 1]): SignedOrder {
  let so = newOrder(cluster, op, epoch, params)
  for (const k of signers) so = signOrder(so, cluster, admins[k] as AdminKey)
  return so
}

async function currentIds (epoch: number): Promise<string[]> {
  return await Promise.all(c.nodes.map(async x => keySetId(decodeKeySet((await c.rpc(x.index, 'keyset.get', { epoch })).keySet))))
}

/** Waits until every node serves a key set of each epoch different from `before` and its status is done. */
async function waitRefreshed (before: Map<number, string>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const st = await Promise.all(c.nodes.map(async x => await c.status(x.index).catch(() => undefined)))
    const failed = st.find(s => s?.dkg.state === 'failed')
    if (failed !== undefined) throw new Error(`refresh failed on node ${failed.index}: ${failed.dkg.detail ?? ''}`)
    if (st.every(s => s?.dkg.state === 'done')) {
      let all = true
      for (const [epoch, id] of before) {
        const ids = await currentIds(epoch).catch(() => [id])
        if (ids.some(x => x === id)) { all = false; break }
      }
      if (all) return
    }
    if (Date.now() > until) throw new Error(`refresh not complete: ${st.map(s => s?.dkg.detail ?? 'down').join(' | ')}`)
    await new Promise(resolve => setTimeout(resolve, 150))
  }
}

/** Reads node i's shares (epoch → {wrap, sign}) from its store; the node must be stopped. */
async function sharesOf (i: number, epochs: number[]): Promise<Map<number, { wrap: KeyShare, sign: KeyShare }>> {
  const dataDir = (c.nodes[i - 1] as { dataDir: string }).dataDir
  const cfg = configFromOptions({ data: dataDir, insecureDevPassphrase: true }, false)
  const store = await LevelNodeStore.open(dataPaths(dataDir).db, await unlockStorageKey(cfg.storageKey, dataPaths(dataDir).storageParams))
  try {
    const out = new Map<number, { wrap: KeyShare, sign: KeyShare }>()
    for (const e of epochs) out.set(e, { wrap: await store.getShare(e, 'wrap') as KeyShare, sign: await store.getShare(e, 'sign') as KeyShare })
    return out
  } finally { await store.close() }
}

async function readStopped (nodes: number[], epochs: number[]): Promise<Map<number, Map<number, { wrap: KeyShare, sign: KeyShare }>>> {
  const out = new Map<number, Map<number, { wrap: KeyShare, sign: KeyShare }>>()
  for (const i of nodes) {
    await c.stop(i)
    out.set(i, await sharesOf(i, epochs))
    await c.start(i)
  }
  return out
}

/** x = Σ λ_i x_i over the given shares; returns x·B. */
function interpolate (shares: KeyShare[]): ReturnType<typeof wrapKey> {
  const idx = shares.map(s => s.index)
  return BASE.multiply(mod(shares.reduce((acc, s) => acc + lagrangeAtZero(idx, s.index) * s.scalar, 0n)) || 1n)
}

describe('lifecycle: refresh', () => {
  it('refuses a refresh while a rotation is pending (CONFLICT); refuses forged, under-signed, mis-targeted and reshare orders, changing nothing', async () => {
    const rotate = order('rotate', 2)
    expect(await push(1, rotate)).toMatchObject({ accepted: true })
    const during = await push(1, order('refresh', 1))
    expect(during).toMatchObject({ accepted: false, code: ErrorCode.CONFLICT })
    expect(during.detail).toMatch(/in progress/)
    const st = await c.waitFor(s => s.every(x => x?.epoch === 2 && x.dkg.state === 'done'), 60_000)
    expect(new Set(st.map(s => s?.keySetId)).size).toBe(1)
    const k2 = decodeKeySet((await c.rpc(3, 'keyset.get', {})).keySet)
    trusted.set(2, k2)
    generations.set(keySetId(k2), k2)

    const before = [...await currentIds(1), ...await currentIds(2)]
    const under = await push(2, order('refresh', 2, {}, [0]))
    expect(under).toMatchObject({ accepted: false, code: ErrorCode.VERIFICATION_FAILED })
    const so = order('refresh', 2, {}, [0])
    const forged = { ...so, signatures: [...so.signatures, { admin: 'admin3', sig: toB64u(ed25519.sign(new Uint8Array(8), new Uint8Array(randomBytes(32)))) }] }
    expect(await push(3, forged)).toMatchObject({ accepted: false, code: ErrorCode.VERIFICATION_FAILED })
    const wrongEpoch = await push(4, order('refresh', 1))
    expect(wrongEpoch).toMatchObject({ accepted: false, code: ErrorCode.CONFLICT })
    expect(wrongEpoch.detail).toMatch(/current epoch is 2/)
    const reshare = await push(5, order('reshare', 3, { members: cluster.nodes.map(n => ({ index: n.index, peerId: n.peerId, addresses: n.addresses })), newThreshold: 3 }))
    expect(reshare).toMatchObject({ accepted: false, code: ErrorCode.CONFLICT })
    expect(reshare.detail).toMatch(/a reshare keeps the current epoch: expected 2/)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect([...await currentIds(1), ...await currentIds(2)]).toEqual(before)
    expect((await Promise.all(c.nodes.map(async x => (await c.status(x.index)).dkg.state)))).toEqual(['done', 'done', 'done', 'done', 'done'])
  }, 80_000)

  let oldShares: Map<number, { wrap: KeyShare, sign: KeyShare }>
  let frostOld: { id: string, session: string }
  it('refreshes both live epochs while a client unwraps in a loop: 0 failures; group keys kept, key set ids changed', async () => {
    oldShares = (await readStopped([1], [1, 2])).get(1) as Map<number, { wrap: KeyShare, sign: KeyShare }>
    const e1 = envelopeFor(1, 'r1')
    const e2 = envelopeFor(2, 'r2')
    const before = new Map([[1, keySetId(trusted.get(1) as KeySet)], [2, keySetId(trusted.get(2) as KeySet)]])
    // A FROST round one under the old generation (its round two must be refused afterwards).
    const fs = toHex(new Uint8Array(randomBytes(16)))
    const fc = await c.rpc(1, 'frost.commit', { epoch: 2, session: fs })
    expect(fc.keySetId).toBe(before.get(2))
    frostOld = { id: fc.keySetId, session: fs }

    // The client library (client/rewrap.ts: generation-aware) as a second, independent peer.
    const peerKey = (await loadClientIdentity(c.clientIdentityPaths[1] as string)).peerKey
    const rk = generateRecipientKeyPair()
    const lib = await KeymeshClient.connect(c.clusterPath, { privateKey: peerKey, peerId: peerIdFromPrivateKey(peerKey), recipientSecretKey: rk.secretKey, recipientPublicKey: rk.publicKey }, { cacheDir: false })
    await lib.keySet(1)
    await lib.keySet(2)
    let libOk = 0
    const libFailures: unknown[] = []
    let stop = false
    let ok = 0
    const seen = new Set<string>()
    const failures: unknown[] = []
    const libLoad = (async () => {
      for (let j = 0; !stop; j++) {
        const x = j % 2 === 0 ? e2 : e1
        try {
          const r = await lib.rewrap(x.e)
          if (toHex(r.dataKey) !== toHex(x.key)) throw new Error('wrong data key')
          libOk++
        } catch (e) { libFailures.push(e) }
      }
    })()
    const load = (async () => {
      for (let j = 0; !stop; j++) {
        const x = j % 2 === 0 ? e1 : e2
        try {
          const r = await unwrapOnce(x.e)
          expect(toHex(r.key)).toBe(toHex(x.key))
          for (const id of r.ids) seen.add(id)
          ok++
        } catch (e) { failures.push(e) }
      }
    })()
    const t0 = performance.now()
    expect(await push(2, order('refresh', 2))).toMatchObject({ accepted: true })
    await waitRefreshed(before)
    const ms = performance.now() - t0
    await new Promise(resolve => setTimeout(resolve, 200))
    stop = true
    await load
    await libLoad
    await lib.close()
    console.log(`refresh 3-of-5, epochs 1+2 (order push → all 5 nodes committed): ${ms.toFixed(0)} ms; ${ok} raw unwraps under load (generations seen ${seen.size}), ${failures.length} failed; client library rewrap: ${libOk} ok, ${libFailures.length} failed${libFailures.length > 0 ? ` (${String(libFailures[0])})` : ''}`)
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(0)
    expect(libFailures).toEqual([])
    expect(libOk).toBeGreaterThan(0)

    for (const epoch of [1, 2]) {
      const ids = await currentIds(epoch)
      expect(new Set(ids).size).toBe(1)
      expect(ids[0]).not.toBe(before.get(epoch))
      const neu = decodeKeySet((await c.rpc(epoch, 'keyset.get', { epoch })).keySet)
      const old = trusted.get(epoch) as KeySet
      expect(wrapKey(neu).equals(wrapKey(old))).toBe(true)
      expect(toHex(signKey(neu))).toBe(toHex(signKey(old)))
      expect(neu.wrap.verifyingShares[0]?.equals(old.wrap.verifyingShares[0] as typeof neu.wrap.verifyingShares[0])).toBe(false)
      // The old generation stays fetchable by id; an unknown id is NOT_FOUND.
      expect(keySetId(decodeKeySet((await c.rpc(4, 'keyset.get', { epoch, keySetId: before.get(epoch) as string })).keySet))).toBe(before.get(epoch))
      await expect(c.rpc(4, 'keyset.get', { epoch, keySetId: 'ab'.repeat(32) })).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
    }
    // Status: same epoch, new key set id.
    const st = await c.status(5)
    expect(st.epoch).toBe(2)
    expect(st.keySetId).not.toBe(before.get(2))
    // Envelopes wrapped before the refresh unwrap with the new generation only.
    for (const x of [e1, e2]) {
      const r = await unwrapOnce(x.e)
      expect(toHex(r.key)).toBe(toHex(x.key))
      expect(r.ids).toEqual([(await currentIds(x.e.label.epoch))[0]])
    }
    // FROST: a session committed under the old generation is refused at round two; asking for the
    // old generation is refused too; a fresh commit names the new generation.
    await expect(c.rpc(1, 'frost.sign', { epoch: 2, session: frostOld.session, message: utf8('x.y'), commitments: [new Uint8Array(66)], keySetId: frostOld.id })).rejects.toMatchObject({ code: ErrorCode.CONFLICT })
    const fresh = await c.rpc(2, 'frost.commit', { epoch: 2, session: toHex(new Uint8Array(randomBytes(16))) })
    expect(fresh.keySetId).toBe((await currentIds(2))[0])
  }, 80_000)

  it('old shares no longer combine with new ones (shares read from stopped nodes)', async () => {
    const neu = await readStopped([1, 2, 3], [1, 2])
    for (const epoch of [1, 2]) {
      const t = trusted.get(epoch) as KeySet
      for (const kind of ['wrap', 'sign'] as const) {
        const group = kind === 'wrap' ? wrapKey(t) : t.sign.commitments[0] as ReturnType<typeof wrapKey>
        const fresh = [1, 2, 3].map(i => neu.get(i)?.get(epoch)?.[kind] as KeyShare)
        expect(interpolate(fresh).equals(group)).toBe(true)
        const old = oldShares.get(epoch)?.[kind] as KeyShare
        expect(old.scalar).not.toBe(fresh[0]?.scalar)
        expect(interpolate([old, fresh[1] as KeyShare, fresh[2] as KeyShare]).equals(group)).toBe(false)
      }
    }
    await c.waitFor(s => s.every(x => x?.dkg.state === 'done'), 30_000)
  }, 60_000)

  it('a node SIGKILLed mid-refresh resumes after a restart and the refresh completes', async () => {
    const before = new Map([[1, (await currentIds(1))[0] as string], [2, (await currentIds(2))[0] as string]])
    expect(await push(1, order('refresh', 2))).toMatchObject({ accepted: true })
    // Kill node 4 as soon as it is in the ceremony (or at once if it is already past it).
    const until = Date.now() + 10_000
    for (;;) {
      const s = await c.status(4).catch(() => undefined)
      // "round …" is shown only once the progress record (dealings + sub-shares) is persisted.
      if ((s?.dkg.state === 'running' && /^refresh .*round/.test(s.dkg.detail ?? '')) || Date.now() > until) break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const detail = (await c.status(4).catch(() => undefined))?.dkg.detail
    await c.kill(4)
    await new Promise(resolve => setTimeout(resolve, 500))
    await c.start(4)
    await waitRefreshed(before)
    console.log(`refresh with node 4 killed at "${detail ?? '?'}": completed`)
    // It resumed from its persisted dealings (never dealt again under the same session).
    if (detail !== undefined && /round/.test(detail)) expect(c.nodes[3]?.logs.some(l => l.msg === 'refresh resumed')).toBe(true)
    for (const epoch of [1, 2]) expect(new Set(await currentIds(epoch)).size).toBe(1)
    const e = envelopeFor(2, 'after-kill')
    expect(toHex((await unwrapOnce(e.e)).key)).toBe(toHex(e.key))
  }, 60_000)
})
