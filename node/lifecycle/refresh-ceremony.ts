/**
 * The proactive share refresh ceremony over the mesh (docs/PROTOCOL.md §11.6; crypto §10.3,
 * protocol/refresh.ts): same members, threshold, epochs and group keys; every LIVE epoch's wrap
 * and sign shares are re-randomised and the epochs get a new key set generation (keySetId).
 *
 * Modelled on the DKG ceremony (node/dkg-ceremony.ts): pull-based, coordinator-free, resumable,
 * echo-checked. Dealer set Q = all n nodes (a refresh, like a rotation, needs every node up).
 * Session id `f<epoch>-<first 16 hex of the order nonce>`.
 *
 *   1. load or create the progress record. Creating it deals (refreshDeal) one zero-constant
 *      polynomial per live epoch and key, and PERSISTS the public dealings AND the secret
 *      sub-shares for every recipient (sealed by the store) before anything is served, so a
 *      restarted node serves the very same dealings and sub-shares (dealing again would be
 *      equivocation, which the echo check turns into a failed ceremony);
 *   2. collect every other node's round-1 answer (`refresh.round1`: epochs + dealings), check the
 *      epoch list equals ours and every dealing publicly (verifyRefreshDealing: zero constant
 *      term, k points); persist each as it arrives;
 *   3. echo check: every node publishes a digest of every node's whole round-1 answer, bound to
 *      the cluster id, the session, the order digest and the refreshed generations
 *      (dealingDigests); any difference fails the ceremony naming the nodes;
 *   4. collect the sub-shares addressed to this node (`refresh.round2`, served to the caller
 *      only), persist them, then refreshFinish per (epoch, kind): a bad sub-share or dealing
 *      fails the ceremony with the dealer named (blame as data);
 *   5. publish the result digest (SHA-256 over the new keySetIds) only after phase FINISHED is
 *      persisted; when every other node reports the same digest, commit ALL refreshed epochs with
 *      ONE store.replaceGenerations batch (which deletes the progress record and leaves a public
 *      result marker), then wipe the secrets.
 *
 * Retention (same argument as §6.6): a node serves its result only once it holds every sub-share
 * it needs; it commits only after every other node served its result, so nobody needs its
 * round-1/round-2 data any more. After the commit it serves only `refresh.result`, from memory or
 * from the result marker (after a restart).
 *
 * Secrets owned here: the sub-shares this node deals (in memory and in the sealed progress
 * record), the sub-shares it receives (same), the old and new shares while finishing (bigints:
 * cannot be wiped, dropped after use). The new shares go to store.replaceGenerations and are then
 * the store's; the old shares are overwritten by that batch (that overwrite is what refresh buys).
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { BadInputError, ErrorCode, KeymeshError, VerificationError, errorCode } from '../../protocol/errors.ts'
import { Reader, Writer, concat, equalBytes, fromHex, fromUtf8, toHex, u16, u32, utf8 } from '../../protocol/bytes.ts'
import { CLUSTER_ID_LEN, MAX_NODES } from '../../protocol/constants.ts'
import { compareTranscripts } from '../../protocol/dkg.ts'
import { keySetId as computeKeySetId } from '../../protocol/keyset.ts'
import type { GroupPublicKey, KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { Point } from '../../protocol/group.ts'
import { decodeRefreshDealing, encodeRefreshDealing, refreshDeal, refreshFinish, verifyRefreshDealing } from '../../protocol/refresh.ts'
import { dealingDigests, lifecycleKeySet } from '../../protocol/reshare.ts'
import { MAX_REFRESH_DEALING_BYTES, MAX_REFRESH_EPOCHS, refreshSessionId } from '../../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import type { DkgStatus, NodeContext } from '../context.ts'
import { CeremonyFailure, sleep } from '../ceremony-kit.ts'

/** Format of the persisted progress record (docs/PROTOCOL.md §11.6). */
export const REFRESH_PROGRESS_MAGIC = 'KMFP'
export const REFRESH_PROGRESS_VERSION = 1
/** Store name of the sealed progress record, and of the public result marker left by the commit. */
export const REFRESH_PROGRESS_NAME = 'secret:progress'
export const REFRESH_RESULT_NAME = 'result'
/** Domain tag of the result digest. */
export const REFRESH_RESULT_TAG = 'keymesh/v1/refresh/result'
/** Phases recorded in the progress record. */
export const RefreshPhase = { ROUND1: 1, ROUND2: 2, FINISHED: 3, FAILED: 0xff } as const
export type RefreshPhase = typeof RefreshPhase[keyof typeof RefreshPhase]

/** Per-call deadline and backoff of the polls (ms), as the DKG ceremony. */
export const REFRESH_CALL_TTL_MS = 2_000
export const REFRESH_BACKOFF_MIN_MS = 100
export const REFRESH_BACKOFF_MAX_MS = 500
/**
 * A node that has not served its result this long after its session (re)started fails the
 * session (ms): a node down or never reached would otherwise hold the refresh — and every other
 * lifecycle order, e.g. the reshare that replaces that node — forever. Safe: every commit needs
 * every node's result, and this node has served none, so nobody can have committed. (A node that
 * served its result never times out: the others may commit.)
 */
export const REFRESH_DEADLINE_MS = 600_000

const KINDS = ['wrap', 'sign'] as const
type Kind = typeof KINDS[number]

/** Per-epoch byte strings for both keys (dealings, or sub-shares), in the session's epoch order. */
export interface PerEpoch { wrap: Uint8Array[]; sign: Uint8Array[] }

/** Progress of one refresh session; SECRET (dealt and received sub-shares). */
export interface RefreshProgress {
  session: string
  phase: RefreshPhase
  /** SHA-256 of the order's signing bytes (binds the echo digests to the order). */
  bind: Uint8Array
  /** Refreshed epochs, ascending. */
  epochs: number[]
  /** keySetId (64 hex) of the generation being refreshed, per epoch. */
  base: string[]
  /** Round-1 dealings by dealer index, own included (public). */
  round1: Map<number, PerEpoch>
  /** Sub-shares this node deals, by recipient index 1..n, own included (SECRET; empty after failure). */
  dealt: Map<number, PerEpoch>
  /** Sub-shares received, by dealer index, own excluded (SECRET; empty after failure). */
  round2: Map<number, PerEpoch>
  /** Failure reason (FAILED only). */
  detail: string
}

function writeMap (w: Writer, m: Map<number, PerEpoch>, count: number): void {
  const idx = [...m.keys()].sort((a, b) => a - b)
  w.u8(idx.length)
  for (const i of idx) {
    const v = m.get(i) as PerEpoch
    if (v.wrap.length !== count || v.sign.length !== count) throw new RangeError('refresh progress: per-epoch list of the wrong length')
    w.u8(i)
    for (let x = 0; x < count; x++) w.var16(v.wrap[x] as Uint8Array).var16(v.sign[x] as Uint8Array)
  }
}

/**
 * Encodes a progress record: "KMFP" ‖ u8 version ‖ var16 utf8(session) ‖ u8 phase ‖ bind (32) ‖
 * u16 E ‖ E × (u32 epoch ‖ base keySetId (32)) ‖ 3 × [u8 count ‖ count × (u8 index ‖ E × (var16 wrap
 * ‖ var16 sign))] (round1, dealt, round2; ascending index) ‖ var16 utf8(detail). SECRET: the store
 * seals it. Throws RangeError on an inconsistent record (a bug).
 */
export function encodeRefreshProgress (p: RefreshProgress): Uint8Array {
  const E = p.epochs.length
  const w = new Writer().raw(utf8(REFRESH_PROGRESS_MAGIC)).u8(REFRESH_PROGRESS_VERSION).var16(utf8(p.session)).u8(p.phase)
  if (p.bind.length !== 32 || p.base.length !== E) throw new RangeError('refresh progress: bad bind or base')
  w.raw(p.bind).u16(E)
  for (let x = 0; x < E; x++) w.u32(p.epochs[x] as number).raw(fromHex('base', p.base[x], 32))
  writeMap(w, p.round1, E)
  writeMap(w, p.dealt, E)
  writeMap(w, p.round2, E)
  return w.var16(utf8(p.detail)).bytes()
}

/** Strict decoding of a progress record. Throws KeymeshError BAD_INPUT / UNSUPPORTED_VERSION. */
export function decodeRefreshProgress (b: Uint8Array): RefreshProgress {
  const r = new Reader(b, 'refreshProgress')
  if (!equalBytes(r.raw('magic', 4), utf8(REFRESH_PROGRESS_MAGIC))) throw new KeymeshError(ErrorCode.BAD_INPUT, `refreshProgress.magic: expected "${REFRESH_PROGRESS_MAGIC}"`)
  const v = r.u8('version')
  if (v !== REFRESH_PROGRESS_VERSION) throw new KeymeshError(ErrorCode.UNSUPPORTED_VERSION, `refreshProgress.version: unsupported version ${v}`)
  const session = fromUtf8('refreshProgress.session', r.var16('session', 32))
  const phase = r.u8('phase')
  if (phase !== RefreshPhase.ROUND1 && phase !== RefreshPhase.ROUND2 && phase !== RefreshPhase.FINISHED && phase !== RefreshPhase.FAILED) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, 'refreshProgress.phase: unknown phase')
  }
  const bind = new Uint8Array(r.raw('bind', 32))
  const E = r.u16('epochs.count')
  if (E < 1 || E > MAX_REFRESH_EPOCHS) throw new KeymeshError(ErrorCode.BAD_INPUT, 'refreshProgress.epochs: bad count')
  const epochs: number[] = []
  const base: string[] = []
  for (let x = 0; x < E; x++) {
    const e = r.u32('epoch')
    if (e < 1 || (x > 0 && e <= (epochs[x - 1] as number))) throw new KeymeshError(ErrorCode.BAD_INPUT, 'refreshProgress.epochs: not ascending')
    epochs.push(e)
    base.push(toHex(r.raw('base', 32)))
  }
  const maps: Array<Map<number, PerEpoch>> = []
  for (const name of ['round1', 'dealt', 'round2']) {
    const m = new Map<number, PerEpoch>()
    const count = r.u8(`${name}.count`)
    for (let c = 0; c < count; c++) {
      const i = r.u8(`${name}.index`)
      if (i < 1 || i > MAX_NODES || m.has(i)) throw new KeymeshError(ErrorCode.BAD_INPUT, `refreshProgress.${name}.index: bad or duplicate index`)
      const pe: PerEpoch = { wrap: [], sign: [] }
      for (let x = 0; x < E; x++) {
        pe.wrap.push(new Uint8Array(r.var16(`${name}.wrap`, MAX_REFRESH_DEALING_BYTES)))
        pe.sign.push(new Uint8Array(r.var16(`${name}.sign`, MAX_REFRESH_DEALING_BYTES)))
      }
      m.set(i, pe)
    }
    maps.push(m)
  }
  const detail = fromUtf8('refreshProgress.detail', r.var16('detail', 1024))
  r.end()
  return { session, phase: phase as RefreshPhase, bind, epochs, base, round1: maps[0] as Map<number, PerEpoch>, dealt: maps[1] as Map<number, PerEpoch>, round2: maps[2] as Map<number, PerEpoch>, detail }
}

/**
 * The public result record the commit leaves under `dkg/<session>/result`: u16 E ‖ E × (u32 epoch ‖
 * new keySetId (32)). Throws BadInputError on a malformed id.
 */
export function encodeRefreshResult (epochs: number[], ids: string[]): Uint8Array {
  const w = new Writer().u16(epochs.length)
  for (let x = 0; x < epochs.length; x++) w.u32(epochs[x] as number).raw(fromHex('keySetId', ids[x], 32))
  return w.bytes()
}

/**
 * Decodes a result record (encodeRefreshResult): epochs ascending, one 32-byte id each. Throws
 * BadInputError on a malformed record.
 */
export function decodeRefreshResult (b: Uint8Array): { epochs: number[], keySetIds: string[] } {
  const r = new Reader(b, 'result')
  const count = r.u16('result.count')
  const epochs: number[] = []
  const keySetIds: string[] = []
  for (let x = 0; x < count; x++) {
    const e = r.u32('result.epoch')
    if (e < 1 || (x > 0 && e <= (epochs[x - 1] as number))) throw new BadInputError('result', 'expected ascending epochs ≥ 1')
    epochs.push(e)
    keySetIds.push(toHex(r.raw('result.keySetId', 32)))
  }
  r.end()
  return { epochs, keySetIds }
}

/**
 * The result digest every node must agree on before committing (docs/PROTOCOL.md §11.6):
 * SHA-256( u32 len(T) ‖ T ‖ encodeRefreshResult(epochs, new keySetIds) ), T = REFRESH_RESULT_TAG.
 * Returns 64 lowercase hex. Throws BadInputError on a malformed result record.
 */
export function refreshResultDigest (result: Uint8Array): string {
  const t = utf8(REFRESH_RESULT_TAG)
  return toHex(sha256(concat(u32(t.length), t, result)))
}

/**
 * Context of the echo digests: clusterId (16) ‖ u32 len ‖ utf8(session) ‖ orderDigest (32) ‖
 * u16 E ‖ E × (u32 epoch ‖ base keySetId (32)). Nodes given different orders for the session, or
 * refreshing different generations, fail the echo check. Throws BadInputError on bad ids.
 */
export function refreshEchoContext (clusterId: string, session: string, bind: Uint8Array, epochs: number[], base: string[]): Uint8Array {
  const s = utf8(session)
  const parts: Uint8Array[] = [fromHex('clusterId', clusterId, CLUSTER_ID_LEN), u32(s.length), s, bind, u16(epochs.length)]
  for (let x = 0; x < epochs.length; x++) parts.push(u32(epochs[x] as number), fromHex('base', base[x], 32))
  return concat(...parts)
}

/** Canonical bytes of one node's round-1 answer (what its echo digest covers): u16 E ‖ E × (u32 epoch ‖ var16 wrap ‖ var16 sign). */
export function encodeRefreshAnswer (epochs: number[], a: PerEpoch): Uint8Array {
  const w = new Writer().u16(epochs.length)
  for (let x = 0; x < epochs.length; x++) w.u32(epochs[x] as number).var16(a.wrap[x] as Uint8Array).var16(a.sign[x] as Uint8Array)
  return w.bytes()
}

/** The current generation of one epoch as the ceremony needs it. */
export interface Generation { keySet: KeySet; keySetId: string; wrap: KeyShare; sign: KeyShare }

/** What the ceremony needs from the node; `refreshEnvFromContext` builds it from a NodeContext. */
export interface RefreshEnv {
  clusterId: string
  selfIndex: number
  threshold: number
  n: number
  call: <O extends RpcOp>(index: number, op: O, body: RequestBodies[O], ttlMs: number, signal: AbortSignal) => Promise<ResponseBodies[O]>
  /** The live epochs (ascending) to refresh: committed epochs ≥ max(1, minDecryptionEpoch). */
  liveEpochs: () => Promise<number[]>
  /** The current generation of `epoch` with both shares, or undefined. */
  generation: (epoch: number) => Promise<Generation | undefined>
  loadProgress: (session: string) => Promise<Uint8Array | undefined>
  saveProgress: (session: string, record: Uint8Array) => Promise<void>
  /** One atomic batch: new generations of every epoch (ascending), progress deleted, result marker written. */
  commit: (session: string, entries: Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }>) => Promise<void>
  log: (msg: string, fields: Record<string, unknown>) => void
  setStatus: (s: DkgStatus) => void
  signal: AbortSignal
  /** Overrides REFRESH_DEADLINE_MS (tests). */
  deadlineMs?: number
}

function unavailable (what: string): KeymeshError { return new KeymeshError(ErrorCode.UNAVAILABLE, `refresh: ${what} not available yet; retry`) }

function wipe (m: Map<number, PerEpoch> | undefined): void {
  if (m === undefined) return
  for (const v of m.values()) for (const b of [...v.wrap, ...v.sign]) b.fill(0)
  m.clear()
}

/**
 * One refresh session of this node: the driver that polls peers and the serving side used by the
 * refresh.* handlers (node/handlers/refresh.ts).
 */
export class RefreshCeremony {
  readonly session: string
  /** The current epoch the order names (a refresh creates no epoch). */
  readonly epoch: number
  private status: DkgStatus = { state: 'idle' }
  private progress?: RefreshProgress
  /** Current generation of each refreshed epoch (same order as progress.epochs). */
  private gens: Generation[] = []
  /** Decoded commitments by dealer, per epoch index, per kind. */
  private commitments = new Map<number, Record<Kind, Point[][]>>()
  private digests?: Uint8Array[]
  private echoOk = false
  private resultDigest?: string
  private committed = false
  private halted = false
  private saving: Promise<void> = Promise.resolve()
  /** Aborted at the deadline (only before this node served its result). */
  private readonly deadline = new AbortController()
  /** What the polls wait on: shutdown, or the deadline until the result is served. */
  private sig: AbortSignal

  /** `bind`: SHA-256 of the order's signing bytes (node/lifecycle/manager.ts orderDigest). */
  constructor (private readonly env: RefreshEnv, epoch: number, nonce: string, private readonly bind: Uint8Array) {
    this.epoch = epoch
    this.session = refreshSessionId(epoch, nonce)
    this.sig = AbortSignal.any([env.signal, this.deadline.signal])
  }

  /** Current status. Never throws. */
  get state (): DkgStatus { return this.status }

  /** True when a LOCAL error stopped the ceremony (nothing persisted as failed; a restart resumes it). */
  get stoppedLocally (): boolean { return this.halted }

  private setStatus (s: DkgStatus): void { this.status = s; this.env.setStatus(s) }

  private progressStatus (detail: string): void {
    if (this.status.state === 'running') this.setStatus({ state: 'running', detail: `refresh ${this.session}: ${detail}` })
  }

  // -------------------------------------------------------------------------------------------
  // Serving side. Each throws KeymeshError: NOT_FOUND for another session or data no longer kept,
  // CONFLICT when this session failed, UNAVAILABLE before the data exists (or after a local error).

  private check (session: string): void {
    if (session !== this.session) throw new KeymeshError(ErrorCode.NOT_FOUND, `refresh: unknown session ${session}`)
    if (this.halted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'refresh: this node halted on a local error; it resumes after a restart')
    if (this.status.state === 'failed') throw new KeymeshError(ErrorCode.CONFLICT, `refresh: session ${session} failed`)
  }

  private gone (what: string): KeymeshError { return new KeymeshError(ErrorCode.NOT_FOUND, `refresh: session ${this.session} is complete; ${what} is no longer served`) }

  /** This node's round-1 answer. */
  serveRound1 (session: string): ResponseBodies['refresh.round1'] {
    this.check(session)
    if (this.committed) throw this.gone('round 1')
    const p = this.progress
    const own = p?.round1.get(this.env.selfIndex)
    if (p === undefined || own === undefined) throw unavailable('round 1')
    return { epochs: [...p.epochs], wrap: own.wrap, sign: own.sign }
  }

  /** The digests of every node's round-1 answer, once all are here. */
  serveEcho (session: string): ResponseBodies['refresh.echo'] {
    this.check(session)
    if (this.committed) throw this.gone('echo')
    if (this.digests === undefined) throw unavailable('echo')
    return { digests: this.digests }
  }

  /** The sub-shares this node deals to the CALLER (authenticated node index), after the echo check passed. */
  serveRound2 (session: string, callerIndex: number): ResponseBodies['refresh.round2'] {
    this.check(session)
    if (callerIndex === this.env.selfIndex || callerIndex < 1 || callerIndex > this.env.n) {
      throw new KeymeshError(ErrorCode.NOT_AUTHORIZED, 'refresh: round 2 is served only to other cluster nodes')
    }
    if (this.committed) throw this.gone('round 2')
    const mine = this.echoOk ? this.progress?.dealt.get(callerIndex) : undefined
    if (mine === undefined) throw unavailable('round 2')
    // Copies: the transport owns what it is given; our buffers are wiped at commit.
    return { wrap: mine.wrap.map(b => new Uint8Array(b)), sign: mine.sign.map(b => new Uint8Array(b)) }
  }

  /** The result digest once this node finished (before and after its commit). */
  serveResult (session: string): ResponseBodies['refresh.result'] {
    this.check(session)
    if (this.resultDigest === undefined) throw unavailable('result')
    return { digest: this.resultDigest }
  }

  // -------------------------------------------------------------------------------------------
  // Driver

  /**
   * Runs the ceremony to the end: commit (status `done`), failure (status `failed`, nothing
   * committed, blame in the detail) or shutdown (stops quietly; progress stays persisted). Never
   * rejects.
   */
  async run (): Promise<void> {
    const { env } = this
    try {
      this.setStatus({ state: 'running', detail: `refresh ${this.session}: starting` })
      await this.loadOrCreate()
      if (this.status.state === 'failed') return
      const ms = env.deadlineMs ?? REFRESH_DEADLINE_MS
      const timer = this.progress?.phase === RefreshPhase.FINISHED ? undefined : setTimeout(() => { this.deadline.abort() }, ms)
      timer?.unref()
      try {
        await this.collectRound1()
        await this.echo()
        await this.collectRound2()
        await this.finish()
      } catch (err) {
        if (this.deadline.signal.aborted && !env.signal.aborted) throw new CeremonyFailure(`no agreement within ${Math.round(ms / 1000)} s (a node down or unreachable?); nothing was committed; issue a new order once every node is up`, [])
        throw err
      } finally { clearTimeout(timer) }
      // The result is served from here on: never give up now (the others may commit).
      this.sig = env.signal
      await this.agreeAndCommit()
    } catch (err) {
      if (env.signal.aborted && !(err instanceof CeremonyFailure)) {
        env.log('refresh stopped', { session: this.session, step: 'stopped' })
        return
      }
      if (err instanceof CeremonyFailure) { await this.fail(err, true); return }
      if (err instanceof VerificationError) {
        await this.fail(new CeremonyFailure(`verification failed, blame node(s) ${err.blame.join(',') || 'unknown'}: ${err.message}`, err.blame), true)
        return
      }
      await this.fail(new CeremonyFailure(`local error (restart the node to resume): ${errorCode(err)} ${err instanceof Error ? err.message : String(err)}`, []), false)
    }
  }

  private async save (): Promise<void> {
    const p = this.progress
    if (p === undefined) return
    const rec = encodeRefreshProgress(p)
    this.saving = this.saving.then(async () => { try { await this.env.saveProgress(this.session, rec) } finally { rec.fill(0) } })
    await this.saving
  }

  private others (): number[] {
    const out: number[] = []
    for (let i = 1; i <= this.env.n; i++) if (i !== this.env.selfIndex) out.push(i)
    return out
  }

  private async loadGenerations (epochs: number[]): Promise<Generation[]> {
    const out: Generation[] = []
    for (const e of epochs) {
      const g = await this.env.generation(e)
      if (g === undefined) throw new Error(`refresh: epoch ${e} has no key set or shares on this node`)
      out.push(g)
    }
    return out
  }

  private async loadOrCreate (): Promise<void> {
    const { env } = this
    const raw = await env.loadProgress(this.session)
    if (raw !== undefined) {
      let p: RefreshProgress
      try { p = decodeRefreshProgress(raw) } finally { raw.fill(0) }
      if (p.session !== this.session) throw new Error('refresh: stored progress belongs to another session')
      this.progress = p
      if (p.phase === RefreshPhase.FAILED) {
        this.setStatus({ state: 'failed', detail: p.detail })
        env.log('refresh failed earlier', { session: this.session, step: 'failed', detail: p.detail })
        return
      }
      if (!equalBytes(p.bind, this.bind)) throw new Error('refresh: stored progress was made for another order')
      this.gens = await this.loadGenerations(p.epochs)
      for (let x = 0; x < p.epochs.length; x++) {
        if (this.gens[x]?.keySetId !== p.base[x]) throw new Error(`refresh: the key set of epoch ${String(p.epochs[x])} changed under a running refresh`)
      }
      for (const [i, a] of p.round1) this.acceptDealings(i, p.epochs, a)
      env.log('refresh resumed', { session: this.session, step: 'resumed', phase: p.phase, round1: p.round1.size, round2: p.round2.size })
    } else {
      const epochs = await env.liveEpochs()
      if (epochs.length === 0 || epochs.length > MAX_REFRESH_EPOCHS) throw new Error(`refresh: ${epochs.length} live epochs (expected 1..${MAX_REFRESH_EPOCHS})`)
      this.gens = await this.loadGenerations(epochs)
      const own: PerEpoch = { wrap: [], sign: [] }
      const dealt = new Map<number, PerEpoch>()
      for (let j = 1; j <= env.n; j++) dealt.set(j, { wrap: [], sign: [] })
      for (const g of this.gens) {
        for (const kind of KINDS) {
          // Secret: the sub-shares; refreshDeal checks our own share against its verifying share first.
          const d = refreshDeal(g[kind], g.keySet[kind])
          own[kind].push(encodeRefreshDealing(d.dealing))
          for (let j = 1; j <= env.n; j++) (dealt.get(j) as PerEpoch)[kind].push(d.subShares.get(j) as Uint8Array)
        }
      }
      const progress: RefreshProgress = {
        session: this.session,
        phase: RefreshPhase.ROUND1,
        bind: this.bind,
        epochs,
        base: this.gens.map(g => g.keySetId),
        round1: new Map([[env.selfIndex, own]]),
        dealt,
        round2: new Map(),
        detail: ''
      }
      // Persist BEFORE anything can be served (serveRound1 reads this.progress, set only after).
      await env.saveProgress(this.session, encodeRefreshProgress(progress))
      this.progress = progress
      this.acceptDealings(env.selfIndex, epochs, own)
    }
    this.progressStatus(`round 1: ${this.progress.round1.size}/${env.n}`)
    env.log('refresh round1 ready', { session: this.session, step: 'round1.ready', epochs: this.progress.epochs })
  }

  /**
   * Decodes and publicly verifies node `from`'s dealings against our current generation (zero
   * constant term, k points, dealer index, n). Throws CeremonyFailure / VerificationError blaming `from`.
   */
  private acceptDealings (from: number, epochs: number[], a: PerEpoch): void {
    const p = this.progress as RefreshProgress
    if (epochs.length !== p.epochs.length || epochs.some((e, x) => e !== p.epochs[x])) {
      throw new CeremonyFailure(`node ${from} refreshes epochs [${epochs.join(',')}], this node [${p.epochs.join(',')}] (different live epochs: a retirement or rotation not finished everywhere?)`, [from])
    }
    const out: Record<Kind, Point[][]> = { wrap: [], sign: [] }
    for (const kind of KINDS) {
      if (a[kind].length !== epochs.length) throw new CeremonyFailure(`node ${from} sent ${a[kind].length} ${kind} dealings for ${epochs.length} epochs`, [from])
      for (let x = 0; x < epochs.length; x++) {
        let d
        try { d = decodeRefreshDealing(a[kind][x] as Uint8Array) } catch (err) {
          throw new CeremonyFailure(`node ${from} sent a malformed ${kind} dealing for epoch ${String(epochs[x])} (${errorCode(err)})`, [from])
        }
        if (d.dealer !== from || d.n !== this.env.n) throw new CeremonyFailure(`node ${from} sent a ${kind} dealing labelled dealer ${d.dealer} of ${d.n}`, [from])
        verifyRefreshDealing((this.gens[x] as Generation).keySet[kind], from, d.commitment)
        out[kind].push(d.commitment)
      }
    }
    this.commitments.set(from, out)
  }

  /**
   * Polls node `i` with `op` until `accept` returns true. Transport errors, UNAVAILABLE, TIMEOUT,
   * BUSY, NOT_FOUND and malformed frames are retried with backoff; CONFLICT (the peer's session
   * failed, or it runs another lifecycle order) fails the ceremony naming the peer.
   */
  private async poll<O extends RpcOp> (i: number, op: O, accept: (res: ResponseBodies[O]) => Promise<boolean> | boolean): Promise<void> {
    const { env } = this
    let backoff = REFRESH_BACKOFF_MIN_MS
    for (;;) {
      if (this.sig.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'refresh: node is shutting down or the deadline passed')
      let res: ResponseBodies[O] | undefined
      try {
        res = await env.call(i, op, { session: this.session } as RequestBodies[O], REFRESH_CALL_TTL_MS, this.sig)
      } catch (err) {
        const code = errorCode(err)
        if (code === ErrorCode.CONFLICT) throw new CeremonyFailure(`node ${i} reports that refresh ${this.session} failed there or that it runs another lifecycle order`, [i])
        if (code === ErrorCode.BAD_INPUT) env.log('refresh peer answer malformed', { session: this.session, peer: i, op, code })
      }
      if (res !== undefined && await accept(res)) return
      await sleep(backoff + Math.floor(Math.random() * REFRESH_BACKOFF_MIN_MS), this.sig)
      backoff = Math.min(REFRESH_BACKOFF_MAX_MS, backoff * 2)
    }
  }

  private async collectRound1 (): Promise<void> {
    const p = this.progress as RefreshProgress
    const { env } = this
    if (p.phase === RefreshPhase.ROUND1) {
      await Promise.all(this.others().filter(i => !p.round1.has(i)).map(i => this.poll(i, 'refresh.round1', async (res) => {
        const a: PerEpoch = { wrap: res.wrap.map(b => new Uint8Array(b)), sign: res.sign.map(b => new Uint8Array(b)) }
        this.acceptDealings(i, res.epochs, a)
        p.round1.set(i, a)
        await this.save()
        env.log('refresh round1 received', { session: this.session, step: 'round1', from: i, have: p.round1.size, of: env.n })
        this.progressStatus(`round 1: ${p.round1.size}/${env.n}`)
        return true
      })))
    }
    const ctxBytes = refreshEchoContext(env.clusterId, this.session, this.bind, p.epochs, p.base)
    const answers: Uint8Array[] = []
    for (let i = 1; i <= env.n; i++) answers.push(encodeRefreshAnswer(p.epochs, p.round1.get(i) as PerEpoch))
    this.digests = dealingDigests(answers, ctxBytes)
  }

  private async echo (): Promise<void> {
    const p = this.progress as RefreshProgress
    const { env } = this
    if (p.phase === RefreshPhase.ROUND1) {
      const reports = new Map<number, Uint8Array[]>()
      await Promise.all(this.others().map(i => this.poll(i, 'refresh.echo', (res) => { reports.set(i, res.digests); return true })))
      const bad = compareTranscripts(this.digests as Uint8Array[], reports)
      if (bad.length > 0) {
        throw new CeremonyFailure(`echo check failed: round-1 dealings of node(s) ${bad.join(',')} were seen differently by different nodes (equivocation, or the nodes were given different orders or hold different key set generations)`, bad)
      }
      p.phase = RefreshPhase.ROUND2
      await this.save()
      env.log('refresh echo ok', { session: this.session, step: 'echo', of: env.n })
    }
    this.echoOk = true
    this.progressStatus(`round 2: ${p.round2.size + 1}/${env.n}`)
  }

  private async collectRound2 (): Promise<void> {
    const p = this.progress as RefreshProgress
    const { env } = this
    if (p.phase !== RefreshPhase.ROUND2) return
    const E = p.epochs.length
    await Promise.all(this.others().filter(i => !p.round2.has(i)).map(i => this.poll(i, 'refresh.round2', async (res) => {
      if (res.wrap.length !== E || res.sign.length !== E) throw new CeremonyFailure(`node ${i} sent ${res.wrap.length}/${res.sign.length} sub-shares for ${E} epochs`, [i])
      p.round2.set(i, { wrap: res.wrap.map(b => new Uint8Array(b)), sign: res.sign.map(b => new Uint8Array(b)) })
      await this.save()
      env.log('refresh round2 received', { session: this.session, step: 'round2', from: i, have: p.round2.size + 1, of: env.n })
      this.progressStatus(`round 2: ${p.round2.size + 1}/${env.n}`)
      return true
    })))
  }

  /**
   * refreshFinish for every (epoch, kind) with Q = all n dealers. Returns the new key sets and
   * shares (SECRET: the caller commits and drops them). Throws VerificationError naming bad dealers.
   */
  private compute (): { entries: Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, ids: string[] } {
    const p = this.progress as RefreshProgress
    const { env } = this
    const Q = Array.from({ length: env.n }, (_, j) => j + 1)
    const entries: Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }> = []
    const ids: string[] = []
    for (let x = 0; x < p.epochs.length; x++) {
      const g = this.gens[x] as Generation
      const out = {} as Record<Kind, { share: KeyShare, publicKey: GroupPublicKey }>
      for (const kind of KINDS) {
        const commitments = new Map<number, Point[]>()
        const subShares = new Map<number, Uint8Array>()
        for (const i of Q) {
          commitments.set(i, (this.commitments.get(i) as Record<Kind, Point[][]>)[kind][x] as Point[])
          const from = i === env.selfIndex ? p.dealt.get(env.selfIndex) : p.round2.get(i)
          if (from !== undefined) subShares.set(i, from[kind][x] as Uint8Array)
        }
        out[kind] = refreshFinish(g[kind], g.keySet[kind], Q, commitments, subShares)
      }
      const keySet = lifecycleKeySet(g.keySet, g.keySet.epoch, out.wrap.publicKey, out.sign.publicKey)
      entries.push({ keySet, wrapShare: out.wrap.share, signShare: out.sign.share })
      ids.push(computeKeySetId(keySet))
    }
    return { entries, ids }
  }

  private async finish (): Promise<void> {
    const p = this.progress as RefreshProgress
    const { ids } = this.compute()
    if (p.phase !== RefreshPhase.FINISHED) {
      p.phase = RefreshPhase.FINISHED
      await this.save()
    }
    this.resultDigest = refreshResultDigest(encodeRefreshResult(p.epochs, ids))
    this.env.log('refresh finished', { session: this.session, step: 'result.ready', digest: this.resultDigest })
    this.progressStatus('waiting for every node to confirm the new key sets')
  }

  private async agreeAndCommit (): Promise<void> {
    const { env } = this
    const p = this.progress as RefreshProgress
    const mine = this.resultDigest as string
    await Promise.all(this.others().map(i => this.poll(i, 'refresh.result', (res) => {
      if (res.digest !== mine) throw new CeremonyFailure(`node ${i} derived different key sets (result ${res.digest.slice(0, 16)}… vs ${mine.slice(0, 16)}…)`, [i])
      return true
    })))
    const { entries, ids } = this.compute()
    await env.commit(this.session, entries)
    this.committed = true
    this.eraseSecrets()
    this.setStatus({ state: 'done', detail: `refresh ${this.session}: committed epochs ${p.epochs.join(',')}` })
    env.log('refresh committed', { session: this.session, step: 'done', epochs: p.epochs, keySetIds: ids })
  }

  private eraseSecrets (): void {
    if (this.progress !== undefined) { wipe(this.progress.dealt); wipe(this.progress.round2) }
    this.gens = []
  }

  private async fail (f: CeremonyFailure, persist: boolean): Promise<void> {
    const { env } = this
    const detail = `refresh ${this.session}: ${f.detail}`.slice(0, 240)
    if (!persist) {
      this.halted = true
      this.setStatus({ state: 'failed', detail })
      env.log('refresh stopped by a local error', { session: this.session, step: 'error', detail })
      this.eraseSecrets()
      return
    }
    this.eraseSecrets()
    this.setStatus({ state: 'failed', detail })
    env.log('refresh failed', { session: this.session, step: 'failed', blame: f.blame, detail })
    // Persisted without secrets, so a restart does not deal again under the same session id.
    const p = this.progress
    if (p === undefined) return
    this.progress = { ...p, phase: RefreshPhase.FAILED, dealt: new Map(), round2: new Map(), detail }
    try { await this.save() } catch (err) { env.log('refresh could not persist failure', { session: this.session, code: errorCode(err) }) }
  }
}

/** Refresh ceremonies by node context (the running or last one). */
const ceremonies = new WeakMap<NodeContext, RefreshCeremony>()

/** This node's running or last refresh ceremony, if any. Never throws. */
export function refreshOf (ctx: NodeContext): RefreshCeremony | undefined { return ceremonies.get(ctx) }

/** Makes `c` this node's refresh ceremony (served by the refresh.* handlers) and runs it. Never rejects. */
export async function runRefresh (ctx: NodeContext, c: RefreshCeremony): Promise<void> {
  ceremonies.set(ctx, c)
  await c.run()
}

/** Builds the environment from a node context; `minEpoch` = the lifecycle retirement line. Never throws. */
export function refreshEnvFromContext (ctx: NodeContext, minEpoch: () => Promise<number>): RefreshEnv {
  const log = ctx.log.child({ component: 'refresh' })
  return {
    clusterId: ctx.cluster.clusterId,
    selfIndex: ctx.selfIndex,
    threshold: ctx.cluster.threshold,
    n: ctx.cluster.nodes.length,
    call: async (index, op, body, ttlMs, signal) => await ctx.peers.call(index, op, body, { signal: AbortSignal.any([signal, AbortSignal.timeout(ttlMs)]), ttlMs }),
    liveEpochs: async () => await liveEpochs(ctx, await minEpoch()),
    generation: async (epoch) => {
      const w = await ctx.store.getCurrent(epoch, 'wrap')
      const s = await ctx.store.getCurrent(epoch, 'sign')
      if (w === undefined || s === undefined || w.keySetId !== s.keySetId) return undefined
      return { keySet: w.keySet, keySetId: w.keySetId, wrap: w.share, sign: s.share }
    },
    loadProgress: async (session) => await ctx.store.getDkg(session, REFRESH_PROGRESS_NAME),
    saveProgress: async (session, record) => { await ctx.store.putDkg(session, REFRESH_PROGRESS_NAME, record) },
    // replaceGenerations writes the public result marker (= encodeRefreshResult) in the same batch.
    commit: async (session, entries) => { await ctx.store.replaceGenerations(entries, session) },
    log: (msg, fields) => { log.info(msg, fields) },
    setStatus: (s) => { ctx.dkgStatus = s },
    signal: ctx.shutdownSignal
  }
}

/** Committed epochs ≥ max(1, minEpoch) up to the current epoch, ascending. Throws on a store failure. */
export async function liveEpochs (ctx: NodeContext, minEpoch: number): Promise<number[]> {
  const cur = await ctx.store.currentEpoch()
  if (cur === undefined) return []
  const out: number[] = []
  for (let e = Math.max(1, minEpoch); e <= cur && out.length < MAX_REFRESH_EPOCHS; e++) if ((await ctx.store.getKeySetId(e)) !== undefined) out.push(e)
  return out
}

/**
 * The result digest a node that committed session `session` serves after a restart, from the
 * public result marker. Undefined when there is none. Throws on a store failure or a corrupt marker.
 */
export async function committedRefreshDigest (ctx: NodeContext, session: string): Promise<string | undefined> {
  const m = await ctx.store.getDkg(session, REFRESH_RESULT_NAME)
  if (m === undefined) return undefined
  if (m.length < 2 || m.length !== 2 + 36 * (((m[0] as number) << 8) | (m[1] as number))) throw new KeymeshError(ErrorCode.INTERNAL, `refresh result marker of ${session} is corrupt`)
  return refreshResultDigest(m)
}

/** Whether the session left a failed progress record here. Throws on a store failure. */
export async function refreshFailedHere (ctx: NodeContext, session: string): Promise<boolean> {
  const raw = await ctx.store.getDkg(session, REFRESH_PROGRESS_NAME)
  if (raw === undefined) return false
  try { return decodeRefreshProgress(raw).phase === RefreshPhase.FAILED } catch { return false } finally { raw.fill(0) }
}

