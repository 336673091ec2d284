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
 * A key set of a given epoch never changes, so a request for a known epoch (deploy of an existing
 * release) is served from the cache without network. A request for the current epoch always asks
 * the nodes, and so learns of a new epoch as soon as k nodes serve it; the new epoch is then cached.
 * Cached bytes are decoded as strictly as network bytes (they are local files, not proofs).
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { homedir } from 'node:os'
import { BadInputError, ErrorCode } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { toHex } from '../protocol/bytes.ts'
import { decodeKeySet, encodeKeySet } from '../protocol/keyset.ts'
import type { KeySet } from '../protocol/keyset.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { atomicWriteFile, ensureDir, readOwnFile } from './fsutil.ts'
import type { ClientTransport } from './transport.ts'
import { failureOf, quorumError } from './quorum.ts'

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
 * agreement wins. Uses/updates the cache when `cacheDir` is set.
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
  const graceMs = opts.graceMs ?? 150
  const ctl = new AbortController()
  const failures: NodeFailure[] = []
  const groups = new Map<string, { bytes: Uint8Array, nodes: number[] }>()
  let settled = 0
  const n = cluster.nodes.length

  const ks = await new Promise<KeySet | undefined>((resolve) => {
    let graceTimer: NodeJS.Timeout | undefined
    const deadline = setTimeout(() => finish(), deadlineMs)
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      clearTimeout(deadline)
      if (graceTimer !== undefined) clearTimeout(graceTimer)
      ctl.abort()
      resolve(pick())
    }
    // Among groups with ≥ k agreeing nodes, the newest epoch that decodes and matches the cluster.
    const pick = (): KeySet | undefined => {
      const candidates: KeySet[] = []
      for (const g of groups.values()) {
        if (g.nodes.length < k) continue
        try {
          const d = decodeKeySet(g.bytes)
          checkKeySetMatchesCluster(d, cluster)
          if (opts.epoch !== undefined && d.epoch !== opts.epoch) continue
          candidates.push(d)
        } catch (err) {
          for (const i of g.nodes) failures.push({ index: i, code: ErrorCode.VERIFICATION_FAILED, detail: `served an invalid key set (${(err as Error).message})` })
        }
      }
      candidates.sort((a, b) => b.epoch - a.epoch)
      return candidates[0]
    }
    const haveQuorum = (): boolean => [...groups.values()].some(g => g.nodes.length >= k)
    for (const node of cluster.nodes) {
      const body = opts.epoch === undefined ? {} : { epoch: opts.epoch }
      t.call(node.index, 'keyset.get', body, { timeoutMs: deadlineMs, signal: ctl.signal }).then((res) => {
        const key = toHex(res.keySet)
        const g = groups.get(key) ?? { bytes: res.keySet, nodes: [] }
        g.nodes.push(node.index)
        groups.set(key, g)
      }, (err: unknown) => {
        if (!done) failures.push(failureOf(node.index, err))
      }).finally(() => {
        settled++
        if (settled === n) finish()
        else if (graceTimer === undefined && haveQuorum()) graceTimer = setTimeout(finish, graceMs)
      })
    }
  })
  if (ks !== undefined) {
    if (opts.cacheDir !== undefined) await writeCachedKeySet(opts.cacheDir, ks)
    return ks
  }
  // Explain the failure: nodes that answered but disagreed are listed too.
  const agreeing = Math.max(0, ...[...groups.values()].map(g => g.nodes.length))
  if (groups.size > 1) {
    for (const g of groups.values()) {
      if (g.nodes.length < k) for (const i of g.nodes) failures.push({ index: i, code: ErrorCode.CONFLICT, detail: `served a key set that fewer than ${k} nodes agree on` })
    }
  }
  failures.sort((a, b) => a.index - b.index)
  throw quorumError(k, agreeing, failures, n)
}

