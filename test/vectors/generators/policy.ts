/**
 * Known-answer vectors for signed policies and approvals (docs/PROTOCOL.md
 * §9.1, §9.3): canonical bytes, signing bytes and Ed25519 signatures from fixed seeds, and
 * documents that must be rejected (with their error code).
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { toB64u, toHex, utf8 } from '../../../protocol/bytes.ts'
import { approvalSigningBytes, canonicalPolicy, policySigningBytes } from '../../../protocol/policy.ts'
import type { Policy } from '../../../protocol/policy.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const pid = async (b: number): Promise<string> => peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed(b))).toString()

/** Fixed cluster file and policy used by the cases. */
export async function fixtures (): Promise<{ cluster: unknown, policy: Policy, adminSeed: Uint8Array }> {
  const adminSeed = seed(0xa1)
  const cluster = {
    format: 'keymesh.cluster', version: 1, clusterId: '6b65796d6573682d746573742d303031', threshold: 2,
    nodes: [{ index: 1, peerId: await pid(1), addresses: ['/ip4/127.0.0.1/tcp/7001'] }, { index: 2, peerId: await pid(2), addresses: ['/ip4/127.0.0.1/tcp/7002'] }],
    admins: [{ name: 'alice', publicKey: toB64u(ed25519.getPublicKey(adminSeed)) }], adminThreshold: 1,
    clients: [], createdAt: '2026-11-25T00:00:00Z'
  }
  const policy: Policy = {
    format: 'keymesh.policy', version: 1, clusterId: cluster.clusterId, policyVersion: 7,
    identities: [
      { name: 'ci', peerId: await pid(3), roles: ['builder'], scopes: [{ app: 'web', env: '*' }] },
      { name: 'web-prod', peerId: await pid(4), recipientKey: toB64u(seed(0x44)), roles: ['deployer'], scopes: [{ app: 'web', env: 'prod' }] },
      { name: 'gone', peerId: await pid(5), recipientKey: toB64u(seed(0x55)), roles: ['deployer'], scopes: [{ app: 'web-*', env: 'stag?ng' }], revoked: true },
      { name: 'sec', peerId: await pid(6), roles: ['auditor', 'admin'], scopes: [] }
    ],
    rules: { requireSignedRelease: true, allowBuilderDeployer: false, approvals: { prod: 1, 'eu-*': 2 } }
  }
  return { cluster, policy, adminSeed }
}

export async function generate (): Promise<unknown> {
  const { cluster, policy, adminSeed } = await fixtures()
  const msg = policySigningBytes(policy)
  const sig = ed25519.sign(msg, adminSeed)
  const signed = { policy, signatures: [{ admin: 'alice', sig: toB64u(sig) }] }
  const approval = { format: 'keymesh.approval' as const, cluster: policy.clusterId, app: 'web', env: 'prod', release: '1.4.2', envelope: '2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae', admin: 'alice' }
  const asig = ed25519.sign(approvalSigningBytes(approval), adminSeed)
  const other = ed25519.sign(msg, seed(0xbb))
  return {
    format: 'policy',
    version: 1,
    description: 'Signed policy: canonical JSON (RFC 8785), signing bytes "keymesh/v1/policy" 0x00 canonical, Ed25519 admin signature; approvals; rejected documents with error codes',
    cases: [
      { name: 'signed policy', valid: true, cluster, signed, canonical: toHex(utf8(canonicalPolicy(policy))), signingBytes: toHex(msg), sig: toHex(sig) },
      { name: 'approval', valid: true, cluster, approval: { ...approval, sig: toB64u(asig) }, signingBytes: toHex(approvalSigningBytes(approval)), sig: toHex(asig) },
      { name: 'unsigned', valid: false, cluster, signed: { policy, signatures: [] }, error: 'VERIFICATION_FAILED' },
      { name: 'forged signature', valid: false, cluster, signed: { policy, signatures: [{ admin: 'alice', sig: toB64u(other) }] }, error: 'VERIFICATION_FAILED' },
      { name: 'altered after signing', valid: false, cluster, signed: { ...signed, policy: { ...policy, policyVersion: 8 } }, error: 'VERIFICATION_FAILED' },
      { name: 'unknown admin', valid: false, cluster, signed: { policy, signatures: [{ admin: 'mallory', sig: toB64u(sig) }] }, error: 'BAD_INPUT' },
      { name: 'unknown field', valid: false, cluster, signed: { ...signed, policy: { ...policy, owner: 'x' } }, error: 'BAD_INPUT' },
      { name: 'builder and deployer', valid: false, cluster, signed: { ...signed, policy: { ...policy, identities: [{ ...policy.identities[1], roles: ['builder', 'deployer'] }] } }, error: 'BAD_INPUT' },
      { name: 'deployer without recipient key', valid: false, cluster, signed: { ...signed, policy: { ...policy, identities: [{ name: 'd', peerId: policy.identities[0]?.peerId, roles: ['deployer'], scopes: [] }] } }, error: 'BAD_INPUT' },
      { name: 'node enrolled', valid: false, cluster, signed: { ...signed, policy: { ...policy, identities: [{ name: 'n', peerId: (cluster as { nodes: Array<{ peerId: string }> }).nodes[0]?.peerId, roles: ['auditor'], scopes: [] }] } }, error: 'BAD_INPUT' }
    ]
  }
}
