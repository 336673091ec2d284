/**
 * Registry of operation handlers. The RPC server dispatches a decoded request to
 * `handlers[op]`; an op without a handler is answered with UNAVAILABLE.
 *
 * Owners: `status` — infrastructure (node/handlers/status.ts); keyset.get, partial*, frost.*,
 * dkg.* — the handlers helper (node/handlers/{keyset,partial,frost,dkg}.ts): add one import and
 * one entry per operation below.
 */
import type { RpcOp } from '../../protocol/rpc.ts'
import type { Handler } from '../context.ts'
import { statusHandler } from './status.ts'
import { keysetGetHandler } from './keyset.ts'
import { partialBatchHandler, partialHandler } from './partial.ts'
import { frostCommitHandler, frostSignHandler } from './frost.ts'
import { auditReadHandler, policyGetHandler, policyPushHandler } from './policy.ts'
import { dkgEchoHandler, dkgResultHandler, dkgRound1Handler, dkgRound2Handler } from './dkg.ts'
import { dkgOrderHandler, lifecycleOrderHandler, retiredGuard } from './lifecycle.ts'
import { refreshEchoHandler, refreshResultHandler, refreshRound1Handler, refreshRound2Handler } from './refresh.ts'
import { repairOpenHandler, repairPieceHandler, repairSumHandler } from './repair.ts'
import { clusterGetHandler, reshareResultHandler, reshareRound1Handler, reshareRound2Handler, reshareViewHandler } from './reshare.ts'

/** Handlers by operation. */
export type HandlerTable = Partial<{ [O in RpcOp]: Handler<O> }>

/** The handler table used by the RPC server. */
export const handlers: HandlerTable = {
  status: statusHandler,
  'keyset.get': keysetGetHandler,
  partial: retiredGuard(partialHandler),
  'partial.batch': retiredGuard(partialBatchHandler),
  'frost.commit': retiredGuard(frostCommitHandler),
  'frost.sign': retiredGuard(frostSignHandler),
  'dkg.round1': dkgRound1Handler,
  'dkg.echo': dkgEchoHandler,
  'dkg.round2': dkgRound2Handler,
  'dkg.result': dkgResultHandler,
  'policy.get': policyGetHandler,
  'policy.push': policyPushHandler,
  'audit.read': auditReadHandler,
  'lifecycle.order': lifecycleOrderHandler,
  'dkg.order': dkgOrderHandler,
  'refresh.round1': refreshRound1Handler,
  'refresh.echo': refreshEchoHandler,
  'refresh.round2': refreshRound2Handler,
  'refresh.result': refreshResultHandler,
  'cluster.get': clusterGetHandler,
  'reshare.round1': reshareRound1Handler,
  'reshare.round2': reshareRound2Handler,
  'reshare.view': reshareViewHandler,
  'reshare.result': reshareResultHandler,
  'repair.open': repairOpenHandler,
  'repair.piece': repairPieceHandler,
  'repair.sum': repairSumHandler
}
