/**
 * Bundle: envelopes plus the sealed batch partials of k or more nodes, for one deploy target
 * (docs/PROTOCOL.md §7).
 *
 * Binary (version 1):
 *   "KMBU" ‖ u8 version=1 ‖ recipient X25519 public key (32) ‖ keySetId (32) ‖ u16 count ‖
 *   count × var32(envelope bytes) ‖ u8 nodes ‖ nodes × (u8 index ‖ var32(sealed BatchPartial))
 * Node entries are in strictly increasing index order; each sealed partial covers all envelopes
 * in bundle order (HPKE info binds the list of envelope ids, partial.ts).
 */
import { BadInputError, UnsupportedVersionError, VerificationError } from './errors.ts'
import { Reader, Writer, abytes, aint, equalBytes, fromHex, toHex, utf8 } from './bytes.ts'
import {
  BUNDLE_MAGIC, BUNDLE_VERSION, MAX_BATCH, MAX_BUNDLE_LEN, MAX_ENVELOPE_LEN, MAX_NODES, MAX_SEALED_PARTIAL_LEN, RECIPIENT_KEY_LEN
} from './constants.ts'
import { decodeEnvelope, encodeEnvelope, envelopeId } from './envelope.ts'
import type { Envelope } from './envelope.ts'
import { keySetId } from './keyset.ts'
import type { KeySet } from './keyset.ts'
import { recipientPublicKey } from './hpke.ts'
import { openSealedPartial } from './partial.ts'
import type { BatchPartial } from './partial.ts'
import { combineBatch } from './combine.ts'
import type { CombineOptions } from './combine.ts'

/** One node's sealed batch partial. */
export interface SealedEntry { index: number; sealed: Uint8Array }

/** Envelopes plus sealed partials for one target. */
export interface Bundle {
  version: 1
  /** The target's X25519 public key (32 bytes). */
  recipient: Uint8Array
  /** keySetId of the key set the envelopes are wrapped under (64 hex chars). */
  keySetId: string
  envelopes: Envelope[]
  /** Sealed partials, strictly increasing index. */
  partials: SealedEntry[]
}

/** Format constants, defined in constants.ts, re-exported here. */
export { BUNDLE_MAGIC, BUNDLE_VERSION, MAX_BUNDLE_LEN } from './constants.ts'
const MAGIC = utf8(BUNDLE_MAGIC)

function assertEntries (partials: SealedEntry[]): void {
  if (!Array.isArray(partials) || partials.length === 0 || partials.length > MAX_NODES) throw new BadInputError('bundle.partials', `expected 1..${MAX_NODES} entries`)
  let prev = 0
  for (const p of partials) {
    aint('bundle.partials.index', p.index, 1, MAX_NODES)
    if (p.index <= prev) throw new BadInputError('bundle.partials.index', 'indices must be strictly increasing')
    prev = p.index
    abytes('bundle.partials.sealed', p.sealed)
    if (p.sealed.length > MAX_SEALED_PARTIAL_LEN) throw new BadInputError('bundle.partials.sealed', 'too long')
  }
}

/** Binary encoding (module doc). Throws BadInputError on invalid fields, UnsupportedVersionError('bundle.version'). */
export function encodeBundle (b: Bundle): Uint8Array {
  if (b.version !== BUNDLE_VERSION) throw new UnsupportedVersionError('bundle.version', typeof b.version === 'number' ? b.version : String(b.version), String(BUNDLE_VERSION))
  abytes('bundle.recipient', b.recipient, RECIPIENT_KEY_LEN)
  const id = fromHex('bundle.keySetId', b.keySetId, 32)
  if (!Array.isArray(b.envelopes) || b.envelopes.length === 0 || b.envelopes.length > MAX_BATCH) throw new BadInputError('bundle.envelopes', `expected 1..${MAX_BATCH} envelopes`)
  assertEntries(b.partials)
  const w = new Writer().raw(MAGIC).u8(BUNDLE_VERSION).raw(b.recipient).raw(id).u16(b.envelopes.length)
  for (const e of b.envelopes) w.var32(encodeEnvelope(e))
  w.u8(b.partials.length)
  for (const p of b.partials) w.u8(p.index).var32(p.sealed)
  return w.bytes()
}

/**
 * Strict decoding: magic, version, counts within caps, every envelope strict, node indices
 * strictly increasing, no trailing bytes. Sealed partials are opened by `openBundle`.
 * Throws BadInputError(`bundle.<field>` or `envelope.<field>`), UnsupportedVersionError
 * ('bundle.version', 'envelope.version' or 'label.version') for an unknown version byte.
 */
export function decodeBundle (bytes: Uint8Array): Bundle {
  abytes('bundle', bytes)
  if (bytes.length > MAX_BUNDLE_LEN) throw new BadInputError('bundle', `longer than ${MAX_BUNDLE_LEN} bytes`)
  const r = new Reader(bytes, 'bundle')
  if (!equalBytes(r.raw('magic', 4), MAGIC)) throw new BadInputError('bundle.magic', `expected "${BUNDLE_MAGIC}"`)
  const version = r.u8('version')
  if (version !== BUNDLE_VERSION) throw new UnsupportedVersionError('bundle.version', version, String(BUNDLE_VERSION))
  const recipient = r.raw('recipient', RECIPIENT_KEY_LEN).slice()
  const id = toHex(r.raw('keySetId', 32))
  const count = r.u16('count')
  if (count === 0 || count > MAX_BATCH) throw new BadInputError('bundle.count', `expected 1..${MAX_BATCH}`)
  const envelopes: Envelope[] = []
  for (let j = 0; j < count; j++) envelopes.push(decodeEnvelope(r.var32('envelope', MAX_ENVELOPE_LEN)))
  const nodes = r.u8('nodes')
  if (nodes === 0 || nodes > MAX_NODES) throw new BadInputError('bundle.nodes', `expected 1..${MAX_NODES}`)
  const partials: SealedEntry[] = []
  for (let i = 0; i < nodes; i++) {
    const index = r.u8('index')
    partials.push({ index, sealed: r.var32('sealed', MAX_SEALED_PARTIAL_LEN).slice() })
  }
  r.end()
  assertEntries(partials)
  return { version: 1, recipient, keySetId: id, envelopes, partials }
}

/**
 * Opens every envelope of a bundle: checks the key set id and recipient, opens each sealed partial
 * (a node whose partial does not open or is malformed is blamed and skipped), then combineBatch.
 * Returns the data keys in envelope order (owned by the caller).
 * Throws BadInputError (wrong key set or recipient) or VerificationError with blame.
 */
export function openBundle (bundle: Bundle, ks: KeySet, recipientSecret: Uint8Array, opts: CombineOptions = {}): Uint8Array[] {
  if (bundle.keySetId !== keySetId(ks)) throw new BadInputError('bundle.keySetId', 'bundle is for another key set')
  if (!equalBytes(recipientPublicKey(recipientSecret), abytes('bundle.recipient', bundle.recipient, RECIPIENT_KEY_LEN))) {
    throw new BadInputError('recipientSecret', 'bundle is sealed to another recipient')
  }
  const ids = bundle.envelopes.map(envelopeId)
  const opened: BatchPartial[] = []
  const blame: number[] = []
  for (const entry of bundle.partials) {
    if (entry.index > ks.n) { blame.push(entry.index); continue }
    try {
      const p = openSealedPartial(entry.sealed, ks, ids, entry.index, recipientSecret)
      if (!Array.isArray(p.D)) { blame.push(entry.index); continue }
      opened.push(p as BatchPartial)
    } catch (err) {
      if (err instanceof VerificationError) { blame.push(entry.index); continue }
      throw err
    }
  }
  if (opened.length < ks.threshold) throw new VerificationError(`only ${opened.length} of the ${ks.threshold} needed sealed partials open; bad nodes: ${blame.join(', ')}`, blame)
  let keys: Uint8Array[]
  try {
    keys = combineBatch(ks, bundle.envelopes, opened, { strict: opts.strict, onBlame: b => blame.push(...b) })
  } catch (err) {
    if (err instanceof VerificationError) throw new VerificationError(err.message, [...blame, ...err.blame].sort((x, y) => x - y), { cause: err })
    throw err
  }
  if (blame.length > 0) opts.onBlame?.(blame.sort((x, y) => x - y))
  return keys
}
