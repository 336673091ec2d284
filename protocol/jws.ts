/**
 * JWS compact serialisation (RFC 7515 §7.1) of a release manifest with alg "EdDSA" (RFC 8037 §3.1),
 * and the JWKS (RFC 7517 §5) of the cluster's sign keys (docs/PROTOCOL.md §4.5).
 *
 * The protected header is fixed: {"alg":"EdDSA","kid":"keymesh:<clusterId>:<epoch>","typ":"keymesh-manifest+jws"},
 * serialised canonically (RFC 8785). The payload is the canonical manifest. The JWS signing input
 * ASCII(b64u(header) ‖ '.' ‖ b64u(payload)) is the message the cluster FROST-signs; the aggregate
 * is a standard Ed25519 signature, so any JOSE library verifies the result with the JWKS.
 */
import { BadInputError, VerificationError } from './errors.ts'
import { abytes, equalBytes, fromB64u, fromUtf8, toB64u, utf8 } from './bytes.ts'
import { canonicalJson, canonicalManifest, parseManifest } from './manifest.ts'
import { ED25519_SIG_LEN, JWS_ALG, JWS_TYP, MAX_JWKS_KEYS, MAX_JWS_HEADER_LEN, MAX_JWS_LEN, MAX_MANIFEST_LEN } from './constants.ts'
import type { Manifest } from './manifest.ts'
import { keySetId, signKey, validateClusterId } from './keyset.ts'
import type { KeySet } from './keyset.ts'
import { ed25519Verify } from './frost.ts'
import { decodePoint } from './group.ts'

/** Format constants (alg, typ, length caps), defined in constants.ts, re-exported here. */
export { JWS_ALG, JWS_TYP, MAX_JWS_LEN, MAX_JWKS_KEYS } from './constants.ts'
const KID_RE = /^keymesh:([0-9a-f]{32}):([1-9][0-9]{0,9})$/

/** The protected header of a keymesh manifest JWS. */
export interface JwsHeader { alg: 'EdDSA'; kid: string; typ: typeof JWS_TYP }

/** One Ed25519 public key in a JWKS (RFC 8037 §2). */
export interface Jwk { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; alg: 'EdDSA'; use: 'sig' }
export interface Jwks { keys: Jwk[] }

/** The key id of a cluster sign key: "keymesh:<clusterId>:<epoch>". Throws BadInputError. */
export function jwsKid (clusterId: string, epoch: number): string {
  validateClusterId('kid.clusterId', clusterId)
  if (!Number.isSafeInteger(epoch) || epoch < 1 || epoch > 0xffffffff) throw new BadInputError('kid.epoch', 'expected a u32 ≥ 1')
  return `keymesh:${clusterId}:${epoch}`
}

function parseKid (field: string, kid: unknown): { clusterId: string, epoch: number } {
  if (typeof kid !== 'string') throw new BadInputError(field, 'expected a string')
  const m = KID_RE.exec(kid)
  const epoch = m === null ? NaN : Number(m[2])
  if (m === null || epoch > 0xffffffff) throw new BadInputError(field, 'expected "keymesh:<32 hex cluster id>:<epoch>"')
  return { clusterId: m[1] as string, epoch }
}

function headerBytes (h: JwsHeader): Uint8Array {
  return utf8(canonicalJson({ alg: h.alg, kid: h.kid, typ: h.typ }))
}

/**
 * The JWS signing input for a manifest: b64u(canonical header) '.' b64u(canonical manifest).
 * Its UTF-8 (= ASCII) bytes are the FROST message. Throws BadInputError for an invalid manifest.
 */
export function jwsSigningInput (m: Manifest): string {
  const payload = canonicalManifest(m)
  const header: JwsHeader = { alg: JWS_ALG, kid: jwsKid(m.cluster, m.epoch), typ: JWS_TYP }
  return `${toB64u(headerBytes(header))}.${toB64u(payload)}`
}

/**
 * Appends the 64-byte signature: signingInput '.' b64u(signature). Throws BadInputError when the
 * signing input is not a valid keymesh signing input or the signature has the wrong length.
 */
export function assembleJws (signingInput: string, signature: Uint8Array): string {
  abytes('jws.signature', signature, ED25519_SIG_LEN)
  const compact = `${signingInput}.${toB64u(signature)}`
  parseJws(compact) // the result must parse: never emit a JWS we would reject
  return compact
}

/** A structurally valid, not yet verified JWS. */
export interface ParsedJws {
  header: JwsHeader
  manifest: Manifest
  /** ASCII bytes of the signing input (what the signature covers). */
  signingInput: Uint8Array
  signature: Uint8Array
}

/**
 * Strict parse: three parts, canonical unpadded base64url, header exactly {alg:"EdDSA", kid, typ}
 * in canonical form (no other members, so no "crit", "b64" or "jwk" tricks), payload a canonical
 * manifest whose cluster/epoch equal the kid's, 64-byte signature, size caps. Does not verify.
 * Throws BadInputError (or UnsupportedVersionError for a manifest version).
 */
export function parseJws (compact: unknown): ParsedJws {
  if (typeof compact !== 'string') throw new BadInputError('jws', 'expected a string')
  if (compact.length > MAX_JWS_LEN) throw new BadInputError('jws', `longer than ${MAX_JWS_LEN} characters`)
  const parts = compact.split('.')
  if (parts.length !== 3) throw new BadInputError('jws', 'expected three dot-separated parts (compact serialisation)')
  const [h, p, s] = parts as [string, string, string]
  const hb = fromB64u('jws.header', h, MAX_JWS_HEADER_LEN)
  let hj: unknown
  try { hj = JSON.parse(fromUtf8('jws.header', hb)) } catch { throw new BadInputError('jws.header', 'not valid JSON') }
  if (typeof hj !== 'object' || hj === null || Array.isArray(hj)) throw new BadInputError('jws.header', 'expected an object')
  const ho = hj as Record<string, unknown>
  for (const k of Object.keys(ho)) if (!['alg', 'kid', 'typ'].includes(k)) throw new BadInputError(`jws.header.${k}`, 'unknown header parameter')
  if (ho.alg !== JWS_ALG) throw new BadInputError('jws.header.alg', `must be "${JWS_ALG}"`)
  if (ho.typ !== JWS_TYP) throw new BadInputError('jws.header.typ', `must be "${JWS_TYP}"`)
  const kid = parseKid('jws.header.kid', ho.kid)
  const header: JwsHeader = { alg: JWS_ALG, kid: ho.kid as string, typ: JWS_TYP }
  if (!equalBytes(headerBytes(header), hb)) throw new BadInputError('jws.header', 'not in canonical form')
  const manifest = parseManifest(fromB64u('jws.payload', p, MAX_MANIFEST_LEN))
  if (manifest.cluster !== kid.clusterId || manifest.epoch !== kid.epoch) throw new BadInputError('jws.header.kid', 'does not match the manifest cluster and epoch')
  const signature = fromB64u('jws.signature', s, ED25519_SIG_LEN)
  if (signature.length !== ED25519_SIG_LEN) throw new BadInputError('jws.signature', `expected ${ED25519_SIG_LEN} bytes`)
  return { header, manifest, signingInput: utf8(`${h}.${p}`), signature }
}

/**
 * JWKS of the given key sets' sign keys, one JWK per (cluster, epoch), ascending by epoch.
 * Throws BadInputError for a malformed key set or duplicate kid.
 */
export function jwksFromKeySets (keySets: KeySet[]): Jwks {
  const keys: Jwk[] = []
  const seen = new Set<string>()
  for (const ks of [...keySets].sort((a, b) => a.epoch - b.epoch)) {
    keySetId(ks) // validates the whole key set shape
    const kid = jwsKid(ks.clusterId, ks.epoch)
    if (seen.has(kid)) throw new BadInputError('jwks', `duplicate key id ${kid}`)
    seen.add(kid)
    keys.push({ kty: 'OKP', crv: 'Ed25519', x: toB64u(signKey(ks)), kid, alg: JWS_ALG, use: 'sig' })
  }
  return { keys }
}

/**
 * Validates an untrusted JWKS (exact members per key, x a strict Ed25519 point in the prime-order
 * subgroup, keymesh kid). Throws BadInputError.
 */
export function validateJwks (j: unknown): Jwks {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new BadInputError('jwks', 'expected an object')
  const o = j as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'keys') throw new BadInputError(`jwks.${k}`, 'unknown field')
  if (!Array.isArray(o.keys) || o.keys.length > MAX_JWKS_KEYS) throw new BadInputError('jwks.keys', `expected an array of at most ${MAX_JWKS_KEYS} keys`)
  const keys: Jwk[] = []
  const seen = new Set<string>()
  o.keys.forEach((k: unknown, i) => {
    const f = `jwks.keys[${i}]`
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new BadInputError(f, 'expected an object')
    const r = k as Record<string, unknown>
    for (const m of Object.keys(r)) if (!['kty', 'crv', 'x', 'kid', 'alg', 'use'].includes(m)) throw new BadInputError(`${f}.${m}`, 'unknown member')
    if (r.kty !== 'OKP') throw new BadInputError(`${f}.kty`, 'must be "OKP"')
    if (r.crv !== 'Ed25519') throw new BadInputError(`${f}.crv`, 'must be "Ed25519"')
    if (r.alg !== undefined && r.alg !== JWS_ALG) throw new BadInputError(`${f}.alg`, `must be "${JWS_ALG}"`)
    if (r.use !== undefined && r.use !== 'sig') throw new BadInputError(`${f}.use`, 'must be "sig"')
    parseKid(`${f}.kid`, r.kid)
    const kid = r.kid as string
    if (seen.has(kid)) throw new BadInputError(`${f}.kid`, 'duplicate key id')
    seen.add(kid)
    decodePoint(`${f}.x`, fromB64u(`${f}.x`, r.x, 32))
    keys.push({ kty: 'OKP', crv: 'Ed25519', x: r.x as string, kid, alg: JWS_ALG, use: 'sig' })
  })
  return { keys }
}

/**
 * Parses and verifies a manifest JWS against a JWKS (key chosen by kid; Ed25519 via node:crypto).
 * Returns the verified manifest. Throws BadInputError (malformed JWS or JWKS),
 * VerificationError (unknown kid or bad signature).
 */
export function verifyJws (compact: string, jwks: Jwks): Manifest {
  const parsed = parseJws(compact)
  const set = validateJwks(jwks)
  const key = set.keys.find(k => k.kid === parsed.header.kid)
  if (key === undefined) throw new VerificationError(`jws: no key with id ${parsed.header.kid} in the JWKS; fetch the current JWKS from the cluster`)
  if (!ed25519Verify(fromB64u('jwk.x', key.x, 32), parsed.signingInput, parsed.signature)) {
    throw new VerificationError('jws: signature does not verify; the manifest or its signature was altered')
  }
  return parsed.manifest
}

