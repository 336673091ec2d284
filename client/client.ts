/**
 * `KeymeshClient`: one connected client of one cluster — the transport, the key-set cache and the
 * quorum operations (wrap, rewrap, batch rewrap, threshold sign, JWKS) behind one object.
 */
import { randomBytes } from 'node:crypto'
import { BadInputError, ErrorCode, KeymeshError, QuorumUnavailableError } from '../protocol/errors.ts'
import type { Membership } from '../protocol/membership.ts'
import { fetchNewerMembership, readCachedMembership, writeCachedMembership } from './membership.ts'
import type { KeySet } from '../protocol/keyset.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { parseClusterFile, MAX_CLUSTER_FILE_LEN } from '../protocol/cluster.ts'
import { validateLabel } from '../protocol/label.ts'
import type { Label } from '../protocol/label.ts'
import { wrap } from '../protocol/wrap.ts'
import type { Envelope } from '../protocol/envelope.ts'
import { jwksFromKeySets } from '../protocol/jws.ts'
import type { Jwks } from '../protocol/jws.ts'
import { DATA_KEY_LEN } from '../protocol/constants.ts'
import { ClientTransport } from './transport.ts'
import type { TransportOptions } from './transport.ts'
import { loadIdentity } from './identity.ts'
import type { ClientIdentity } from './identity.ts'
import { defaultCacheDir, fetchKeySet, listCachedEpochs, readCachedKeySet, writeCachedKeySet } from './keyset-fetch.ts'
import { idOf, rememberGeneration } from './generations.ts'
import type { KeySetFetchOptions } from './keyset-fetch.ts'
import { rewrap, rewrapBatch } from './rewrap.ts'
import type { RewrapBatchResult, RewrapOptions, RewrapResult } from './rewrap.ts'
import { thresholdSign } from './sign.ts'
import type { SignOptions, SignResult } from './sign.ts'
import { readTextCapped } from './fsutil.ts'

/** Options of `KeymeshClient.connect`. */
export interface ConnectOptions extends TransportOptions {
  /** Key-set cache directory; `false` disables the cache. Default `defaultCacheDir()`. */
  cacheDir?: string | false
  /** Ask the nodes for a newer membership (cluster.get) at connect. Default false (learned on the first failure). */
  membership?: boolean
}

/** Reads and validates a cluster file. Throws BadInputError('cluster' …). */
export async function loadClusterFile (path: string): Promise<ClusterFile> {
  return parseClusterFile(await readTextCapped('cluster', path, MAX_CLUSTER_FILE_LEN))
}

/** A connected client. Close it with `close()`. */
/** Least time between two membership checks after failures that no CONFLICT explains (ms). */
export const MEMBERSHIP_RECHECK_MS = 10_000
/** Pause between membership checks while a CONFLICT says the membership moved (ms). */
export const MEMBERSHIP_VOUCH_RETRY_MS = 500

export class KeymeshClient {
  /** Key sets of past epochs are immutable: keep the ones already accepted in memory. */
  private readonly keySets = new Map<number, KeySet>()

  /** The membership in use (cluster file folded with the reshare orders learned so far). */
  private membership: Membership
  /** When the last failure-driven membership check ran (Date.now()). */
  private lastMembershipCheck = 0

  private constructor (readonly transport: ClientTransport, readonly cacheDir: string | undefined, private readonly genesis: ClusterFile, m: Membership) { this.membership = m }

  /** Revision of the membership in use (1 = the cluster file itself). */
  get membershipRevision (): number { return this.membership.revision }

  /**
   * Asks the reachable nodes for a newer membership (cluster.get) and adopts it: the transport
   * dials the new node list, generations with the new (k, n) are accepted. Returns true when a newer
   * revision was adopted. Never throws.
   */
  async refreshMembership (): Promise<boolean> {
    const r = await fetchNewerMembership(this.transport, this.genesis, this.membership)
    if (r.membership === undefined || r.membership.revision <= this.membership.revision) return false
    try { await this.transport.adoptMembership(r.membership.cluster) } catch { return false }
    this.membership = r.membership
    await writeCachedMembership(this.cacheDir, r.membership)
    return true
  }

  /**
   * Runs `fn`; when it fails, learns a newer membership and, if one was adopted, runs it once
   * more. A failure a membership change explains (a node answered CONFLICT: it serves another
   * generation or membership) always asks; any other failure (nodes unreachable: maybe removed)
   * asks at most once per MEMBERSHIP_RECHECK_MS, so that a cluster that is simply down does not
   * add a round of `cluster.get` to every failed operation. Bad input and refusals never ask.
   */
  private async withMembership<T> (fn: () => Promise<T>): Promise<T> {
    try { return await fn() } catch (err) {
      if (!(err instanceof KeymeshError) || err.code === ErrorCode.BAD_INPUT || err.code === ErrorCode.NOT_AUTHORIZED) throw err
      const moved = err.code === ErrorCode.CONFLICT || (err instanceof QuorumUnavailableError && err.failures.some(f => f.code === ErrorCode.CONFLICT))
      if (!moved && Date.now() - this.lastMembershipCheck < MEMBERSHIP_RECHECK_MS) throw err
      this.lastMembershipCheck = Date.now()
      // Right at a reshare commit fewer than k′ members may serve the new chain yet (a chain is
      // adopted only when k′ vouch for it): when CONFLICT says the membership moved, ask again
      // a few times, MEMBERSHIP_VOUCH_RETRY_MS apart.
      let adopted = await this.refreshMembership()
      for (let r = 0; !adopted && moved && r < 4; r++) {
        await new Promise(resolve => setTimeout(resolve, MEMBERSHIP_VOUCH_RETRY_MS))
        adopted = await this.refreshMembership()
      }
      if (!adopted) throw err
      return await fn()
    }
  }

  /**
   * Starts a dial-only host for `cluster` with `identity` (objects or file paths). Connections
   * are made lazily on the first call. Throws BadInputError for unusable files.
   */
  static async connect (cluster: ClusterFile | string, identity: ClientIdentity | string, opts: ConnectOptions = {}): Promise<KeymeshClient> {
    const c = typeof cluster === 'string' ? await loadClusterFile(cluster) : cluster
    const id = typeof identity === 'string' ? await loadIdentity(identity) : identity
    const cacheDir = opts.cacheDir === false ? undefined : (opts.cacheDir ?? defaultCacheDir())
    const m = await readCachedMembership(cacheDir, c)
    const t = await ClientTransport.create(m.cluster, id, opts)
    const client = new KeymeshClient(t, cacheDir, c, m)
    // Opt-in: start from the newest view any reachable node knows (otherwise learned on the first
    // failed operation, see withMembership; connections stay lazy).
    if (opts.membership === true) await client.refreshMembership()
    return client
  }

  /** The client's own cluster file (its trust anchor). */
  get clusterFile (): ClusterFile { return this.genesis }

  get cluster (): ClusterFile { return this.transport.cluster }
  get identity (): ClientIdentity { return this.transport.identity }

  /**
   * The key set of `epoch` (default: the newest with k-agreement), from the cache or from ≥ k
   * agreeing nodes. Throws QuorumUnavailableError, NotAuthorizedError.
   */
  async keySet (epoch?: number, opts: Omit<KeySetFetchOptions, 'epoch' | 'cacheDir'> = {}): Promise<KeySet> {
    const known = epoch === undefined ? undefined : this.keySets.get(epoch)
    if (known !== undefined) return known
    const ks = await fetchKeySet(this.transport, { ...opts, epoch, cacheDir: this.cacheDir })
    this.keySets.set(ks.epoch, ks)
    return ks
  }

  /**
   * Wraps `dataKey` (32 bytes, owned by the caller) under the cluster's current wrap key for the
   * context `label` (clusterId and epoch are filled in from the key set when omitted). No node
   * sees the key. Throws BadInputError (bad label or key), QuorumUnavailableError (key set).
   */
  async wrap (label: Omit<Label, 'clusterId' | 'epoch'> & Partial<Pick<Label, 'clusterId' | 'epoch'>>, dataKey: Uint8Array): Promise<{ envelope: Envelope, keySet: KeySet }> {
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LEN) throw new BadInputError('dataKey', `expected ${DATA_KEY_LEN} bytes`)
    const ks = await this.keySet(label.epoch)
    const l = validateLabel({ ...label, clusterId: label.clusterId ?? ks.clusterId, epoch: label.epoch ?? ks.epoch })
    if (l.clusterId !== ks.clusterId) throw new BadInputError('label.clusterId', 'does not match the cluster')
    return { envelope: wrap(ks, l, dataKey), keySet: ks }
  }

  /** A fresh random 32-byte data key (owned by the caller: zero it after use). */
  static newDataKey (): Uint8Array { return new Uint8Array(randomBytes(DATA_KEY_LEN)) }

  /**
   * Adopts a newer generation of a key set (share refresh) that k nodes vouched for — k partials
   * (or k FROST shares) combined under it — as this client's key set of its epoch, in memory and in
   * the on-disk cache. A generation seen from fewer than k nodes never gets here. Never throws.
   */
  async adoptGeneration (ks: KeySet): Promise<void> {
    const cur = this.keySets.get(ks.epoch)
    rememberGeneration(this.transport, ks)
    if (cur !== undefined && idOf(cur) === idOf(ks)) return
    this.keySets.set(ks.epoch, ks)
    if (this.cacheDir !== undefined) await writeCachedKeySet(this.cacheDir, ks)
  }

  /** Recovers an envelope's data key through k nodes (see rewrap.ts). Throws as `rewrap`. */
  async rewrap (e: Envelope, opts: RewrapOptions = {}): Promise<RewrapResult> {
    return await this.withMembership(async () => {
      const ks = await this.keySet(e.label.epoch)
      const r = await rewrap(this.transport, ks, e, opts)
      if (r.keySet !== ks) await this.adoptGeneration(r.keySet)
      return r
    })
  }

  /** Batch rewrap of envelopes of one epoch (see rewrap.ts). Throws as `rewrapBatch`, BadInputError for mixed epochs. */
  async rewrapBatch (es: Envelope[], opts: RewrapOptions = {}): Promise<RewrapBatchResult> {
    if (es.length === 0) return { dataKeys: [], failures: [] }
    const epoch = (es[0] as Envelope).label.epoch
    if (es.some(e => e.label.epoch !== epoch)) throw new BadInputError('envelopes', 'all envelopes of a batch must have the same epoch')
    return await this.withMembership(async () => {
      const ks = await this.keySet(epoch)
      const r = await rewrapBatch(this.transport, ks, es, opts)
      if (r.keySet !== undefined && r.keySet !== ks) await this.adoptGeneration(r.keySet)
      return r
    })
  }

  /**
   * Threshold Ed25519 signature by the cluster's sign key of `epoch` (default current). `keySet`
   * in the result is the generation the signers used. Throws as `thresholdSign`.
   */
  async sign (message: Uint8Array, opts: SignOptions & { epoch?: number } = {}): Promise<SignResult> {
    return await this.withMembership(async () => {
      const ks = await this.keySet(opts.epoch)
      const r = await thresholdSign(this.transport, ks, message, opts)
      if (r.keySet !== ks) await this.adoptGeneration(r.keySet)
      return r
    })
  }

  /**
   * JWKS of the cluster's sign keys: the current epoch (k-agreed now) plus every earlier epoch
   * in the key-set cache (each k-agreed when it was cached), so manifests signed before a key
   * rotation still verify. Throws QuorumUnavailableError.
   */
  async jwks (): Promise<Jwks> {
    const current = await this.keySet()
    const sets = new Map<number, KeySet>([[current.epoch, current]])
    if (this.cacheDir !== undefined) {
      for (const e of await listCachedEpochs(this.cacheDir, this.cluster.clusterId)) {
        if (e >= current.epoch) continue
        const ks = this.keySets.get(e) ?? await readCachedKeySet(this.cacheDir, this.cluster, e)
        if (ks !== undefined) sets.set(e, ks)
      }
    }
    return jwksFromKeySets([...sets.values()])
  }

  /** Closes every connection. Never throws. */
  async close (): Promise<void> { await this.transport.close() }
}
