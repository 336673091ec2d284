/**
 * The `lifecycle` event of a scenario: issues an admin-signed lifecycle order (rotate or refresh)
 * through the real client library (client/lifecycle.ts: newOrder → signOrder → pushOrder, exactly
 * what `keymesh cluster rotate` / `cluster refresh` do), then follows it by polling every node's
 * `status` until every node has committed it, and checks the lifecycle and consistency invariants
 * around it (simulation/invariants.ts):
 *
 *   lifecycle.completed        accepted, and committed on every node within the event's bound
 *                              after the later of the issue and the last disturbance before it
 *                              completed (the last fault healing); a reshare member that was
 *                              down at the order: caught up within the bound after its restart
 *   consistency.epoch-keysets  for every epoch 1..current, every node returns (keyset.get) a key
 *                              set with the same id; a rotation leaves older epochs unchanged; a
 *                              refresh gives every live epoch a new id and keeps its group keys
 *
 * Committed = rotate: the node's status reports epoch ≥ target with its DKG `done`; refresh: the
 * node's status reports the same epoch with a key set id other than the one before the order;
 * reshare: every NEW member reports the same epoch with another key set id AND serves the next
 * membership revision (cluster.get), as `keymesh cluster reshare` waits for.
 *
 * Reshare (docs/LIFECYCLE.md "Reshare"): the member list is built exactly as `keymesh cluster
 * reshare --remove` builds it (client/reshare-cli.ts reshareMembers over the client's newest view:
 * removed entries compacted, the rest renumbered 1..n'). The addresses are those of the client's
 * view — the client→node proxies — so after the commit the client keeps dialling through its
 * proxies, and so do the nodes (node↔node link faults no longer apply after a reshare commit; see
 * docs/SIMULATION.md). From the first commit seen until every member has reloaded (one at a time, in new
 * index order) liveness is not required (InvariantChecker.openWindow); then k' is in force, the
 * removed nodes are 'removed' (never restarted, never reachable), the workload's client has adopted
 * the new membership (refreshMembership), and node numbers in the harness stay the topology's:
 * status and key set reads map them to the client's current indices by PeerId.
 *
 * Secrets: the admin secret key belongs to the SimCluster (in memory, throw-away simulation data);
 * this module only signs with it.
 */
import type { KeymeshClient } from '../client/index.ts'
import { newOrder, pushOrder, signOrder } from '../client/index.ts'
import type { PushResult } from '../client/index.ts'
import { reshareMembers } from '../client/reshare-cli.ts'
import { errorCode } from '../protocol/errors.ts'
import { toHex } from '../protocol/bytes.ts'
import { decodeKeySet, keySetId, signKey, wrapKey } from '../protocol/keyset.ts'
import type { OrderParams } from '../protocol/order.ts'
import type { DkgState } from '../protocol/rpc.ts'
import type { SimCluster, SimNode } from './cluster.ts'
import type { InvariantChecker, Transition } from './invariants.ts'
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
  /** rotate: epochBefore + 1; refresh, reshare: epochBefore. */
  targetEpoch?: number
  /** reshare: the new threshold k' (as ordered). */
  newThreshold?: number
  /** reshare: the removed nodes (topology indices). */
  remove?: number[]
  /** reshare: topology index → index in the new membership, for every member. */
  newIndex?: Record<string, number>
  /** reshare: the membership revision the order creates. */
  revision?: number
  /** reshare: exit (code or signal) of each removed node's last process ('never ran' when it was down all along). */
  removedExit?: Record<string, number | string>
  /** reshare: when the workload's client had adopted the new membership. */
  clientAdoptedMs?: number
  /** reshare: when every running member had reloaded under the new membership (end of the liveness window before its recovery time). */
  reloadedMs?: number
  /** The current epoch's key set id before the order. */
  keySetIdBefore?: string
  /** The current epoch's key set id every node committed. */
  keySetIdAfter?: string
  /** Per node: the push's outcome ('accepted', 'refused CODE: detail', 'unreachable CODE'). */
  pushed: Record<string, string>
  /** Per node: first time its status showed the order committed. */
  committedMs: Record<string, number>
  /**
   * When every node was seen committed — for a reshare, every new member that was running when the
   * order was issued (members down then catch up after their restart: `late`).
   */
  allCommittedMs?: number
  /**
   * reshare: new members that were DOWN when the order was issued (topology index → how they
   * caught up after their restart; docs/PROTOCOL.md §11.9). Each must be committed and ready
   * under the new membership within the event's bound after its restart.
   */
  late?: Record<string, LateMember>
  /** lifecycle.completed bound (ms) and the instant it counts from (issue or the last disturbance). */
  boundMs: number
  boundFromMs?: number
  error?: string
}

/** A reshare member that was down at the order: its restart and catch-up (ms since t = 0). */
export interface LateMember {
  /** When the harness (re)started its process after the order was issued. */
  restartedMs?: number
  /** When it had committed: its catch-up log line, else the first status poll showing the new generation and membership revision. */
  committedMs?: number
  /** When it logged 'node ready' under the new membership revision. */
  readyMs?: number
  /** From its log: repaired at start (it never saw the order) or in its resumed ceremony, and from which members (new indices). */
  repaired?: { how: 'at start' | 'in the ceremony', from: number[] }
  /** When it logged that line. */
  repairedMs?: number
  /** Why it did not catch up (missing bound, refused start, …). */
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
  /** Called when a reshare changed the cluster model (commit seen, nodes removed, client adopted): the runner notes who is reachable. */
  disturb?: () => void
}

/** One node's status, `index` = its topology index; `revision` = membership revision it serves (when asked). */
export interface NodeStatus { index: number, epoch: number | null, keySetId: string | null, dkg: DkgState, revision?: number }

/**
 * The index under which the client's CURRENT view knows node `x` (by PeerId), or undefined when
 * that view does not list it (removed). Never throws.
 */
export function clientIndex (client: KeymeshClient, x: SimNode): number | undefined {
  return client.transport.cluster.nodes.find(m => m.peerId === x.peerId)?.index
}

/**
 * `status` of every node the client's view lists (except removed ones and `skip`), keyed by
 * topology index; with `revision`, also the membership revision it serves (cluster.get). Nodes that
 * do not answer are left out. Never throws.
 */
export async function statusAll (client: KeymeshClient, c: SimCluster, timeoutMs: number, o: { revision?: boolean, skip?: ReadonlySet<number> } = {}): Promise<NodeStatus[]> {
  const all = await Promise.all(c.nodes.map(async (x): Promise<NodeStatus | undefined> => {
    const j = clientIndex(client, x)
    if (j === undefined || x.state === 'removed' || o.skip?.has(x.index) === true) return undefined
    try {
      const s = await client.transport.call(j, 'status', {}, { timeoutMs })
      const r: NodeStatus = { index: x.index, epoch: s.epoch, keySetId: s.keySetId, dkg: s.dkg.state }
      if (o.revision === true) r.revision = (await client.transport.call(j, 'cluster.get', { have: 0 }, { timeoutMs })).revision
      return r
    } catch { return undefined }
  }))
  return all.filter((x): x is NodeStatus => x !== undefined)
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, Math.max(0, ms))) }

/** One epoch's key set as a node serves it: id, group keys (hex) and (k, n) of the generation. */
interface EpochKeys { id: string, wrap: string, sign: string, k?: number, n?: number }

/**
 * Every member's key set of every epoch 1..`upTo` (keyset.get), keyed by topology index (nodes
 * that do not answer, and removed ones, are left out). Never throws.
 */
export async function epochKeySets (client: KeymeshClient, c: SimCluster, upTo: number, timeoutMs = 3_000): Promise<Map<number, Map<number, EpochKeys>>> {
  const out = new Map<number, Map<number, EpochKeys>>()
  await Promise.all(Array.from({ length: upTo }, async (_, e) => {
    const byNode = new Map<number, EpochKeys>()
    out.set(e + 1, byNode)
    await Promise.all(c.nodes.map(async x => {
      const j = clientIndex(client, x)
      if (j === undefined || x.state === 'removed') return
      try {
        const r = await client.transport.call(j, 'keyset.get', { epoch: e + 1 }, { timeoutMs })
        const ks = decodeKeySet(r.keySet)
        if (ks.epoch !== e + 1) return
        byNode.set(x.index, { id: keySetId(ks), wrap: toHex(wrapKey(ks).toBytes()), sign: toHex(signKey(ks)), k: ks.threshold, n: ks.n })
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
   * The reshare being followed until its commit, and the liveness window a member's reload opened
   * before the driver's poll saw the commit (onReloading).
   */
  private committing?: { rec: LifecycleRecord, window?: ReturnType<InvariantChecker['openWindow']> }
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
    this.known = checkEpochAgreement(checker, now(), await epochKeySets(client, this.env.cluster, ref.epoch), 'at setup')
  }

  /** Nodes an issued, not yet finished reshare removes (their statuses are not checked any more). */
  get leaving (): Set<number> {
    return new Set(this.records.filter(r => r.op === 'reshare' && r.issuedMs !== undefined && r.reloadedMs === undefined && r.error === undefined).flatMap(r => r.remove ?? []))
  }

  /** Queues a lifecycle event (orders run one after the other). Never throws. */
  issue (fault: number, op: LifecycleOp, boundMs: number, extra: { minDecryptionEpoch?: number, newThreshold?: number, remove?: number[] } = {}): void {
    const { minDecryptionEpoch, newThreshold, remove } = extra
    const rec: LifecycleRecord = {
      fault, op, boundMs, pushed: {}, committedMs: {},
      ...(minDecryptionEpoch !== undefined ? { minDecryptionEpoch } : {}),
      ...(newThreshold !== undefined ? { newThreshold } : {}),
      ...(remove !== undefined ? { remove: [...remove] } : {})
    }
    this.records.push(rec)
    this.chain = this.chain.then(async () => { await this.run(rec) }).catch((e: unknown) => {
      // The harness could not issue or follow the order: that is a failed event, never a silent one.
      rec.error = `${errorCode(e)}: ${(e as Error).message.slice(0, 300)}`
      this.env.checker.record('lifecycle.completed', false, this.env.now(), () => `${op} event failed in the harness: ${rec.error ?? ''}`)
    })
  }

  /**
   * A member logged 'reshare committed' or 'reloading under the new membership' (the runner, from
   * the node's log) — possibly before the next status poll sees the commit. From the first commit
   * the members serve another generation and reload one at a time: the reshare's liveness window
   * opens now if it is not open yet (operations ending before the poll would otherwise be judged
   * against a model that has not seen the commit). Never throws.
   */
  onReloading (): void {
    const x = this.committing
    if (x !== undefined && x.window === undefined && x.rec.allCommittedMs === undefined) x.window = this.env.checker.openWindow(this.env.now())
  }

  /** Resolves once every queued order has completed or missed its bound. Never throws. */
  async settled (): Promise<void> { await this.chain }

  /** Stops following orders (the run is being torn down). */
  stop (): void { this.stopped = true }

  /** True while an order is issued and not yet committed everywhere. */
  get pending (): boolean { return this.records.some(r => r.issuedMs !== undefined && r.allCommittedMs === undefined && r.error === undefined) }

  private async run (rec: LifecycleRecord): Promise<void> {
    const { cluster: c, client, checker, now, log } = this.env
    // The cluster's current epoch and key sets before the order (the reference agreed so far).
    const ref = checker.reference(now())
    if (ref === undefined) throw new Error('no reference key set')
    const epochBefore = ref.epoch
    const target = rec.op === 'rotate' ? epochBefore + 1 : epochBefore
    rec.epochBefore = epochBefore
    rec.targetEpoch = target
    rec.keySetIdBefore = ref.keySetId
    const before = this.known
    let params: OrderParams = rec.minDecryptionEpoch !== undefined ? { minDecryptionEpoch: rec.minDecryptionEpoch } : {}
    // Reshare: the member list as `keymesh cluster reshare --remove` builds it, over the newest view.
    const byPeer = new Map(c.nodes.map(x => [x.peerId, x.index]))
    let newMembers: number[] | undefined
    const runningAtIssue = new Set(c.nodes.filter(x => x.proc !== undefined && x.proc.exitCode === null && x.proc.signalCode === null).map(x => x.index))
    if (rec.op === 'reshare') {
      await client.refreshMembership()
      const view = client.transport.cluster
      const members = reshareMembers(view.nodes, [], (rec.remove ?? []).map(i => c.node(i).peerId))
      const k2 = rec.newThreshold ?? Math.min(view.threshold, members.length)
      params = { members, newThreshold: k2 }
      rec.newThreshold = k2
      rec.revision = client.membershipRevision + 1
      rec.newIndex = Object.fromEntries(members.map(m => [String(byPeer.get(m.peerId) ?? 0), m.index]))
      newMembers = members.map(m => byPeer.get(m.peerId) ?? 0)
    }
    // Reshare: members down at the order cannot take part; the quorum commits without them and
    // they catch up by share repair once restarted (followLate), each within the bound of its restart.
    const late = rec.op === 'reshare' ? (newMembers ?? []).filter(i => !runningAtIssue.has(i)) : []
    const so = signOrder(newOrder(c.cluster, rec.op, target, params), c.cluster, c.admin)
    if (rec.minDecryptionEpoch !== undefined) this.env.onRetire?.(rec.minDecryptionEpoch)
    rec.issuedMs = now()
    const tr = checker.beginTransition(rec.issuedMs, rec.op, target)
    const what = rec.op === 'reshare' ? `reshare to ${rec.newThreshold ?? '?'}-of-${newMembers?.length ?? '?'}${(rec.remove ?? []).length > 0 ? `, removing node(s) ${(rec.remove ?? []).join(',')}` : ''}` : rec.op
    log(`lifecycle: ${what} order pushed (epoch ${epochBefore}${rec.op === 'rotate' ? ` → ${target}` : ''})`, rec.fault, `nonce ${so.order.nonce.slice(0, 8)}`)
    // Pushed to every node in parallel (as `keymesh cluster rotate` does); nodes relay it to each other.
    // Followed concurrently: a paused node's push only times out, it must not delay the polling.
    let pushError: string | undefined
    let accepted = false
    const push = pushOrder(client.transport, so, { timeoutMs: 5_000 }).then((rs: PushResult[]) => {
      // Transport indices of the view the order was pushed with → topology indices.
      const pushedView = client.transport.cluster.nodes
      for (const r of rs) {
        const pid = pushedView.find(m => m.index === r.index)?.peerId
        rec.pushed[String(pid !== undefined ? (byPeer.get(pid) ?? r.index) : r.index)] = r.receipt !== undefined ? (r.receipt.accepted ? 'accepted' : `refused ${r.receipt.code ?? ''}: ${r.receipt.detail.slice(0, 120)}`) : `unreachable ${r.error ?? ''}`
      }
      accepted = true
      log(`lifecycle: ${rec.op} order accepted by node(s) ${rs.filter(r => r.receipt?.accepted === true).map(r => r.index).join(',') || 'none'}`, rec.fault)
    }, (e: unknown) => { pushError = `${errorCode(e)}: ${(e as Error).message.slice(0, 300)}` })
    const committed = (s: NodeStatus): boolean => rec.op === 'rotate'
      ? (s.epoch ?? 0) >= target && s.dkg === 'done'
      : s.epoch === target && s.keySetId !== null && s.keySetId !== ref.keySetId && (rec.op !== 'reshare' || (s.revision ?? 0) >= (rec.revision ?? Infinity))
    const bound = (t: number): { from: number, deadline: number } => {
      const from = Math.max(rec.issuedMs as number, checker.lastDisturbance(rec.issuedMs as number, t) ?? 0)
      return { from, deadline: from + rec.boundMs }
    }
    const lastIds: Record<string, string | null> = {}
    // Reshare: liveness is not required from the first commit seen (counted from the start of the
    // poll before, when it may already have happened) or the first member's reload (onReloading),
    // whichever comes first, until every member reloaded.
    let window: ReturnType<InvariantChecker['openWindow']> | undefined
    const committing: { rec: LifecycleRecord, window?: ReturnType<InvariantChecker['openWindow']> } = { rec }
    if (rec.op === 'reshare') this.committing = committing
    let prevPoll = rec.issuedMs
    for (;;) {
      if (pushError !== undefined && !accepted) break
      const t = now()
      const st = await statusAll(client, c, 1_000, { revision: rec.op === 'reshare', skip: new Set(rec.remove ?? []) })
      for (const s of st) {
        lastIds[String(s.index)] = s.keySetId
        if (rec.committedMs[String(s.index)] === undefined && committed(s)) {
          rec.committedMs[String(s.index)] = now()
          if (rec.op === 'reshare' && window === undefined) {
            window = committing.window ?? checker.openWindow(prevPoll)
            window.fromMs = Math.min(window.fromMs, prevPoll)
            this.env.disturb?.()
            // The first committed member serves the new membership at once: the workload's client
            // adopts it now (as it would after its next failed operation), not after the last commit.
            if (await client.refreshMembership()) rec.clientAdoptedMs = now()
          }
          log(`lifecycle: node ${s.index} committed ${rec.op === 'rotate' ? `epoch ${String(s.epoch)}` : `${rec.op} of epoch ${String(s.epoch)}`}`, rec.fault, `key set ${s.keySetId?.slice(0, 16) ?? '?'}`)
        }
      }
      prevPoll = t
      // Every node that can be running (wiped/refused/removed nodes cannot take part; a reshare waits for its new members).
      const members = (newMembers ?? c.nodes.map(x => x.index)).filter(i => { const x = c.node(i); return x.state !== 'wiped' && x.state !== 'refused' && x.state !== 'removed' && !late.includes(i) })
      if (members.every(i => rec.committedMs[String(i)] !== undefined)) {
        rec.allCommittedMs = Math.max(...members.map(i => rec.committedMs[String(i)] as number))
        break
      }
      if (this.stopped || t > bound(t).deadline) break
      await sleep(LIFECYCLE_POLL_MS - (now() - t))
    }
    if (this.committing === committing) delete this.committing
    window ??= committing.window
    await push
    const end = rec.allCommittedMs ?? now()
    const b = bound(end)
    rec.boundFromMs = b.from
    if (pushError !== undefined && !accepted) {
      rec.error = pushError
      if (window !== undefined) checker.closeWindow(window, now())
      checker.abortTransition(tr, now())
      checker.record('lifecycle.completed', false, now(), () => `${rec.op} order refused/undelivered: ${pushError ?? ''}`)
      log(`lifecycle: ${rec.op} order NOT accepted`, rec.fault, pushError)
      return
    }
    const ok = rec.allCommittedMs !== undefined && rec.allCommittedMs <= b.deadline
    checker.record('lifecycle.completed', ok, end, () => rec.allCommittedMs === undefined
      ? `${rec.op} issued at ${((rec.issuedMs ?? 0) / 1000).toFixed(1)} s not committed on node(s) ${(newMembers ?? c.nodes.map(x => x.index)).filter(i => rec.committedMs[String(i)] === undefined && !late.includes(i)).join(',')} by ${(now() / 1000).toFixed(1)} s (bound ${rec.boundMs / 1000} s after ${(b.from / 1000).toFixed(1)} s); last key set ids ${JSON.stringify(Object.fromEntries(Object.entries(lastIds).map(([k, v]) => [k, v?.slice(0, 8) ?? null])))}`
      : `${rec.op} committed everywhere at ${(rec.allCommittedMs / 1000).toFixed(1)} s, later than ${rec.boundMs / 1000} s after ${(b.from / 1000).toFixed(1)} s`)
    if (rec.allCommittedMs === undefined) {
      // The window stays open: a half-committed reshare leaves the cluster split between generations.
      log(`lifecycle: ${rec.op} NOT committed on every node`, rec.fault)
      return
    }
    // Late members not committed yet (still down, or up with the old generation): followed after
    // their restart (followLate), not waited for here, and no reference for the new key set.
    const lagging = late.filter(i => rec.committedMs[String(i)] === undefined)
    if (rec.op === 'reshare') await this.afterReshare(rec, (newMembers ?? []).filter(i => !lagging.includes(i)), runningAtIssue, window)
    // The new reference: the value the nodes committed (consistency.keysets checks they agree).
    const st = (await statusAll(client, c, 2_000)).filter(s => !lagging.includes(s.index))
    const after = st.find(s => s.epoch === target)?.keySetId ?? null
    if (after !== null) {
      rec.keySetIdAfter = after
      checker.endTransition(tr, rec.allCommittedMs, target, after, lagging)
    } else {
      checker.abortTransition(tr, rec.allCommittedMs)
    }
    log(`lifecycle: ${rec.op} committed on every ${lagging.length > 0 ? 'running member' : 'node'}`, rec.fault, `${((rec.allCommittedMs - (rec.issuedMs ?? 0)) / 1000).toFixed(1)} s after the order; key set ${after?.slice(0, 16) ?? '?'}${lagging.length > 0 ? `; node(s) ${lagging.join(',')} (down at the order) must catch up after their restart` : ''}`)
    // consistency.epoch-keysets: every epoch agreed on; rotate keeps old epochs, refresh renews every live one.
    const tNow = now()
    const sets = await epochKeySets(client, c, target)
    for (const byNode of sets.values()) for (const i of lagging) byNode.delete(i)
    const agreed = checkEpochAgreement(checker, tNow, sets, `after the ${rec.op}`)
    this.known = agreed
    if (rec.minDecryptionEpoch !== undefined) this.minLive = Math.max(this.minLive, rec.minDecryptionEpoch)
    const live = this.minLive
    for (const [e, old] of before) {
      const cur = agreed.get(e)
      if (cur === undefined) continue
      if (rec.op === 'rotate') {
        checker.record('consistency.epoch-keysets', cur.id === old.id, tNow, () => `the rotation changed the key set of the older epoch ${e}: ${old.id.slice(0, 16)} → ${cur.id.slice(0, 16)}`)
      } else {
        checker.record('consistency.epoch-keysets', cur.wrap === old.wrap && cur.sign === old.sign, tNow, () => `the ${rec.op} changed a group key of epoch ${e}`)
        if (e >= live) checker.record('consistency.epoch-keysets', cur.id !== old.id, tNow, () => `the ${rec.op} left the key set of live epoch ${e} unchanged (${cur.id.slice(0, 16)})`)
        if (rec.op === 'reshare' && e >= live) {
          const n2 = newMembers?.length
          checker.record('consistency.epoch-keysets', cur.k === rec.newThreshold && cur.n === n2, tNow, () => `after the reshare epoch ${e}'s key set is ${String(cur.k)}-of-${String(cur.n)}, not ${String(rec.newThreshold)}-of-${String(n2)}`)
        }
      }
    }
    if (rec.op === 'rotate') {
      const neu = agreed.get(target)
      const prev = before.get(epochBefore)
      if (neu !== undefined && prev !== undefined) checker.record('consistency.epoch-keysets', neu.wrap !== prev.wrap && neu.sign !== prev.sign, tNow, () => `epoch ${target} has the group keys of epoch ${epochBefore}`)
    }
    if (lagging.length > 0) await this.followLate(rec, lagging, tr, committed, agreed)
  }

  /**
   * A reshare committed without members that were down at the order (q = max(k′, ⌊n′/2⌋+1) of the
   * new members suffice; docs/PROTOCOL.md §11.8–11.9). Follows each one after the harness restarts
   * it (data directory intact, genesis cluster file, as every restart): it must learn the newer
   * membership, repair its shares and reload — committed (status: new generation, cluster.get: the
   * new revision) and 'node ready' under the new revision within the event's bound after its
   * restart (lifecycle.completed). From its restart until its reload liveness is not required
   * (a window, as for the reshare's own reloads). Once every one caught up, checks
   * consistency.epoch-keysets again with them included. Waits for restarts as long as the run
   * goes on (the runner restarts stopped nodes before the final sweep). Never throws.
   */
  private async followLate (rec: LifecycleRecord, lagging: number[], tr: Transition, committed: (s: NodeStatus) => boolean, agreed: Map<number, EpochKeys>): Promise<void> {
    const { cluster: c, client, checker, now, log } = this.env
    const late: Record<string, LateMember> = Object.fromEntries(lagging.map(i => [String(i), {}]))
    rec.late = late
    const pending = new Set(lagging)
    let window: ReturnType<InvariantChecker['openWindow']> | undefined
    const settle = (i: number, ok: boolean, t: number, why?: string): void => {
      const m = late[String(i)] as LateMember
      if (why !== undefined) m.error = why
      checker.record('lifecycle.completed', ok, t, () => `node ${i}, down at the reshare order, did not catch up: ${why ?? '?'}`)
      checker.settleLagging(tr, i, t)
      pending.delete(i)
    }
    // The cluster stamps its log lines with the wall clock; this run's clock is now().
    const rel = (wall: number): number => Math.round(now() - (Date.now() - wall))
    while (pending.size > 0 && !this.stopped) {
      const t = now()
      for (const i of [...pending]) {
        const x = c.node(i)
        const m = late[String(i)] as LateMember
        if (x.state === 'wiped' || x.state === 'refused' || x.state === 'removed') { settle(i, false, t, `its restart failed (${x.state}${x.refusal !== undefined ? `: ${x.refusal.slice(0, 200)}` : ''})`); continue }
        // Started after the order (it may have been restarted before the others committed).
        if (m.restartedMs === undefined && (x.state === 'starting' || x.state === 'up') && x.spawnedAt !== undefined && rel(x.spawnedAt) >= (rec.issuedMs ?? 0)) {
          m.restartedMs = rel(x.spawnedAt)
          window ??= checker.openWindow(m.restartedMs)
          this.env.disturb?.()
          log(`lifecycle: node ${i} (down at the reshare order) restarted at ${(m.restartedMs / 1000).toFixed(2)} s; it must catch up`, rec.fault)
        }
        if (m.repairedMs === undefined && x.repaired !== undefined && m.restartedMs !== undefined) {
          m.repairedMs = rel(x.repaired.at)
          m.repaired = { how: x.repaired.how, from: [...x.repaired.from] }
          log(`lifecycle: node ${i} repaired its shares ${x.repaired.how} at ${(m.repairedMs / 1000).toFixed(2)} s`, rec.fault, `from member(s) ${x.repaired.from.join(',')}`)
        }
      }
      const skip = new Set(c.nodes.map(x => x.index).filter(i => !pending.has(i)))
      const st = pending.size > 0 ? await statusAll(client, c, 1_000, { revision: true, skip }) : []
      for (const s of st) {
        const m = late[String(s.index)]
        if (m === undefined || m.committedMs !== undefined || !committed(s)) continue
        m.committedMs = Math.min(now(), m.repairedMs ?? Infinity)
        rec.committedMs[String(s.index)] = m.committedMs
        log(`lifecycle: node ${s.index} caught up with the reshare of epoch ${String(s.epoch)}`, rec.fault, `key set ${s.keySetId?.slice(0, 16) ?? '?'}`)
      }
      for (const i of [...pending]) {
        const x = c.node(i)
        const m = late[String(i)] as LateMember
        if (m.committedMs !== undefined && x.state === 'up' && x.reloading !== true && (x.readyRevision ?? 0) >= (rec.revision ?? Infinity)) {
          m.readyMs = x.readyAt !== undefined ? rel(x.readyAt) : now()
          if (x.repaired !== undefined && m.repairedMs === undefined) { m.repaired = { how: x.repaired.how, from: [...x.repaired.from] }; m.repairedMs = rel(x.repaired.at) }
          if (m.repairedMs !== undefined) { m.committedMs = Math.min(m.committedMs, m.repairedMs); rec.committedMs[String(i)] = m.committedMs }
          const restarted = m.restartedMs ?? m.readyMs
          const ok = m.readyMs <= restarted + rec.boundMs
          log(`lifecycle: node ${i} ready under membership revision ${String(rec.revision)}`, rec.fault, `${((m.readyMs - restarted) / 1000).toFixed(1)} s after its restart${m.repaired !== undefined ? `; shares repaired ${m.repaired.how} from member(s) ${m.repaired.from.join(',')}` : ''}`)
          settle(i, ok, m.readyMs, ok ? undefined : `ready ${((m.readyMs - restarted) / 1000).toFixed(1)} s after its restart, bound ${rec.boundMs / 1000} s`)
        } else if (m.restartedMs !== undefined && t > m.restartedMs + rec.boundMs) {
          settle(i, false, t, `not ${m.committedMs === undefined ? 'committed' : 'ready under the new membership'} ${rec.boundMs / 1000} s after its restart at ${(m.restartedMs / 1000).toFixed(1)} s`)
        }
      }
      if (pending.size > 0) await sleep(LIFECYCLE_POLL_MS - (now() - t))
    }
    for (const i of pending) settle(i, false, now(), 'the run ended first')
    if (window !== undefined) checker.closeWindow(window, now())
    this.env.disturb?.()
    const caught = lagging.filter(i => late[String(i)]?.error === undefined)
    if (caught.length === 0 || rec.targetEpoch === undefined) return
    // consistency.epoch-keysets again, the caught-up members included: the same generation as the others.
    const tNow = now()
    const again = checkEpochAgreement(checker, tNow, await epochKeySets(client, c, rec.targetEpoch), `after node(s) ${caught.join(',')} caught up`)
    for (const [e, cur] of again) {
      const was = agreed.get(e)
      if (was !== undefined) checker.record('consistency.epoch-keysets', cur.id === was.id, tNow, () => `epoch ${e}'s key set changed from ${was.id.slice(0, 16)} to ${cur.id.slice(0, 16)} while node(s) ${caught.join(',')} caught up`)
    }
  }

  /**
   * After every new member committed a reshare: k' in force, removed nodes marked 'removed' (a
   * running one must stop by itself with exit 0), the workload's client adopts the new membership,
   * then waits (within the event's bound) until every running member has reloaded under it and
   * closes the liveness window. Records failures as lifecycle.completed. Never throws.
   */
  private async afterReshare (rec: LifecycleRecord, members: number[], runningAtIssue: ReadonlySet<number>, window: ReturnType<InvariantChecker['openWindow']> | undefined): Promise<void> {
    const { cluster: c, client, checker, now, log } = this.env
    const t0 = rec.allCommittedMs ?? now()
    checker.setThreshold(t0, rec.newThreshold ?? checker.threshold(t0))
    const w = window ?? checker.openWindow(t0)
    rec.removedExit = {}
    await Promise.all((rec.remove ?? []).map(async i => {
      const ran = runningAtIssue.has(i)
      const exit = await c.markRemoved(i)
      const ex = ran ? (exit ?? 'unknown') : 'never ran'
      ;(rec.removedExit as Record<string, number | string>)[String(i)] = ex
      if (ran) checker.record('lifecycle.completed', exit === 0, now(), () => `node ${i}, removed by the reshare, did not stop by itself with exit 0 (exit ${String(exit)})`)
      log(`lifecycle: node ${i} removed for good`, rec.fault, ran ? `exit ${String(exit)}` : 'it was down')
    }))
    this.env.disturb?.()
    const deadline = t0 + rec.boundMs
    while (client.membershipRevision < (rec.revision ?? 0) && now() < deadline && !this.stopped) {
      if (!(await client.refreshMembership())) await sleep(300)
    }
    if (client.membershipRevision >= (rec.revision ?? 0)) {
      rec.clientAdoptedMs ??= now()
      log(`lifecycle: client adopted membership revision ${client.membershipRevision}`, rec.fault, `${client.transport.cluster.threshold}-of-${client.transport.cluster.nodes.length}`)
    }
    checker.record('lifecycle.completed', rec.clientAdoptedMs !== undefined, now(), () => `the workload's client did not adopt membership revision ${String(rec.revision)} (has ${client.membershipRevision})`)
    this.env.disturb?.()
    // Reloads: one at a time in new-index order; a member that is down reloads when it starts.
    const reloaded = (i: number): boolean => { const x = c.node(i); return x.state !== 'up' || (x.reloading !== true && (x.readyRevision ?? 0) >= (rec.revision ?? Infinity)) }
    while (!members.every(reloaded) && now() < deadline && !this.stopped) await sleep(LIFECYCLE_POLL_MS)
    const ok = members.every(reloaded)
    checker.record('lifecycle.completed', ok, now(), () => `member(s) ${members.filter(i => !reloaded(i)).join(',')} did not reload under membership revision ${String(rec.revision)} within ${rec.boundMs / 1000} s of the commit`)
    rec.reloadedMs = now()
    checker.closeWindow(w, rec.reloadedMs)
    log(`lifecycle: ${ok ? 'every running member reloaded' : 'NOT every member reloaded'} under revision ${String(rec.revision)}`, rec.fault, `liveness window ${(w.fromMs / 1000).toFixed(1)}–${(rec.reloadedMs / 1000).toFixed(1)} s (+ recovery)`)
  }
}
