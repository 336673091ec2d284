/**
 * Cluster file (genesis): the trust anchor given to every node and client
 * (docs/PROTOCOL.md §5.2). JSON, no secrets.
 *
 * `parseClusterFile` validates everything before anything uses it: PeerIds must parse as Ed25519
 * peer ids (12D3KooW…, identity multihash of the protobuf public key), multiaddrs must parse and
 * carry /ip4|/ip6|/dns*, /tcp and no /p2p, node indices are exactly 1..n in order, peer ids are
 * unique across nodes and clients, 2 ≤ threshold ≤ n ≤ MAX_NODES, admin keys are 32-byte Ed25519
 * public keys. Unknown fields are rejected.
 *
 * Pure: parsing libraries only (@libp2p/peer-id, @multiformats/multiaddr), no I/O.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { aint, fromB64u, fromUtf8, toB64u, utf8 } from './bytes.ts'
import { CLUSTER_ID_LEN, MAX_NODES, MIN_THRESHOLD } from './constants.ts'
import { aarray, aobj } from './json.ts'

/** `format` value of a cluster file. */
export const CLUSTER_FORMAT = 'keymesh.cluster'
/** Current cluster file version. */
export const CLUSTER_VERSION = 1
/** Largest accepted cluster file. */
export const MAX_CLUSTER_FILE_LEN = 1024 * 1024
/** Caps on lists and strings in the cluster file. */
export const MAX_NODE_ADDRESSES = 8
export const MAX_ADMINS = 64
export const MAX_CLIENTS = 4096
export const MAX_MULTIADDR_LEN = 256
/** Names of admins and clients. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/

/** One node of the cluster. */
export interface ClusterNode {
  /** 1-based, equal to the position in `nodes` + 1; also the FROST identifier. */
  index: number
  /** Base58btc Ed25519 PeerId (12D3KooW…). */
  peerId: string
  /** 1..MAX_NODE_ADDRESSES multiaddrs without /p2p (e.g. /ip4/10.0.0.1/tcp/7001). */
  addresses: string[]
}

/** An administrator key (signs policy documents; issue "policy"). */
export interface ClusterAdmin { name: string, publicKey: Uint8Array }

/** An enrolled client peer (build host, deploy target, operator). */
export interface ClusterClient { name: string, peerId: string }

/** A validated cluster file. */
export interface ClusterFile {
  format: 'keymesh.cluster'
  version: 1
  clusterId: string
  threshold: number
  nodes: ClusterNode[]
  admins: ClusterAdmin[]
  adminThreshold: number
  clients: ClusterClient[]
  createdAt: string
}

const CLUSTER_ID_RE = /^[0-9a-f]{32}$/
// RFC 3339 date-time (UTC 'Z' or numeric offset), fractional seconds optional.
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/


/**
 * Validates a PeerId string: must be the canonical base58btc form of an Ed25519 peer id.
 * Throws BadInputError(field).
 */
export function validatePeerId (field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new BadInputError(field, 'expected a PeerId string')
  let pid
  try { pid = peerIdFromString(v) } catch { throw new BadInputError(field, 'not a valid PeerId') }
  if (pid.type !== 'Ed25519') throw new BadInputError(field, `expected an Ed25519 PeerId (12D3KooW…), got ${pid.type}`)
  if (pid.toString() !== v) throw new BadInputError(field, 'not in canonical base58btc form')
  return v
}

/**
 * Validates a node listen/dial multiaddr: parses, has an ip4/ip6/dns4/dns6/dns host and a tcp port,
 * and no /p2p component (the PeerId is a separate field). Throws BadInputError(field).
 */
export function validateNodeAddress (field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_MULTIADDR_LEN) throw new BadInputError(field, `expected a multiaddr string of 1..${MAX_MULTIADDR_LEN} characters`)
  let comps
  try { comps = multiaddr(v).getComponents() } catch { throw new BadInputError(field, 'not a valid multiaddr') }
  const names = comps.map(c => c.name)
  if (names.length !== 2 || !['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(names[0] as string) || names[1] !== 'tcp') {
    throw new BadInputError(field, 'expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port> (no /p2p)')
  }
  const port = Number(comps[1]?.value)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadInputError(field, 'tcp port must be 1..65535')
  return v
}

function aname (field: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME_PATTERN.test(v)) throw new BadInputError(field, `expected a name matching ${NAME_PATTERN.source}`)
  return v
}

/**
 * Validates a decoded JSON value as a cluster file. Throws BadInputError naming the field, or
 * UnsupportedVersionError for another version.
 */
export function validateClusterFile (v: unknown): ClusterFile {
  const o = aobj('cluster', v, ['format', 'version', 'clusterId', 'threshold', 'nodes', 'admins', 'adminThreshold', 'clients', 'createdAt'])
  if (o.format !== CLUSTER_FORMAT) throw new BadInputError('cluster.format', `expected "${CLUSTER_FORMAT}"`)
  if (o.version !== CLUSTER_VERSION) {
    if (typeof o.version === 'number') throw new UnsupportedVersionError('cluster.version', o.version, String(CLUSTER_VERSION))
    throw new BadInputError('cluster.version', `expected ${CLUSTER_VERSION}`)
  }
  if (typeof o.clusterId !== 'string' || !CLUSTER_ID_RE.test(o.clusterId)) throw new BadInputError('cluster.clusterId', `expected ${CLUSTER_ID_LEN * 2} lowercase hex characters`)
  const seen = new Set<string>()
  const nodes = aarray('cluster.nodes', o.nodes, MIN_THRESHOLD, MAX_NODES).map((x, i): ClusterNode => {
    const f = `cluster.nodes[${i}]`
    const n = aobj(f, x, ['index', 'peerId', 'addresses'])
    const index = aint(`${f}.index`, n.index, 1, MAX_NODES)
    if (index !== i + 1) throw new BadInputError(`${f}.index`, `expected ${i + 1} (indices are 1..n in order)`)
    const peerId = validatePeerId(`${f}.peerId`, n.peerId)
    if (seen.has(peerId)) throw new BadInputError(`${f}.peerId`, 'duplicate PeerId')
    seen.add(peerId)
    const addresses = aarray(`${f}.addresses`, n.addresses, 1, MAX_NODE_ADDRESSES).map((a, j) => validateNodeAddress(`${f}.addresses[${j}]`, a))
    if (new Set(addresses).size !== addresses.length) throw new BadInputError(`${f}.addresses`, 'duplicate address')
    return { index, peerId, addresses }
  })
  const threshold = aint('cluster.threshold', o.threshold, MIN_THRESHOLD, nodes.length)
  const adminNames = new Set<string>()
  const admins = aarray('cluster.admins', o.admins, 0, MAX_ADMINS).map((x, i): ClusterAdmin => {
    const f = `cluster.admins[${i}]`
    const a = aobj(f, x, ['name', 'publicKey'])
    const name = aname(`${f}.name`, a.name)
    if (adminNames.has(name)) throw new BadInputError(`${f}.name`, 'duplicate name')
    adminNames.add(name)
    const publicKey = fromB64u(`${f}.publicKey`, a.publicKey, 32)
    if (publicKey.length !== 32) throw new BadInputError(`${f}.publicKey`, `expected 32 bytes, got ${publicKey.length}`)
    return { name, publicKey }
  })
  const adminThreshold = admins.length === 0
    ? aint('cluster.adminThreshold', o.adminThreshold, 0, 0)
    : aint('cluster.adminThreshold', o.adminThreshold, 1, admins.length)
  const clientNames = new Set<string>()
  const clients = aarray('cluster.clients', o.clients, 0, MAX_CLIENTS).map((x, i): ClusterClient => {
    const f = `cluster.clients[${i}]`
    const c = aobj(f, x, ['name', 'peerId'])
    const name = aname(`${f}.name`, c.name)
    if (clientNames.has(name)) throw new BadInputError(`${f}.name`, 'duplicate name')
    clientNames.add(name)
    const peerId = validatePeerId(`${f}.peerId`, c.peerId)
    if (seen.has(peerId)) throw new BadInputError(`${f}.peerId`, 'duplicate PeerId (already a node or client)')
    seen.add(peerId)
    return { name, peerId }
  })
  if (typeof o.createdAt !== 'string' || !RFC3339_RE.test(o.createdAt) || Number.isNaN(Date.parse(o.createdAt))) {
    throw new BadInputError('cluster.createdAt', 'expected an RFC 3339 date-time')
  }
  return { format: CLUSTER_FORMAT, version: CLUSTER_VERSION, clusterId: o.clusterId, threshold, nodes, admins, adminThreshold, clients, createdAt: o.createdAt }
}

/**
 * Parses a cluster file (text or UTF-8 bytes). Throws BadInputError naming the field (including
 * 'cluster' for invalid JSON or a file over MAX_CLUSTER_FILE_LEN), UnsupportedVersionError.
 */
export function parseClusterFile (text: string | Uint8Array): ClusterFile {
  const s = typeof text === 'string' ? text : fromUtf8('cluster', text)
  if (s.length > MAX_CLUSTER_FILE_LEN) throw new BadInputError('cluster', `file larger than ${MAX_CLUSTER_FILE_LEN} bytes`)
  let v: unknown
  try { v = JSON.parse(s) } catch { throw new BadInputError('cluster', 'invalid JSON') }
  return validateClusterFile(v)
}

/** Serialises a cluster file (validated first; 2-space JSON, trailing newline). Throws BadInputError. */
export function serializeClusterFile (c: ClusterFile): string {
  const j = {
    format: c.format,
    version: c.version,
    clusterId: c.clusterId,
    threshold: c.threshold,
    nodes: c.nodes.map(n => ({ index: n.index, peerId: n.peerId, addresses: [...n.addresses] })),
    admins: c.admins.map(a => ({ name: a.name, publicKey: toB64u(a.publicKey) })),
    adminThreshold: c.adminThreshold,
    clients: c.clients.map(x => ({ name: x.name, peerId: x.peerId })),
    createdAt: c.createdAt
  }
  validateClusterFile(JSON.parse(JSON.stringify(j)))
  const out = JSON.stringify(j, null, 2) + '\n'
  if (utf8(out).length > MAX_CLUSTER_FILE_LEN) throw new BadInputError('cluster', `file larger than ${MAX_CLUSTER_FILE_LEN} bytes`)
  return out
}

/** The node with PeerId `peerId`, or undefined. */
export function nodeByPeerId (c: ClusterFile, peerId: string): ClusterNode | undefined {
  return c.nodes.find(n => n.peerId === peerId)
}

/** The node with 1-based index `index`, or undefined. */
export function nodeByIndex (c: ClusterFile, index: number): ClusterNode | undefined {
  return c.nodes[index - 1]
}

/** Every PeerId allowed to connect to a node of this cluster: nodes and enrolled clients. */
export function allowedPeerIds (c: ClusterFile): Set<string> {
  return new Set([...c.nodes.map(n => n.peerId), ...c.clients.map(x => x.peerId)])
}
