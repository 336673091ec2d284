/** Checks one manifest known-answer case (see generators/manifest.ts). Throws on mismatch. */
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'
import { canonicalManifest, parseManifest, validateManifest } from '../../../protocol/manifest.ts'

interface ManifestCase { name: string, valid: boolean, manifest?: unknown, canonical?: string, bytes?: string, error?: string }

export function check (c: ManifestCase): void {
  if (!c.valid) {
    let got: unknown
    try { parseManifest(fromHex('bytes', c.bytes)) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
    return
  }
  const m = validateManifest(c.manifest)
  if (toHex(canonicalManifest(m)) !== c.canonical) throw new Error(`${c.name}: canonical bytes mismatch`)
  if (JSON.stringify(parseManifest(fromHex('canonical', c.canonical))) !== JSON.stringify(m)) throw new Error(`${c.name}: parse mismatch`)
}
