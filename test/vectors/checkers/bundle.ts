/** Checks one bundle known-answer case (see generators/bundle.ts). Throws on mismatch. */
import { decodeKeySet } from '../../../protocol/keyset.ts'
import { decodeBundle, encodeBundle, openBundle } from '../../../protocol/bundle.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { VerificationError } from '../../../protocol/errors.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface BundleCase { name: string, valid: boolean, keySet: string, skRm: string, bundle: string, dataKeys?: string[], blame?: number[], error?: string, field?: string }

export function check (c: BundleCase): void {
  const ks = decodeKeySet(fromHex('keySet', c.keySet))
  const skR = fromHex('skRm', c.skRm, 32)
  const bytes = fromHex('bundle', c.bundle)
  const run = (onBlame?: (b: number[]) => void): Uint8Array[] => openBundle(decodeBundle(bytes), ks, skR, { onBlame })
  if (!c.valid) {
    expectFailure(c.name, () => run(), c.error as string, c.field)
    if (c.blame !== undefined) {
      try { run() } catch (e) {
        if (!(e instanceof VerificationError) || JSON.stringify(e.blame) !== JSON.stringify(c.blame)) throw new Error(`${c.name}: blame mismatch`)
      }
    }
    return
  }
  same(c.name, 're-encoding', toHex(encodeBundle(decodeBundle(bytes))), c.bundle)
  const blamed: number[] = []
  same(c.name, 'data keys', JSON.stringify(run(b => blamed.push(...b)).map(toHex)), JSON.stringify(c.dataKeys))
  same(c.name, 'blame', JSON.stringify(blamed), JSON.stringify(c.blame ?? []))
}
