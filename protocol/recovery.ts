/**
 * Offline recovery kit (docs/PROTOCOL.md §10.4): one node's share of one key (wrap or
 * sign) split t-of-m with `shamir-secret-sharing` (GF(2^8), byte-wise) and each piece HPKE-sealed
 * (RFC 9180 base mode, hpke.ts) to one offline custodian's X25519 key. If every server of a cluster
 * is destroyed, t custodians per node (for k nodes) rebuild k shares of the SAME keys.
 *
 * What binds what:
 *   - The kit header (public, identical in every piece) names cluster id, epoch, node index, key
 *     kind, t, the m custodians (name, X25519 key, SHA-256 hash of their Shamir piece) and a random
 *     16-byte kit nonce. Its digest `kitDigest` = SHA-256(Tag ‖ header) identifies the kit.
 *   - Each piece's HPKE `info` carries (cluster id, epoch, node index, key kind, custodian index,
 *     t, m, kitDigest): a sealed piece opens only as the piece it was made for (RFC 9180 §5.1 key
 *     schedule binds info), so an edited header, a swapped custodian index or a piece of another
 *     kit fails AEAD.
 *   - The piece hashes let `recoveryRestore` name a custodian whose opened piece was altered, and
 *     the restored share is checked against the key set's verifying share (x_i·B = X_i) before use.
 *
 * Fewer than t pieces reveal nothing about the share (Shamir over GF(2^8), threshold t) and are
 * refused before any arithmetic. The piece hashes reveal nothing beyond what X_i already does: both
 * only let an attacker test a full guess of the 252-bit share.
 *
 * Secrets: the share (the node's store), the serialized share package (local to export/restore,
 * zeroed), each Shamir piece (inside the HPKE ciphertext; after `openRecoveryPiece` owned by the
 * custodian / restorer, who should zero `OpenedRecoveryPiece.share` when done). Custodian X25519
 * secret keys are owned by the custodians and never enter keymesh except in `openRecoveryPiece`.
 */
import { combine as shamirCombine, split as shamirSplit } from 'shamir-secret-sharing'
import { sha256 } from '@noble/hashes/sha2.js'
import { randomBytes } from 'node:crypto'
import { BadInputError, UnsupportedVersionError, VerificationError } from './errors.ts'
import { Reader, Writer, aint, abytes, concat, equalBytes, fromHex, fromUtf8, toHex, u32, utf8 } from './bytes.ts'
import { CLUSTER_ID_LEN, MAX_NODES, RECIPIENT_KEY_LEN, SCALAR_LEN, SHA256_LEN, Tag } from './constants.ts'
import { L, decodeScalar, encodeScalar, group } from './group.ts'
import type { Point } from './group.ts'
import { validateClusterId } from './keyset.ts'
import type { KeyShare } from './keyset.ts'
import { HPKE_ENC_LEN, hpkeOpen, hpkeSeal, hpkeSealWithEphemeral, recipientPublicKey } from './hpke.ts'

/** Domain-separation tags (protocol/constants.ts Tag.RECOVERY_*), under their local names. */
export const RecoveryTag = {
  KIT: Tag.RECOVERY_KIT,
  PIECE: Tag.RECOVERY_PIECE,
  SHARE: Tag.RECOVERY_SHARE
} as const

/** Format version of every recovery-kit encoding. */
export const RECOVERY_VERSION = 1
/** Sealed piece (public): "KMRP". */
export const RECOVERY_PIECE_MAGIC = 'KMRP'
/** Opened piece (SECRET): "KMRO". */
export const RECOVERY_OPENED_MAGIC = 'KMRO'
/** Serialized share package that is split (SECRET, never stored whole): "KMRK". */
export const RECOVERY_SECRET_MAGIC = 'KMRK'
/** Serialized share package: magic ‖ version ‖ clusterId ‖ u32 epoch ‖ u8 node ‖ u8 kind ‖ scalar. */
export const RECOVERY_SECRET_LEN = 4 + 1 + CLUSTER_ID_LEN + 4 + 1 + 1 + SCALAR_LEN
/** One Shamir piece: the secret's bytes evaluated at x ‖ the x coordinate (shamir-secret-sharing layout). */
export const RECOVERY_SHARE_LEN = RECOVERY_SECRET_LEN + 1
/** HPKE ciphertext of one Shamir piece (AES-256-GCM tag included). */
export const RECOVERY_CIPHERTEXT_LEN = RECOVERY_SHARE_LEN + 16
/** Bounds of m and t (shamir-secret-sharing allows up to 255; 64 keeps pieces small). */
export const MAX_CUSTODIANS = 64
export const MIN_RECOVERY_THRESHOLD = 2
/** Random kit nonce length. */
export const RECOVERY_NONCE_LEN = 16
/** Custodian names: printable, no spaces, 1..64 characters. */
export const CUSTODIAN_NAME_PATTERN = /^[A-Za-z0-9._@+-]{1,64}$/
/** Armor delimiters. */
export const RECOVERY_ARMOR_BEGIN = '-----BEGIN KEYMESH RECOVERY PIECE-----'
export const RECOVERY_ARMOR_END = '-----END KEYMESH RECOVERY PIECE-----'
const ARMOR_LINE = 64
/** Largest encoded piece: header with MAX_CUSTODIANS entries of the longest name. */
export const MAX_RECOVERY_PIECE_LEN = 4 + 1 + CLUSTER_ID_LEN + 4 + 4 + RECOVERY_NONCE_LEN + MAX_CUSTODIANS * (1 + 64 + RECIPIENT_KEY_LEN + SHA256_LEN) + 1 + HPKE_ENC_LEN + RECOVERY_CIPHERTEXT_LEN

const MP = utf8(RECOVERY_PIECE_MAGIC)
const MO = utf8(RECOVERY_OPENED_MAGIC)
const MK = utf8(RECOVERY_SECRET_MAGIC)

/** Which key of the epoch a kit holds a share of. */
export type KeyKind = 'wrap' | 'sign'
const KIND_CODE: Record<KeyKind, number> = { wrap: 1, sign: 2 }
function kindFromCode (field: string, c: number): KeyKind {
  if (c === 1) return 'wrap'
  if (c === 2) return 'sign'
  throw new BadInputError(field, 'expected key kind 1 (wrap) or 2 (sign)')
}

/** Which share a kit holds. */
export interface RecoveryContext {
  clusterId: string
  epoch: number
  nodeIndex: number
  keyKind: KeyKind
}

/** An offline custodian: a name for humans and an X25519 public key (32 bytes). */
export interface Custodian { name: string; publicKey: Uint8Array }

/** Public kit header, identical in every piece of one kit. */
export interface RecoveryKit extends RecoveryContext {
  /** t: pieces needed. */
  threshold: number
  /** The m custodians in piece order (custodian index = position + 1) and the hash of each piece. */
  custodians: Array<Custodian & { pieceHash: Uint8Array }>
  /** 16 random bytes: two exports of the same share are different kits whose pieces never mix. */
  nonce: Uint8Array
}

/** One sealed piece as a custodian keeps it (public; only its custodian can open it). */
export interface RecoveryPiece {
  version: 1
  kit: RecoveryKit
  /** 1..m */
  custodianIndex: number
  /** HPKE encapsulated key (32 bytes). */
  enc: Uint8Array
  /** HPKE ciphertext of the Shamir piece (RECOVERY_CIPHERTEXT_LEN bytes). */
  ciphertext: Uint8Array
}

/** A piece after its custodian opened it. SECRET: `share` is a Shamir piece of the node's share. */
export interface OpenedRecoveryPiece {
  kit: RecoveryKit
  custodianIndex: number
  /** RECOVERY_SHARE_LEN bytes; the holder zeroes it when done. */
  share: Uint8Array
}

/** Test-only randomness for known-answer vectors. */
export interface RecoveryRandomness {
  nonce: Uint8Array
  /** One X25519 ephemeral secret per custodian. */
  ephemeral: Uint8Array[]
  /** A deterministic drop-in for shamir-secret-sharing's split (same output layout). */
  split: (secret: Uint8Array, m: number, t: number) => Promise<Uint8Array[]>
}

// ---------------------------------------------------------------------------------------------
// Validation and encodings

function validateContext (field: string, c: RecoveryContext): RecoveryContext {
  if (typeof c !== 'object' || c === null) throw new BadInputError(field, 'expected an object')
  validateClusterId(`${field}.clusterId`, c.clusterId)
  aint(`${field}.epoch`, c.epoch, 1, 0xffffffff)
  aint(`${field}.nodeIndex`, c.nodeIndex, 1, MAX_NODES)
  if (c.keyKind !== 'wrap' && c.keyKind !== 'sign') throw new BadInputError(`${field}.keyKind`, "expected 'wrap' or 'sign'")
  return c
}

function validateCustodians (field: string, cs: unknown, t: unknown): { m: number, t: number } {
  if (!Array.isArray(cs)) throw new BadInputError(field, 'expected an array of custodians')
  const m = aint(`${field}.length`, cs.length, MIN_RECOVERY_THRESHOLD, MAX_CUSTODIANS)
  const tt = aint(`${field}.threshold`, t, MIN_RECOVERY_THRESHOLD, m)
  const names = new Set<string>()
  const keys = new Set<string>()
  cs.forEach((c: unknown, i) => {
    const f = `${field}[${i}]`
    if (typeof c !== 'object' || c === null) throw new BadInputError(f, 'expected { name, publicKey }')
    const { name, publicKey } = c as Custodian
    if (typeof name !== 'string' || !CUSTODIAN_NAME_PATTERN.test(name)) throw new BadInputError(`${f}.name`, 'expected 1..64 characters [A-Za-z0-9._@+-]')
    abytes(`${f}.publicKey`, publicKey, RECIPIENT_KEY_LEN)
    if (names.has(name)) throw new BadInputError(`${f}.name`, `duplicate custodian name "${name}"`)
    const hex = toHex(publicKey)
    if (keys.has(hex)) throw new BadInputError(`${f}.publicKey`, 'duplicate custodian key')
    names.add(name); keys.add(hex)
  })
  return { m, t: tt }
}

function writeKit (w: Writer, kit: RecoveryKit): Writer {
  w.raw(fromHex('recovery.kit.clusterId', kit.clusterId, CLUSTER_ID_LEN)).u32(kit.epoch).u8(kit.nodeIndex).u8(KIND_CODE[kit.keyKind])
    .u8(kit.threshold).u8(kit.custodians.length).raw(kit.nonce)
  for (const c of kit.custodians) {
    const name = utf8(c.name)
    w.u8(name.length).raw(name).raw(c.publicKey).raw(c.pieceHash)
  }
  return w
}

function checkKit (kit: RecoveryKit): void {
  validateContext('recovery.kit', kit)
  validateCustodians('recovery.kit.custodians', kit.custodians, kit.threshold)
  abytes('recovery.kit.nonce', kit.nonce, RECOVERY_NONCE_LEN)
  kit.custodians.forEach((c, i) => abytes(`recovery.kit.custodians[${i}].pieceHash`, c.pieceHash, SHA256_LEN))
}

function readKit (r: Reader, what: string): RecoveryKit {
  const clusterId = toHex(r.raw('clusterId', CLUSTER_ID_LEN))
  const epoch = aint(`${what}.epoch`, r.u32('epoch'), 1, 0xffffffff)
  const nodeIndex = aint(`${what}.nodeIndex`, r.u8('nodeIndex'), 1, MAX_NODES)
  const keyKind = kindFromCode(`${what}.keyKind`, r.u8('keyKind'))
  const threshold = r.u8('threshold')
  const m = aint(`${what}.m`, r.u8('m'), MIN_RECOVERY_THRESHOLD, MAX_CUSTODIANS)
  aint(`${what}.threshold`, threshold, MIN_RECOVERY_THRESHOLD, m)
  const nonce = r.raw('nonce', RECOVERY_NONCE_LEN).slice()
  const custodians: RecoveryKit['custodians'] = []
  for (let i = 0; i < m; i++) {
    const len = aint(`${what}.custodians[${i}].name.length`, r.u8('name'), 1, 64)
    const name = fromUtf8(`${what}.custodians[${i}].name`, r.raw('name', len))
    const publicKey = r.raw('publicKey', RECIPIENT_KEY_LEN).slice()
    const pieceHash = r.raw('pieceHash', SHA256_LEN).slice()
    custodians.push({ name, publicKey, pieceHash })
  }
  validateCustodians(`${what}.custodians`, custodians, threshold)
  return { clusterId, epoch, nodeIndex, keyKind, threshold, custodians, nonce }
}

/**
 * kitDigest = SHA-256( u32(len T) ‖ T ‖ kitHeader ), T = "keymesh/v1/recovery/kit". 32 bytes.
 * Throws BadInputError when the kit is malformed.
 */
export function recoveryKitDigest (kit: RecoveryKit): Uint8Array {
  checkKit(kit)
  const t = utf8(RecoveryTag.KIT)
  return sha256(concat(u32(t.length), t, writeKit(new Writer(), kit).bytes()))
}

function pieceHash (share: Uint8Array): Uint8Array {
  const t = utf8(RecoveryTag.SHARE)
  return sha256(concat(u32(t.length), t, share))
}

/** HPKE info of custodian `index`'s piece (docs §10.4.3). Throws BadInputError when the kit is malformed. */
export function recoveryPieceInfo (kit: RecoveryKit, index: number): Uint8Array {
  const t = utf8(RecoveryTag.PIECE)
  return concat(u32(t.length), t, new Writer().raw(fromHex('recovery.kit.clusterId', kit.clusterId, CLUSTER_ID_LEN)).u32(kit.epoch).u8(kit.nodeIndex)
    .u8(KIND_CODE[kit.keyKind]).u8(index).u8(kit.threshold).u8(kit.custodians.length).bytes(), recoveryKitDigest(kit))
}

function encodeSecret (ctx: RecoveryContext, x: bigint): Uint8Array {
  const s = encodeScalar(x)
  const out = new Writer().raw(MK).u8(RECOVERY_VERSION).raw(fromHex('recovery.clusterId', ctx.clusterId, CLUSTER_ID_LEN)).u32(ctx.epoch)
    .u8(ctx.nodeIndex).u8(KIND_CODE[ctx.keyKind]).raw(s).bytes()
  s.fill(0)
  return out
}

function decodeSecret (b: Uint8Array): RecoveryContext & { scalar: bigint } {
  const r = new Reader(b, 'recovery.secret')
  if (!equalBytes(r.raw('magic', 4), MK)) throw new VerificationError('recovery: combined pieces are not a share package (pieces of different kits, or altered)')
  const v = r.u8('version')
  if (v !== RECOVERY_VERSION) throw new UnsupportedVersionError('recovery.secret.version', v, String(RECOVERY_VERSION))
  const clusterId = toHex(r.raw('clusterId', CLUSTER_ID_LEN))
  const epoch = r.u32('epoch')
  const nodeIndex = r.u8('nodeIndex')
  const keyKind = kindFromCode('recovery.secret.keyKind', r.u8('keyKind'))
  const scalar = decodeScalar('recovery.secret.scalar', r.raw('scalar', SCALAR_LEN))
  r.end()
  return { clusterId, epoch, nodeIndex, keyKind, scalar }
}

// ---------------------------------------------------------------------------------------------
// Export

/**
 * Builds a recovery kit for one share: splits the serialized share package t-of-m and seals piece
 * c to custodian c (c = 1..m, the order of `custodians`). Returns the m pieces (public; give each to
 * its custodian, e.g. as `armorRecoveryPiece`). `meta.nodeIndex` must equal `share.index`.
 * Throws BadInputError on malformed input (context, 2 ≤ t ≤ m ≤ 64, custodian names/keys distinct,
 * X25519 keys of small order).
 */
export async function recoveryExport (share: KeyShare, meta: RecoveryContext, custodians: Custodian[], t: number): Promise<RecoveryPiece[]> {
  return recoveryExportWithRandomness(share, meta, custodians, t, undefined)
}

/** Deterministic variant for known-answer vectors only (not re-exported from index.ts). */
export async function recoveryExportWithRandomness (share: KeyShare, meta: RecoveryContext, custodians: Custodian[], t: number, rnd: RecoveryRandomness | undefined): Promise<RecoveryPiece[]> {
  validateContext('recovery.meta', meta)
  const { m } = validateCustodians('recovery.custodians', custodians, t)
  if (typeof share !== 'object' || share === null) throw new BadInputError('recovery.share', 'expected a key share')
  if (share.index !== meta.nodeIndex) throw new BadInputError('recovery.share.index', `share is node ${String(share.index)}'s, metadata says node ${meta.nodeIndex}`)
  if (typeof share.scalar !== 'bigint' || share.scalar <= 0n || share.scalar >= L) throw new BadInputError('recovery.share.scalar', 'expected a scalar in [1, L)')
  const nonce = rnd?.nonce ?? new Uint8Array(randomBytes(RECOVERY_NONCE_LEN))
  abytes('recovery.nonce', nonce, RECOVERY_NONCE_LEN)
  // Plain Uint8Array (shamir-secret-sharing checks the constructor, so no Buffer).
  const secret = encodeSecret(meta, share.scalar)
  let pieces: Uint8Array[]
  try {
    pieces = await (rnd?.split ?? shamirSplit)(secret, m, t)
  } finally {
    secret.fill(0)
  }
  if (pieces.length !== m || pieces.some(p => p.length !== RECOVERY_SHARE_LEN)) throw new Error('recovery: split returned pieces of an unexpected shape')
  const kit: RecoveryKit = {
    clusterId: meta.clusterId,
    epoch: meta.epoch,
    nodeIndex: meta.nodeIndex,
    keyKind: meta.keyKind,
    threshold: t,
    custodians: custodians.map((c, i) => ({ name: c.name, publicKey: new Uint8Array(c.publicKey), pieceHash: pieceHash(pieces[i] as Uint8Array) })),
    nonce: new Uint8Array(nonce)
  }
  const out: RecoveryPiece[] = []
  for (let i = 0; i < m; i++) {
    const info = recoveryPieceInfo(kit, i + 1)
    const pk = (custodians[i] as Custodian).publicKey
    const pt = pieces[i] as Uint8Array
    const sealed = rnd === undefined
      ? hpkeSeal(pk, info, new Uint8Array(0), pt)
      : hpkeSealWithEphemeral(pk, info, new Uint8Array(0), pt, rnd.ephemeral[i] as Uint8Array)
    pt.fill(0)
    out.push({ version: 1, kit, custodianIndex: i + 1, enc: sealed.enc, ciphertext: sealed.ct })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Piece codecs

/**
 * Binary piece: "KMRP" ‖ u8 version=1 ‖ kitHeader ‖ u8 custodianIndex ‖ enc (32) ‖ ciphertext (76).
 * Throws BadInputError on a malformed piece.
 */
export function encodeRecoveryPiece (p: RecoveryPiece): Uint8Array {
  if (p.version !== RECOVERY_VERSION) throw new UnsupportedVersionError('recovery.piece.version', p.version, String(RECOVERY_VERSION))
  checkKit(p.kit)
  aint('recovery.piece.custodianIndex', p.custodianIndex, 1, p.kit.custodians.length)
  abytes('recovery.piece.enc', p.enc, HPKE_ENC_LEN)
  abytes('recovery.piece.ciphertext', p.ciphertext, RECOVERY_CIPHERTEXT_LEN)
  return writeKit(new Writer().raw(MP).u8(RECOVERY_VERSION), p.kit).u8(p.custodianIndex).raw(p.enc).raw(p.ciphertext).bytes()
}

/** Strict decoding of a piece. Throws BadInputError / UnsupportedVersionError. */
export function decodeRecoveryPiece (b: Uint8Array): RecoveryPiece {
  abytes('recovery.piece', b)
  if (b.length > MAX_RECOVERY_PIECE_LEN) throw new BadInputError('recovery.piece', `longer than ${MAX_RECOVERY_PIECE_LEN} bytes`)
  const r = new Reader(b, 'recovery.piece')
  if (!equalBytes(r.raw('magic', 4), MP)) throw new BadInputError('recovery.piece.magic', `expected "${RECOVERY_PIECE_MAGIC}"`)
  const v = r.u8('version')
  if (v !== RECOVERY_VERSION) throw new UnsupportedVersionError('recovery.piece.version', v, String(RECOVERY_VERSION))
  const kit = readKit(r, 'recovery.piece.kit')
  const custodianIndex = aint('recovery.piece.custodianIndex', r.u8('custodianIndex'), 1, kit.custodians.length)
  const enc = r.raw('enc', HPKE_ENC_LEN).slice()
  const ciphertext = r.raw('ciphertext', RECOVERY_CIPHERTEXT_LEN).slice()
  r.end()
  return { version: 1, kit, custodianIndex, enc, ciphertext }
}

function armorHeaders (p: RecoveryPiece): string[] {
  const c = p.kit.custodians[p.custodianIndex - 1] as Custodian
  return [
    `Cluster: ${p.kit.clusterId}`,
    `Epoch: ${p.kit.epoch}`,
    `Node: ${p.kit.nodeIndex}`,
    `Key: ${p.kit.keyKind}`,
    `Custodian: ${p.custodianIndex} of ${p.kit.custodians.length} (${c.name})`,
    `Threshold: ${p.kit.threshold}`,
    `Kit: ${toHex(recoveryKitDigest(p.kit))}`
  ]
}

/**
 * ASCII armor for paper/offline storage: BEGIN line, informational headers (cluster, epoch, node,
 * key, custodian, threshold, kit digest), an empty line, standard base64 in 64-character lines,
 * END line; "\n" line ends. Throws BadInputError when the piece is malformed.
 */
export function armorRecoveryPiece (p: RecoveryPiece): string {
  const b64 = Buffer.from(encodeRecoveryPiece(p)).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += ARMOR_LINE) lines.push(b64.slice(i, i + ARMOR_LINE))
  return `${RECOVERY_ARMOR_BEGIN}\n${armorHeaders(p).join('\n')}\n\n${lines.join('\n')}\n${RECOVERY_ARMOR_END}\n`
}

/**
 * Strict armor parsing: surrounding whitespace and CRLF line ends are tolerated; the base64 body
 * must be canonical and the headers must be exactly those `armorRecoveryPiece` writes for the
 * decoded piece (a header edited by hand is refused rather than trusted).
 * Throws BadInputError('recovery.armor' or a field of the piece) / UnsupportedVersionError.
 */
export function dearmorRecoveryPiece (s: string): RecoveryPiece {
  if (typeof s !== 'string') throw new BadInputError('recovery.armor', 'expected a string')
  if (s.length > 2 * MAX_RECOVERY_PIECE_LEN + 1000) throw new BadInputError('recovery.armor', 'too long')
  const lines = s.trim().split(/\r?\n/)
  if (lines[0] !== RECOVERY_ARMOR_BEGIN) throw new BadInputError('recovery.armor', `missing "${RECOVERY_ARMOR_BEGIN}" line`)
  if (lines.length < 4 || lines[lines.length - 1] !== RECOVERY_ARMOR_END) throw new BadInputError('recovery.armor', `truncated: missing "${RECOVERY_ARMOR_END}" line`)
  const blank = lines.indexOf('')
  if (blank < 1) throw new BadInputError('recovery.armor', 'missing the empty line after the headers')
  const body = lines.slice(blank + 1, -1)
  if (body.length === 0) throw new BadInputError('recovery.armor', 'no base64 body')
  for (let i = 0; i < body.length; i++) {
    const line = body[i] as string
    const last = i === body.length - 1
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length === 0 || line.length > ARMOR_LINE || (!last && line.length !== ARMOR_LINE)) {
      throw new BadInputError('recovery.armor', `malformed base64 line ${i + 1}`)
    }
  }
  const b64 = body.join('')
  if (b64.length % 4 !== 0) throw new BadInputError('recovery.armor', 'truncated base64')
  const bytes = Buffer.from(b64, 'base64')
  if (bytes.toString('base64') !== b64) throw new BadInputError('recovery.armor', 'non-canonical base64')
  const p = decodeRecoveryPiece(new Uint8Array(bytes))
  const want = armorHeaders(p)
  const got = lines.slice(1, blank)
  if (got.length !== want.length || got.some((h, i) => h !== want[i])) throw new BadInputError('recovery.armor', 'headers do not match the encoded piece')
  return p
}

// ---------------------------------------------------------------------------------------------
// Custodian side

/**
 * Opens a piece with its custodian's X25519 secret key. Throws BadInputError when the key is not the
 * one the piece was sealed to (the message names the intended custodian) or the piece is malformed,
 * VerificationError when the piece was tampered with (AEAD failure: edited header, swapped index,
 * foreign kit) or its content does not match the kit's piece hash.
 * The returned `share` is SECRET and owned by the caller.
 */
export function openRecoveryPiece (piece: RecoveryPiece, custodianSecret: Uint8Array): OpenedRecoveryPiece {
  // Re-encoding validates every field of a piece built in memory.
  encodeRecoveryPiece(piece)
  const c = piece.kit.custodians[piece.custodianIndex - 1] as Custodian & { pieceHash: Uint8Array }
  abytes('recovery.custodianSecret', custodianSecret, RECIPIENT_KEY_LEN)
  if (!equalBytes(recipientPublicKey(custodianSecret), c.publicKey)) {
    throw new BadInputError('recovery.custodianSecret', `this piece is sealed to custodian ${piece.custodianIndex} "${c.name}", not to this key`)
  }
  let share: Uint8Array
  try {
    share = hpkeOpen(custodianSecret, piece.enc, recoveryPieceInfo(piece.kit, piece.custodianIndex), new Uint8Array(0), piece.ciphertext)
  } catch (err) {
    if (err instanceof VerificationError) throw new VerificationError(`recovery: piece of custodian ${piece.custodianIndex} "${c.name}" does not open: it was altered or belongs to another kit`, [], { cause: err })
    throw err
  }
  if (share.length !== RECOVERY_SHARE_LEN || !equalBytes(pieceHash(share), c.pieceHash)) {
    share.fill(0)
    throw new VerificationError(`recovery: piece of custodian ${piece.custodianIndex} "${c.name}" does not match the kit's piece hash`)
  }
  return { kit: piece.kit, custodianIndex: piece.custodianIndex, share }
}

/**
 * SECRET encoding of an opened piece (to move it from the custodian's machine to the restorer;
 * the transport must be confidential): "KMRO" ‖ u8 version=1 ‖ kitHeader ‖ u8 custodianIndex ‖
 * share (60). Throws BadInputError.
 */
export function encodeOpenedRecoveryPiece (o: OpenedRecoveryPiece): Uint8Array {
  checkKit(o.kit)
  aint('recovery.opened.custodianIndex', o.custodianIndex, 1, o.kit.custodians.length)
  abytes('recovery.opened.share', o.share, RECOVERY_SHARE_LEN)
  return writeKit(new Writer().raw(MO).u8(RECOVERY_VERSION), o.kit).u8(o.custodianIndex).raw(o.share).bytes()
}

/** Strict decoding of an opened piece (SECRET). Throws BadInputError / UnsupportedVersionError. */
export function decodeOpenedRecoveryPiece (b: Uint8Array): OpenedRecoveryPiece {
  abytes('recovery.opened', b)
  if (b.length > MAX_RECOVERY_PIECE_LEN) throw new BadInputError('recovery.opened', `longer than ${MAX_RECOVERY_PIECE_LEN} bytes`)
  const r = new Reader(b, 'recovery.opened')
  if (!equalBytes(r.raw('magic', 4), MO)) throw new BadInputError('recovery.opened.magic', `expected "${RECOVERY_OPENED_MAGIC}"`)
  const v = r.u8('version')
  if (v !== RECOVERY_VERSION) throw new UnsupportedVersionError('recovery.opened.version', v, String(RECOVERY_VERSION))
  const kit = readKit(r, 'recovery.opened.kit')
  const custodianIndex = aint('recovery.opened.custodianIndex', r.u8('custodianIndex'), 1, kit.custodians.length)
  const share = r.raw('share', RECOVERY_SHARE_LEN).slice()
  r.end()
  return { kit, custodianIndex, share }
}

// ---------------------------------------------------------------------------------------------
// Restore

/**
 * Rebuilds the share from ≥ t opened pieces of ONE kit and checks it before returning:
 * all pieces from the same kit (same kitDigest), the kit is for `expected` (cluster, epoch, node,
 * key kind), distinct custodians, at least t of them, every piece matches its hash in the kit, and
 * the restored x satisfies x·B = expected.verifyingShare (from the trusted key set).
 * Throws BadInputError naming the mismatch (another cluster/epoch/node/key, too few pieces,
 * duplicates) or VerificationError (pieces of different kits, an altered piece naming its custodian,
 * a share that does not match the verifying share). The returned KeyShare is secret (the new node's
 * store owns it).
 */
export async function recoveryRestore (opened: OpenedRecoveryPiece[], expected: RecoveryContext & { verifyingShare: Point }): Promise<KeyShare> {
  validateContext('recovery.expected', expected)
  if (typeof expected.verifyingShare !== 'object' || expected.verifyingShare === null || typeof expected.verifyingShare.equals !== 'function') throw new BadInputError('recovery.expected.verifyingShare', 'expected a point')
  if (!Array.isArray(opened) || opened.length === 0) throw new BadInputError('recovery.pieces', 'no pieces given')
  if (opened.length > MAX_CUSTODIANS) throw new BadInputError('recovery.pieces', `more than ${MAX_CUSTODIANS} pieces`)
  const first = opened[0] as OpenedRecoveryPiece
  for (const o of opened) {
    checkKit(o.kit)
    aint('recovery.pieces[].custodianIndex', o.custodianIndex, 1, o.kit.custodians.length)
    abytes('recovery.pieces[].share', o.share, RECOVERY_SHARE_LEN)
  }
  const digest = recoveryKitDigest(first.kit)
  const foreign = opened.filter(o => !equalBytes(recoveryKitDigest(o.kit), digest)).map(o => o.custodianIndex)
  if (foreign.length > 0) {
    throw new VerificationError(`recovery: pieces come from different kits (kit ${toHex(digest).slice(0, 16)}… vs the pieces of custodian(s) ${foreign.join(', ')}); use pieces of one export only`)
  }
  const kit = first.kit
  const want = (field: keyof RecoveryContext, label: string): void => {
    if (kit[field] !== expected[field]) throw new BadInputError(`recovery.${field}`, `pieces are for ${label} ${String(kit[field])}, expected ${String(expected[field])}`)
  }
  want('clusterId', 'cluster'); want('epoch', 'epoch'); want('nodeIndex', 'node'); want('keyKind', 'the key')
  const seen = new Set<number>()
  for (const o of opened) {
    if (seen.has(o.custodianIndex)) throw new BadInputError('recovery.pieces', `two pieces of custodian ${o.custodianIndex}`)
    seen.add(o.custodianIndex)
  }
  if (opened.length < kit.threshold) {
    const have = [...seen].sort((a, b) => a - b).map(i => `${i} "${(kit.custodians[i - 1] as Custodian).name}"`).join(', ')
    throw new BadInputError('recovery.pieces', `this kit needs ${kit.threshold} of ${kit.custodians.length} pieces, got ${opened.length} (${have})`)
  }
  const bad = opened.filter(o => !equalBytes(pieceHash(o.share), (kit.custodians[o.custodianIndex - 1] as { pieceHash: Uint8Array }).pieceHash)).map(o => o.custodianIndex)
  if (bad.length > 0) throw new VerificationError(`recovery: opened piece(s) of custodian(s) ${bad.join(', ')} were altered after sealing`)
  // Copies as plain Uint8Array (shamir-secret-sharing checks the constructor); zeroed below.
  const copies = opened.map(o => new Uint8Array(o.share))
  let secret: Uint8Array | undefined
  try {
    secret = await shamirCombine(copies)
    if (secret.length !== RECOVERY_SECRET_LEN) throw new VerificationError('recovery: combined pieces have the wrong length')
    const d = decodeSecret(secret)
    if (d.clusterId !== kit.clusterId || d.epoch !== kit.epoch || d.nodeIndex !== kit.nodeIndex || d.keyKind !== kit.keyKind) {
      throw new VerificationError('recovery: the restored package names another share than its kit')
    }
    // Secret scalar: constant-time base multiplication.
    if (!group().mulBase(d.scalar).equals(expected.verifyingShare)) {
      throw new VerificationError(`recovery: the restored share does not match verifying share ${kit.nodeIndex} of the ${kit.keyKind} key; the key set or the kit is not the one you expect`)
    }
    return { index: kit.nodeIndex, scalar: d.scalar }
  } finally {
    for (const c of copies) c.fill(0)
    secret?.fill(0)
  }
}
