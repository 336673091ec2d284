/** Checks one JWS known-answer case (see generators/jws.ts). Throws on mismatch. */
import { toHex, utf8 } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'
import { jwsSigningInput, validateJwks, verifyJws, parseJws } from '../../../protocol/jws.ts'
import { validateManifest } from '../../../protocol/manifest.ts'
import { seededJws } from '../generators/jws.ts'

interface JwsCase { name: string, valid: boolean, manifest?: unknown, signingInput?: string, signingInputHex?: string, compact: string, jwks: unknown, error?: string }

export function check (c: JwsCase): void {
  const jwks = validateJwks(c.jwks)
  if (!c.valid) {
    let got: unknown
    try { verifyJws(c.compact, jwks) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
    return
  }
  const m = validateManifest(c.manifest)
  if (jwsSigningInput(m) !== c.signingInput) throw new Error(`${c.name}: signing input mismatch`)
  if (toHex(utf8(c.signingInput)) !== c.signingInputHex) throw new Error(`${c.name}: signing input bytes mismatch`)
  if (JSON.stringify(verifyJws(c.compact, jwks)) !== JSON.stringify(m)) throw new Error(`${c.name}: verified manifest mismatch`)
  if (toHex(parseJws(c.compact).signingInput) !== c.signingInputHex) throw new Error(`${c.name}: parsed signing input mismatch`)
  const again = seededJws()
  if (again.compact !== c.compact) throw new Error(`${c.name}: recomputed JWS differs`)
  if (JSON.stringify(again.jwks) !== JSON.stringify(c.jwks)) throw new Error(`${c.name}: JWKS differs`)
}
