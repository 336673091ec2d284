/**
 * Known-answer vectors for the membership fold (docs/PROTOCOL.md §11.7): a genesis cluster file
 * folded with a chain of signed reshare orders (fixed admin seeds, adminThreshold 2) gives the
 * effective cluster file (serialised) and revision; chains that must be rejected with their code.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { toB64u } from '../../../protocol/bytes.ts'
import { orderSigningBytes } from '../../../protocol/order.ts'
import type { Order, SignedOrder } from '../../../protocol/order.ts'
import { encodeSignedOrder } from '../../../protocol/order.ts'
import { ADMIN_SEEDS, orderCluster } from './order.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const pid = async (b: number): Promise<string> => peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed(b))).toString()

function sign (o: Order, seeds = ADMIN_SEEDS): SignedOrder {
  const msg = orderSigningBytes(o)
  return { order: o, signatures: seeds.map((s, k) => ({ admin: ['alice', 'bob'][k] as string, sig: toB64u(ed25519.sign(msg, s)) })) }
}

/** The fixture chain: replace node 3 by node 4 (2-of-3), then add node 5 with threshold 3 (3-of-4). */
export async function membershipChain (): Promise<{ genesis: unknown, orders: string[] }> {
  const genesis = await orderCluster()
  const clusterId = (genesis as { clusterId: string }).clusterId
  const m = async (i: number, b: number): Promise<{ index: number, peerId: string, addresses: string[] }> => ({ index: i, peerId: await pid(b), addresses: [`/ip4/127.0.0.1/tcp/${7000 + b}`] })
  const o1: Order = { format: 'keymesh.order', version: 1, clusterId, op: 'reshare', epoch: 1, nonce: '11'.repeat(16), params: { members: [await m(1, 1), await m(2, 2), await m(3, 4)], newThreshold: 2 }, issuedAt: '2026-11-25T05:00:00.000Z' }
  const o2: Order = { ...o1, nonce: '22'.repeat(16), params: { members: [await m(1, 1), await m(2, 2), await m(3, 4), await m(4, 5)], newThreshold: 3 }, issuedAt: '2026-11-25T06:00:00.000Z' }
  return { genesis, orders: [encodeSignedOrder(sign(o1)), encodeSignedOrder(sign(o2))] }
}

export async function generate (): Promise<unknown> {
  const { genesis, orders } = await membershipChain()
  const { foldMembership } = await import('../../../protocol/membership.ts')
  const { serializeClusterFile, validateClusterFile } = await import('../../../protocol/cluster.ts')
  const g = validateClusterFile(genesis)
  const folded = foldMembership(g, orders)
  const o1 = JSON.parse(orders[0] as string) as SignedOrder
  const o2 = JSON.parse(orders[1] as string) as SignedOrder
  const rotate = sign({ ...o1.order, op: 'rotate', params: {} })
  return {
    format: 'membership',
    version: 1,
    description: 'Membership fold: genesis cluster file + chain of signed reshare orders (verified against the genesis admins, strictly increasing issuedAt) → effective cluster file and revision = 1 + orders; rejected chains with error codes',
    cases: [
      { name: 'genesis only', valid: true, genesis, orders: [], revision: 1, cluster: serializeClusterFile(g) },
      { name: 'two reshares', valid: true, genesis, orders, revision: folded.revision, cluster: serializeClusterFile(folded.cluster) },
      { name: 'out of order', valid: false, genesis, orders: [orders[1], orders[0]], error: 'BAD_INPUT' },
      { name: 'same issuedAt twice', valid: false, genesis, orders: [orders[0], encodeSignedOrder(sign({ ...o2.order, issuedAt: o1.order.issuedAt }))], error: 'BAD_INPUT' },
      { name: 'under-signed', valid: false, genesis, orders: [encodeSignedOrder({ ...o1, signatures: o1.signatures.slice(0, 1) })], error: 'VERIFICATION_FAILED' },
      { name: 'signed by a non-admin', valid: false, genesis, orders: [encodeSignedOrder(sign(o1.order, [ADMIN_SEEDS[0] as Uint8Array, seed(0xcc)]))], error: 'VERIFICATION_FAILED' },
      { name: 'not a reshare', valid: false, genesis, orders: [encodeSignedOrder(rotate)], error: 'BAD_INPUT' }
    ]
  }
}
