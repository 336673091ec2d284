/**
 * Authorization and audit of the crypto operations (brief §2.5, §2.6; docs/PROTOCOL.md).
 *
 * Every handler that touches a share calls `authorize` AFTER it has parsed and validated the
 * request (so the decision sees the real label / manifest) and BEFORE it uses the share. The
 * decision comes from protocol/policy.ts `decide` with the node's current policy (or the bootstrap
 * rule before the first policy). The request and its decision are appended to the audit log
 * first; when that append fails the request is refused (fail closed).
 *
 * For `partial`/`partial.batch`, the node itself verifies the facts `decide` relies on:
 *   - signedRelease: a manifest JWS from the request verifies against this node's own key set of
 *     the manifest's epoch (protocol/jws.ts) and names this cluster and exactly the envelope id,
 *     app, env and release of the envelopes being unwrapped;
 *   - approvals: distinct cluster-file admins whose Ed25519 approval of (cluster, app, env,
 *     release, envelope id) verifies, counted per envelope (the minimum over the envelopes).
 *
 * Without a governance object (bare unit-test contexts) the pre-policy rule applies: enrolled
 * clients only.
 */
import { createHash } from 'node:crypto'
import { ErrorCode, KeymeshError, NotAuthorizedError, errorCode } from '../../protocol/errors.ts'
import { toB64u, toHex } from '../../protocol/bytes.ts'
import type { Label } from '../../protocol/label.ts'
import type { Manifest } from '../../protocol/manifest.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { jwksFromKeySets, parseJws, verifyJws } from '../../protocol/jws.ts'
import { countApprovals, parseApproval } from '../../protocol/policy.ts'
import type { Approval, DecisionContext, PolicyOp } from '../../protocol/policy.ts'
import type { RequestFields } from '../../protocol/audit.ts'
import type { Caller, NodeContext } from '../context.ts'
import { governanceOf, subjectOf } from '../governance.ts'
import { markRecorded } from './audited.ts'

/** Operations that are subject to authorization, and what each decision is about. */
export type AuthzRequest =
  | {
    op: 'partial' | 'partial.batch'
    label: Label
    /** Recipient X25519 public key. */
    recipient?: Uint8Array
    /** envelopeIds of the envelopes with this label. */
    envelopeIds?: Uint8Array[]
    /** Manifest JWSs presented with the request. */
    manifests?: string[]
    /** Approvals presented with the request (JSON text). */
    approvals?: string[]
  }
  | { op: 'frost.commit', epoch: number }
  | { op: 'frost.sign', epoch: number, manifest: Manifest }

/** Digest of several envelope ids for the audit record: the id itself for one, SHA-256 of the concatenation for more. */
function envelopeDigest (ids: Uint8Array[]): string | undefined {
  if (ids.length === 0) return undefined
  if (ids.length === 1) return toHex(ids[0] as Uint8Array)
  const h = createHash('sha256')
  for (const id of ids) h.update(id)
  return h.digest('hex')
}

/**
 * The presented manifests that verify against this node's own key set of their epoch and belong
 * to this cluster, by envelope id (hex). Each JWS is parsed and verified once. Never throws
 * (a manifest that does not verify is simply not counted).
 */
async function verifiedManifests (ctx: NodeContext, manifests: string[]): Promise<Map<string, Manifest>> {
  // partial.batch authorizes once per label group with the SAME manifests array: verify it once.
  const memo = verifiedMemo.get(manifests)
  if (memo !== undefined) return await memo
  const run = verifyManifests(ctx, manifests)
  verifiedMemo.set(manifests, run)
  return await run
}

/** Verified manifests per request's manifests array (weak: dropped with the request). */
const verifiedMemo = new WeakMap<string[], Promise<Map<string, Manifest>>>()
/** JWKS per key set object (the store hands out one cached object per generation). */
const jwksMemo = new WeakMap<KeySet, ReturnType<typeof jwksFromKeySets>>()

async function verifyManifests (ctx: NodeContext, manifests: string[]): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>()
  for (const jws of manifests) {
    try {
      const parsed = parseJws(jws).manifest
      if (parsed.cluster !== ctx.cluster.clusterId || out.has(parsed.envelope)) continue
      const ks = await ctx.store.getKeySet(parsed.epoch)
      if (ks === undefined) continue
      let jwks = jwksMemo.get(ks)
      if (jwks === undefined) { jwks = jwksFromKeySets([ks]); jwksMemo.set(ks, jwks) }
      const m = verifyJws(jws, jwks)
      out.set(m.envelope, m)
    } catch { /* not counted */ }
  }
  return out
}

/** True when `m` names exactly this label's app, env (absent = '') and release. Never throws. */
function namesLabel (m: Manifest | undefined, label: Label): boolean {
  return m !== undefined && m.app === label.app && (m.env ?? '') === label.env && m.release === label.release
}

/**
 * Allows or refuses one request and records it in the audit log. Resolves when allowed; throws
 * NotAuthorizedError (message = the decision's reason, which names no secret) when refused, or
 * KeymeshError INTERNAL when the audit append fails (the request is then refused too).
 */
export async function authorize (ctx: NodeContext, caller: Caller, req: AuthzRequest): Promise<void> {
  const gov = governanceOf(ctx)
  if (gov === undefined) {
    if (caller.kind !== 'client') throw new NotAuthorizedError(`${req.op}: only enrolled clients may request this operation (caller ${caller.peerId} is a ${caller.kind})`)
    return
  }
  let op: PolicyOp
  const dctx: DecisionContext = {}
  const rec: Partial<RequestFields> = {}
  if (req.op === 'partial' || req.op === 'partial.batch') {
    op = 'partial'
    const ids = (req.envelopeIds ?? []).map(toHex)
    Object.assign(dctx, { app: req.label.app, env: req.label.env, release: req.label.release })
    if (req.recipient !== undefined) dctx.recipient = toB64u(req.recipient)
    if (gov.policy !== undefined) {
      const verified = await verifiedManifests(ctx, req.manifests ?? [])
      dctx.signedRelease = ids.length > 0 && ids.every(id => namesLabel(verified.get(id), req.label))
      const approvals: Approval[] = []
      for (const a of req.approvals ?? []) { try { approvals.push(parseApproval(a)) } catch { /* ignored: counted as missing */ } }
      let count = ids.length === 0 ? 0 : Number.MAX_SAFE_INTEGER
      for (const id of ids) {
        const c = countApprovals(approvals, ctx.cluster, { app: req.label.app, env: req.label.env, release: req.label.release, envelope: id }).count
        if (c < count) count = c
      }
      dctx.approvals = count
    }
    const digest = envelopeDigest(req.envelopeIds ?? [])
    Object.assign(rec, { app: req.label.app, env: req.label.env, release: req.label.release, ...(digest !== undefined ? { envelope: digest } : {}), ...(dctx.recipient !== undefined ? { recipient: dctx.recipient } : {}) })
  } else if (req.op === 'frost.commit') {
    op = 'frost.commit'
  } else if (req.op === 'frost.sign') {
    op = 'frost.sign'
    Object.assign(dctx, { app: req.manifest.app, env: req.manifest.env ?? '', release: req.manifest.release, manifestBuilder: req.manifest.builder })
    Object.assign(rec, { app: req.manifest.app, env: req.manifest.env ?? '', release: req.manifest.release, envelope: req.manifest.envelope })
  } else {
    throw new KeymeshError(ErrorCode.INTERNAL, 'unknown authorization request')
  }
  const d = gov.decide(subjectOf(caller), op, dctx)
  try {
    await gov.record({ peer: caller.peerId, role: d.role, op: req.op, ...rec, decision: d.allow ? 'allow' : 'deny', reason: d.reason } as RequestFields)
  } catch (e) {
    ctx.log.error('audit append failed: refusing the request', { op: req.op, code: errorCode(e) })
    throw new KeymeshError(ErrorCode.INTERNAL, 'audit log unavailable: request refused')
  }
  markRecorded()
  if (!d.allow) throw new NotAuthorizedError(`${req.op}: ${d.reason}`)
}
