/**
 * The reshare ceremony over the mesh (docs/PROTOCOL.md §11.8; crypto §10.2, protocol/reshare.ts):
 * every LIVE epoch's wrap and sign keys are re-dealt from the OLD members (current view, old
 * indices) to the NEW members (order.params.members, new indices) with threshold k'; group keys
 * are unchanged, every epoch gets a new key set generation (k', n'). No new epoch number.
 * Session id `s<epoch>-<first 16 hex of the order nonce>`.
 *
 * Roles: a node may be an OLD member (dealer), a NEW member (receiver), or both (continuing).
 *
 *   Dealer (old member): creating the progress record deals (reshareDeal, dealer set S = ALL old
 *   indices) for every live epoch and key and PERSISTS the public dealings and the secret
 *   sub-shares of every new index (sealed by the store) before anything is served; a restarted
 *   node serves the very same dealing. `reshare.round1` (public, to any member of the union),
 *   `reshare.round2` (the sub-shares of new index j, only to the authenticated new member j).
 *
 *   Receiver (new member j):
 *     1. pulls round 1 and round 2 from every old member, verifies each dealer publicly
 *        (decodeReshareDealing/verifyDealing: C_0 = X_i, k' points) and its sub-shares (Feldman,
 *        verifySubShare); a bad dealer is excluded (logged with blame), never retried;
 *        a joining node adopts the (live epochs, base generation ids) of the first ≥ k dealers
 *        that agree and fetches those base key sets by id;
 *     2. once ALL old members verified — or ≥ k of them and RESHARE_GATHER_MS passed since it had
 *        k — fixes its VIEW (the sorted verified dealers + the digest of each one's round-1
 *        answer), persists it, then serves it (`reshare.view`); the view never changes;
 *     3. pulls every other new member's view — all of them, or at least q = reshareCommitQuorum(k',
 *        n') and RESHARE_ABSENT_GRACE_MS more for the rest (a member that is down does not stall
 *        the reshare); Q = intersection of the views collected; the digests of every dealer in Q
 *        must agree across views (else: fail naming the dealer: equivocation); |Q| < k fails
 *        ("not enough old nodes dealt to every new member");
 *     4. reshareFinish over Q per (epoch, key), lifecycleKeySet; result digest over the new
 *        keySetIds (persisted phase FINISHED first); serves `reshare.result`;
 *     5. when q new members (itself included) report the same digest: ONE store.commitReshare
 *        batch. q is a strict majority, so no two different results can both be committed.
 *
 *   Late new member (down while the others committed, or its result lost the vote): a watcher
 *   polls the other new members' `reshare.result`; once k' of them report a committed result it
 *   does not hold, it stops its own path and CATCHES UP: takes the epochs and new keySetIds of that
 *   result (checked against the digest), fetches those key sets, rebuilds its shares by share
 *   repair from k' committed members (repair-target.ts; checked against the committed verifying
 *   shares) and commits them with the same result marker — so it never needs the old dealers.
 *
 *   Removed member (old only): after dealing, waits until ≥ k' new members report committed,
 *   then the manager deletes its shares and stops it (node/lifecycle/manager.ts).
 *
 * Retention: a dealer serves round 2 until the session ends on it; a new member commits only
 * after every new member served its result, i.e. after every new member holds all the sub-shares
 * it needs; a removed member stops only after k' new members committed.
 *
 * Secrets owned here: the sub-shares this node deals and receives (in memory and inside the sealed
 * progress record, JSON hex strings: they cannot be wiped in memory — see docs), the old and new
 * shares while finishing (bigints, dropped after use). The new shares go to store.commitReshare.
 */
import { ErrorCode, KeymeshError, VerificationError, errorCode } from '../../protocol/errors.ts'
import { Writer, concat, equalBytes, fromHex, toHex, u32, utf8 } from '../../protocol/bytes.ts'
import { CLUSTER_ID_LEN } from '../../protocol/constants.ts'
import { decodeKeySet, encodeKeySet, keySetId as computeKeySetId } from '../../protocol/keyset.ts'
import type { GroupPublicKey, KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { Point } from '../../protocol/group.ts'
import { dealingDigests, decodeReshareDealing, encodeReshareDealing, lifecycleKeySet, reshareDeal, reshareFinish, verifyDealing, verifySubShare } from '../../protocol/reshare.ts'
import { MAX_REFRESH_EPOCHS, RemoteError, reshareSessionId } from '../../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import type { ClusterNode } from '../../protocol/cluster.ts'
import type { DkgStatus } from '../context.ts'
import { decodeRefreshResult, encodeRefreshResult } from './refresh-ceremony.ts'
import { CeremonyFailure, sleep } from '../ceremony-kit.ts'
import { reshareCommitQuorum } from '../../protocol/membership.ts'
import { repairShares } from './repair-target.ts'
import { committedKeySet, committedResult, reshareResultDigest } from './committed-result.ts'
import type { CommittedResult } from './committed-result.ts'

/** Format of the persisted progress record (JSON, sealed by the store). */
export const RESHARE_PROGRESS_FORMAT = 'keymesh.reshare-progress'
/** Store name of the sealed progress record, and of the public result marker left by the commit. */
export const RESHARE_PROGRESS_NAME = 'secret:progress'
export const RESHARE_RESULT_NAME = 'result'
/** Public marker of a session that failed here (pollers are answered CONFLICT without reading the sealed record). */
export const RESHARE_FAILED_NAME = 'failed'
/** Domain tag and digest of the result (defined with the late-member queries). */
export { RESHARE_RESULT_TAG, reshareResultDigest } from './committed-result.ts'
/** Grace period after a new member has valid dealings from k old members (ms). */
export const RESHARE_GATHER_MS = 3_000
/**
 * A new member that has not agreed on the dealer set this long after its session (re)started
 * fails the session (ms). Safe: it has served no result, so it is in no commit quorum; if a
 * quorum commits without it, it catches up later (the membership check, node/service.ts). Ends
 * the wait when fewer than a quorum of new members are up. (A member that served its result never
 * times out, and a peer's failure does not end it: a quorum may commit.)
 */
export const RESHARE_DEADLINE_MS = 600_000
/**
 * How long a new member that has the views of a commit quorum waits for the views of the other
 * new members before it goes on without them (ms). They catch up later by share repair.
 */
export const RESHARE_ABSENT_GRACE_MS = 10_000
/**
 * How long a new member waits, after it has a quorum, for missing members that still ANSWER (a
 * slow or still-starting node, not a dead one) before it goes on without them (ms). Waiting for
 * live members keeps them from becoming late members, whose catch-up costs availability during
 * the reloads.
 */
export const RESHARE_ALIVE_WAIT_MS = 60_000
/** Interval of the late-member watcher (ms). */
export const RESHARE_WATCH_MS = 3_000
/** Per-call deadline and backoff of the polls (ms). */
export const RESHARE_CALL_TTL_MS = 2_000
export const RESHARE_BACKOFF_MIN_MS = 100
export const RESHARE_BACKOFF_MAX_MS = 500

const KINDS = ['wrap', 'sign'] as const
type Kind = typeof KINDS[number]

/** Per-epoch hex strings for both keys. */
interface PerEpochHex { wrap: string[], sign: string[] }
/** A dealer's round-1 answer (hex). */
interface Round1Hex { epochs: number[], base: string[], wrap: string[], sign: string[] }

/** Progress of one reshare session on this node (SECRET: dealt and received sub-shares). */
export interface ReshareProgress {
  format: typeof RESHARE_PROGRESS_FORMAT
  version: 1
  session: string
  phase: 'active' | 'finished' | 'failed'
  /** SHA-256 of the order's signing bytes (hex). */
  bind: string
  /** Reshared epochs (ascending) and base generation ids; empty until adopted (joining node). */
  epochs: number[]
  base: string[]
  /** Encoded base key sets (hex), per epoch (new members only). */
  baseKeySets: string[]
  /** Dealer side: own round-1 answer and the sub-shares dealt, by NEW index (SECRET). */
  own?: Round1Hex
  dealt?: Record<string, PerEpochHex>
  /** Receiver side: round-1 answers by OLD index, sub-shares received by OLD index (SECRET), excluded dealers. */
  round1: Record<string, Round1Hex>
  round2: Record<string, PerEpochHex>
  excluded: number[]
  /** Fixed view: dealers (ascending) and digests (hex), once fixed. */
  view?: { dealers: number[], digests: string[] }
  detail: string
}

/** What the ceremony needs from the node; built by node/lifecycle/manager.ts. */
export interface ReshareEnv {
  clusterId: string
  /** Old view (dealers) and new members (receivers). */
  oldNodes: ClusterNode[]
  newNodes: ClusterNode[]
  oldThreshold: number
  newThreshold: number
  /** This node's old / new index, when it has that role. */
  selfOld?: number
  selfNew?: number
  call: <O extends RpcOp>(node: ClusterNode, op: O, body: RequestBodies[O], ttlMs: number, signal: AbortSignal) => Promise<ResponseBodies[O]>
  /** Live epochs (ascending) this node holds (old members). */
  liveEpochs: () => Promise<number[]>
  /** Current generation of `epoch` with both shares (old members), or undefined. */
  generation: (epoch: number) => Promise<{ keySet: KeySet, keySetId: string, wrap: KeyShare, sign: KeyShare } | undefined>
  /** The current key set of `epoch` held here (any), or undefined. */
  localKeySet: (epoch: number) => Promise<KeySet | undefined>
  loadProgress: (session: string) => Promise<Uint8Array | undefined>
  saveProgress: (session: string, record: Uint8Array) => Promise<void>
  /** One atomic batch: new generations, progress deleted, result marker written. */
  commit: (session: string, entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, result: Uint8Array) => Promise<void>
  /** Writes the public failed marker of `session` (RESHARE_FAILED_NAME). */
  markFailed?: (session: string) => Promise<void>
  /** The public result marker of `session` (after a commit here), or undefined. */
  committedResult: (session: string) => Promise<Uint8Array | undefined>
  log: (msg: string, fields: Record<string, unknown>) => void
  setStatus: (s: DkgStatus) => void
  signal: AbortSignal
  /** Overrides RESHARE_DEADLINE_MS (tests). */
  deadlineMs?: number
}

/** Context of the view digests: clusterId (16) ‖ u32 len ‖ utf8(session) ‖ orderDigest (32). Throws BadInputError. */
export function reshareEchoContext (clusterId: string, session: string, bind: Uint8Array): Uint8Array {
  const s = utf8(session)
  return concat(fromHex('clusterId', clusterId, CLUSTER_ID_LEN), u32(s.length), s, bind)
}

/**
 * Canonical bytes of one dealer's round-1 answer (what its view digest covers): u16 E ‖ E × (u32
 * epoch ‖ base keySetId (32) ‖ var16 wrap dealing ‖ var16 sign dealing).
 */
export function encodeReshareAnswer (a: { epochs: number[], base: string[], wrap: Uint8Array[], sign: Uint8Array[] }): Uint8Array {
  const w = new Writer().u16(a.epochs.length)
  for (let x = 0; x < a.epochs.length; x++) w.u32(a.epochs[x] as number).raw(fromHex('base', a.base[x], 32)).var16(a.wrap[x] as Uint8Array).var16(a.sign[x] as Uint8Array)
  return w.bytes()
}

function encodeProgress (p: ReshareProgress): Uint8Array { return utf8(JSON.stringify(p)) }

function decodeProgress (b: Uint8Array): ReshareProgress {
  const o = JSON.parse(new TextDecoder().decode(b)) as ReshareProgress
  if (o.format !== RESHARE_PROGRESS_FORMAT || o.version !== 1) throw new KeymeshError(ErrorCode.BAD_INPUT, 'reshare progress: unknown format')
  return o
}

const hexList = (l: Uint8Array[]): string[] => l.map(toHex)
const bytesList = (l: string[]): Uint8Array[] => l.map(h => fromHex('hex', h))

function unavailable (what: string): KeymeshError { return new KeymeshError(ErrorCode.UNAVAILABLE, `reshare: ${what} not available yet; retry`) }

/** A peer answered CONFLICT: its session failed (or it runs another order). Ends this session unless caught. */
class PeerConflict extends CeremonyFailure {}

/** A decoded, verified dealer: commitments per epoch per kind. */
type Verified = Record<Kind, Point[][]>

/**
 * One reshare session of this node: the driver and the serving side used by the reshare.*
 * handlers (node/handlers/reshare.ts).
 */
export class ReshareCeremony {
  readonly session: string
  readonly epoch: number
  private status: DkgStatus = { state: 'idle' }
  private progress?: ReshareProgress
  private baseSets: KeySet[] = []
  private verified = new Map<number, Verified>()
  private resultDigest?: string
  private committedHere = false
  private halted = false
  private saving: Promise<void> = Promise.resolve()
  /** Aborted when the agreement deadline passes (new members, before any result is served). */
  private readonly deadline = new AbortController()
  /** Aborted when the watcher finds a result committed by k' other members that this node does not hold. */
  private readonly supersede = new AbortController()
  private superseded?: CommittedResult
  /** epochs and new keySetIds once committed here. */
  private committedResultInfo?: { epochs: number[], keySetIds: string[] }
  private readonly live: AbortSignal
  /** When each peer (PeerId) last answered anything, even an error: it is alive. */
  private readonly heard = new Map<string, number>()

  constructor (private readonly env: ReshareEnv, epoch: number, nonce: string, private readonly bind: Uint8Array) {
    this.live = AbortSignal.any([env.signal, this.deadline.signal, this.supersede.signal])
    this.epoch = epoch
    this.session = reshareSessionId(epoch, nonce)
  }

  /** Current status. Never throws. */
  get state (): DkgStatus { return this.status }
  /** True when a LOCAL error stopped the ceremony (a restart resumes it). */
  get stoppedLocally (): boolean { return this.halted }
  /** The NEW index of member `peerId`, or undefined. Never throws. */
  newIndexOf (peerId: string): number | undefined { return this.env.newNodes.find(m => m.peerId === peerId)?.index }
  /** Whether `peerId` is a member of either view. Never throws. */
  isMember (peerId: string): boolean { return this.env.newNodes.some(m => m.peerId === peerId) || this.env.oldNodes.some(m => m.peerId === peerId) }
  /** The new members. */
  get newMembers (): ClusterNode[] { return this.env.newNodes }

  /** True once this node committed the new generations (new members only). */
  get committed (): boolean { return this.committedHere }

  private setStatus (s: DkgStatus): void { this.status = s; this.env.setStatus(s) }
  private progressStatus (detail: string): void {
    if (this.status.state === 'running') this.setStatus({ state: 'running', detail: `reshare ${this.session}: ${detail}` })
  }

  // -------------------------------------------------------------------------------------------
  // Serving side. Each throws KeymeshError: NOT_FOUND (another session), CONFLICT (this session
  // failed here), UNAVAILABLE (not yet), NOT_AUTHORIZED (wrong caller).

  private check (session: string): void {
    if (session !== this.session) throw new KeymeshError(ErrorCode.NOT_FOUND, `reshare: unknown session ${session}`)
    if (this.halted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: this node halted on a local error; it resumes after a restart')
    if (this.status.state === 'failed') throw new KeymeshError(ErrorCode.CONFLICT, `reshare: session ${session} failed`)
  }

  /** This node's dealings (old members). */
  serveRound1 (session: string): ResponseBodies['reshare.round1'] {
    this.check(session)
    const own = this.progress?.own
    if (own === undefined) throw unavailable('round 1')
    return { epochs: [...own.epochs], base: [...own.base], wrap: bytesList(own.wrap), sign: bytesList(own.sign) }
  }

  /** The sub-shares this node deals to new member `newIndex` (the authenticated caller). */
  serveRound2 (session: string, newIndex: number): ResponseBodies['reshare.round2'] {
    this.check(session)
    const mine = this.progress?.dealt?.[String(newIndex)]
    if (mine === undefined) throw unavailable('round 2')
    return { wrap: bytesList(mine.wrap), sign: bytesList(mine.sign) }
  }

  /** This node's fixed view (new members). */
  serveView (session: string): ResponseBodies['reshare.view'] {
    this.check(session)
    const v = this.progress?.view
    if (v === undefined) throw unavailable('view')
    return { dealers: [...v.dealers], digests: bytesList(v.digests) }
  }

  /** The result digest once finished, and whether committed (new members). */
  serveResult (session: string): ResponseBodies['reshare.result'] {
    this.check(session)
    if (this.resultDigest === undefined) throw unavailable('result')
    const info = this.committedResultInfo
    return { digest: this.resultDigest, committed: this.committedHere, ...(this.committedHere && info !== undefined ? { epochs: [...info.epochs], keySetIds: [...info.keySetIds] } : {}) }
  }

  // -------------------------------------------------------------------------------------------
  // Driver

  /** Runs the ceremony to commit / removal-ready (`done`), failure or shutdown. Never rejects. */
  async run (): Promise<void> {
    const { env } = this
    try {
      this.setStatus({ state: 'running', detail: `reshare ${this.session}: starting` })
      const marker = env.selfNew !== undefined ? await env.committedResult(this.session) : undefined
      if (marker !== undefined) {
        this.resultDigest = reshareResultDigest(marker)
        this.committedResultInfo = decodeRefreshResult(marker)
        this.committedHere = true
        this.setStatus({ state: 'done', detail: `reshare ${this.session}: committed` })
        return
      }
      await this.loadOrCreate()
      if (this.status.state === 'failed') return
      if (env.selfNew !== undefined) {
        const watching = this.watch()
        try {
          await this.receive()
        } catch (err) {
          if (this.superseded === undefined || env.signal.aborted) throw err
        } finally {
          this.watchStop.abort()
          await watching
        }
        if (this.superseded !== undefined && !this.committedHere) await this.catchUp(this.superseded)
      } else {
        await this.awaitNewMembers()
      }
    } catch (err) {
      if (env.signal.aborted && !(err instanceof CeremonyFailure)) { env.log('reshare stopped', { session: this.session, step: 'stopped' }); return }
      if (err instanceof CeremonyFailure) { await this.fail(err, true); return }
      if (err instanceof VerificationError) { await this.fail(new CeremonyFailure(`verification failed, blame ${err.blame.join(',') || 'unknown'}: ${err.message}`, err.blame), true); return }
      await this.fail(new CeremonyFailure(`local error (restart the node to resume): ${errorCode(err)} ${err instanceof Error ? err.message : String(err)}`, []), false)
    }
  }

  private readonly watchStop = new AbortController()

  /** The new member's own path: gather, agree on Q, finish, commit (throws when superseded). */
  private async receive (): Promise<void> {
    const { env } = this
    const ms = env.deadlineMs ?? RESHARE_DEADLINE_MS
    const timer = setTimeout(() => { this.deadline.abort() }, ms)
    timer.unref()
    let Q: number[]
    try {
      await this.gather()
      Q = await this.agreeViews()
    } catch (err) {
      if (this.deadline.signal.aborted && !env.signal.aborted && this.superseded === undefined) throw new CeremonyFailure(`no agreement within ${Math.round(ms / 1000)} s (fewer than ${reshareCommitQuorum(env.newThreshold, env.newNodes.length)} new members up? old members down?); nothing was committed; issue a new order`, [])
      throw err
    } finally { clearTimeout(timer) }
    await this.finish(Q)
    await this.agreeAndCommit(Q)
  }

  /**
   * Late-member watcher: every RESHARE_WATCH_MS asks the other new members for their result; when
   * k' of them report the same COMMITTED result and it is not this node's own, records it and
   * aborts the own path (run() then catches up). Never rejects.
   */
  private async watch (): Promise<void> {
    const { env } = this
    const signal = AbortSignal.any([env.signal, this.watchStop.signal])
    while (!signal.aborted && !this.committedHere) {
      await sleep(RESHARE_WATCH_MS, signal)
      if (signal.aborted || this.committedHere) return
      const r = await committedResult(env.newNodes.filter(m => m.index !== env.selfNew), this.session, env.call, signal)
      if (r !== undefined && r.committers.length >= env.newThreshold && r.digest !== this.resultDigest && !this.committedHere) {
        this.superseded = r
        env.log('reshare committed without this node; catching up by share repair', { session: this.session, step: 'late', committers: r.committers, digest: r.digest })
        this.supersede.abort()
        return
      }
    }
  }

  /**
   * Catch-up of a late new member: the committed result's key sets, shares rebuilt by share repair
   * from the members that committed it, then the same commit as the own path. Throws
   * CeremonyFailure when the key sets do not match this node's base generations, KeymeshError
   * UNAVAILABLE when the repair cannot complete (a restart retries).
   */
  private async catchUp (r: CommittedResult): Promise<void> {
    const { env } = this
    const p = this.progress as ReshareProgress
    this.progressStatus(`committed by new members ${r.committers.join(',')} without this node; repairing its shares`)
    const helpers = env.newNodes.filter(m => r.committers.includes(m.index))
    const sets: Array<{ keySet: KeySet, keySetId: string }> = []
    for (const [x, epoch] of r.epochs.entries()) {
      const id = r.keySetIds[x] as string
      const base = p.epochs.includes(epoch) ? this.baseSets[p.epochs.indexOf(epoch)] : await env.localKeySet(epoch)
      let ks: KeySet
      try {
        ks = await committedKeySet(epoch, id, helpers, env.clusterId, { threshold: env.newThreshold, n: env.newNodes.length }, base, env.call, env.signal)
      } catch (e) {
        if (errorCode(e) === ErrorCode.CONFLICT) throw new CeremonyFailure(e instanceof Error ? e.message : 'conflicting key set', [])
        throw e
      }
      sets.push({ keySet: ks, keySetId: id })
    }
    const shares = await repairShares({
      self: env.selfNew as number,
      threshold: env.newThreshold,
      candidates: helpers,
      call: env.call,
      log: env.log,
      signal: env.signal
    }, sets)
    const entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }> = []
    for (const [x, { keySet }] of sets.entries()) {
      const epoch = keySet.epoch
      const base = (p.epochs.includes(epoch) ? this.baseSets[p.epochs.indexOf(epoch)] : await env.localKeySet(epoch)) ?? keySet
      const s = shares[x] as { wrap: KeyShare, sign: KeyShare }
      entries.push({ keySet, base, wrapShare: s.wrap, signShare: s.sign })
    }
    const marker = encodeRefreshResult(r.epochs, r.keySetIds)
    await env.commit(this.session, entries, marker)
    this.resultDigest = r.digest
    this.committedResultInfo = { epochs: [...r.epochs], keySetIds: [...r.keySetIds] }
    this.committedHere = true
    if (p.phase !== 'finished') p.phase = 'finished'
    this.setStatus({ state: 'done', detail: `reshare ${this.session}: caught up by share repair (epochs ${r.epochs.join(',')}, ${env.newThreshold}-of-${env.newNodes.length})` })
    env.log('reshare committed', { session: this.session, step: 'done', epochs: r.epochs, keySetIds: r.keySetIds, newIndex: env.selfNew ?? null, repairedFrom: r.committers })
  }

  /**
   * Whether to keep waiting for `missing` new members, `since` = when this node reached a quorum:
   * always during `graceMs`; then only while one of them answered within RESHARE_ABSENT_GRACE_MS
   * (alive), and never after RESHARE_ALIVE_WAIT_MS. Never throws.
   */
  private waitMore (missing: ClusterNode[], since: number, graceMs = RESHARE_ABSENT_GRACE_MS): boolean {
    const now = Date.now()
    if (now - since < graceMs) return true
    if (now - since >= RESHARE_ALIVE_WAIT_MS) return false
    return missing.some(m => now - (this.heard.get(m.peerId) ?? 0) < RESHARE_ABSENT_GRACE_MS)
  }

  private async save (): Promise<void> {
    const p = this.progress
    if (p === undefined) return
    const rec = encodeProgress(p)
    this.saving = this.saving.then(async () => { try { await this.env.saveProgress(this.session, rec) } finally { rec.fill(0) } })
    await this.saving
  }

  private async loadOrCreate (): Promise<void> {
    const { env } = this
    const raw = await env.loadProgress(this.session)
    if (raw !== undefined) {
      let p: ReshareProgress
      try { p = decodeProgress(raw) } finally { raw.fill(0) }
      if (p.session !== this.session) throw new Error('reshare: stored progress belongs to another session')
      this.progress = p
      if (p.phase === 'failed') {
        this.setStatus({ state: 'failed', detail: p.detail })
        return
      }
      if (p.bind !== toHex(this.bind)) throw new Error('reshare: stored progress was made for another order')
      this.baseSets = p.baseKeySets.map(h => decodeKeySet(fromHex('baseKeySet', h)))
      // Re-verify what was accepted before (public checks only; cheap relative to the ceremony).
      for (const [i, a] of Object.entries(p.round1)) {
        if (p.round2[i] !== undefined && !p.excluded.includes(Number(i))) this.verifyDealer(Number(i), a, p.round2[i])
      }
      env.log('reshare resumed', { session: this.session, step: 'resumed', phase: p.phase, verified: this.verified.size, view: p.view?.dealers ?? null })
      return
    }
    const p: ReshareProgress = { format: RESHARE_PROGRESS_FORMAT, version: 1, session: this.session, phase: 'active', bind: toHex(this.bind), epochs: [], base: [], baseKeySets: [], round1: {}, round2: {}, excluded: [], detail: '' }
    if (env.selfOld !== undefined) {
      const epochs = await env.liveEpochs()
      if (epochs.length === 0 || epochs.length > MAX_REFRESH_EPOCHS) throw new Error(`reshare: ${epochs.length} live epochs (expected 1..${MAX_REFRESH_EPOCHS})`)
      const own: Round1Hex = { epochs, base: [], wrap: [], sign: [] }
      const dealt: Record<string, PerEpochHex> = {}
      for (const m of env.newNodes) dealt[String(m.index)] = { wrap: [], sign: [] }
      const S = env.oldNodes.map(n => n.index)
      const bases: KeySet[] = []
      for (const e of epochs) {
        const g = await env.generation(e)
        if (g === undefined) throw new Error(`reshare: epoch ${e} has no key set or shares on this node`)
        own.base.push(g.keySetId)
        bases.push(g.keySet)
        for (const kind of KINDS) {
          // Secret: the sub-shares; reshareDeal checks our share against its verifying share first.
          const d = reshareDeal(g[kind], g.keySet[kind], S, env.newThreshold, env.newNodes.length)
          own[kind].push(toHex(encodeReshareDealing(d.dealing)))
          for (const m of env.newNodes) {
            const sub = d.subShares.get(m.index) as Uint8Array
            ;(dealt[String(m.index)] as PerEpochHex)[kind].push(toHex(sub))
            sub.fill(0)
          }
        }
      }
      p.own = own
      p.dealt = dealt
      if (env.selfNew !== undefined) { p.epochs = [...epochs]; p.base = [...own.base]; p.baseKeySets = bases.map(b => toHex(encodeKeySet(b))); this.baseSets = bases }
    }
    // Persist BEFORE anything can be served (the serve* methods read this.progress).
    await env.saveProgress(this.session, encodeProgress(p))
    this.progress = p
    env.log('reshare round1 ready', { session: this.session, step: 'round1.ready', dealer: env.selfOld ?? null, receiver: env.selfNew ?? null, epochs: p.own?.epochs ?? [] })
  }

  /**
   * Decodes and verifies dealer `i`'s round-1 answer and its sub-shares for this node against the
   * base key sets. Throws VerificationError / CeremonyFailure blaming `i`.
   */
  private verifyDealer (i: number, a: Round1Hex, subs: PerEpochHex): void {
    const p = this.progress as ReshareProgress
    const { env } = this
    if (a.epochs.length !== p.epochs.length || a.epochs.some((e, x) => e !== p.epochs[x] || a.base[x] !== p.base[x])) {
      throw new CeremonyFailure(`old node ${i} reshares epochs/generations [${a.epochs.join(',')}] other than [${p.epochs.join(',')}]`, [i])
    }
    if (subs.wrap.length !== p.epochs.length || subs.sign.length !== p.epochs.length) throw new CeremonyFailure(`old node ${i} sent ${subs.wrap.length} sub-shares for ${p.epochs.length} epochs`, [i])
    const S = env.oldNodes.map(n => n.index)
    const out: Verified = { wrap: [], sign: [] }
    for (let x = 0; x < p.epochs.length; x++) {
      const base = this.baseSets[x] as KeySet
      for (const kind of KINDS) {
        let d
        try { d = decodeReshareDealing(fromHex('dealing', a[kind][x]), base[kind]) } catch (err) {
          if (err instanceof VerificationError) throw err
          throw new VerificationError(`old node ${i} sent a malformed ${kind} dealing (${errorCode(err)})`, [i])
        }
        if (d.dealer !== i || d.newN !== env.newNodes.length) throw new VerificationError(`old node ${i} sent a ${kind} dealing labelled dealer ${d.dealer} of ${d.newN}`, [i])
        verifyDealing(base[kind], S, i, d.commitment, env.newThreshold)
        verifySubShare(env.selfNew as number, i, d.commitment, fromHex('subShare', subs[kind][x] as string))
        out[kind].push(d.commitment)
      }
    }
    this.verified.set(i, out)
  }

  /** Polls `node` with `op` until `accept` returns true; CONFLICT fails the ceremony. */
  private async poll<O extends RpcOp> (node: ClusterNode, who: string, op: O, accept: (res: ResponseBodies[O]) => Promise<boolean> | boolean, signal = this.live): Promise<void> {
    const { env } = this
    let backoff = RESHARE_BACKOFF_MIN_MS
    for (;;) {
      if (signal.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: stopped')
      let res: ResponseBodies[O] | undefined
      try {
        res = await env.call(node, op, { session: this.session } as RequestBodies[O], RESHARE_CALL_TTL_MS, signal)
        this.heard.set(node.peerId, Date.now())
      } catch (err) {
        if (err instanceof RemoteError) this.heard.set(node.peerId, Date.now())
        const code = errorCode(err)
        if (code === ErrorCode.CONFLICT) throw new PeerConflict(`${who} reports that reshare ${this.session} failed there or that it runs another lifecycle order`, [])
        if (code === ErrorCode.BAD_INPUT) env.log('reshare peer answer malformed', { session: this.session, peer: who, op, code })
      }
      if (res !== undefined && await accept(res)) return
      await sleep(backoff + Math.floor(Math.random() * RESHARE_BACKOFF_MIN_MS), signal)
      backoff = Math.min(RESHARE_BACKOFF_MAX_MS, backoff * 2)
    }
  }

  /** Receiver step 1–2: collect and verify dealings until the view can be fixed; persists the view. */
  private async gather (): Promise<void> {
    const p = this.progress as ReshareProgress
    const { env } = this
    if (p.view !== undefined) return
    const k = env.oldThreshold
    const n = env.oldNodes.length
    const stop = new AbortController()
    const signal = AbortSignal.any([stop.signal, this.live])
    let reachedK = this.verified.size >= k ? Date.now() : 0
    let wake: () => void = () => {}
    const changed = (): void => { wake() }
    // Joining node: adopt (epochs, base) once k dealers agree.
    const pending = new Map<string, Array<{ i: number, a: Round1Hex }>>()
    let adopted: Promise<void> = Promise.resolve()
    let adopt: () => void = () => {}
    if (p.epochs.length === 0) adopted = new Promise<void>(resolve => { adopt = resolve })
    const consider = async (i: number, a: Round1Hex): Promise<void> => {
      if (p.epochs.length > 0) return
      const key = JSON.stringify([a.epochs, a.base])
      const list = [...(pending.get(key) ?? []), { i, a }]
      pending.set(key, list)
      if (list.length >= k && p.epochs.length === 0) {
        const sets: KeySet[] = []
        for (const [x, e] of a.epochs.entries()) sets.push(await this.fetchBase(e, a.base[x] as string, list.map(y => y.i), signal))
        if (p.epochs.length > 0) return
        p.epochs = [...a.epochs]; p.base = [...a.base]; p.baseKeySets = sets.map(s => toHex(encodeKeySet(s))); this.baseSets = sets
        await this.save()
        env.log('reshare generations adopted', { session: this.session, epochs: p.epochs, agreeing: list.map(y => y.i) })
        adopt()
      }
    }
    const dealer = async (node: ClusterNode): Promise<void> => {
      const i = node.index
      if (this.verified.has(i) || p.excluded.includes(i)) return
      let a: Round1Hex | undefined = p.round1[String(i)]
      if (a === undefined) {
        if (i === env.selfOld && p.own !== undefined) a = p.own
        else {
          await this.poll(node, `old node ${i}`, 'reshare.round1', (res) => {
            a = { epochs: res.epochs, base: res.base, wrap: hexList(res.wrap), sign: hexList(res.sign) }
            return true
          }, signal)
        }
      }
      const r1 = a as Round1Hex
      await consider(i, r1)
      await adopted
      let subs: PerEpochHex | undefined = p.round2[String(i)]
      if (subs === undefined) {
        if (i === env.selfOld && p.dealt !== undefined) subs = p.dealt[String(env.selfNew)]
        else {
          await this.poll(node, `old node ${i}`, 'reshare.round2', (res) => {
            subs = { wrap: hexList(res.wrap), sign: hexList(res.sign) }
            return true
          }, signal)
        }
      }
      try {
        this.verifyDealer(i, r1, subs as PerEpochHex)
        p.round1[String(i)] = r1
        p.round2[String(i)] = subs as PerEpochHex
      } catch (err) {
        if (!(err instanceof VerificationError || err instanceof CeremonyFailure)) throw err
        p.excluded.push(i)
        env.log('reshare dealer excluded', { session: this.session, step: 'gather', blame: [i], detail: err.message.slice(0, 200) })
      }
      await this.save()
      if (this.verified.size >= k && reachedK === 0) reachedK = Date.now()
      this.progressStatus(`gathering dealings: ${this.verified.size}/${n} old nodes verified`)
      changed()
    }
    const tasks = env.oldNodes.map(async node => { await dealer(node).catch((err: unknown) => { if (!signal.aborted) throw err }) })
    const all = Promise.all(tasks)
    let failed: unknown
    all.catch((e: unknown) => { failed = e; wake() })
    for (;;) {
      if (failed !== undefined) { stop.abort(); throw failed }
      if (this.live.aborted) { stop.abort(); throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: stopped') }
      const done = this.verified.size + p.excluded.length
      if (this.verified.size === n || (this.verified.size >= k && reachedK > 0 && Date.now() - reachedK >= RESHARE_GATHER_MS) || (done === n && this.verified.size >= k)) break
      if (done === n && this.verified.size < k) { stop.abort(); throw new CeremonyFailure(`only ${this.verified.size} old node(s) dealt valid shares to this node (need ${k}); excluded: ${p.excluded.join(',')}`, p.excluded) }
      await new Promise<void>(resolve => { wake = resolve; const t = setTimeout(resolve, 200); t.unref() })
    }
    stop.abort()
    await all.catch(() => {})
    const dealers = [...this.verified.keys()].sort((x, y) => x - y)
    const ctx = reshareEchoContext(env.clusterId, this.session, this.bind)
    const digests = dealingDigests(dealers.map(i => { const a = p.round1[String(i)] as Round1Hex; return encodeReshareAnswer({ epochs: a.epochs, base: a.base, wrap: bytesList(a.wrap), sign: bytesList(a.sign) }) }), ctx)
    p.view = { dealers, digests: hexList(digests) }
    await this.save()
    env.log('reshare view fixed', { session: this.session, step: 'view', dealers })
    this.progressStatus(`view fixed (${dealers.length} dealers); waiting for every new member's view`)
  }

  /** Fetches base key set (epoch, id) from one of `from` (old members), checked by id. */
  private async fetchBase (epoch: number, id: string, from: number[], signal: AbortSignal): Promise<KeySet> {
    const local = await this.env.localKeySet(epoch)
    if (local !== undefined && computeKeySetId(local) === id) return local
    for (let round = 0; ; round++) {
      for (const i of from) {
        const node = this.env.oldNodes[i - 1] as ClusterNode
        try {
          const res = await this.env.call(node, 'keyset.get', { epoch, keySetId: id }, RESHARE_CALL_TTL_MS, signal)
          const ks = decodeKeySet(res.keySet)
          if (computeKeySetId(ks) === id && ks.epoch === epoch && ks.clusterId === this.env.clusterId) return ks
        } catch { /* next */ }
      }
      if (signal.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: stopped')
      await sleep(Math.min(RESHARE_BACKOFF_MAX_MS, 100 * (round + 1)), signal)
    }
  }

  /** Receiver step 3: every new member's view; returns Q. */
  private async agreeViews (): Promise<number[]> {
    const p = this.progress as ReshareProgress
    const { env } = this
    const mine = p.view as { dealers: number[], digests: string[] }
    const views = new Map<number, { dealers: number[], digests: string[] }>([[env.selfNew as number, mine]])
    const nNew = env.newNodes.length
    const q = reshareCommitQuorum(env.newThreshold, nNew)
    const stop = new AbortController()
    const signal = AbortSignal.any([stop.signal, this.live])
    let reachedQ = views.size >= q ? Date.now() : 0
    let wake: () => void = () => {}
    const gone = new Set<number>()
    const tasks = Promise.all(env.newNodes.filter(m => m.index !== env.selfNew).map(async m => {
      await this.poll(m, `new member ${m.index}`, 'reshare.view', (res) => {
        // A view is a peer's claim: its shape is checked before it can shrink Q or blame anyone.
        const ok = res.dealers.length === res.digests.length && res.dealers.every((d, j) => Number.isInteger(d) && d >= 1 && d <= env.oldNodes.length && (j === 0 || d > (res.dealers[j - 1] as number))) && res.digests.every(g => g.length === 32)
        if (!ok) throw new CeremonyFailure(`new member ${m.index} served a malformed view (dealers must ascend within 1..${env.oldNodes.length}, one 32-byte digest each)`, [])
        views.set(m.index, { dealers: res.dealers, digests: hexList(res.digests) })
        if (views.size >= q && reachedQ === 0) reachedQ = Date.now()
        wake()
        return true
      }, signal).catch((e: unknown) => {
        if (signal.aborted) return
        // A member whose session failed (CONFLICT) serves no view and no result: it is absent.
        if (e instanceof PeerConflict) { gone.add(m.index); wake(); return }
        throw e
      })
    }))
    let failed: unknown
    tasks.catch((e: unknown) => { failed = e; wake() })
    for (;;) {
      if (failed !== undefined) { stop.abort(); throw failed }
      if (this.live.aborted) { stop.abort(); throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: stopped') }
      if (views.size === nNew) break
      if (reachedQ > 0 && !this.waitMore(env.newNodes.filter(m => !views.has(m.index) && !gone.has(m.index)), reachedQ)) break
      if (views.size + gone.size === nNew) {
        if (views.size >= q) break
        stop.abort()
        throw new CeremonyFailure(`only ${views.size} new member(s) serve a view (${gone.size} failed the session; need ${q})`, [])
      }
      await new Promise<void>(resolve => { wake = resolve; const t = setTimeout(resolve, 200); t.unref() })
    }
    stop.abort()
    await tasks.catch(() => {})
    if (views.size < nNew) env.log('reshare: going on without the views of absent new members', { session: this.session, step: 'views', have: [...views.keys()].sort((a, b) => a - b), quorum: q })
    let Q = [...mine.dealers]
    for (const v of views.values()) Q = Q.filter(i => v.dealers.includes(i))
    const bad: number[] = []
    for (const i of Q) {
      const ds = new Set([...views.values()].map(v => v.digests[v.dealers.indexOf(i)]))
      if (ds.size !== 1) bad.push(i)
    }
    // Round-1 answers are not signed, so a mismatch cannot be pinned on one side: either the old
    // node equivocated or a new member misreported its view. Name both; blame nobody as proven.
    if (bad.length > 0) throw new CeremonyFailure(`old node(s) ${bad.join(',')} showed different dealings to different new members (equivocation), or a new member misreported its view`, [])
    if (Q.length < env.oldThreshold) throw new CeremonyFailure(`not enough old nodes dealt to every new member: ${Q.length} in every view (need ${env.oldThreshold}); issue a new order once the old nodes are up`, [])
    env.log('reshare dealer set agreed', { session: this.session, step: 'views', Q, views: [...views.keys()].sort((a, b) => a - b) })
    return Q
  }

  /** reshareFinish for every (epoch, kind) over Q. Returns the entries and ids (SECRET shares). */
  private compute (Q: number[]): { entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, ids: string[] } {
    const p = this.progress as ReshareProgress
    const { env } = this
    const entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }> = []
    const ids: string[] = []
    for (let x = 0; x < p.epochs.length; x++) {
      const base = this.baseSets[x] as KeySet
      const out = {} as Record<Kind, { share: KeyShare, publicKey: GroupPublicKey }>
      for (const kind of KINDS) {
        const commitments = new Map<number, Point[]>()
        const subShares = new Map<number, Uint8Array>()
        for (const i of Q) {
          commitments.set(i, (this.verified.get(i) as Verified)[kind][x] as Point[])
          subShares.set(i, fromHex('subShare', (p.round2[String(i)] as PerEpochHex)[kind][x] as string))
        }
        out[kind] = reshareFinish(env.selfNew as number, base[kind], Q, commitments, subShares, env.newThreshold, env.newNodes.length)
        for (const s of subShares.values()) s.fill(0)
      }
      const keySet = lifecycleKeySet(base, base.epoch, out.wrap.publicKey, out.sign.publicKey)
      entries.push({ keySet, base, wrapShare: out.wrap.share, signShare: out.sign.share })
      ids.push(computeKeySetId(keySet))
    }
    return { entries, ids }
  }

  private async finish (Q: number[]): Promise<void> {
    const p = this.progress as ReshareProgress
    const { ids } = this.compute(Q)
    if (p.phase !== 'finished') { p.phase = 'finished'; await this.save() }
    this.resultDigest = reshareResultDigest(encodeRefreshResult(p.epochs, ids))
    this.env.log('reshare finished', { session: this.session, step: 'result.ready', digest: this.resultDigest })
    this.progressStatus('waiting for every new member to confirm the new key sets')
  }

  private async agreeAndCommit (Q: number[]): Promise<void> {
    const { env } = this
    const p = this.progress as ReshareProgress
    const mine = this.resultDigest as string
    const nNew = env.newNodes.length
    const q = reshareCommitQuorum(env.newThreshold, nNew)
    const results = new Map<number, string>([[env.selfNew as number, mine]])
    const stop = new AbortController()
    const signal = AbortSignal.any([stop.signal, this.live])
    let wake: () => void = () => {}
    const tasks = Promise.all(env.newNodes.filter(m => m.index !== env.selfNew).map(async m => {
      await this.poll(m, `new member ${m.index}`, 'reshare.result', (res) => {
        if (res.digest !== mine) env.log('reshare: a new member derived other key sets', { session: this.session, member: m.index, theirs: res.digest.slice(0, 16), ours: mine.slice(0, 16) })
        results.set(m.index, res.digest)
        wake()
        return true
      }, signal).catch((e: unknown) => {
        if (signal.aborted) return
        // Our result is served: a peer's failure must not end this node's session (a quorum
        // without that peer may commit). A failed peer has no result that any quorum counts.
        if (e instanceof PeerConflict) { results.set(m.index, 'failed'); wake(); return }
        throw e
      })
    }))
    let failed: unknown
    tasks.catch((e: unknown) => { failed = e; wake() })
    const agreeing = (): number => [...results.values()].filter(d => d === mine).length
    let reachedQ = 0
    for (;;) {
      if (failed !== undefined) { stop.abort(); throw failed }
      if (this.live.aborted) { stop.abort(); throw new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: stopped') }
      if (agreeing() >= q) {
        // Commit now, unless members that are alive have yet to report (waiting for them keeps
        // them from having to catch up; a dead one is not waited for beyond the grace).
        if (reachedQ === 0) reachedQ = Date.now()
        if (results.size === nNew || !this.waitMore(env.newNodes.filter(m => !results.has(m.index)), reachedQ, 0)) break
      }
      // Every new member answered and our result cannot reach the quorum: results never change,
      // so nobody can commit it. (Another result with a quorum is caught by the watcher.)
      if (results.size === nNew && ![...new Set(results.values())].some(d => [...results.values()].filter(x => x === d).length >= q)) {
        stop.abort()
        throw new CeremonyFailure(`the new members derived different key sets (${new Set(results.values()).size} different results, none reported by ${q}); nothing was committed; issue a new order`, [])
      }
      await new Promise<void>(resolve => { wake = resolve; const t = setTimeout(resolve, 200); t.unref() })
    }
    stop.abort()
    await tasks.catch(() => {})
    const { entries, ids } = this.compute(Q)
    await env.commit(this.session, entries, encodeRefreshResult(p.epochs, ids))
    this.committedResultInfo = { epochs: [...p.epochs], keySetIds: [...ids] }
    this.committedHere = true
    this.setStatus({ state: 'done', detail: `reshare ${this.session}: committed epochs ${p.epochs.join(',')} as ${env.newThreshold}-of-${env.newNodes.length}` })
    env.log('reshare committed', { session: this.session, step: 'done', epochs: p.epochs, keySetIds: ids, newIndex: env.selfNew ?? null })
  }

  /** Removed member: waits until ≥ k' new members report committed (same digest). */
  private async awaitNewMembers (): Promise<void> {
    const { env } = this
    const committed = new Map<number, string>()
    this.progressStatus(`dealt; waiting for ${env.newThreshold} new members to commit`)
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const stop = new AbortController()
      const signal = AbortSignal.any([stop.signal, env.signal])
      for (const m of env.newNodes) {
        this.poll(m, `new member ${m.index}`, 'reshare.result', (res) => {
          if (!res.committed) return false
          committed.set(m.index, res.digest)
          const counts = new Map<string, number>()
          for (const d of committed.values()) counts.set(d, (counts.get(d) ?? 0) + 1)
          if ([...counts.values()].some(c => c >= env.newThreshold) && !settled) { settled = true; stop.abort(); resolve() }
          return true
        }, signal).catch((e: unknown) => { if (!settled && !(stop.signal.aborted)) { settled = true; stop.abort(); reject(e) } })
      }
      env.signal.addEventListener('abort', () => { if (!settled) { settled = true; reject(new KeymeshError(ErrorCode.UNAVAILABLE, 'reshare: stopped')) } }, { once: true })
    })
    this.setStatus({ state: 'done', detail: `reshare ${this.session}: ${committed.size} new members committed; this node was removed` })
    env.log('reshare: new members committed; this node is removed', { session: this.session, step: 'removed', committed: [...committed.keys()] })
  }

  private async fail (f: CeremonyFailure, persist: boolean): Promise<void> {
    const { env } = this
    const detail = `reshare ${this.session}: ${f.detail}`.slice(0, 240)
    if (!persist) {
      this.halted = true
      this.setStatus({ state: 'failed', detail })
      env.log('reshare stopped by a local error', { session: this.session, step: 'error', detail })
      return
    }
    this.setStatus({ state: 'failed', detail })
    env.log('reshare failed', { session: this.session, step: 'failed', blame: f.blame, detail })
    const p = this.progress
    if (p === undefined) return
    // Persisted without secrets, so a restart does not deal again under the same session id.
    this.progress = { ...p, phase: 'failed', dealt: {}, round2: {}, detail }
    try { await this.save(); await env.markFailed?.(this.session) } catch (err) { env.log('reshare could not persist failure', { session: this.session, code: errorCode(err) }) }
  }
}

/** Whether `b` equals the 32-byte order digest this progress was made for (exported for tests). */
export function sameBind (p: ReshareProgress, bind: Uint8Array): boolean { return equalBytes(fromHex('bind', p.bind, 32), bind) }

/** Reshare ceremonies by node context (the running or last one). */
const ceremonies = new WeakMap<object, ReshareCeremony>()

/** This node's running or last reshare ceremony, if any. Never throws. */
export function reshareOf (ctx: object): ReshareCeremony | undefined { return ceremonies.get(ctx) }

/** Makes `c` this node's reshare ceremony (served by the reshare.* handlers) and runs it. Never rejects. */
export async function runReshare (ctx: object, c: ReshareCeremony): Promise<void> {
  ceremonies.set(ctx, c)
  await c.run()
}
