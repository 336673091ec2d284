/**
 * Authorization hook for the crypto operations (brief §2.5: least privilege, enforced by every
 * node). Every handler that touches a share calls `authorize` AFTER it has parsed and validated
 * the request (so the decision sees the real label / manifest) and BEFORE it uses the share.
 *
 * Current rule (placeholder until the policy document lands): the caller must be an enrolled
 * client of the cluster file (`caller.kind === 'client'`). Cluster nodes are not clients: a node
 * has no business asking another node for a partial decryption or a signature share. Unknown
 * peers never get here (refused by the connection gater). The policy issue will replace the body
 * with role/scope checks (builder for app A cannot decrypt; target for app A / env prod can
 * decrypt only that scope) — the signature is what handlers code against.
 */
import { NotAuthorizedError } from '../../protocol/errors.ts'
import type { Label } from '../../protocol/label.ts'
import type { Manifest } from '../../protocol/manifest.ts'
import type { Caller, NodeContext } from '../context.ts'

/** Operations that are subject to authorization, and what each decision is about. */
export type AuthzRequest =
  | { op: 'partial' | 'partial.batch', label: Label }
  | { op: 'frost.commit', epoch: number }
  | { op: 'frost.sign', epoch: number, manifest: Manifest }

/**
 * Allows or refuses one request. Resolves when allowed; throws NotAuthorizedError (code
 * NOT_AUTHORIZED, message names the op but no secret) when refused.
 */
export async function authorize (ctx: NodeContext, caller: Caller, req: AuthzRequest): Promise<void> {
  void ctx
  if (caller.kind !== 'client') {
    throw new NotAuthorizedError(`${req.op}: only enrolled clients may request this operation (caller ${caller.peerId} is a ${caller.kind})`)
  }
}
