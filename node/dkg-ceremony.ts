/**
 * The DKG ceremony over the mesh: pull-based, coordinator-free, resumable
 * (docs/PROTOCOL.md is the normative description; this file implements it).
 *
 * A node that starts without a key set for epoch 1 runs session `e1-a0` for both the wrap key and
 * the sign key at once. Every step is a PULL: each node serves its own data (`dkg.round1`,
 * `dkg.echo`, `dkg.round2`, `dkg.result`) as soon as it exists and polls every other node for
 * theirs, so there is no coordinator, no ordering between nodes, and a node that crashes simply
 * resumes polling after a restart.
 *
 *   1. load or create the DkgState pair; PERSIST it (encrypted by the store) before serving the
 *      round-1 packages, so a restarted node re-serves the same packages (fresh ones would be
 *      equivocation, which the echo check turns into an aborted ceremony);
 *   2. collect every other node's round-1 packages (persisted as they arrive);
 *   3. echo check: every node publishes per-sender transcript digests; a sender seen differently
 *      by anyone is named and the ceremony fails (nothing is stored);
 *   4. collect the round-2 packages addressed to this node (persisted as they arrive, encrypted),
 *      then dkgFinish for wrap and sign (VerificationError blame names a bad dealer → failed);
 *   5. publish the key set id; when every node reports the same id, commit epoch 1 atomically.
 *
 * Retention rule (why a committed node can forget its secret DKG state): a node serves
 * `dkg.result` only after it has persisted every round-2 package it received, so from then on it
 * never needs anyone's round-2 package again, even after a crash. A node commits only after it
 * has seen `dkg.result` from EVERY other node; at that moment nobody needs its round-2 packages
 * any more, so it deletes its DKG progress (polynomial, received shares) in the same breath. It
 * keeps answering `dkg.result` for the session from the committed key set, which is all a
 * lagging node still needs.
 *
 * Secrets owned here: the two DkgStates (polynomials), the round-2 packages this node deals
 * (in memory, re-derived from the state after a restart) and the round-2 packages it received
 * (in memory and in the encrypted progress record) — all dropped at commit or failure. The final
 * key shares go to `store.commitEpoch` and are then the store's.
 */
import { ErrorCode, KeymeshError, VerificationError, errorCode } from '../protocol/errors.ts'
import { Reader, Writer, concat, equalBytes, fromHex, fromUtf8, u32, utf8 } from '../protocol/bytes.ts'
import { CLUSTER_ID_LEN, MAX_NODES } from '../protocol/constants.ts'
import {
  compareTranscripts, decodeDkgRound1, decodeDkgState, dkgErase, dkgFinish, dkgRound2, dkgStart,
  encodeDkgRound1, encodeDkgState, transcriptDigests
} from '../protocol/dkg.ts'
import type { DkgRound1Package, DkgState } from '../protocol/dkg.ts'
import { keySetId as computeKeySetId } from '../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../protocol/keyset.ts'
import { dkgSessionId } from '../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../protocol/rpc.ts'
import type { DkgStatus, NodeContext } from './context.ts'
import { CeremonyFailure, sleep } from './ceremony-kit.ts'

/** Format of the persisted progress record (docs/PROTOCOL.md §6.3). */
export const DKG_PROGRESS_MAGIC = 'KMDP'
export const DKG_PROGRESS_VERSION = 1
/** Phases recorded in the progress record. */
export const DkgPhase = { ROUND1: 1, ROUND2: 2, FINISHED: 3, FAILED: 0xff } as const
export type DkgPhase = typeof DkgPhase[keyof typeof DkgPhase]

/** Per-call deadline of a poll and the backoff range between polls of one peer (ms). */
export const DKG_CALL_TTL_MS = 2_000
export const DKG_BACKOFF_MIN_MS = 100
export const DKG_BACKOFF_MAX_MS = 500

const PURPOSE_WRAP = 1
const PURPOSE_SIGN = 2
const MAX_PKG = 16 * 1024
const MAX_STATE = 64 * 1024

/** The pair of packages (wrap, sign) one node exchanges with another in one round. */
interface Pair<T> { wrap: T; sign: T }

/** Progress of one session; secret (holds the polynomials and received shares). */
export interface DkgProgress {
  session: string
  phase: DkgPhase
  /** Encoded secret DkgStates (empty after failure). */
  wrapState: Uint8Array
  signState: Uint8Array
  /** Encoded round-1 packages by sender index, including this node's own. */
  round1: Map<number, Pair<Uint8Array>>
  /** Encoded round-2 packages received, by sender index (secret). */
  round2: Map<number, Pair<Uint8Array>>
  /** Failure reason (FAILED only). */
  detail: string
}

/**
 * Encodes a progress record: "KMDP" ‖ u8 version ‖ var16 utf8(session) ‖ u8 phase ‖
 * var32 wrapState ‖ var32 signState ‖ u8 count ‖ count × (u8 index ‖ var16 wrap ‖ var16 sign) [round 1]
 * ‖ u8 count ‖ same [round 2] ‖ var16 utf8(detail). SECRET: the store encrypts it at rest.
 * Throws RangeError on an oversize field (cannot happen for valid packages).
 */
export function encodeDkgProgress (p: DkgProgress): Uint8Array {
  const w = new Writer().raw(utf8(DKG_PROGRESS_MAGIC)).u8(DKG_PROGRESS_VERSION).var16(utf8(p.session)).u8(p.phase)
    .var32(p.wrapState).var32(p.signState)
  for (const m of [p.round1, p.round2]) {
    const idx = [...m.keys()].sort((a, b) => a - b)
    w.u8(idx.length)
    for (const i of idx) { const v = m.get(i) as Pair<Uint8Array>; w.u8(i).var16(v.wrap).var16(v.sign) }
  }
  return w.var16(utf8(p.detail)).bytes()
}

/** Strict decoding of a progress record. Throws BadInputError / KeymeshError(UNSUPPORTED_VERSION). */
export function decodeDkgProgress (b: Uint8Array): DkgProgress {
  const r = new Reader(b, 'dkgProgress')
  if (!equalBytes(r.raw('magic', 4), utf8(DKG_PROGRESS_MAGIC))) throw new KeymeshError(ErrorCode.BAD_INPUT, `dkgProgress.magic: expected "${DKG_PROGRESS_MAGIC}"`)
  const v = r.u8('version')
  if (v !== DKG_PROGRESS_VERSION) throw new KeymeshError(ErrorCode.UNSUPPORTED_VERSION, `dkgProgress.version: unsupported version ${v}`)
  const session = fromUtf8('dkgProgress.session', r.var16('session', 32))
  const phase = r.u8('phase')
  if (phase !== DkgPhase.ROUND1 && phase !== DkgPhase.ROUND2 && phase !== DkgPhase.FINISHED && phase !== DkgPhase.FAILED) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, 'dkgProgress.phase: unknown phase')
  }
  const wrapState = new Uint8Array(r.var32('wrapState', MAX_STATE))
  const signState = new Uint8Array(r.var32('signState', MAX_STATE))
  const maps: Array<Map<number, Pair<Uint8Array>>> = []
  for (const name of ['round1', 'round2']) {
    const m = new Map<number, Pair<Uint8Array>>()
    const count = r.u8(`${name}.count`)
    for (let c = 0; c < count; c++) {
      const i = r.u8(`${name}.index`)
      if (i < 1 || i > MAX_NODES || m.has(i)) throw new KeymeshError(ErrorCode.BAD_INPUT, `dkgProgress.${name}.index: bad or duplicate index`)
      m.set(i, { wrap: new Uint8Array(r.var16(`${name}.wrap`, MAX_PKG)), sign: new Uint8Array(r.var16(`${name}.sign`, MAX_PKG)) })
    }
    maps.push(m)
  }
  const detail = fromUtf8('dkgProgress.detail', r.var16('detail', 1024))
  r.end()
  return { session, phase: phase as DkgPhase, wrapState, signState, round1: maps[0] as Map<number, Pair<Uint8Array>>, round2: maps[1] as Map<number, Pair<Uint8Array>>, detail }
}

/**
 * Context string of the transcript digests (docs/PROTOCOL.md §6.2):
 * clusterId (16 bytes) ‖ u32 len ‖ utf8(session) ‖ u8 purpose (1 wrap, 2 sign), so digests of
 * different clusters, sessions or keys never compare equal. Throws BadInputError on a bad cluster id.
 */
export function transcriptContext (clusterId: string, session: string, purpose: 'wrap' | 'sign'): Uint8Array {
  const s = utf8(session)
  return concat(fromHex('clusterId', clusterId, CLUSTER_ID_LEN), u32(s.length), s, new Uint8Array([purpose === 'wrap' ? PURPOSE_WRAP : PURPOSE_SIGN]))
}

/** What the ceremony needs from the node; `startDkgIfNeeded` builds it from a NodeContext. */
export interface DkgEnv {
  clusterId: string
  selfIndex: number
  threshold: number
  n: number
  /** Calls node `index`; rejects with a KeymeshError on any failure. */
  call: <O extends RpcOp>(index: number, op: O, body: RequestBodies[O], ttlMs: number, signal: AbortSignal) => Promise<ResponseBodies[O]>
  loadProgress: (session: string) => Promise<Uint8Array | undefined>
  saveProgress: (session: string, record: Uint8Array) => Promise<void>
  deleteProgress: (session: string) => Promise<void>
  /** Atomically stores key set + both shares as the epoch. */
  commit: (epoch: number, ks: KeySet, wrapShare: KeyShare, signShare: KeyShare) => Promise<void>
  /** Structured progress log (public fields only). */
  log: (msg: string, fields: Record<string, unknown>) => void
  /** Status sink (ctx.dkgStatus). */
  setStatus: (s: DkgStatus) => void
  signal: AbortSignal
}

function unavailable (what: string): KeymeshError { return new KeymeshError(ErrorCode.UNAVAILABLE, `dkg: ${what} not available yet; retry`) }

/**
 * One DKG session of this node: the state machine that polls peers, plus the serving side used by
 * the `dkg.*` handlers. Single-threaded JS: the handlers read fields the driver writes.
 */
export class DkgCeremony {
  readonly session: string
  readonly epoch: number
  private status: DkgStatus = { state: 'idle' }
  private progress?: DkgProgress
  private states?: Pair<DkgState>
  private round1Pkgs = new Map<number, Pair<DkgRound1Package>>()
  private digests?: Pair<Uint8Array[]>
  private echoOk = false
  /** Secret: round-2 packages this node deals, by recipient (derived from the states). */
  private dealt?: Map<number, Pair<Uint8Array>>
  private resultId?: string
  private committed = false
  private saving: Promise<void> = Promise.resolve()
  /** Set when a local (non-protocol) error stopped the ceremony; nothing was persisted as failed. */
  private halted = false

  /**
   * `bind` (lifecycle rotations only, docs/PROTOCOL.md §11.3): the 32-byte
   * digest of the order that started this session, appended to the transcript context, so nodes
   * that were given DIFFERENT orders for the same session fail the echo check instead of
   * completing one ceremony under conflicting instructions. Epoch 1 has no order (no binding).
   */
  constructor (private readonly env: DkgEnv, epoch = 1, attempt = 0, private readonly bind: Uint8Array = new Uint8Array(0)) {
    this.epoch = epoch
    this.session = dkgSessionId(epoch, attempt)
  }

  /** Current status (for `status`). Never throws. */
  get state (): DkgStatus { return this.status }

  private setStatus (s: DkgStatus): void { this.status = s; this.env.setStatus(s) }

  /** Status detail while running (never overrides a failure). */
  private progressStatus (detail: string): void {
    if (this.status.state === 'running') this.setStatus({ state: 'running', detail: `${this.session}: ${detail}` })
  }

  // -------------------------------------------------------------------------------------------
  // Serving side (called by node/handlers/dkg.ts). Each throws KeymeshError: NOT_FOUND for another
  // session, CONFLICT when this session failed, UNAVAILABLE before the data exists.

  /**
   * NOT_FOUND for another session. A failed session answers CONFLICT, except that the public
   * round-1 packages and echo digests stay available (`publicOk`) so that every other node can
   * run the echo check itself and blame the equivocating sender, instead of only learning
   * "node i failed".
   */
  private check (session: string, publicOk: boolean): void {
    if (session !== this.session) throw new KeymeshError(ErrorCode.NOT_FOUND, `dkg: unknown session ${session}`)
    // Halted by a local error: behave like a node that is down (peers wait), never like a failed session.
    if (this.halted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'dkg: this node halted on a local error; it resumes after a restart')
    if (this.status.state === 'failed' && !publicOk) throw new KeymeshError(ErrorCode.CONFLICT, `dkg: session ${session} failed`)
  }

  private afterCommit (what: string): KeymeshError {
    return new KeymeshError(ErrorCode.NOT_FOUND, `dkg: session ${this.session} is complete; ${what} is no longer served`)
  }

  /** This node's own round-1 packages. */
  serveRound1 (session: string): ResponseBodies['dkg.round1'] {
    const own = this.progress?.round1.get(this.env.selfIndex)
    this.check(session, own !== undefined)
    if (own === undefined) { if (this.committed) throw this.afterCommit('round 1'); throw unavailable('round 1') }
    return { wrap: own.wrap, sign: own.sign }
  }

  /** Per-sender transcript digests, once every round-1 package is here. */
  serveEcho (session: string): ResponseBodies['dkg.echo'] {
    this.check(session, this.digests !== undefined)
    if (this.digests === undefined) { if (this.committed) throw this.afterCommit('echo'); throw unavailable('echo') }
    return { wrap: this.digests.wrap, sign: this.digests.sign }
  }

  /**
   * The round-2 packages addressed to the caller, and only to the caller (node `callerIndex`,
   * authenticated by the transport). Available once this node's echo check passed.
   */
  serveRound2 (session: string, callerIndex: number): ResponseBodies['dkg.round2'] {
    this.check(session, false)
    if (callerIndex === this.env.selfIndex || callerIndex < 1 || callerIndex > this.env.n) {
      throw new KeymeshError(ErrorCode.NOT_AUTHORIZED, 'dkg: round 2 is served only to other cluster nodes')
    }
    if (this.committed) throw this.afterCommit('round 2')
    const mine = this.dealt?.get(callerIndex)
    if (mine === undefined) throw unavailable('round 2')
    // Copies: the transport owns what it is given; our buffers are wiped at commit.
    return { wrap: new Uint8Array(mine.wrap), sign: new Uint8Array(mine.sign) }
  }

  /** This node's key set id once it has finished (before and after commit). */
  serveResult (session: string): ResponseBodies['dkg.result'] {
    this.check(session, false)
    if (this.resultId === undefined) throw unavailable('result')
    return { keySetId: this.resultId }
  }

  // -------------------------------------------------------------------------------------------
  // Driver

  /**
   * Runs the ceremony to the end: commit (status `done`), failure (status `failed`, nothing
   * committed) or shutdown (stops quietly; progress stays persisted). Never rejects: failures are
   * reported through the status and the log.
   */
  async run (): Promise<void> {
    const { env } = this
    try {
      this.setStatus({ state: 'running', detail: 'starting' })
      await this.loadOrCreate()
      if (this.status.state === 'failed') return
      await this.collectRound1()
      await this.echo()
      await this.collectRound2()
      await this.finish()
      await this.agreeAndCommit()
    } catch (err) {
      if (env.signal.aborted && !(err instanceof CeremonyFailure)) {
        env.log('dkg stopped', { session: this.session, step: 'stopped' })
        return
      }
      if (err instanceof CeremonyFailure) { await this.fail(err, true); return }
      if (err instanceof VerificationError) {
        await this.fail(new CeremonyFailure(`verification failed, blame node(s) ${err.blame.join(',') || 'unknown'}: ${err.message}`, err.blame), true)
        return
      }
      // A local problem (store, corrupt record, bug) is not a protocol failure: report it, but do
      // not persist "failed", so that a restart after the operator fixed it resumes the session.
      await this.fail(new CeremonyFailure(`local error (restart the node to resume): ${errorCode(err)} ${err instanceof Error ? err.message : String(err)}`, []), false)
    }
  }

  private async save (): Promise<void> {
    const p = this.progress
    if (p === undefined) return
    const rec = encodeDkgProgress(p)
    // Serialise writes so that a later snapshot never lands before an earlier one.
    this.saving = this.saving.then(() => this.env.saveProgress(this.session, rec))
    await this.saving
  }

  private async loadOrCreate (): Promise<void> {
    const { env } = this
    const raw = await env.loadProgress(this.session)
    if (raw !== undefined) {
      const p = decodeDkgProgress(raw)
      if (p.session !== this.session) throw new Error('dkg: stored progress belongs to another session')
      this.progress = p
      if (p.phase === DkgPhase.FAILED) {
        this.setStatus({ state: 'failed', detail: p.detail })
        env.log('dkg failed earlier', { session: this.session, step: 'failed', detail: p.detail })
        return
      }
      this.states = { wrap: decodeDkgState(p.wrapState), sign: decodeDkgState(p.signState) }
      for (const [i, pair] of p.round1) this.round1Pkgs.set(i, this.decodePair(i, pair))
      env.log('dkg resumed', { session: this.session, step: 'resumed', phase: p.phase, round1: p.round1.size, round2: p.round2.size })
    } else {
      const w = dkgStart(env.selfIndex, env.threshold, env.n)
      const s = dkgStart(env.selfIndex, env.threshold, env.n)
      this.states = { wrap: w.state, sign: s.state }
      const own = { wrap: encodeDkgRound1(w.round1), sign: encodeDkgRound1(s.round1) }
      const progress: DkgProgress = {
        session: this.session,
        phase: DkgPhase.ROUND1,
        wrapState: encodeDkgState(w.state),
        signState: encodeDkgState(s.state),
        round1: new Map([[env.selfIndex, own]]),
        round2: new Map(),
        detail: ''
      }
      // Persist BEFORE the packages can be served: serveRound1 reads this.progress, which is
      // assigned only after the record is on disk, so a crash can never lead to re-dealing.
      await env.saveProgress(this.session, encodeDkgProgress(progress))
      this.progress = progress
      this.round1Pkgs.set(env.selfIndex, { wrap: w.round1, sign: s.round1 })
    }
    env.log('dkg round1 ready', { session: this.session, step: 'round1.ready', index: env.selfIndex })
  }

  private decodePair (from: number, pair: Pair<Uint8Array>): Pair<DkgRound1Package> {
    let out: Pair<DkgRound1Package>
    try {
      out = { wrap: decodeDkgRound1(pair.wrap), sign: decodeDkgRound1(pair.sign) }
    } catch (err) {
      throw new CeremonyFailure(`node ${from} sent a malformed round-1 package (${errorCode(err)})`, [from])
    }
    const { threshold } = this.env
    for (const pkg of [out.wrap, out.sign]) {
      if (pkg.index !== from) throw new CeremonyFailure(`node ${from} sent a round-1 package labelled for node ${pkg.index}`, [from])
      if (pkg.commitment.length !== threshold) throw new CeremonyFailure(`node ${from} sent a round-1 package for threshold ${pkg.commitment.length}`, [from])
    }
    return out
  }

  private others (): number[] {
    const out: number[] = []
    for (let i = 1; i <= this.env.n; i++) if (i !== this.env.selfIndex) out.push(i)
    return out
  }

  /**
   * Polls node `i` with `op` until `accept` returns true (it may throw CeremonyFailure). Transport
   * errors, UNAVAILABLE, TIMEOUT, BUSY and NOT_FOUND are retried with backoff; CONFLICT (the peer's
   * session failed) ends the ceremony naming the peer.
   */
  private async poll<O extends RpcOp> (i: number, op: O, accept: (res: ResponseBodies[O]) => Promise<boolean> | boolean): Promise<void> {
    const { env } = this
    let backoff = DKG_BACKOFF_MIN_MS
    for (;;) {
      if (env.signal.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'dkg: node is shutting down')
      let res: ResponseBodies[O] | undefined
      try {
        res = await env.call(i, op, { session: this.session } as RequestBodies[O], DKG_CALL_TTL_MS, env.signal)
      } catch (err) {
        const code = errorCode(err)
        if (code === ErrorCode.CONFLICT) throw new CeremonyFailure(`node ${i} reports that session ${this.session} failed`, [i])
        if (code === ErrorCode.BAD_INPUT) env.log('dkg peer answer malformed', { session: this.session, peer: i, op, code })
      }
      if (res !== undefined && await accept(res)) return
      await sleep(backoff + Math.floor(Math.random() * DKG_BACKOFF_MIN_MS), env.signal)
      backoff = Math.min(DKG_BACKOFF_MAX_MS, backoff * 2)
    }
  }

  private async collectRound1 (): Promise<void> {
    const p = this.progress as DkgProgress
    const { env } = this
    if (p.phase !== DkgPhase.ROUND1) { this.computeDigests(); return }
    await Promise.all(this.others().filter(i => !p.round1.has(i)).map(i => this.poll(i, 'dkg.round1', async (res) => {
      const pair = this.decodePair(i, res)
      this.round1Pkgs.set(i, pair)
      p.round1.set(i, { wrap: new Uint8Array(res.wrap), sign: new Uint8Array(res.sign) })
      await this.save()
      env.log('dkg round1 received', { session: this.session, step: 'round1', from: i, have: p.round1.size, of: env.n })
      this.progressStatus(`round 1: ${p.round1.size}/${env.n} packages`)
      return true
    })))
    this.computeDigests()
  }

  private computeDigests (): void {
    const all = (k: 'wrap' | 'sign'): DkgRound1Package[] => [...this.round1Pkgs.values()].map(x => x[k])
    this.digests = {
      wrap: transcriptDigests(all('wrap'), concat(transcriptContext(this.env.clusterId, this.session, 'wrap'), this.bind)),
      sign: transcriptDigests(all('sign'), concat(transcriptContext(this.env.clusterId, this.session, 'sign'), this.bind))
    }
  }

  private async echo (): Promise<void> {
    const p = this.progress as DkgProgress
    const { env } = this
    const mine = this.digests as Pair<Uint8Array[]>
    if (p.phase === DkgPhase.ROUND1) {
      const reports: Pair<Map<number, Uint8Array[]>> = { wrap: new Map(), sign: new Map() }
      await Promise.all(this.others().map(i => this.poll(i, 'dkg.echo', (res) => {
        reports.wrap.set(i, res.wrap)
        reports.sign.set(i, res.sign)
        return true
      })))
      const bad = new Set([...compareTranscripts(mine.wrap, reports.wrap), ...compareTranscripts(mine.sign, reports.sign)])
      if (bad.size > 0) {
        const blame = [...bad].sort((a, b) => a - b)
        const hint = this.bind.length > 0 ? '; or the nodes were given different lifecycle orders for this session' : ''
        throw new CeremonyFailure(`echo check failed: round-1 package(s) of node(s) ${blame.join(',')} were seen differently by different nodes (equivocation${hint})`, blame)
      }
      p.phase = DkgPhase.ROUND2
      await this.save()
      env.log('dkg echo ok', { session: this.session, step: 'echo', of: env.n })
      this.progressStatus('echo check passed')
    }
    this.echoOk = true
  }

  private async collectRound2 (): Promise<void> {
    const p = this.progress as DkgProgress
    const { env } = this
    if (!this.echoOk) throw new Error('dkg: round 2 before the echo check')
    const st = this.states as Pair<DkgState>
    const all = (k: 'wrap' | 'sign'): DkgRound1Package[] => [...this.round1Pkgs.values()].map(x => x[k])
    // Deterministic in the persisted state: a restarted node deals the very same shares.
    const w = dkgRound2(st.wrap, all('wrap'))
    const s = dkgRound2(st.sign, all('sign'))
    const dealt = new Map<number, Pair<Uint8Array>>()
    for (const i of this.others()) dealt.set(i, { wrap: w.get(i) as Uint8Array, sign: s.get(i) as Uint8Array })
    this.dealt = dealt
    env.log('dkg round2 ready', { session: this.session, step: 'round2.ready' })
    if (p.phase !== DkgPhase.ROUND2) return
    await Promise.all(this.others().filter(i => !p.round2.has(i)).map(i => this.poll(i, 'dkg.round2', async (res) => {
      p.round2.set(i, { wrap: new Uint8Array(res.wrap), sign: new Uint8Array(res.sign) })
      await this.save()
      env.log('dkg round2 received', { session: this.session, step: 'round2', from: i, have: p.round2.size + 1, of: env.n })
      this.progressStatus(`round 2: ${p.round2.size + 1}/${env.n} packages`)
      return true
    })))
  }

  private finishShares (): { ks: KeySet; wrapShare: KeyShare; signShare: KeyShare } {
    const p = this.progress as DkgProgress
    const st = this.states as Pair<DkgState>
    const all = (k: 'wrap' | 'sign'): DkgRound1Package[] => [...this.round1Pkgs.values()].map(x => x[k])
    const recv = (k: 'wrap' | 'sign'): Map<number, Uint8Array> => new Map([...p.round2].map(([i, v]) => [i, v[k]]))
    const w = dkgFinish(st.wrap, all('wrap'), recv('wrap'))
    const s = dkgFinish(st.sign, all('sign'), recv('sign'))
    const ks: KeySet = { version: 1, clusterId: this.env.clusterId, epoch: this.epoch, threshold: this.env.threshold, n: this.env.n, wrap: w.publicKey, sign: s.publicKey }
    return { ks, wrapShare: w.share, signShare: s.share }
  }

  private async finish (): Promise<void> {
    const p = this.progress as DkgProgress
    const { ks } = this.finishShares()
    if (p.phase !== DkgPhase.FINISHED) {
      p.phase = DkgPhase.FINISHED
      await this.save()
    }
    // Only now (every received round-2 package persisted) may others learn that we are done.
    this.resultId = computeKeySetId(ks)
    this.env.log('dkg finished', { session: this.session, step: 'result.ready', keySetId: this.resultId })
    this.progressStatus('waiting for every node to confirm the key set')
  }

  private async agreeAndCommit (): Promise<void> {
    const { env } = this
    const mine = this.resultId as string
    await Promise.all(this.others().map(i => this.poll(i, 'dkg.result', (res) => {
      if (res.keySetId !== mine) throw new CeremonyFailure(`node ${i} derived a different key set (${res.keySetId.slice(0, 16)}… vs ${mine.slice(0, 16)}…)`, [i])
      env.log('dkg result agreed', { session: this.session, step: 'result', from: i })
      return true
    })))
    // Recompute the shares from the persisted inputs (they were not kept in memory meanwhile).
    const { ks, wrapShare, signShare } = this.finishShares()
    await env.commit(this.epoch, ks, wrapShare, signShare)
    this.committed = true
    this.eraseSecrets()
    // commitEpoch already removed the record in its batch; this is belt and braces, never fatal.
    await env.deleteProgress(this.session).catch((err: unknown) => { env.log('dkg cleanup failed', { session: this.session, code: errorCode(err) }) })
    this.setStatus({ state: 'done', detail: `keySetId ${mine}` })
    env.log('dkg committed', { session: this.session, step: 'done', epoch: this.epoch, keySetId: mine })
  }

  private eraseSecrets (): void {
    if (this.states !== undefined) { dkgErase(this.states.wrap); dkgErase(this.states.sign) }
    this.states = undefined
    if (this.dealt !== undefined) for (const v of this.dealt.values()) { v.wrap.fill(0); v.sign.fill(0) }
    this.dealt = undefined
    if (this.progress !== undefined) {
      this.progress.wrapState.fill(0)
      this.progress.signState.fill(0)
      for (const v of this.progress.round2.values()) { v.wrap.fill(0); v.sign.fill(0) }
      this.progress.round2.clear()
    }
  }

  private async fail (f: CeremonyFailure, persist: boolean): Promise<void> {
    const { env } = this
    if (!persist) {
      this.halted = true
      this.setStatus({ state: 'failed', detail: f.detail.slice(0, 240) })
      env.log('dkg stopped by a local error', { session: this.session, step: 'error', detail: f.detail.slice(0, 240) })
      this.eraseSecrets()
      return
    }
    this.eraseSecrets()
    const detail = f.detail.slice(0, 240)
    this.setStatus({ state: 'failed', detail })
    env.log('dkg failed', { session: this.session, step: 'failed', blame: f.blame, detail })
    // Persist the failure (without secrets) so a restart does not start over with fresh
    // packages under the same session id, which other nodes would see as equivocation.
    // The public round-1 packages are kept (served on, see `check`); secrets are not.
    const round1 = this.progress?.round1 ?? new Map<number, Pair<Uint8Array>>()
    this.progress = { session: this.session, phase: DkgPhase.FAILED, wrapState: new Uint8Array(0), signState: new Uint8Array(0), round1, round2: new Map(), detail }
    try { await this.save() } catch (err) { env.log('dkg could not persist failure', { session: this.session, code: errorCode(err) }) }
  }
}

/** Ceremonies by node context (one per running node). */
const ceremonies = new WeakMap<NodeContext, DkgCeremony>()

/** The running or finished ceremony of this node, if any. Never throws. */
export function ceremonyOf (ctx: NodeContext): DkgCeremony | undefined { return ceremonies.get(ctx) }

/** Store name of the (secret, sealed at rest) progress record of a session. */
export const DKG_PROGRESS_NAME = 'secret:progress'

/** Builds the ceremony's environment from a node context. Never throws. */
export function dkgEnvFromContext (ctx: NodeContext): DkgEnv {
  const log = ctx.log.child({ component: 'dkg' })
  return {
    clusterId: ctx.cluster.clusterId,
    selfIndex: ctx.selfIndex,
    threshold: ctx.cluster.threshold,
    n: ctx.cluster.nodes.length,
    call: async (index, op, body, ttlMs, signal) => await ctx.peers.call(index, op, body, { signal: AbortSignal.any([signal, AbortSignal.timeout(ttlMs)]), ttlMs }),
    loadProgress: async (session) => await ctx.store.getDkg(session, DKG_PROGRESS_NAME),
    saveProgress: async (session, record) => { await ctx.store.putDkg(session, DKG_PROGRESS_NAME, record) },
    deleteProgress: async (session) => { await ctx.store.deleteDkg(session) },
    commit: async (epoch, ks, w, s) => { await ctx.store.commitEpoch(epoch, ks, w, s) },
    log: (msg, fields) => { log.info(msg, fields) },
    setStatus: (s) => { ctx.dkgStatus = s },
    signal: ctx.shutdownSignal
  }
}

/**
 * Called by the node service on start. When epoch 1 is committed, sets status `done` (and removes
 * DKG leftovers a crash between commit and cleanup may have left); otherwise starts the ceremony
 * for session `e1-a0` in the background and returns at once (the ceremony's progress is visible
 * through `ctx.dkgStatus` and the log; `dkgDone(ctx)` resolves when it ends). Throws only on a
 * store failure while checking the committed state.
 */
export async function startDkgIfNeeded (ctx: NodeContext): Promise<void> {
  const session = dkgSessionId(1, 0)
  // A node that joined by a reshare may hold no epoch-1 key set (retired before it joined): any
  // committed epoch means the initial DKG is over.
  const cur = await ctx.store.currentEpoch()
  const id = await ctx.store.getKeySetId(cur ?? 1)
  if (id !== undefined) {
    if ((await ctx.store.listDkg(session)).length > 0) await ctx.store.deleteDkg(session)
    ctx.dkgStatus = { state: 'done', detail: `keySetId ${id}` }
    // Lifecycle (node/lifecycle/manager.ts): resume an accepted rotation order after a restart.
    // Imported lazily: that module builds on this one (no import cycle at load time).
    const { resumeLifecycle } = await import('./lifecycle/manager.ts')
    await resumeLifecycle(ctx)
    return
  }
  if (ceremonies.has(ctx)) return
  const c = new DkgCeremony(dkgEnvFromContext(ctx))
  ceremonies.set(ctx, c)
  runs.set(ctx, c.run())
}

const runs = new WeakMap<NodeContext, Promise<void>>()

/**
 * Makes `c` this node's current ceremony (served by the dkg.* handlers) and runs it. Used by the
 * lifecycle manager for the DKG of a new epoch (rotation); epoch 1 keeps using startDkgIfNeeded.
 * The previous ceremony of this node, if any, must have ended. Never rejects (see `run`).
 */
export async function runCeremony (ctx: NodeContext, c: DkgCeremony): Promise<void> {
  ceremonies.set(ctx, c)
  const p = c.run()
  runs.set(ctx, p)
  await p
}

/** Resolves when this node's ceremony has ended (done, failed or stopped); at once when none runs. Never rejects. */
export async function dkgDone (ctx: NodeContext): Promise<void> { await runs.get(ctx) }
