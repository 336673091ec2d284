/**
 * Cluster MEMBERSHIP after reshares (docs/PROTOCOL.md §11.8).
 *
 * The membership of a cluster is its genesis cluster file folded with the chain of COMMITTED
 * reshare orders, in order. A reshare order (protocol/order.ts, op 'reshare') names the full new
 * member list (index = position + 1) and the new threshold k'; admins, adminThreshold, clients,
 * clusterId and createdAt never change by a reshare, so every order of the chain is verified
 * against the GENESIS admins (a reshare cannot hand the admin role to someone else).
 *
 * `revision` = 1 + number of applied orders (1 = the genesis file itself). Nodes persist the
 * chain (DATA/membership.json, node/lifecycle/membership-file.ts) and serve it with `cluster.get`;
 * clients fold it with THEIR cluster file's admins and adopt a higher revision.
 *
 * Pure: no I/O.
 */
import { BadInputError } from './errors.ts'
import { toB64u } from './bytes.ts'
import { validateClusterFile } from './cluster.ts'
import type { ClusterFile } from './cluster.ts'
import { encodeSignedOrder, parseSignedOrder, verifySignedOrder } from './order.ts'
import type { Order, SignedOrder } from './order.ts'

/** Most orders in one membership chain (cluster.get answers carry at most this many). */
export const MAX_MEMBERSHIP_ORDERS = 256

/** A folded membership. */
export interface Membership {
  /** The effective cluster file (genesis with every order applied). */
  cluster: ClusterFile
  /** 1 + number of applied orders. */
  revision: number
  /** The canonical signed order texts of the chain, oldest first. */
  orders: string[]
}

/**
 * The cluster after one reshare order: nodes = order.params.members, threshold = newThreshold;
 * everything else from `cluster`. Does NOT verify signatures (see foldMembership). Throws
 * BadInputError when the order is not a reshare of this cluster or the result is not a valid
 * cluster file (e.g. a new member's PeerId is an enrolled client's).
 */
export function applyReshare (cluster: ClusterFile, order: Order): ClusterFile {
  if (order.op !== 'reshare') throw new BadInputError('order.op', `expected "reshare", got "${order.op}"`)
  if (order.clusterId !== cluster.clusterId) throw new BadInputError('order.clusterId', `order is for cluster ${order.clusterId}, not ${cluster.clusterId}`)
  const members = order.params.members
  const k = order.params.newThreshold
  if (members === undefined || k === undefined) throw new BadInputError('order.params', 'a reshare order needs members and newThreshold')
  // Re-validated as a whole (PeerIds unique across nodes and clients, 2 ≤ k ≤ n ≤ 64).
  return validateClusterFile({
    format: cluster.format,
    version: cluster.version,
    clusterId: cluster.clusterId,
    threshold: k,
    nodes: members.map(m => ({ index: m.index, peerId: m.peerId, addresses: [...m.addresses] })),
    admins: cluster.admins.map(a => ({ name: a.name, publicKey: toB64u(a.publicKey) })),
    adminThreshold: cluster.adminThreshold,
    clients: cluster.clients.map(c => ({ name: c.name, peerId: c.peerId })),
    createdAt: cluster.createdAt
  })
}

/**
 * Folds `orders` (signed order texts or objects, oldest first) onto `genesis`. Each must verify
 * against the genesis admins (≥ adminThreshold distinct valid signatures), be for this cluster,
 * have op 'reshare', and be issued strictly after the previous one. Returns the effective cluster,
 * its revision and the canonical order texts. Throws BadInputError / VerificationError naming the
 * position of the offending order (`membership.orders[i]`).
 */
export function foldMembership (genesis: ClusterFile, orders: ReadonlyArray<string | SignedOrder>): Membership {
  if (!Array.isArray(orders) || orders.length > MAX_MEMBERSHIP_ORDERS) throw new BadInputError('membership.orders', `expected at most ${MAX_MEMBERSHIP_ORDERS} orders`)
  let cluster = genesis
  let last = Number.NEGATIVE_INFINITY
  const texts: string[] = []
  for (const [i, o] of orders.entries()) {
    const f = `membership.orders[${i}]`
    let so: SignedOrder
    let order: Order
    try {
      so = parseSignedOrder(o)
      order = verifySignedOrder(so, genesis)
    } catch (e) {
      if (e instanceof Error) e.message = `${f}: ${e.message}`
      throw e
    }
    if (order.op !== 'reshare') throw new BadInputError(`${f}.op`, `expected "reshare", got "${order.op}"`)
    const t = Date.parse(order.issuedAt)
    if (!(t > last)) throw new BadInputError(`${f}.issuedAt`, 'orders must be issued strictly after the previous order of the chain')
    last = t
    cluster = applyReshare(cluster, order)
    texts.push(encodeSignedOrder(so))
  }
  return { cluster, revision: 1 + texts.length, orders: texts }
}

/** The nonce prefix (8 hex) and issue time of an order text, for messages. Never throws. */
export function describeOrder (text: string): string {
  try {
    const o = parseSignedOrder(text).order
    return `${o.nonce.slice(0, 8)} (${o.issuedAt})`
  } catch { return '(unreadable order)' }
}

/**
 * The commit quorum of a reshare to k′-of-n′ (docs/PROTOCOL.md §11.8): how many new members must
 * report the same result digest before any of them commits — max(k′, ⌊n′/2⌋ + 1). A strict
 * majority makes two different results impossible to commit (any two quorums share a member, and
 * a member serves one result only); ≥ k′ means the committed members can serve and repair the
 * others. New members missing from the quorum rebuild their shares afterwards (share repair).
 * Throws BadInputError unless 1 ≤ k′ ≤ n′.
 */
export function reshareCommitQuorum (newThreshold: number, newN: number): number {
  if (!Number.isInteger(newThreshold) || !Number.isInteger(newN) || newThreshold < 1 || newThreshold > newN) throw new BadInputError('newThreshold', `expected 1 ≤ k′ ≤ n′, got ${newThreshold} of ${newN}`)
  return Math.max(newThreshold, Math.floor(newN / 2) + 1)
}
