/** Checks one HPKE known-answer case (see generators/hpke.ts). Throws on mismatch. */
import { hpkeOpen, hpkeSealWithEphemeral, recipientPublicKey } from '../../../protocol/hpke.ts'
import type { HpkeAeadId } from '../../../protocol/hpke.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface HpkeCase { name: string, valid: boolean, aead: HpkeAeadId, skRm: string, pkRm: string, skEm: string, enc: string, info: string, aad: string, pt: string, ct: string, error?: string, field?: string }

export function check (c: HpkeCase): void {
  const h = (f: string, v: string): Uint8Array => fromHex(f, v)
  const open = (): Uint8Array => hpkeOpen(h('skRm', c.skRm), h('enc', c.enc), h('info', c.info), h('aad', c.aad), h('ct', c.ct), c.aead)
  if (!c.valid) { expectFailure(c.name, open, c.error as string, c.field); return }
  same(c.name, 'pkRm', toHex(recipientPublicKey(h('skRm', c.skRm))), c.pkRm)
  const s = hpkeSealWithEphemeral(h('pkRm', c.pkRm), h('info', c.info), h('aad', c.aad), h('pt', c.pt), h('skEm', c.skEm), c.aead)
  same(c.name, 'enc', toHex(s.enc), c.enc)
  same(c.name, 'ct', toHex(s.ct), c.ct)
  same(c.name, 'opened', toHex(open()), c.pt)
}
