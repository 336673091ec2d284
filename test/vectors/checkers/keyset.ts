/** Checks one KeySet known-answer case (see generators/keyset.ts). Throws on mismatch. */
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'
import { decodeKeySet, encodeKeySet, keySetFromJSON, keySetId, keySetToJSON, signKey, wrapKey } from '../../../protocol/keyset.ts'
import { encodePoint } from '../../../protocol/group.ts'

interface KeySetCase { name: string, valid: boolean, encoding: string, keySetId?: string, wrapKey?: string, signKey?: string, json?: unknown, error?: string }

export function check (c: KeySetCase): void {
  const b = fromHex('encoding', c.encoding)
  if (!c.valid) {
    let got: unknown
    try { decodeKeySet(b) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: invalid key set was accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
    return
  }
  const ks = decodeKeySet(b)
  if (toHex(encodeKeySet(ks)) !== c.encoding) throw new Error(`${c.name}: re-encoding mismatch`)
  if (keySetId(ks) !== c.keySetId) throw new Error(`${c.name}: keySetId mismatch`)
  if (toHex(encodePoint(wrapKey(ks))) !== c.wrapKey) throw new Error(`${c.name}: wrap key mismatch`)
  if (toHex(signKey(ks)) !== c.signKey) throw new Error(`${c.name}: sign key mismatch`)
  if (JSON.stringify(keySetToJSON(ks)) !== JSON.stringify(c.json)) throw new Error(`${c.name}: JSON form mismatch`)
  if (toHex(encodeKeySet(keySetFromJSON(c.json))) !== c.encoding) throw new Error(`${c.name}: JSON decode mismatch`)
}
