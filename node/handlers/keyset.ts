/**
 * `keyset.get`: the committed key set of an epoch (default: the current epoch), as encodeKeySet
 * bytes. Public data; any authenticated caller may fetch it (clients verify it themselves: a
 * client trusts a key set only when k nodes agree on its keySetId).
 */
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import type { Handler } from '../context.ts'

/** Answers `keyset.get`. Throws KeymeshError NOT_FOUND when no key set is committed for the epoch. */
export const keysetGetHandler: Handler<'keyset.get'> = async (ctx, body) => {
  const epoch = body.epoch ?? await ctx.store.currentEpoch()
  if (epoch === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, 'no key set yet (the DKG has not completed)')
  const bytes = await ctx.store.getKeySetBytes(epoch)
  if (bytes === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `no key set for epoch ${epoch}`)
  return { keySet: bytes }
}
