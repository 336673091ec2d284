/**
 * `keyset.get`: the committed key set of an epoch (default: the current epoch), as encodeKeySet
 * bytes. Public data; any authenticated caller may fetch it (clients verify it themselves: a
 * client trusts a key set only when k nodes agree on its keySetId).
 */
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import type { Handler } from '../context.ts'

/**
 * Answers `keyset.get`. With `keySetId`: that generation of the epoch (default epoch: the current
 * one), current or older (a refresh keeps every generation's public key set). Throws KeymeshError
 * NOT_FOUND when no key set (or no such generation) is committed for the epoch.
 */
export const keysetGetHandler: Handler<'keyset.get'> = async (ctx, body) => {
  const epoch = body.epoch ?? await ctx.store.currentEpoch()
  if (epoch === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, 'no key set yet (the DKG has not completed)')
  if (body.keySetId !== undefined) {
    const gen = await ctx.store.getKeySetGeneration(epoch, body.keySetId)
    if (gen === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `no key set ${body.keySetId.slice(0, 16)}… for epoch ${epoch} on this node`)
    return { keySet: gen }
  }
  const bytes = await ctx.store.getKeySetBytes(epoch)
  if (bytes === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `no key set for epoch ${epoch}`)
  return { keySet: bytes }
}
