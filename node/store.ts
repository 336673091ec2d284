/**
 * The node store: a level 10 database under DATA/db (layout: node/store-layout.ts).
 *
 * Secrets (key shares, `secret:` DKG entries) are sealed with the storage key before they reach
 * the disk; public data (key sets, epoch, public DKG progress) is stored plain. `commitEpoch`
 * writes a finished DKG's key set, both shares and the new current epoch in ONE level batch (a
 * single atomic LevelDB write), so a crash leaves either all of it or none of it.
 *
 * Ownership: KeyShare values returned by getShare are fresh objects owned by the caller; the
 * decrypted plaintext buffer is zeroed before returning (the bigint cannot be wiped).
 *
 * Share cache: the first getShare of (epoch, kind) reads, opens (AES-256-GCM) and decodes the
 * sealed record; the decoded share is then kept in memory, owned by this store, until putShare /
 * commitEpoch replace it or close() drops it. Every `partial` request needs the share, and
 * re-opening it per request cost a LevelDB read, an AES-GCM open and a scalar decode each time
 * (~0.1 ms of node CPU per request; bench/suites/node.ts). It does not widen the exposure: the
 * storage key that opens every share is held in this same process for its whole lifetime.
 */
import { Level } from 'level'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { aint, concat, fromHex, u16, u32 } from '../protocol/bytes.ts'
import { decodeScalar, encodeScalar } from '../protocol/group.ts'
import { decodeKeySet, encodeKeySet, keySetId } from '../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../protocol/keyset.ts'
import { validateDkgSession, validateRefreshSession, validateReshareSession } from '../protocol/rpc.ts'
import { MAX_NODES } from '../protocol/constants.ts'
import {
  LAYOUT_VERSION, META_EPOCH, META_LAYOUT, META_POLICY_FLOOR, SECRET_PREFIX, dkgEpochPrefix, dkgKey, dkgPrefix,
  keySetGenKey, keySetKey, prefixEnd, shareKey
} from './store-layout.ts'
import type { KeyKind } from './store-layout.ts'
import type { StorageKey } from './storage-key.ts'

export type { KeyKind } from './store-layout.ts'

/** Typed, async access to the node's persistent state. */
export interface NodeStore {
  /** The key set of `epoch`, or undefined. Throws KeymeshError(INTERNAL) if the stored bytes are corrupt. */
  getKeySet: (epoch: number) => Promise<KeySet | undefined>
  /** The encoded key set of `epoch` (as served by keyset.get), or undefined. */
  getKeySetBytes: (epoch: number) => Promise<Uint8Array | undefined>
  /** keySetId of `epoch`'s key set (cached), or undefined. */
  getKeySetId: (epoch: number) => Promise<string | undefined>
  /** Stores a key set (public). Throws CONFLICT if a different key set is already stored for its epoch. */
  putKeySet: (keySet: KeySet) => Promise<void>
  /** The current (last committed) epoch, or undefined before the first DKG. */
  currentEpoch: () => Promise<number | undefined>
  /** Sets the current epoch. Throws BadInputError for an invalid epoch. */
  setCurrentEpoch: (epoch: number) => Promise<void>
  /** Highest policy version ever in force on this node (0 = never). Throws VERIFICATION_FAILED if the sealed value does not open. */
  getPolicyFloor: () => Promise<number>
  /** Raises the policy floor (never lowers it). */
  raisePolicyFloor: (version: number) => Promise<void>
  /** The decrypted share, or undefined. Throws VERIFICATION_FAILED if it does not open. */
  getShare: (epoch: number, kind: KeyKind) => Promise<KeyShare | undefined>
  /** Seals and stores a share. */
  putShare: (epoch: number, kind: KeyKind, share: KeyShare) => Promise<void>
  /** Opaque DKG progress bytes; names starting with `secret:` are sealed at rest. */
  getDkg: (session: string, name: string) => Promise<Uint8Array | undefined>
  putDkg: (session: string, name: string, value: Uint8Array) => Promise<void>
  /** Deletes every entry of one DKG session. */
  deleteDkg: (session: string) => Promise<void>
  /** Names stored for a DKG session (sorted). */
  listDkg: (session: string) => Promise<string[]>
  /**
   * Atomically writes the key set, both shares and current epoch = `epoch`, and deletes every
   * DKG session entry of that epoch — one level batch. Idempotent for the same key set; throws
   * KeymeshError(CONFLICT) if a different key set is already committed for `epoch`, and
   * BadInputError when keySet.epoch ≠ epoch or share indices disagree.
   */
  commitEpoch: (epoch: number, keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare) => Promise<void>
  /**
   * The encoded key set of generation `keySetId` of `epoch` (the current one included), or
   * undefined. Throws BadInputError for a malformed epoch or id.
   */
  getKeySetGeneration: (epoch: number, keySetId: string) => Promise<Uint8Array | undefined>
  /**
   * The current generation of `epoch` and this node's share of `kind` read as ONE consistent pair
   * (never a key set of one generation with the share of another, even while replaceGenerations
   * runs), or undefined when either is missing. Throws as getKeySet / getShare.
   */
  getCurrent: (epoch: number, kind: KeyKind) => Promise<{ keySet: KeySet, keySetId: string, share: KeyShare } | undefined>
  /**
   * Proactive refresh commit: for every entry, replaces the current key set of `keySet.epoch`
   * (recording the new generation under keysetgen/) and both shares, and deletes every entry of
   * DKG/refresh session `session` (if given), leaving only its public result record
   * `dkg/<session>/result` = u16 E ‖ E × (u32 epoch ‖ new keySetId (32)) in entry order — ONE level
   * batch for all of it (a node that crashes right after can tell the session committed). Throws
   * KeymeshError(BAD_INPUT) unless each entry's epoch has a key set here with the same clusterId,
   * epoch, threshold, n and group keys (wrap/sign commitments[0]), the share indices agree and lie
   * in 1..n, and no epoch appears twice.
   */
  replaceGenerations: (entries: Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, session?: string) => Promise<void>
  /**
   * Reshare commit (docs/PROTOCOL.md §11.8): like replaceGenerations, but threshold, n and this
   * node's share index may change, and the epoch need not exist here yet (a joining node). For
   * every entry: the new key set becomes current, the base (outgoing) and new generations are
   * recorded under keysetgen/, both shares are replaced; the current epoch becomes the highest
   * entry epoch when higher; every entry of session `session` is deleted except its public result
   * record, written as `result` — ONE level batch. Throws KeymeshError(BAD_INPUT) when an entry's
   * group keys or clusterId differ from its base, the stored current key set (if any) is not the
   * base, share indices disagree or lie outside 1..n, or an epoch appears twice.
   */
  commitReshare: (entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, session: string, result: Uint8Array) => Promise<void>
  /**
   * Deletes every share of every epoch (and every entry of session `session`, except its
   * `result` record) in ONE batch: a node removed by a reshare. Key sets stay (public). Throws the level error.
   */
  deleteAllShares: (session?: string) => Promise<void>
  /** Closes the database and zeroes the storage key. */
  close: () => Promise<void>
}

const DKG_NAME_RE = /^[A-Za-z0-9._:-]{1,128}$/
const MAX_DKG_VALUE = 4 * 1024 * 1024

function encodeShare (s: KeyShare): Uint8Array {
  aint('share.index', s.index, 1, MAX_NODES)
  return concat(u16(s.index), encodeScalar(s.scalar))
}

function decodeShare (field: string, b: Uint8Array): KeyShare {
  if (b.length !== 34) throw new BadInputError(field, 'expected a 34-byte share record')
  const index = aint(`${field}.index`, (b[0] as number) << 8 | (b[1] as number), 1, MAX_NODES)
  return { index, scalar: decodeScalar(`${field}.scalar`, b.subarray(2)) }
}

/** A DKG session `e<epoch>-a<attempt>`, a refresh session `f<epoch>-<16 hex>` or a reshare session `s<epoch>-<16 hex>`. Throws BadInputError('session'). */
function checkSession (session: string): void {
  if (typeof session === 'string' && session.startsWith('f')) validateRefreshSession('session', session)
  else if (typeof session === 'string' && session.startsWith('s')) validateReshareSession('session', session)
  else validateDkgSession('session', session)
}

const KEYSET_ID_RE = /^[0-9a-f]{64}$/

function checkDkgName (session: string, name: string): void {
  checkSession(session)
  if (typeof name !== 'string' || !DKG_NAME_RE.test(name)) throw new BadInputError('dkg.name', 'expected [A-Za-z0-9._:-]{1,128}')
}

function notFoundToUndefined (e: unknown): undefined {
  // level 10 get() resolves undefined for a missing key; keep this for older semantics.
  if ((e as { code?: string }).code === 'LEVEL_NOT_FOUND') return undefined
  throw e
}

/**
 * Turns a LevelDB read failure (corrupt block, bad checksum, I/O error) into an error that names
 * the database and says what to do. A node must never carry on over a corrupt store, nor
 * re-initialise it: it may hold the only copy of a share this node is responsible for.
 */
function storeReadError (path: string, e: unknown): KeymeshError {
  const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message
  return new KeymeshError(ErrorCode.INTERNAL, `the database ${path} cannot be read (${cause}). It is damaged: stop this node, restore its data directory from backup (or rebuild its shares from a recovery kit); do not re-initialise a node that holds shares`, { cause: e })
}

/** Level-backed NodeStore. */
/** One operation of an atomic level batch. */
type BatchOp = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

export class LevelNodeStore implements NodeStore {
  readonly #db: Level<string, Uint8Array>
  readonly #key: StorageKey
  readonly #keySets = new Map<number, { bytes: Uint8Array, ks: KeySet, id: string }>()
  /** Opened shares by store key (see "Share cache" above); owned by this store. */
  readonly #shares = new Map<string, KeyShare>()
  /** Bumped on every share write: a read that overlapped a write does not fill the cache. */
  #shareGen = 0
  /**
   * Sequence lock of key set + share writes (seqlock): odd while a commit batch is in flight,
   * bumped before and after it. `getCurrent` retries when it changed during its reads.
   */
  #writeSeq = 0
  #writing: Promise<void> = Promise.resolve()

  readonly #path: string

  private constructor (db: Level<string, Uint8Array>, key: StorageKey, path: string) {
    this.#db = db
    this.#key = key
    this.#path = path
  }

  /**
   * Opens (or, with `create`, creates) the store at `path`. Without `create` a missing database is
   * an error (never silently re-initialised). Throws KeymeshError(BAD_INPUT) naming the path.
   */
  static async open (path: string, key: StorageKey, opts: { create?: boolean } = {}): Promise<LevelNodeStore> {
    const create = opts.create === true
    const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view', createIfMissing: create, errorIfExists: create })
    try {
      await db.open()
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message
      throw new KeymeshError(ErrorCode.BAD_INPUT, create
        ? `cannot create the database ${path}: ${cause}`
        : `cannot open the database ${path}: ${cause}. Is another node process using this data directory, or is it missing? Restore it from backup; do not re-initialise a node that holds shares`, { cause: e })
    }
    const store = new LevelNodeStore(db, key, path)
    if (create) {
      await db.put(META_LAYOUT, new Uint8Array([LAYOUT_VERSION]))
    } else {
      let v: Uint8Array | undefined
      try { v = await db.get(META_LAYOUT).catch(notFoundToUndefined) } catch (e) { await db.close().catch(() => {}); throw storeReadError(path, e) }
      if (v === undefined || v.length !== 1 || v[0] !== LAYOUT_VERSION) {
        await db.close()
        throw new KeymeshError(ErrorCode.BAD_INPUT, `database ${path} has no keymesh layout marker (or an unknown layout version); it is not a keymesh node database or it is corrupt`)
      }
    }
    return store
  }

  async #get (k: string): Promise<Uint8Array | undefined> {
    let v: Uint8Array | undefined
    try { v = await this.#db.get(k).catch(notFoundToUndefined) } catch (e) { throw storeReadError(this.#path, e) }
    // level may hand back a Buffer; callers get a plain Uint8Array view of the same bytes.
    return v === undefined ? undefined : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  }

  async #cached (epoch: number): Promise<{ bytes: Uint8Array, ks: KeySet, id: string } | undefined> {
    const hit = this.#keySets.get(epoch)
    if (hit !== undefined) return hit
    const seq = this.#writeSeq
    const bytes = await this.#get(keySetKey(epoch))
    if (bytes === undefined) return undefined
    let ks: KeySet
    try { ks = decodeKeySet(bytes) } catch (e) {
      throw new KeymeshError(ErrorCode.INTERNAL, `stored key set of epoch ${epoch} is corrupt`, { cause: e })
    }
    const entry = { bytes, ks, id: keySetId(ks) }
    // Not cached when a commit overlapped this read (the value may be the outgoing generation).
    if (seq === this.#writeSeq && seq % 2 === 0) this.#keySets.set(epoch, entry)
    return entry
  }

  async getKeySet (epoch: number): Promise<KeySet | undefined> { return (await this.#cached(aint('epoch', epoch, 1, 0xffffffff)))?.ks }
  async getKeySetBytes (epoch: number): Promise<Uint8Array | undefined> { return (await this.#cached(aint('epoch', epoch, 1, 0xffffffff)))?.bytes }
  async getKeySetId (epoch: number): Promise<string | undefined> { return (await this.#cached(aint('epoch', epoch, 1, 0xffffffff)))?.id }

  async putKeySet (keySet: KeySet): Promise<void> {
    const bytes = encodeKeySet(keySet)
    const existing = await this.#cached(keySet.epoch)
    if (existing !== undefined) {
      if (Buffer.compare(Buffer.from(existing.bytes), Buffer.from(bytes)) !== 0) throw new KeymeshError(ErrorCode.CONFLICT, `a different key set is already stored for epoch ${keySet.epoch}`)
      return
    }
    await this.#db.put(keySetKey(keySet.epoch), bytes)
  }

  async currentEpoch (): Promise<number | undefined> {
    const v = await this.#get(META_EPOCH)
    if (v === undefined) return undefined
    if (v.length !== 4) throw new KeymeshError(ErrorCode.INTERNAL, 'stored current epoch is corrupt')
    return new DataView(v.buffer, v.byteOffset, 4).getUint32(0, false)
  }

  async setCurrentEpoch (epoch: number): Promise<void> {
    await this.#db.put(META_EPOCH, u32(aint('epoch', epoch, 1, 0xffffffff)))
  }

  async getPolicyFloor (): Promise<number> {
    const sealed = await this.#get(META_POLICY_FLOOR)
    if (sealed === undefined) return 0
    const v = this.#key.open(META_POLICY_FLOOR, sealed)
    if (v.length !== 4) throw new KeymeshError(ErrorCode.INTERNAL, 'stored policy floor is corrupt')
    return new DataView(v.buffer, v.byteOffset, 4).getUint32(0, false)
  }

  async raisePolicyFloor (version: number): Promise<void> {
    aint('policyVersion', version, 1, 0xffffffff)
    if (version <= await this.getPolicyFloor()) return
    await this.#db.put(META_POLICY_FLOOR, this.#key.seal(META_POLICY_FLOOR, u32(version)))
  }

  async getShare (epoch: number, kind: KeyKind): Promise<KeyShare | undefined> {
    const k = shareKey(aint('epoch', epoch, 1, 0xffffffff), kind)
    const hit = this.#shares.get(k)
    // A fresh object per call: callers own what they get (and cannot alter the cached entry).
    if (hit !== undefined) return { index: hit.index, scalar: hit.scalar }
    const gen = this.#shareGen
    const sealed = await this.#get(k)
    if (sealed === undefined) return undefined
    const plain = this.#key.open(k, sealed)
    let share: KeyShare
    try { share = decodeShare(k, plain) } finally { plain.fill(0) }
    // Not cached when a share write overlapped this read (the value may be the old one).
    if (gen === this.#shareGen) this.#shares.set(k, share)
    return { index: share.index, scalar: share.scalar }
  }

  async putShare (epoch: number, kind: KeyKind, share: KeyShare): Promise<void> {
    const k = shareKey(aint('epoch', epoch, 1, 0xffffffff), kind)
    const plain = encodeShare(share)
    this.#shareGen++
    this.#shares.delete(k)
    try { await this.#db.put(k, this.#key.seal(k, plain)) } finally { plain.fill(0); this.#shareGen++; this.#shares.delete(k) }
  }

  async getDkg (session: string, name: string): Promise<Uint8Array | undefined> {
    checkDkgName(session, name)
    const k = dkgKey(session, name)
    const v = await this.#get(k)
    if (v === undefined) return undefined
    return name.startsWith(SECRET_PREFIX) ? this.#key.open(k, v) : v
  }

  async putDkg (session: string, name: string, value: Uint8Array): Promise<void> {
    checkDkgName(session, name)
    if (!(value instanceof Uint8Array) || value.length > MAX_DKG_VALUE) throw new BadInputError('dkg.value', `expected at most ${MAX_DKG_VALUE} bytes`)
    const k = dkgKey(session, name)
    await this.#db.put(k, name.startsWith(SECRET_PREFIX) ? this.#key.seal(k, value) : value)
  }

  async #keysWithPrefix (prefix: string): Promise<string[]> {
    return await this.#db.keys({ gte: prefix, lt: prefixEnd(prefix) }).all()
  }

  async deleteDkg (session: string): Promise<void> {
    checkSession(session)
    const keys = await this.#keysWithPrefix(dkgPrefix(session))
    if (keys.length > 0) await this.#db.batch(keys.map(key => ({ type: 'del' as const, key })))
  }

  async listDkg (session: string): Promise<string[]> {
    checkSession(session)
    const p = dkgPrefix(session)
    return (await this.#keysWithPrefix(p)).map(k => k.slice(p.length))
  }

  async commitEpoch (epoch: number, keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare): Promise<void> {
    aint('epoch', epoch, 1, 0xffffffff)
    if (keySet.epoch !== epoch) throw new BadInputError('keySet.epoch', `expected ${epoch}`)
    if (wrapShare.index !== signShare.index) throw new BadInputError('share.index', 'wrap and sign shares have different indices')
    const bytes = encodeKeySet(keySet)
    const existing = await this.#cached(epoch)
    if (existing !== undefined && Buffer.compare(Buffer.from(existing.bytes), Buffer.from(bytes)) !== 0) {
      throw new KeymeshError(ErrorCode.CONFLICT, `a different key set is already committed for epoch ${epoch}`)
    }
    const wk = shareKey(epoch, 'wrap')
    const sk = shareKey(epoch, 'sign')
    const wp = encodeShare(wrapShare)
    const sp = encodeShare(signShare)
    const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = [
      { type: 'put', key: keySetKey(epoch), value: bytes },
      { type: 'put', key: keySetGenKey(epoch, keySetId(keySet)), value: bytes },
      { type: 'put', key: wk, value: this.#key.seal(wk, wp) },
      { type: 'put', key: sk, value: this.#key.seal(sk, sp) }
    ]
    wp.fill(0); sp.fill(0)
    const cur = await this.currentEpoch()
    if (cur === undefined || cur < epoch) ops.push({ type: 'put', key: META_EPOCH, value: u32(epoch) })
    for (const key of await this.#keysWithPrefix(dkgEpochPrefix(epoch))) ops.push({ type: 'del', key })
    await this.#commitBatch(ops, [epoch])
  }

  /**
   * Writes one batch of key set/share records under the seqlock and drops the caches of `epochs`
   * before and after it. Throws the level error.
   */
  async #commitBatch (ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }>, epochs: number[]): Promise<void> {
    const drop = (): void => {
      for (const e of epochs) { this.#keySets.delete(e); this.#shares.delete(shareKey(e, 'wrap')); this.#shares.delete(shareKey(e, 'sign')) }
    }
    // Writers are serialised so that the seqlock's odd/even protocol holds.
    const prev = this.#writing
    let release = (): void => {}
    this.#writing = new Promise<void>(resolve => { release = resolve })
    await prev
    this.#writeSeq++
    this.#shareGen++
    drop()
    try { await this.#db.batch(ops) } finally {
      drop()
      this.#shareGen++
      this.#writeSeq++
      release()
    }
  }

  async getKeySetGeneration (epoch: number, id: string): Promise<Uint8Array | undefined> {
    aint('epoch', epoch, 1, 0xffffffff)
    if (typeof id !== 'string' || !KEYSET_ID_RE.test(id)) throw new BadInputError('keySetId', 'expected 64 lowercase hex characters')
    const cur = await this.#cached(epoch)
    if (cur?.id === id) return cur.bytes
    const bytes = await this.#get(keySetGenKey(epoch, id))
    if (bytes === undefined) return undefined
    // Defence in depth: a record under the wrong id is corruption, never served.
    let ks: KeySet
    try { ks = decodeKeySet(bytes) } catch (e) { throw new KeymeshError(ErrorCode.INTERNAL, `stored key set generation ${id.slice(0, 16)}… of epoch ${epoch} is corrupt`, { cause: e }) }
    if (ks.epoch !== epoch || keySetId(ks) !== id) throw new KeymeshError(ErrorCode.INTERNAL, `stored key set generation ${id.slice(0, 16)}… of epoch ${epoch} does not match its id`)
    return bytes
  }

  async getCurrent (epoch: number, kind: KeyKind): Promise<{ keySet: KeySet, keySetId: string, share: KeyShare } | undefined> {
    aint('epoch', epoch, 1, 0xffffffff)
    for (;;) {
      const seq = this.#writeSeq
      if (seq % 2 === 1) { await this.#writing; continue }
      const ks = await this.#cached(epoch)
      const share = ks === undefined ? undefined : await this.getShare(epoch, kind)
      if (this.#writeSeq !== seq) continue
      if (ks === undefined || share === undefined) return undefined
      return { keySet: ks.ks, keySetId: ks.id, share }
    }
  }

  async replaceGenerations (entries: Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, session?: string): Promise<void> {
    if (!Array.isArray(entries) || entries.length === 0) throw new BadInputError('entries', 'expected at least one epoch')
    if (session !== undefined) checkSession(session)
    const { ops, epochs } = await this.#generationOps(entries.map(e => ({ ...e, base: undefined })))
    if (session !== undefined) {
      const result = [u16(epochs.length)]
      for (const { keySet } of entries) result.push(u32(keySet.epoch), fromHex('keySetId', keySetId(keySet), 32))
      ops.push(...await this.#sessionDoneOps(session, concat(...result)))
    }
    await this.#commitBatch(ops, epochs)
  }

  async commitReshare (entries: Array<{ keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }>, session: string, result: Uint8Array): Promise<void> {
    if (!Array.isArray(entries) || entries.length === 0) throw new BadInputError('entries', 'expected at least one epoch')
    checkSession(session)
    const { ops, epochs } = await this.#generationOps(entries)
    const cur = await this.currentEpoch()
    const top = Math.max(...epochs)
    if (cur === undefined || cur < top) ops.push({ type: 'put', key: META_EPOCH, value: u32(top) })
    ops.push(...await this.#sessionDoneOps(session, new Uint8Array(result)))
    await this.#commitBatch(ops, epochs)
  }

  /**
   * The batch operations installing a new generation per entry (key set as current and in the
   * generation records, both shares sealed), shared by refresh and reshare. `base` undefined =
   * refresh: the base is this node's current generation, and threshold and n must not change;
   * otherwise (reshare) `base` must be the current generation when the node has one (a joining node
   * has none) and (k, n) may change. Either way the group keys must equal the base's.
   * Throws BadInputError; the plaintext share encodings are zeroed before returning.
   */
  async #generationOps (entries: Array<{ keySet: KeySet, base: KeySet | undefined, wrapShare: KeyShare, signShare: KeyShare }>): Promise<{ ops: BatchOp[], epochs: number[] }> {
    const ops: BatchOp[] = []
    const epochs: number[] = []
    const plains: Uint8Array[] = []
    type P = KeySet['wrap']['commitments'][0]
    try {
      for (const [j, { keySet, base: given, wrapShare, signShare }] of entries.entries()) {
        const f = `entries[${j}]`
        const epoch = aint(`${f}.keySet.epoch`, keySet?.epoch, 1, 0xffffffff)
        if (epochs.includes(epoch)) throw new BadInputError(`${f}.keySet.epoch`, `epoch ${epoch} appears twice`)
        const old = await this.#cached(epoch)
        const refresh = given === undefined
        const what = refresh ? 'a refresh' : 'a reshare'
        if (refresh && old === undefined) throw new BadInputError(`${f}.keySet.epoch`, `no key set of epoch ${epoch} on this node to replace`)
        const base = given ?? (old as { ks: KeySet }).ks
        const baseId = refresh ? (old as { id: string }).id : keySetId(base)
        if (base.epoch !== epoch || base.clusterId !== keySet.clusterId) throw new BadInputError(`${f}.base`, 'base key set of another epoch or cluster')
        if (refresh && (keySet.threshold !== base.threshold || keySet.n !== base.n)) throw new BadInputError(`${f}.keySet.threshold`, 'threshold or n differ from the stored key set')
        if (!(keySet.wrap.commitments[0] as P).equals(base.wrap.commitments[0] as P)) throw new BadInputError(`${f}.keySet.wrap`, `the wrap group key differs from the base key set (${what} never changes it)`)
        if (!(keySet.sign.commitments[0] as P).equals(base.sign.commitments[0] as P)) throw new BadInputError(`${f}.keySet.sign`, `the sign group key differs from the base key set (${what} never changes it)`)
        if (old !== undefined && old.id !== baseId) throw new BadInputError(`${f}.base`, `the current key set of epoch ${epoch} here is not the reshared generation`)
        if (wrapShare.index !== signShare.index) throw new BadInputError(`${f}.share.index`, 'wrap and sign shares have different indices')
        aint(`${f}.share.index`, wrapShare.index, 1, keySet.n)
        const bytes = encodeKeySet(keySet)
        const wk = shareKey(epoch, 'wrap')
        const sk = shareKey(epoch, 'sign')
        const wp = encodeShare(wrapShare)
        const sp = encodeShare(signShare)
        plains.push(wp, sp)
        ops.push(
          { type: 'put', key: keySetKey(epoch), value: bytes },
          // The outgoing generation too (a store from before generations has no record of it).
          { type: 'put', key: keySetGenKey(epoch, baseId), value: refresh ? (old as { bytes: Uint8Array }).bytes : encodeKeySet(base) },
          { type: 'put', key: keySetGenKey(epoch, keySetId(keySet)), value: bytes },
          { type: 'put', key: wk, value: this.#key.seal(wk, wp) },
          { type: 'put', key: sk, value: this.#key.seal(sk, sp) }
        )
        epochs.push(epoch)
      }
    } finally {
      for (const p of plains) p.fill(0)
    }
    return { ops, epochs }
  }

  /** Ops deleting a finished ceremony's progress records and leaving its public result marker. */
  async #sessionDoneOps (session: string, result: Uint8Array): Promise<BatchOp[]> {
    const resultKey = dkgKey(session, 'result')
    const ops: BatchOp[] = []
    for (const key of await this.#keysWithPrefix(dkgPrefix(session))) if (key !== resultKey) ops.push({ type: 'del', key })
    ops.push({ type: 'put', key: resultKey, value: result })
    return ops
  }

  async deleteAllShares (session?: string): Promise<void> {
    if (session !== undefined) checkSession(session)
    const ops: Array<{ type: 'del', key: string }> = (await this.#keysWithPrefix('share/')).map(key => ({ type: 'del' as const, key }))
    if (session !== undefined) {
      const resultKey = dkgKey(session, 'result')
      for (const key of await this.#keysWithPrefix(dkgPrefix(session))) if (key !== resultKey) ops.push({ type: 'del', key })
    }
    const epochs: number[] = []
    for (let e = 1, cur = (await this.currentEpoch()) ?? 0; e <= cur; e++) epochs.push(e)
    await this.#commitBatch(ops, epochs)
    this.#shares.clear()
  }

  async close (): Promise<void> {
    this.#shares.clear()
    try { await this.#db.close() } finally { this.#key.close() }
  }
}
