/** protocol/membership.ts (fold, apply), client/reshare-cli.ts member list, node store commitReshare/deleteAllShares. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ed25519 } from '@noble/curves/ed25519.js'
import { validateClusterFile } from '../../protocol/cluster.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { applyReshare, foldMembership, reshareCommitQuorum } from '../../protocol/membership.ts'
import { encodeSignedOrder, parseSignedOrder } from '../../protocol/order.ts'
import { ErrorCode, KeymeshError, errorCode } from '../../protocol/errors.ts'
import { BASE, L } from '../../protocol/group.ts'
import { keySetId } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import { parseAddSpec, reshareMembers } from '../../client/reshare-cli.ts'
import { LevelNodeStore } from '../../node/store.ts'
import { fetchNewerMembership } from '../../client/membership.ts'
import type { ClientTransport } from '../../client/transport.ts'
import type { ResponseBodies } from '../../protocol/rpc.ts'
import { StorageKey } from '../../node/storage-key.ts'
import { readMembership, writeMembership } from '../../node/lifecycle/membership-file.ts'
import { ADMIN_SEEDS, orderCluster } from '../vectors/generators/order.ts'
import { membershipChain } from '../vectors/generators/membership.ts'

const keys = ADMIN_SEEDS.map(s => ({ secretKey: s, publicKey: ed25519.getPublicKey(s) }))
let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'keymesh-membership-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

async function genesis (): Promise<ClusterFile> { return validateClusterFile(await orderCluster()) }

describe('membership fold', () => {
  it('folds a chain: nodes and threshold follow the orders; admins, clients and clusterId never change', async () => {
    const g = await genesis()
    const { orders } = await membershipChain()
    const m = foldMembership(g, orders)
    expect(m.revision).toBe(3)
    expect(m.cluster.threshold).toBe(3)
    expect(m.cluster.nodes).toHaveLength(4)
    expect(m.cluster.admins).toEqual(g.admins)
    expect(m.cluster.clusterId).toBe(g.clusterId)
    expect(foldMembership(g, orders.slice(0, 1)).cluster.nodes.map(n => n.index)).toEqual([1, 2, 3])
    expect(foldMembership(g, []).revision).toBe(1)
  })

  it('refuses a chain that does not verify against the GENESIS admins, is out of order, or applies a non-reshare', async () => {
    const g = await genesis()
    const { orders } = await membershipChain()
    // Another admin set (a cluster file edited by someone) cannot verify the chain.
    const other = { ...g, admins: [{ name: 'alice', publicKey: ed25519.getPublicKey(new Uint8Array(32).fill(7)) }, g.admins[1]!] }
    expect(errorCode(catchErr(() => foldMembership(other, orders)))).toBe(ErrorCode.VERIFICATION_FAILED)
    expect(errorCode(catchErr(() => foldMembership(g, [orders[1]!, orders[0]!])))).toBe(ErrorCode.BAD_INPUT)
    expect(catchErr(() => foldMembership(g, [orders[1]!, orders[0]!]))?.message).toMatch(/orders\[1\]/)
    let rot = newOrder(g, 'rotate', 2)
    for (const k of keys) rot = signOrder(rot, g, k)
    expect(errorCode(catchErr(() => foldMembership(g, [encodeSignedOrder(rot)])))).toBe(ErrorCode.BAD_INPUT)
    expect(() => applyReshare(g, rot.order)).toThrow(/expected "reshare"/)
    // A new member whose PeerId is an enrolled client's is refused (PeerIds unique across nodes and clients).
    const c0 = validateClusterFile(JSON.parse(JSON.stringify({ ...(await orderCluster() as object), clients: [{ name: 'cli', peerId: foldMembership(g, (await membershipChain()).orders).cluster.nodes[3]!.peerId }] })))
    const { orders: chain } = await membershipChain()
    expect(() => applyReshare(c0, parseSignedOrder(chain[1]!).order)).toThrow(/duplicate PeerId/)
  })

  it('persists the chain (DATA/membership.json) and refuses a corrupt or foreign file', async () => {
    const g = await genesis()
    const { orders } = await membershipChain()
    const d = join(dir, 'n1')
    const { mkdir, writeFile } = await import('node:fs/promises')
    await mkdir(d)
    expect((await readMembership(d, g)).revision).toBe(1)
    await writeMembership(d, g.clusterId, orders)
    const m = await readMembership(d, g)
    expect(m.revision).toBe(3)
    expect(parseSignedOrder(m.orders[1]!).order.params.newThreshold).toBe(3)
    await writeFile(join(d, 'membership.json'), '{"format":"keymesh.membership","version":1,"clusterId":"' + g.clusterId + '","orders":["x"]}')
    expect(errorCode(await readMembership(d, g).catch(e => e))).toBe(ErrorCode.INTERNAL)
  })
})

describe('cluster reshare member list', () => {
  it('replaces removed members in place, appends extra additions, compacts extra removals', async () => {
    const g = await genesis()
    const [a, b, c] = g.nodes as [ClusterFile['nodes'][0], ClusterFile['nodes'][0], ClusterFile['nodes'][0]]
    const x = { peerId: foldMembership(g, (await membershipChain()).orders).cluster.nodes[3]!.peerId, addresses: ['/ip4/10.0.0.9/tcp/7009'] }
    expect(reshareMembers(g.nodes, [x], [b.peerId]).map(m => m.peerId)).toEqual([a.peerId, x.peerId, c.peerId])
    expect(reshareMembers(g.nodes, [x], []).map(m => [m.index, m.peerId])).toEqual([[1, a.peerId], [2, b.peerId], [3, c.peerId], [4, x.peerId]])
    expect(reshareMembers(g.nodes, [], [a.peerId]).map(m => [m.index, m.peerId])).toEqual([[1, b.peerId], [2, c.peerId]])
    expect(() => reshareMembers(g.nodes, [], [a.peerId, b.peerId])).toThrow(/at least 2/)
    expect(() => reshareMembers(g.nodes, [{ peerId: a.peerId, addresses: a.addresses }], [])).toThrow(/already a member/)
    expect(() => reshareMembers(g.nodes, [], [x.peerId])).toThrow(/not a member/)
    expect(parseAddSpec(`${x.peerId}@/ip4/10.0.0.9/tcp/7009,/dns4/n9.example/tcp/7009`).addresses).toHaveLength(2)
    expect(() => parseAddSpec('nope')).toThrow(KeymeshError)
  })
})

/** A key set of `epoch` with threshold k over n nodes: polynomial a0 + a1·x (+ a2·x² when k = 3). */
function keySet (epoch: number, a0: bigint, k: number, n: number, salt: bigint): KeySet {
  const pk = (c0: bigint): KeySet['wrap'] => {
    const coeffs = [c0, ...Array.from({ length: k - 1 }, (_, t) => salt + BigInt(t) + 1n)]
    const at = (i: bigint): bigint => coeffs.reduceRight((acc, c) => (acc * i + c) % L, 0n)
    return { commitments: coeffs.map(c => BASE.multiply(c)), verifyingShares: Array.from({ length: n }, (_, i) => BASE.multiply(at(BigInt(i + 1)))) }
  }
  return { version: 1, clusterId: 'ab'.repeat(16), epoch, threshold: k, n, wrap: pk(a0), sign: pk(a0 + 7n) }
}

describe('node store: reshare commit', () => {
  it('commitReshare installs a generation with another (k, n) and index atomically; refuses another group key or base', async () => {
    const store = await LevelNodeStore.open(join(dir, 'db1'), new StorageKey(new Uint8Array(32).fill(3)), { create: true })
    const old = keySet(1, 11n, 2, 3, 100n)
    await store.commitEpoch(1, old, { index: 3, scalar: 5n }, { index: 3, scalar: 6n })
    const neu = keySet(1, 11n, 3, 5, 200n)
    const session = 's1-0123456789abcdef'
    await store.putDkg(session, 'secret:progress', new Uint8Array([1]))
    const codeOf = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'OK' } catch (e) { return errorCode(e) } }
    expect(await codeOf(store.commitReshare([{ keySet: keySet(1, 12n, 3, 5, 200n), base: old, wrapShare: { index: 5, scalar: 1n }, signShare: { index: 5, scalar: 1n } }], session, new Uint8Array(2)))).toBe(ErrorCode.BAD_INPUT)
    expect(await codeOf(store.commitReshare([{ keySet: neu, base: keySet(1, 11n, 2, 3, 101n), wrapShare: { index: 5, scalar: 1n }, signShare: { index: 5, scalar: 1n } }], session, new Uint8Array(2)))).toBe(ErrorCode.BAD_INPUT)
    expect(await codeOf(store.commitReshare([{ keySet: neu, base: old, wrapShare: { index: 6, scalar: 1n }, signShare: { index: 6, scalar: 1n } }], session, new Uint8Array(2)))).toBe(ErrorCode.BAD_INPUT)
    expect(await store.getShare(1, 'wrap')).toEqual({ index: 3, scalar: 5n })
    await store.commitReshare([{ keySet: neu, base: old, wrapShare: { index: 5, scalar: 9n }, signShare: { index: 5, scalar: 10n } }], session, new Uint8Array([0, 0]))
    expect(await store.getCurrent(1, 'sign')).toEqual({ keySet: neu, keySetId: keySetId(neu), share: { index: 5, scalar: 10n } })
    expect(await store.getKeySetGeneration(1, keySetId(old))).toBeDefined()
    expect(await store.listDkg(session)).toEqual(['result'])
    // A joining node: no key set of the epoch before the commit; the current epoch is set.
    const fresh = await LevelNodeStore.open(join(dir, 'db2'), new StorageKey(new Uint8Array(32).fill(4)), { create: true })
    expect(await fresh.currentEpoch()).toBeUndefined()
    await fresh.commitReshare([{ keySet: neu, base: old, wrapShare: { index: 4, scalar: 9n }, signShare: { index: 4, scalar: 9n } }], session, new Uint8Array([0, 0]))
    expect(await fresh.currentEpoch()).toBe(1)
    expect((await fresh.getCurrent(1, 'wrap'))?.share.index).toBe(4)
    // A removed node: every share deleted in one batch, key sets kept.
    await store.deleteAllShares(session)
    expect(await store.getShare(1, 'wrap')).toBeUndefined()
    expect(await store.getShare(1, 'sign')).toBeUndefined()
    expect(await store.getKeySetId(1)).toBe(keySetId(neu))
    await store.close()
    await fresh.close()
  })
})

function catchErr (f: () => unknown): Error | undefined {
  try { f() } catch (e) { return e as Error }
  return undefined
}

describe('reshareCommitQuorum', () => {
  it('is max(k′, ⌊n′/2⌋ + 1): a strict majority that can also serve; any two quorums intersect', () => {
    expect(reshareCommitQuorum(3, 5)).toBe(3)
    expect(reshareCommitQuorum(4, 5)).toBe(4)
    expect(reshareCommitQuorum(3, 6)).toBe(4)
    expect(reshareCommitQuorum(3, 4)).toBe(3)
    expect(reshareCommitQuorum(2, 9)).toBe(5)
    expect(reshareCommitQuorum(5, 9)).toBe(5)
    for (let n = 2; n <= 64; n++) {
      for (let k = 1; k <= n; k++) {
        const q = reshareCommitQuorum(k, n)
        expect(q).toBeGreaterThanOrEqual(k)
        expect(2 * q).toBeGreaterThan(n)
        expect(q).toBeLessThanOrEqual(n)
      }
    }
    expect(() => reshareCommitQuorum(0, 5)).toThrow(/k′/)
    expect(() => reshareCommitQuorum(6, 5)).toThrow(/k′/)
  })
})

describe('client: fetchNewerMembership needs k′ members of the new membership to vouch', () => {
  /** A transport whose nodes (by PeerId) answer cluster.get with `chainOf(peerId)` (or nothing). */
  function scripted (view: ClusterFile, chainOf: (peerId: string) => string[] | undefined): ClientTransport {
    const answer = (peerId: string): ResponseBodies['cluster.get'] => {
      const orders = chainOf(peerId)
      if (orders === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'down')
      return { revision: orders.length + 1, orders }
    }
    return {
      cluster: view,
      indices: view.nodes.map(n => n.index),
      call: async (i: number) => answer(view.nodes[i - 1]!.peerId),
      callNode: async (n: { peerId: string }) => answer(n.peerId)
    } as unknown as ClientTransport
  }

  it('one node serving a signed chain is not enough; k′ members of the new view serving it are', async () => {
    const g = await genesis()
    const { orders } = await membershipChain()
    const target = foldMembership(g, orders)
    const current = foldMembership(g, [])
    const serving = new Set(target.cluster.nodes.slice(0, target.cluster.threshold - 1).map(n => n.peerId))
    const few = await fetchNewerMembership(scripted(g, p => serving.has(p) ? orders : undefined), g, current)
    expect(few.membership).toBeUndefined()
    serving.add(target.cluster.nodes[target.cluster.threshold - 1]!.peerId)
    const enough = await fetchNewerMembership(scripted(g, p => serving.has(p) ? orders : undefined), g, current)
    expect(enough.membership?.revision).toBe(target.revision)
    // A chain that forks from the one the client holds is never adopted.
    const forked = await fetchNewerMembership(scripted(g, () => orders.slice(1)), g, foldMembership(g, orders.slice(0, 1)))
    expect(forked.membership).toBeUndefined()
  })
})
