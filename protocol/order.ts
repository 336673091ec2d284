/**
 * Lifecycle ORDERS: admin-signed instructions to the nodes to rotate, refresh or reshare the
 * cluster keys (docs/PROTOCOL.md §11.1).
 *
 * An order is a small JSON document
 *   {format:'keymesh.order', version:1, clusterId, op, epoch, nonce, params, issuedAt}
 * signed by ≥ adminThreshold distinct admins of the cluster file with Ed25519 over
 *   utf8("keymesh/v1/order") ‖ 0x00 ‖ RFC 8785 canonical JSON of the order
 * (the tag domain-separates order signatures from policy and approval signatures made with the
 * same admin keys). The signed form is `{order, signatures:[{admin, sig}]}`.
 *
 * This module checks structure and signatures only; freshness (issuedAt window), replay (nonce
 * already seen, target epoch already committed) and applicability are node-side decisions
 * (node/lifecycle/manager.ts), because they depend on local state.
 *
 * Pure: no I/O. Ed25519 verification via node:crypto (protocol/frost.ts ed25519Verify).
 */
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { aint, concat, utf8 } from './bytes.ts'
import { MAX_NODES, Tag } from './constants.ts'
import { canonicalJson } from './manifest.ts'
import { validateNodeAddress, validatePeerId } from './cluster.ts'
import type { ClusterFile } from './cluster.ts'
import { parseAdminSignature, verifyAdminSignatures } from './admin.ts'
import type { AdminSignature } from './admin.ts'
import { aarray, aobj } from './json.ts'

/** Domain-separation tag of order signatures (protocol/constants.ts Tag.ORDER). */
export const ORDER_TAG = Tag.ORDER
export const ORDER_FORMAT = 'keymesh.order'
export const ORDER_VERSION = 1
/** Largest signed order text accepted (a reshare order lists at most MAX_NODES members). */
export const MAX_ORDER_LEN = 64 * 1024
/** Most signatures on one order. */
export const MAX_ORDER_SIGNATURES = 64

/** Lifecycle operations an order can request. */
export type OrderOp = 'rotate' | 'refresh' | 'reshare'
export const ORDER_OPS: readonly OrderOp[] = ['rotate', 'refresh', 'reshare']

/** A member of the cluster after a reshare. */
export interface OrderMember { index: number, peerId: string, addresses: string[] }

/** Parameters per operation (all optional fields absent when unused). */
export interface OrderParams {
  /** rotate: after the new epoch commits, nodes refuse partials/signing for epochs below this. */
  minDecryptionEpoch?: number
  /**
   * rotate: DKG attempt number (session `e<epoch>-a<attempt>`), default 0. A failed rotation
   * leaves its session failed on every node; the retry order names the next attempt.
   */
  attempt?: number
  /** reshare: the new member list (indices 1..n', unique). */
  members?: OrderMember[]
  /** reshare: the new threshold k'. */
  newThreshold?: number
}

/** An order (what admins sign). */
export interface Order {
  format: 'keymesh.order'
  version: 1
  clusterId: string
  op: OrderOp
  /** Target epoch: rotate/reshare create it; refresh re-randomises it (the current epoch). */
  epoch: number
  /** 32 lowercase hex chars, fresh per order (replay protection). */
  nonce: string
  params: OrderParams
  /** RFC 3339 UTC time of issue. */
  issuedAt: string
}

/** One admin's signature (b64u, 64 bytes). */
export type OrderSignature = AdminSignature

/** A signed order as pushed to nodes. */
export interface SignedOrder { order: Order, signatures: OrderSignature[] }


const HEX32_RE = /^[0-9a-f]{32}$/
const UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/

function validateParams (op: OrderOp, v: unknown): OrderParams {
  if (op === 'rotate') {
    const o = aobj('order.params', v, [], ['minDecryptionEpoch', 'attempt'])
    return {
      ...(o.minDecryptionEpoch === undefined ? {} : { minDecryptionEpoch: aint('order.params.minDecryptionEpoch', o.minDecryptionEpoch, 1, 0xffffffff) }),
      ...(o.attempt === undefined ? {} : { attempt: aint('order.params.attempt', o.attempt, 0, 999_999) })
    }
  }
  if (op === 'refresh') { aobj('order.params', v, []); return {} }
  const o = aobj('order.params', v, ['members', 'newThreshold'])
  const members = aarray('order.params.members', o.members, 2, MAX_NODES).map((m, i) => {
    const f = `order.params.members[${i}]`
    const mo = aobj(f, m, ['index', 'peerId', 'addresses'])
    return {
      index: aint(`${f}.index`, mo.index, 1, MAX_NODES),
      peerId: validatePeerId(`${f}.peerId`, mo.peerId),
      addresses: aarray(`${f}.addresses`, mo.addresses, 1, 8).map((a, j) => validateNodeAddress(`${f}.addresses[${j}]`, a))
    }
  })
  members.forEach((m, i) => {
    if (m.index !== i + 1) throw new BadInputError(`order.params.members[${i}].index`, `expected ${i + 1} (members listed in index order, 1..n)`)
    if (members.findIndex(x => x.peerId === m.peerId) !== i) throw new BadInputError(`order.params.members[${i}].peerId`, 'duplicate PeerId')
  })
  const newThreshold = aint('order.params.newThreshold', o.newThreshold, 2, members.length)
  return { members, newThreshold }
}

/** Validates an order's structure (not its signatures). Throws BadInputError / UnsupportedVersionError. */
export function validateOrder (v: unknown): Order {
  const o = aobj('order', v, ['format', 'version', 'clusterId', 'op', 'epoch', 'nonce', 'params', 'issuedAt'])
  if (o.format !== ORDER_FORMAT) throw new BadInputError('order.format', `expected "${ORDER_FORMAT}"`)
  if (o.version !== ORDER_VERSION) {
    if (typeof o.version === 'number' && Number.isSafeInteger(o.version) && o.version > 0) throw new UnsupportedVersionError('order.version', o.version, String(ORDER_VERSION))
    throw new BadInputError('order.version', `expected ${ORDER_VERSION}`)
  }
  if (typeof o.clusterId !== 'string' || !HEX32_RE.test(o.clusterId)) throw new BadInputError('order.clusterId', 'expected 32 lowercase hex characters')
  if (typeof o.op !== 'string' || !(ORDER_OPS as readonly string[]).includes(o.op)) throw new BadInputError('order.op', `expected one of ${ORDER_OPS.join('|')}`)
  const op = o.op as OrderOp
  const epoch = aint('order.epoch', o.epoch, 1, 0xffffffff)
  if (typeof o.nonce !== 'string' || !HEX32_RE.test(o.nonce)) throw new BadInputError('order.nonce', 'expected 32 lowercase hex characters')
  if (typeof o.issuedAt !== 'string' || !UTC_RE.test(o.issuedAt) || Number.isNaN(Date.parse(o.issuedAt))) throw new BadInputError('order.issuedAt', 'expected an RFC 3339 UTC time (…Z)')
  const params = validateParams(op, o.params)
  if (params.minDecryptionEpoch !== undefined && params.minDecryptionEpoch > epoch) {
    throw new BadInputError('order.params.minDecryptionEpoch', `must not exceed the target epoch ${epoch}`)
  }
  return { format: ORDER_FORMAT, version: ORDER_VERSION, clusterId: o.clusterId, op, epoch, nonce: o.nonce, params, issuedAt: o.issuedAt }
}

/** The bytes admins sign: tag ‖ 0x00 ‖ canonical JSON (RFC 8785) of the validated order. Throws BadInputError. */
export function orderSigningBytes (order: Order): Uint8Array {
  return concat(utf8(Tag.ORDER), new Uint8Array([0]), utf8(canonicalJson(validateOrder(order))))
}

/** Canonical JSON of a signed order (what is pushed, stored and gossiped). Throws BadInputError. */
export function encodeSignedOrder (so: SignedOrder): string {
  return canonicalJson({ order: validateOrder(so.order), signatures: so.signatures.map(s => ({ admin: s.admin, sig: s.sig })) })
}

/** Parses a signed order (text or object; structure only). Throws BadInputError. */
export function parseSignedOrder (v: unknown): SignedOrder {
  if (typeof v === 'string') {
    if (v.length > MAX_ORDER_LEN) throw new BadInputError('signedOrder', `longer than ${MAX_ORDER_LEN} characters`)
    try { v = JSON.parse(v) as unknown } catch { throw new BadInputError('signedOrder', 'not valid JSON') }
  }
  const o = aobj('signedOrder', v, ['order', 'signatures'])
  const order = validateOrder(o.order)
  const signatures = aarray('signedOrder.signatures', o.signatures, 0, MAX_ORDER_SIGNATURES).map((s, i) => parseAdminSignature(`signedOrder.signatures[${i}]`, s))
  return { order, signatures }
}

/**
 * Verifies a signed order against the cluster file: same cluster id; every signature names a
 * distinct admin of the cluster file and verifies (one unknown, duplicate or bad signature rejects
 * the order: a forged signature is never silently ignored); at least adminThreshold of them.
 * Returns the order. Throws BadInputError (wrong cluster, unknown/duplicate admin) or
 * VerificationError (no admins, bad signature, too few signatures).
 */
export function verifySignedOrder (so: SignedOrder, cluster: ClusterFile): Order {
  const order = validateOrder(so.order)
  if (order.clusterId !== cluster.clusterId) throw new BadInputError('order.clusterId', `order is for cluster ${order.clusterId}, not ${cluster.clusterId}`)
  verifyAdminSignatures(cluster, 'order', orderSigningBytes(order), so.signatures)
  return order
}
