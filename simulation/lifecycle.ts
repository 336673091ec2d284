/**
 * The `lifecycle` event of a scenario: issues an admin-signed lifecycle order (rotate or refresh)
 * through the real client library (client/lifecycle.ts: newOrder → signOrder → pushOrder, exactly
 * what `keymesh cluster rotate` / `cluster refresh` do), then follows it by polling every node's
 * `status` until every node has committed it, and checks the lifecycle and consistency invariants
 * around it (simulation/invariants.ts):
 *
 *   lifecycle.completed        accepted, and committed on every node within the event's bound
 *                              after the later of the issue and the last disturbance before it
 *                              completed (the last fault healing)
 *   consistency.epoch-keysets  for every epoch 1..current, every node returns (keyset.get) a key
 *                              set with the same id; a rotation leaves older epochs unchanged; a
 *                              refresh gives every live epoch a new id and keeps its group keys
 *
 * Committed = rotate: the node's status reports epoch ≥ target with its DKG `done`; refresh: the
 * node's status reports the same epoch with a key set id other than the one before the order.
 *
 * Secrets: the admin secret key belongs to the SimCluster (in memory, throw-away simulation data);
 * this module only signs with it.
 */
import type { KeymeshClient } from '../client/index.ts'
import { newOrder, pushOrder, signOrder } from '../client/index.ts'
import type { PushResult } from '../client/index.ts'
import { errorCode } from '../protocol/errors.ts'
import { toHex } from '../protocol/bytes.ts'
import { decodeKeySet, keySetId, signKey, wrapKey } from '../protocol/keyset.ts'
import type { OrderParams } from '../protocol/order.ts'
import type { DkgState } from '../protocol/rpc.ts'
import type { SimCluster } from './cluster.ts'
import type { InvariantChecker } from './invariants.ts'
import type { LifecycleOp } from './scenario.ts'

/** How often the driver polls every node's status while an order is in progress (ms). */
export const LIFECYCLE_POLL_MS = 250

/** What happened to one lifecycle event (report.json `lifecycle[]`). Times: ms since t = 0. */
export interface LifecycleRecord {
  fault: number
  op: LifecycleOp
  minDecryptionEpoch?: number
  /** When the order was pushed. */
  issuedMs?: number
  epochBefore?: number
  /** rotate: epochBefore + 1; refresh: epochBefore. */
  targetEpoch?: number
  /** The current epoch's key set id before the order. */
  keySetIdBefore?: string
  /** The current epoch's key set id every node committed. */
  keySetIdAfter?: string
  /** Per node: the push's outcome ('accepted', 'refused CODE: detail', 'unreachable CODE'). */
  pushed: Record<string, string>
  /** Per node: first time its status showed the order committed. */
  committedMs: Record<string, number>
  /** When every node was seen committed. */
  allCommittedMs?: number
  /** lifecycle.completed bound (ms) and the instant it counts from (issue or the last disturbance). */
  boundMs: number
  boundFromMs?: number
  error?: string
}

/** What the driver needs from the runner. */
export interface LifecycleEnv {
  cluster: SimCluster
  client: KeymeshClient
  checker: InvariantChecker
  /** ms since t = 0 */
  now: () => number
  /** Timeline entries (the runner's executed-event list). */
  log: (label: string, fault: number, note?: string) => void
  /** Called when an order that retires epochs below `epoch` is issued (the workload stops picking them). */
  onRetire?: (epoch: number) => void
}

interface NodeStatus { index: number, epoch: number | null, keySetId: string | null, dkg: DkgState }

async function statusAll (client: KeymeshClient, n: number, timeoutMs: number): Promise<NodeStatus[]> {
  const all = await Promise.all(Array.from({ length: n }, async (_, i): Promise<NodeStatus | undefined> => {
    try {
      const s = await client.transport.call(i + 1, 'status', {}, { timeoutMs })
      return { index: i + 1, epoch: s.epoch, keySetId: s.keySetId, dkg: s.dkg.state }
    } catch { return undefined }
  }))
  return all.filter((x): x is NodeStatus => x !== undefined)
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, Math.max(0, ms))) }

/** One epoch's key set as a node serves it: id and group keys (hex). */
interface EpochKeys { id: string, wrap: string, sign: string }

/**
 * Every node's key set of every epoch 1..`upTo` (keyset.get; nodes that do not answer are left
 * out). Never throws.
 */
export async function epochKeySets (client: KeymeshClient, n: number, upTo: number, timeoutMs = 3_000): Promise<Map<number, Map<number, EpochKeys>>> {
  const out = new Map<number, Map<number, EpochKeys>>()
  await Promise.all(Array.from({ length: upTo }, async (_, e) => {
    const byNode = new Map<number, EpochKeys>()
    out.set(e + 1, byNode)
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      try {
        const r = await client.transport.call(i + 1, 'keyset.get', { epoch: e + 1 }, { timeoutMs })
        const ks = decodeKeySet(r.keySet)
        if (ks.epoch !== e + 1) return
        byNode.set(i + 1, { id: keySetId(ks), wrap: toHex(wrapKey(ks).toBytes()), sign: toHex(signKey(ks)) })
      } catch { /* unreachable or not served: left out */ }
    }))
  }))
  return out
}

/**
 * Checks `consistency.epoch-keysets` over `sets` (from epochKeySets): per epoch, every answering
 * node returned the same key set id. Returns the agreed key sets (epoch → keys of the first node).
 */
export function checkEpochAgreement (checker: InvariantChecker, t: number, sets: Map<number, Map<number, EpochKeys>>, when: string): Map<number, EpochKeys> {
  const agreed = new Map<number, EpochKeys>()
  for (const [epoch, byNode] of [...sets.entries()].sort((a, b) => a[0] - b[0])) {
    const ids = new Set([...byNode.values()].map(x => x.id))
    checker.record('consistency.epoch-keysets', ids.size <= 1, t, () => `${when}: nodes disagree on the key set of epoch ${epoch}: ${[...byNode.entries()].map(([i, x]) => `node ${i} ${x.id.slice(0, 16)}`).join(', ')}`)
    const first = [...byNode.values()][0]
    if (first !== undefined) agreed.set(epoch, first)
  }
  return agreed
}

/** Drives the lifecycle events of one scenario run. */
export class LifecycleDriver {
  readonly records: LifecycleRecord[] = []
  /** Resolves when the last issued order has completed (or missed its bound). */
  private chain: Promise<void> = Promise.resolve()
  private stopped = false
  /**
   * The agreed key set of every epoch as last seen: read at setup (`init`) and after every
   * completed order, so that an order is pushed right at its scheduled time (reading n × epochs
   * key sets under load takes seconds) and compared against the picture before it.
   */
  private known = new Map<number, EpochKeys>()
  /** The cluster's minDecryptionEpoch as ordered by completed rotations (a refresh renews epochs ≥ it). */
  private minLive = 1

  constructor (private readonly env: LifecycleEnv) {}

  /**
   * Reads every node's key set of every epoch up to the reference epoch (setup, before t = 0) and
   * checks they agree. Throws Error before the reference key set is known.
   */
  async init (): Promise<void> {
    const { client, checker, now } = this.env
    const ref = checker.reference()
    if (ref === undefined) throw new Error('no reference key set')
    this.known = checkEpochAgreement(checker, now(), await epochKeySets(client, this.env.cluster.n, ref.epoch), 'at setup')
  }

  /** Queues a lifecycle event (orders run one after the other). Never throws. */
  issue (fault: number, op: LifecycleOp, boundMs: number, minDecryptionEpoch?: number): void {
    const rec: LifecycleRecord = { fault, op, boundMs, pushed: {}, committedMs: {}, ...(minDecryptionEpoch !== undefined ? { minDecryptionEpoch } : {}) }
    this.records.push(rec)
    this.chain = this.chain.then(async () => { await this.run(rec) }).catch((e: unknown) => {
      // The harness could not issue or follow the order: that is a failed event, never a silent one.
      rec.error = `${errorCode(e)}: ${(e as Error).message.slice(0, 300)}`
      this.env.checker.record('lifecycle.completed', false, this.env.now(), () => `${op} event failed in the harness: ${rec.error ?? ''}`)
    })
  }

  /** Resolves once every queued order has completed or missed its bound. Never throws. */
  async settled (): Promise<void> { await this.chain }

  /** Stops following orders (the run is being torn down). */
  stop (): void { this.stopped = true }

  /** True while an order is issued and not yet committed everywhere. */
  get pending (): boolean { return this.records.some(r => r.issuedMs !== undefined && r.allCommittedMs === undefined && r.error === undefined) }

  private async run (rec: LifecycleRecord): Promise<void> {
    const { cluster: c, client, checker, now, log } = this.env
    const n = c.n
    // The cluster's current epoch and key sets before the order (the reference agreed so far).
    const ref = checker.reference(now())
    if (ref === undefined) throw new Error('no reference key set')
    const epochBefore = ref.epoch
    const target = rec.op === 'rotate' ? epochBefore + 1 : epochBefore
    rec.epochBefore = epochBefore
    rec.targetEpoch = target
    rec.keySetIdBefore = ref.keySetId
    const before = this.known
    const params: OrderParams = rec.minDecryptionEpoch !== undefined ? { minDecryptionEpoch: rec.minDecryptionEpoch } : {}
    const so = signOrder(newOrder(c.cluster, rec.op, target, params), c.cluster, c.admin)
    if (rec.minDecryptionEpoch !== undefined) this.env.onRetire?.(rec.minDecryptionEpoch)
    rec.issuedMs = now()
    const tr = checker.beginTransition(rec.issuedMs, rec.op, target)
    log(`lifecycle: ${rec.op} order pushed (epoch ${epochBefore}${rec.op === 'rotate' ? ` → ${target}` : ''})`, rec.fault, `nonce ${so.order.nonce.slice(0, 8)}`)
    // Pushed to every node in parallel (as `keymesh cluster rotate` does); nodes relay it to each other.
    // Followed concurrently: a paused node's push only times out, it must not delay the polling.
    let pushError: string | undefined
    let accepted = false
    const push = pushOrder(client.transport, so, { timeoutMs: 5_000 }).then((rs: PushResult[]) => {
      for (const r of rs) {
        rec.pushed[String(r.index)] = r.receipt !== undefined ? (r.receipt.accepted ? 'accepted' : `refused ${r.receipt.code ?? ''}: ${r.receipt.detail.slice(0, 120)}`) : `unreachable ${r.error ?? ''}`
      }
      accepted = true
      log(`lifecycle: ${rec.op} order accepted by node(s) ${rs.filter(r => r.receipt?.accepted === true).map(r => r.index).join(',') || 'none'}`, rec.fault)
    }, (e: unknown) => { pushError = `${errorCode(e)}: ${(e as Error).message.slice(0, 300)}` })
    const committed = (s: NodeStatus): boolean => rec.op === 'rotate'
      ? (s.epoch ?? 0) >= target && s.dkg === 'done'
      : s.epoch === target && s.keySetId !== null && s.keySetId !== ref.keySetId
    const bound = (t: number): { from: number, deadline: number } => {
      const from = Math.max(rec.issuedMs as number, checker.lastDisturbance(rec.issuedMs as number, t) ?? 0)
      return { from, deadline: from + rec.boundMs }
    }
    const lastIds: Record<string, string | null> = {}
    for (;;) {
      if (pushError !== undefined && !accepted) break
      const t = now()
      const st = await statusAll(client, n, 1_000)
      for (const s of st) {
        lastIds[String(s.index)] = s.keySetId
        if (rec.committedMs[String(s.index)] === undefined && committed(s)) {
          rec.committedMs[String(s.index)] = now()
          log(`lifecycle: node ${s.index} committed ${rec.op === 'rotate' ? `epoch ${String(s.epoch)}` : `refresh of epoch ${String(s.epoch)}`}`, rec.fault, `key set ${s.keySetId?.slice(0, 16) ?? '?'}`)
        }
      }
      // Every node that can be running (wiped/refused nodes cannot take part).
      const members = c.nodes.filter(x => x.state !== 'wiped' && x.state !== 'refused').map(x => x.index)
      if (members.every(i => rec.committedMs[String(i)] !== undefined)) {
        rec.allCommittedMs = Math.max(...members.map(i => rec.committedMs[String(i)] as number))
        break
      }
      if (this.stopped || t > bound(t).deadline) break
      await sleep(LIFECYCLE_POLL_MS - (now() - t))
    }
    await push
    const end = rec.allCommittedMs ?? now()
    const b = bound(end)
    rec.boundFromMs = b.from
    if (pushError !== undefined && !accepted) {
      rec.error = pushError
      checker.abortTransition(tr, now())
      checker.record('lifecycle.completed', false, now(), () => `${rec.op} order refused/undelivered: ${pushError ?? ''}`)
      log(`lifecycle: ${rec.op} order NOT accepted`, rec.fault, pushError)
      return
    }
    const ok = rec.allCommittedMs !== undefined && rec.allCommittedMs <= b.deadline
    checker.record('lifecycle.completed', ok, end, () => rec.allCommittedMs === undefined
      ? `${rec.op} issued at ${((rec.issuedMs ?? 0) / 1000).toFixed(1)} s not committed on node(s) ${c.nodes.map(x => x.index).filter(i => rec.committedMs[String(i)] === undefined).join(',')} by ${(now() / 1000).toFixed(1)} s (bound ${rec.boundMs / 1000} s after ${(b.from / 1000).toFixed(1)} s); last key set ids ${JSON.stringify(Object.fromEntries(Object.entries(lastIds).map(([k, v]) => [k, v?.slice(0, 8) ?? null])))}`
      : `${rec.op} committed everywhere at ${(rec.allCommittedMs / 1000).toFixed(1)} s, later than ${rec.boundMs / 1000} s after ${(b.from / 1000).toFixed(1)} s`)
    if (rec.allCommittedMs === undefined) {
      log(`lifecycle: ${rec.op} NOT committed on every node`, rec.fault)
      return
    }
    // The new reference: the value the nodes committed (consistency.keysets checks they agree).
    const st = await statusAll(client, n, 2_000)
    const after = st.find(s => s.epoch === target)?.keySetId ?? null
    if (after !== null) {
      rec.keySetIdAfter = after
      checker.endTransition(tr, rec.allCommittedMs, target, after)
    } else {
      checker.abortTransition(tr, rec.allCommittedMs)
    }
    log(`lifecycle: ${rec.op} committed on every node`, rec.fault, `${((rec.allCommittedMs - (rec.issuedMs ?? 0)) / 1000).toFixed(1)} s after the order; key set ${after?.slice(0, 16) ?? '?'}`)
    // consistency.epoch-keysets: every epoch agreed on; rotate keeps old epochs, refresh renews every live one.
    const tNow = now()
    const agreed = checkEpochAgreement(checker, tNow, await epochKeySets(client, n, target), `after the ${rec.op}`)
    this.known = agreed
    if (rec.minDecryptionEpoch !== undefined) this.minLive = Math.max(this.minLive, rec.minDecryptionEpoch)
    const live = this.minLive
    for (const [e, old] of before) {
      const cur = agreed.get(e)
      if (cur === undefined) continue
      if (rec.op === 'rotate') {
        checker.record('consistency.epoch-keysets', cur.id === old.id, tNow, () => `the rotation changed the key set of the older epoch ${e}: ${old.id.slice(0, 16)} → ${cur.id.slice(0, 16)}`)
      } else {
        checker.record('consistency.epoch-keysets', cur.wrap === old.wrap && cur.sign === old.sign, tNow, () => `the refresh changed a group key of epoch ${e}`)
        if (e >= live) checker.record('consistency.epoch-keysets', cur.id !== old.id, tNow, () => `the refresh left the key set of live epoch ${e} unchanged (${cur.id.slice(0, 16)})`)
      }
    }
    if (rec.op === 'rotate') {
      const neu = agreed.get(target)
      const prev = before.get(epochBefore)
      if (neu !== undefined && prev !== undefined) checker.record('consistency.epoch-keysets', neu.wrap !== prev.wrap && neu.sign !== prev.sign, tNow, () => `epoch ${target} has the group keys of epoch ${epochBefore}`)
    }
  }
}
