/**
 * `frost.commit` and `frost.sign`: this node as one FROST-Ed25519-SHA512 signer (RFC 9591 §5.1,
 * §5.2); the requesting client coordinates and aggregates.
 *
 * Nonces live only in this node's memory (node/frost-sessions.ts), keyed by (caller PeerId,
 * epoch, session): single use (taken on the first sign attempt, success or failure), 60 s
 * lifetime, ≤ 64 outstanding per peer (BUSY), replay → CONFLICT, unknown → NOT_FOUND.
 *
 * `frost.sign` signs only what it may sign:
 *   - the commitment list must contain this node's own round-one commitment, byte for byte
 *     (a coordinator that swaps it would get a share over a different binding factor);
 *   - the message must be the JWS signing input of a valid release manifest of THIS cluster and
 *     the requested epoch (protocol/jws.ts parse rules), so the cluster key never signs arbitrary
 *     bytes (no signing oracle);
 *   - the caller must be authorized for that manifest (authz hook).
 *
 * Generations (proactive refresh): `frost.commit` answers the generation (keySetId) of the sign
 * key it committed under and the session remembers it; `frost.sign` refuses with CONFLICT when the
 * request's `keySetId` or the session's generation is no longer this node's current one ("key set
 * changed by a refresh; start the signing again"): one signing session uses one generation, or
 * the aggregate would mix shares of different polynomials.
 *
 * Secrets: the sign share (read per request, a bigint, not wipeable) and the nonces (Uint8Arrays,
 * zeroed by frostSignShare on success and by us on every other path).
 */
import { BadInputError, ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { equalBytes, fromUtf8, toB64u } from '../../protocol/bytes.ts'
import { L, decodeScalar, encodeScalar } from '../../protocol/group.ts'
import {
  decodeSigningCommitment, encodeSignatureShare, encodeSigningCommitment, frostCommit, frostSignShare
} from '../../protocol/frost.ts'
import type { SigningCommitment, SigningNonces } from '../../protocol/frost.ts'
import { parseJws } from '../../protocol/jws.ts'
import type { Manifest } from '../../protocol/manifest.ts'
import { FrostSessions } from '../frost-sessions.ts'
import { faultsOf } from '../faults.ts'
import type { Handler, NodeContext } from '../context.ts'
import { authorize } from './authz.ts'
import { checkDeadline, epochKeys } from './partial.ts'

function wipe (n: SigningNonces): void { n.hiding.fill(0); n.binding.fill(0) }

const tables = new WeakMap<NodeContext, FrostSessions<SigningNonces>>()

/** The nonce table of a node (created on first use; lives as long as the context). Never throws. */
export function frostSessionsOf (ctx: NodeContext): FrostSessions<SigningNonces> {
  let t = tables.get(ctx)
  if (t === undefined) {
    t = new FrostSessions<SigningNonces>({ dispose: wipe })
    tables.set(ctx, t)
  }
  return t
}

const sessionKey = (epoch: number, session: string): string => `${epoch}/${session}`

/** 64 zero bytes, base64url: a placeholder signature so that parseJws can check a signing input. */
const PLACEHOLDER_SIG = toB64u(new Uint8Array(64))

/**
 * Checks that `message` is the JWS signing input of a canonical release manifest of this cluster
 * and `epoch`, and returns the manifest. Throws BadInputError(field 'message...').
 */
export function manifestOfSigningInput (ctx: NodeContext, message: Uint8Array, epoch: number): Manifest {
  const text = fromUtf8('message', message)
  if (text.split('.').length !== 2) throw new BadInputError('message', 'expected a JWS signing input "<header>.<payload>"')
  let manifest: Manifest
  try {
    manifest = parseJws(`${text}.${PLACEHOLDER_SIG}`).manifest
  } catch (err) {
    if (err instanceof BadInputError) throw new BadInputError(`message.${err.field}`, err.message, { cause: err })
    throw err
  }
  if (manifest.cluster !== ctx.cluster.clusterId) throw new BadInputError('message.manifest.cluster', 'manifest belongs to another cluster')
  if (manifest.epoch !== epoch) throw new BadInputError('message.manifest.epoch', `manifest is for epoch ${manifest.epoch}, request says ${epoch}`)
  return manifest
}

/**
 * Answers `frost.commit`: fresh nonces for (caller, epoch, session), returns the commitment.
 * Throws KeymeshError NOT_FOUND (no key set for the epoch), NOT_AUTHORIZED, CONFLICT (session id
 * live or used), BUSY (64 outstanding sessions).
 */
export const frostCommitHandler: Handler<'frost.commit'> = async (ctx, body, caller) => {
  const { share, keySetId } = await epochKeys(ctx, body.epoch, 'sign')
  await authorize(ctx, caller, { op: 'frost.commit', epoch: body.epoch })
  const { nonces, commitment } = frostCommit(share)
  const encoded = encodeSigningCommitment(commitment)
  try {
    frostSessionsOf(ctx).put(caller.peerId, sessionKey(body.epoch, body.session), nonces, encoded, keySetId)
  } catch (err) {
    wipe(nonces)
    throw err
  }
  return { commitment: encoded, keySetId }
}

/** Throws KeymeshError CONFLICT when the request's or the session's generation is not `current`. */
function checkGeneration (requested: string | undefined, committed: string | undefined, current: string): void {
  if ((requested !== undefined && requested !== current) || (committed !== undefined && committed !== current)) {
    throw new KeymeshError(ErrorCode.CONFLICT, 'key set changed by a refresh; start the signing again')
  }
}

/**
 * Answers `frost.sign`. The session is consumed first, whatever happens next. Throws KeymeshError
 * NOT_FOUND (unknown/expired session, no key set), CONFLICT (session already used, or the key set
 * generation changed since frost.commit / differs from the request's keySetId), BAD_INPUT
 * (malformed commitments, own commitment missing or changed, message not a signing input of a
 * valid manifest of this cluster/epoch), NOT_AUTHORIZED.
 */
export const frostSignHandler: Handler<'frost.sign'> = async (ctx, body, caller, signal) => {
  const taken = frostSessionsOf(ctx).take(caller.peerId, sessionKey(body.epoch, body.session))
  const { nonces } = taken
  try {
    // Generation first (cheap, and the answer the coordinator needs: restart the signing).
    const current = await ctx.store.getKeySetId(body.epoch)
    if (current !== undefined) checkGeneration(body.keySetId, taken.keySetId, current)
    const commitments: SigningCommitment[] = body.commitments.map((b, j) => {
      try { return decodeSigningCommitment(b) } catch (err) {
        if (err instanceof BadInputError) throw new BadInputError(`commitments[${j}].${err.field}`, err.message)
        throw err
      }
    })
    const manifest = manifestOfSigningInput(ctx, body.message, body.epoch)
    // The share's index: equal to ctx.selfIndex except between a reshare commit that moved this
    // node and its reload (epochKeys checks which). Read after every input is validated.
    const { ks, share, keySetId } = await epochKeys(ctx, body.epoch, 'sign')
    const own = commitments.filter(c => c.index === share.index)
    if (own.length !== 1 || !equalBytes(encodeSigningCommitment(own[0] as SigningCommitment), taken.commitment)) {
      throw new BadInputError('commitments', `must contain this node's (${share.index}) round-one commitment unchanged`)
    }
    checkGeneration(body.keySetId, taken.keySetId, keySetId)
    await authorize(ctx, caller, { op: 'frost.sign', epoch: body.epoch, manifest })
    checkDeadline(signal)
    let z = frostSignShare(share, ks, nonces, commitments, body.message)
    if (faultsOf(ctx)?.corruptSignShare === true) {
      // The lying node (test fixture only): a well-formed share that fails RFC 9591 §5.4.
      z = encodeScalar((decodeScalar('share', z, true) + 1n) % L)
    }
    return { share: encodeSignatureShare(z) }
  } catch (err) {
    if (err instanceof KeymeshError) throw err
    throw new KeymeshError(ErrorCode.INTERNAL, 'frost.sign failed', { cause: err })
  } finally {
    wipe(nonces)
  }
}
