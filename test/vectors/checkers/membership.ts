/** Checks one membership-fold known-answer case (see generators/membership.ts). Throws on mismatch. */
import { errorCode } from '../../../protocol/errors.ts'
import { serializeClusterFile, validateClusterFile } from '../../../protocol/cluster.ts'
import { foldMembership } from '../../../protocol/membership.ts'

interface MembershipCase { name: string, valid: boolean, genesis: unknown, orders: string[], revision?: number, cluster?: string, error?: string }

export function check (c: MembershipCase): void {
  const genesis = validateClusterFile(c.genesis)
  if (!c.valid) {
    let got: unknown
    try { foldMembership(genesis, c.orders) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
    return
  }
  const m = foldMembership(genesis, c.orders)
  if (m.revision !== c.revision) throw new Error(`${c.name}: revision ${m.revision}, expected ${String(c.revision)}`)
  if (serializeClusterFile(m.cluster) !== c.cluster) throw new Error(`${c.name}: effective cluster file mismatch`)
  if (m.orders.join('\n') !== c.orders.join('\n')) throw new Error(`${c.name}: order texts not canonical`)
}
