/**
 * Policy and audit on a node (docs/PROTOCOL.md): the current signed policy,
 * the audit log, the connection gater's decision, anti-entropy and revocation.
 *
 * Policy: DATA/policy.json holds the current signed policy (canonical JSON). A new document is
 * accepted only when its admin signatures verify against the cluster file (≥ adminThreshold) and
 * its policyVersion is strictly higher (an equal version with identical bytes is a no-op; anything
 * else is refused: no rollback, no equivocation). It is written atomically (temp file, fsync,
 * rename) before it takes effect. A policy file that does not verify at start stops the node:
 * falling back to the bootstrap rule would widen access.
 *
 * Policy floor: the highest version ever in force is also kept sealed in the node store
 * (META_POLICY_FLOOR). A policy file older than the floor stops the node (rollback on disk); a
 * missing file while the floor is > 0 puts the node in LOCKDOWN — nodes only, every client
 * refused — until anti-entropy brings back a policy at or above the floor. So deleting or
 * replacing DATA/policy.json can never reopen the bootstrap rule or an older policy.
 *
 * Bootstrap rule: until the first policy is accepted, the cluster file's `clients` may connect and
 * call every client operation (the behaviour before policies existed), and nothing else may.
 * Once a policy is in force, the cluster file's client list no longer grants anything: only the
 * policy's non-revoked identities (and the cluster's nodes) may connect.
 *
 * Anti-entropy: on every connection to another node and every `syncMs` (default 5 s), each node
 * asks every other node for its policy version (`policy.get {have}`) and takes a newer document;
 * an accepted document is also pushed to every node at once. The same exchange carries each
 * node's latest signed audit head, which this node records as witnesses in its own heads.
 *
 * Revocation: after a new policy takes effect, every open connection whose peer is no longer
 * allowed is closed, and every handler decides from the current policy at request time.
 */
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { Libp2p } from 'libp2p'
import type { PrivateKey } from '@libp2p/interface'
import { ErrorCode, KeymeshError, NotAuthorizedError, errorCode } from '../protocol/errors.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { decide, encodeSignedPolicy, identityOf, parseSignedPolicy, verifySignedPolicy } from '../protocol/policy.ts'
import type { Decision, DecisionContext, Policy, PolicyOp, Subject } from '../protocol/policy.ts'
import { verifyHeadSig } from '../protocol/audit.ts'
import type { RequestFields, SignedHead } from '../protocol/audit.ts'
import { AuditLog } from './audit-log.ts'
import { AUDIT_LOG_FILE, POLICY_FILE } from './store-layout.ts'
import type { Logger } from './log.ts'
import type { Caller, NodeContext } from './context.ts'

/** Options of Governance.open. */
export interface GovernanceOptions {
  dataDir: string
  cluster: ClusterFile
  privateKey: PrivateKey
  peerId: string
  log: Logger
  /** Anti-entropy period, ms (default KEYMESH_POLICY_SYNC_MS or 5000). */
  syncMs?: number
  /** Audit head period, ms (default KEYMESH_AUDIT_HEAD_MS or 30000; must be ≤ 60000). */
  headMs?: number
  /** The sealed policy floor of the node store (see the module comment). */
  floor: { get: () => Promise<number>, raise: (version: number) => Promise<void> }
}

/** Delay between a policy taking effect and closing the connections it no longer allows. */
const CLOSE_DELAY_MS = 250
/** At most one audit record per refused peer per this interval. */
const REFUSAL_RECORD_INTERVAL_MS = 10_000

const registry = new WeakMap<object, Governance>()

/** The governance of a node context (undefined in unit tests that build a bare context). Never throws. */
export function governanceOf (ctx: NodeContext): Governance | undefined { return registry.get(ctx) }

function envMs (name: string, dflt: number): number {
  const v = Number(process.env[name])
  return Number.isSafeInteger(v) && v >= 100 ? v : dflt
}

/** Policy, audit and gating state of one node. */
export class Governance {
  readonly cluster: ClusterFile
  readonly audit: AuditLog
  readonly #log: Logger
  readonly #dir: string
  readonly #self: string
  readonly #nodeIds: Set<string>
  /**
   * Extra node PeerIds admitted while a reshare order is pending (the union of the old and new
   * members; node/lifecycle/transition.ts). Mutable; empty otherwise.
   */
  transitionPeers = new Set<string>()
  #policy: Policy | undefined
  #text: string | undefined
  #host: Libp2p | undefined
  #ctx: NodeContext | undefined
  #timers: NodeJS.Timeout[] = []
  #witness = new Map<string, SignedHead>()
  #refusals = new Map<string, number>()
  #accepting: Promise<unknown> = Promise.resolve()
  /** Highest policy version ever in force here (0 = never); > 0 with no policy = lockdown. */
  #floor: number
  readonly #raiseFloor: (version: number) => Promise<void>
  readonly syncMs: number
  readonly headMs: number

  private constructor (o: GovernanceOptions, audit: AuditLog, policy: Policy | undefined, text: string | undefined, floor: number) {
    this.cluster = o.cluster; this.audit = audit; this.#log = o.log; this.#dir = o.dataDir; this.#self = o.peerId
    this.#nodeIds = new Set(o.cluster.nodes.map(n => n.peerId))
    this.#policy = policy; this.#text = text
    this.#floor = floor; this.#raiseFloor = o.floor.raise
    this.syncMs = o.syncMs ?? envMs('KEYMESH_POLICY_SYNC_MS', 5_000)
    this.headMs = Math.min(o.headMs ?? envMs('KEYMESH_AUDIT_HEAD_MS', 30_000), 60_000)
  }

  /**
   * Loads DATA/policy.json (if any) and opens DATA/audit.log. Throws KeymeshError: BAD_INPUT when
   * the stored policy does not verify against the cluster file, INTERNAL when the audit log cannot
   * be opened.
   */
  static async open (o: GovernanceOptions): Promise<Governance> {
    let policy: Policy | undefined
    let text: string | undefined
    const path = join(o.dataDir, POLICY_FILE)
    let raw: string | undefined
    try { raw = await readFile(path, 'utf8') } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e }
    if (raw !== undefined) {
      try {
        const sp = parseSignedPolicy(raw)
        policy = verifySignedPolicy(sp, o.cluster)
        text = encodeSignedPolicy(sp)
      } catch (e) {
        throw new KeymeshError(ErrorCode.BAD_INPUT, `stored policy ${path} does not verify against the cluster file: ${(e as Error).message}. Restore it from backup or from another node; refusing to start (falling back to the bootstrap rule would widen access)`, { cause: e })
      }
    }
    let floor = await o.floor.get()
    if (policy !== undefined && policy.policyVersion < floor) {
      throw new KeymeshError(ErrorCode.BAD_INPUT, `stored policy ${path} is v${policy.policyVersion} but this node already enforced v${floor}: the file was rolled back. Restore the current policy from another node or a backup; refusing to start`)
    }
    if (policy !== undefined && policy.policyVersion > floor) {
      await o.floor.raise(policy.policyVersion) // a node upgraded from before the floor existed
      floor = policy.policyVersion
    }
    const audit = await AuditLog.open(join(o.dataDir, AUDIT_LOG_FILE), o.peerId, o.cluster.clusterId, o.privateKey)
    const g = new Governance(o, audit, policy, text, floor)
    const state = policy !== undefined
      ? `policy v${policy.policyVersion}`
      : floor > 0 ? `LOCKDOWN: policy file missing, v${floor} was in force; refusing every client until a policy ≥ v${floor} arrives from another node` : 'no policy (bootstrap rule)'
    if (policy === undefined && floor > 0) o.log.warn('policy file missing: lockdown until anti-entropy restores it', { path, policyFloor: floor })
    await audit.appendEvent('node.start', state)
    return g
  }

  /** The policy in force (undefined = bootstrap). */
  get policy (): Policy | undefined { return this.#policy }
  /** Its signed canonical text. */
  get policyText (): string | undefined { return this.#text }
  get policyVersion (): number { return this.#policy?.policyVersion ?? 0 }

  /** Decides one request from the current policy. Never throws. */
  decide (subject: Subject, op: PolicyOp, ctx: DecisionContext = {}): Decision {
    if (this.#policy === undefined && this.#floor > 0 && subject.kind === 'client') {
      return { allow: false, role: 'unknown', reason: `lockdown: this node's policy file is missing (v${this.#floor} was in force); waiting for anti-entropy` }
    }
    return decide(this.#policy, this.cluster, subject, op, ctx)
  }

  /** Gater: may `peerId` connect (or be dialed)? Nodes always; clients per policy (or bootstrap). Never throws. */
  allowPeer (peerId: string): boolean {
    if (peerId === this.#self) return false
    if (this.#nodeIds.has(peerId) || this.transitionPeers.has(peerId)) return true
    const d = this.decide({ peerId, kind: 'client' }, 'connect')
    if (!d.allow) this.#recordRefusedConnection(peerId, d.reason, d.role)
    return d.allow
  }

  /**
   * Records a request the RPC server refused before any handler ran (malformed frame, node-only
   * operation, per-peer limit). Rate-limited per (peer, code) to one per second. Never throws.
   */
  recordServerRefusal (peerId: string, op: string, code: string, reason: string): void {
    const key = `${peerId} ${code}`
    const now = Date.now()
    const last = this.#refusals.get(key)
    if (last !== undefined && now - last < 1_000) return
    if (this.#refusals.size > 10_000) this.#refusals.clear()
    this.#refusals.set(key, now)
    const d = this.decide({ peerId, kind: this.#nodeIds.has(peerId) ? 'node' : 'client' }, 'connect')
    this.audit.appendRequest({ peer: peerId, role: d.role, op, decision: code === 'NOT_AUTHORIZED' ? 'deny' : 'error', code, reason }).catch((e: unknown) => {
      this.#log.error('audit append failed for a refused request', { code: errorCode(e) })
    })
  }

  /**
   * Records a connection refused by the gater (at most one record per peer per
   * REFUSAL_RECORD_INTERVAL_MS, so a dial storm cannot flood the log). The gater cannot wait for
   * the append; the connection is refused either way.
   */
  #recordRefusedConnection (peerId: string, reason: string, role: string): void {
    const now = Date.now()
    const last = this.#refusals.get(peerId)
    if (last !== undefined && now - last < REFUSAL_RECORD_INTERVAL_MS) return
    if (this.#refusals.size > 10_000) this.#refusals.clear()
    this.#refusals.set(peerId, now)
    this.audit.appendRequest({ peer: peerId, role, op: 'connect', decision: 'deny', reason }).catch((e: unknown) => {
      this.#log.error('audit append failed for a refused connection', { code: errorCode(e) })
    })
  }

  /** Name of a policy identity that is not in the cluster file (for the RPC server's caller lookup). Never throws. */
  identityName (peerId: string): string | undefined {
    return this.#policy === undefined ? undefined : identityOf(this.#policy, peerId)?.name
  }

  /** Appends a request record. Throws KeymeshError (fail closed: the caller refuses the request). */
  async record (f: RequestFields): Promise<void> { await this.audit.appendRequest(f) }

  /**
   * Takes a signed policy document. Resolves {accepted:true} for a newer valid document (stored,
   * in force, pushed to the other nodes, stale connections closed), {accepted:false} for the same
   * document again. Throws KeymeshError: BAD_INPUT (malformed, wrong cluster, unknown admin, node
   * enrolled), VERIFICATION_FAILED (bad or too few signatures), CONFLICT (rollback: lower version,
   * or the same version with different content). Nothing changes on a throw.
   */
  async accept (text: string, from: string): Promise<{ accepted: boolean, policyVersion: number }> {
    const run = async (): Promise<{ accepted: boolean, policyVersion: number }> => {
      const sp = parseSignedPolicy(text)
      const policy = verifySignedPolicy(sp, this.cluster)
      const canon = encodeSignedPolicy(sp)
      const cur = this.policyVersion
      if (policy.policyVersion < Math.max(cur, this.#floor)) throw new KeymeshError(ErrorCode.CONFLICT, `policy v${policy.policyVersion} is older than v${Math.max(cur, this.#floor)} in force: rollback refused`)
      if (policy.policyVersion === cur) {
        if (this.#policy !== undefined && JSON.stringify(policy) === JSON.stringify(this.#policy)) return { accepted: false, policyVersion: cur }
        throw new KeymeshError(ErrorCode.CONFLICT, `a different policy v${cur} is already in force: publish a higher policyVersion`)
      }
      await this.#writePolicy(canon)
      await this.#raiseFloor(policy.policyVersion)
      this.#floor = Math.max(this.#floor, policy.policyVersion)
      await this.audit.appendEvent('policy.accepted', `v${policy.policyVersion} (was v${cur}) from ${from}`)
      this.#policy = policy; this.#text = canon
      this.#log.info('policy accepted', { policyVersion: policy.policyVersion, previous: cur, from })
      // Close connections of peers no longer allowed shortly after, so that the response to the
      // push itself (possibly from a peer the new policy no longer admits) still goes out.
      setTimeout(() => { this.#closeDisallowed() }, CLOSE_DELAY_MS).unref()
      this.#pushToNodes(canon)
      return { accepted: true, policyVersion: policy.policyVersion }
    }
    const p = this.#accepting.then(run, run)
    this.#accepting = p.catch(() => {})
    return await p
  }

  async #writePolicy (text: string): Promise<void> {
    const path = join(this.#dir, POLICY_FILE)
    const tmp = `${path}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try { await fh.writeFile(text); await fh.sync() } finally { await fh.close() }
    await rename(tmp, path)
    const d = await open(this.#dir, 'r')
    try { await d.sync() } catch { /* some filesystems refuse directory fsync */ } finally { await d.close() }
  }

  #closeDisallowed (): void {
    const host = this.#host
    if (host === undefined) return
    for (const c of host.getConnections()) {
      const pid = c.remotePeer.toString()
      if (!this.allowPeer(pid)) {
        this.#log.info('closing connection of a peer no longer allowed', { peer: pid })
        c.abort(new Error('peer no longer allowed by policy'))
      }
    }
  }

  #pushToNodes (text: string): void {
    const ctx = this.#ctx
    if (ctx === undefined) return
    for (const n of this.cluster.nodes) {
      if (n.peerId === this.#self) continue
      ctx.peers.call(n.index, 'policy.push', { policy: text }, { ttlMs: 5_000 }).catch((e: unknown) => {
        this.#log.debug('policy push to node failed', { index: n.index, code: errorCode(e) })
      })
    }
  }

  /** One anti-entropy pull from node `index`. Never throws. */
  async pull (index: number): Promise<void> {
    const ctx = this.#ctx
    if (ctx === undefined) return
    try {
      const res = await ctx.peers.call(index, 'policy.get', { have: this.policyVersion }, { ttlMs: Math.min(this.syncMs, 5_000) })
      const node = this.cluster.nodes[index - 1]
      if (res.head !== undefined && node !== undefined && res.head.node === node.peerId && verifyHeadSig(this.cluster.clusterId, res.head)) {
        const old = this.#witness.get(node.peerId)
        if (old === undefined || old.seq < res.head.seq) this.#witness.set(node.peerId, res.head)
      }
      if (res.policy !== undefined && res.policyVersion > this.policyVersion) {
        await this.accept(res.policy, `node ${index} (anti-entropy)`).catch((e: unknown) => {
          this.#log.warn('policy from a node refused', { index, code: errorCode(e), error: e as Error })
        })
      }
    } catch (e) {
      this.#log.debug('anti-entropy pull failed', { index, code: errorCode(e) })
    }
  }

  /** Other nodes' latest signed heads (witnesses for our next head). Never throws. */
  witnesses (): SignedHead[] { return [...this.#witness.values()] }

  /** Signs an audit head now if anything was appended. Throws KeymeshError. */
  async signHead (): Promise<SignedHead | undefined> { return await this.audit.signHead(this.witnesses()) }

  /** Starts the timers and connection hooks once the context and host exist. Never throws. */
  attach (ctx: NodeContext, host: Libp2p): void {
    registry.set(ctx, this)
    this.#ctx = ctx; this.#host = host
    const others = this.cluster.nodes.filter(n => n.peerId !== this.#self)
    const sync = (): void => { for (const n of others) void this.pull(n.index) }
    host.addEventListener('peer:connect', (ev) => {
      const pid = ev.detail.toString()
      const n = others.find(x => x.peerId === pid)
      if (n !== undefined) void this.pull(n.index)
    })
    this.#timers.push(setInterval(sync, this.syncMs))
    this.#timers.push(setInterval(() => {
      this.signHead().catch((e: unknown) => { this.#log.error('audit head signing failed', { error: e as Error }) })
    }, this.headMs))
    for (const t of this.#timers) t.unref()
    setTimeout(sync, 200).unref()
  }

  /** Stops the timers, records the stop, signs a final head and closes the log. Never throws. */
  async close (): Promise<void> {
    for (const t of this.#timers.splice(0)) clearInterval(t)
    await this.#accepting
    await this.audit.appendEvent('node.stop', 'shutdown').catch(() => {})
    await this.audit.close(this.witnesses())
  }
}

/** The Subject of a caller. Never throws. */
export function subjectOf (caller: Caller): Subject { return { peerId: caller.peerId, kind: caller.kind } }

/** Throws NotAuthorizedError with the decision's reason (the peer sees only the code). */
export function refuse (op: string, d: Decision): never {
  throw new NotAuthorizedError(`${op}: ${d.reason}`)
}
