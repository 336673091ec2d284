/**
 * Wraps every operation handler with the policy gate and the audit record (brief §2.5, §2.6).
 *
 * Per request:
 *   1. an operation-level decision from the current policy (protocol/policy.ts `decide`: e.g. an
 *      auditor calling `partial`, a client calling `dkg.*`, a revoked identity calling anything);
 *      a refusal is recorded and answered NOT_AUTHORIZED without running the handler;
 *   2. operations without a scoped decision (status, keyset.get, policy.get, audit.read, dkg.*)
 *      are recorded as allowed BEFORE the handler runs — if that append fails, the request is
 *      refused (fail closed);
 *   3. scoped operations (partial*, frost.*) record their own, finer decision inside the handler
 *      (node/handlers/authz.ts `authorize`); when the handler fails before deciding (bad input, no
 *      key set, ...) the failure is recorded here with decision `error` and its code;
 *   4. `policy.push` is recorded after the handler with its outcome (accepted, same, refused and why).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { ErrorCode, KeymeshError, NotAuthorizedError, errorCode } from '../../protocol/errors.ts'
import type { RpcOp } from '../../protocol/rpc.ts'
import type { PolicyOp } from '../../protocol/policy.ts'
import type { RequestFields } from '../../protocol/audit.ts'
import type { Handler } from '../context.ts'
import { governanceOf, subjectOf } from '../governance.ts'
import type { HandlerTable } from './index.ts'

const current = new AsyncLocalStorage<{ recorded: boolean }>()

/** Called by `authorize` after it recorded the request's decision. Never throws. */
export function markRecorded (): void {
  const s = current.getStore()
  if (s !== undefined) s.recorded = true
}

const SCOPED: ReadonlySet<RpcOp> = new Set<RpcOp>(['partial', 'partial.batch', 'frost.commit', 'frost.sign'])

function policyOpOf (op: RpcOp): PolicyOp {
  // refresh.* is the node-only refresh ceremony (node/lifecycle/refresh-ceremony.ts): same class as dkg.*.
  // reshare.* likewise; cluster.get is public membership data, the same class as status.
  // repair.* (share repair between members) likewise.
  if (op.startsWith('dkg.') || op.startsWith('refresh.') || op.startsWith('reshare.') || op.startsWith('repair.')) return 'dkg'
  if (op === 'cluster.get') return 'status'
  if (SCOPED.has(op)) return 'connect'
  return op as PolicyOp
}

/**
 * Returns the handler table with every handler wrapped. Wrapped handlers throw what the original
 * throws, NotAuthorizedError for a refused request, KeymeshError INTERNAL when the audit append fails.
 */
export function auditedHandlers (table: HandlerTable): HandlerTable {
  const out: HandlerTable = {}
  for (const [op, h] of Object.entries(table) as Array<[RpcOp, Handler<RpcOp>]>) {
    const wrapped: Handler<RpcOp> = async (ctx, body, caller, signal) => {
      const gov = governanceOf(ctx)
      if (gov === undefined) return await h(ctx, body, caller, signal)
      const d = gov.decide(subjectOf(caller), policyOpOf(op))
      const base = { peer: caller.peerId, role: d.role, op }
      const record = async (f: Partial<RequestFields> & Pick<RequestFields, 'decision' | 'reason'>): Promise<void> => {
        try { await gov.record({ ...base, ...f }) } catch (e) {
          ctx.log.error('audit append failed: refusing the request', { op, code: errorCode(e) })
          throw new KeymeshError(ErrorCode.INTERNAL, 'audit log unavailable: request refused')
        }
      }
      if (!d.allow) {
        await record({ decision: 'deny', reason: d.reason })
        throw new NotAuthorizedError(`${op}: ${d.reason}`)
      }
      if (!SCOPED.has(op) && op !== 'policy.push') await record({ decision: 'allow', reason: d.reason })
      const state = { recorded: !SCOPED.has(op) && op !== 'policy.push' }
      let res
      try {
        res = await current.run(state, async () => await h(ctx, body, caller, signal))
      } catch (e) {
        if (!state.recorded) {
          const code = errorCode(e)
          await record({ decision: op === 'policy.push' || code === ErrorCode.NOT_AUTHORIZED ? 'deny' : 'error', code, reason: (e as Error).message ?? code })
        }
        throw e
      }
      if (op === 'policy.push') {
        const r = res as { accepted: boolean, policyVersion: number }
        await record({ decision: 'allow', reason: r.accepted ? `policy v${r.policyVersion} accepted` : `policy v${r.policyVersion} already in force` })
      }
      return res
    }
    ;(out as Record<string, Handler<RpcOp>>)[op] = wrapped
  }
  return out
}
