/**
 * `policy.get`, `policy.push` and `audit.read` (docs/PROTOCOL.md §9.2, §9.4).
 * Who may call them is decided by node/handlers/audited.ts before these run.
 */
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import type { Handler, NodeContext } from '../context.ts'
import { governanceOf } from '../governance.ts'
import type { Governance } from '../governance.ts'

function gov (ctx: NodeContext): Governance {
  const g = governanceOf(ctx)
  if (g === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'policy and audit are not running on this node')
  return g
}

/** Answers `policy.get`: the version in force, the document when newer than `have`, the latest signed audit head. Throws UNAVAILABLE. */
export const policyGetHandler: Handler<'policy.get'> = async (ctx, body) => {
  const g = gov(ctx)
  const head = g.audit.lastHead
  return {
    policyVersion: g.policyVersion,
    ...(g.policyText !== undefined && g.policyVersion > body.have ? { policy: g.policyText } : {}),
    ...(head !== undefined ? { head } : {})
  }
}

/**
 * Answers `policy.push`. Throws KeymeshError BAD_INPUT (malformed, wrong cluster, unknown admin),
 * VERIFICATION_FAILED (forged/under-signed), CONFLICT (rollback or equivocation), UNAVAILABLE.
 */
export const policyPushHandler: Handler<'policy.push'> = async (ctx, body, caller) => {
  return await gov(ctx).accept(body.policy, caller.kind === 'node' ? `node ${caller.index ?? '?'}` : `${caller.name ?? 'client'} (${caller.peerId})`)
}

/**
 * Answers `audit.read`: signs a fresh head first (so the reader gets a signed tip), then returns
 * records from `from`. Throws KeymeshError INTERNAL when the log cannot be read.
 */
export const auditReadHandler: Handler<'audit.read'> = async (ctx, body) => {
  const g = gov(ctx)
  await g.signHead()
  const records = await g.audit.read(body.from, body.limit)
  return { records, lastSeq: g.audit.lastSeq }
}
