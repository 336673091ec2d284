/**
 * The client across a proactive share refresh, against real node processes (3-of-4):
 * `keymesh cluster refresh` (client/lifecycle-cli.ts, in-process through commander) with two
 * admin keys; afterwards a client whose cache holds the PRE-refresh generation still rewraps (it
 * learns the new generation from the answers and caches it: k vouchers), a bundle prepared before
 * the refresh still deploys, and building (FROST signing) works under the new generation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command } from 'commander'
import { startTestCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { decodeKeySet, keySetId } from '../../protocol/keyset.ts'
import { toHex } from '../../protocol/bytes.ts'
import { generateAdminKey, generateIdentity, writeAdminKeyFile, writeIdentityFile } from '../../client/identity.ts'
import type { ClientIdentity } from '../../client/identity.ts'
import { registerLifecycleCommands } from '../../client/lifecycle-cli.ts'
import { KeymeshClient } from '../../client/client.ts'
import { readCachedKeySet } from '../../client/keyset-fetch.ts'
import { build } from '../../client/build.ts'
import { deploy, prepareBundle } from '../../client/deploy.ts'
import { verifyRelease } from '../../client/verify.ts'
import type { Envelope } from '../../protocol/envelope.ts'

let c: TestCluster
let adminPaths: string[]
let opPath: string
let targetPath: string
let target: ClientIdentity
let cache: string

async function run (...args: string[]): Promise<{ out: string, err: string }> {
  const program = new Command().exitOverride()
  registerLifecycleCommands(program)
  let out = ''
  let err = ''
  const w1 = process.stdout.write.bind(process.stdout)
  const w2 = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((s: string | Uint8Array): boolean => { out += typeof s === 'string' ? s : Buffer.from(s).toString(); return true }) as typeof process.stdout.write
  process.stderr.write = ((s: string | Uint8Array): boolean => { err += typeof s === 'string' ? s : Buffer.from(s).toString(); return true }) as typeof process.stderr.write
  try { await program.parseAsync(['node', 'keymesh', ...args]) } finally { process.stdout.write = w1; process.stderr.write = w2 }
  return { out, err }
}

beforeAll(async () => {
  c = await startTestCluster({ n: 4, threshold: 3, start: false })
  adminPaths = [join(c.dir, 'alice.admin.json'), join(c.dir, 'bob.admin.json')]
  const keys = adminPaths.map(() => generateAdminKey())
  await Promise.all(adminPaths.map(async (p, k) => { await writeAdminKeyFile(p, keys[k]!) }))
  opPath = join(c.dir, 'operator.identity.json')
  targetPath = join(c.dir, 'target.identity.json')
  const op = await generateIdentity()
  target = await generateIdentity()
  await writeIdentityFile(opPath, op)
  await writeIdentityFile(targetPath, target)
  cache = join(c.dir, 'cache')
  const base = parseClusterFile(await readFile(c.clusterPath, 'utf8'))
  await writeFile(c.clusterPath, serializeClusterFile({
    ...base,
    admins: keys.map((k, j) => ({ name: ['alice', 'bob'][j]!, publicKey: k.publicKey })),
    adminThreshold: 2,
    clients: [...base.clients, { name: 'operator', peerId: op.peerId.toString() }, { name: 'target', peerId: target.peerId.toString() }]
  }))
  await Promise.all(c.nodes.map(async x => { await c.start(x.index) }))
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 90_000)
  expect(st.every(s => s?.dkg.state === 'done')).toBe(true)
}, 150_000)

afterAll(async () => { await c?.cleanup() })

describe('client across a share refresh (3-of-4)', () => {
  const envelopes: Array<{ e: Envelope, key: string }> = []
  let release: string
  let bundle: string
  let before: string

  it('before: wrap, build a release, prepare a bundle for the target; the cache holds generation 1', async () => {
    const cl = await KeymeshClient.connect(c.clusterPath, opPath, { cacheDir: cache })
    try {
      const ks = await cl.keySet()
      before = keySetId(ks)
      for (let j = 0; j < 3; j++) {
        const key = KeymeshClient.newDataKey()
        envelopes.push({ e: (await cl.wrap({ purpose: 'deployment-key', app: 'shop', env: 'prod', release: `r${j}` }, key)).envelope, key: toHex(key) })
      }
      const input = join(c.dir, 'app.bin')
      await writeFile(input, randomBytes(50_000))
      release = join(c.dir, 'rel-1')
      await build(cl, { app: 'shop', release: '1.0.0', env: 'prod', input, out: release })
      bundle = join(c.dir, 'rel-1.kmb')
      const p = await prepareBundle(cl, { release, target: target.recipientPublicKey, out: bundle })
      expect(p.bundle.keySetId).toBe(before)
    } finally { await cl.close() }
    expect(keySetId((await readCachedKeySet(cache, c.cluster, 1))!)).toBe(before)
  }, 60_000)

  it('`cluster refresh` with two admin keys: progress lines, every node on one new key set id, same epoch', async () => {
    // Client load during the refresh: unwraps and signatures keep succeeding across the switch.
    const loadClient = await KeymeshClient.connect(c.clusterPath, opPath, { cacheDir: join(c.dir, 'load-cache') })
    let stop = false
    let ok = 0
    const failures: unknown[] = []
    const load = (async () => {
      for (let j = 0; !stop; j++) {
        const w = envelopes[j % envelopes.length]!
        try {
          if (j % 5 === 4) await build(loadClient, { app: 'shop', release: `load-${j}`, env: 'prod', input: join(c.dir, 'app.bin'), out: join(c.dir, `load-${j}`) })
          else expect(toHex((await loadClient.rewrap(w.e)).dataKey)).toBe(w.key)
          ok++
        } catch (e) { failures.push(e) }
      }
    })()
    let r: { out: string, err: string }
    try {
      r = await run('cluster', 'refresh', '--cluster', c.clusterPath, '--admin-key', adminPaths[0]!, '--admin-key', adminPaths[1]!, '--identity', opPath, '--json', '--timeout', '120')
      // Keep the load on briefly after the switch.
      await new Promise(resolve => setTimeout(resolve, 500))
    } finally {
      stop = true
      await load
      await loadClient.close()
    }
    const res = JSON.parse(r.out) as { op: string, epoch: number, keySetIdBefore: string, keySetId: string, ms: number }
    console.log(`refresh 3-of-4 via \`cluster refresh\` (push → all nodes committed): ${res.ms} ms; ${ok} client operations under load, ${failures.length} failed`)
    expect(failures.map(f => (f as Error).message)).toEqual([])
    expect(ok).toBeGreaterThan(3)
    expect(res).toMatchObject({ op: 'refresh', epoch: 1, keySetIdBefore: before })
    expect(res.keySetId).not.toBe(before)
    const st = await Promise.all(c.nodes.map(async x => await c.status(x.index)))
    expect(new Set(st.map(s => s.keySetId))).toEqual(new Set([res.keySetId]))
    expect(st.every(s => s.epoch === 1)).toBe(true)
    const served = decodeKeySet((await c.rpc(2, 'keyset.get', {})).keySet)
    expect(keySetId(served)).toBe(res.keySetId)
    // The old generation is still served by id (bundles and caches made before the refresh).
    expect(keySetId(decodeKeySet((await c.rpc(3, 'keyset.get', { epoch: 1, keySetId: before })).keySet))).toBe(before)
    // Human output (without --json): an order for the next refresh written to a file for co-signing.
    const out = join(c.dir, 'refresh.order.json')
    const w = await run('cluster', 'refresh', '--cluster', c.clusterPath, '--admin-key', adminPaths[0]!, '--identity', opPath, '--out', out)
    expect(w.out).toMatch(/wrote order .* \(refresh of epoch 1\) .* 1\/2 signatures/)
    // Co-signed by bob and pushed with order-push: waits with progress lines, a second new generation.
    await run('cluster', 'order-sign', '--cluster', c.clusterPath, '--order', out, '--admin-key', adminPaths[1]!)
    const p = await run('cluster', 'order-push', '--cluster', c.clusterPath, '--order', out, '--identity', opPath)
    expect(p.err).toMatch(/refresh epoch 1: 4\/4 nodes have the new key set/)
    expect(p.out).toMatch(new RegExp(`refresh of epoch 1 committed on all 4 nodes in .* s\nkeySetId ${res.keySetId.slice(0, 16)}… → [0-9a-f]{64}`))
    // The same order again is a replay: refused, exit code 2 (CONFLICT).
    await expect(run('cluster', 'order-push', '--cluster', c.clusterPath, '--order', out, '--identity', opPath)).rejects.toMatchObject({ code: 'CONFLICT' })
  }, 150_000)

  it('after: a client with the pre-refresh generation cached rewraps; it adopts the new generation (k vouchers)', async () => {
    const cl = await KeymeshClient.connect(c.clusterPath, opPath, { cacheDir: cache })
    try {
      for (const w of envelopes) {
        const r = await cl.rewrap(w.e)
        expect(toHex(r.dataKey)).toBe(w.key)
        expect(keySetId(r.keySet)).not.toBe(before)
      }
      const batch = await cl.rewrapBatch(envelopes.map(w => w.e))
      expect(batch.dataKeys.map(toHex)).toEqual(envelopes.map(w => w.key))
    } finally { await cl.close() }
    expect(keySetId((await readCachedKeySet(cache, c.cluster, 1))!)).not.toBe(before)
  }, 60_000)

  it('after: the bundle made before the refresh deploys; a new build signs under the new generation', async () => {
    const tc = await KeymeshClient.connect(c.clusterPath, targetPath, { cacheDir: join(c.dir, 'target-cache') })
    try {
      const d = await deploy(tc, { release, bundle, out: join(c.dir, 'deployed.bin') })
      expect(d.keySource).toBe('bundle')
      expect(await readFile(join(c.dir, 'deployed.bin'))).toEqual(await readFile(join(c.dir, 'app.bin')))
    } finally { await tc.close() }
    const cl = await KeymeshClient.connect(c.clusterPath, opPath, { cacheDir: cache })
    try {
      const rel2 = join(c.dir, 'rel-2')
      const b = await build(cl, { app: 'shop', release: '1.0.1', env: 'prod', input: join(c.dir, 'app.bin'), out: rel2 })
      expect(b.signers.length).toBe(3)
      expect((await verifyRelease(rel2, [await cl.keySet(1)])).manifest.release).toBe('1.0.1')
    } finally { await cl.close() }
  }, 60_000)
})
