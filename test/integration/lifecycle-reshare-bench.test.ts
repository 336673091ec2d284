/**
 * Reshare wall time at 5-of-9 (opt-in: KEYMESH_RESHARE_BENCH=1; 11 node processes): 5-of-9 →
 * 5-of-9 with two nodes replaced by joining nodes. Prints the ceremony and total wall times.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTestCluster } from '../helpers/cluster.ts'
import type { TestCluster, TestNode } from '../helpers/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import { generateAdminKey } from '../../client/identity.ts'

const enabled = process.env.KEYMESH_RESHARE_BENCH === '1'
let c: TestCluster | undefined
afterAll(async () => { await c?.cleanup() })

describe.skipIf(!enabled)('reshare bench 5-of-9', () => {
  it('5-of-9 → 5-of-9 with nodes 8, 9 replaced', async () => {
    c = await startTestCluster({ n: 9, threshold: 5, start: false, readyTimeoutMs: 60_000 })
    const admins = [generateAdminKey(), generateAdminKey()]
    const cluster = { ...parseClusterFile(await readFile(c.clusterPath, 'utf8')), admins: admins.map((a, k) => ({ name: `admin${k + 1}`, publicKey: a.publicKey })), adminThreshold: 2 }
    await writeFile(c.clusterPath, serializeClusterFile(cluster))
    const tc = c
    await Promise.all(tc.nodes.map(async x => { await tc.start(x.index) }))
    const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 180_000)
    expect(st.every(s => s?.dkg.state === 'done')).toBe(true)
    const added = await c.addNodes(2)
    const members = [...c.nodes.slice(0, 7), ...added] as TestNode[]
    let so = newOrder(cluster, 'reshare', 1, { members: members.map((x, j) => ({ index: j + 1, peerId: x.peerId, addresses: [`/ip4/127.0.0.1/tcp/${x.port}`] })), newThreshold: 5 })
    for (const a of admins) so = signOrder(so, cluster, a)
    const path = join(c.dir, 'bench.order.json')
    await writeFile(path, encodeSignedOrder(so))
    const t0 = performance.now()
    expect(await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })).toMatchObject({ accepted: true })
    await Promise.all(added.map(async x => { await tc.start(x.index, ['--join', path]) }))
    const removed = [c.nodes[7], c.nodes[8]] as TestNode[]
    const until = Date.now() + 240_000
    while (!(members.every(x => x.logs.some(l => l.msg === 'node ready' && l.membershipRevision === 2)) && removed.every(x => x.exit !== undefined))) {
      if (members.some(x => x.logs.some(l => l.msg === 'reshare failed'))) throw new Error('reshare failed')
      if (Date.now() > until) throw new Error('timeout')
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const total = performance.now() - t0
    const accepted = Date.parse(String(c.nodes[0]?.logs.find(l => l.msg === 'lifecycle order accepted')?.time))
    const committed = Math.max(...members.map(x => Date.parse(String(x.logs.find(l => l.msg === 'reshare committed')?.time))))
    const joinerReady = Math.max(...added.map(x => Date.parse(String(x.logs.find(l => l.msg === 'node ready')?.time))))
    console.log(`reshare 5-of-9 → 5-of-9, two replaced: ceremony (order accepted → last commit) ${committed - accepted} ms (joiners ready at +${joinerReady - accepted} ms); push → all reloaded and removed stopped ${total.toFixed(0)} ms`)
  }, 400_000)
})
