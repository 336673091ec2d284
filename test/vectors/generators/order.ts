/**
 * Known-answer vectors for signed lifecycle orders (docs/PROTOCOL.md
 * §11.1): canonical JSON, signing bytes ("keymesh/v1/order" 0x00 canonical) and Ed25519 admin
 * signatures from fixed seeds (adminThreshold 2), and orders that must be rejected with their code.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { toB64u, toHex, utf8 } from '../../../protocol/bytes.ts'
import { canonicalJson } from '../../../protocol/manifest.ts'
import { orderSigningBytes } from '../../../protocol/order.ts'
import type { Order } from '../../../protocol/order.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const pid = async (b: number): Promise<string> => peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed(b))).toString()

/** Admin seeds of the fixture cluster (alice, bob). */
export const ADMIN_SEEDS = [seed(0xa1), seed(0xb2)]

/** Fixed cluster file (JSON form) with two admins and adminThreshold 2. */
export async function orderCluster (): Promise<unknown> {
  return {
    format: 'keymesh.cluster', version: 1, clusterId: '6b65796d6573682d746573742d303031', threshold: 2,
    nodes: await Promise.all([1, 2, 3].map(async i => ({ index: i, peerId: await pid(i), addresses: [`/ip4/127.0.0.1/tcp/${7000 + i}`] }))),
    admins: [{ name: 'alice', publicKey: toB64u(ed25519.getPublicKey(ADMIN_SEEDS[0] as Uint8Array)) }, { name: 'bob', publicKey: toB64u(ed25519.getPublicKey(ADMIN_SEEDS[1] as Uint8Array)) }],
    adminThreshold: 2,
    clients: [],
    createdAt: '2026-11-25T00:00:00Z'
  }
}

export async function generate (): Promise<unknown> {
  const cluster = await orderCluster()
  const clusterId = (cluster as { clusterId: string }).clusterId
  const rotate: Order = { format: 'keymesh.order', version: 1, clusterId, op: 'rotate', epoch: 2, nonce: '00112233445566778899aabbccddeeff', params: { minDecryptionEpoch: 2 }, issuedAt: '2026-11-25T04:00:00.000Z' }
  const msg = orderSigningBytes(rotate)
  const sigs = ADMIN_SEEDS.map(s => toB64u(ed25519.sign(msg, s)))
  const signed = { order: rotate, signatures: [{ admin: 'alice', sig: sigs[0] }, { admin: 'bob', sig: sigs[1] }] }
  const other = toB64u(ed25519.sign(msg, seed(0xcc)))
  return {
    format: 'order',
    version: 1,
    description: 'Signed lifecycle order: canonical JSON (RFC 8785), signing bytes "keymesh/v1/order" 0x00 canonical, Ed25519 signatures of adminThreshold (2) admins; rejected orders with error codes',
    cases: [
      { name: 'rotate order signed by 2 of 2', valid: true, cluster, signed, canonical: toHex(utf8(canonicalJson(rotate))), signingBytes: toHex(msg), sigs },
      { name: 'unsigned', valid: false, cluster, signed: { order: rotate, signatures: [] }, error: 'VERIFICATION_FAILED' },
      { name: 'under-signed (1 of 2)', valid: false, cluster, signed: { order: rotate, signatures: [signed.signatures[0]] }, error: 'VERIFICATION_FAILED' },
      { name: 'forged signature', valid: false, cluster, signed: { order: rotate, signatures: [signed.signatures[0], { admin: 'bob', sig: other }] }, error: 'VERIFICATION_FAILED' },
      { name: 'altered after signing', valid: false, cluster, signed: { ...signed, order: { ...rotate, epoch: 3 } }, error: 'VERIFICATION_FAILED' },
      { name: 'duplicate signer', valid: false, cluster, signed: { order: rotate, signatures: [signed.signatures[0], signed.signatures[0]] }, error: 'BAD_INPUT' },
      { name: 'unknown admin', valid: false, cluster, signed: { order: rotate, signatures: [signed.signatures[0], { admin: 'mallory', sig: sigs[1] }] }, error: 'BAD_INPUT' },
      { name: 'another cluster', valid: false, cluster, signed: { ...signed, order: { ...rotate, clusterId: 'f'.repeat(32) } }, error: 'BAD_INPUT' },
      { name: 'unknown field', valid: false, cluster, signed: { ...signed, order: { ...rotate, extra: 1 } }, error: 'BAD_INPUT' },
      { name: 'unknown op', valid: false, cluster, signed: { ...signed, order: { ...rotate, op: 'destroy' } }, error: 'BAD_INPUT' },
      { name: 'retirement beyond target', valid: false, cluster, signed: { ...signed, order: { ...rotate, params: { minDecryptionEpoch: 3 } } }, error: 'BAD_INPUT' },
      { name: 'local time', valid: false, cluster, signed: { ...signed, order: { ...rotate, issuedAt: '2026-11-25T04:00:00+01:00' } }, error: 'BAD_INPUT' },
      { name: 'version 2', valid: false, cluster, signed: { ...signed, order: { ...rotate, version: 2 } }, error: 'UNSUPPORTED_VERSION' }
    ]
  }
}
