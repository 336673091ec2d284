/**
 * Label: the context a wrapped key is bound to (brief §2.4) — cluster, key epoch, purpose, app,
 * environment, release. The label's canonical bytes go into the envelope header, which is the AEAD
 * associated data, the KEK derivation input and the input of the envelope's proof of knowledge,
 * so an envelope (or its R) cannot be moved to another label (docs/PROTOCOL.md §3.1).
 *
 * Canonical encoding (version 1):
 *   u8 version=1 ‖ var16(clusterId) ‖ u32 epoch ‖ var16(purpose) ‖ var16(app) ‖ var16(env) ‖ var16(release)
 * where var16(s) = u16 big-endian byte length ‖ UTF-8 bytes. Anything else is rejected.
 */
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { Reader, Writer, aint, fromUtf8, utf8 } from './bytes.ts'
import { LABEL_FIELD_PATTERN, LABEL_VERSION, MAX_LABEL_FIELD_LEN, MAX_LABEL_LEN } from './constants.ts'

/** Format constants, defined in constants.ts (LABEL_VERSION, MAX_LABEL_LEN), re-exported here. */
export { LABEL_VERSION, MAX_LABEL_LEN } from './constants.ts'

/** The context of a wrapped key. */
export interface Label {
  /** 32 lowercase hex chars. */
  clusterId: string
  /** u32, ≥ 1. */
  epoch: number
  /** 'release-key' | 'deployment-key' | other [a-z0-9-]{1,32}. */
  purpose: string
  /** LABEL_FIELD_PATTERN, 1..128. */
  app: string
  /** LABEL_FIELD_PATTERN, 0..128 ('' = not environment-specific). */
  env: string
  /** LABEL_FIELD_PATTERN, 1..128. */
  release: string
}

const CLUSTER_ID_RE = /^[0-9a-f]{32}$/
const PURPOSE_RE = /^[a-z0-9-]{1,32}$/
const KEYS = ['clusterId', 'epoch', 'purpose', 'app', 'env', 'release'] as const

function field (name: string, v: unknown, min: number): string {
  if (typeof v !== 'string') throw new BadInputError(`label.${name}`, 'expected a string')
  if (v.length < min || v.length > MAX_LABEL_FIELD_LEN) throw new BadInputError(`label.${name}`, `expected ${min}..${MAX_LABEL_FIELD_LEN} characters`)
  if (!LABEL_FIELD_PATTERN.test(v)) throw new BadInputError(`label.${name}`, 'contains characters outside [A-Za-z0-9._:@+/-]')
  return v
}

/**
 * Validates an untrusted value as a Label (exact keys, types, ranges, patterns) and returns a
 * fresh copy. Throws BadInputError naming the offending field (`label.<field>`).
 */
export function validateLabel (l: unknown): Label {
  if (typeof l !== 'object' || l === null || Array.isArray(l)) throw new BadInputError('label', 'expected an object')
  const o = l as Record<string, unknown>
  for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) throw new BadInputError(`label.${k}`, 'unknown field')
  const clusterId = o.clusterId
  if (typeof clusterId !== 'string' || !CLUSTER_ID_RE.test(clusterId)) throw new BadInputError('label.clusterId', 'expected 32 lowercase hex characters')
  const epoch = aint('label.epoch', o.epoch, 1, 0xffffffff)
  const purpose = o.purpose
  if (typeof purpose !== 'string' || !PURPOSE_RE.test(purpose)) throw new BadInputError('label.purpose', 'expected [a-z0-9-]{1,32}')
  return {
    clusterId,
    epoch,
    purpose,
    app: field('app', o.app, 1),
    env: field('env', o.env, 0),
    release: field('release', o.release, 1)
  }
}

/** Canonical binary encoding (module doc). Throws BadInputError when the label is invalid. */
export function encodeLabel (l: Label): Uint8Array {
  const v = validateLabel(l)
  return new Writer().u8(LABEL_VERSION)
    .var16(utf8(v.clusterId)).u32(v.epoch).var16(utf8(v.purpose))
    .var16(utf8(v.app)).var16(utf8(v.env)).var16(utf8(v.release))
    .bytes()
}

/**
 * Strict decoding of the canonical encoding: known version, every length within its bound, valid
 * UTF-8, every field valid, no trailing bytes. Throws BadInputError(`label.<field>`),
 * UnsupportedVersionError('label.version') for an unknown version byte.
 */
export function decodeLabel (b: Uint8Array): Label {
  if (!(b instanceof Uint8Array)) throw new BadInputError('label', 'expected bytes')
  if (b.length > MAX_LABEL_LEN) throw new BadInputError('label', `longer than ${MAX_LABEL_LEN} bytes`)
  const r = new Reader(b, 'label')
  const version = r.u8('version')
  if (version !== LABEL_VERSION) throw new UnsupportedVersionError('label.version', version, String(LABEL_VERSION))
  const str = (name: string, max: number): string => fromUtf8(`label.${name}`, r.var16(name, max))
  const clusterId = str('clusterId', 32)
  const epoch = r.u32('epoch')
  const purpose = str('purpose', 32)
  const app = str('app', MAX_LABEL_FIELD_LEN)
  const env = str('env', MAX_LABEL_FIELD_LEN)
  const release = str('release', MAX_LABEL_FIELD_LEN)
  r.end()
  return validateLabel({ clusterId, epoch, purpose, app, env, release })
}
