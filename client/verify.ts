/**
 * Release verification without decryption: the manifest JWS against the cluster's JWKS, the parts
 * of the release directory against each other, and the encrypted artifact's SHA-256 and size
 * against the signed manifest (brief §2.7: integrity before deployment).
 */
import { VerificationError } from '../protocol/errors.ts'
import type { KeySet } from '../protocol/keyset.ts'
import { jwksFromKeySets, verifyJws, validateJwks } from '../protocol/jws.ts'
import type { Jwks } from '../protocol/jws.ts'
import type { Manifest } from '../protocol/manifest.ts'
import { checkReleaseConsistency, loadRelease, verifyArtifactDigest } from './release-layout.ts'
import type { LoadedRelease } from './release-layout.ts'
import { noProgress } from './progress.ts'
import type { ProgressFn } from './progress.ts'

/** Result of a successful verification. */
export interface VerifyResult {
  manifest: Manifest
  /** The JWS key id that verified ("keymesh:<clusterId>:<epoch>"). */
  kid: string
}

/**
 * Verifies the JWS of a loaded release with `keys` (a JWKS, or key sets to build one from) and
 * that the manifest is for `clusterId` when given. Returns the verified manifest.
 * Throws VerificationError (bad signature, unknown kid, other cluster), BadInputError (malformed JWKS).
 */
export function verifyReleaseSignature (rel: LoadedRelease, keys: Jwks | KeySet[], clusterId?: string): VerifyResult {
  const jwks = Array.isArray(keys) ? jwksFromKeySets(keys) : validateJwks(keys)
  const manifest = verifyJws(rel.jws, jwks)
  if (clusterId !== undefined && manifest.cluster !== clusterId) throw new VerificationError(`release is signed for cluster ${manifest.cluster}, not ${clusterId}`)
  return { manifest, kid: rel.parsedJws.header.kid }
}

/**
 * Full offline verification of a release directory: structure, signature, artifact digest.
 * Throws BadInputError (missing/malformed files), VerificationError (any check fails).
 */
export async function verifyRelease (dir: string, keys: Jwks | KeySet[], opts: { clusterId?: string, onProgress?: ProgressFn } = {}): Promise<VerifyResult> {
  const progress = opts.onProgress ?? noProgress
  const rel = await loadRelease(dir)
  const res = verifyReleaseSignature(rel, keys, opts.clusterId)
  checkReleaseConsistency(rel)
  let done = 0
  await verifyArtifactDigest(rel, (n) => { done += n; progress({ phase: 'verify', done, total: rel.manifest.artifact.size }) })
  return res
}
