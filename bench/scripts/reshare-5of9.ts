/**
 * Reshare wall time at 5-of-9 with 11 node processes (`npm run bench:reshare`; a few minutes):
 * 5-of-9 → 5-of-9 with nodes 8 and 9 replaced by two joining nodes. Prints the ceremony time
 * (first "lifecycle order accepted" → last "reshare committed" log line) and the total (order push
 * → every member reloaded under membership revision 2 and both removed nodes stopped).
 * Not part of `npm test` and not a suite of bench/run.ts: it needs joining node processes, which
 * the test harness (test/helpers/cluster.ts) provides.
 */
import '../../protocol/polyfill.ts'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTestCluster } from '../../test/helpers/cluster.ts'
import type { TestCluster, TestNode } from '../../test/helpers/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import { generateAdminKey } from '../../client/identity.ts'

let c: TestCluster | undefined
try {
  c = await startTestCluster({ n: 9, threshold: 5, start: false, readyTimeoutMs: 60_000 })
  const admins = [generateAdminKey(), generateAdminKey()]
  const cluster = { ...parseClusterFile(await readFile(c.clusterPath, 'utf8')), admins: admins.map((a, k) => ({ name: `admin${k + 1}`, publicKey: a.publicKey })), adminThreshold: 2 }
  await writeFile(c.clusterPath, serializeClusterFile(cluster))
  const tc = c
  await Promise.all(tc.nodes.map(async x => { await tc.start(x.index) }))
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 180_000)
  if (!st.every(s => s?.dkg.state === 'done')) throw new Error('initial DKG failed')
  const added = await c.addNodes(2)
  const members = [...c.nodes.slice(0, 7), ...added] as TestNode[]
  let so = newOrder(cluster, 'reshare', 1, { members: members.map((x, j) => ({ index: j + 1, peerId: x.peerId, addresses: [`/ip4/127.0.0.1/tcp/${x.port}`] })), newThreshold: 5 })
  for (const a of admins) so = signOrder(so, cluster, a)
  const path = join(c.dir, 'bench.order.json')
  await writeFile(path, encodeSignedOrder(so))
  const t0 = performance.now()
  const receipt = await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })
  if (!receipt.accepted) throw new Error(`order refused: ${receipt.detail}`)
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
} finally {
  await c?.cleanup()
}
