/**
 * Offline recovery kit (node/lifecycle/recovery-kit.ts) on real data directories (no processes):
 * export a node's shares of two epochs to 3 custodians (2 needed), custodians open their pieces,
 * restore into a fresh data directory, and the restored shares equal the originals and match the
 * key sets. Too few pieces, a wrong key set, a non-fresh target and a wrong passphrase are refused
 * and change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configFromOptions, dataPaths } from '../../node/config.ts'
import { initNode } from '../../node/service.ts'
import { unlockStorageKey } from '../../node/storage-key.ts'
import { LevelNodeStore } from '../../node/store.ts'
import { decodeOpenedPieces, exportRecoveryKit, openPieceText, readKeySetDir, restoreRecoveryKit } from '../../node/lifecycle/recovery-kit.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { dealKeySet } from '../helpers/dealer.ts'
import { Command } from 'commander'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadNodeIdentity, peerIdOf } from '../../node/identity.ts'
import { serializeClusterFile } from '../../protocol/cluster.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { registerRecoveryCommands } from '../../node/lifecycle/recovery-cli.ts'

async function run (...args: string[]): Promise<string> {
  const program = new Command().exitOverride()
  registerRecoveryCommands(program)
  let out = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((x: string | Uint8Array): boolean => { out += typeof x === 'string' ? x : Buffer.from(x).toString(); return true }) as typeof process.stdout.write
  try { await program.parseAsync(['node', 'keymesh', ...args]) } finally { process.stdout.write = write }
  return out
}

let dir: string
const custodians = ['alice', 'bob', 'carol'].map(name => ({ name, ...generateRecipientKeyPair() }))
const e1 = dealKeySet(2, 3, 'recovery-e1')
const e2 = dealKeySet(2, 3, 'recovery-e2')
// One dealt polynomial per epoch serves as both keys (the dealer helper returns wrap shares only).
const ks1: KeySet = { ...e1.ks, sign: e1.ks.wrap }
const ks2: KeySet = { ...e2.ks, clusterId: e1.ks.clusterId, epoch: 2, sign: e2.ks.wrap, wrap: e2.ks.wrap }
const NODE = 2

async function freshNode (name: string, passphrase?: string): Promise<ReturnType<typeof configFromOptions>> {
  let o: Parameters<typeof configFromOptions>[0] = { data: join(dir, name), insecureDevPassphrase: true }
  if (passphrase !== undefined) {
    const pf = join(dir, `${name}.pass`)
    await writeFile(pf, passphrase, { mode: 0o600 })
    o = { data: join(dir, name), passphraseFile: pf }
  }
  const cfg = configFromOptions(o, false)
  await initNode(cfg, { scryptLogN: 15 })
  return cfg
}

async function sharesOf (cfg: ReturnType<typeof configFromOptions>): Promise<string[]> {
  const store = await LevelNodeStore.open(dataPaths(cfg.dataDir).db, await unlockStorageKey(cfg.storageKey, dataPaths(cfg.dataDir).storageParams))
  try {
    const out: string[] = []
    for (const ep of [1, 2]) for (const k of ['wrap', 'sign'] as const) out.push(String((await store.getShare(ep, k))?.scalar))
    return out
  } finally { await store.close() }
}

let source: ReturnType<typeof configFromOptions>
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keymesh-recovery-'))
  source = await freshNode('source', 'correct horse battery staple')
  const store = await LevelNodeStore.open(dataPaths(source.dataDir).db, await unlockStorageKey(source.storageKey, dataPaths(source.dataDir).storageParams))
  try {
    await store.commitEpoch(1, ks1, e1.shares[NODE - 1]!, e1.shares[NODE - 1]!)
    await store.commitEpoch(2, ks2, e2.shares[NODE - 1]!, e2.shares[NODE - 1]!)
  } finally { await store.close() }
}, 60_000)

afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('recovery kit', () => {
  it('a wrong passphrase exports nothing', async () => {
    const pf = join(dir, 'wrong.pass')
    await writeFile(pf, 'an entirely different passphrase', { mode: 0o600 })
    await expect(exportRecoveryKit(source.dataDir, { kind: 'passphrase-file', path: pf }, custodians, 2, join(dir, 'kit-wrong'))).rejects.toMatchObject({ code: ErrorCode.VERIFICATION_FAILED })
  })

  it('export → custodians open → restore into a fresh node gives back the same shares', async () => {
    const t0 = performance.now()
    const kit = join(dir, 'kit')
    const sum = await exportRecoveryKit(source.dataDir, source.storageKey, custodians, 2, kit)
    expect(sum).toMatchObject({ nodeIndex: NODE, epochs: [1, 2], files: 12 })
    expect((await readdir(join(kit, 'alice'))).sort()).toEqual(['e1-sign.piece', 'e1-wrap.piece', 'e2-sign.piece', 'e2-wrap.piece'])
    // Custodians bob and carol open their pieces (alice is unavailable).
    const opened: Uint8Array[] = []
    for (const c of custodians.slice(1)) {
      for (const f of await readdir(join(kit, c.name))) opened.push(openPieceText(await readFile(join(kit, c.name, f), 'utf8'), c.secretKey))
    }
    // A piece cannot be opened by another custodian.
    expect(() => openPieceText(readFileSync(join(kit, 'alice', 'e1-wrap.piece'), 'utf8'), custodians[1]!.secretKey)).toThrow()
    const keySets = await readKeySetDir(join(kit, 'keysets'))
    expect(keySets.map(k => k.epoch)).toEqual([1, 2])

    const target = await freshNode('restored')
    // Too few pieces (only bob's): refused, nothing written.
    const bobOnly = decodeOpenedPieces(opened.slice(0, 4))
    await expect(restoreRecoveryKit(target.dataDir, target.storageKey, keySets, bobOnly)).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // The wrong key set (another deal for epoch 1): refused by the verifying-share check.
    const other = dealKeySet(2, 3, 'recovery-other')
    const wrongKs: KeySet = { ...other.ks, clusterId: ks1.clusterId, sign: other.ks.wrap }
    await expect(restoreRecoveryKit(target.dataDir, target.storageKey, [wrongKs], decodeOpenedPieces(opened))).rejects.toMatchObject({ code: ErrorCode.VERIFICATION_FAILED })
    const r = await restoreRecoveryKit(target.dataDir, target.storageKey, keySets, decodeOpenedPieces(opened))
    expect(r).toEqual({ nodeIndex: NODE, epochs: [1, 2] })
    expect(await sharesOf(target)).toEqual(await sharesOf(source))
    // Restoring again into the same (now non-fresh) directory is refused.
    await expect(restoreRecoveryKit(target.dataDir, target.storageKey, keySets, decodeOpenedPieces(opened))).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    console.log(`recovery export+open+restore (2 epochs, 2-of-3 custodians): ${(performance.now() - t0).toFixed(0)} ms`)
  }, 60_000)

  it('the same through the CLI (custodian-key, export, open, restore)', async () => {
    const names = ['dora', 'erin', 'fay']
    const pubs: string[] = []
    for (const n of names) pubs.push((JSON.parse(await run('recovery', 'custodian-key', '--out', join(dir, `${n}.key`), '--json')) as { publicKey: string }).publicKey)
    const kit = join(dir, 'kit-cli')
    const pass = join(dir, 'source.pass')
    const ex = JSON.parse(await run('recovery', 'export', '--data', source.dataDir, '--passphrase-file', pass, ...names.flatMap((n, j) => ['--custodian', `${n}=${pubs[j]!}`]), '--threshold', '2', '--out', kit, '--json')) as { files: number }
    expect(ex.files).toBe(12)
    const opened: string[] = []
    for (const n of ['dora', 'fay']) {
      for (const f of await readdir(join(kit, n))) {
        const out = join(dir, `${n}-${f}.opened`)
        await run('recovery', 'open', '--piece', join(kit, n, f), '--custodian-key', join(dir, `${n}.key`), '--out', out)
        opened.push(out)
      }
    }
    const target = await freshNode('restored-cli')
    // A cluster file in which the fresh directory's identity is node NODE (as after restoring
    // the node's identity.key), and one in which it is another node: the kit must be refused there.
    const targetPeer = peerIdOf(await loadNodeIdentity(dataPaths(target.dataDir).identity))
    const others = await Promise.all([0, 1].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const clusterAt = async (pos: number, name: string): Promise<string> => {
      const peers = [...others]
      peers.splice(pos - 1, 0, targetPeer)
      const cluster: ClusterFile = { format: 'keymesh.cluster', version: 1, clusterId: ks1.clusterId, threshold: ks1.threshold, nodes: peers.map((peerId, j) => ({ index: j + 1, peerId, addresses: [`/ip4/127.0.0.1/tcp/${7001 + j}`] })), admins: [], adminThreshold: 0, clients: [], createdAt: '2026-11-25T00:00:00Z' }
      const path = join(dir, name)
      await writeFile(path, serializeClusterFile(cluster))
      return path
    }
    const restoreArgs = ['--data', target.dataDir, '--insecure-dev-passphrase', '--keysets', join(kit, 'keysets'), ...opened.flatMap(f => ['--opened', f]), '--json']
    await expect(run('recovery', 'restore', '--cluster', await clusterAt(NODE + 1, 'cluster-other.json'), ...restoreArgs)).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    expect(await sharesOf(target)).toEqual(['undefined', 'undefined', 'undefined', 'undefined'])
    const r = JSON.parse(await run('recovery', 'restore', '--cluster', await clusterAt(NODE, 'cluster.json'), ...restoreArgs)) as { nodeIndex: number, epochs: number[] }
    expect(r).toEqual({ nodeIndex: NODE, epochs: [1, 2] })
    expect(await sharesOf(target)).toEqual(await sharesOf(source))
  }, 60_000)
})
