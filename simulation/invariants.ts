/**
 * The invariant checker. Every finished operation, consistency poll, refused restart and the final
 * sweep is checked at once against the model of the cluster the runner keeps (which nodes are up
 * and reachable from the client, when anything last changed). Each violation carries the seed, the
 * time since the run's start and the replay command.
 *
 * Safety (checked for every operation, whatever the faults):
 *   safety.correct-data-key   every data key / plaintext / signature a client gets is the right one
 *   safety.liar-never-trusted a lying node's answer is never among those a result was built from
 *   safety.no-false-blame     only lying nodes are ever blamed (VERIFICATION_FAILED)
 *   safety.liar-detected      (end of run) every lying node was named at least once
 *   safety.acked-unwrappable  (end of run, after healing) every acknowledged wrap and build still
 *                             unwraps/deploys to the right key/plaintext with k nodes up
 * Liveness:
 *   liveness.no-hang          every operation settles by its deadline + slack
 *   liveness.quorum-ok        state stable for the recovery window and ≥ k honest nodes reachable
 *                             from the client → the operation succeeds (not required while a
 *                             node process boots on this host: see Reachability.starting). k is
 *                             the threshold in force (a committed reshare sets k'; removed nodes
 *                             are never reachable); operations overlapping a reshare's commit
 *                             window (see exemptWindow) are not required to succeed
 *   liveness.quorum-lost      state stable and < k nodes reachable → fails with QUORUM_UNAVAILABLE
 *                             by its deadline + QUORUM_LOST_SLACK_MS
 *   liveness.no-partial-output a failed operation leaves no output; a batch returns every key
 *   liveness.p99              (end of run, when the scenario sets maxP99Ms) p99 of stable operations
 *                             of the scenario's p99Ops types
 * Consistency:
 *   consistency.keysets       all reachable nodes report the same epoch and key set id: the one
 *                             the cluster agreed at setup, or after a lifecycle event the one every
 *                             node committed. While a lifecycle order is in progress a node may
 *                             report the old value or the new one, and all new values agree
 *                             (after a reshare committed without members that were down at the
 *                             order, only those may report the old value until they caught up)
 *   consistency.epoch-keysets (after every lifecycle event and at the end) for every epoch, every
 *                             node that answers keyset.get returns a key set with the same id;
 *                             a rotation leaves older epochs' key sets unchanged; a refresh gives
 *                             every live epoch a new keySetId with the same group keys
 * Lifecycle:
 *   lifecycle.completed       an issued order is accepted and committed on every node within the
 *                             event's bound after the later of its issue and the last disturbance
 *                             before it completed (the last fault healing); a reshare member
 *                             that was down at the order must catch up within the bound after
 *                             its restart
 *   lifecycle.retired-refused (final sweep) wraps of epochs a committed rotation retired
 *                             (minDecryptionEpoch) are refused with NOT_AUTHORIZED
 * Recovery:
 *   recovery.damaged-refuses  a node whose data dir was wiped/corrupted refuses to start, clearly
 */
import { ErrorCode } from '../protocol/errors.ts'
import type { OpRecord } from './workload.ts'
import type { LifecycleOp } from './scenario.ts'

/** How late (ms past its deadline) a must-fail operation may report QUORUM_UNAVAILABLE (event-loop lag on a busy host). */
export const QUORUM_LOST_SLACK_MS = 1_500
/** How late (ms past its deadline) any operation may settle before it counts as hung (the workload's watchdog slack). */
export const HANG_SLACK_MS = 3_000

/**
 * Client failure texts of a (k, n) mismatch between its membership and a member's key set
 * generation (client/generations.ts, client/keyset-fetch.ts) — expected inside a reshare window.
 */

/** Who the client can reach, from time `t` on. */
export interface Reachability {
  t: number
  /** Nodes up and not cut off from the client. */
  reachable: number[]
  /** The subset of `reachable` that does not lie. */
  honest: number[]
  /** True when this change disturbs operations (restarts the recovery window). */
  disturbance: boolean
  /**
   * Node processes booting on this host. Booting one (tsx + libp2p) costs seconds of CPU, which on
   * a small host shared with the running nodes starves them — an artifact of running the whole
   * cluster on one machine, so `liveness.quorum-ok` is not required while any node is booting.
   */
  starting?: number[]
}

/** A violation. */
export interface Violation {
  invariant: string
  tMs: number
  seed: number
  detail: string
  opId?: number
  replay: string
}

/** Counters of one invariant. */
export interface CheckCount { passed: number, failed: number }

/** What liveness expected of an operation. */
export type Expectation = 'succeed' | 'fail-quorum' | 'exempt'

/** Options of the checker. */
export interface CheckerOptions {
  n: number
  k: number
  lying: number[]
  recoveryMs: number
  seed: number
  replay: string
  /** Minimum success rate of must-succeed operations (1 = every failure is a violation). */
  minQuorumSuccessRate: number
}

/** Invariant names, in report order. */
export const INVARIANTS = [
  'safety.correct-data-key', 'safety.liar-never-trusted', 'safety.no-false-blame', 'safety.liar-detected', 'safety.acked-unwrappable',
  'liveness.no-hang', 'liveness.quorum-ok', 'liveness.quorum-lost', 'liveness.no-partial-output', 'liveness.p99',
  'consistency.keysets', 'consistency.epoch-keysets', 'lifecycle.completed', 'lifecycle.retired-refused', 'recovery.damaged-refuses'
] as const

/** A lifecycle order in progress (from its issue until every node committed it). */
export interface Transition {
  op: LifecycleOp
  startMs: number
  /** When every node was seen committed (absent: still in progress). */
  endMs?: number
  /** The reference before the order. */
  from: { epoch: number, keySetId: string }
  /** rotate: the new epoch; refresh: the same epoch. */
  targetEpoch: number
  /** The first new value a node reported (all others must equal it). */
  seen?: string
  /**
   * Reshare: members that were down when the order was issued and had not caught up when the
   * others committed (endTransition with `lagging`). Until each one has caught up
   * (settleLagging) it alone may still report the old value; every other node must report the new
   * one. The transition ends when the last one is settled.
   */
  lagging?: Set<number>
}

/** The checker. */
export class InvariantChecker {
  readonly counts: Record<string, CheckCount> = Object.fromEntries(INVARIANTS.map(i => [i, { passed: 0, failed: 0 }]))
  readonly violations: Violation[] = []
  readonly expectations = new Map<number, Expectation>()
  private readonly model: Reachability[] = []
  private readonly named = new Map<number, number>()
  private mustSucceed = 0
  private mustSucceedFailed: OpRecord[] = []
  /** Reference key sets, each in force from `fromMs` (the setup one from -Infinity). */
  private readonly refs: Array<{ fromMs: number, epoch: number, keySetId: string }> = []
  private readonly transitions: Transition[] = []
  /** Thresholds in force from `fromMs` (the topology's k from -Infinity; a committed reshare adds k'). */
  private readonly ks: Array<{ fromMs: number, k: number }>
  /** Windows in which liveness is not required (a reshare's commit and reloads); `toMs` absent = open. */
  private readonly windows: Array<{ fromMs: number, toMs?: number }> = []

  constructor (readonly o: CheckerOptions) { this.ks = [{ fromMs: -Infinity, k: o.k }] }

  /** The threshold in force at `t`. */
  threshold (t: number): number {
    let k = this.o.k
    for (const x of this.ks) if (x.fromMs <= t) k = x.k
    return k
  }

  /** A committed reshare: threshold `k` from `t` on (call in time order). */
  setThreshold (t: number, k: number): void { this.ks.push({ fromMs: t, k }) }

  /**
   * Opens a window from `t` in which liveness is not required: every operation that overlaps
   * [t, end + recoveryMs] is exempt (close it with closeWindow; an open one lasts to the end).
   */
  openWindow (t: number): { fromMs: number, toMs?: number } {
    const w = { fromMs: t }
    this.windows.push(w)
    return w
  }

  /** Closes a window opened by openWindow at `t` (the recovery window still follows it). */
  closeWindow (w: { fromMs: number, toMs?: number }, t: number): void { w.toMs = t }

  /** True when [startMs, endMs] overlaps a window (with its recovery time). */
  inWindow (startMs: number, endMs: number): boolean {
    return this.windows.some(w => endMs >= w.fromMs && startMs <= (w.toMs ?? Infinity) + this.o.recoveryMs)
  }

  /**
   * Honest nodes blamed inside a reshare window because the client could not yet verify the new
   * generation they named (see onOp): reported, not violations.
   */

  /** Records a change of the cluster model (call in time order). */
  noteChange (r: Reachability): void { this.model.push(r) }

  /** The key set every node must report (set once the DKG finished). */
  setReferenceKeySet (epoch: number, keySetId: string): void { this.refs.length = 0; this.refs.push({ fromMs: -Infinity, epoch, keySetId }) }

  /** The reference in force at `t` (undefined before setup). */
  reference (t = Infinity): { epoch: number, keySetId: string } | undefined {
    let cur: { epoch: number, keySetId: string } | undefined
    for (const r of this.refs) if (r.fromMs <= t) cur = r
    return cur === undefined ? undefined : { epoch: cur.epoch, keySetId: cur.keySetId }
  }

  /**
   * A lifecycle order was issued at `t`: until `endTransition`, nodes may report the reference in
   * force or ONE new value (rotate: epoch `targetEpoch`; refresh: the same epoch with another
   * key set id). Throws RangeError before setReferenceKeySet.
   */
  beginTransition (t: number, op: LifecycleOp, targetEpoch: number): Transition {
    const from = this.reference(t)
    if (from === undefined) throw new RangeError('no reference key set yet')
    const tr: Transition = { op, startMs: t, from, targetEpoch }
    this.transitions.push(tr)
    return tr
  }

  /**
   * Every node committed the transition at `t` with (epoch, keySetId): the new reference from then
   * on. With `lagging` (a reshare's members that were down at the order and have not caught up
   * yet), the transition stays open for them alone until settleLagging settles the last one.
   */
  endTransition (tr: Transition, t: number, epoch: number, keySetId: string, lagging: readonly number[] = []): void {
    this.refs.push({ fromMs: t, epoch, keySetId })
    if (lagging.length === 0) { tr.endMs = t; return }
    tr.seen = keySetId
    tr.lagging = new Set(lagging)
  }

  /**
   * A lagging member of `tr` caught up (or gave up: lifecycle.completed records that) at `t`: from
   * now on it must report the new value. Ends the transition with the last one.
   */
  settleLagging (tr: Transition, node: number, t: number): void {
    tr.lagging?.delete(node)
    if (tr.lagging !== undefined && tr.lagging.size === 0 && tr.endMs === undefined) tr.endMs = t
  }

  /** Abandons a transition whose order no node accepted (the reference stays). */
  abortTransition (tr: Transition, t: number): void {
    tr.endMs = t
  }

  /** The time of the last disturbance in [from, to] (undefined when none). */
  lastDisturbance (from: number, to: number): number | undefined {
    let last: number | undefined
    for (const m of this.model) if (m.disturbance && m.t >= from && m.t <= to) last = m.t
    return last
  }

  /** Records the outcome of a check made elsewhere (lifecycle and consistency checks of the runner). */
  record (name: typeof INVARIANTS[number], ok: boolean, t: number, detail: () => string): void { this.check(name, ok, t, detail) }

  private at (t: number): Reachability | undefined {
    let cur: Reachability | undefined
    for (const m of this.model) { if (m.t <= t) cur = m; else break }
    return cur
  }

  private stable (from: number, to: number): boolean {
    return !this.model.some(m => m.disturbance && m.t > from - this.o.recoveryMs && m.t <= to)
  }

  private check (name: string, ok: boolean, t: number, detail: () => string, opId?: number): void {
    const c = this.counts[name] ?? (this.counts[name] = { passed: 0, failed: 0 })
    if (ok) { c.passed++; return }
    c.failed++
    this.violations.push({ invariant: name, tMs: Math.round(t), seed: this.o.seed, detail: detail(), ...(opId !== undefined ? { opId } : {}), replay: this.o.replay })
  }

  /** What liveness expects of an operation over [startMs, endMs]. */
  expectation (startMs: number, endMs: number): Expectation {
    const s = this.at(startMs)
    if (s === undefined || !this.stable(startMs, endMs)) return 'exempt'
    if (this.inWindow(startMs, endMs)) return 'exempt'
    const k = this.threshold(startMs)
    const later = this.model.filter(m => m.t > startMs && m.t <= endMs)
    if (later.length > 0) return 'exempt'
    if (s.honest.length >= k) {
      const before = this.at(startMs - this.o.recoveryMs)
      const during = [before, s, ...this.model.filter(m => m.t > startMs - this.o.recoveryMs && m.t <= endMs)]
      return during.some(m => (m?.starting?.length ?? 0) > 0) ? 'exempt' : 'succeed'
    }
    if (s.reachable.length < k) return 'fail-quorum'
    return 'exempt'
  }

  /** Checks one finished (or hung) operation. */
  onOp (op: OpRecord): void {
    const t = op.endMs
    const lying = new Set(this.o.lying)
    if (op.hung) {
      this.check('liveness.no-hang', false, t, () => `${op.type} #${op.id} started at ${(op.startMs / 1000).toFixed(1)} s did not settle within its ${op.deadlineMs} ms deadline + slack`, op.id)
      return
    }
    this.check('liveness.no-hang', t - op.startMs <= op.deadlineMs + HANG_SLACK_MS, t, () => `${op.type} #${op.id} took ${t - op.startMs} ms (deadline ${op.deadlineMs} ms)`, op.id)
    if (op.checkedKeys > 0) {
      this.check('safety.correct-data-key', op.wrongKeys === 0, t, () => `${op.type} #${op.id} returned ${op.wrongKeys} WRONG ${op.type === 'sign' ? 'signature' : op.type === 'deploy' ? 'plaintext' : 'data key(s)'} (nodes used: ${op.used.join(',')})`, op.id)
    }
    if (op.ok || op.used.length > 0) {
      const trusted = op.used.filter(i => lying.has(i))
      this.check('safety.liar-never-trusted', trusted.length === 0, t, () => `${op.type} #${op.id} used the answer of lying node(s) ${trusted.join(',')}`, op.id)
    }
    const accused = [...op.failures.filter(f => f.code === ErrorCode.VERIFICATION_FAILED).map(f => f.index), ...op.blamed]
    if (accused.length > 0) {
      for (const i of accused) if (lying.has(i)) this.named.set(i, (this.named.get(i) ?? 0) + 1)
      const wrong = accused.filter(i => !lying.has(i))
      // Also inside a reshare's window: a generation of a membership the client has not learned yet
      // is answered CONFLICT by the client library (client/generations.ts), never blamed.
      this.check('safety.no-false-blame', wrong.length === 0, t, () => `${op.type} #${op.id} blamed honest node(s) ${wrong.join(',')}${op.ok ? '' : ` (${op.code ?? '?'}: ${(op.detail ?? '').slice(0, 400)})`}`, op.id)
    }
    this.check('liveness.no-partial-output', !op.partialOutput, t, () => `${op.type} #${op.id} ${op.ok ? 'returned an incomplete result' : 'failed but left output behind'}`, op.id)
    const ex = this.expectation(op.startMs, op.endMs)
    this.expectations.set(op.id, ex)
    if (ex === 'succeed') {
      this.mustSucceed++
      if (!op.ok) this.mustSucceedFailed.push(op)
      if (this.o.minQuorumSuccessRate >= 1) {
        this.check('liveness.quorum-ok', op.ok, t, () => `${op.type} #${op.id} failed with ${op.code ?? '?'} although ≥ ${this.threshold(op.startMs)} honest nodes were reachable and the cluster was stable (${op.detail ?? ''})`, op.id)
      } else if (op.ok) {
        this.counts['liveness.quorum-ok']!.passed++
      }
    } else if (ex === 'fail-quorum') {
      this.check('liveness.quorum-lost', !op.ok && op.code === ErrorCode.QUORUM_UNAVAILABLE && t - op.startMs <= op.deadlineMs + QUORUM_LOST_SLACK_MS, t,
        () => op.ok ? `${op.type} #${op.id} succeeded although fewer than ${this.threshold(op.startMs)} nodes were reachable (model wrong?)` : `${op.type} #${op.id} failed with ${op.code ?? '?'} instead of QUORUM_UNAVAILABLE (or late: ${t - op.startMs} ms)`, op.id)
    }
  }

  /**
   * Checks one consistency poll: statuses of the nodes that answered a poll that started at `t`
   * and ended at `tEnd` (default `t`). A poll that overlaps a lifecycle transition is checked by
   * the transition's rule (old value or the one new value), otherwise against the reference.
   */
  onStatuses (t: number, st: Array<{ index: number, epoch: number | null, keySetId: string | null }>, tEnd = t): void {
    if (st.length === 0) return
    const fmt = (s: { index: number, epoch: number | null, keySetId: string | null }): string => `${s.index} (epoch ${String(s.epoch)}, key set ${s.keySetId?.slice(0, 16) ?? 'none'})`
    const tr = this.transitions.find(x => x.startMs <= tEnd && (x.endMs === undefined || x.endMs >= t))
    if (tr !== undefined) {
      // After the commit of a reshare that some members missed, only those may still be old.
      const old = st.filter(s => s.epoch === tr.from.epoch && s.keySetId === tr.from.keySetId && (tr.lagging === undefined || tr.lagging.has(s.index)))
      const neu = st.filter(s => !old.includes(s))
      const bad = neu.filter(s => s.epoch !== tr.targetEpoch || s.keySetId === null || s.keySetId === tr.from.keySetId ||
        (tr.seen !== undefined && s.keySetId !== tr.seen) || s.keySetId !== neu[0]?.keySetId)
      const first = neu[0]?.keySetId
      if (bad.length === 0 && first !== undefined && first !== null) tr.seen = first
      this.check('consistency.keysets', bad.length === 0, tEnd, () => `during the ${tr.op} to epoch ${tr.targetEpoch}: node(s) ${bad.map(fmt).join(', ')} report neither the old key set (epoch ${tr.from.epoch}, ${tr.from.keySetId.slice(0, 16)}) nor the one new key set${tr.seen !== undefined ? ` ${tr.seen.slice(0, 16)}` : ''}`)
      return
    }
    const ref = this.reference(t)
    if (ref === undefined) return
    const bad = st.filter(s => s.epoch !== ref.epoch || s.keySetId !== ref.keySetId)
    this.check('consistency.keysets', bad.length === 0, tEnd, () => `node(s) ${bad.map(fmt).join(', ')} disagree with epoch ${ref.epoch} key set ${ref.keySetId.slice(0, 16)}`)
  }

  /**
   * Checks a restart that must be refused. Clear = the error names the data directory (its path)
   * or the damaged part (data directory, database, identity, storage key), so an operator knows
   * what to restore.
   */
  onRefusal (t: number, node: number, refused: boolean, message: string, dataDir?: string): void {
    const err = message.split('|').map(x => x.trim()).filter(x => /error/i.test(x)).join(' ') || message
    const clear = (dataDir !== undefined && err.includes(dataDir)) || /data director|database|identity|storage.key/i.test(err)
    this.check('recovery.damaged-refuses', refused && clear, t, () => refused ? `node ${node} refused to start without a clear error (no data directory, file or part named): ${err.slice(0, 200)}` : `node ${node} started although its data directory was destroyed`)
  }

  /** Checks the final sweep: `wrong` keys out of `total`, `error` when the sweep failed. */
  onSweep (t: number, total: number, wrong: number, error?: string): void {
    this.check('safety.acked-unwrappable', wrong === 0 && error === undefined, t, () => error !== undefined
      ? `final sweep failed: ${error}`
      : `${wrong} of ${total} acknowledged wraps/builds did not unwrap to their data key`)
  }

  /** End-of-run checks: liar detection, success rate, p99. */
  finish (t: number, o: { lyingDetected: boolean, maxP99Ms?: number, p99Ms?: number, p99Ops?: string, quorumOps: number }): void {
    if (o.lyingDetected) {
      for (const i of this.o.lying) {
        this.check('safety.liar-detected', (this.named.get(i) ?? 0) > 0 || o.quorumOps < 10, t, () => `lying node ${i} was never named in ${o.quorumOps} quorum operations`)
      }
    }
    if (this.o.minQuorumSuccessRate < 1 && this.mustSucceed > 0) {
      const rate = 1 - this.mustSucceedFailed.length / this.mustSucceed
      const first = this.mustSucceedFailed.slice(0, 5).map(op => `#${op.id} ${op.type} at ${(op.startMs / 1000).toFixed(1)} s: ${op.code ?? '?'}`).join('; ')
      this.check('liveness.quorum-ok', rate >= this.o.minQuorumSuccessRate, t, () => `success rate ${(rate * 100).toFixed(1)} % < ${(this.o.minQuorumSuccessRate * 100).toFixed(1)} % of ${this.mustSucceed} must-succeed ops; first failures: ${first}`)
    }
    if (o.maxP99Ms !== undefined && o.p99Ms !== undefined) {
      this.check('liveness.p99', o.p99Ms <= o.maxP99Ms, t, () => `p99 of stable ${o.p99Ops ?? 'quorum'} operations ${o.p99Ms} ms > ${o.maxP99Ms} ms`)
    }
  }

  /** How many times each lying node was named. */
  get namedCounts (): Record<number, number> { return Object.fromEntries(this.named) }
}
