/**
 * Key-set fetch with k-agreement, and the on-disk key-set cache.
 *
 * A client trusts a key set only when at least k distinct nodes of the cluster file — each
 * authenticated by its PeerId in the Noise handshake — returned byte-identical encodings of it, and
 * it decodes strictly (protocol/keyset.ts checks every point and the verifying shares against the
 * commitments) with the cluster file's cluster id, threshold and node count. Fewer than k corrupt
 * nodes therefore cannot make a client wrap to, or verify against, a key they chose (§2.1: k−1
 * nodes can do nothing).
 *
 * Cache: `<cacheDir>/keysets/<clusterId>/<epoch>.kks` holds the encoded key set of each epoch seen.
 * The group keys of an epoch never change, so a request for a known epoch (deploy of an existing
 * release) is served from the cache without network. A share refresh makes a new GENERATION of the
 * epoch's key set (same group keys, new verifying shares); the cached one stays a valid trust anchor
 * and the client learns the newer generation from the nodes' answers (client/generations.ts); it
 * replaces the cached one only when k nodes vouched for it. A request for the current epoch always asks
 * the nodes, and so learns of a new epoch as soon as k nodes serve it; the new epoch is then cached.
 * Cached bytes are decoded as strictly as network bytes (they are local files, not proofs).
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { homedir } from 'node:os'
import { BadInputError, ErrorCode } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { equalBytes, toHex } from '../protocol/bytes.ts'
import { decodeKeySet, encodeKeySet, signKey, wrapKey } from '../protocol/keyset.ts'
import type { KeySet } from '../protocol/keyset.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { atomicWriteFile, ensureDir, readOwnFile } from './fsutil.ts'
import type { ClientTransport } from './transport.ts'
import { failureOf, quorumError } from './quorum.ts'
import { reaskDelay } from './generations.ts'

/** How long a key-set fetch keeps re-asking nodes whose answers are split (a refresh or rotation committing). */
const REASK_BUDGET_MS = 3_000

/** Options of a key-set fetch. */
export interface KeySetFetchOptions {
  /** A specific epoch (default: the newest epoch that k nodes agree on). */
  epoch?: number
  /** Whole-operation deadline in ms (default 8000). */
  deadlineMs?: number
  /** Once k identical answers are in, wait this long for slower nodes that may serve a newer epoch (default 150). */
  graceMs?: number
  /** Cache directory; undefined disables the cache. */
  cacheDir?: string
}

/** The default cache directory: $KEYMESH_CACHE_DIR, else $XDG_CACHE_HOME/keymesh, else ~/.cache/keymesh. */
export function defaultCacheDir (): string {
  const env = process.env.KEYMESH_CACHE_DIR
  if (env !== undefined && env !== '') return env
  const xdg = process.env.XDG_CACHE_HOME
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'keymesh')
}

function cachePath (cacheDir: string, clusterId: string, epoch: number): string {
  return join(cacheDir, 'keysets', clusterId, `${epoch}.kks`)
}

/** Checks a decoded key set against the cluster file. Throws BadInputError('keySet' …). */
export function checkKeySetMatchesCluster (ks: KeySet, cluster: ClusterFile): void {
  if (ks.clusterId !== cluster.clusterId) throw new BadInputError('keySet.clusterId', `key set is for cluster ${ks.clusterId}, not ${cluster.clusterId}`)
  if (ks.threshold !== cluster.threshold) throw new BadInputError('keySet.threshold', `key set threshold ${ks.threshold} differs from the cluster file's ${cluster.threshold}`)
  if (ks.n !== cluster.nodes.length) throw new BadInputError('keySet.n', `key set has ${ks.n} nodes, the cluster file ${cluster.nodes.length}`)
}

/**
 * Reads a cached key set of `epoch`, or undefined when absent or unusable (a corrupt cache entry
 * is ignored and later overwritten, never trusted). Never throws.
 */
export async function readCachedKeySet (cacheDir: string, cluster: ClusterFile, epoch: number): Promise<KeySet | undefined> {
  try {
    const ks = decodeKeySet(await readOwnFile(cachePath(cacheDir, cluster.clusterId, epoch)))
    checkKeySetMatchesCluster(ks, cluster)
    if (ks.epoch !== epoch) return undefined
    return ks
  } catch {
    return undefined
  }
}

/** Epochs present in the cache for `clusterId`, ascending (at most 1024). Never throws. */
export async function listCachedEpochs (cacheDir: string, clusterId: string): Promise<number[]> {
  try {
    const names = await readdir(join(cacheDir, 'keysets', clusterId))
    return names.map(n => /^([1-9][0-9]{0,9})\.kks$/.exec(n)?.[1]).filter((x): x is string => x !== undefined)
      .map(Number).filter(e => e <= 0xffffffff).sort((a, b) => a - b).slice(0, 1024)
  } catch {
    return []
  }
}

/** Writes a key set to the cache (atomic). Cache failures are not fatal: returns false. */
export async function writeCachedKeySet (cacheDir: string, ks: KeySet): Promise<boolean> {
  try {
    const dir = join(cacheDir, 'keysets', ks.clusterId)
    await ensureDir(dir, 0o700)
    await atomicWriteFile(cachePath(cacheDir, ks.clusterId, ks.epoch), encodeKeySet(ks), { mode: 0o644 })
    return true
  } catch {
    return false
  }
}

/**
 * Fetches the key set from the nodes and accepts it only when ≥ k nodes returned identical bytes
 * that decode strictly and match the cluster file. Without `epoch`, the newest epoch with k
 * agreement wins. Uses/updates the cache when `cacheDir` is set. When every node answered but the
 * answers are split so that no key set has k (a share refresh or rotation committing right now),
 * the answering nodes are asked again after a short backoff, within the deadline.
 * Throws QuorumUnavailableError (fewer than k agreeing nodes within the deadline; each node's
 * failure listed), NotAuthorizedError when nodes refuse this client.
 */
export async function fetchKeySet (t: ClientTransport, opts: KeySetFetchOptions = {}): Promise<KeySet> {
  const cluster = t.cluster
  const k = cluster.threshold
  if (opts.epoch !== undefined && opts.cacheDir !== undefined) {
    const cached = await readCachedKeySet(opts.cacheDir, cluster, opts.epoch)
    if (cached !== undefined) return cached
  }
  const deadlineMs = opts.deadlineMs ?? 8_000
  const deadlineAt = Date.now() + deadlineMs
  const graceMs = opts.graceMs ?? 150
  const ctl = new AbortController()
  const failures: NodeFailure[] = []
  /** Each node's latest answer (hex of the key set bytes); a re-asked node's answer replaces it. */
  const answerOf = new Map<number, string>()
  const bytesOf = new Map<string, Uint8Array>()
  const groups = (): Map<string, number[]> => {
    const g = new Map<string, number[]>()
    for (const [i, key] of answerOf) g.set(key, [...(g.get(key) ?? []), i])
    return g
  }
  const invalid = new Set<string>()
  /** Key sets of THIS cluster with another (k, n): a reshare this client has not learned yet. */
  const moved = new Set<string>()
  // Among groups with ≥ k agreeing nodes, the newest epoch that decodes and matches the cluster.
  const pick = (): KeySet | undefined => {
    const candidates: KeySet[] = []
    for (const [key, nodes] of groups()) {
      if (nodes.length < k || invalid.has(key) || moved.has(key)) continue
      try {
        const d = decodeKeySet(bytesOf.get(key) as Uint8Array)
        checkKeySetMatchesCluster(d, cluster)
        if (opts.epoch !== undefined && d.epoch !== opts.epoch) continue
        candidates.push(d)
      } catch (err) {
        // k nodes agreeing on a key set of THIS cluster with another (k, n): they committed a
        // reshare this client has not learned yet. Not a lie: CONFLICT (the client learns the
        // membership and retries), never blame.
        const field = err instanceof BadInputError ? err.field : ''
        const isMoved = field === 'keySet.threshold' || field === 'keySet.n'
        ;(isMoved ? moved : invalid).add(key)
        for (const i of nodes) {
          failures.push(isMoved
            ? { index: i, code: ErrorCode.CONFLICT, detail: `serves a key set of another membership (${(err as Error).message}): the cluster's membership changed (reshare)` }
            : { index: i, code: ErrorCode.VERIFICATION_FAILED, detail: `served an invalid key set (${(err as Error).message})` })
        }
      }
    }
    candidates.sort((a, b) => b.epoch - a.epoch)
    return candidates[0]
  }
  /**
   * True when two answered key sets are generations of one epoch (same group keys: a share refresh,
   * or a reshare whose generation has another (k, n)) or different epochs (a rotation) of this
   * cluster — a split that resolves by itself. A forged or malformed key set never makes a split
   * worth waiting for, and a key set of another (k, n) counts only as a generation of the same keys.
   */
  const convergingSplit = (): boolean => {
    const sets: Array<{ ks: KeySet, moved: boolean }> = []
    for (const key of groups().keys()) {
      if (invalid.has(key)) continue
      try {
        const d = decodeKeySet(bytesOf.get(key) as Uint8Array)
        try { checkKeySetMatchesCluster(d, cluster) } catch (err) {
          const field = err instanceof BadInputError ? err.field : ''
          if (field !== 'keySet.threshold' && field !== 'keySet.n') throw err
          moved.add(key)
        }
        sets.push({ ks: d, moved: moved.has(key) })
      } catch { invalid.add(key) }
    }
    for (let i = 0; i < sets.length; i++) {
      for (let j = i + 1; j < sets.length; j++) {
        const { ks: a, moved: ma } = sets[i] as { ks: KeySet, moved: boolean }
        const { ks: b, moved: mb } = sets[j] as { ks: KeySet, moved: boolean }
        if (a.epoch !== b.epoch) { if (!ma && !mb) return true; continue }
        if (wrapKey(a).equals(wrapKey(b)) && equalBytes(signKey(a), signKey(b))) return true
      }
    }
    return false
  }
  const round = async (targets: number[]): Promise<KeySet | undefined> => await new Promise<KeySet | undefined>((resolve) => {
    let graceTimer: NodeJS.Timeout | undefined
    const deadline = setTimeout(() => finish(), Math.max(1, deadlineAt - Date.now()))
    let done = false
    let settled = 0
    const finish = (): void => {
      if (done) return
      done = true
      clearTimeout(deadline)
      if (graceTimer !== undefined) clearTimeout(graceTimer)
      resolve(pick())
    }
    const haveQuorum = (): boolean => [...groups().values()].some(g => g.length >= k)
    for (const index of targets) {
      const body = opts.epoch === undefined ? {} : { epoch: opts.epoch }
      t.call(index, 'keyset.get', body, { timeoutMs: Math.max(1, deadlineAt - Date.now()), signal: ctl.signal }).then((res) => {
        if (done) return
        const key = toHex(res.keySet)
        bytesOf.set(key, res.keySet)
        answerOf.set(index, key)
      }, (err: unknown) => {
        if (done) return
        answerOf.delete(index)
        failures.push(failureOf(index, err))
      }).finally(() => {
        settled++
        if (settled === targets.length) finish()
        else if (graceTimer === undefined && haveQuorum()) graceTimer = setTimeout(finish, graceMs)
      })
    }
  })
  let ks: KeySet | undefined
  try {
    ks = await round(cluster.nodes.map(n => n.index))
    const reaskUntil = Math.min(deadlineAt, Date.now() + REASK_BUDGET_MS)
    for (let r = 0; ks === undefined; r++) {
      // Split answers (no key set with k) between generations or epochs of THIS cluster, with
      // enough nodes answering: they are committing a refresh or rotation; ask them again shortly.
      const wait = reaskDelay(r)
      if (!convergingSplit() || answerOf.size < k || Date.now() + wait >= reaskUntil) break
      await new Promise(resolve => setTimeout(resolve, wait))
      ks = await round([...answerOf.keys()])
    }
  } finally {
    ctl.abort()
  }
  if (ks !== undefined) {
    if (opts.cacheDir !== undefined) await writeCachedKeySet(opts.cacheDir, ks)
    return ks
  }
  // Explain the failure: nodes that answered but disagreed are listed too.
  const gs = groups()
  const agreeing = Math.max(0, ...[...gs.values()].map(g => g.length))
  if (gs.size > 1) {
    for (const g of gs.values()) {
      if (g.length < k) for (const i of g) failures.push({ index: i, code: ErrorCode.CONFLICT, detail: `served a key set that fewer than ${k} nodes agree on` })
    }
  }
  const seen = new Set<number>()
  const unique = failures.filter(f => { if (seen.has(f.index)) return false; seen.add(f.index); return true })
  unique.sort((a, b) => a.index - b.index)
  throw quorumError(k, agreeing, unique, cluster.nodes.length)
}
