import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { ed25519 } from '@noble/curves/ed25519.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { toB64u } from '../../protocol/bytes.ts'
import { validateClusterFile } from '../../protocol/cluster.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import {
  countApprovals, decide, encodeSignedPolicy, matchPattern, parseApproval, parseSignedPolicy, policySigningBytes, validatePolicy, verifySignedPolicy
} from '../../protocol/policy.ts'
import type { Policy, PolicyOp, SignedPolicy } from '../../protocol/policy.ts'
import { approveRelease, enroll, newPolicy, parseScope, revoke, signPolicy } from '../../client/policy.ts'
import type { Manifest } from '../../protocol/manifest.ts'

const pid = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const sk1 = new Uint8Array(32).fill(1)
const sk2 = new Uint8Array(32).fill(2)
const skX = new Uint8Array(32).fill(9)

async function fixture (): Promise<{ cluster: ClusterFile, ids: Record<string, string>, keys: Record<string, Uint8Array>, sp: SignedPolicy }> {
  const nodes = [await pid(), await pid()]
  const boot = await pid()
  const cluster = validateClusterFile({
    format: 'keymesh.cluster', version: 1, clusterId: 'ab'.repeat(16), threshold: 2,
    nodes: nodes.map((p, i) => ({ index: i + 1, peerId: p, addresses: [`/ip4/127.0.0.1/tcp/${7001 + i}`] })),
    admins: [{ name: 'alice', publicKey: toB64u(ed25519.getPublicKey(sk1)) }, { name: 'bob', publicKey: toB64u(ed25519.getPublicKey(sk2)) }],
    adminThreshold: 1, clients: [{ name: 'boot', peerId: boot }], createdAt: '2026-01-01T00:00:00Z'
  })
  const ids: Record<string, string> = { node: nodes[0] as string, boot, builder: await pid(), deployer: await pid(), deployer2: await pid(), auditor: await pid(), admin: await pid(), stranger: await pid() }
  const keys: Record<string, Uint8Array> = { deployer: new Uint8Array(32).fill(5), deployer2: new Uint8Array(32).fill(6), stray: new Uint8Array(32).fill(7) }
  let sp = newPolicy(cluster)
  sp = enroll(sp, { name: 'ci', peerId: ids.builder as string, roles: ['builder'], scopes: [parseScope('app=web,env=*')] })
  sp = enroll(sp, { name: 'prod-web', peerId: ids.deployer as string, recipientKey: keys.deployer, roles: ['deployer'], scopes: [parseScope('app=web,env=prod')] })
  sp = enroll(sp, { name: 'prod-api', peerId: ids.deployer2 as string, recipientKey: keys.deployer2, roles: ['deployer'], scopes: [parseScope('app=api,env=prod')] })
  sp = enroll(sp, { name: 'aud', peerId: ids.auditor as string, roles: ['auditor'], scopes: [] })
  sp = enroll(sp, { name: 'adm', peerId: ids.admin as string, roles: ['admin'], scopes: [] })
  return { cluster, ids, keys, sp }
}

describe('policy documents', () => {
  it('signs, verifies, refuses forged, under-signed, unknown-admin, foreign and node-enrolling documents', async () => {
    const { cluster, ids, sp } = await fixture()
    const signed = signPolicy(sp, cluster, { secretKey: sk1, publicKey: ed25519.getPublicKey(sk1) })
    expect(verifySignedPolicy(parseSignedPolicy(encodeSignedPolicy(signed)), cluster).policyVersion).toBe(1)
    expect(() => verifySignedPolicy(sp, cluster)).toThrow(/0 valid admin signature/)
    const forged = { ...signed, signatures: [{ admin: 'alice', sig: toB64u(ed25519.sign(policySigningBytes(sp.policy), skX)) }] }
    expect(() => verifySignedPolicy(forged, cluster)).toThrow(/does not verify/)
    const altered = { ...signed, policy: { ...signed.policy, policyVersion: 2 } }
    expect(() => verifySignedPolicy(altered, cluster)).toThrow(/does not verify/)
    expect(() => verifySignedPolicy({ ...signed, signatures: [{ admin: 'mallory', sig: signed.signatures[0]?.sig as string }] }, cluster)).toThrow(/not an admin/)
    expect(() => verifySignedPolicy({ ...signed, signatures: [signed.signatures[0]!, signed.signatures[0]!] }, cluster)).toThrow(/duplicate/)
    const two = { ...cluster, adminThreshold: 2 }
    expect(() => verifySignedPolicy(signed, two)).toThrow(/requires 2/)
    const both = signPolicy(signed, two, { secretKey: sk2, publicKey: ed25519.getPublicKey(sk2) })
    expect(verifySignedPolicy(both, two).policyVersion).toBe(1)
    const nodeEnrolled = signPolicy(enroll(sp, { name: 'n', peerId: ids.node as string, roles: ['auditor'], scopes: [] }), cluster, { secretKey: sk1, publicKey: ed25519.getPublicKey(sk1) })
    expect(() => verifySignedPolicy(nodeEnrolled, cluster)).toThrow(/cluster node/)
    expect(() => verifySignedPolicy(signed, { ...cluster, clusterId: 'cd'.repeat(16) })).toThrow(/another|not/)
  })

  it('validates structure: unknown fields, duplicate keys, deployers need keys, separation of duties', async () => {
    const { sp, ids } = await fixture()
    const p = sp.policy
    expect(() => validatePolicy({ ...p, extra: 1 })).toThrow(/unknown field/)
    expect(() => validatePolicy({ ...p, identities: [...p.identities, { ...p.identities[1], name: 'dup' }] })).toThrow(/duplicate PeerId/)
    expect(() => validatePolicy({ ...p, identities: [{ name: 'x', peerId: ids.stranger, roles: ['deployer'], scopes: [] }] })).toThrow(/recipient key/)
    expect(() => validatePolicy({ ...p, identities: [{ name: 'x', peerId: ids.stranger, recipientKey: toB64u(new Uint8Array(32).fill(3)), roles: ['builder', 'deployer'], scopes: [] }] })).toThrow(/separation of duties/)
    expect(validatePolicy({ ...p, rules: { ...p.rules, allowBuilderDeployer: true }, identities: [{ name: 'x', peerId: ids.stranger, recipientKey: toB64u(new Uint8Array(32).fill(3)), roles: ['builder', 'deployer'], scopes: [] }] }).identities).toHaveLength(1)
    expect(() => validatePolicy({ ...p, policyVersion: 0 })).toThrow(/policyVersion/)
    expect(() => validatePolicy({ ...p, identities: [{ name: 'x', peerId: ids.stranger, roles: ['root'], scopes: [] }] })).toThrow(/roles/)
  })

  it('edits drop signatures and bump the version; revoke marks the identity', async () => {
    const { cluster, sp } = await fixture()
    const s1 = signPolicy(sp, cluster, { secretKey: sk1, publicKey: ed25519.getPublicKey(sk1) })
    const r = revoke(s1, 'prod-web')
    expect(r.signatures).toHaveLength(0)
    expect(r.policy.policyVersion).toBe(2)
    expect(r.policy.identities.find(i => i.name === 'prod-web')?.revoked).toBe(true)
  })

  it('glob patterns', () => {
    expect(matchPattern('*', '')).toBe(true)
    expect(matchPattern('web-*', 'web-eu')).toBe(true)
    expect(matchPattern('web-*', 'api-eu')).toBe(false)
    expect(matchPattern('prod', 'production')).toBe(false)
    expect(matchPattern('p?od', 'prod')).toBe(true)
    expect(matchPattern('a.b', 'axb')).toBe(false)
  })
})

describe('decide: the role × operation × scope matrix', () => {
  it('every cell', async () => {
    const { cluster, ids, keys, sp } = await fixture()
    const p: Policy = sp.policy
    const c = (name: string): { peerId: string, kind: 'client' } => ({ peerId: ids[name] as string, kind: 'client' })
    const d = (who: string, op: PolicyOp, ctx = {}): boolean => decide(p, cluster, who === 'node' ? { peerId: ids.node as string, kind: 'node' } : c(who), op, ctx).allow
    const web = { app: 'web', env: 'prod', release: 'r1', signedRelease: true }
    const api = { app: 'api', env: 'prod', release: 'r1', signedRelease: true }
    const rD = toB64u(keys.deployer as Uint8Array)
    const rD2 = toB64u(keys.deployer2 as Uint8Array)
    const rX = toB64u(keys.stray as Uint8Array)
    const table: Array<[string, PolicyOp, object, boolean]> = [
      // builder
      ['builder', 'connect', {}, true], ['builder', 'keyset.get', {}, true], ['builder', 'frost.commit', {}, true],
      ['builder', 'frost.sign', { app: 'web', env: 'prod', manifestBuilder: ids.builder }, true],
      ['builder', 'frost.sign', { app: 'web', env: 'prod', manifestBuilder: ids.deployer }, false],
      ['builder', 'frost.sign', { app: 'api', env: 'prod', manifestBuilder: ids.builder }, false],
      ['builder', 'wrap', { app: 'web', env: 'dev' }, true], ['builder', 'wrap', { app: 'api', env: 'dev' }, false],
      ['builder', 'partial', { ...web, recipient: rD }, true], // bundle for an enrolled deployer in scope
      ['builder', 'partial', { ...web, recipient: rD2 }, false], // deployer of another app
      ['builder', 'partial', { ...web, recipient: rX }, false], // key not enrolled
      ['builder', 'partial', { ...api, recipient: rD2 }, false], // builder out of scope
      ['builder', 'audit.read', {}, false], ['builder', 'policy.push', {}, false], ['builder', 'dkg', {}, false],
      // deployer
      ['deployer', 'partial', { ...web, recipient: rD }, true],
      ['deployer', 'partial', { ...web, recipient: rD, signedRelease: false }, false],
      ['deployer', 'partial', { ...web, recipient: rD2 }, false],
      ['deployer', 'partial', { ...api, recipient: rD }, false],
      ['deployer', 'partial', { ...web, env: 'staging', recipient: rD }, false],
      ['deployer', 'frost.commit', {}, false], ['deployer', 'frost.sign', { app: 'web', env: 'prod', manifestBuilder: ids.deployer }, false],
      ['deployer', 'audit.read', {}, false], ['deployer', 'policy.push', {}, false], ['deployer', 'status', {}, true],
      // auditor
      ['auditor', 'audit.read', {}, true], ['auditor', 'partial', { ...web, recipient: rD }, false], ['auditor', 'frost.commit', {}, false], ['auditor', 'policy.push', {}, false],
      // admin
      ['admin', 'policy.push', {}, true], ['admin', 'audit.read', {}, true], ['admin', 'partial', { ...web, recipient: rD }, false], ['admin', 'frost.commit', {}, false],
      // strangers and the bootstrap client (not in the policy)
      ['stranger', 'connect', {}, false], ['boot', 'connect', {}, false], ['boot', 'partial', { ...web, recipient: rD }, false],
      // nodes
      ['node', 'dkg', {}, true], ['node', 'policy.get', {}, true], ['node', 'partial', { ...web, recipient: rD }, false], ['node', 'audit.read', {}, false]
    ]
    for (const [who, op, ctx, want] of table) expect({ who, op, ctx, got: d(who, op, ctx) }).toEqual({ who, op, ctx, got: want })
    // Revoked: refused everything.
    const rp = revoke(sp, 'prod-web').policy
    expect(decide(rp, cluster, c('deployer'), 'connect').allow).toBe(false)
    expect(decide(rp, cluster, c('deployer'), 'partial', { ...web, recipient: rD }).reason).toMatch(/revoked/)
    expect(decide(rp, cluster, c('builder'), 'partial', { ...web, recipient: rD }).reason).toMatch(/revoked/)
    // Bootstrap: cluster-file clients only.
    expect(decide(undefined, cluster, c('boot'), 'partial', {}).allow).toBe(true)
    expect(decide(undefined, cluster, c('stranger'), 'connect').allow).toBe(false)
    // Approvals.
    const ap = { ...p, rules: { ...p.rules, approvals: { 'prod*': 2 } } }
    expect(decide(ap, cluster, c('deployer'), 'partial', { ...web, recipient: rD, approvals: 1 }).allow).toBe(false)
    expect(decide(ap, cluster, c('deployer'), 'partial', { ...web, recipient: rD, approvals: 2 }).allow).toBe(true)
  })

  it('approvals: only matching, valid, distinct admins count', async () => {
    const { cluster } = await fixture()
    const m = { cluster: cluster.clusterId, app: 'web', env: 'prod', release: 'r1', envelope: 'e'.repeat(64) } as unknown as Manifest
    const a1 = approveRelease(cluster, { secretKey: sk1, publicKey: ed25519.getPublicKey(sk1) }, m)
    const a2 = approveRelease(cluster, { secretKey: sk2, publicKey: ed25519.getPublicKey(sk2) }, m)
    const want = { app: 'web', env: 'prod', release: 'r1', envelope: 'e'.repeat(64) }
    expect(countApprovals([a1, a1, a2], cluster, want).count).toBe(2)
    expect(countApprovals([a1], cluster, { ...want, release: 'r2' }).count).toBe(0)
    const bad = parseApproval({ ...a2, sig: a1.sig })
    expect(countApprovals([bad], cluster, want)).toEqual({ count: 0, rejected: ['bob: bad signature'] })
  })
})
