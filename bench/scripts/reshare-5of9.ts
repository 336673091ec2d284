/**
 * Reshare wall time at 5-of-9 with 11 node processes (`npm run bench:reshare`; a few minutes):
 * 5-of-9 → 5-of-9 with nodes 8 and 9 replaced by two joining nodes. Prints the ceremony time
 * (first "lifecycle order accepted" → last "reshare committed" log line) and the total (order push
 * → every member reloaded under membership revision 2 and both removed nodes stopped).
 * With `--member-down`: node 7 (it stays a member) is stopped before the order; the others commit
 * without it (commit quorum 5 of 9), then it is started again and the time until it has caught up
 * by share repair and serves under revision 2 is printed too.
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
  const memberDown = process.argv.includes('--member-down')
  const down = c.nodes[6] as TestNode
  if (memberDown) await c.stop(7)
  const waiting = memberDown ? members.filter(x => x !== down) : members
  const t0 = performance.now()
  const receipt = await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })
  if (!receipt.accepted) throw new Error(`order refused: ${receipt.detail}`)
  await Promise.all(added.map(async x => { await tc.start(x.index, ['--join', path]) }))
  const removed = [c.nodes[7], c.nodes[8]] as TestNode[]
  const until = Date.now() + 240_000
  while (!(waiting.every(x => x.logs.some(l => l.msg === 'node ready' && l.membershipRevision === 2)) && removed.every(x => x.exit !== undefined))) {
    if (waiting.some(x => x.logs.some(l => l.msg === 'reshare failed'))) throw new Error('reshare failed')
    if (Date.now() > until) throw new Error('timeout')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const total = performance.now() - t0
  const accepted = Date.parse(String(c.nodes[0]?.logs.find(l => l.msg === 'lifecycle order accepted')?.time))
  const committed = Math.max(...waiting.map(x => Date.parse(String(x.logs.find(l => l.msg === 'reshare committed')?.time))))
  const joinerReady = Math.max(...added.map(x => Date.parse(String(x.logs.find(l => l.msg === 'node ready')?.time))))
  console.log(`reshare 5-of-9 → 5-of-9, two replaced${memberDown ? ', node 7 (staying) down' : ''}: ceremony (order accepted → last commit) ${committed - accepted} ms (joiners ready at +${joinerReady - accepted} ms); push → all reloaded and removed stopped ${total.toFixed(0)} ms`)
  if (memberDown) {
    const t1 = performance.now()
    await tc.start(7)
    const deadline = Date.now() + 120_000
    while (!down.logs.some(l => l.msg === 'node ready' && l.membershipRevision === 2)) {
      if (Date.now() > deadline) throw new Error('node 7 did not catch up within 120 s')
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const repaired = down.logs.find(l => l.msg === 'caught up: shares repaired and committed; reloading under the new membership')
    console.log(`node 7 restarted: caught up by share repair (from members ${JSON.stringify(repaired?.repairedFrom ?? null)}) and serving under revision 2 ${(performance.now() - t1).toFixed(0)} ms after its start (process start included)`)
  }
} finally {
  await c?.cleanup()
}
