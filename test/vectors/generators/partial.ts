/**
 * Known-answer vectors for node partials, their sealing to a recipient and combining
 * (docs/PROTOCOL.md §4–§6).
 */
import { encodeKeySet } from '../../../protocol/keyset.ts'
import { encodeEnvelope, envelopeId } from '../../../protocol/envelope.ts'
import { wrapWithRandomness } from '../../../protocol/wrap.ts'
import { computeBatchPartialWithRandomness, computePartialWithRandomness, encodePartial, partialSealInfo, sealPartialWithEphemeral } from '../../../protocol/partial.ts'
import { recipientPublicKey } from '../../../protocol/hpke.ts'
import { encodeScalar, mod } from '../../../protocol/group.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { dealKeySet, labelFor, seededRng } from '../../helpers/dealer.ts'

export function generate (): unknown {
  const { ks, shares } = dealKeySet(2, 3, 'keymesh-vectors-partial')
  const rng = seededRng('keymesh-vectors-partial-rng')
  const dataKey = rng(32)
  const env = wrapWithRandomness(ks, labelFor(ks), dataKey, rng)
  const env2 = wrapWithRandomness(ks, labelFor(ks, { release: 'v2' }), rng(32), rng)
  const skR = rng(32)
  const pkR = recipientPublicKey(skR)
  const keySet = toHex(encodeKeySet(ks))
  const envelope = toHex(encodeEnvelope(env))
  const ids = [envelopeId(env)]
  const cases: Array<Record<string, unknown>> = []
  const plaintexts: string[] = []
  for (const share of shares) {
    const rand32 = rng(32)
    const p = computePartialWithRandomness(share, ks, env, () => rand32)
    const skE = rng(32)
    plaintexts.push(toHex(encodePartial(p)))
    cases.push({
      name: `node ${share.index}: single partial, sealed`,
      kind: 'partial', valid: true, keySet, envelopes: [envelope], index: share.index, share: toHex(encodeScalar(share.scalar)),
      rand32: toHex(rand32), plaintext: toHex(encodePartial(p)), skRm: toHex(skR), pkRm: toHex(pkR), skEm: toHex(skE),
      info: toHex(partialSealInfo(ks, ids, share.index)), sealed: toHex(sealPartialWithEphemeral(p, ks, ids, pkR, skE))
    })
  }
  {
    const share = shares[1]!
    const rand32 = rng(32)
    const both = [env, env2]
    const p = computeBatchPartialWithRandomness(share, ks, both, () => rand32)
    const skE = rng(32)
    const bids = both.map(envelopeId)
    cases.push({
      name: 'node 2: batch partial over 2 envelopes, sealed',
      kind: 'partial', valid: true, keySet, envelopes: both.map(e => toHex(encodeEnvelope(e))), index: 2, share: toHex(encodeScalar(share.scalar)),
      rand32: toHex(rand32), plaintext: toHex(encodePartial(p)), skRm: toHex(skR), pkRm: toHex(pkR), skEm: toHex(skE),
      info: toHex(partialSealInfo(ks, bids, 2)), sealed: toHex(sealPartialWithEphemeral(p, ks, bids, pkR, skE))
    })
  }
  const wrongRand = rng(32)
  const wrong = toHex(encodePartial(computePartialWithRandomness({ index: 2, scalar: mod(shares[1]!.scalar + 1n) }, ks, env, () => wrongRand)))
  const sealed0 = Buffer.from(cases[0]!.sealed as string, 'hex'); sealed0[50] = (sealed0[50] as number) ^ 1
  cases.push(
    { name: 'combine nodes 1, 3', kind: 'combine', valid: true, keySet, envelopes: [envelope], partials: [plaintexts[0], plaintexts[2]], dataKey: toHex(dataKey) },
    { name: 'combine nodes 3, 2, 1', kind: 'combine', valid: true, keySet, envelopes: [envelope], partials: [plaintexts[2], plaintexts[1], plaintexts[0]], dataKey: toHex(dataKey) },
    { name: 'combine with a wrong partial from node 2: blamed', kind: 'combine', valid: false, keySet, envelopes: [envelope], partials: [plaintexts[0], wrong], error: 'VERIFICATION_FAILED', blame: [2] },
    { name: 'combine: a wrong partial from node 2 routed around', kind: 'combine', valid: true, keySet, envelopes: [envelope], partials: [wrong, plaintexts[0], plaintexts[2]], dataKey: toHex(dataKey), blame: [2] },
    { ...cases[0], name: 'sealed partial with a flipped byte', valid: false, sealed: sealed0.toString('hex'), error: 'VERIFICATION_FAILED', blame: [1] },
    { ...cases[0], name: 'sealed partial opened as another node', valid: false, index: 2, error: 'VERIFICATION_FAILED', blame: [2] }
  )
  return {
    format: 'partial',
    version: 1,
    description: 'Node partials: R̂ = 8·R; D = x_i·R̂; DLEQ (format dleq) with H = R̂ and the 32-byte hedge rand32; plaintext = u8 kind (1 single, 2 batch) ‖ u8 index ‖ [u16 m] ‖ D… ‖ c ‖ z; sealed = HPKE base (X25519, HKDF-SHA256, AES-256-GCM) with info = "keymesh/v1/partial/seal" ‖ keySetId ‖ u8 index ‖ SHA-256(envelopeIds…), aad empty, ephemeral secret skEm; output enc ‖ ct. Combine: Z = Σ (λ_i/64)·(8·D_i). Invalid cases fail with `error` and `blame`.',
    cases
  }
}
