/**
 * RPC frames between clients and nodes and between nodes (docs/PROTOCOL.md).
 *
 * One libp2p protocol id, one request per stream, each message one frame: an unsigned-varint
 * length prefix (lpStream of @libp2p/utils; the framing is done by the transport code in node/ and
 * client/, this module handles the frame payload) followed by a UTF-8 JSON object. Binary values
 * are unpadded base64url, digests lowercase hex. Unknown fields are rejected at every level, every
 * array and byte string has a cap, and a decoder never returns a partial result: it throws
 * BadInputError naming the field (e.g. `request.body.envelopes[3]`).
 *
 * Error responses carry only a stable code (protocol/errors.ts ErrorCode), never a message: a
 * peer learns what class of failure happened, not local details.
 *
 * Pure: no I/O, no timers.
 */
import { BadInputError, KeymeshError, UnsupportedVersionError, isErrorCode } from './errors.ts'
import type { ErrorCode } from './errors.ts'
import { aint, fromB64u, fromHex, fromUtf8, toB64u, toHex, utf8 } from './bytes.ts'
import { MAX_BATCH, MAX_NODES, MAX_RPC_MESSAGE } from './constants.ts'
import { aarray, aobj, astring, isPlainObject } from './json.ts'
import type { JsonObject } from './json.ts'

/** libp2p protocol id of the keymesh RPC. */
export const RPC_PROTOCOL = '/keymesh/rpc/1'
/** Frame format version (`v`). */
export const RPC_VERSION = 1
/** Largest `ttl` a request may carry, in milliseconds. */
export const MAX_RPC_TTL_MS = 60_000
/** Request id used in an error response when the request's own id could not be read. */
export const UNKNOWN_REQUEST_ID = '0000000000000000'

// Per-field caps (bytes after base64url decoding). Local to this module until they move to
// protocol/constants.ts (listed in the report as a wanted change).
/** An encoded envelope: label (≤ 6 fields × 128) + 3 × 32 + 48 + headers, with headroom. */
export const MAX_ENVELOPE_LEN = 4096
/** An encoded key set (MAX_KEYSET_LEN is 8219 for 64 nodes), with headroom. */
export const MAX_KEYSET_BYTES = 16 * 1024
/** One DKG package (round 1: k commitments + proof of knowledge; round 2: one share package). */
export const MAX_DKG_PACKAGE_LEN = 16 * 1024
/** One sealed partial (single or batch of MAX_BATCH points + proof + HPKE overhead). */
export const MAX_SEALED_LEN = 64 * 1024 + MAX_BATCH * 32
/** A FROST message to sign (a manifest's canonical bytes). */
export const MAX_SIGN_MESSAGE_LEN = 64 * 1024
/** An encoded FROST signing commitment or signature share. */
export const MAX_FROST_ITEM_LEN = 256
/** Human-readable strings in status (version, detail). */
export const MAX_STATUS_STRING = 256
/**
 * Live epochs one refresh covers at most (one dealing per epoch and key in `refresh.round1`; at
 * 64 nodes a dealing is ≤ 2024 bytes, so 256 epochs stay well inside MAX_RPC_MESSAGE).
 */
export const MAX_REFRESH_EPOCHS = 256
/** One encoded refresh dealing ("KMFD", protocol/refresh.ts MAX_REFRESH_DEALING_LEN = 2024). */
export const MAX_REFRESH_DEALING_BYTES = 2048
/** One refresh sub-share package ("KMFS", exactly 39 bytes). */
export const REFRESH_SUBSHARE_BYTES = 39

/** Every operation. */
export type RpcOp =
  | 'status' | 'keyset.get' | 'partial' | 'partial.batch' | 'frost.commit' | 'frost.sign'
  | 'dkg.round1' | 'dkg.echo' | 'dkg.round2' | 'dkg.result'
  | 'policy.get' | 'policy.push' | 'audit.read'
  | 'lifecycle.order' | 'dkg.order'
  | 'refresh.round1' | 'refresh.echo' | 'refresh.round2' | 'refresh.result'
  | 'cluster.get' | 'reshare.round1' | 'reshare.round2' | 'reshare.view' | 'reshare.result'
  | 'repair.open' | 'repair.piece' | 'repair.sum'

/** All operations, in a stable order. */
export const RPC_OPS: readonly RpcOp[] = ['status', 'keyset.get', 'partial', 'partial.batch', 'frost.commit', 'frost.sign', 'dkg.round1', 'dkg.echo', 'dkg.round2', 'dkg.result', 'policy.get', 'policy.push', 'audit.read', 'lifecycle.order', 'dkg.order', 'refresh.round1', 'refresh.echo', 'refresh.round2', 'refresh.result', 'cluster.get', 'reshare.round1', 'reshare.round2', 'reshare.view', 'reshare.result', 'repair.open', 'repair.piece', 'repair.sum']

/** Operations only cluster nodes may call (clients get NOT_AUTHORIZED). */
export const NODE_ONLY_OPS: ReadonlySet<RpcOp> = new Set<RpcOp>(['dkg.round1', 'dkg.echo', 'dkg.round2', 'dkg.result', 'dkg.order', 'refresh.round1', 'refresh.echo', 'refresh.round2', 'refresh.result', 'reshare.round1', 'reshare.round2', 'reshare.view', 'reshare.result', 'repair.open', 'repair.piece', 'repair.sum'])

/** True when `s` names an operation. */
export function isRpcOp (s: unknown): s is RpcOp {
  return typeof s === 'string' && (RPC_OPS as readonly string[]).includes(s)
}

/** DKG state reported by `status`. */
export type DkgState = 'idle' | 'running' | 'done' | 'failed'

/** Decoded request bodies (bytes, not base64url). */
export interface RequestBodies {
  status: Record<string, never>
  /** keySetId (64 lowercase hex): that generation of the epoch (NOT_FOUND if unknown); absent = the current one. */
  'keyset.get': { epoch?: number, keySetId?: string }
  /**
   * manifest: the cluster-signed release manifest JWS naming this envelope (required for deployers
   * when the policy has requireSignedRelease); approvals: admin approvals (JSON text each).
   */
  partial: { epoch: number, envelope: Uint8Array, recipient: Uint8Array, manifest?: string, approvals?: string[] }
  /** manifests: signed manifest JWSs, each envelope must be named by one of them (see `partial`). */
  'partial.batch': { epoch: number, envelopes: Uint8Array[], recipient: Uint8Array, manifests?: string[], approvals?: string[] }
  /** session: 32 lowercase hex chars chosen by the coordinating client. */
  'frost.commit': { epoch: number, session: string }
  /** keySetId: the generation the signing session uses (from frost.commit); CONFLICT when it is no longer current. */
  'frost.sign': { epoch: number, session: string, message: Uint8Array, commitments: Uint8Array[], keySetId?: string }
  /** session: `e<epoch>-a<attempt>`. */
  'dkg.round1': { session: string }
  'dkg.echo': { session: string }
  'dkg.round2': { session: string }
  'dkg.result': { session: string }
  /** have: the caller's policyVersion (0 = none); the document is returned only when newer. */
  'policy.get': { have: number }
  /** policy: a signed policy document (JSON text, protocol/policy.ts). */
  'policy.push': { policy: string }
  /** Records with seq ≥ from, at most limit. */
  'audit.read': { from: number, limit: number }
  /** order: a signed lifecycle order (canonical JSON text, protocol/order.ts); from an admin's client. */
  'lifecycle.order': { order: string }
  /** The same, relayed node to node (order spreading, docs/PROTOCOL.md). */
  'dkg.order': { order: string }
  /** session: `f<epoch>-<16 hex>` (refreshSessionId). */
  'refresh.round1': { session: string }
  'refresh.echo': { session: string }
  'refresh.round2': { session: string }
  'refresh.result': { session: string }
  /** have: the caller's membership revision (0 = none); the chain is returned only when newer. */
  'cluster.get': { have: number }
  /** session: `s<epoch>-<16 hex>` (reshareSessionId). */
  'reshare.round1': { session: string }
  'reshare.round2': { session: string }
  'reshare.view': { session: string }
  'reshare.result': { session: string }
  /**
   * Share repair (docs/PROTOCOL.md §10.6, §11.9): the calling member (target index = its index in
   * the callee's membership) asks helper `helpers` to repair its shares of the named current
   * generations. repair: 32 lowercase hex chosen by the target; helpers ascending, exactly k.
   */
  'repair.open': { repair: string, epochs: number[], keySetIds: string[], helpers: number[] }
  /** A helper fetches the pieces another helper dealt to it ("KMRP"). */
  'repair.piece': { repair: string }
  /** The target fetches a helper's sums ("KMRT"). */
  'repair.sum': { repair: string }
}

/** Decoded response bodies. */
export interface ResponseBodies {
  status: {
    version: string
    index: number
    peerId: string
    clusterId: string
    epoch: number | null
    keySetId: string | null
    uptimeMs: number
    dkg: { state: DkgState, detail?: string }
  }
  'keyset.get': { keySet: Uint8Array }
  /** keySetId: the generation (64 hex) whose share computed the partial. */
  partial: { sealed: Uint8Array, keySetId: string }
  'partial.batch': { sealed: Uint8Array, keySetId: string }
  /** keySetId: the generation this signing session is bound to (pass it back in frost.sign). */
  'frost.commit': { commitment: Uint8Array, keySetId: string }
  'frost.sign': { share: Uint8Array }
  'dkg.round1': { wrap: Uint8Array, sign: Uint8Array }
  /** Per-sender transcript digests (32 bytes each), in sender index order. */
  'dkg.echo': { wrap: Uint8Array[], sign: Uint8Array[] }
  'dkg.round2': { wrap: Uint8Array, sign: Uint8Array }
  'dkg.result': { keySetId: string }
  /** policyVersion 0 = no policy (bootstrap); head: this node's latest signed audit head. */
  'policy.get': { policyVersion: number, policy?: string, head?: AuditHeadJson }
  'policy.push': { policyVersion: number, accepted: boolean }
  /** records: audit record lines (canonical JSON); lastSeq: the node's last record. */
  'audit.read': { records: string[], lastSeq: number }
  /** accepted: the node holds the order (now or before); otherwise code + detail say why not. */
  'lifecycle.order': OrderReceipt
  'dkg.order': OrderReceipt
  /** The callee's refresh dealings ("KMFD"), one per live epoch (ascending), for each key. */
  'refresh.round1': { epochs: number[], wrap: Uint8Array[], sign: Uint8Array[] }
  /** 32-byte digest of every node's round-1 answer as the callee holds it, node index order 1..n. */
  'refresh.echo': { digests: Uint8Array[] }
  /** The sub-shares ("KMFS") the callee deals to the CALLER, one per epoch, in round-1 epoch order. */
  'refresh.round2': { wrap: Uint8Array[], sign: Uint8Array[] }
  /** 64 hex: SHA-256 over the new keySetIds of every refreshed epoch (docs/PROTOCOL.md §11.6). */
  'refresh.result': { digest: string }
  /** revision = 1 + number of committed reshare orders; orders (signed order texts, oldest first) only when revision > have. */
  'cluster.get': { revision: number, orders?: string[] }
  /** The callee's (an OLD member's) reshare dealings ("KMRD") per live epoch, with the base generation ids. */
  'reshare.round1': { epochs: number[], base: string[], wrap: Uint8Array[], sign: Uint8Array[] }
  /** The "KMRS" sub-shares the callee deals to the calling NEW member, one per epoch per key. */
  'reshare.round2': { wrap: Uint8Array[], sign: Uint8Array[] }
  /** A new member's fixed view: the old dealers it verified (ascending) and the digest of each one's round-1 answer. */
  'reshare.view': { dealers: number[], digests: Uint8Array[] }
  /** A new member's result digest (64 hex) and whether it committed. */
  /**
   * A new member's result digest (64 hex) and whether it committed; once committed, also the
   * reshared epochs and their new keySetIds (the digest's input: a late member checks them).
   */
  'reshare.result': { digest: string, committed: boolean, epochs?: number[], keySetIds?: string[] }
  'repair.open': { opened: boolean }
  /** The pieces the callee dealt to the calling helper, one per epoch per key. */
  'repair.piece': { wrap: Uint8Array[], sign: Uint8Array[] }
  /** The callee's sums for the calling target, one per epoch per key. */
  'repair.sum': { wrap: Uint8Array[], sign: Uint8Array[] }
}

/** Answer to a pushed lifecycle order (a refusal is an answer, so the admin sees the reason). */
export interface OrderReceipt { accepted: boolean, code?: ErrorCode, detail: string }

/** A signed audit chain head as carried in RPC (protocol/audit.ts SignedHead). */
export interface AuditHeadJson { node: string, seq: number, prev: string, time: string, sig: string }

/** A decoded request. */
export interface DecodedRequest<O extends RpcOp = RpcOp> { op: O, id: string, ttlMs: number, body: RequestBodies[O] }

// ---------------------------------------------------------------------------------------------
// JSON helpers (strict shapes)


const ID_RE = /^[0-9a-f]{16}$/
const FROST_SESSION_RE = /^[0-9a-f]{32}$/
const DKG_SESSION_RE = /^e([1-9][0-9]{0,9})-a(0|[1-9][0-9]{0,5})$/
const REFRESH_SESSION_RE = /^f([1-9][0-9]{0,9})-([0-9a-f]{16})$/
const RESHARE_SESSION_RE = /^s([1-9][0-9]{0,9})-([0-9a-f]{16})$/
const HEX64_RE = /^[0-9a-f]{64}$/
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{1,128}$/
const CLUSTER_ID_RE = /^[0-9a-f]{32}$/
const MAX_U32 = 0xffffffff

function b64 (field: string, v: unknown, max: number, exact?: number): Uint8Array {
  const b = fromB64u(field, v, max)
  if (exact !== undefined && b.length !== exact) throw new BadInputError(field, `expected ${exact} bytes, got ${b.length}`)
  if (b.length === 0) throw new BadInputError(field, 'empty')
  return b
}

function b64list (field: string, v: unknown, min: number, max: number, itemMax: number): Uint8Array[] {
  return aarray(field, v, min, max).map((x, i) => b64(`${field}[${i}]`, x, itemMax))
}

function epochOf (field: string, v: unknown): number { return aint(field, v, 1, MAX_U32) }

/** Validates a DKG session id `e<epoch>-a<attempt>`. Throws BadInputError(field). */
export function validateDkgSession (field: string, v: unknown): string {
  const s = astring(field, v, DKG_SESSION_RE, 'a DKG session "e<epoch>-a<attempt>"')
  const m = DKG_SESSION_RE.exec(s)
  if (m === null || Number(m[1]) > MAX_U32) throw new BadInputError(field, 'epoch out of range')
  return s
}

/** Parses a DKG session id into its epoch and attempt. Throws BadInputError('session'). */
export function parseDkgSession (s: string): { epoch: number, attempt: number } {
  validateDkgSession('session', s)
  const m = DKG_SESSION_RE.exec(s) as RegExpExecArray
  return { epoch: Number(m[1]), attempt: Number(m[2]) }
}

/** Formats a DKG session id. Throws BadInputError on out-of-range numbers. */
export function dkgSessionId (epoch: number, attempt: number): string {
  aint('epoch', epoch, 1, MAX_U32)
  aint('attempt', attempt, 0, 999_999)
  return `e${epoch}-a${attempt}`
}

/** Validates a refresh session id `f<epoch>-<16 lowercase hex>`. Throws BadInputError(field). */
export function validateRefreshSession (field: string, v: unknown): string {
  const s = astring(field, v, REFRESH_SESSION_RE, 'a refresh session "f<epoch>-<16 hex>"')
  const m = REFRESH_SESSION_RE.exec(s)
  if (m === null || Number(m[1]) > MAX_U32) throw new BadInputError(field, 'epoch out of range')
  return s
}

/**
 * The refresh session id of an order: `f<epoch>-<first 16 hex chars of the order nonce>`.
 * Throws BadInputError for an out-of-range epoch or a nonce that is not ≥ 16 lowercase hex chars.
 */
export function refreshSessionId (epoch: number, nonce: string): string {
  aint('epoch', epoch, 1, MAX_U32)
  if (typeof nonce !== 'string' || !/^[0-9a-f]{16}/.test(nonce)) throw new BadInputError('nonce', 'expected lowercase hex')
  return `f${epoch}-${nonce.slice(0, 16)}`
}

/** Parses a refresh session id into its epoch and nonce prefix. Throws BadInputError('session'). */
export function parseRefreshSession (s: string): { epoch: number, nonce16: string } {
  validateRefreshSession('session', s)
  const m = REFRESH_SESSION_RE.exec(s) as RegExpExecArray
  return { epoch: Number(m[1]), nonce16: m[2] as string }
}

/** Validates a reshare session id `s<epoch>-<16 lowercase hex>`. Throws BadInputError(field). */
export function validateReshareSession (field: string, v: unknown): string {
  const s = astring(field, v, RESHARE_SESSION_RE, 'a reshare session "s<epoch>-<16 hex>"')
  const m = RESHARE_SESSION_RE.exec(s)
  if (m === null || Number(m[1]) > MAX_U32) throw new BadInputError(field, 'epoch out of range')
  return s
}

/**
 * The reshare session id of an order: `s<epoch>-<first 16 hex chars of the order nonce>`.
 * Throws BadInputError for an out-of-range epoch or a nonce that is not ≥ 16 lowercase hex chars.
 */
export function reshareSessionId (epoch: number, nonce: string): string {
  aint('epoch', epoch, 1, MAX_U32)
  if (typeof nonce !== 'string' || !/^[0-9a-f]{16}/.test(nonce)) throw new BadInputError('nonce', 'expected lowercase hex')
  return `s${epoch}-${nonce.slice(0, 16)}`
}

/** Parses a reshare session id into its epoch and nonce prefix. Throws BadInputError('session'). */
export function parseReshareSession (s: string): { epoch: number, nonce16: string } {
  validateReshareSession('session', s)
  const m = RESHARE_SESSION_RE.exec(s) as RegExpExecArray
  return { epoch: Number(m[1]), nonce16: m[2] as string }
}

/** Most orders a `cluster.get` answer carries (protocol/membership.ts MAX_MEMBERSHIP_ORDERS). */
export const MAX_CLUSTER_ORDERS = 256
/** One encoded reshare dealing ("KMRD", protocol/reshare.ts MAX_RESHARE_DEALING_LEN = 2056). */
export const MAX_RESHARE_DEALING_BYTES = 2056
/** One reshare sub-share package ("KMRS", exactly 39 bytes). */
export const RESHARE_SUBSHARE_BYTES = 39

/** One share-repair message ("KMRP" piece or "KMRT" sum, protocol/repair.ts: exactly 39 bytes). */
export const REPAIR_MESSAGE_BYTES = 39
const REPAIR_ID_RE = /^[0-9a-f]{32}$/

function repairId (field: string, v: unknown): string { return astring(field, v, REPAIR_ID_RE, '32 lowercase hex characters') }

function repairOnly (f: string, b: unknown): { repair: string } {
  return { repair: repairId(`${f}.repair`, aobj(f, b, ['repair']).repair) }
}

function ascendingEpochs (f: string, v: unknown): number[] {
  const epochs = aarray(f, v, 1, MAX_REFRESH_EPOCHS).map((x, i) => epochOf(`${f}[${i}]`, x))
  for (let i = 1; i < epochs.length; i++) if ((epochs[i] as number) <= (epochs[i - 1] as number)) throw new BadInputError(`${f}[${i}]`, 'expected strictly ascending epochs')
  return epochs
}

function repairMessages (f: string, b: unknown): { wrap: Uint8Array[], sign: Uint8Array[] } {
  const o = aobj(f, b, ['wrap', 'sign'])
  const list = (k: 'wrap' | 'sign'): Uint8Array[] => aarray(`${f}.${k}`, o[k], 1, MAX_REFRESH_EPOCHS).map((x, i) => b64(`${f}.${k}[${i}]`, x, REPAIR_MESSAGE_BYTES, REPAIR_MESSAGE_BYTES))
  const wrap = list('wrap')
  const sign = list('sign')
  if (sign.length !== wrap.length) throw new BadInputError(`${f}.sign`, `expected ${wrap.length} messages (as many as wrap)`)
  return { wrap, sign }
}

function reshareSessionOnly (f: string, b: unknown): { session: string } {
  const o = aobj(f, b, ['session'])
  return { session: validateReshareSession(`${f}.session`, o.session) }
}

function frostSession (field: string, v: unknown): string { return astring(field, v, FROST_SESSION_RE, '32 lowercase hex characters') }

function hexDigest (field: string, v: unknown): Uint8Array {
  return fromHex(field, astring(field, v, HEX64_RE, '64 lowercase hex characters'), 32)
}

function statusString (field: string, v: unknown, allowEmpty: boolean): string {
  if (typeof v !== 'string' || v.length > MAX_STATUS_STRING || (!allowEmpty && v.length === 0)) {
    throw new BadInputError(field, `expected a string of ${allowEmpty ? 0 : 1}..${MAX_STATUS_STRING} characters`)
  }
  return v
}

function sessionOnly (f: string, b: unknown): { session: string } {
  const o = aobj(f, b, ['session'])
  return { session: validateDkgSession(`${f}.session`, o.session) }
}

function refreshSessionOnly (f: string, b: unknown): { session: string } {
  const o = aobj(f, b, ['session'])
  return { session: validateRefreshSession(`${f}.session`, o.session) }
}

function keySetIdField (field: string, v: unknown): string { return astring(field, v, HEX64_RE, '64 lowercase hex characters') }

/** Sealed partial + keySetId (partial, partial.batch responses). */
function sealedRes (f: string, b: unknown): { sealed: Uint8Array, keySetId: string } {
  const o = aobj(f, b, ['sealed', 'keySetId'])
  return { sealed: b64(`${f}.sealed`, o.sealed, MAX_SEALED_LEN), keySetId: keySetIdField(`${f}.keySetId`, o.keySetId) }
}

/** refresh.round1 response: epochs strictly ascending, one dealing per epoch per key. */
function refreshRound1Res (f: string, b: unknown): { epochs: number[], wrap: Uint8Array[], sign: Uint8Array[] } {
  const o = aobj(f, b, ['epochs', 'wrap', 'sign'])
  const epochs = aarray(`${f}.epochs`, o.epochs, 1, MAX_REFRESH_EPOCHS).map((x, i) => epochOf(`${f}.epochs[${i}]`, x))
  for (let i = 1; i < epochs.length; i++) if ((epochs[i] as number) <= (epochs[i - 1] as number)) throw new BadInputError(`${f}.epochs[${i}]`, 'expected strictly ascending epochs')
  const wrap = b64list(`${f}.wrap`, o.wrap, 1, MAX_REFRESH_EPOCHS, MAX_REFRESH_DEALING_BYTES)
  const sign = b64list(`${f}.sign`, o.sign, 1, MAX_REFRESH_EPOCHS, MAX_REFRESH_DEALING_BYTES)
  if (wrap.length !== epochs.length) throw new BadInputError(`${f}.wrap`, `expected ${epochs.length} dealings (one per epoch)`)
  if (sign.length !== epochs.length) throw new BadInputError(`${f}.sign`, `expected ${epochs.length} dealings (one per epoch)`)
  return { epochs, wrap, sign }
}

/** refresh.round2 response: equal-length lists of 39-byte sub-share packages. */
function refreshRound2Res (f: string, b: unknown): { wrap: Uint8Array[], sign: Uint8Array[] } {
  const o = aobj(f, b, ['wrap', 'sign'])
  const list = (k: 'wrap' | 'sign'): Uint8Array[] => aarray(`${f}.${k}`, o[k], 1, MAX_REFRESH_EPOCHS).map((x, i) => b64(`${f}.${k}[${i}]`, x, REFRESH_SUBSHARE_BYTES, REFRESH_SUBSHARE_BYTES))
  const wrap = list('wrap')
  const sign = list('sign')
  if (sign.length !== wrap.length) throw new BadInputError(`${f}.sign`, `expected ${wrap.length} sub-shares (as many as wrap)`)
  return { wrap, sign }
}

function wrapSign (f: string, b: unknown): { wrap: Uint8Array, sign: Uint8Array } {
  const o = aobj(f, b, ['wrap', 'sign'])
  return { wrap: b64(`${f}.wrap`, o.wrap, MAX_DKG_PACKAGE_LEN), sign: b64(`${f}.sign`, o.sign, MAX_DKG_PACKAGE_LEN) }
}

/** Caps of the policy/audit fields. */
export const MAX_POLICY_TEXT = 1024 * 1024
export const MAX_AUDIT_PAGE = 2000
export const MAX_AUDIT_RECORD_TEXT = 8192
export const MAX_APPROVALS = 64
export const MAX_APPROVAL_TEXT = 2048
/** One manifest per envelope at most (the frame cap bounds the total). */
export const MAX_BATCH_MANIFESTS = MAX_BATCH
/** A manifest JWS (protocol/jws.ts MAX_JWS_LEN is ~11 KiB). */
export const MAX_JWS_TEXT = 16 * 1024

function boundedText (field: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new BadInputError(field, `expected a string of 1..${max} characters`)
  return v
}

function jwsText (field: string, v: unknown): string {
  return astring(field, boundedText(field, v, MAX_JWS_TEXT), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWS')
}

function textList (field: string, v: unknown, max: number, itemMax: number): string[] {
  return aarray(field, v, 1, max).map((x, i) => boundedText(`${field}[${i}]`, x, itemMax))
}

function optManifest (b: { manifest?: string, approvals?: string[] }): JsonObject {
  return { ...(b.manifest !== undefined ? { manifest: b.manifest } : {}), ...(b.approvals !== undefined ? { approvals: b.approvals } : {}) }
}

function auditHead (f: string, v: unknown): AuditHeadJson {
  const o = aobj(f, v, ['node', 'seq', 'prev', 'time', 'sig'])
  return {
    node: astring(`${f}.node`, o.node, PEER_ID_RE, 'a base58btc PeerId'),
    seq: aint(`${f}.seq`, o.seq, 1, Number.MAX_SAFE_INTEGER),
    prev: astring(`${f}.prev`, o.prev, HEX64_RE, '64 lowercase hex characters'),
    time: astring(`${f}.time`, o.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, 'an RFC 3339 UTC time'),
    sig: astring(`${f}.sig`, o.sig, /^[A-Za-z0-9_-]{86}$/, 'a base64url Ed25519 signature')
  }
}

// ---------------------------------------------------------------------------------------------
// Per-operation schemas

interface Schema<O extends RpcOp> {
  decodeReq: (field: string, b: unknown) => RequestBodies[O]
  encodeReq: (b: RequestBodies[O]) => JsonObject
  decodeRes: (field: string, b: unknown) => ResponseBodies[O]
  encodeRes: (b: ResponseBodies[O]) => JsonObject
}
type Schemas = { [O in RpcOp]: Schema<O> }

/** Largest lifecycle order text (protocol/order.ts MAX_ORDER_LEN). */
export const MAX_ORDER_TEXT = 64 * 1024

function orderSchema<O extends 'lifecycle.order' | 'dkg.order'> (): Schema<O> {
  return {
    decodeReq: (f, b) => ({ order: boundedText(`${f}.order`, aobj(f, b, ['order']).order, MAX_ORDER_TEXT) }),
    encodeReq: (b) => ({ order: b.order }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['accepted', 'detail'], ['code'])
      if (typeof o.accepted !== 'boolean') throw new BadInputError(`${f}.accepted`, 'expected a boolean')
      if (o.code !== undefined && !isErrorCode(o.code)) throw new BadInputError(`${f}.code`, 'unknown error code')
      const detail = statusString(`${f}.detail`, o.detail, true)
      return { accepted: o.accepted, ...(o.code !== undefined ? { code: o.code as ErrorCode } : {}), detail }
    },
    encodeRes: (b) => ({ accepted: b.accepted, ...(b.code !== undefined ? { code: b.code } : {}), detail: b.detail.slice(0, MAX_STATUS_STRING) })
  }
}

const schemas: Schemas = {
  status: {
    decodeReq: (f, b) => { aobj(f, b, []); return {} },
    encodeReq: () => ({}),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['version', 'index', 'peerId', 'clusterId', 'epoch', 'keySetId', 'uptimeMs', 'dkg'])
      const d = aobj(`${f}.dkg`, o.dkg, ['state'], ['detail'])
      const state = d.state
      if (state !== 'idle' && state !== 'running' && state !== 'done' && state !== 'failed') throw new BadInputError(`${f}.dkg.state`, 'expected idle|running|done|failed')
      const dkg: { state: DkgState, detail?: string } = { state }
      if (d.detail !== undefined) dkg.detail = statusString(`${f}.dkg.detail`, d.detail, true)
      return {
        version: statusString(`${f}.version`, o.version, false),
        index: aint(`${f}.index`, o.index, 1, MAX_NODES),
        peerId: astring(`${f}.peerId`, o.peerId, PEER_ID_RE, 'a base58btc PeerId'),
        clusterId: astring(`${f}.clusterId`, o.clusterId, CLUSTER_ID_RE, '32 lowercase hex characters'),
        epoch: o.epoch === null ? null : epochOf(`${f}.epoch`, o.epoch),
        keySetId: o.keySetId === null ? null : astring(`${f}.keySetId`, o.keySetId, HEX64_RE, '64 lowercase hex characters'),
        uptimeMs: aint(`${f}.uptimeMs`, o.uptimeMs, 0, Number.MAX_SAFE_INTEGER),
        dkg
      }
    },
    encodeRes: (b) => ({
      version: b.version,
      index: b.index,
      peerId: b.peerId,
      clusterId: b.clusterId,
      epoch: b.epoch,
      keySetId: b.keySetId,
      uptimeMs: b.uptimeMs,
      dkg: b.dkg.detail === undefined ? { state: b.dkg.state } : { state: b.dkg.state, detail: b.dkg.detail }
    })
  },
  'keyset.get': {
    decodeReq: (f, b) => {
      const o = aobj(f, b, [], ['epoch', 'keySetId'])
      return {
        ...(o.epoch === undefined ? {} : { epoch: epochOf(`${f}.epoch`, o.epoch) }),
        ...(o.keySetId === undefined ? {} : { keySetId: keySetIdField(`${f}.keySetId`, o.keySetId) })
      }
    },
    encodeReq: (b) => ({ ...(b.epoch === undefined ? {} : { epoch: b.epoch }), ...(b.keySetId === undefined ? {} : { keySetId: b.keySetId }) }),
    decodeRes: (f, b) => ({ keySet: b64(`${f}.keySet`, aobj(f, b, ['keySet']).keySet, MAX_KEYSET_BYTES) }),
    encodeRes: (b) => ({ keySet: toB64u(b.keySet) })
  },
  partial: {
    decodeReq: (f, b) => {
      const o = aobj(f, b, ['epoch', 'envelope', 'recipient'], ['manifest', 'approvals'])
      return {
        epoch: epochOf(`${f}.epoch`, o.epoch),
        envelope: b64(`${f}.envelope`, o.envelope, MAX_ENVELOPE_LEN),
        recipient: b64(`${f}.recipient`, o.recipient, 32, 32),
        ...(o.manifest !== undefined ? { manifest: jwsText(`${f}.manifest`, o.manifest) } : {}),
        ...(o.approvals !== undefined ? { approvals: textList(`${f}.approvals`, o.approvals, MAX_APPROVALS, MAX_APPROVAL_TEXT) } : {})
      }
    },
    encodeReq: (b) => ({ epoch: b.epoch, envelope: toB64u(b.envelope), recipient: toB64u(b.recipient), ...optManifest(b) }),
    decodeRes: sealedRes,
    encodeRes: (b) => ({ sealed: toB64u(b.sealed), keySetId: b.keySetId })
  },
  'partial.batch': {
    decodeReq: (f, b) => {
      const o = aobj(f, b, ['epoch', 'envelopes', 'recipient'], ['manifests', 'approvals'])
      return {
        epoch: epochOf(`${f}.epoch`, o.epoch),
        envelopes: b64list(`${f}.envelopes`, o.envelopes, 1, MAX_BATCH, MAX_ENVELOPE_LEN),
        recipient: b64(`${f}.recipient`, o.recipient, 32, 32),
        ...(o.manifests !== undefined ? { manifests: aarray(`${f}.manifests`, o.manifests, 1, MAX_BATCH_MANIFESTS).map((x, i) => jwsText(`${f}.manifests[${i}]`, x)) } : {}),
        ...(o.approvals !== undefined ? { approvals: textList(`${f}.approvals`, o.approvals, MAX_APPROVALS, MAX_APPROVAL_TEXT) } : {})
      }
    },
    encodeReq: (b) => ({
      epoch: b.epoch,
      envelopes: b.envelopes.map(toB64u),
      recipient: toB64u(b.recipient),
      ...(b.manifests !== undefined ? { manifests: b.manifests } : {}),
      ...(b.approvals !== undefined ? { approvals: b.approvals } : {})
    }),
    decodeRes: sealedRes,
    encodeRes: (b) => ({ sealed: toB64u(b.sealed), keySetId: b.keySetId })
  },
  'frost.commit': {
    decodeReq: (f, b) => {
      const o = aobj(f, b, ['epoch', 'session'])
      return { epoch: epochOf(`${f}.epoch`, o.epoch), session: frostSession(`${f}.session`, o.session) }
    },
    encodeReq: (b) => ({ epoch: b.epoch, session: b.session }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['commitment', 'keySetId'])
      return { commitment: b64(`${f}.commitment`, o.commitment, MAX_FROST_ITEM_LEN), keySetId: keySetIdField(`${f}.keySetId`, o.keySetId) }
    },
    encodeRes: (b) => ({ commitment: toB64u(b.commitment), keySetId: b.keySetId })
  },
  'frost.sign': {
    decodeReq: (f, b) => {
      const o = aobj(f, b, ['epoch', 'session', 'message', 'commitments'], ['keySetId'])
      return {
        epoch: epochOf(`${f}.epoch`, o.epoch),
        session: frostSession(`${f}.session`, o.session),
        message: b64(`${f}.message`, o.message, MAX_SIGN_MESSAGE_LEN),
        commitments: b64list(`${f}.commitments`, o.commitments, 1, MAX_NODES, MAX_FROST_ITEM_LEN),
        ...(o.keySetId === undefined ? {} : { keySetId: keySetIdField(`${f}.keySetId`, o.keySetId) })
      }
    },
    encodeReq: (b) => ({ epoch: b.epoch, session: b.session, message: toB64u(b.message), commitments: b.commitments.map(toB64u), ...(b.keySetId === undefined ? {} : { keySetId: b.keySetId }) }),
    decodeRes: (f, b) => ({ share: b64(`${f}.share`, aobj(f, b, ['share']).share, MAX_FROST_ITEM_LEN) }),
    encodeRes: (b) => ({ share: toB64u(b.share) })
  },
  'dkg.round1': {
    decodeReq: sessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: wrapSign,
    encodeRes: (b) => ({ wrap: toB64u(b.wrap), sign: toB64u(b.sign) })
  },
  'dkg.echo': {
    decodeReq: sessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['wrap', 'sign'])
      return {
        wrap: aarray(`${f}.wrap`, o.wrap, 1, MAX_NODES).map((x, i) => hexDigest(`${f}.wrap[${i}]`, x)),
        sign: aarray(`${f}.sign`, o.sign, 1, MAX_NODES).map((x, i) => hexDigest(`${f}.sign[${i}]`, x))
      }
    },
    encodeRes: (b) => ({ wrap: b.wrap.map(toHex), sign: b.sign.map(toHex) })
  },
  'dkg.round2': {
    decodeReq: sessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: wrapSign,
    encodeRes: (b) => ({ wrap: toB64u(b.wrap), sign: toB64u(b.sign) })
  },
  'dkg.result': {
    decodeReq: sessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => ({ keySetId: astring(`${f}.keySetId`, aobj(f, b, ['keySetId']).keySetId, HEX64_RE, '64 lowercase hex characters') }),
    encodeRes: (b) => ({ keySetId: b.keySetId })
  },
  'policy.get': {
    decodeReq: (f, b) => ({ have: aint(`${f}.have`, aobj(f, b, ['have']).have, 0, Number.MAX_SAFE_INTEGER) }),
    encodeReq: (b) => ({ have: b.have }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['policyVersion'], ['policy', 'head'])
      return {
        policyVersion: aint(`${f}.policyVersion`, o.policyVersion, 0, Number.MAX_SAFE_INTEGER),
        ...(o.policy !== undefined ? { policy: boundedText(`${f}.policy`, o.policy, MAX_POLICY_TEXT) } : {}),
        ...(o.head !== undefined ? { head: auditHead(`${f}.head`, o.head) } : {})
      }
    },
    encodeRes: (b) => ({ policyVersion: b.policyVersion, ...(b.policy !== undefined ? { policy: b.policy } : {}), ...(b.head !== undefined ? { head: b.head } : {}) })
  },
  'policy.push': {
    decodeReq: (f, b) => ({ policy: boundedText(`${f}.policy`, aobj(f, b, ['policy']).policy, MAX_POLICY_TEXT) }),
    encodeReq: (b) => ({ policy: b.policy }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['policyVersion', 'accepted'])
      if (typeof o.accepted !== 'boolean') throw new BadInputError(`${f}.accepted`, 'expected a boolean')
      return { policyVersion: aint(`${f}.policyVersion`, o.policyVersion, 0, Number.MAX_SAFE_INTEGER), accepted: o.accepted }
    },
    encodeRes: (b) => ({ policyVersion: b.policyVersion, accepted: b.accepted })
  },
  'audit.read': {
    decodeReq: (f, b) => {
      const o = aobj(f, b, ['from', 'limit'])
      return { from: aint(`${f}.from`, o.from, 1, Number.MAX_SAFE_INTEGER), limit: aint(`${f}.limit`, o.limit, 1, MAX_AUDIT_PAGE) }
    },
    encodeReq: (b) => ({ from: b.from, limit: b.limit }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['records', 'lastSeq'])
      return {
        records: aarray(`${f}.records`, o.records, 0, MAX_AUDIT_PAGE).map((x, i) => boundedText(`${f}.records[${i}]`, x, MAX_AUDIT_RECORD_TEXT)),
        lastSeq: aint(`${f}.lastSeq`, o.lastSeq, 0, Number.MAX_SAFE_INTEGER)
      }
    },
    encodeRes: (b) => ({ records: b.records, lastSeq: b.lastSeq })
  },
  'lifecycle.order': orderSchema<'lifecycle.order'>(),
  'dkg.order': orderSchema<'dkg.order'>(),
  'refresh.round1': {
    decodeReq: refreshSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: refreshRound1Res,
    encodeRes: (b) => ({ epochs: b.epochs, wrap: b.wrap.map(toB64u), sign: b.sign.map(toB64u) })
  },
  'refresh.echo': {
    decodeReq: refreshSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => ({ digests: aarray(`${f}.digests`, aobj(f, b, ['digests']).digests, 2, MAX_NODES).map((x, i) => hexDigest(`${f}.digests[${i}]`, x)) }),
    encodeRes: (b) => ({ digests: b.digests.map(toHex) })
  },
  'refresh.round2': {
    decodeReq: refreshSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: refreshRound2Res,
    encodeRes: (b) => ({ wrap: b.wrap.map(toB64u), sign: b.sign.map(toB64u) })
  },
  'cluster.get': {
    decodeReq: (f, b) => ({ have: aint(`${f}.have`, aobj(f, b, ['have']).have, 0, Number.MAX_SAFE_INTEGER) }),
    encodeReq: (b) => ({ have: b.have }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['revision'], ['orders'])
      const revision = aint(`${f}.revision`, o.revision, 1, MAX_CLUSTER_ORDERS + 1)
      if (o.orders === undefined) return { revision }
      const orders = aarray(`${f}.orders`, o.orders, revision - 1, revision - 1).map((x, i) => boundedText(`${f}.orders[${i}]`, x, MAX_ORDER_TEXT))
      return { revision, orders }
    },
    encodeRes: (b) => ({ revision: b.revision, ...(b.orders !== undefined ? { orders: b.orders } : {}) })
  },
  'reshare.round1': {
    decodeReq: reshareSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['epochs', 'base', 'wrap', 'sign'])
      const epochs = aarray(`${f}.epochs`, o.epochs, 1, MAX_REFRESH_EPOCHS).map((x, i) => epochOf(`${f}.epochs[${i}]`, x))
      for (let i = 1; i < epochs.length; i++) if ((epochs[i] as number) <= (epochs[i - 1] as number)) throw new BadInputError(`${f}.epochs[${i}]`, 'expected strictly ascending epochs')
      const base = aarray(`${f}.base`, o.base, epochs.length, epochs.length).map((x, i) => keySetIdField(`${f}.base[${i}]`, x))
      const wrap = b64list(`${f}.wrap`, o.wrap, epochs.length, epochs.length, MAX_RESHARE_DEALING_BYTES)
      const sign = b64list(`${f}.sign`, o.sign, epochs.length, epochs.length, MAX_RESHARE_DEALING_BYTES)
      return { epochs, base, wrap, sign }
    },
    encodeRes: (b) => ({ epochs: b.epochs, base: b.base, wrap: b.wrap.map(toB64u), sign: b.sign.map(toB64u) })
  },
  'reshare.round2': {
    decodeReq: reshareSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['wrap', 'sign'])
      const list = (k: 'wrap' | 'sign'): Uint8Array[] => aarray(`${f}.${k}`, o[k], 1, MAX_REFRESH_EPOCHS).map((x, i) => b64(`${f}.${k}[${i}]`, x, RESHARE_SUBSHARE_BYTES, RESHARE_SUBSHARE_BYTES))
      const wrap = list('wrap')
      const sign = list('sign')
      if (sign.length !== wrap.length) throw new BadInputError(`${f}.sign`, `expected ${wrap.length} sub-shares (as many as wrap)`)
      return { wrap, sign }
    },
    encodeRes: (b) => ({ wrap: b.wrap.map(toB64u), sign: b.sign.map(toB64u) })
  },
  'reshare.view': {
    decodeReq: reshareSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['dealers', 'digests'])
      const dealers = aarray(`${f}.dealers`, o.dealers, 1, MAX_NODES).map((x, i) => aint(`${f}.dealers[${i}]`, x, 1, MAX_NODES))
      for (let i = 1; i < dealers.length; i++) if ((dealers[i] as number) <= (dealers[i - 1] as number)) throw new BadInputError(`${f}.dealers[${i}]`, 'expected strictly ascending indices')
      const digests = aarray(`${f}.digests`, o.digests, dealers.length, dealers.length).map((x, i) => hexDigest(`${f}.digests[${i}]`, x))
      return { dealers, digests }
    },
    encodeRes: (b) => ({ dealers: b.dealers, digests: b.digests.map(toHex) })
  },
  'reshare.result': {
    decodeReq: reshareSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['digest', 'committed'], ['epochs', 'keySetIds'])
      if (typeof o.committed !== 'boolean') throw new BadInputError(`${f}.committed`, 'expected a boolean')
      const digest = keySetIdField(`${f}.digest`, o.digest)
      if (o.epochs === undefined && o.keySetIds === undefined) return { digest, committed: o.committed }
      const epochs = ascendingEpochs(`${f}.epochs`, o.epochs)
      const keySetIds = aarray(`${f}.keySetIds`, o.keySetIds, epochs.length, epochs.length).map((x, i) => keySetIdField(`${f}.keySetIds[${i}]`, x))
      return { digest, committed: o.committed, epochs, keySetIds }
    },
    encodeRes: (b) => ({ digest: b.digest, committed: b.committed, ...(b.epochs !== undefined ? { epochs: b.epochs, keySetIds: b.keySetIds ?? [] } : {}) })
  },
  'repair.open': {
    decodeReq: (f, b) => {
      const o = aobj(f, b, ['repair', 'epochs', 'keySetIds', 'helpers'])
      const epochs = ascendingEpochs(`${f}.epochs`, o.epochs)
      const keySetIds = aarray(`${f}.keySetIds`, o.keySetIds, epochs.length, epochs.length).map((x, i) => keySetIdField(`${f}.keySetIds[${i}]`, x))
      const helpers = aarray(`${f}.helpers`, o.helpers, 2, MAX_NODES).map((x, i) => aint(`${f}.helpers[${i}]`, x, 1, MAX_NODES))
      for (let i = 1; i < helpers.length; i++) if ((helpers[i] as number) <= (helpers[i - 1] as number)) throw new BadInputError(`${f}.helpers[${i}]`, 'expected strictly ascending indices')
      return { repair: repairId(`${f}.repair`, o.repair), epochs, keySetIds, helpers }
    },
    encodeReq: (b) => ({ repair: b.repair, epochs: b.epochs, keySetIds: b.keySetIds, helpers: b.helpers }),
    decodeRes: (f, b) => {
      const o = aobj(f, b, ['opened'])
      if (typeof o.opened !== 'boolean') throw new BadInputError(`${f}.opened`, 'expected a boolean')
      return { opened: o.opened }
    },
    encodeRes: (b) => ({ opened: b.opened })
  },
  'repair.piece': {
    decodeReq: repairOnly,
    encodeReq: (b) => ({ repair: b.repair }),
    decodeRes: repairMessages,
    encodeRes: (b) => ({ wrap: b.wrap.map(toB64u), sign: b.sign.map(toB64u) })
  },
  'repair.sum': {
    decodeReq: repairOnly,
    encodeReq: (b) => ({ repair: b.repair }),
    decodeRes: repairMessages,
    encodeRes: (b) => ({ wrap: b.wrap.map(toB64u), sign: b.sign.map(toB64u) })
  },
  'refresh.result': {
    decodeReq: refreshSessionOnly,
    encodeReq: (b) => ({ session: b.session }),
    decodeRes: (f, b) => ({ digest: keySetIdField(`${f}.digest`, aobj(f, b, ['digest']).digest) }),
    encodeRes: (b) => ({ digest: b.digest })
  }
}


// ---------------------------------------------------------------------------------------------
// Frame codec

function parseFrame (field: string, b: Uint8Array): unknown {
  if (!(b instanceof Uint8Array)) throw new BadInputError(field, 'expected bytes')
  if (b.length > MAX_RPC_MESSAGE) throw new BadInputError(field, `frame of ${b.length} bytes exceeds ${MAX_RPC_MESSAGE}`)
  const text = fromUtf8(field, b)
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new BadInputError(field, 'invalid JSON')
  }
}

function serialize (field: string, v: JsonObject): Uint8Array {
  const out = utf8(JSON.stringify(v))
  if (out.length > MAX_RPC_MESSAGE) throw new BadInputError(field, `encoded frame of ${out.length} bytes exceeds ${MAX_RPC_MESSAGE}`)
  return out
}

function checkVersion (field: string, v: unknown): void {
  if (v === RPC_VERSION) return
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) throw new UnsupportedVersionError(field, v, String(RPC_VERSION))
  throw new BadInputError(field, `expected ${RPC_VERSION}`)
}

/** Validates a request id (16 lowercase hex). Throws BadInputError(field). */
export function validateRequestId (field: string, v: unknown): string { return astring(field, v, ID_RE, '16 lowercase hex characters') }

/**
 * Encodes a request frame payload (without the length prefix). Validates the body by decoding the
 * encoded form again, so a malformed body can never leave this process.
 * Throws BadInputError (bad id, ttl, body, or frame over MAX_RPC_MESSAGE).
 */
export function encodeRequest<O extends RpcOp> (op: O, body: RequestBodies[O], id: string, ttlMs: number): Uint8Array {
  if (!isRpcOp(op)) throw new BadInputError('request.op', 'unknown operation')
  validateRequestId('request.id', id)
  aint('request.ttl', ttlMs, 1, MAX_RPC_TTL_MS)
  const s = schemas[op] as Schema<O>
  const jb = s.encodeReq(body)
  s.decodeReq('request.body', jb)
  return serialize('request', { v: RPC_VERSION, op, id, ttl: ttlMs, body: jb })
}

/**
 * Decodes a request frame payload. Strict: unknown fields, wrong types, oversize values, unknown
 * operations are all rejected. Throws BadInputError naming the field, or UnsupportedVersionError
 * for a well-formed frame of another version.
 */
export function decodeRequest (b: Uint8Array): DecodedRequest {
  const o = aobj('request', parseFrame('request', b), ['v', 'op', 'id', 'ttl', 'body'])
  checkVersion('request.v', o.v)
  const id = validateRequestId('request.id', o.id)
  if (!isRpcOp(o.op)) throw new BadInputError('request.op', 'unknown operation')
  const op: RpcOp = o.op
  const ttlMs = aint('request.ttl', o.ttl, 1, MAX_RPC_TTL_MS)
  const body = (schemas[op] as Schema<RpcOp>).decodeReq('request.body', o.body)
  return { op, id, ttlMs, body }
}

/**
 * Best-effort extraction of the request id from a frame that failed to decode, so the error
 * response can echo it. Returns UNKNOWN_REQUEST_ID when there is none. Never throws.
 */
export function peekRequestId (b: Uint8Array): string {
  try {
    const v = JSON.parse(fromUtf8('request', b)) as unknown
    if (isPlainObject(v) && typeof v.id === 'string' && ID_RE.test(v.id)) return v.id
  } catch { /* fall through */ }
  return UNKNOWN_REQUEST_ID
}

/** Encodes a success response. Throws BadInputError when the body does not match the schema. */
export function encodeResponse<O extends RpcOp> (op: O, id: string, body: ResponseBodies[O]): Uint8Array {
  if (!isRpcOp(op)) throw new BadInputError('response.op', 'unknown operation')
  validateRequestId('response.id', id)
  const s = schemas[op] as Schema<O>
  const jb = s.encodeRes(body)
  s.decodeRes('response.body', jb)
  return serialize('response', { v: RPC_VERSION, id, ok: true, body: jb })
}

/** Encodes an error response carrying only the code. Throws BadInputError on a bad id or code. */
export function encodeErrorResponse (id: string, code: ErrorCode): Uint8Array {
  validateRequestId('response.id', id)
  if (!isErrorCode(code)) throw new BadInputError('response.error.code', 'unknown error code')
  return serialize('response', { v: RPC_VERSION, id, ok: false, error: { code } })
}

/** The error a caller sees when a peer answered with an error response. */
export class RemoteError extends KeymeshError {
  constructor (code: ErrorCode, op: RpcOp) {
    super(code, `peer answered ${op} with ${code}`)
  }
}

/**
 * Decodes a response to a request of operation `op` with id `id`. Success → the typed body.
 * An error response → throws RemoteError (a KeymeshError with the peer's code). A malformed frame,
 * a mismatched id or an unknown error code → BadInputError naming the field.
 */
export function decodeResponse<O extends RpcOp> (op: O, id: string, b: Uint8Array): ResponseBodies[O] {
  const raw = parseFrame('response', b)
  if (!isPlainObject(raw)) throw new BadInputError('response', 'expected a JSON object')
  if (raw.ok === false) {
    const o = aobj('response', raw, ['v', 'id', 'ok', 'error'])
    checkVersion('response.v', o.v)
    if (validateRequestId('response.id', o.id) !== id) throw new BadInputError('response.id', 'does not match the request')
    const e = aobj('response.error', o.error, ['code'])
    if (!isErrorCode(e.code)) throw new BadInputError('response.error.code', 'unknown error code')
    throw new RemoteError(e.code, op)
  }
  const o = aobj('response', raw, ['v', 'id', 'ok', 'body'])
  checkVersion('response.v', o.v)
  if (o.ok !== true) throw new BadInputError('response.ok', 'expected a boolean')
  if (validateRequestId('response.id', o.id) !== id) throw new BadInputError('response.id', 'does not match the request')
  if (!isRpcOp(op)) throw new BadInputError('response.op', 'unknown operation')
  return (schemas[op] as Schema<O>).decodeRes('response.body', o.body)
}

/** Decodes a response body of `op` from its JSON form (for tests and tooling). Throws BadInputError. */
export function decodeResponseBody<O extends RpcOp> (op: O, body: unknown): ResponseBodies[O] {
  return (schemas[op] as Schema<O>).decodeRes('response.body', body)
}
