/**
 * Reshare with membership change, real node processes (docs/PROTOCOL.md §11.7, RESHARE §8):
 *   (a) 3-of-5 → 3-of-5 with nodes 4, 5 replaced by two joining nodes (started with --join) while
 *       a KeymeshClient (given only the genesis cluster file) unwraps in a loop: 0 failed
 *       operations; old envelopes unwrap via the new members; JWKS unchanged; the removed nodes
 *       delete their shares, stop, and refuse to start again (exit 3);
 *   (b) 3-of-5 → 4-of-7 (two more joining nodes);
 *   (c) a node SIGKILLed mid-reshare: the old group keeps serving; after its restart the reshare completes;
 *   (d) the CLI: `keymesh cluster reshare --remove` (push + wait) and `keymesh cluster show`.
 */
import { Command } from 'commander'
import { registerLifecycleCommands } from '../../client/lifecycle-cli.ts'
import { generateAdminKey, generateIdentity, writeAdminKeyFile, writeIdentityFile } from '../../client/identity.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startTestCluster } from '../helpers/cluster.ts'
import { rewrapLoop } from '../helpers/client-cluster.ts'
import type { TestCluster, TestNode } from '../helpers/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { decodeKeySet, keySetId, wrapKey } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { toHex } from '../../protocol/bytes.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import type { OrderMember, SignedOrder } from '../../protocol/order.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { encodeEnvelope } from '../../protocol/envelope.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import type { AdminKey } from '../../client/identity.ts'
import { KeymeshClient } from '../../client/client.ts'
import { loadClientIdentity, loadNodeIdentity } from '../../node/identity.ts'
import { configFromOptions, dataPaths } from '../../node/config.ts'
import { unlockStorageKey } from '../../node/storage-key.ts'
import { LevelNodeStore } from '../../node/store.ts'

let c: TestCluster
let cluster: ClusterFile
const admins: AdminKey[] = [0, 1].map(() => generateAdminKey())
let adminPaths: string[]
let operatorPath: string
let client: KeymeshClient
let k1: KeySet

beforeAll(async () => {
  c = await startTestCluster({ n: 5, threshold: 3, start: false })
  const base = parseClusterFile(await readFile(c.clusterPath, 'utf8'))
  adminPaths = [join(c.dir, 'a1.admin.json'), join(c.dir, 'a2.admin.json')]
  await Promise.all(adminPaths.map(async (p, k) => { await writeAdminKeyFile(p, admins[k] as AdminKey) }))
  operatorPath = join(c.dir, 'operator.identity.json')
  const op = await generateIdentity()
  await writeIdentityFile(operatorPath, op)
  cluster = { ...base, admins: admins.map((a, k) => ({ name: `admin${k + 1}`, publicKey: a.publicKey })), adminThreshold: 2, clients: [...base.clients, { name: 'operator', peerId: op.peerId.toString() }] }
  await writeFile(c.clusterPath, serializeClusterFile(cluster))
  await Promise.all(c.nodes.map(async x => { await c.start(x.index) }))
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 60_000)
  expect(st.map(s => s?.dkg.state)).toEqual(['done', 'done', 'done', 'done', 'done'])
  k1 = decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet)
  const peerKey = (await loadClientIdentity(c.clientIdentityPaths[1] as string)).peerKey
  const rk = generateRecipientKeyPair()
  client = await KeymeshClient.connect(c.clusterPath, { privateKey: peerKey, peerId: peerIdFromPrivateKey(peerKey), recipientSecretKey: rk.secretKey, recipientPublicKey: rk.publicKey }, { cacheDir: false })
}, 90_000)

afterAll(async () => { await client?.close(); await c?.cleanup() })

function member (x: TestNode, index: number): OrderMember { return { index, peerId: x.peerId, addresses: [`/ip4/127.0.0.1/tcp/${x.port}`] } }

async function writeOrder (members: TestNode[], k: number, name: string): Promise<{ so: SignedOrder, path: string }> {
  let so = newOrder(cluster, 'reshare', 1, { members: members.map((x, j) => member(x, j + 1)), newThreshold: k })
  for (const a of admins) so = signOrder(so, cluster, a)
  const path = join(c.dir, `${name}.order.json`)
  await writeFile(path, encodeSignedOrder(so))
  return { so, path }
}

/** Waits until every node of `members` logged 'node ready' at membership `revision`, and every node of `removed` exited. */
async function waitReshared (members: TestNode[], removed: TestNode[], revision: number, timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const failed = members.find(x => x.logs.some(l => l.msg === 'reshare failed'))
    if (failed !== undefined) throw new Error(`reshare failed on node ${failed.index}: ${JSON.stringify(failed.logs.find(l => l.msg === 'reshare failed'))}`)
    if (members.every(x => x.logs.some(l => l.msg === 'node ready' && l.membershipRevision === revision)) && removed.every(x => x.exit !== undefined)) return
    if (Date.now() > until) throw new Error(`reshare not complete: ${[...members, ...removed].map(x => `${x.index}:${String(x.logs.filter(l => l.msg === 'node ready').at(-1)?.membershipRevision)}/${String(x.exit)}`).join(' ')}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const loop = (envs: Array<{ e: Envelope, key: Uint8Array }>): ReturnType<typeof rewrapLoop> => rewrapLoop(client, envs)

async function sharesOf (x: TestNode): Promise<KeyShare | undefined> {
  const cfg = configFromOptions({ data: x.dataDir, insecureDevPassphrase: true }, false)
  const store = await LevelNodeStore.open(dataPaths(x.dataDir).db, await unlockStorageKey(cfg.storageKey, dataPaths(x.dataDir).storageParams))
  try { return await store.getShare(1, 'wrap') } finally { await store.close() }
}

describe('lifecycle: reshare with membership change', () => {
  const envs: Array<{ e: Envelope, key: Uint8Array }> = []
  let jwksBefore: string

  it('3-of-5 → 3-of-5 replacing nodes 4 and 5 under client load: 0 failures, removed nodes stop and refuse to start', async () => {
    for (let r = 0; r < 3; r++) {
      const key = KeymeshClient.newDataKey()
      const { envelope } = await client.wrap({ purpose: 'release-key', app: 'shop', env: 'prod', release: `r${r}` }, key)
      envs.push({ e: envelope, key })
    }
    jwksBefore = JSON.stringify(await client.jwks())
    const added = await c.addNodes(2)
    const [n1, n2, n3, n4, n5] = c.nodes as [TestNode, TestNode, TestNode, TestNode, TestNode]
    const [n6, n7] = added as [TestNode, TestNode]
    const { so, path } = await writeOrder([n1, n2, n3, n6, n7], 3, 'replace')
    const load = loop(envs)
    await new Promise(resolve => setTimeout(resolve, 300))
    const t0 = performance.now()
    expect(await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })).toMatchObject({ accepted: true })
    await Promise.all([c.start(6, ['--join', path]), c.start(7, ['--join', path])])
    await waitReshared([n1, n2, n3, n6, n7], [n4, n5], 2)
    const ms = performance.now() - t0
    const committedAt = Math.max(...[n1, n2, n3, n6, n7].map(x => Date.parse(String(x.logs.find(l => l.msg === 'reshare committed')?.time ?? ''))))
    const startedAt = Math.min(...[n1].map(x => Date.parse(String(x.logs.find(l => l.msg === 'lifecycle order accepted')?.time ?? ''))))
    await new Promise(resolve => setTimeout(resolve, 500))
    if (process.env.KEYMESH_RESHARE_TIMELINE === '1') {
      for (const x of [n1, n4, n6]) {
        const steps = ['lifecycle order accepted', 'node ready', 'join: membership learned', 'joining the cluster by reshare order', 'reshare round1 ready', 'reshare generations adopted', 'reshare view fixed', 'reshare dealer set agreed', 'reshare finished', 'reshare committed', 'reloading under the new membership']
        console.log(`node ${x.index}: ` + x.logs.filter(l => steps.includes(l.msg)).map(l => `${l.msg} +${Date.parse(l.time) - startedAt}`).join(' | '))
      }
    }
    const r = await load.stop()
    console.log(`reshare 3-of-5 → 3-of-5, two replaced: ceremony (order accepted → last commit) ${committedAt - startedAt} ms; push → all reloaded and removed stopped ${ms.toFixed(0)} ms; client rewraps ${r.ok} ok, ${r.failures.length} failed${r.failures.length > 0 ? ` (${String(r.failures[0])})` : ''}; membership revision ${client.membershipRevision}`)
    expect(r.failures).toEqual([])
    expect(r.ok).toBeGreaterThan(0)
    expect(n4.exit).toBe(0)
    expect(n5.exit).toBe(0)
    expect(n4.logs.some(l => /REMOVED/.test(l.msg))).toBe(true)
    // Old envelopes unwrap via the new members only (a fresh client that learns the membership).
    const peerKey = (await loadClientIdentity(c.clientIdentityPath)).peerKey
    const rk = generateRecipientKeyPair()
    const fresh = await KeymeshClient.connect(c.clusterPath, { privateKey: peerKey, peerId: peerIdFromPrivateKey(peerKey), recipientSecretKey: rk.secretKey, recipientPublicKey: rk.publicKey }, { cacheDir: false, membership: true })
    try {
      expect(fresh.membershipRevision).toBe(2)
      expect(fresh.cluster.nodes.map(x => x.peerId)).toEqual([n1, n2, n3, n6, n7].map(x => x.peerId))
      for (const x of envs) {
        const u = await fresh.rewrap(x.e)
        expect(toHex(u.dataKey)).toBe(toHex(x.key))
        expect(u.keySet.threshold).toBe(3)
        expect(keySetId(u.keySet)).not.toBe(keySetId(k1))
        expect(wrapKey(u.keySet).equals(wrapKey(k1))).toBe(true)
      }
      expect(JSON.stringify(await fresh.jwks())).toBe(jwksBefore)
    } finally { await fresh.close() }
    // The removed nodes hold no share any more and refuse to start (exit 3).
    expect(await sharesOf(n4)).toBeUndefined()
    await expect(c.start(4)).rejects.toThrow(/exited \(3\)/)
    expect(n4.stderr).toMatch(/removed from the cluster by reshare order/)
    // A removed node's identity can no longer take part: the members admit it only to confirm the
    // last reshare's result (reshare.result, cluster.get); everything else is refused.
    const x4 = await c.client(await loadNodeIdentity(dataPaths(n4.dataDir).identity))
    const session = `s1-${so.order.nonce.slice(0, 16)}`
    expect((await x4.rpc(1, 'reshare.result', { session }, { ttlMs: 3_000 })).committed).toBe(true)
    await expect(x4.rpc(1, 'reshare.round2', { session }, { ttlMs: 3_000 })).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(x4.rpc(2, 'partial', { epoch: 1, envelope: encodeEnvelope((envs[0] as { e: Envelope }).e), recipient: new Uint8Array(32).fill(1) }, { ttlMs: 3_000 })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    await expect(x4.rpc(3, 'dkg.round1', { session: 'e2-a0' }, { ttlMs: 3_000 })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    // Nor may it push orders or policies, or ask for a share repair (transition peers: reshare.*,
    // cluster.get, keyset.get and status only).
    await expect(x4.rpc(1, 'dkg.order', { order: encodeSignedOrder(so) }, { ttlMs: 3_000 })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    await expect(x4.rpc(2, 'policy.push', { policy: '{}' }, { ttlMs: 3_000 })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    await expect(x4.rpc(3, 'repair.open', { repair: 'ab'.repeat(16), epochs: [1], keySetIds: ['a'.repeat(64)], helpers: [1, 2, 3] }, { ttlMs: 3_000 })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    // A joined node holds its share under its NEW index and restarts as a member (no --join).
    await c.stop(6)
    expect(await sharesOf(n6)).toMatchObject({ index: 4 })
    await c.start(6)
    expect(n6.logs.filter(l => l.msg === 'node ready').at(-1)).toMatchObject({ index: 4, membershipRevision: 2, joining: false })
  }, 150_000)

  it('refuses an under-signed reshare order (push and --join) and changes nothing', async () => {
    const [extra] = await c.addNodes(1) as [TestNode]
    const live = [1, 2, 3, 6, 7].map(i => c.nodes[i - 1] as TestNode)
    let so = newOrder(cluster, 'reshare', 1, { members: [...live, extra].map((x, j) => member(x, j + 1)), newThreshold: 3 })
    so = signOrder(so, cluster, admins[0] as AdminKey)
    const path = join(c.dir, 'undersigned.order.json')
    await writeFile(path, encodeSignedOrder(so))
    const before = keySetId(decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet))
    expect(await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })).toMatchObject({ accepted: false, code: 'VERIFICATION_FAILED' })
    await expect(c.start(extra.index, ['--join', path])).rejects.toThrow(/exited \(2\)/)
    expect(extra.stderr).toMatch(/--join order/)
    expect(keySetId(decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet))).toBe(before)
    expect((await c.rpc(2, 'cluster.get', { have: 0 })).revision).toBe(2)
  }, 60_000)

  it('3-of-5 → 4-of-7 (two more joining nodes) under client load', async () => {
    const live = [1, 2, 3, 6, 7].map(i => c.nodes[i - 1] as TestNode)
    const added = await c.addNodes(2)
    const all = [...live, ...added]
    const { so, path } = await writeOrder(all, 4, 'grow')
    const load = loop(envs)
    const t0 = performance.now()
    expect(await c.rpc(2, 'lifecycle.order', { order: encodeSignedOrder(so) })).toMatchObject({ accepted: true })
    await Promise.all(added.map(async x => { await c.start(x.index, ['--join', path]) }))
    await waitReshared(all, [], 3)
    const ms = performance.now() - t0
    const committedAt = Math.max(...all.map(x => Date.parse(String(x.logs.filter(l => l.msg === 'reshare committed').at(-1)?.time ?? ''))))
    const startedAt = Date.parse(String((c.nodes[1] as TestNode).logs.filter(l => l.msg === 'lifecycle order accepted').at(-1)?.time ?? ''))
    await new Promise(resolve => setTimeout(resolve, 300))
    const r = await load.stop()
    console.log(`reshare 3-of-5 → 4-of-7: ceremony (order accepted → last commit) ${committedAt - startedAt} ms; push → all reloaded ${ms.toFixed(0)} ms; client rewraps ${r.ok} ok, ${r.failures.length} failed${r.failures.length > 0 ? ` (${String(r.failures[0])})` : ''}; revision ${client.membershipRevision}`)
    expect(r.failures).toEqual([])
    for (const x of envs) {
      const u = await client.rewrap(x.e)
      expect(toHex(u.dataKey)).toBe(toHex(x.key))
    }
    expect(client.membershipRevision).toBe(3)
    const u = await client.rewrap((envs[0] as { e: Envelope }).e)
    expect([u.keySet.threshold, u.keySet.n]).toEqual([4, 7])
    expect(JSON.stringify(await client.jwks())).toBe(jwksBefore)
  }, 150_000)

  it('a node SIGKILLed mid-reshare: the old group keeps serving; after its restart the reshare completes', async () => {
    const all = [1, 2, 3, 6, 7, 9, 10].map(i => c.nodes[i - 1] as TestNode)
    expect(all.map(x => x.exit)).toEqual(all.map(() => undefined))
    const { so } = await writeOrder(all, 3, 'shrink-k')
    const n2 = c.nodes[1] as TestNode
    expect(await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })).toMatchObject({ accepted: true })
    const until = Date.now() + 10_000
    for (;;) {
      const s = await c.status(2).catch(() => undefined)
      if ((s?.dkg.state === 'running' && /^reshare .*(gathering|view)/.test(s.dkg.detail ?? '')) || Date.now() > until) break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const detail = (await c.status(2).catch(() => undefined))?.dkg.detail
    await c.kill(2)
    // The old group (4-of-7) still serves while node 2 is down and nothing committed.
    for (const x of envs) expect(toHex((await client.rewrap(x.e)).dataKey)).toBe(toHex(x.key))
    await new Promise(resolve => setTimeout(resolve, 1_000))
    await c.start(2)
    await waitReshared(all, [], 4)
    console.log(`reshare 4-of-7 → 3-of-7 with node 2 killed at "${detail ?? '?'}": completed after its restart`)
    if (detail !== undefined && /reshare/.test(detail)) expect(n2.logs.some(l => l.msg === 'reshare resumed')).toBe(true)
    for (const x of envs) {
      const u = await client.rewrap(x.e)
      expect(toHex(u.dataKey)).toBe(toHex(x.key))
    }
    const u = await client.rewrap((envs[0] as { e: Envelope }).e)
    expect([u.keySet.threshold, u.keySet.n]).toEqual([3, 7])
  }, 150_000)

  it('CLI: cluster reshare --remove (push and wait) and cluster show', async () => {
    const run = async (...args: string[]): Promise<string> => {
      const program = new Command().exitOverride()
      registerLifecycleCommands(program)
      let out = ''
      const write = process.stdout.write.bind(process.stdout)
      process.stdout.write = ((x: string | Uint8Array): boolean => { out += typeof x === 'string' ? x : Buffer.from(x).toString(); return true }) as typeof process.stdout.write
      try { await program.parseAsync(['node', 'keymesh', ...args]) } finally { process.stdout.write = write }
      return out
    }
    const n10 = c.nodes[9] as TestNode
    // Node 10 is down during its own removal (it never sees the order).
    await c.stop(10)
    const before = JSON.parse(await run('cluster', 'show', '--cluster', c.clusterPath, '--identity', operatorPath, '--json')) as { revision: number, threshold: number, n: number }
    expect(before).toMatchObject({ revision: 4, threshold: 3, n: 7 })
    const t0 = performance.now()
    const res = JSON.parse(await run('cluster', 'reshare', '--cluster', c.clusterPath, '--admin-key', adminPaths[0] as string, '--admin-key', adminPaths[1] as string,
      '--identity', operatorPath, '--remove', n10.peerId, '--json')) as { revision: number, threshold: number, n: number }
    console.log(`CLI cluster reshare --remove (3-of-7 → 3-of-6): ${(performance.now() - t0).toFixed(0)} ms`)
    expect(res).toMatchObject({ revision: 5, threshold: 3, n: 6 })
    // Started again, it learns from the members that it was removed: deletes its shares, stops;
    // the next start refuses (exit 3).
    await c.start(10)
    const until = Date.now() + 20_000
    while (n10.exit === undefined && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 100))
    expect(n10.exit).toBe(0)
    expect(n10.logs.some(l => /REMOVED FROM THE CLUSTER by a reshare order while it was down/.test(l.msg))).toBe(true)
    expect(await sharesOf(n10)).toBeUndefined()
    await expect(c.start(10)).rejects.toThrow(/exited \(3\)/)
    const after = JSON.parse(await run('cluster', 'show', '--cluster', c.clusterPath, '--identity', operatorPath, '--json')) as { revision: number, n: number, nodes: Array<{ peerId: string }> }
    expect(after).toMatchObject({ revision: 5, n: 6 })
    expect(after.nodes.some(x => x.peerId === n10.peerId)).toBe(false)
    for (const x of envs) expect(toHex((await client.rewrap(x.e)).dataKey)).toBe(toHex(x.key))
  }, 120_000)
})
