/**
 * Shared pieces of the client's quorum operations (key-set fetch, rewrap, signing): turning one
 * node's failure into a `NodeFailure` record, and the failures of a whole operation into the error
 * the user sees.
 */
import { ErrorCode, KeymeshError, NotAuthorizedError, QuorumUnavailableError, VerificationError, errorCode } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import type { RpcOp } from '../protocol/rpc.ts'

/** Records why node `index` did not contribute. Never throws; never includes payload bytes. */
export function failureOf (index: number, err: unknown): NodeFailure {
  const code = errorCode(err)
  let detail = err instanceof Error ? err.message : String(err)
  // Transport messages already start with "node i:"; drop the duplicate.
  detail = detail.replace(new RegExp(`^node ${index}: `), '')
  if (detail.length > 200) detail = detail.slice(0, 200) + '…'
  return { index, code, detail }
}

/**
 * The error for a quorum operation that got `got` < `k` good answers. When more than n − k nodes
 * gave the same *verdict* on the request itself, no quorum was ever possible and the verdict is
 * the real answer: NOT_AUTHORIZED → NotAuthorizedError (exit 3: the policy does not allow this
 * client), VERIFICATION_FAILED → VerificationError (exit 4: e.g. an envelope whose validity proof
 * fails at every node), BAD_INPUT → KeymeshError(BAD_INPUT) (exit 2: the request is malformed or
 * not acceptable, e.g. not a manifest signing input). Otherwise QuorumUnavailableError (exit 5) listing every
 * node's failure.
 */
export function quorumError (k: number, got: number, failures: NodeFailure[], n?: number): KeymeshError {
  const sorted = [...failures].sort((a, b) => a.index - b.index)
  const total = n ?? sorted.length + got
  const verdict = (code: ErrorCode): NodeFailure[] | undefined => {
    const fs = sorted.filter(f => f.code === code)
    return fs.length > 0 && fs.length > total - k ? fs : undefined
  }
  const refused = verdict(ErrorCode.NOT_AUTHORIZED)
  if (refused !== undefined) {
    return new NotAuthorizedError(`not authorized: ${refused.length} of ${total} nodes refused this request (nodes ${refused.map(f => f.index).join(', ')}); check the policy enrolls this client's PeerId with a role and scope for this app/env`)
  }
  const invalid = verdict(ErrorCode.VERIFICATION_FAILED)
  if (invalid !== undefined) {
    return new VerificationError(`verification failed at ${invalid.length} of ${total} nodes (nodes ${invalid.map(f => f.index).join(', ')}): the request (e.g. an envelope's validity proof) or their answers do not verify; ${invalid[0]?.detail ?? ''}`, invalid.map(f => f.index))
  }
  const rejected = verdict(ErrorCode.BAD_INPUT)
  if (rejected !== undefined) {
    return new KeymeshError(ErrorCode.BAD_INPUT, `request rejected as bad input by ${rejected.length} of ${total} nodes (nodes ${rejected.map(f => f.index).join(', ')}); ${rejected[0]?.detail ?? ''}`)
  }
  const q = new QuorumUnavailableError(k, got, sorted)
  if (got === 0 && sorted.length === total && sorted.every(f => f.detail.includes('not enrolled'))) {
    // Every node hung up right after the Noise handshake: almost always a client whose PeerId is
    // not in the cluster file (the nodes' gaters refuse it). Say so.
    q.message += '. Every node closed the connection right after the handshake: check that this identity\'s PeerId (keymesh id show) is listed in the cluster file\'s clients'
  }
  return q
}

/** Fisher–Yates shuffle of a copy (spreads load over nodes; not security-relevant). */
export function shuffled<T> (xs: readonly T[]): T[] {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = a[i] as T; a[i] = a[j] as T; a[j] = t
  }
  return a
}

/** Candidate nodes: `order` first, then the rest shuffled; without `exclude`. */
export function candidatesFor (all: number[], exclude: number[] | undefined, order: number[] | undefined): number[] {
  const ex = new Set(exclude ?? [])
  const first = (order ?? []).filter((i, j, a) => all.includes(i) && !ex.has(i) && a.indexOf(i) === j)
  return [...first, ...shuffled(all.filter(i => !ex.has(i) && !first.includes(i)))]
}

/**
 * Hedge delay: `base` ms, or 1.5 × the p90 of recent `op` calls when that is larger (under load a
 * fixed short delay would make every call ask extra nodes and add work exactly when the cluster
 * is busiest). Capped at 2 s so a hung node is still replaced well within any deadline.
 */
export function hedgeDelay (t: { latencyQuantile: (op: RpcOp, q: number) => number | undefined }, op: RpcOp, base: number): number {
  const p90 = t.latencyQuantile(op, 0.9)
  return Math.min(2_000, Math.max(base, p90 === undefined ? 0 : 1.5 * p90))
}

/** How a Hedger asks one node; throwing records the node's failure (it is not asked again). */
export type AskFn<T> = (index: number, signal: AbortSignal) => Promise<T>

/**
 * Collects answers from distinct nodes with hedging, for the client's quorum operations.
 *
 * `want(count)` makes sure `count` good answers exist: it keeps `count` requests in flight,
 * replaces a failed node at once by the next candidate, and every `hedgeMs` without enough answers
 * asks one more node (a slow node then costs at most one hedge delay). Answers beyond `count` are
 * kept, so when a combine blames a node (`drop`) a spare is often already there. Whatever happens,
 * `want` settles by the operation's deadline: it rejects with `quorumError` (every failed, refused
 * or still-silent node listed) as soon as a quorum is impossible or the deadline passes.
 */
export class Hedger<T> {
  readonly results = new Map<number, T>()
  readonly failures: NodeFailure[] = []
  private readonly queue: number[]
  private readonly inflight = new Set<number>()
  private readonly ctl = new AbortController()
  private waiter: { count: number, resolve: () => void, reject: (e: unknown) => void } | undefined
  private hedgeTimer: NodeJS.Timeout | undefined
  private readonly deadlineTimer: NodeJS.Timeout
  private expired = false
  private closed = false

  /**
   * @param candidates node indices in preference order
   * @param k the threshold (for the error message)
   * @param n cluster size (to tell "refused" from "unavailable")
   * @param deadlineMs whole-operation deadline from now
   */
  constructor (candidates: readonly number[], private readonly k: number, private readonly n: number,
    deadlineMs: number, private readonly hedgeMs: number, private readonly ask: AskFn<T>) {
    this.queue = [...candidates]
    this.deadlineTimer = setTimeout(() => {
      this.expired = true
      this.ctl.abort()
      this.fail()
    }, deadlineMs)
  }

  /** The signal that aborts every in-flight call at the deadline or on `close`. */
  get signal (): AbortSignal { return this.ctl.signal }

  /** Resolves once `count` answers are in; rejects with the quorum error otherwise. */
  async want (count: number): Promise<Map<number, T>> {
    if (this.results.size >= count) return this.results
    if (this.expired) throw this.error()
    await new Promise<void>((resolve, reject) => {
      this.waiter = { count, resolve, reject }
      this.pump()
      this.armHedge()
    })
    return this.results
  }

  /** Removes node `index`'s answer (its contribution was proven wrong) and records why. */
  drop (index: number, code: ErrorCode, detail: string): void {
    this.results.delete(index)
    if (!this.failures.some(f => f.index === index)) this.failures.push({ index, code, detail })
  }

  /** Aborts everything still in flight and stops the timers. Idempotent. */
  close (): void {
    this.closed = true
    clearTimeout(this.deadlineTimer)
    if (this.hedgeTimer !== undefined) clearTimeout(this.hedgeTimer)
    this.ctl.abort()
  }

  private launch (): boolean {
    const index = this.queue.shift()
    if (index === undefined) return false
    this.inflight.add(index)
    this.ask(index, this.ctl.signal).then((v) => {
      this.inflight.delete(index)
      if (this.expired || this.closed) return
      this.results.set(index, v)
      this.check()
    }, (err: unknown) => {
      this.inflight.delete(index)
      if (this.expired || this.closed) return
      this.failures.push(failureOf(index, err))
      this.pump()
      this.check()
    })
    return true
  }

  /** Keeps enough requests in flight for the current want. */
  private pump (): void {
    const w = this.waiter
    if (w === undefined) return
    while (this.results.size + this.inflight.size < w.count && this.launch()) { /* launched one */ }
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
    if (this.results.size >= w.count) {
      this.waiter = undefined
      if (this.hedgeTimer !== undefined) { clearTimeout(this.hedgeTimer); this.hedgeTimer = undefined }
      w.resolve()
    } else if (this.results.size + this.inflight.size + this.queue.length < w.count && this.inflight.size === 0) {
      // A quorum is impossible. Calls still in flight are let finish first (bounded by the
      // deadline) so the error reports what those nodes actually did instead of guessing.
      this.fail()
    }
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
    return quorumError(this.k, this.results.size, failures, this.n)
  }
}
