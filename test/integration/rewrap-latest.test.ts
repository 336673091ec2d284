/**
 * `keymesh rewrap --to-latest` (client/migrate.ts via the real CLI) against real node processes
 * (3-of-4): envelopes wrapped at epoch 1 (binary "KMEV" and armored, in a directory tree), a
 * rotation to epoch 2, then --to-latest moves the epoch-1 envelopes in batches; the moved envelopes
 * unwrap to the same data keys with labels unchanged except the epoch; epoch-2 inputs are left
 * alone; a tampered input fails with its name (exit 4) without failing the others; a release
 * directory is refused with the re-build hint; nothing is overwritten without --force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { startTestCluster, runCli } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { armorEnvelope, decodeEnvelope, dearmorEnvelope, encodeEnvelope } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import { toHex } from '../../protocol/bytes.ts'
import { generateAdminKey, generateIdentity, writeIdentityFile } from '../../client/identity.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import { KeymeshClient } from '../../client/client.ts'

const N = 4
const K = 3
const COUNT = 120 // epoch-1 envelopes (plus 1 tampered, 3 at epoch 2)
let c: TestCluster
let work: string
let idPath: string
const admins = [generateAdminKey(), generateAdminKey()]
/** path (relative to in/) → hex data key */
const keys = new Map<string, string>()
const labels = new Map<string, Envelope['label']>()

async function connect (): Promise<KeymeshClient> {
  return await KeymeshClient.connect(c.clusterPath, idPath, { cacheDir: join(c.dir, 'cache') })
}

async function walk (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await walk(p))
    else out.push(p)
  }
  return out
}

async function readEnv (path: string): Promise<{ e: Envelope, armored: boolean }> {
  const b = new Uint8Array(await readFile(path))
  return Buffer.from(b.subarray(0, 4)).toString() === 'KMEV' ? { e: decodeEnvelope(b), armored: false } : { e: dearmorEnvelope(Buffer.from(b).toString('utf8')), armored: true }
}

beforeAll(async () => {
  c = await startTestCluster({ n: N, threshold: K, start: false })
  const base = parseClusterFile(await readFile(c.clusterPath, 'utf8'))
  idPath = join(c.dir, 'operator.identity.json')
  const id = await generateIdentity()
  await writeIdentityFile(idPath, id)
  await writeFile(c.clusterPath, serializeClusterFile({
    ...base,
    admins: admins.map((a, j) => ({ name: `admin${j + 1}`, publicKey: a.publicKey })),
    adminThreshold: 2,
    clients: [...base.clients, { name: 'operator', peerId: id.peerId.toString() }]
  }))
  await Promise.all(c.nodes.map(async x => { await c.start(x.index) }))
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 60_000)
  expect(st.every(s => s?.dkg.state === 'done')).toBe(true)
  work = join(c.dir, 'work')
  await mkdir(join(work, 'in', 'sub'), { recursive: true })
  // Epoch 1: binary envelopes in in/, armored ones in in/sub/.
  const cl = await connect()
  try {
    for (let j = 0; j < COUNT; j++) {
      const key = KeymeshClient.newDataKey()
      const { envelope } = await cl.wrap({ purpose: 'deployment-key', app: 'shop', env: j % 2 === 0 ? 'prod' : 'staging', release: `r${j}` }, key)
      const armored = j % 4 === 0
      const rel = armored ? join('sub', `e${j}.kme`) : `e${j}.kmev`
      await writeFile(join(work, 'in', rel), armored ? armorEnvelope(envelope) : encodeEnvelope(envelope))
      keys.set(rel, toHex(key))
      labels.set(rel, envelope.label)
      key.fill(0)
    }
    // A tampered epoch-1 envelope: its ciphertext no longer opens (its validity proof still holds,
    // so only the nodes' partials reveal it: the batch is split until it is isolated).
    const { envelope } = await cl.wrap({ purpose: 'deployment-key', app: 'shop', env: 'prod', release: 'tampered' }, KeymeshClient.newDataKey())
    const bad = encodeEnvelope(envelope)
    bad[bad.length - 1]! ^= 1
    await writeFile(join(work, 'in', 'tampered.kmev'), bad)
    await writeFile(join(work, 'in', 'notes.txt'), 'not an envelope\n')
  } finally { await cl.close() }
  // A release directory (only its layout matters: it is refused before reading).
  await mkdir(join(work, 'in', 'release-1'))
  await writeFile(join(work, 'in', 'release-1', 'manifest.jws'), 'x')
  await writeFile(join(work, 'in', 'release-1', 'envelope.kme'), 'x')
  // Rotate to epoch 2 (two admins sign).
  let so = newOrder(c.cluster, 'rotate', 2)
  so = signOrder(signOrder(so, { ...c.cluster, admins: admins.map((a, j) => ({ name: `admin${j + 1}`, publicKey: a.publicKey })), adminThreshold: 2 }, admins[0]!),
    { ...c.cluster, admins: admins.map((a, j) => ({ name: `admin${j + 1}`, publicKey: a.publicKey })), adminThreshold: 2 }, admins[1]!)
  expect(await c.rpc(1, 'lifecycle.order', { order: encodeSignedOrder(so) })).toMatchObject({ accepted: true })
  await c.waitFor(s => s.every(x => x?.epoch === 2 && x.dkg.state === 'done'), 60_000)
  // Epoch 2 envelopes: already latest.
  const c2 = await connect()
  try {
    for (let j = 0; j < 3; j++) {
      const { envelope } = await c2.wrap({ purpose: 'deployment-key', app: 'shop', env: 'prod', release: `new${j}` }, KeymeshClient.newDataKey())
      expect(envelope.label.epoch).toBe(2)
      await writeFile(join(work, 'in', `latest${j}.kmev`), encodeEnvelope(envelope))
    }
  } finally { await c2.close() }
}, 150_000)

afterAll(async () => { await c?.cleanup() })

describe(`rewrap --to-latest (${K}-of-${N})`, () => {
  it('moves every epoch-1 envelope to epoch 2 in batches; same data keys; tampered input named; exit 4', async () => {
    const inDir = join(work, 'in')
    const outDir = join(work, 'out')
    const r = await runCli(['rewrap', '--to-latest', '--cluster', c.clusterPath, '--identity', idPath, '--in', inDir, '--out', outDir,
      '--batch', '50', '--cache-dir', join(c.dir, 'cache'), '--json'], { timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(4)
    const res = JSON.parse(r.stdout) as { epoch: number, moved: Array<{ path: string, out: string, fromEpoch: number }>, alreadyLatest: string[], failed: Array<{ path: string, code: string, reason: string }>, ms: number }
    console.log(`rewrap --to-latest: ${res.moved.length} envelopes in ${res.ms} ms (${(res.moved.length / (res.ms / 1000)).toFixed(0)} envelopes/s incl. key-set fetch, local checks, one bisected bad batch)`)
    expect(res.epoch).toBe(2)
    expect(res.moved.length).toBe(COUNT)
    expect(res.alreadyLatest.map(p => relative(inDir, p)).sort()).toEqual(['latest0.kmev', 'latest1.kmev', 'latest2.kmev'])
    expect(res.failed.map(f => relative(inDir, f.path)).sort()).toEqual(['release-1', 'tampered.kmev'])
    const tampered = res.failed.find(f => f.path.endsWith('tampered.kmev'))!
    expect(tampered.code).toBe('VERIFICATION_FAILED')
    expect(res.failed.find(f => f.path.endsWith('release-1'))!.reason).toMatch(/keymesh build/)
    // Outputs: only moved envelopes, same relative paths, same format, label unchanged except epoch.
    const outs = (await walk(outDir)).map(p => relative(outDir, p)).sort()
    expect(outs).toEqual([...keys.keys()].sort())
    const moved: Envelope[] = []
    for (const rel of outs) {
      const { e, armored } = await readEnv(join(outDir, rel))
      expect(armored).toBe(rel.endsWith('.kme'))
      expect(e.label).toEqual({ ...labels.get(rel), epoch: 2 })
      moved.push(e)
    }
    // The moved envelopes unwrap (through the nodes, epoch 2) to the original data keys.
    const cl = await connect()
    try {
      const got = await cl.rewrapBatch(moved)
      expect(got.dataKeys.map(toHex)).toEqual(outs.map(rel => keys.get(rel)))
    } finally { await cl.close() }
  }, 60_000)

  it('running again: outputs are not overwritten without --force; moved envelopes are already latest', async () => {
    const inDir = join(work, 'in')
    const again = await runCli(['rewrap', '--to-latest', '--cluster', c.clusterPath, '--identity', idPath, '--in', join(inDir, 'e1.kmev'), '--out', join(work, 'out'), '--json'])
    expect(again.code).toBe(2)
    expect(again.stdout).toMatch(/already exists; refusing to overwrite/)
    const latest = await runCli(['rewrap', '--to-latest', '--cluster', c.clusterPath, '--identity', idPath, '--in', join(work, 'out'), '--out', join(work, 'out2')])
    expect(latest.code, latest.stderr).toBe(0)
    expect(latest.stdout).toMatch(new RegExp(`^moved 0, already latest ${COUNT}, failed 0`))
    expect(latest.stderr).toMatch(new RegExp(`rewrap --to-latest: newest epoch 2; 0 to move, ${COUNT} already latest, 0 refused`))
    const inPlace = await runCli(['rewrap', '--to-latest', '--cluster', c.clusterPath, '--identity', idPath, '--in', join(inDir, 'e1.kmev')])
    expect(inPlace.code).toBe(2)
    expect(inPlace.stderr).toMatch(/--force/)
    // In place with --force: the input file becomes the epoch-2 envelope with the same key.
    const forced = await runCli(['rewrap', '--to-latest', '--cluster', c.clusterPath, '--identity', idPath, '--in', join(inDir, 'e1.kmev'), '--force', '--quiet'])
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stdout).toMatch(/^moved 1, already latest 0, failed 0/)
    expect(forced.stderr).toBe('')
    const { e } = await readEnv(join(inDir, 'e1.kmev'))
    expect(e.label.epoch).toBe(2)
    const cl = await connect()
    try { expect(toHex((await cl.rewrap(e)).dataKey)).toBe(keys.get('e1.kmev')) } finally { await cl.close() }
  }, 60_000)

  it('refuses envelopes of another cluster', async () => {
    const foreign = join(work, 'foreign.kmev')
    const raw = new Uint8Array(await readFile(join(work, 'in', 'e3.kmev')))
    const e = decodeEnvelope(raw)
    // Re-encode with another cluster id in the label (the proof no longer matters: refused before).
    await writeFile(foreign, encodeEnvelope({ ...e, label: { ...e.label, clusterId: toHex(new Uint8Array(randomBytes(16))) } }))
    const r = await runCli(['rewrap', '--to-latest', '--cluster', c.clusterPath, '--identity', idPath, '--in', foreign, '--out', join(work, 'out3')])
    expect(r.code).toBe(2)
    expect(r.stdout).toMatch(/failed 1/)
    expect(r.stdout).toMatch(/foreign\.kmev: envelope of another cluster/)
  }, 30_000)
})
