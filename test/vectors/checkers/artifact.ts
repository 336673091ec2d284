/** Checks one artifact known-answer case (see generators/artifact.ts). Throws on mismatch. */
import { artifactEncryptorWithSalt, artifactKeySchedule, decryptArtifactBytes, encodeArtifactHeader } from '../../../protocol/artifact.ts'
import { concat, equalBytes, fromHex, toHex } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'

interface ArtifactCase {
  name: string
  valid: boolean
  key: string
  artifact: string
  salt?: string
  chunkSize?: number
  header?: string
  payloadKey?: string
  aad?: string
  plaintext?: string
  error?: string
}

export function check (c: ArtifactCase): void {
  const key = fromHex('key', c.key, 32)
  const artifact = fromHex('artifact', c.artifact)
  if (!c.valid) {
    let got: unknown
    try { decryptArtifactBytes(key, artifact) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: invalid artifact was accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)} (${String(got)})`)
    return
  }
  const salt = fromHex('salt', c.salt, 16)
  const pt = fromHex('plaintext', c.plaintext)
  const header = encodeArtifactHeader(c.chunkSize as number, salt)
  if (toHex(header) !== c.header) throw new Error(`${c.name}: header mismatch`)
  const ks = artifactKeySchedule(key, header)
  if (toHex(ks.payloadKey) !== c.payloadKey) throw new Error(`${c.name}: payload key mismatch`)
  if (toHex(ks.aad) !== c.aad) throw new Error(`${c.name}: aad mismatch`)
  const e = artifactEncryptorWithSalt(key, salt, { chunkSize: c.chunkSize })
  const enc = concat(...e.push(pt), ...e.finish())
  if (!equalBytes(enc, artifact)) throw new Error(`${c.name}: encryption mismatch`)
  if (!equalBytes(decryptArtifactBytes(key, artifact), pt)) throw new Error(`${c.name}: decryption mismatch`)
}
