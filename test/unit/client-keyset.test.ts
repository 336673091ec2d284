/**
 * Key-set k-agreement and cache (client/keyset-fetch.ts) with a scripted transport: the client must
 * accept only bytes that ≥ k nodes returned identically, that decode strictly and match the
 * cluster file; it must prefer the newest agreed epoch; and it must serve known epochs from cache.
 */
import { describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fetchKeySet } from '../../client/keyset-fetch.ts'
import type { ClientTransport } from '../../client/transport.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { ErrorCode, KeymeshError, QuorumUnavailableError } from '../../protocol/errors.ts'
import { encodeKeySet, keySetId } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { dealKeySet } from '../helpers/dealer.ts'

function clusterFor (ks: KeySet, k: number): ClusterFile {
  return {
    format: 'keymesh.cluster', version: 1, clusterId: ks.clusterId, threshold: k,
    nodes: Array.from({ length: ks.n }, (_, i) => ({ index: i + 1, peerId: `peer-${i + 1}`, addresses: [] })),
    admins: [], adminThreshold: 0, clients: [], createdAt: '2026-01-01T00:00:00Z'
  }
}

/** A transport whose node i answers keyset.get with `answers[i-1]` (bytes, or an error to throw). */
function scripted (cluster: ClusterFile, answers: Array<Uint8Array | Error>): ClientTransport {
  return {
    cluster,
    indices: cluster.nodes.map(n => n.index),
    call: async (index: number, op: string) => {
      if (op !== 'keyset.get') throw new Error(`unexpected op ${op}`)
      const a = answers[index - 1] as Uint8Array | Error
      if (a instanceof Error) throw a
      return { keySet: a }
    }
  } as unknown as ClientTransport
}

const good = dealKeySet(3, 5, 'client-keyset-good').ks
const forged = { ...dealKeySet(3, 5, 'client-keyset-forged').ks, clusterId: good.clusterId }
const down = new KeymeshError(ErrorCode.UNAVAILABLE, 'connection refused')

describe('fetchKeySet', () => {
  it('accepts the key set that k nodes agree on, not the one two liars serve', async () => {
    const t = scripted(clusterFor(good, 3), [encodeKeySet(forged), encodeKeySet(good), encodeKeySet(forged), encodeKeySet(good), encodeKeySet(good)])
    const ks = await fetchKeySet(t, { graceMs: 10 })
    expect(keySetId(ks)).toBe(keySetId(good))
  })

  it('fails with QuorumUnavailable when fewer than k agree, naming the disagreeing nodes', async () => {
    const t = scripted(clusterFor(good, 3), [encodeKeySet(good), encodeKeySet(good), encodeKeySet(forged), down, new Uint8Array([1, 2, 3])])
    const err = await fetchKeySet(t, { graceMs: 10 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    const q = err as QuorumUnavailableError
    expect(q.failures.map(f => f.index)).toEqual([1, 2, 3, 4, 5])
    expect(q.failures.find(f => f.index === 4)?.code).toBe(ErrorCode.UNAVAILABLE)
  })

  it('rejects a key set that k nodes agree on but that belongs to another cluster', async () => {
    const other = dealKeySet(3, 5, 'client-keyset-other-cluster').ks
    const t = scripted(clusterFor(good, 3), Array.from({ length: 5 }, () => encodeKeySet(other)))
    const err = await fetchKeySet(t, { graceMs: 10 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KeymeshError)
    expect((err as KeymeshError).code).toBe(ErrorCode.VERIFICATION_FAILED)
  })

  it('k nodes agreeing on a key set of another membership (a reshare the client has not learned): CONFLICT, nobody blamed', async () => {
    // The nodes committed a 3-of-4 generation; this client still holds the 3-of-5 cluster file.
    const moved = { ...dealKeySet(3, 4, 'client-keyset-moved').ks, clusterId: good.clusterId }
    const t = scripted(clusterFor(good, 3), [encodeKeySet(moved), encodeKeySet(moved), encodeKeySet(moved), down, down])
    const err = await fetchKeySet(t, { graceMs: 10, deadlineMs: 500 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    const q = err as QuorumUnavailableError
    for (const i of [1, 2, 3]) {
      expect(q.failures.find(f => f.index === i)?.code).toBe(ErrorCode.CONFLICT)
      expect(q.failures.find(f => f.index === i)?.detail).toMatch(/membership changed/)
    }
    expect(q.failures.some(f => f.code === ErrorCode.VERIFICATION_FAILED)).toBe(false)
  })

  it('prefers the newest epoch with k agreement', async () => {
    const e1 = dealKeySet(2, 5, 'client-keyset-epochs').ks
    const e2 = { ...dealKeySet(2, 5, 'client-keyset-epochs-2').ks, clusterId: e1.clusterId, epoch: 2 }
    const t = scripted(clusterFor(e1, 2), [encodeKeySet(e1), encodeKeySet(e1), encodeKeySet(e2), encodeKeySet(e2), encodeKeySet(e2)])
    expect((await fetchKeySet(t, { graceMs: 10 })).epoch).toBe(2)
  })

  it('serves a known epoch from the cache without asking any node', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keymesh-ks-cache-'))
    try {
      const c = clusterFor(good, 3)
      await fetchKeySet(scripted(c, Array.from({ length: 5 }, () => encodeKeySet(good))), { cacheDir: dir, graceMs: 10 })
      const offline = scripted(c, [down, down, down, down, down])
      expect(keySetId(await fetchKeySet(offline, { cacheDir: dir, epoch: 1 }))).toBe(keySetId(good))
      await expect(fetchKeySet(offline, { cacheDir: dir })).rejects.toBeInstanceOf(QuorumUnavailableError)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})
