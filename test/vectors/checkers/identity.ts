/** Checks one client identity file case (see generators/identity.ts). Throws on mismatch. */
import { identityFromJSON } from '../../../client/identity.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface IdentityCase { name: string, valid: boolean, file: string, peerId?: string, recipientPublicKey?: string, error?: string, field?: string }

export function check (c: IdentityCase): void {
  const json = JSON.parse(c.file) as unknown
  if (!c.valid) { expectFailure(c.name, () => identityFromJSON(json), c.error as string, c.field); return }
  const id = identityFromJSON(json)
  same(c.name, 'peerId', id.peerId.toString(), c.peerId)
  same(c.name, 'recipientPublicKey', toHex(id.recipientPublicKey), c.recipientPublicKey)
}
