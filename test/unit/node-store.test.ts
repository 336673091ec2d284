/**
 * Node store and storage key: sealing bound to the store key name, wrong passphrase detection,
 * atomic commitEpoch, DKG progress with encrypted `secret:` entries, no re-initialisation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { LevelNodeStore } from '../../node/store.ts'
import { StorageKey, createStorageKey, unlockStorageKey } from '../../node/storage-key.ts'
import { shareKey } from '../../node/store-layout.ts'
import { encodeKeySet, keySetId } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { BASE, L } from '../../protocol/group.ts'
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'keymesh-store-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

/** A structurally valid key set (t=2, n=3) from fixed polynomials a0 + a1·x. */
function keySet (epoch: number, seed: bigint, delta = 0n): KeySet {
  // delta moves the degree-1 coefficient only: the same group keys, another generation (a refresh).
  const pk = (a0: bigint, a1r: bigint): KeySet['wrap'] => { const a1 = a1r + delta; return {
    commitments: [BASE.multiply(a0), BASE.multiply(a1)],
    verifyingShares: [1n, 2n, 3n].map(i => BASE.multiply((a0 + a1 * i) % L))
  } }
  return { version: 1, clusterId: 'ab'.repeat(16), epoch, threshold: 2, n: 3, wrap: pk(seed, seed + 1n), sign: pk(seed + 2n, seed + 3n) }
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p } catch (e) { return e instanceof KeymeshError ? e.code : 'foreign' } return 'OK'
}

describe('storage key', () => {
  it('derives from a passphrase, detects a wrong one, and binds sealed values to their name', async () => {
    const pass = join(dir, 'p1')
    await writeFile(pass, 'a long enough passphrase\n', { mode: 0o600 })
    const params = join(dir, 'sk1.json')
    const k1 = await createStorageKey({ kind: 'passphrase-file', path: pass }, params, { logN: 15 })
    const sealed = k1.seal('share/x', new Uint8Array([1, 2, 3]))
    expect(await codeOf(createStorageKey({ kind: 'passphrase-file', path: pass }, params, { logN: 15 }))).toBe(ErrorCode.CONFLICT)
    const k2 = await unlockStorageKey({ kind: 'passphrase-file', path: pass }, params)
    expect(k2.open('share/x', sealed)).toEqual(new Uint8Array([1, 2, 3]))
    expect(() => k2.open('share/y', sealed)).toThrow(/does not open/)
    const tampered = sealed.slice(); tampered[20] = (tampered[20] as number) ^ 1
    expect(() => k2.open('share/x', tampered)).toThrow(KeymeshError)
    await writeFile(pass, 'another long passphrase\n')
    expect(await codeOf(unlockStorageKey({ kind: 'passphrase-file', path: pass }, params))).toBe(ErrorCode.VERIFICATION_FAILED)
    expect(await codeOf(unlockStorageKey({ kind: 'insecure-dev' }, params))).toBe(ErrorCode.BAD_INPUT)
    const j = JSON.parse(await readFile(params, 'utf8')) as Record<string, unknown>
    expect(j).toMatchObject({ format: 'keymesh.storage-key', version: 1, kind: 'passphrase-file', scrypt: { logN: 15, r: 8, p: 1 } })
    k1.close()
    expect(() => k1.seal('a', new Uint8Array(1))).toThrow(KeymeshError)
  })

  it('reads a 32-byte key file (raw or hex) and refuses a short one', async () => {
    const kf = join(dir, 'key.bin')
    await writeFile(kf, Buffer.alloc(32, 9), { mode: 0o600 })
    const k = await createStorageKey({ kind: 'key-file', path: kf }, join(dir, 'sk2.json'))
    const s = k.seal('n', new Uint8Array([5]))
    await writeFile(kf, Buffer.alloc(32, 9).toString('hex') + '\n')
    expect((await unlockStorageKey({ kind: 'key-file', path: kf }, join(dir, 'sk2.json'))).open('n', s)).toEqual(new Uint8Array([5]))
    await writeFile(kf, Buffer.alloc(16, 9))
    expect(await codeOf(unlockStorageKey({ kind: 'key-file', path: kf }, join(dir, 'sk2.json')))).toBe(ErrorCode.BAD_INPUT)
  })
})

describe('level node store', () => {
  it('refuses to open a missing database (never creates one at start)', async () => {
    const key = new StorageKey(new Uint8Array(32).fill(1))
    expect(await codeOf(LevelNodeStore.open(join(dir, 'missing-db'), key))).toBe(ErrorCode.BAD_INPUT)
  })

  it('keeps a sealed policy floor that only rises and cannot be forged without the storage key', async () => {
    const path = join(dir, 'db-floor')
    const store = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(4)), { create: true })
    expect(await store.getPolicyFloor()).toBe(0)
    await store.raisePolicyFloor(3)
    await store.raisePolicyFloor(2) // never lowers
    expect(await store.getPolicyFloor()).toBe(3)
    await store.close()
    const raw = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    expect((await raw.get('meta/policy-floor'))?.length).toBeGreaterThan(4) // sealed, not a bare u32
    await raw.put('meta/policy-floor', new Uint8Array([0, 0, 0, 0])) // an attacker lowers it on disk
    await raw.close()
    const again = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(4)))
    expect([ErrorCode.BAD_INPUT, ErrorCode.VERIFICATION_FAILED]).toContain(await codeOf(again.getPolicyFloor()))
    await again.close()
  })

  it('commits an epoch atomically, seals shares at rest, and keeps DKG progress until commit', async () => {
    const path = join(dir, 'db1')
    const store = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(2)), { create: true })
    expect(await store.currentEpoch()).toBeUndefined()
    await store.putDkg('e1-a0', 'round1', new Uint8Array([1]))
    await store.putDkg('e1-a0', 'secret:state', new Uint8Array([42, 42, 42]))
    await store.putDkg('e10-a0', 'round1', new Uint8Array([9]))
    expect(await store.getDkg('e1-a0', 'secret:state')).toEqual(new Uint8Array([42, 42, 42]))
    expect(await store.listDkg('e1-a0')).toEqual(['round1', 'secret:state'])
    await expect(store.putDkg('e1-a0', 'bad/name', new Uint8Array(1))).rejects.toThrow(KeymeshError)
    const ks = keySet(1, 11n)
    await store.commitEpoch(1, ks, { index: 2, scalar: 123n }, { index: 2, scalar: 456n })
    expect(await store.currentEpoch()).toBe(1)
    expect(await store.getShare(1, 'wrap')).toEqual({ index: 2, scalar: 123n })
    expect(await store.getShare(1, 'sign')).toEqual({ index: 2, scalar: 456n })
    expect(await store.getKeySetBytes(1)).toEqual(encodeKeySet(ks))
    expect(await store.getKeySetId(1)).toMatch(/^[0-9a-f]{64}$/)
    expect(await store.listDkg('e1-a0')).toEqual([])
    expect(await store.listDkg('e10-a0')).toEqual(['round1'])
    // idempotent for the same key set, CONFLICT for another
    await store.commitEpoch(1, ks, { index: 2, scalar: 123n }, { index: 2, scalar: 456n })
    expect(await codeOf(store.commitEpoch(1, keySet(1, 99n), { index: 2, scalar: 1n }, { index: 2, scalar: 2n }))).toBe(ErrorCode.CONFLICT)
    expect(await codeOf(store.commitEpoch(2, ks, { index: 2, scalar: 1n }, { index: 2, scalar: 2n }))).toBe(ErrorCode.BAD_INPUT)
    await store.close()

    // at rest: the share is sealed (no plaintext scalar bytes), and bound to its key name
    const raw = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    const sealed = await raw.get(shareKey(1, 'wrap'))
    expect(sealed?.length).toBe(1 + 12 + 34 + 16)
    await raw.put(shareKey(1, 'sign'), sealed as Uint8Array) // swap values: must not open
    await raw.close()
    const again = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(2)))
    expect(await again.getShare(1, 'wrap')).toEqual({ index: 2, scalar: 123n })
    expect(await codeOf(again.getShare(1, 'sign'))).toBe(ErrorCode.VERIFICATION_FAILED)
    await again.close()
    const wrongKey = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(3)))
    expect(await codeOf(wrongKey.getShare(1, 'wrap'))).toBe(ErrorCode.VERIFICATION_FAILED)
    await wrongKey.close()
  })

  it('replaces generations of several epochs in one batch, keeps every generation, refuses a changed group key', async () => {
    const path = join(dir, 'db-gen')
    const store = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(5)), { create: true })
    const k1 = keySet(1, 11n)
    const k2 = keySet(2, 21n)
    await store.commitEpoch(1, k1, { index: 2, scalar: 1n }, { index: 2, scalar: 2n })
    await store.commitEpoch(2, k2, { index: 2, scalar: 3n }, { index: 2, scalar: 4n })
    const id1 = keySetId(k1)
    expect(await store.getKeySetGeneration(1, id1)).toEqual(encodeKeySet(k1))
    expect(await store.getCurrent(2, 'sign')).toMatchObject({ keySetId: keySetId(k2), share: { index: 2, scalar: 4n } })
    await store.putDkg('f2-0123456789abcdef', 'secret:progress', new Uint8Array([7]))
    await store.putDkg('f2-0123456789abcdef', 'public', new Uint8Array([8]))
    const before = await store.getCurrent(1, 'wrap')
    const n1 = keySet(1, 11n, 5n)
    const n2 = keySet(2, 21n, 7n)
    // Refusals change nothing: a moved group key, another threshold/cluster, a missing epoch, mixed indices.
    const bad = [
      [{ keySet: keySet(1, 12n, 5n), wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }],
      [{ keySet: { ...n1, clusterId: 'cd'.repeat(16) }, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }],
      [{ keySet: { ...n1, epoch: 3 }, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }],
      [{ keySet: n1, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 3, scalar: 9n } }],
      [{ keySet: n1, wrapShare: { index: 4, scalar: 9n }, signShare: { index: 4, scalar: 9n } }],
      [{ keySet: n1, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }, { keySet: { ...n2, wrap: k1.wrap }, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }],
      [{ keySet: n1, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }, { keySet: n1, wrapShare: { index: 2, scalar: 9n }, signShare: { index: 2, scalar: 9n } }],
      []
    ]
    for (const entries of bad) expect(await codeOf(store.replaceGenerations(entries, 'f2-0123456789abcdef'))).toBe(ErrorCode.BAD_INPUT)
    expect(await store.getCurrent(1, 'wrap')).toEqual(before)
    expect(await store.listDkg('f2-0123456789abcdef')).toEqual(['public', 'secret:progress'])
    // A reader racing the commit sees one consistent (key set, share) pair, old or new.
    const racing = Array.from({ length: 20 }, async () => await store.getCurrent(1, 'wrap'))
    await store.replaceGenerations([
      { keySet: n1, wrapShare: { index: 2, scalar: 101n }, signShare: { index: 2, scalar: 102n } },
      { keySet: n2, wrapShare: { index: 2, scalar: 201n }, signShare: { index: 2, scalar: 202n } }
    ], 'f2-0123456789abcdef')
    for (const r of await Promise.all(racing)) {
      expect([[id1, 1n], [keySetId(n1), 101n]]).toContainEqual([r?.keySetId, r?.share.scalar])
    }
    expect(await store.getKeySetBytes(1)).toEqual(encodeKeySet(n1))
    expect(await store.getKeySetId(2)).toBe(keySetId(n2))
    expect(await store.getShare(1, 'wrap')).toEqual({ index: 2, scalar: 101n })
    expect(await store.getShare(2, 'sign')).toEqual({ index: 2, scalar: 202n })
    expect(await store.getCurrent(2, 'wrap')).toEqual({ keySet: n2, keySetId: keySetId(n2), share: { index: 2, scalar: 201n } })
    expect(await store.currentEpoch()).toBe(2)
    // Progress gone; only the public result record remains (u16 E ‖ E × (u32 epoch ‖ keySetId)).
    expect(await store.listDkg('f2-0123456789abcdef')).toEqual(['result'])
    expect(Buffer.from(await store.getDkg('f2-0123456789abcdef', 'result') as Uint8Array).toString('hex')).toBe('0002' + '00000001' + keySetId(n1) + '00000002' + keySetId(n2))
    // Both generations stay fetchable; an unknown id is undefined; a malformed one is refused.
    expect(await store.getKeySetGeneration(1, id1)).toEqual(encodeKeySet(k1))
    expect(await store.getKeySetGeneration(1, keySetId(n1))).toEqual(encodeKeySet(n1))
    expect(await store.getKeySetGeneration(2, keySetId(k2))).toEqual(encodeKeySet(k2))
    expect(await store.getKeySetGeneration(2, id1)).toBeUndefined()
    expect(await codeOf(store.getKeySetGeneration(1, 'AB'.repeat(32)))).toBe(ErrorCode.BAD_INPUT)
    // The old generation's id can no longer be committed by commitEpoch (a different key set).
    expect(await codeOf(store.commitEpoch(1, k1, { index: 2, scalar: 1n }, { index: 2, scalar: 2n }))).toBe(ErrorCode.CONFLICT)
    await store.close()
    // Persisted: a reopened store sees the new generation and the old shares are gone.
    const again = await LevelNodeStore.open(path, new StorageKey(new Uint8Array(32).fill(5)))
    expect(await again.getCurrent(1, 'sign')).toEqual({ keySet: n1, keySetId: keySetId(n1), share: { index: 2, scalar: 102n } })
    expect(await again.getKeySetGeneration(1, id1)).toEqual(encodeKeySet(k1))
    await again.close()
  })
})
