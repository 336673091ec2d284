import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ed25519 } from '@noble/curves/ed25519.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Libp2p } from 'libp2p'
import { errorCode } from '../../protocol/errors.ts'
import { toB64u } from '../../protocol/bytes.ts'
import { validateClusterFile } from '../../protocol/cluster.ts'
import { encodeSignedPolicy } from '../../protocol/policy.ts'
import { verifyLog } from '../../protocol/audit.ts'
import { Governance } from '../../node/governance.ts'
import { createLogger } from '../../node/log.ts'
import { auditedHandlers } from '../../node/handlers/audited.ts'
import { authorize } from '../../node/handlers/authz.ts'
import type { NodeContext } from '../../node/context.ts'
import { enroll, newPolicy, signPolicy } from '../../client/policy.ts'

const sk = new Uint8Array(32).fill(3)

/** The node store's sealed policy floor, per data dir (node-store.test.ts tests the real one). */
const floors = new Map<string, number>()
function floorOf (dir: string): { get: () => Promise<number>, raise: (v: number) => Promise<void> } {
  return { get: async () => floors.get(dir) ?? 0, raise: async v => { floors.set(dir, Math.max(v, floors.get(dir) ?? 0)) } }
}
const admin = { secretKey: sk, publicKey: ed25519.getPublicKey(sk) }

async function setup (): Promise<{ dir: string, g: Governance, ctx: NodeContext, cluster: ReturnType<typeof validateClusterFile>, key: Awaited<ReturnType<typeof generateKeyPair>>, client: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'km-gov-'))
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const client = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const cluster = validateClusterFile({
    format: 'keymesh.cluster', version: 1, clusterId: 'ab'.repeat(16), threshold: 2,
    nodes: [{ index: 1, peerId, addresses: ['/ip4/127.0.0.1/tcp/1'] }, { index: 2, peerId: other, addresses: ['/ip4/127.0.0.1/tcp/2'] }],
    admins: [{ name: 'alice', publicKey: toB64u(admin.publicKey) }], adminThreshold: 1, clients: [{ name: 'boot', peerId: client }], createdAt: '2026-01-01T00:00:00Z'
  })
  const log = createLogger({ level: 'error', write: () => {} })
  const g = await Governance.open({ dataDir: dir, cluster, privateKey: key, peerId, log, syncMs: 60_000, headMs: 60_000, floor: floorOf(dir) })
  const ctx = { cluster, log, peers: { call: async () => { throw new Error('offline') } }, selfIndex: 1, peerId } as unknown as NodeContext
  const host = { addEventListener: () => {}, getConnections: () => [] } as unknown as Libp2p
  g.attach(ctx, host)
  return { dir, g, ctx, cluster, key, client }
}

describe('node governance', () => {
  it('accepts only newer signed policies, persists them, refuses rollback and equivocation', async () => {
    const { dir, g, cluster, key, client } = await setup()
    expect(g.allowPeer(client)).toBe(true) // bootstrap rule
    const v1 = signPolicy(newPolicy(cluster), cluster, admin)
    await expect(g.accept(encodeSignedPolicy({ ...v1, signatures: [] }), 'test')).rejects.toThrow(/0 valid admin signature/)
    expect(await g.accept(encodeSignedPolicy(v1), 'test')).toEqual({ accepted: true, policyVersion: 1 })
    expect(g.allowPeer(client)).toBe(false) // the cluster file's client list no longer counts
    expect(await g.accept(encodeSignedPolicy(v1), 'test')).toEqual({ accepted: false, policyVersion: 1 })
    const v2 = signPolicy(enroll(v1, { name: 'boot', peerId: client, roles: ['auditor'], scopes: [] }), cluster, admin)
    const other2 = signPolicy({ policy: { ...v1.policy, policyVersion: 2, rules: { ...v1.policy.rules, allowBuilderDeployer: true } }, signatures: [] }, cluster, admin)
    expect(await g.accept(encodeSignedPolicy(v2), 'test')).toEqual({ accepted: true, policyVersion: 2 })
    expect(errorCode(await g.accept(encodeSignedPolicy(v1), 'test').catch(e => e))).toBe('CONFLICT')
    expect(errorCode(await g.accept(encodeSignedPolicy(other2), 'test').catch(e => e))).toBe('CONFLICT')
    expect(g.allowPeer(client)).toBe(true)
    await g.close()
    // Persisted: a restart keeps v2; a damaged stored policy stops the node.
    const log = createLogger({ level: 'error', write: () => {} })
    const again = await Governance.open({ dataDir: dir, cluster, privateKey: key, peerId: peerIdFromPrivateKey(key).toString(), log, floor: floorOf(dir) })
    expect(again.policyVersion).toBe(2)
    await again.close()
    const text = await readFile(join(dir, 'policy.json'), 'utf8')
    await writeFile(join(dir, 'policy.json'), text.replace('"auditor"', '"admin"'))
    await expect(Governance.open({ dataDir: dir, cluster, privateKey: key, peerId: peerIdFromPrivateKey(key).toString(), log, floor: floorOf(dir) })).rejects.toThrow(/refusing to start/)
    const lines = (await readFile(join(dir, 'audit.log'), 'utf8')).split('\n').filter(l => l !== '')
    expect(verifyLog(cluster.clusterId, peerIdFromPrivateKey(key).toString(), lines).issues).toEqual([])
    expect(lines.filter(l => l.includes('policy.accepted'))).toHaveLength(2)
    await rm(dir, { recursive: true })
  })

  it('a deleted or rolled-back policy file never reopens access (sealed policy floor)', async () => {
    const { dir, g, cluster, key, client } = await setup()
    const v1 = signPolicy(newPolicy(cluster), cluster, admin)
    const v2 = signPolicy(enroll(v1, { name: 'boot', peerId: client, roles: ['auditor'], scopes: [] }), cluster, admin)
    await g.accept(encodeSignedPolicy(v1), 'test')
    await g.accept(encodeSignedPolicy(v2), 'test')
    expect(g.allowPeer(client)).toBe(true)
    await g.close()
    const log = createLogger({ level: 'error', write: () => {} })
    const peerId = peerIdFromPrivateKey(key).toString()
    // Rolled back on disk to v1 (validly signed, but older than what was enforced): refuse to start.
    await writeFile(join(dir, 'policy.json'), encodeSignedPolicy(v1))
    await expect(Governance.open({ dataDir: dir, cluster, privateKey: key, peerId, log, floor: floorOf(dir) })).rejects.toThrow(/rolled back/)
    // Deleted: lockdown — even the cluster file's bootstrap client is refused — until v2 comes back.
    await rm(join(dir, 'policy.json'))
    const locked = await Governance.open({ dataDir: dir, cluster, privateKey: key, peerId, log, floor: floorOf(dir) })
    expect(locked.allowPeer(client)).toBe(false)
    expect(locked.decide({ peerId: client, kind: 'client' }, 'status').reason).toMatch(/lockdown/)
    expect(errorCode(await locked.accept(encodeSignedPolicy(v1), 'test').catch(e => e))).toBe('CONFLICT')
    expect(await locked.accept(encodeSignedPolicy(v2), 'test')).toEqual({ accepted: true, policyVersion: 2 })
    expect(locked.allowPeer(client)).toBe(true)
    await locked.close()
    await rm(dir, { recursive: true })
  })

  it('fails closed: when the audit append fails the request is refused and the handler never runs', async () => {
    const { dir, g, ctx, client } = await setup()
    let ran = 0
    const table = auditedHandlers({ status: async () => { ran++; return { version: '1', index: 1, peerId: 'x', clusterId: 'ab'.repeat(16), epoch: null, keySetId: null, uptimeMs: 0, dkg: { state: 'idle' } } } })
    const caller = { peerId: client, kind: 'client' as const, name: 'boot' }
    await table.status!(ctx, {}, caller, new AbortController().signal)
    expect(ran).toBe(1)
    g.audit.failWrites = true
    expect(errorCode(await table.status!(ctx, {}, caller, new AbortController().signal).catch(e => e))).toBe('INTERNAL')
    expect(ran).toBe(1)
    const label = { clusterId: 'ab'.repeat(16), epoch: 1, purpose: 'release-key', app: 'web', env: 'prod', release: 'r1' }
    expect(errorCode(await authorize(ctx, caller, { op: 'partial', label, recipient: new Uint8Array(32), envelopeIds: [new Uint8Array(32)] }).catch(e => e))).toBe('INTERNAL')
    g.audit.failWrites = false
    await authorize(ctx, caller, { op: 'partial', label, recipient: new Uint8Array(32), envelopeIds: [new Uint8Array(32)] }) // bootstrap: allowed
    expect(errorCode(await authorize(ctx, { peerId: ctx.peerId, kind: 'node', index: 1 }, { op: 'partial', label }).catch(e => e))).toBe('NOT_AUTHORIZED')
    await g.close()
    await rm(dir, { recursive: true })
  })
})
