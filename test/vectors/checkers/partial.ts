/** Checks one partial/combine known-answer case (see generators/partial.ts). Throws on mismatch. */
import { decodeKeySet } from '../../../protocol/keyset.ts'
import { decodeEnvelope, envelopeId } from '../../../protocol/envelope.ts'
import { computeBatchPartialWithRandomness, computePartialWithRandomness, decodePartial, encodePartial, openSealedPartial, partialSealInfo, sealPartialWithEphemeral } from '../../../protocol/partial.ts'
import type { Partial } from '../../../protocol/partial.ts'
import { combine } from '../../../protocol/combine.ts'
import { decodeScalar } from '../../../protocol/group.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { VerificationError } from '../../../protocol/errors.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface PartialCase {
  name: string, kind: 'partial' | 'combine', valid: boolean, keySet: string, envelopes: string[], index?: number, share?: string,
  rand32?: string, plaintext?: string, skRm?: string, pkRm?: string, skEm?: string, info?: string, sealed?: string,
  partials?: string[], dataKey?: string, error?: string, blame?: number[]
}

function expectBlame (name: string, f: () => unknown, blame: number[]): void {
  try { f() } catch (e) {
    if (!(e instanceof VerificationError)) throw new Error(`${name}: expected VerificationError, got ${String(e)}`)
    if (JSON.stringify(e.blame) !== JSON.stringify(blame)) throw new Error(`${name}: blame ${JSON.stringify(e.blame)} ≠ ${JSON.stringify(blame)}`)
    return
  }
  throw new Error(`${name}: invalid input was accepted`)
}

export function check (c: PartialCase): void {
  const ks = decodeKeySet(fromHex('keySet', c.keySet))
  const envs = c.envelopes.map(e => decodeEnvelope(fromHex('envelope', e)))
  const ids = envs.map(envelopeId)
  if (c.kind === 'combine') {
    const ps = (c.partials as string[]).map(p => decodePartial(fromHex('partial', p)) as Partial)
    if (!c.valid) { expectFailure(c.name, () => combine(ks, envs[0]!, ps), c.error as string); expectBlame(c.name, () => combine(ks, envs[0]!, ps), c.blame ?? []); return }
    const blamed: number[] = []
    same(c.name, 'data key', toHex(combine(ks, envs[0]!, ps, { onBlame: b => blamed.push(...b) })), c.dataKey)
    same(c.name, 'data key (strict)', toHex(combine(ks, envs[0]!, ps, { strict: true })), c.dataKey)
    same(c.name, 'blame', JSON.stringify(blamed), JSON.stringify(c.blame ?? []))
    return
  }
  const skR = fromHex('skRm', c.skRm, 32)
  const sealed = fromHex('sealed', c.sealed)
  const index = c.index as number
  if (!c.valid) { expectBlame(c.name, () => openSealedPartial(sealed, ks, ids, index, skR), c.blame ?? []); return }
  const share = { index, scalar: decodeScalar('share', fromHex('share', c.share, 32)) }
  const rand = fromHex('rand32', c.rand32, 32)
  const p = envs.length === 1 && decodePartial(fromHex('plaintext', c.plaintext)).D instanceof Array === false
    ? computePartialWithRandomness(share, ks, envs[0]!, () => rand)
    : computeBatchPartialWithRandomness(share, ks, envs, () => rand)
  same(c.name, 'plaintext', toHex(encodePartial(p)), c.plaintext)
  same(c.name, 'info', toHex(partialSealInfo(ks, ids, index)), c.info)
  same(c.name, 'sealed', toHex(sealPartialWithEphemeral(p, ks, ids, fromHex('pkRm', c.pkRm, 32), fromHex('skEm', c.skEm, 32))), c.sealed)
  same(c.name, 'opened', toHex(encodePartial(openSealedPartial(sealed, ks, ids, index, skR))), c.plaintext)
}
