/**
 * Admin signatures: the one check behind every admin-authorised document (signed policies,
 * lifecycle orders). Admins are the Ed25519 keys named in the cluster file; a document is
 * authorised when at least `adminThreshold` distinct admins signed its signing bytes.
 */
import { BadInputError, VerificationError } from './errors.ts'
import { fromB64u, toB64u } from './bytes.ts'
import { aobj } from './json.ts'
import { NAME_PATTERN } from './cluster.ts'
import { ED25519_SIG_LEN, ed25519Verify } from './frost.ts'
import type { ClusterFile } from './cluster.ts'

/** One admin's signature: the admin's name in the cluster file and a b64u 64-byte Ed25519 signature. */
export interface AdminSignature { admin: string, sig: string }

/**
 * Parses one `{admin, sig}` entry of a signed document: an admin name and a canonical b64u
 * 64-byte signature (returned re-encoded canonically). Throws BadInputError(field…).
 */
export function parseAdminSignature (field: string, v: unknown): AdminSignature {
  const o = aobj(field, v, ['admin', 'sig'])
  if (typeof o.admin !== 'string' || !NAME_PATTERN.test(o.admin)) throw new BadInputError(`${field}.admin`, 'expected an admin name')
  const sig = fromB64u(`${field}.sig`, o.sig, ED25519_SIG_LEN)
  if (sig.length !== ED25519_SIG_LEN) throw new BadInputError(`${field}.sig`, `expected ${ED25519_SIG_LEN} bytes`)
  return { admin: o.admin, sig: toB64u(sig) }
}

/**
 * Verifies `signatures` over `msg` against the cluster file's admins. Every signature must name a
 * distinct admin and verify — one unknown, duplicate or bad signature rejects the document, so a
 * forged signature is never silently ignored — and at least adminThreshold must be present.
 * `what` names the document in messages ("policy", "order").
 * Throws BadInputError (unknown or duplicate admin, malformed signature) or VerificationError
 * (no admin keys, bad signature, too few signatures).
 */
export function verifyAdminSignatures (cluster: ClusterFile, what: string, msg: Uint8Array, signatures: readonly AdminSignature[]): void {
  if (cluster.admins.length === 0 || cluster.adminThreshold < 1) throw new VerificationError(`${what}: this cluster file has no admin keys, so no ${what} can be accepted`)
  const seen = new Set<string>()
  signatures.forEach((s, i) => {
    const admin = cluster.admins.find(a => a.name === s.admin)
    if (admin === undefined) throw new BadInputError(`signatures[${i}].admin`, `"${s.admin}" is not an admin of the cluster file`)
    if (seen.has(s.admin)) throw new BadInputError(`signatures[${i}].admin`, `duplicate signature by "${s.admin}"`)
    seen.add(s.admin)
    if (!ed25519Verify(admin.publicKey, msg, fromB64u(`signatures[${i}].sig`, s.sig, ED25519_SIG_LEN))) {
      throw new VerificationError(`${what}: signature by admin "${s.admin}" does not verify (forged, or the ${what} was altered)`)
    }
  })
  if (seen.size < cluster.adminThreshold) throw new VerificationError(`${what}: ${seen.size} valid admin signature(s), the cluster file requires ${cluster.adminThreshold}`)
}
