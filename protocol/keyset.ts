/**
 * KeySet: the public half of one key epoch — the wrap key and the sign key, each with its VSS
 * commitment (k points) and the n public verifying shares (docs/PROTOCOL.md §4.1).
 *
 * A key set is public data fetched from nodes; it is what clients trust, so `decodeKeySet` is
 * strict: every point is decoded with `decodePoint` (canonical, not identity, torsion-free) and
 * every verifying share must equal the commitment polynomial evaluated at its index
 * (V_i = Σ_j C_j·i^j, Feldman VSS). A key set whose shares do not match its commitments is
 * rejected, so a single lying node cannot hand out a verifying share that is not on the polynomial.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { randomBytes } from 'node:crypto'
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { Reader, Writer, aint, concat, fromHex, toHex, u32, utf8 } from './bytes.ts'
import { CLUSTER_ID_LEN, KEYSET_MAGIC, KEYSET_VERSION, MAX_KEYSET_LEN, MAX_NODES, MIN_THRESHOLD, POINT_LEN, Tag } from './constants.ts'
import { decodePoint, encodePoint, group, mod } from './group.ts'
import type { Point, Scalar } from './group.ts'

/** Public key of one threshold key: VSS commitment and verifying shares. */
export interface GroupPublicKey {
  /** k points: VSS commitment of the summed polynomial; [0] is the group key. */
  commitments: Point[]
  /** n points: verifyingShares[i-1] = share_i · B. */
  verifyingShares: Point[]
}

/** Public keys and verifying shares of one epoch. */
export interface KeySet {
  version: 1
  /** 32 lowercase hex chars (16 bytes). */
  clusterId: string
  /** u32, ≥ 1. */
  epoch: number
  /** k */
  threshold: number
  n: number
  /** X = wrap.commitments[0] */
  wrap: GroupPublicKey
  /** S = sign.commitments[0] (an Ed25519 public key) */
  sign: GroupPublicKey
}

/**
 * A node's secret share of one group key. Owned by the node's store; never leaves the node.
 * `index` is the 1-based node index (FROST identifier), `scalar` is in [1, L). The bigint cannot
 * be wiped from memory; holders drop references as soon as they are done.
 */
export interface KeyShare { index: number; scalar: bigint }

/** Format constants (magic, version, MAX_KEYSET_LEN), defined in constants.ts, re-exported here. */
export { KEYSET_MAGIC, KEYSET_VERSION, MAX_KEYSET_LEN } from './constants.ts'

const CLUSTER_ID_RE = /^[0-9a-f]{32}$/
const MAGIC_BYTES = utf8(KEYSET_MAGIC)

/** Validates a cluster id string (32 lowercase hex chars). Throws BadInputError(field). */
export function validateClusterId (field: string, s: unknown): string {
  if (typeof s !== 'string' || !CLUSTER_ID_RE.test(s)) throw new BadInputError(field, 'expected 32 lowercase hex characters')
  return s
}

/** Validates (threshold, n): 2 ≤ k ≤ n ≤ MAX_NODES. Throws BadInputError. */
export function validateThreshold (k: unknown, n: unknown, field = 'keySet'): { k: number, n: number } {
  const nn = aint(`${field}.n`, n, MIN_THRESHOLD, MAX_NODES)
  const kk = aint(`${field}.threshold`, k, MIN_THRESHOLD, nn)
  return { k: kk, n: nn }
}

/**
 * Checks V_i = Σ_j C_j·i^j for every i in 1..n with one randomised multi-scalar multiplication:
 * Σ_i ρ_i·V_i − Σ_j (Σ_i ρ_i·i^j)·C_j = 0 for fresh random 128-bit ρ_i. A wrong V_i passes with
 * probability ≤ 2^-128. Inputs are public. Throws BadInputError(`${field}.verifyingShares`).
 */
export function checkVerifyingShares (pk: GroupPublicKey, field: string): void {
  const k = pk.commitments.length
  const n = pk.verifyingShares.length
  const rho = randomBytes(16 * n)
  const cCoeffs: Scalar[] = new Array<Scalar>(k).fill(0n)
  const vCoeffs: Scalar[] = []
  for (let i = 1; i <= n; i++) {
    let r = 0n
    for (let b = 0; b < 16; b++) r = (r << 8n) | BigInt(rho[(i - 1) * 16 + b] as number)
    r = r | 1n // non-zero
    vCoeffs.push(r)
    let pow = 1n
    for (let j = 0; j < k; j++) {
      cCoeffs[j] = mod((cCoeffs[j] as Scalar) + mod(-r * pow))
      pow = mod(pow * BigInt(i))
    }
  }
  const sum = group().msmPublic([...pk.verifyingShares, ...pk.commitments], [...vCoeffs, ...cCoeffs])
  if (!sum.is0()) throw new BadInputError(`${field}.verifyingShares`, 'verifying shares do not match the commitments')
}

/** Evaluates the commitment polynomial at x: Σ_j C_j·x^j (public data, variable time). Throws nothing for valid points. */
export function evalCommitment (commitments: Point[], x: number): Point {
  const scalars: Scalar[] = []
  let pow = 1n
  for (let j = 0; j < commitments.length; j++) { scalars.push(pow); pow = mod(pow * BigInt(x)) }
  return group().msmPublic(commitments, scalars)
}

function assertShape (ks: KeySet): void {
  if (ks.version !== KEYSET_VERSION) throw new UnsupportedVersionError('keySet.version', ks.version, String(KEYSET_VERSION))
  validateClusterId('keySet.clusterId', ks.clusterId)
  aint('keySet.epoch', ks.epoch, 1, 0xffffffff)
  const { k, n } = validateThreshold(ks.threshold, ks.n)
  for (const name of ['wrap', 'sign'] as const) {
    const pk = ks[name]
    if (pk.commitments.length !== k) throw new BadInputError(`keySet.${name}.commitments`, `expected ${k} points`)
    if (pk.verifyingShares.length !== n) throw new BadInputError(`keySet.${name}.verifyingShares`, `expected ${n} points`)
  }
}

/**
 * Binary encoding: "KMKS" ‖ u8 version=1 ‖ clusterId (16) ‖ u32 epoch ‖ u8 k ‖ u8 n ‖
 * wrap(k commitments ‖ n verifying shares) ‖ sign(same). Throws BadInputError on a malformed
 * key set (wrong counts, bad cluster id, out-of-range epoch/threshold).
 */
export function encodeKeySet (ks: KeySet): Uint8Array {
  assertShape(ks)
  const w = new Writer().raw(MAGIC_BYTES).u8(KEYSET_VERSION).raw(fromHex('keySet.clusterId', ks.clusterId, CLUSTER_ID_LEN))
    .u32(ks.epoch).u8(ks.threshold).u8(ks.n)
  for (const pk of [ks.wrap, ks.sign]) {
    for (const p of pk.commitments) w.raw(encodePoint(p))
    for (const p of pk.verifyingShares) w.raw(encodePoint(p))
  }
  return w.bytes()
}

/**
 * Strict decoding. Throws BadInputError (bad magic, truncated, trailing bytes, bad k/n, bad
 * point, verifying shares that do not match the commitments) or UnsupportedVersionError (version ≠ 1).
 */
export function decodeKeySet (b: Uint8Array): KeySet {
  if (!(b instanceof Uint8Array)) throw new BadInputError('keySet', 'expected bytes')
  if (b.length > MAX_KEYSET_LEN) throw new BadInputError('keySet', `longer than ${MAX_KEYSET_LEN} bytes`)
  const r = new Reader(b, 'keySet')
  const magic = r.raw('magic', 4)
  if (toHex(magic) !== toHex(MAGIC_BYTES)) throw new BadInputError('keySet.magic', `expected "${KEYSET_MAGIC}"`)
  const version = r.u8('version')
  if (version !== KEYSET_VERSION) throw new UnsupportedVersionError('keySet.version', version, String(KEYSET_VERSION))
  const clusterId = toHex(r.raw('clusterId', CLUSTER_ID_LEN))
  const epoch = r.u32('epoch')
  if (epoch < 1) throw new BadInputError('keySet.epoch', 'must be ≥ 1')
  const { k, n } = validateThreshold(r.u8('threshold'), r.u8('n'))
  const readKey = (name: string): GroupPublicKey => {
    const commitments: Point[] = []
    const verifyingShares: Point[] = []
    for (let j = 0; j < k; j++) commitments.push(decodePoint(`keySet.${name}.commitments[${j}]`, r.raw(`${name}.commitments`, POINT_LEN)))
    for (let i = 0; i < n; i++) verifyingShares.push(decodePoint(`keySet.${name}.verifyingShares[${i}]`, r.raw(`${name}.verifyingShares`, POINT_LEN)))
    return { commitments, verifyingShares }
  }
  const wrap = readKey('wrap')
  const sign = readKey('sign')
  r.end()
  checkVerifyingShares(wrap, 'keySet.wrap')
  checkVerifyingShares(sign, 'keySet.sign')
  return { version: 1, clusterId, epoch, threshold: k, n, wrap, sign }
}

/**
 * Key set id: lowercase hex of SHA-256( u32(len(Tag.KEYSET_ID)) ‖ Tag.KEYSET_ID ‖ encodeKeySet(ks) ).
 * Throws BadInputError when the key set is malformed.
 */
export function keySetId (ks: KeySet): string {
  const t = utf8(Tag.KEYSET_ID)
  return toHex(sha256(concat(u32(t.length), t, encodeKeySet(ks))))
}

/** The wrap public key X = wrap.commitments[0]. Throws BadInputError if the key set has no commitments. */
export function wrapKey (ks: KeySet): Point {
  const p = ks.wrap.commitments[0]
  if (p === undefined) throw new BadInputError('keySet.wrap.commitments', 'empty')
  return p
}

/** The sign public key S as a 32-byte Ed25519 public key (RFC 8032). Throws BadInputError if empty. */
export function signKey (ks: KeySet): Uint8Array {
  const p = ks.sign.commitments[0]
  if (p === undefined) throw new BadInputError('keySet.sign.commitments', 'empty')
  return encodePoint(p)
}

/** The JSON form of a group public key: lowercase hex points. */
export interface GroupPublicKeyJSON { commitments: string[]; verifyingShares: string[] }
/** The JSON form of a key set (status output, cluster files). */
export interface KeySetJSON {
  version: 1
  clusterId: string
  epoch: number
  threshold: number
  n: number
  wrap: GroupPublicKeyJSON
  sign: GroupPublicKeyJSON
}

/** JSON form with hex points. Throws BadInputError when the key set is malformed. */
export function keySetToJSON (ks: KeySet): KeySetJSON {
  assertShape(ks)
  const pk = (g: GroupPublicKey): GroupPublicKeyJSON => ({
    commitments: g.commitments.map(p => toHex(encodePoint(p))),
    verifyingShares: g.verifyingShares.map(p => toHex(encodePoint(p)))
  })
  return { version: 1, clusterId: ks.clusterId, epoch: ks.epoch, threshold: ks.threshold, n: ks.n, wrap: pk(ks.wrap), sign: pk(ks.sign) }
}

const JSON_KEYS = ['version', 'clusterId', 'epoch', 'threshold', 'n', 'wrap', 'sign']
const PK_KEYS = ['commitments', 'verifyingShares']

function exactKeys (field: string, o: unknown, keys: string[]): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new BadInputError(field, 'expected an object')
  const rec = o as Record<string, unknown>
  for (const key of Object.keys(rec)) if (!keys.includes(key)) throw new BadInputError(`${field}.${key}`, 'unknown field')
  for (const key of keys) if (!Object.hasOwn(rec, key)) throw new BadInputError(`${field}.${key}`, 'missing')
  return rec
}

/**
 * Parses and validates the JSON form with the same strictness as `decodeKeySet` (unknown fields
 * rejected, every point strict, verifying shares checked). Throws BadInputError or
 * UnsupportedVersionError.
 */
export function keySetFromJSON (j: unknown): KeySet {
  const o = exactKeys('keySet', j, JSON_KEYS)
  if (o.version !== KEYSET_VERSION) throw new UnsupportedVersionError('keySet.version', typeof o.version === 'number' ? o.version : String(o.version), String(KEYSET_VERSION))
  const clusterId = validateClusterId('keySet.clusterId', o.clusterId)
  const epoch = aint('keySet.epoch', o.epoch, 1, 0xffffffff)
  const { k, n } = validateThreshold(o.threshold, o.n)
  const readKey = (name: string): GroupPublicKey => {
    const g = exactKeys(`keySet.${name}`, o[name], PK_KEYS)
    const list = (f: string, len: number): Point[] => {
      const arr = g[f]
      if (!Array.isArray(arr) || arr.length !== len) throw new BadInputError(`keySet.${name}.${f}`, `expected ${len} points`)
      return arr.map((h, i) => decodePoint(`keySet.${name}.${f}[${i}]`, fromHex(`keySet.${name}.${f}[${i}]`, h, POINT_LEN)))
    }
    return { commitments: list('commitments', k), verifyingShares: list('verifyingShares', n) }
  }
  const wrap = readKey('wrap')
  const sign = readKey('sign')
  checkVerifyingShares(wrap, 'keySet.wrap')
  checkVerifyingShares(sign, 'keySet.sign')
  return { version: 1, clusterId, epoch, threshold: k, n, wrap, sign }
}
