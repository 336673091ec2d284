/**
 * Envelope: one data key wrapped under a key set's wrap key X, bound to a Label
 * (docs/PROTOCOL.md §3.2).
 *
 * Binary (version 1):
 *   "KMEV" ‖ u8 version=1 ‖ var16(encodeLabel(label)) ‖ R(32) ‖ W(32) ‖ s(32, LE scalar) ‖ ciphertext(48)
 * header = "KMEV" ‖ u8 version ‖ var16(label) ‖ R  (the AEAD associated data; hashed into the KEK
 * and the proof challenge).
 *
 * Point checks at decoding: R and W are decoded with `decodePointUnchecked` (canonical, on the
 * curve, not the identity, not of small order) but NOT checked to be torsion-free. This is safe
 * because no secret ever multiplies R itself: nodes multiply the cofactor-cleared R̂ = 8·R, which is
 * always in the prime-order subgroup, and the proof is verified in cofactored form
 * 8·(s·B − c·R − W) = 0 (spec §3.4 and §4.1). Skipping the torsion check saves one scalar
 * multiplication per envelope on every node.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { Reader, Writer, abytes, concat, equalBytes, u32, utf8 } from './bytes.ts'
import {
  ARMOR_BEGIN, ARMOR_END, ARMOR_LINE_LEN, ENVELOPE_CIPHERTEXT_LEN, ENVELOPE_MAGIC, ENVELOPE_VERSION, MAX_ENVELOPE_LEN,
  MAX_LABEL_LEN, POINT_LEN, SCALAR_LEN, Tag
} from './constants.ts'
import { L, decodePointUnchecked, decodeScalar, encodeScalar } from './group.ts'
import { encodePointCached, rememberEncoding } from './dleq.ts'
import type { Point } from './group.ts'
import { decodeLabel, encodeLabel } from './label.ts'
import type { Label } from './label.ts'

/** A wrapped data key. */
export interface Envelope {
  version: 1
  label: Label
  /** Ephemeral key R = r·B. */
  R: Point
  /** Schnorr commitment W = w·B of the proof of knowledge of r. */
  W: Point
  /** Schnorr response s = w + c·r mod L. */
  s: bigint
  /** AES-256-GCM(KEK, dataKey): 32 + 16 bytes. */
  ciphertext: Uint8Array
}

/**
 * Format constants, defined in constants.ts, re-exported here. MAX_ENVELOPE_LEN is the exact
 * format maximum (614 bytes), not protocol/rpc.ts's RPC field cap of the same name.
 */
export { ENVELOPE_MAGIC, ENVELOPE_VERSION, ENVELOPE_CIPHERTEXT_LEN, MAX_ENVELOPE_LEN, ARMOR_BEGIN, ARMOR_END } from './constants.ts'
const MAGIC = utf8(ENVELOPE_MAGIC)

/**
 * header = "KMEV" ‖ u8 version ‖ var16(labelBytes) ‖ enc(R). Throws BadInputError if the label
 * encoding is longer than allowed.
 */
export function envelopeHeader (labelBytes: Uint8Array, R: Point): Uint8Array {
  if (labelBytes.length > MAX_LABEL_LEN) throw new BadInputError('envelope.label', 'too long')
  return new Writer().raw(MAGIC).u8(ENVELOPE_VERSION).var16(labelBytes).raw(encodePointCached(R)).bytes()
}

function assertEnvelope (e: Envelope): void {
  if (typeof e !== 'object' || e === null) throw new BadInputError('envelope', 'expected an object')
  if (e.version !== ENVELOPE_VERSION) throw new UnsupportedVersionError('envelope.version', typeof e.version === 'number' ? e.version : String(e.version), String(ENVELOPE_VERSION))
  abytes('envelope.ciphertext', e.ciphertext, ENVELOPE_CIPHERTEXT_LEN)
  if (typeof e.s !== 'bigint' || e.s < 0n || e.s >= L) throw new BadInputError('envelope.s', 'scalar out of range')
}

/**
 * Binary encoding (module doc). Throws BadInputError when a field is invalid,
 * UnsupportedVersionError('envelope.version') when `e.version` is not 1.
 */
export function encodeEnvelope (e: Envelope): Uint8Array {
  assertEnvelope(e)
  const header = envelopeHeader(encodeLabel(e.label), e.R)
  return concat(header, encodePointCached(e.W), encodeScalar(e.s), e.ciphertext)
}

/**
 * Strict decoding: magic, version, label (strict), R and W (canonical, not identity, not small
 * order; see module doc for the torsion argument), s canonical (< L, non-zero), ciphertext exactly
 * 48 bytes, no trailing bytes. Throws BadInputError(`envelope.<field>`), UnsupportedVersionError
 * ('envelope.version' or 'label.version') for an unknown version byte.
 */
export function decodeEnvelope (b: Uint8Array): Envelope {
  if (!(b instanceof Uint8Array)) throw new BadInputError('envelope', 'expected bytes')
  if (b.length > MAX_ENVELOPE_LEN) throw new BadInputError('envelope', `longer than ${MAX_ENVELOPE_LEN} bytes`)
  const r = new Reader(b, 'envelope')
  if (!equalBytes(r.raw('magic', 4), MAGIC)) throw new BadInputError('envelope.magic', `expected "${ENVELOPE_MAGIC}"`)
  const version = r.u8('version')
  if (version !== ENVELOPE_VERSION) throw new UnsupportedVersionError('envelope.version', version, String(ENVELOPE_VERSION))
  const label = decodeLabel(r.var16('label', MAX_LABEL_LEN))
  const Rb = r.raw('R', POINT_LEN)
  const R = decodePointUnchecked('envelope.R', Rb)
  rememberEncoding(R, Rb)
  const Wb = r.raw('W', POINT_LEN)
  const W = decodePointUnchecked('envelope.W', Wb)
  rememberEncoding(W, Wb)
  const s = decodeScalar('envelope.s', r.raw('s', SCALAR_LEN))
  const ciphertext = r.raw('ciphertext', ENVELOPE_CIPHERTEXT_LEN).slice()
  r.end()
  return { version: 1, label, R, W, s, ciphertext }
}

/**
 * ASCII armor: BEGIN line, standard base64 (with padding) in 64-character lines, END line, each
 * line ending in "\n". Throws BadInputError when the envelope is invalid.
 */
export function armorEnvelope (e: Envelope): string {
  const b64 = Buffer.from(encodeEnvelope(e)).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += ARMOR_LINE_LEN) lines.push(b64.slice(i, i + ARMOR_LINE_LEN))
  return `${ARMOR_BEGIN}\n${lines.join('\n')}\n${ARMOR_END}\n`
}

/**
 * Strict armor parsing: surrounding whitespace and CRLF line ends are tolerated; otherwise exactly
 * the BEGIN line, full 64-character base64 lines (the last 1..64), the END line. A missing END
 * line (truncated armor), a short inner line, foreign characters or non-canonical base64 are
 * rejected. Throws BadInputError('envelope.armor' or a field of the decoded envelope).
 */
export function dearmorEnvelope (s: string): Envelope {
  if (typeof s !== 'string') throw new BadInputError('envelope.armor', 'expected a string')
  if (s.length > 2 * MAX_ENVELOPE_LEN + 200) throw new BadInputError('envelope.armor', 'too long')
  const lines = s.trim().split(/\r?\n/)
  if (lines[0] !== ARMOR_BEGIN) throw new BadInputError('envelope.armor', `missing "${ARMOR_BEGIN}" line`)
  if (lines.length < 3 || lines[lines.length - 1] !== ARMOR_END) throw new BadInputError('envelope.armor', `truncated: missing "${ARMOR_END}" line`)
  const body = lines.slice(1, -1)
  for (let i = 0; i < body.length; i++) {
    const line = body[i] as string
    const last = i === body.length - 1
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length === 0 || line.length > ARMOR_LINE_LEN || (!last && line.length !== ARMOR_LINE_LEN)) {
      throw new BadInputError('envelope.armor', `malformed base64 line ${i + 1}`)
    }
  }
  const b64 = body.join('')
  if (b64.length % 4 !== 0) throw new BadInputError('envelope.armor', 'truncated base64')
  const bytes = Buffer.from(b64, 'base64')
  if (bytes.toString('base64') !== b64) throw new BadInputError('envelope.armor', 'non-canonical base64')
  return decodeEnvelope(new Uint8Array(bytes))
}

/**
 * envelopeId = SHA-256( u32(len(Tag.ENVELOPE_ID)) ‖ Tag.ENVELOPE_ID ‖ encodeEnvelope(e) ), 32 bytes.
 * Throws BadInputError when the envelope is invalid.
 */
export function envelopeId (e: Envelope): Uint8Array {
  const t = utf8(Tag.ENVELOPE_ID)
  return sha256(concat(u32(t.length), t, encodeEnvelope(e)))
}
