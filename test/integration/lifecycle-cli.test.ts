/**
 * The lifecycle CLI (client/lifecycle-cli.ts, run in-process through commander) against real node
 * processes: a two-admin order written with --out, co-signed with `order-sign`, pushed with
 * `order-push`; then a direct `rotate` with both admin keys. Prints wall times.
 *
 * Size: KEYMESH_LIFECYCLE_N / KEYMESH_LIFECYCLE_K (default 4 / 3 to keep CI short; the figures
 * in docs/LIFECYCLE.md were measured with 5/3 and 9/5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command } from 'commander'
import { startTestCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { parseSignedOrder } from '../../protocol/order.ts'
import { generateAdminKey, generateIdentity, writeAdminKeyFile, writeIdentityFile } from '../../client/identity.ts'
import { registerLifecycleCommands } from '../../client/lifecycle-cli.ts'
import { KeymeshClient } from '../../client/client.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { toHex } from '../../protocol/bytes.ts'
import { loadNodeIdentity } from '../../node/identity.ts'
import { dataPaths } from '../../node/config.ts'

const N = Number(process.env.KEYMESH_LIFECYCLE_N ?? 4)
const K = Number(process.env.KEYMESH_LIFECYCLE_K ?? 3)
let c: TestCluster
let adminPaths: string[]
let identityPath: string
const wrapped: Array<{ e: Envelope, key: string }> = []

/** Wraps a fresh data key with the real client library (current epoch, fetched from the nodes). */
async function clientWrap (release: string): Promise<Envelope> {
  const cl = await KeymeshClient.connect(c.clusterPath, identityPath, { cacheDir: false })
  try {
    const key = KeymeshClient.newDataKey()
    const { envelope } = await cl.wrap({ purpose: 'release-key', app: 'shop', env: 'prod', release }, key)
    wrapped.push({ e: envelope, key: toHex(key) })
    return envelope
  } finally { await cl.close() }
}

/** Unwraps with the real client library (rewrap to its own recipient key). */
async function clientUnwrap (e: Envelope): Promise<string> {
  const cl = await KeymeshClient.connect(c.clusterPath, identityPath, { cacheDir: false })
  try { return toHex((await cl.rewrap(e)).dataKey) } finally { await cl.close() }
}

beforeAll(async () => {
  c = await startTestCluster({ n: N, threshold: K, start: false })
  adminPaths = [join(c.dir, 'alice.admin.json'), join(c.dir, 'bob.admin.json')]
  const keys = adminPaths.map(() => generateAdminKey())
  await Promise.all(adminPaths.map(async (p, k) => { await writeAdminKeyFile(p, keys[k]!) }))
  identityPath = join(c.dir, 'operator.identity.json')
  const id = await generateIdentity()
  await writeIdentityFile(identityPath, id)
  const base = parseClusterFile(await readFile(c.clusterPath, 'utf8'))
  await writeFile(c.clusterPath, serializeClusterFile({
    ...base,
    admins: keys.map((k, j) => ({ name: ['alice', 'bob'][j]!, publicKey: k.publicKey })),
    adminThreshold: 2,
    clients: [...base.clients, { name: 'operator', peerId: id.peerId.toString() }]
  }))
  await Promise.all(c.nodes.map(async x => { await c.start(x.index) }))
  const t0 = performance.now()
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 120_000)
  console.log(`initial DKG ${K}-of-${N}: ${(performance.now() - t0).toFixed(0)} ms (after all nodes ready)`)
  expect(st.every(s => s?.dkg.state === 'done')).toBe(true)
}, 180_000)

afterAll(async () => { await c?.cleanup() })

async function run (...args: string[]): Promise<string> {
  const program = new Command().exitOverride()
  registerLifecycleCommands(program)
  let out = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((s: string | Uint8Array): boolean => { out += typeof s === 'string' ? s : Buffer.from(s).toString(); return true }) as typeof process.stdout.write
  try { await program.parseAsync(['node', 'keymesh', ...args]) } finally { process.stdout.write = write }
  return out
}

describe(`lifecycle CLI (${K}-of-${N})`, () => {
  it('two admins co-sign an order file; order-push rotates to epoch 2', async () => {
    expect((await clientWrap('v1')).label.epoch).toBe(1)
    const orderPath = join(c.dir, 'rotate-2.order.json')
    await run('cluster', 'rotate', '--cluster', c.clusterPath, '--admin-key', adminPaths[0]!, '--identity', identityPath, '--out', orderPath, '--json')
    expect(parseSignedOrder(await readFile(orderPath, 'utf8')).signatures.map(s => s.admin)).toEqual(['alice'])
    // One signature is not enough: pushing it is refused by every node, nothing changes.
    await expect(run('cluster', 'order-push', '--cluster', c.clusterPath, '--order', orderPath, '--identity', identityPath, '--json'))
      .rejects.toMatchObject({ code: 'VERIFICATION_FAILED' })
    await run('cluster', 'order-sign', '--cluster', c.clusterPath, '--order', orderPath, '--admin-key', adminPaths[1]!, '--json')
    const res = JSON.parse(await run('cluster', 'order-push', '--cluster', c.clusterPath, '--order', orderPath, '--identity', identityPath, '--json')) as { epoch: number, ms: number, keySetId: string }
    console.log(`rotate ${K}-of-${N} via order-push (push → all nodes committed): ${res.ms} ms`)
    expect(res.epoch).toBe(2)
    expect((await c.status(1)).epoch).toBe(2)
    // The client now wraps under epoch 2 and still unwraps epoch 1.
    expect((await clientWrap('v2')).label.epoch).toBe(2)
    for (const w of wrapped) expect(await clientUnwrap(w.e)).toBe(w.key)
    // Pushing the same file again is a replay.
    await expect(run('cluster', 'order-push', '--cluster', c.clusterPath, '--order', orderPath, '--identity', identityPath, '--json'))
      .rejects.toMatchObject({ code: 'CONFLICT' })
  }, 180_000)

  it('rotate with both admin keys in one command (epoch 3, attempt 1, retiring epoch 1)', async () => {
    const res = JSON.parse(await run('cluster', 'rotate', '--cluster', c.clusterPath, '--admin-key', adminPaths[0]!, '--admin-key', adminPaths[1]!,
      '--identity', identityPath, '--min-decryption-epoch', '2', '--attempt', '1', '--json')) as { epoch: number, ms: number, keySetId: string }
    console.log(`rotate ${K}-of-${N} via rotate (push → all nodes committed): ${res.ms} ms`)
    expect(res.epoch).toBe(3)
    const st = await c.waitFor(s => s.every(x => x?.epoch === 3), 10_000)
    expect(new Set(st.map(s => s?.keySetId)).size).toBe(1)
    // After a restart, the committing session (e3-a1) still answers dkg.result to a lagging node;
    // other sessions of the committed epoch do not.
    await c.stop(2)
    await c.start(2)
    const asNode1 = await c.client(await loadNodeIdentity(dataPaths(c.nodes[0]!.dataDir).identity))
    expect((await asNode1.rpc(2, 'dkg.result', { session: 'e3-a1' })).keySetId).toBe(res.keySetId)
    expect((await asNode1.rpc(2, 'dkg.result', { session: 'e2-a0' })).keySetId).toBe((await asNode1.rpc(3, 'dkg.result', { session: 'e2-a0' })).keySetId)
    await expect(asNode1.rpc(2, 'dkg.result', { session: 'e3-a0' })).rejects.toMatchObject({ code: 'NOT_FOUND' })
    // Through the client: epoch 1 is retired (refused by every node), epoch 2 still unwraps, new wraps use epoch 3.
    const [w1, w2] = wrapped
    await expect(clientUnwrap(w1!.e)).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    expect(await clientUnwrap(w2!.e)).toBe(w2!.key)
    const e3 = await clientWrap('v3')
    expect(e3.label.epoch).toBe(3)
    expect(await clientUnwrap(e3)).toBe(wrapped[2]!.key)
  }, 180_000)
})
