/** Checks one label known-answer case (see generators/label.ts). Throws on mismatch. */
import { decodeLabel, encodeLabel } from '../../../protocol/label.ts'
import type { Label } from '../../../protocol/label.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface LabelCase { name: string, valid: boolean, label?: Label, encoded: string, error?: string, field?: string }

export function check (c: LabelCase): void {
  const bytes = fromHex('encoded', c.encoded)
  if (!c.valid) { expectFailure(c.name, () => decodeLabel(bytes), c.error as string, c.field); return }
  same(c.name, 'encoding', toHex(encodeLabel(c.label as Label)), c.encoded)
  same(c.name, 'decoding', JSON.stringify(decodeLabel(bytes)), JSON.stringify(c.label))
}
