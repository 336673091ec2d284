/**
 * `repair.open|piece|sum`: the helper side of share repair (node/lifecycle/repair-helper.ts,
 * docs/PROTOCOL.md §11.9). Node-only operations (NODE_ONLY_OPS); the caller is identified by its
 * authenticated PeerId and its index in this node's current membership.
 */
import { openRepair, servePiece, serveSum } from '../lifecycle/repair-helper.ts'
import type { Handler } from '../context.ts'

/** Answers `repair.open`. Throws as openRepair. */
export const repairOpenHandler: Handler<'repair.open'> = async (ctx, body, caller) => await openRepair(ctx, caller, body)

/** Answers `repair.piece`. Throws as servePiece. */
export const repairPieceHandler: Handler<'repair.piece'> = async (ctx, body, caller) => servePiece(ctx, caller, body)

/** Answers `repair.sum`. Throws as serveSum. */
export const repairSumHandler: Handler<'repair.sum'> = async (ctx, body, caller) => serveSum(ctx, caller, body)
