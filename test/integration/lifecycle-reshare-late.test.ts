/**
 * Reshare while a STAYING member is down, real node processes (docs/PROTOCOL.md §11.8, §11.9):
 *   (a) 3-of-5 → 3-of-6 (a joining node) with node 5 paused (SIGSTOP) right after it accepted the
 *       order: nodes 1–4 and 6 (commit quorum 4) commit without it while a KeymeshClient rewraps in
 *       a loop (0 failed operations); resumed, node 5's ceremony sees the committed result and
 *       catches up by share repair: its share of the new generation matches the committed
 *       verifying share;
 *   (b) 3-of-6 → 3-of-5 removing node 2 (`keymesh cluster reshare --remove`, which reports node 4
 *       as late instead of waiting for it) while node 4 is STOPPED for the whole reshare (it never
 *       sees the order): nodes 1, 3, 5, 6 commit, node 2 stops; node 4, started afterwards, learns
 *       the newer membership from k′ members, repairs its shares at its NEW index (3) and serves;
 *       old envelopes unwrap; the group keys never change; 0 failed client operations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import { runCli, startAdminCluster } from '../helpers/cluster.ts'
import { rewrapLoop } from '../helpers/client-cluster.ts'
import type { TestCluster, TestNode } from '../helpers/cluster.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { decodeKeySet, keySetId, wrapKey } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { toHex } from '../../protocol/bytes.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import type { OrderMember, SignedOrder } from '../../protocol/order.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import { generateAdminKey, generateIdentity, writeAdminKeyFile, writeIdentityFile } from '../../client/identity.ts'
import type { AdminKey } from '../../client/identity.ts'
import { KeymeshClient } from '../../client/client.ts'
import { loadClientIdentity } from '../../node/identity.ts'
import { configFromOptions, dataPaths } from '../../node/config.ts'
import { unlockStorageKey } from '../../node/storage-key.ts'
import { LevelNodeStore } from '../../node/store.ts'

let c: TestCluster
let cluster: ClusterFile
const admins: AdminKey[] = [0, 1].map(() => generateAdminKey())
let client: KeymeshClient
let operatorPath: string
let k1: KeySet
const envs: Array<{ e: Envelope, key: Uint8Array }> = []

beforeAll(async () => {
  const op = await generateIdentity()
  operatorPath = join(tmpdir(), `keymesh-late-operator-${process.pid}.identity.json`)
  await writeIdentityFile(operatorPath, op)
  ;({ c, cluster } = await startAdminCluster(admins.map(a => a.publicKey), { clients: [{ name: 'operator', peerId: op.peerId.toString() }] }))
  k1 = decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet)
  const peerKey = (await loadClientIdentity(c.clientIdentityPaths[1] as string)).peerKey
  const rk = generateRecipientKeyPair()
  client = await KeymeshClient.connect(c.clusterPath, { privateKey: peerKey, peerId: peerIdFromPrivateKey(peerKey), recipientSecretKey: rk.secretKey, recipientPublicKey: rk.publicKey }, { cacheDir: false })
  for (let r = 0; r < 3; r++) {
    const key = KeymeshClient.newDataKey()
    const { envelope } = await client.wrap({ purpose: 'release-key', app: 'shop', env: 'prod', release: `late${r}` }, key)
    envs.push({ e: envelope, key })
  }
}, 90_000)

afterAll(async () => { await client?.close(); await c?.cleanup(); await rm(operatorPath, { force: true }) })

const node = (i: number): TestNode => c.nodes[i - 1] as TestNode
function member (x: TestNode, index: number): OrderMember { return { index, peerId: x.peerId, addresses: [`/ip4/127.0.0.1/tcp/${x.port}`] } }

function order (members: TestNode[], k: number): SignedOrder {
  let so = newOrder(cluster, 'reshare', 1, { members: members.map((x, j) => member(x, j + 1)), newThreshold: k })
  for (const a of admins) so = signOrder(so, cluster, a)
  return so
}

async function push (members: TestNode[], so: SignedOrder): Promise<void> {
  for (const x of members) {
    const r = await c.rpc(x.index, 'lifecycle.order', { order: encodeSignedOrder(so) }, { ttlMs: 5_000 }).catch(() => undefined)
    void r
  }
}

/** Waits until `pred` holds over the nodes' logs. */
async function waitLogs (what: string, pred: () => boolean, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!pred()) {
    const failed = c.nodes.find(x => x.logs.some(l => l.msg === 'reshare failed'))
    if (failed !== undefined) throw new Error(`reshare failed on node ${failed.index}: ${JSON.stringify(failed.logs.find(l => l.msg === 'reshare failed'))}`)
    if (Date.now() > until) {
      for (const x of c.nodes) console.log(`--- node ${x.index}\n` + x.logs.filter(l => l.component === 'reshare' || l.component === 'catch-up' || l.level !== 'info').slice(-25).map(l => JSON.stringify(l)).join('\n'))
      throw new Error(`timed out waiting for ${what}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const ready = (x: TestNode, revision: number): boolean => x.logs.some(l => l.msg === 'node ready' && l.membershipRevision === revision)

const loop = (): ReturnType<typeof rewrapLoop> => rewrapLoop(client, envs)

/** Reads a STOPPED node's epoch-1 shares and current key set from its store. */
async function storeOf (x: TestNode): Promise<{ wrap?: KeyShare, sign?: KeyShare, keySet?: KeySet }> {
  const cfg = configFromOptions({ data: x.dataDir, insecureDevPassphrase: true }, false)
  const store = await LevelNodeStore.open(dataPaths(x.dataDir).db, await unlockStorageKey(cfg.storageKey, dataPaths(x.dataDir).storageParams))
  try {
    const wrap = await store.getShare(1, 'wrap')
    const sign = await store.getShare(1, 'sign')
    const keySet = await store.getKeySet(1)
    return { ...(wrap !== undefined ? { wrap } : {}), ...(sign !== undefined ? { sign } : {}), ...(keySet !== undefined ? { keySet } : {}) }
  } finally { await store.close() }
}

/** share·B equals the key set's verifying share at the share's index, for both keys. */
function matches (ks: KeySet, s: { wrap?: KeyShare, sign?: KeyShare }): boolean {
  const B = ed25519.Point.BASE
  const w = s.wrap as KeyShare
  const g = s.sign as KeyShare
  return B.multiply(w.scalar).equals(ks.wrap.verifyingShares[w.index - 1] as typeof B) && B.multiply(g.scalar).equals(ks.sign.verifyingShares[g.index - 1] as typeof B)
}

describe('lifecycle: reshare with a staying member down', () => {
  it('3-of-5 → 3-of-6 adding a node while node 5 is paused after accepting the order: the others commit, node 5 catches up by share repair', async () => {
    const before = await storeOfRunning(5)
    const [n6] = await c.addNodes(1) as [TestNode]
    const all = [...c.nodes.slice(0, 5), n6]
    const so = order(all, 3)
    const path = join(c.dir, 'add6.order.json')
    await writeFile(path, encodeSignedOrder(so))
    const work = loop()
    await push(c.nodes.slice(0, 5), so)
    await waitLogs('node 5 to accept the order', () => node(5).logs.some(l => l.msg === 'reshare round1 ready'))
    node(5).proc?.kill('SIGSTOP')
    const t0 = Date.now()
    try {
      await c.start(6, ['--join', path])
      await waitLogs('nodes 1–4 and 6 to commit', () => [1, 2, 3, 4, 6].every(i => node(i).logs.some(l => l.msg === 'reshare committed')))
    } finally { node(5).proc?.kill('SIGCONT') }
    const committedMs = Date.now() - t0
    expect(node(5).logs.some(l => l.msg === 'reshare committed')).toBe(false)
    await waitLogs('node 5 to catch up', () => node(5).logs.some(l => l.msg === 'reshare committed' && Array.isArray(l.repairedFrom)))
    const caughtUpMs = Date.now() - t0 - committedMs
    await waitLogs('every node to reload at revision 2', () => all.every(x => ready(x, 2)))
    const r = await work.stop()
    expect(r.failures.map(String)).toEqual([])
    expect(r.ok).toBeGreaterThan(0)
    // Every node serves the same 3-of-6 generation; node 5's repaired share matches it.
    const sets = await Promise.all(all.map(async x => decodeKeySet((await c.rpc(x.index, 'keyset.get', { epoch: 1 })).keySet)))
    expect(new Set(sets.map(keySetId)).size).toBe(1)
    const ks = sets[0] as KeySet
    expect([ks.threshold, ks.n]).toEqual([3, 6])
    expect(wrapKey(ks).equals(wrapKey(k1))).toBe(true)
    await c.stop(5)
    const after = await storeOf(node(5))
    expect(after.keySet !== undefined && keySetId(after.keySet)).toBe(keySetId(ks))
    expect(matches(ks, after)).toBe(true)
    expect(after.wrap?.scalar).not.toBe(before.wrap?.scalar)
    await c.start(5)
    await waitLogs('node 5 back', () => node(5).logs.filter(l => l.msg === 'node ready' && l.membershipRevision === 2).length >= 2)
    for (const x of envs) expect(toHex((await client.rewrap(x.e, { deadlineMs: 20_000 })).dataKey)).toBe(toHex(x.key))
    console.log(`[late-member] paused member: the others committed ${committedMs} ms after the pause; node 5 caught up ${caughtUpMs} ms after it resumed; ${r.ok} rewraps, 0 failed`)
  }, 240_000)

  it('3-of-6 → 3-of-5 removing node 2 while node 4 is down throughout: node 4 catches up at its new index on start', async () => {
    await c.stop(4)
    const before = await storeOf(node(4))
    const work = loop()
    // Through the CLI, as an operator would: it must report node 4 (new index 3) as late instead
    // of waiting for it until the timeout.
    const adminPaths = [join(c.dir, 'late-a1.admin.json'), join(c.dir, 'late-a2.admin.json')]
    await Promise.all(adminPaths.map(async (p, k) => { await writeAdminKeyFile(p, admins[k] as AdminKey) }))
    const t1 = Date.now()
    const cli = await runCli(['cluster', 'reshare', '--cluster', c.clusterPath, '--admin-key', adminPaths[0] as string, '--admin-key', adminPaths[1] as string,
      '--identity', operatorPath, '--remove', node(2).peerId, '--json'], { timeoutMs: 180_000 })
    expect(cli.code, cli.stderr).toBe(0)
    expect(JSON.parse(cli.stdout)).toMatchObject({ revision: 3, threshold: 3, n: 5, late: [3] })
    console.log(`[late-member] CLI cluster reshare --remove with a staying member down: ${Date.now() - t1} ms (returns once the others committed and node 4 stayed silent 15 s)`)
    await waitLogs('nodes 1, 3, 5, 6 to reload at revision 3 and node 2 to stop', () => [1, 3, 5, 6].every(i => ready(node(i), 3)) && node(2).exit !== undefined)
    const r = await work.stop()
    if (r.failures.length > 0) for (const x of [node(3), node(5)]) console.log(`--- node ${x.index}\n` + x.logs.filter(l => l.level !== 'info').slice(-8).map(l => JSON.stringify(l)).join('\n'))
    expect(r.failures.map(String)).toEqual([])
    const t0 = Date.now()
    await c.start(4)
    await waitLogs('node 4 to catch up and reload at revision 3', () => node(4).logs.some(l => l.msg === 'caught up: shares repaired and committed; reloading under the new membership') && ready(node(4), 3))
    const catchUpMs = Date.now() - t0
    const ks = decodeKeySet((await c.rpc(1, 'keyset.get', { epoch: 1 })).keySet)
    expect([ks.threshold, ks.n]).toEqual([3, 5])
    expect(wrapKey(ks).equals(wrapKey(k1))).toBe(true)
    // Old envelopes unwrap through the new membership (the client adopts it).
    for (const x of envs) expect(toHex((await client.rewrap(x.e, { deadlineMs: 20_000 })).dataKey)).toBe(toHex(x.key))
    await c.stop(4)
    const after = await storeOf(node(4))
    expect(after.wrap?.index).toBe(3)
    expect(before.wrap?.index).toBe(4)
    expect(after.keySet !== undefined && keySetId(after.keySet)).toBe(keySetId(ks))
    expect(matches(ks, after)).toBe(true)
    console.log(`[late-member] down throughout: node 4 caught up ${catchUpMs} ms after its start`)
  }, 240_000)
})

/** A running node's shares: stop it, read, start again. */
async function storeOfRunning (i: number): Promise<{ wrap?: KeyShare, sign?: KeyShare }> {
  await c.stop(i)
  const s = await storeOf(node(i))
  await c.start(i)
  await c.waitFor(st => st[i - 1]?.dkg !== undefined, 30_000)
  return s
}
