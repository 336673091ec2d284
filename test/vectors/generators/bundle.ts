/** Known-answer vectors for the bundle format (docs/PROTOCOL.md §7). */
import { encodeKeySet, keySetId } from '../../../protocol/keyset.ts'
import { envelopeId } from '../../../protocol/envelope.ts'
import { wrapWithRandomness } from '../../../protocol/wrap.ts'
import { computeBatchPartialWithRandomness, sealPartialWithEphemeral } from '../../../protocol/partial.ts'
import { recipientPublicKey } from '../../../protocol/hpke.ts'
import { encodeBundle } from '../../../protocol/bundle.ts'
import type { Bundle } from '../../../protocol/bundle.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { mod } from '../../../protocol/group.ts'
import { dealKeySet, labelFor, seededRng } from '../../helpers/dealer.ts'

export function generate (): unknown {
  const { ks, shares } = dealKeySet(2, 3, 'keymesh-vectors-bundle')
  const rng = seededRng('keymesh-vectors-bundle-rng')
  const keys = [rng(32), rng(32), rng(32)]
  const envs = keys.map((k, j) => wrapWithRandomness(ks, labelFor(ks, { release: `v${j + 1}` }), k, rng))
  const skR = rng(32)
  const pkR = recipientPublicKey(skR)
  const ids = envs.map(envelopeId)
  const seal = (share: { index: number, scalar: bigint }): { index: number, sealed: Uint8Array } => {
    const r32 = rng(32)
    const p = computeBatchPartialWithRandomness(share, ks, envs, () => r32)
    return { index: share.index, sealed: sealPartialWithEphemeral(p, ks, ids, pkR, rng(32)) }
  }
  const s1 = seal(shares[0]!)
  const s3 = seal(shares[2]!)
  const bad2 = seal({ index: 2, scalar: mod(shares[1]!.scalar + 7n) })
  const bundle: Bundle = { version: 1, recipient: pkR, keySetId: keySetId(ks), envelopes: envs, partials: [s1, s3] }
  const good = encodeBundle(bundle)
  const withBad = encodeBundle({ ...bundle, partials: [s1, bad2, s3] })
  const keySet = toHex(encodeKeySet(ks))
  const common = { keySet, skRm: toHex(skR) }
  const flip = (off: number): string => { const b = good.slice(); b[off] = (b[off] as number) ^ 1; return toHex(b) }
  const v = good.slice(); v[4] = 2
  return {
    format: 'bundle',
    version: 1,
    description: 'Bundle: "KMBU" ‖ u8 1 ‖ recipient(32) ‖ keySetId(32) ‖ u16 count ‖ count×var32(envelope) ‖ u8 nodes ‖ nodes×(u8 index ‖ var32(sealed batch partial over all envelopes)). openBundle with the recipient secret skRm returns dataKeys; `blame` lists nodes routed around. Invalid cases fail with `error` (and `field`/`blame`).',
    cases: [
      { name: 'three envelopes, nodes 1 and 3', valid: true, ...common, bundle: toHex(good), dataKeys: keys.map(toHex), blame: [] },
      { name: 'node 2 sent a wrong partial: routed around', valid: true, ...common, bundle: toHex(withBad), dataKeys: keys.map(toHex), blame: [2] },
      { name: 'unknown version', valid: false, ...common, bundle: toHex(v), error: 'UNSUPPORTED_VERSION', field: 'bundle.version' },
      { name: 'truncated', valid: false, ...common, bundle: toHex(good.subarray(0, good.length - 3)), error: 'BAD_INPUT' },
      { name: 'flipped recipient byte', valid: false, ...common, bundle: flip(6), error: 'BAD_INPUT', field: 'recipientSecret' },
      { name: 'flipped last byte (node 3 sealed partial)', valid: false, ...common, bundle: flip(good.length - 1), error: 'VERIFICATION_FAILED', blame: [3] },
      { name: 'only node 1 and the wrong node 2', valid: false, ...common, bundle: toHex(encodeBundle({ ...bundle, partials: [s1, bad2] })), error: 'VERIFICATION_FAILED', blame: [2] }
    ]
  }
}
