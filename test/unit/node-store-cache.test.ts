/**
 * The store's in-memory share cache (node/store.ts "Share cache"): repeated getShare calls return
 * the stored value as fresh caller-owned objects, and every write path (putShare, commitEpoch)
 * replaces what later reads see, including a read racing a write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelNodeStore } from '../../node/store.ts'
import { StorageKey } from '../../node/storage-key.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { BASE, L } from '../../protocol/group.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'keymesh-store-cache-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

function keySet (epoch: number, seed: bigint): KeySet {
  const pk = (a0: bigint, a1: bigint): KeySet['wrap'] => ({
    commitments: [BASE.multiply(a0), BASE.multiply(a1)],
    verifyingShares: [1n, 2n, 3n].map(i => BASE.multiply((a0 + a1 * i) % L))
  })
  return { version: 1, clusterId: 'cd'.repeat(16), epoch, threshold: 2, n: 3, wrap: pk(seed, seed + 1n), sign: pk(seed + 2n, seed + 3n) }
}

describe('share cache', () => {
  it('serves repeated reads as fresh objects and follows putShare and commitEpoch', async () => {
    const store = await LevelNodeStore.open(join(dir, 'db'), new StorageKey(new Uint8Array(32).fill(3)), { create: true })
    try {
      expect(await store.getShare(1, 'wrap')).toBeUndefined()
      await store.commitEpoch(1, keySet(1, 5n), { index: 1, scalar: 10n }, { index: 1, scalar: 20n })
      const a = await store.getShare(1, 'wrap')
      expect(a).toEqual({ index: 1, scalar: 10n })
      // The caller owns the object: changing it does not change what the next caller gets.
      ;(a as { scalar: bigint }).scalar = 999n
      const b = await store.getShare(1, 'wrap')
      expect(b).toEqual({ index: 1, scalar: 10n })
      expect(b).not.toBe(a)
      expect(await store.getShare(1, 'sign')).toEqual({ index: 1, scalar: 20n })

      await store.putShare(1, 'wrap', { index: 1, scalar: 11n })
      expect(await store.getShare(1, 'wrap')).toEqual({ index: 1, scalar: 11n })

      // Same key set, new shares (idempotent commit path): later reads see the new shares.
      await store.commitEpoch(1, keySet(1, 5n), { index: 1, scalar: 12n }, { index: 1, scalar: 22n })
      expect(await store.getShare(1, 'wrap')).toEqual({ index: 1, scalar: 12n })
      expect(await store.getShare(1, 'sign')).toEqual({ index: 1, scalar: 22n })

      // A read racing a write never leaves the old value cached.
      await store.putShare(2, 'wrap', { index: 1, scalar: 30n })
      const racing = store.getShare(2, 'wrap')
      const write = store.putShare(2, 'wrap', { index: 1, scalar: 31n })
      await Promise.all([racing, write])
      expect(await store.getShare(2, 'wrap')).toEqual({ index: 1, scalar: 31n })
    } finally {
      await store.close()
    }
  })

  it('reopening the store reads the share from disk again', async () => {
    const path = join(dir, 'db2')
    const key = new Uint8Array(32).fill(4)
    const s1 = await LevelNodeStore.open(path, new StorageKey(key.slice()), { create: true })
    await s1.putShare(1, 'wrap', { index: 2, scalar: 77n })
    expect(await s1.getShare(1, 'wrap')).toEqual({ index: 2, scalar: 77n })
    await s1.close()
    const s2 = await LevelNodeStore.open(path, new StorageKey(key.slice()))
    try { expect(await s2.getShare(1, 'wrap')).toEqual({ index: 2, scalar: 77n }) } finally { await s2.close() }
  })
})
