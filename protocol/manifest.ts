/**
 * Release manifest: what a release signature covers (docs/PROTOCOL.md §4.4).
 *
 * A manifest names the cluster key epoch, the app/release/environment, the encrypted artifact
 * (SHA-256 and size of the ciphertext file), the envelope that wraps its release key, the builder
 * that made it and when. Its signed bytes are the RFC 8785 (JCS) canonical JSON serialisation, so
 * any JSON implementation can recompute them. Validation is strict: unknown fields are rejected,
 * every string is length-capped and pattern-checked, numbers are safe integers.
 */
import canonicalizeModule from 'canonicalize'
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { abytes, aint, equalBytes, fromUtf8, utf8 } from './bytes.ts'
import {
  LABEL_FIELD_PATTERN, MANIFEST_TYPE, MANIFEST_VERSION, MAX_ARTIFACT_NAME_LEN, MAX_LABEL_FIELD_LEN, MAX_MANIFEST_LEN,
  MAX_PEER_ID_LEN, MAX_REPOSITORY_LEN
} from './constants.ts'

/** Format constants (type, version, length caps), defined in constants.ts, re-exported here. */
export { MANIFEST_TYPE, MANIFEST_VERSION, MAX_MANIFEST_LEN, MAX_ARTIFACT_NAME_LEN, MAX_REPOSITORY_LEN, MAX_PEER_ID_LEN } from './constants.ts'

/** A release manifest (version 1). Optional fields are absent, never null or ''. */
export interface Manifest {
  v: 1
  type: typeof MANIFEST_TYPE
  /** cluster id, 32 lowercase hex */
  cluster: string
  /** key epoch, u32 ≥ 1 */
  epoch: number
  app: string
  release: string
  env?: string
  artifact: {
    /** SHA-256 of the (encrypted) artifact file, 64 lowercase hex */
    sha256: string
    /** its size in bytes, 0 ≤ size ≤ 2^53−1 */
    size: number
    /** file name, no path */
    name?: string
  }
  /** envelopeId of the wrapped release key, 64 lowercase hex */
  envelope: string
  /** libp2p PeerId string of the build host */
  builder: string
  /** RFC 3339 UTC timestamp, e.g. 2026-01-02T03:04:05Z or with fraction .123Z */
  createdAt: string
  /** source repository (URL or owner/name) */
  repository?: string
  /** source commit, 40 or 64 lowercase hex (git SHA-1 / SHA-256) */
  commit?: string
}

const TOP_KEYS = ['v', 'type', 'cluster', 'epoch', 'app', 'release', 'env', 'artifact', 'envelope', 'builder', 'createdAt', 'repository', 'commit']
const TOP_REQUIRED = ['v', 'type', 'cluster', 'epoch', 'app', 'release', 'artifact', 'envelope', 'builder', 'createdAt']
const ART_KEYS = ['sha256', 'size', 'name']
const ART_REQUIRED = ['sha256', 'size']

const HEX32 = /^[0-9a-f]{32}$/
const HEX64 = /^[0-9a-f]{64}$/
const COMMIT_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/
/** base58btc (Qm…, 12D3Koo…, 16Uiu2…) or CIDv1 base32 (b…) PeerId strings. */
const PEER_ID_RE = /^(?:[1-9A-HJ-NP-Za-km-z]{46,100}|b[a-z2-7]{50,120})$/
const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/
/** Printable ASCII without spaces: URLs and owner/name forms. */
const REPOSITORY_RE = /^[\x21-\x7e]+$/
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/

type Canonicalize = (v: unknown) => string | undefined
/**
 * `canonicalize` is a CommonJS module whose types declare an ES default export: at run time the
 * default import is the function itself, while TypeScript (nodenext) sees `{ default: fn }`.
 * Accept both shapes.
 */
const canonicalizeFn: Canonicalize = (() => {
  const m = canonicalizeModule as unknown as Canonicalize | { default: Canonicalize }
  return typeof m === 'function' ? m : m.default
})()

/**
 * RFC 8785 (JCS) canonical JSON text of a JSON value. Throws BadInputError when the value is not
 * serialisable (e.g. NaN, Infinity, undefined at top level).
 */
export function canonicalJson (v: unknown): string {
  let s: string | undefined
  try { s = canonicalizeFn(v) } catch { throw new BadInputError('json', 'value cannot be canonicalised') }
  if (s === undefined) throw new BadInputError('json', 'value cannot be canonicalised')
  return s
}

function obj (field: string, o: unknown, keys: string[], required: string[]): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new BadInputError(field, 'expected an object')
  const rec = o as Record<string, unknown>
  for (const k of Object.keys(rec)) if (!keys.includes(k)) throw new BadInputError(`${field}.${k}`, 'unknown field')
  for (const k of required) if (rec[k] === undefined) throw new BadInputError(`${field}.${k}`, 'missing')
  return rec
}

function str (field: string, v: unknown, re: RegExp, min: number, max: number): string {
  if (typeof v !== 'string') throw new BadInputError(field, 'expected a string')
  if (v.length < min || v.length > max) throw new BadInputError(field, `expected ${min}..${max} characters`)
  if (!re.test(v)) throw new BadInputError(field, 'invalid characters or format')
  return v
}

function labelField (field: string, v: unknown): string {
  return str(field, v, LABEL_FIELD_PATTERN, 1, MAX_LABEL_FIELD_LEN)
}

function artifactName (v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new BadInputError('manifest.artifact.name', 'expected a non-empty string')
  if (utf8(v).length > MAX_ARTIFACT_NAME_LEN) throw new BadInputError('manifest.artifact.name', `longer than ${MAX_ARTIFACT_NAME_LEN} bytes`)
  if (!v.isWellFormed() || CONTROL_RE.test(v) || v.includes('/') || v.includes('\\') || v === '.' || v === '..') {
    throw new BadInputError('manifest.artifact.name', 'must be a plain file name (no path separators or control characters)')
  }
  return v
}

function timestamp (v: unknown): string {
  const s = str('manifest.createdAt', v, RFC3339_UTC, 20, 30)
  const m = RFC3339_UTC.exec(s) as RegExpExecArray
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, se))
  // Reject impossible dates (Feb 30, hour 24, second 60: leap seconds are not representable here).
  if (y < 1970 || t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d ||
      t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== se) {
    throw new BadInputError('manifest.createdAt', 'not a valid date-time')
  }
  return s
}

/**
 * Validates an untrusted value as a v1 manifest and returns a fresh, plain copy (no extra
 * properties, optional fields only when present). Throws BadInputError(field) or
 * UnsupportedVersionError (v ≠ 1).
 */
export function validateManifest (m: unknown): Manifest {
  const o = obj('manifest', m, TOP_KEYS, TOP_REQUIRED)
  if (o.v !== MANIFEST_VERSION) throw new UnsupportedVersionError('manifest.v', typeof o.v === 'number' ? o.v : String(o.v), String(MANIFEST_VERSION))
  if (o.type !== MANIFEST_TYPE) throw new BadInputError('manifest.type', `expected "${MANIFEST_TYPE}"`)
  const a = obj('manifest.artifact', o.artifact, ART_KEYS, ART_REQUIRED)
  const artifact: Manifest['artifact'] = {
    sha256: str('manifest.artifact.sha256', a.sha256, HEX64, 64, 64),
    size: aint('manifest.artifact.size', a.size, 0, Number.MAX_SAFE_INTEGER)
  }
  if (a.name !== undefined) artifact.name = artifactName(a.name)
  const out: Manifest = {
    v: 1,
    type: MANIFEST_TYPE,
    cluster: str('manifest.cluster', o.cluster, HEX32, 32, 32),
    epoch: aint('manifest.epoch', o.epoch, 1, 0xffffffff),
    app: labelField('manifest.app', o.app),
    release: labelField('manifest.release', o.release),
    artifact,
    envelope: str('manifest.envelope', o.envelope, HEX64, 64, 64),
    builder: str('manifest.builder', o.builder, PEER_ID_RE, 1, MAX_PEER_ID_LEN),
    createdAt: timestamp(o.createdAt)
  }
  if (o.env !== undefined) out.env = labelField('manifest.env', o.env)
  if (o.repository !== undefined) out.repository = str('manifest.repository', o.repository, REPOSITORY_RE, 1, MAX_REPOSITORY_LEN)
  if (o.commit !== undefined) out.commit = str('manifest.commit', o.commit, COMMIT_RE, 40, 64)
  return out
}

/**
 * The signed bytes: UTF-8 of the RFC 8785 canonical JSON of the validated manifest.
 * Throws BadInputError when the manifest is invalid or its encoding exceeds MAX_MANIFEST_LEN.
 */
export function canonicalManifest (m: Manifest): Uint8Array {
  const v = validateManifest(m)
  const b = utf8(canonicalJson(v))
  if (b.length > MAX_MANIFEST_LEN) throw new BadInputError('manifest', `longer than ${MAX_MANIFEST_LEN} bytes`)
  return b
}

/**
 * Parses manifest bytes, which must be exactly the canonical form (so one manifest has one
 * encoding and one signature input). Throws BadInputError.
 */
export function parseManifest (b: Uint8Array): Manifest {
  abytes('manifest', b)
  if (b.length > MAX_MANIFEST_LEN) throw new BadInputError('manifest', `longer than ${MAX_MANIFEST_LEN} bytes`)
  let j: unknown
  try { j = JSON.parse(fromUtf8('manifest', b)) } catch (err) {
    if (err instanceof BadInputError) throw err
    throw new BadInputError('manifest', 'not valid JSON')
  }
  const m = validateManifest(j)
  if (!equalBytes(canonicalManifest(m), b)) throw new BadInputError('manifest', 'not in RFC 8785 canonical form')
  return m
}
