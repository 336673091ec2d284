/**
 * Key-set generations on the client side (proactive share refresh, docs/CLIENT.md "Generations").
 *
 * A refresh re-randomises every node's shares of an epoch without changing its group keys: the key
 * set of that epoch gets new commitments[1..] and new verifying shares, hence a new keySetId. Each
 * (epoch, keySetId) is a generation. Nodes answer `partial`, `partial.batch` and `frost.commit`
 * with the keySetId of the generation whose share computed the answer, and a partial must be
 * opened and verified against THAT generation's key set; partials (or FROST commitments) of two
 * generations never combine (their shares lie on different polynomials), so the client groups
 * answers by keySetId and combines within one group only.
 *
 * Trust: the client's anchor is the k-agreed key set of the epoch (fetchKeySet; cached). Another
 * generation is fetched from a node (`keyset.get {epoch, keySetId}`) and accepted only when its id
 * is the one named and it has the anchor's clusterId, epoch, threshold, n and BOTH group keys
 * (`checkGeneration`). Its verifying shares come from one node, which is enough for opening and
 * blame only: the combined key is authenticated by the envelope's AEAD (and a FROST signature is
 * verified against the unchanged group key), and a group of k answers needs k nodes naming the
 * generation. A node naming an unknown or invalid generation is blamed. Only a generation with k
 * vouchers (k nodes' answers combined under it) may replace the anchor in a cache.
 *
 * `GenerationGroups` is the pure bookkeeping (which answers belong together, which generation is
 * newest, whom to re-ask); `GenerationHedger` drives the requests with hedging, re-asking the nodes
 * outside the newest group with a short backoff when the answers are split so that no group can
 * reach k (they are probably committing the refresh right now), all within the call's deadline.
 */
import { ErrorCode, KeymeshError, VerificationError } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { decodeKeySet, keySetId } from '../protocol/keyset.ts'
import type { GroupPublicKey, KeySet } from '../protocol/keyset.ts'
import type { ClientTransport } from './transport.ts'
import { failureOf, quorumError } from './quorum.ts'

/** A keySetId: 64 lowercase hex characters (SHA-256, protocol/keyset.ts). */
export const KEYSET_ID_RE = /^[0-9a-f]{64}$/

const idMemo = new WeakMap<KeySet, string>()

/** keySetId(ks), memoised per KeySet object (key sets are immutable once decoded). Throws BadInputError for a malformed key set. */
export function idOf (ks: KeySet): string {
  let id = idMemo.get(ks)
  if (id === undefined) { id = keySetId(ks); idMemo.set(ks, id) }
  return id
}

/**
 * The keySetId a node's answer names, checked for shape. Throws VerificationError blaming `index`
 * when it is not 64 lowercase hex. An absent id (a node from before generations) means the anchor.
 */
export function namedGeneration (index: number, id: unknown, trusted: KeySet): string {
  if (id === undefined) return idOf(trusted)
  if (typeof id !== 'string' || !KEYSET_ID_RE.test(id)) throw new VerificationError(`node ${index} named a malformed key set generation`, [index])
  return id
}

function sameGroupKey (a: GroupPublicKey, b: GroupPublicKey): boolean {
  const x = a.commitments[0]
  const y = b.commitments[0]
  // Only the group key (commitments[0]): a reshare changes the number of commitments (k').
  return x !== undefined && y !== undefined && x.equals(y)
}

/**
 * Checks that `candidate` is a generation of the anchor `trusted` and is the one named `id`: its
 * keySetId equals `id`, and clusterId, epoch, threshold, n, wrap key and sign key equal the
 * anchor's. (decodeKeySet already checked every point and the verifying shares against the
 * commitments.) Throws VerificationError (no blame: the caller knows who served it), or
 * KeymeshError(CONFLICT) when only (k, n) differ from what this client knows — a reshare it has not
 * learned yet, not a lie.
 */
export function checkGeneration (trusted: KeySet, candidate: KeySet, id: string, view?: { threshold: number, nodes: readonly unknown[] }): void {
  if (idOf(candidate) !== id) throw new VerificationError(`key set generation ${id.slice(0, 16)}… has another id (${idOf(candidate).slice(0, 16)}…)`)
  const diff: string[] = []
  if (candidate.clusterId !== trusted.clusterId) diff.push('clusterId')
  if (candidate.epoch !== trusted.epoch) diff.push('epoch')
  // A reshare changes (k, n): accepted only when they are those of the adopted membership `view`
  // (verified reshare orders, client/membership.ts).
  const sameKn = candidate.threshold === trusted.threshold && candidate.n === trusted.n
  const viewKn = view !== undefined && candidate.threshold === view.threshold && candidate.n === view.nodes.length
  if (!sameKn && !viewKn) {
    if (candidate.threshold !== trusted.threshold) diff.push('threshold')
    if (candidate.n !== trusted.n) diff.push('n')
  }
  if (!sameGroupKey(candidate.wrap, trusted.wrap)) diff.push('wrap key')
  if (!sameGroupKey(candidate.sign, trusted.sign)) diff.push('sign key')
  if (diff.length > 0 && diff.every(d => d === 'threshold' || d === 'n')) {
    // Same cluster, epoch and group keys, another (k, n): what a reshare this client has not
    // learned yet looks like. Not evidence of a lying node (no blame): the operation fails over to
    // other nodes or fails as a whole, and KeymeshClient then learns the newer membership
    // (cluster.get, admin-signed orders) and retries once.
    throw new KeymeshError(ErrorCode.CONFLICT, `key set generation ${id.slice(0, 16)}… of epoch ${trusted.epoch} is ${candidate.threshold}-of-${candidate.n}, not the ${view?.threshold ?? trusted.threshold}-of-${view?.nodes.length ?? trusted.n} this client knows: the cluster's membership changed (reshare)`)
  }
  if (diff.length > 0) throw new VerificationError(`key set generation ${id.slice(0, 16)}… is not a refresh of the trusted key set of epoch ${trusted.epoch} (${diff.join(', ')} differ)`)
}

/** Validated generations per transport (keyed by keySetId); public data, never evicted within a process. */
const generationMemo = new WeakMap<object, Map<string, KeySet>>()

/** Remembers an already-checked generation for `t` (so later answers naming it need no fetch). */
export function rememberGeneration (t: object, ks: KeySet): void {
  let m = generationMemo.get(t)
  if (m === undefined) { m = new Map(); generationMemo.set(t, m) }
  m.set(idOf(ks), ks)
}

/** Options of `resolveGeneration`. */
export interface ResolveOptions {
  /** The node that named the generation: asked first, and blamed if it cannot back its claim. */
  from?: number
  /** Per-call deadline (ms, default 5000). */
  timeoutMs?: number
  signal?: AbortSignal
}

/**
 * The key set of generation `id` of the anchor's epoch: the anchor itself, a remembered one, or
 * fetched with `keyset.get {epoch, keySetId}` and checked with `checkGeneration`. With `from`, only
 * that node is asked and any failure (unknown generation, invalid key set, no answer) throws
 * VerificationError blaming it. Without `from`, every node is asked at once and the first valid
 * key set wins; throws VerificationError (blaming every node that served an invalid one) when none
 * does.
 */
export async function resolveGeneration (t: ClientTransport, trusted: KeySet, id: string, opts: ResolveOptions = {}): Promise<KeySet> {
  if (id === idOf(trusted)) return trusted
  const known = generationMemo.get(t)?.get(id)
  if (known !== undefined) {
    checkGeneration(trusted, known, id, t.cluster)
    return known
  }
  if (opts.from !== undefined) {
    try {
      const ks = await fetchWith(t, trusted, id, opts.from, opts)
      rememberGeneration(t, ks)
      return ks
    } catch (err) {
      if (opts.signal?.aborted === true) throw err
      // A generation of a membership this client has not learned yet (checkGeneration: CONFLICT)
      // is not the node's lie: pass it on without blame.
      if (err instanceof KeymeshError && err.code === ErrorCode.CONFLICT) throw err
      // Blame needs evidence: an invalid key set (VerificationError / BAD_INPUT) or a node that
      // does not know the generation it named (NOT_FOUND). An unreachable or slow node is just a
      // failed answer (UNAVAILABLE / TIMEOUT …): blaming it would turn an outage into a
      // "verification failed" verdict.
      const evidence = err instanceof VerificationError || (err instanceof KeymeshError && (err.code === ErrorCode.BAD_INPUT || err.code === ErrorCode.NOT_FOUND))
      if (!evidence) throw err
      throw new VerificationError(`node ${opts.from} named key set generation ${id.slice(0, 16)}… of epoch ${trusted.epoch} but cannot back it (${failureOf(opts.from, err).detail})`, [opts.from], { cause: err })
    }
  }
  // Any node will do: ask all at once, take the first valid answer (a forger is blamed).
  const invalid: number[] = []
  const details: string[] = []
  const ctl = new AbortController()
  const onAbort = (): void => { ctl.abort() }
  opts.signal?.addEventListener('abort', onAbort)
  const sub = { ...opts, signal: ctl.signal }
  try {
    const got = await new Promise<KeySet | undefined>((resolve) => {
      let left = t.indices.length
      if (left === 0) resolve(undefined)
      for (const index of t.indices) {
        fetchWith(t, trusted, id, index, sub).then(resolve, (err: unknown) => {
          if (err instanceof VerificationError || (err instanceof KeymeshError && err.code === ErrorCode.BAD_INPUT)) invalid.push(index)
          details.push(`node ${index}: ${failureOf(index, err).detail}`)
          if (--left === 0) resolve(undefined)
        })
      }
    })
    if (got !== undefined) {
      rememberGeneration(t, got)
      return got
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    ctl.abort()
  }
  invalid.sort((a, b) => a - b)
  if (invalid.length === 0 && details.some(d => d.includes('membership changed'))) {
    throw new KeymeshError(ErrorCode.CONFLICT, `key set generation ${id.slice(0, 16)}… of epoch ${trusted.epoch} belongs to a newer membership (reshare) than this client knows (${details.sort().join('; ')})`)
  }
  throw new VerificationError(`no node serves a valid key set generation ${id.slice(0, 16)}… of epoch ${trusted.epoch} (${details.sort().join('; ')})`, invalid)
}

/** keyset.get {epoch, keySetId} from one node, decoded and checked. Throws as decodeKeySet/checkGeneration or the transport. */
async function fetchWith (t: ClientTransport, trusted: KeySet, id: string, index: number, opts: ResolveOptions): Promise<KeySet> {
  const res = await t.call(index, 'keyset.get', { epoch: trusted.epoch, keySetId: id }, { timeoutMs: opts.timeoutMs ?? 5_000, signal: opts.signal })
  const ks = decodeKeySet(res.keySet)
  checkGeneration(trusted, ks, id, t.cluster)
  return ks
}

/** A group of answers naming one generation. */
export interface GenerationGroup<T> { keySetId: string, answers: Map<number, T> }

/**
 * Pure bookkeeping of answers by generation. Each node has at most one current answer (a re-asked
 * node's new answer replaces its old one). Generations are ranked by recency: the anchor is the
 * oldest; a generation first seen later ranks newer; when a node's answer moves from A to B, B
 * becomes the newest (nodes only ever move forward). Throws nothing.
 */
export class GenerationGroups<T> {
  private readonly answers = new Map<number, { id: string, value: T }>()
  private readonly rank = new Map<string, number>()
  private top = 0

  constructor (readonly trustedId: string) { this.rank.set(trustedId, 0) }

  /** Records node `index`'s answer; returns true when the node moved to another generation. */
  set (index: number, id: string, value: T): boolean {
    const prev = this.answers.get(index)
    if (!this.rank.has(id)) this.rank.set(id, ++this.top)
    const moved = prev !== undefined && prev.id !== id
    if (moved && (this.rank.get(id) as number) <= (this.rank.get(prev.id) as number)) this.rank.set(id, ++this.top)
    this.answers.set(index, { id, value })
    return moved
  }

  /** Forgets node `index`'s answer. */
  delete (index: number): void { this.answers.delete(index) }

  /** Nodes with an answer. */
  get size (): number { return this.answers.size }

  /** Node indices with an answer. */
  indices (): number[] { return [...this.answers.keys()] }

  /** The generation node `index` answered with, if any. */
  generationOf (index: number): string | undefined { return this.answers.get(index)?.id }

  /** Answers grouped by generation (insertion order inside a group). */
  groups (): Map<string, Map<number, T>> {
    const g = new Map<string, Map<number, T>>()
    for (const [i, a] of this.answers) {
      let m = g.get(a.id)
      if (m === undefined) { m = new Map(); g.set(a.id, m) }
      m.set(i, a.value)
    }
    return g
  }

  /** Size of the largest group (0 without answers). */
  maxGroupSize (): number {
    let best = 0
    for (const m of this.groups().values()) best = Math.max(best, m.size)
    return best
  }

  /** The newest generation among the current answers. */
  newest (): string | undefined {
    let best: string | undefined
    for (const a of this.answers.values()) {
      if (best === undefined || (this.rank.get(a.id) as number) > (this.rank.get(best) as number)) best = a.id
    }
    return best
  }

  /** The newest group with at least `k` answers (k per generation when a function), if any: the only set a combine may use. */
  ready (k: number | ((keySetId: string) => number)): GenerationGroup<T> | undefined {
    let best: GenerationGroup<T> | undefined
    for (const [id, m] of this.groups()) {
      if (m.size < (typeof k === 'number' ? k : k(id))) continue
      if (best === undefined || (this.rank.get(id) as number) > (this.rank.get(best.keySetId) as number)) best = { keySetId: id, answers: m }
    }
    return best
  }

  /** Nodes whose answer is not in the newest generation (the ones to re-ask on a split). */
  outsideNewest (): number[] {
    const n = this.newest()
    return [...this.answers].filter(([, a]) => a.id !== n).map(([i]) => i)
  }
}

/** How a GenerationHedger asks one node: resolves with the generation named and the (opened, checked) answer. */
export type GenAskFn<T> = (index: number, signal: AbortSignal) => Promise<{ keySetId: string, value: T }>

/** Backoff before re-asking split nodes: 25, 50, 100, 200, 400, 400 … ms. */
export function reaskDelay (round: number): number { return Math.min(400, 25 * 2 ** Math.min(round, 4)) }

/**
 * The generation-aware counterpart of quorum.ts's Hedger: `want()` resolves with the newest group
 * of ≥ k answers naming one generation. It keeps enough requests in flight for the largest group to
 * reach k, hedges one more node every `hedgeMs`, replaces a failed node at once, and when every
 * candidate has answered but the answers are split (≥ k answers, no group of k) re-asks the nodes
 * outside the newest group after a short backoff (all answered nodes when the previous re-ask
 * moved nobody, in case the ranking guessed wrong). Settles by the deadline: rejects with the
 * quorum error (failed, silent and split-off nodes listed) as soon as k is out of reach.
 */
export class GenerationHedger<T> {
  readonly failures: NodeFailure[] = []
  readonly groups: GenerationGroups<T>
  private readonly queue: number[]
  private readonly inflight = new Set<number>()
  private readonly dead = new Set<number>()
  private readonly ctl = new AbortController()
  private waiter: { resolve: (g: GenerationGroup<T>) => void, reject: (e: unknown) => void } | undefined
  private hedgeTimer: NodeJS.Timeout | undefined
  private reaskTimer: NodeJS.Timeout | undefined
  private readonly deadlineTimer: NodeJS.Timeout
  private expired = false
  private closed = false
  private reaskRound = 0
  private moved = true
  /** Re-ask rounds run so far (for tests and diagnostics). */
  reasks = 0

  /**
   * `k`: answers wanted (the largest threshold of any generation expected); `kOf`: the threshold
   * of one generation (a reshare may change it; default `k` for every generation).
   */
  constructor (candidates: readonly number[], private readonly k: number, private readonly n: number, deadlineMs: number,
    private readonly hedgeMs: number, trustedId: string, private readonly ask: GenAskFn<T>, private readonly kOf?: (keySetId: string) => number) {
    this.queue = [...candidates]
    this.groups = new GenerationGroups<T>(trustedId)
    this.deadlineTimer = setTimeout(() => { this.expired = true; this.ctl.abort(); this.fail() }, deadlineMs)
  }

  /** Aborts every in-flight call at the deadline or on close. */
  get signal (): AbortSignal { return this.ctl.signal }

  /** Resolves with the newest group of ≥ k answers of one generation; rejects with the quorum error. */
  async want (): Promise<GenerationGroup<T>> {
    const r = this.groups.ready(this.kOf ?? this.k)
    if (r !== undefined) return r
    if (this.expired) throw this.error()
    return await new Promise<GenerationGroup<T>>((resolve, reject) => {
      this.waiter = { resolve, reject }
      this.pump()
      this.armHedge()
      this.check()
    })
  }

  /** Removes node `index`'s answer for good (its contribution was proven wrong) and records why. */
  drop (index: number, code: ErrorCode, detail: string): void {
    this.groups.delete(index)
    this.dead.add(index)
    if (!this.failures.some(f => f.index === index)) this.failures.push({ index, code, detail })
  }

  /** Aborts everything in flight and stops the timers. Idempotent. */
  close (): void {
    this.closed = true
    clearTimeout(this.deadlineTimer)
    if (this.hedgeTimer !== undefined) clearTimeout(this.hedgeTimer)
    if (this.reaskTimer !== undefined) clearTimeout(this.reaskTimer)
    this.ctl.abort()
  }

  private start (index: number): void {
    this.inflight.add(index)
    this.ask(index, this.ctl.signal).then((v) => {
      this.inflight.delete(index)
      if (this.expired || this.closed || this.dead.has(index)) return
      if (this.groups.set(index, v.keySetId, v.value)) this.moved = true
      this.pump()
      this.check()
    }, (err: unknown) => {
      this.inflight.delete(index)
      if (this.expired || this.closed) return
      this.groups.delete(index)
      this.dead.add(index)
      this.failures.push(failureOf(index, err))
      this.pump()
      this.check()
    })
  }

  private launch (): boolean {
    const index = this.queue.shift()
    if (index === undefined) return false
    this.start(index)
    return true
  }

  /** Keeps enough requests in flight for the largest group to reach k. */
  private pump (): void {
    if (this.waiter === undefined) return
    while (this.inflight.size + this.groups.maxGroupSize() < this.k && this.launch()) { /* launched one */ }
  }

  private armHedge (): void {
    if (this.hedgeTimer !== undefined) clearTimeout(this.hedgeTimer)
    this.hedgeTimer = setTimeout(() => {
      this.hedgeTimer = undefined
      if (this.waiter === undefined) return
      if (this.launch()) this.armHedge()
    }, this.hedgeMs)
  }

  private check (): void {
    const w = this.waiter
    if (w === undefined) return
    const r = this.groups.ready(this.kOf ?? this.k)
    if (r !== undefined) {
      this.waiter = undefined
      if (this.hedgeTimer !== undefined) { clearTimeout(this.hedgeTimer); this.hedgeTimer = undefined }
      w.resolve(r)
      return
    }
    if (this.inflight.size > 0 || this.queue.length > 0 || this.reaskTimer !== undefined) return
    // Every candidate asked and settled. Enough live answers but split across generations: the
    // nodes are converging on a refresh; re-ask after a short backoff. Otherwise k is out of reach.
    if (this.groups.size >= this.k) this.scheduleReask()
    else this.fail()
  }

  private scheduleReask (): void {
    const targets = this.moved ? this.groups.outsideNewest() : this.groups.indices()
    this.moved = false
    this.reaskTimer = setTimeout(() => {
      this.reaskTimer = undefined
      if (this.waiter === undefined || this.expired || this.closed) return
      this.reasks++
      for (const i of targets) if (!this.dead.has(i) && !this.inflight.has(i)) this.start(i)
      this.check()
    }, reaskDelay(this.reaskRound++))
  }

  private fail (): void {
    const w = this.waiter
    if (w === undefined) return
    this.waiter = undefined
    w.reject(this.error())
  }

  private error (): KeymeshError {
    const failures = [...this.failures]
    for (const i of this.inflight) failures.push({ index: i, code: ErrorCode.TIMEOUT, detail: 'no answer before the operation deadline' })
    const newest = this.groups.newest()
    if (this.groups.groups().size > 1) {
      for (const i of this.groups.indices()) {
        const id = this.groups.generationOf(i) as string
        failures.push({ index: i, code: ErrorCode.CONFLICT, detail: `answered with key set generation ${id.slice(0, 16)}…${id === newest ? '' : ' (not the newest seen)'}; no generation reached ${this.k} answers before the deadline (a share refresh in progress?)` })
      }
    }
    return quorumError(this.k, this.groups.maxGroupSize(), failures, this.n)
  }
}
