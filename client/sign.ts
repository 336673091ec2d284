/**
 * Threshold signing: the client coordinates FROST-Ed25519-SHA512 (RFC 9591 §5) with k nodes.
 *
 *  1. `frost.commit` to k nodes (hedged: a failed or slow node is replaced by another) — each node
 *     returns a fresh single-use nonce commitment for this client's session.
 *  2. `frost.sign` with the message and the commitment list (RFC 9591 §5.2) to exactly those k.
 *  3. Aggregate (§5.3) and verify the result as a standard Ed25519 signature against the key set's
 *     sign key before returning it. A share that does not verify is attributed to its node
 *     (`frostAggregate` checks each share against the node's verifying share, §5.4).
 *
 * When a node fails or lies in round 2 the whole attempt is restarted with a new session and a node
 * set without it (nonces are single-use, so round 1 must be redone). Every failed node is named.
 *
 * Generations (share refresh, client/generations.ts): each `frost.commit` answer names the
 * keySetId of the generation the node's session is bound to. A signing session must use ONE
 * generation (shares of two generations do not combine), so commitments are grouped by it and only
 * k signers of one generation sign; the generation's key set (checked against the trusted one) gives
 * the verifying shares for §5.4 blame, and its id goes with `frost.sign`. A node whose generation
 * changed since its commitment answers CONFLICT; the signing is then restarted once with a new
 * session without blaming anyone (a later CONFLICT counts as that node's failure).
 */
import { randomBytes } from 'node:crypto'
import { ErrorCode, QuorumUnavailableError, VerificationError, errorCode } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import type { KeySet } from '../protocol/keyset.ts'
import { signKey } from '../protocol/keyset.ts'
import { decodeSignatureShare, decodeSigningCommitment, ed25519Verify, encodeSigningCommitment, frostAggregate } from '../protocol/frost.ts'
import type { SigningCommitment } from '../protocol/frost.ts'
import type { ClientTransport } from './transport.ts'
import { candidatesFor, failureOf, hedgeDelay, quorumError } from './quorum.ts'
import { GenerationHedger, idOf, namedGeneration, resolveGeneration } from './generations.ts'

/** Options of a threshold signature. */
export interface SignOptions {
  /** Whole-operation deadline in ms (default 10000). */
  deadlineMs?: number
  /** Hedge delay in ms (default: 150, or 1.5 × recent p90 latency when larger). */
  hedgeMs?: number
  /** Nodes not to ask (e.g. known bad). */
  exclude?: number[]
  /** Preference order of nodes (default random); unlisted nodes follow in random order. */
  order?: number[]
}

/** A verified threshold signature. */
export interface SignResult {
  /** 64-byte Ed25519 signature (RFC 8032) under signKey(ks). */
  signature: Uint8Array
  /** The k nodes whose shares made it. */
  signers: number[]
  /** Nodes that failed or were caught lying along the way. */
  failures: NodeFailure[]
  /** The key-set generation the signers used (same sign key as the trusted key set). */
  keySet: KeySet
}

/**
 * Produces a threshold Ed25519 signature on `message` with the key set's sign key, verified before
 * it is returned. Throws QuorumUnavailableError (fewer than k nodes could take part within the
 * deadline; each failure listed), NotAuthorizedError (nodes refused this client), BadInputError
 * (message too large for the RPC).
 */
export async function thresholdSign (t: ClientTransport, ks: KeySet, message: Uint8Array, opts: SignOptions = {}): Promise<SignResult> {
  // A reshare may have given the epoch a generation with another (k, n) (client/membership.ts).
  const k = Math.max(ks.threshold, t.cluster.threshold)
  const n = Math.max(ks.n, t.cluster.nodes.length)
  const gk = new Map<string, number>([[idOf(ks), ks.threshold]])
  const deadlineAt = Date.now() + (opts.deadlineMs ?? 10_000)
  const excluded = new Set<number>(opts.exclude ?? [])
  const failures: NodeFailure[] = []
  const record = (f: NodeFailure): void => { failures.push(f); excluded.add(f.index) }
  let conflictRestarted = false

  for (;;) {
    const remainingMs = deadlineAt - Date.now()
    const candidates = candidatesFor(t.indices, [...excluded], opts.order)
    if (candidates.length < k || remainingMs <= 0) throw quorumError(k, 0, dedupe(failures), n)
    // Round 1: commitments from k nodes of ONE generation (hedged, grouped by keySetId). A fresh
    // session id per ask: the hedger may ask a node again (split generations), and a node refuses
    // a session id it has seen (CONFLICT: nonces are single-use). Nodes key sessions by
    // (caller, session), so signers need not share one id.
    const h = new GenerationHedger<{ c: SigningCommitment, ks: KeySet, session: string }>(candidates, k, n, remainingMs, opts.hedgeMs ?? hedgeDelay(t, 'frost.commit', 150), idOf(ks), async (index, signal) => {
      const session = randomBytes(16).toString('hex')
      const res = await t.call(index, 'frost.commit', { epoch: ks.epoch, session }, { timeoutMs: remainingMs, signal })
      const id = namedGeneration(index, res.keySetId, ks)
      const gks = await resolveGeneration(t, ks, id, { from: index, signal, timeoutMs: remainingMs })
      gk.set(id, gks.threshold)
      const c = decodeSigningCommitment(res.commitment)
      if (c.index !== index) throw new VerificationError(`node ${index} sent a commitment for index ${c.index}`, [index])
      return { keySetId: id, value: { c, ks: gks, session } }
    }, id => gk.get(id) ?? k)
    let commitments: SigningCommitment[]
    let sessions: Map<number, string>
    let gks: KeySet
    let genId: string
    try {
      const group = await h.want()
      const gsz = ([...group.answers.values()][0] as { ks: KeySet }).ks.threshold
      const picked = [...group.answers.values()].sort((a, b) => a.c.index - b.c.index).slice(0, gsz)
      commitments = picked.map(x => x.c)
      sessions = new Map(picked.map(x => [x.c.index, x.session]))
      gks = (picked[0] as { ks: KeySet }).ks
      genId = group.keySetId
    } catch (err) {
      h.close()
      if (err instanceof QuorumUnavailableError) failures.push(...err.failures)
      else for (const f of h.failures) failures.push(f)
      throw quorumOrRethrow(err, k, failures, n)
    } finally {
      h.close()
    }
    for (const f of h.failures) record(f)
    // Round 2: signature shares from exactly the committed signers, bound to that generation.
    const encoded = commitments.map(encodeSigningCommitment)
    const signers = commitments.map(c => c.index)
    const left = Math.max(1, deadlineAt - Date.now())
    const ctl = new AbortController()
    const timer = setTimeout(() => ctl.abort(), left)
    const shares = new Map<number, Uint8Array>()
    let roundFailed = false
    let conflicted = false
    try {
      await Promise.all(signers.map(async (index) => {
        try {
          const res = await t.call(index, 'frost.sign', { epoch: ks.epoch, session: sessions.get(index) as string, message, commitments: encoded, keySetId: genId }, { timeoutMs: left, signal: ctl.signal })
          shares.set(index, decodeSignatureShare(res.share))
        } catch (err) {
          roundFailed = true
          // The node moved to a newer generation between commit and sign: not its fault, once.
          if (errorCode(err) === ErrorCode.CONFLICT && !conflictRestarted) conflicted = true
          else record(failureOf(index, err))
        }
      }))
    } finally {
      clearTimeout(timer)
    }
    if (conflicted) conflictRestarted = true
    if (roundFailed) continue
    try {
      const signature = frostAggregate(gks, commitments, message, shares)
      // Belt and braces: the result must be a standard Ed25519 signature (RFC 8032 §5.1.7) under
      // the TRUSTED key set's sign key (a generation shares it; checkGeneration ensured that).
      if (!ed25519Verify(signKey(ks), message, signature)) throw new VerificationError('aggregate signature does not verify')
      return { signature, signers, failures: dedupe(failures), keySet: gks }
    } catch (err) {
      if (err instanceof VerificationError && err.blame.length > 0) {
        for (const i of err.blame) record({ index: i, code: ErrorCode.VERIFICATION_FAILED, detail: 'returned a FROST signature share that does not verify against its verifying share' })
        continue
      }
      throw err
    }
  }
}

function dedupe (fs: NodeFailure[]): NodeFailure[] {
  const seen = new Map<number, NodeFailure>()
  for (const f of fs) if (!seen.has(f.index)) seen.set(f.index, f)
  return [...seen.values()].sort((a, b) => a.index - b.index)
}

function quorumOrRethrow (err: unknown, k: number, failures: NodeFailure[], n: number): unknown {
  if (err instanceof Error && (err.name === 'QuorumUnavailableError' || err.name === 'NotAuthorizedError')) return quorumError(k, 0, dedupe(failures), n)
  return err
}
