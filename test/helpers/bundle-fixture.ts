/** Test fixture: a bundle for one recipient built from honest (or chosen) node partials. */
import { envelopeId } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import type { Bundle } from '../../protocol/bundle.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import { computeBatchPartial, sealPartial } from '../../protocol/partial.ts'
import { keySetId } from '../../protocol/keyset.ts'

export function makeBundle (ks: KeySet, shares: KeyShare[], envs: Envelope[], recipient: Uint8Array): Bundle {
  const ids = envs.map(envelopeId)
  return {
    version: 1,
    recipient,
    keySetId: keySetId(ks),
    envelopes: envs,
    partials: shares.map(s => ({ index: s.index, sealed: sealPartial(computeBatchPartial(s, ks, envs), ks, ids, recipient) }))
  }
}
