/**
 * Offline recovery kit, node-local (brief §3 "Offline recovery kit"; crypto and formats in
 * protocol/recovery.ts, docs/PROTOCOL.md §10.4; procedure in docs/LIFECYCLE.md):
 *
 * - `exportRecoveryKit`: with the node STOPPED (the database is locked by a running node) and its
 *   storage key (passphrase or key file), splits each of the node's shares of every non-retired
 *   epoch into m sealed pieces, t needed (shamir-secret-sharing, each piece HPKE-sealed to one
 *   custodian's X25519 key). Writes `OUT/<custodian>/e<epoch>-<kind>.piece` (armored, 0600) and
 *   the public key sets `OUT/keysets/e<epoch>.keyset` (encodeKeySet bytes, 0644).
 * - `openPieceFile`: a custodian opens their piece with their X25519 secret key (offline) and hands
 *   the opened piece (SECRET, 0600) to the restoring operator.
 * - `restoreRecoveryKit`: into a freshly initialised data directory (`keymesh node init`, no key
 *   set yet), rebuilds the shares of every epoch from ≥ t opened pieces per (epoch, kind), checks
 *   each against the verifying share of the given key set (`recoveryRestore`), and commits each
 *   epoch atomically (`commitEpoch`). The key set must come from a trusted source (the kit's
 *   keysets/ directory only if the kit's integrity is trusted; better: a client's key-set cache
 *   or the cluster's published key set).
 *
 * Secrets: shares read from the store (owned here until export returns; bigints cannot be wiped),
 * opened pieces (caller-owned, zeroed by the restore here after use).
 */
import { mkdir, open, readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { BadInputError, ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { decodeKeySet, encodeKeySet } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import {
  armorRecoveryPiece, decodeOpenedRecoveryPiece, dearmorRecoveryPiece, encodeOpenedRecoveryPiece, openRecoveryPiece,
  recoveryExport, recoveryRestore
} from '../../protocol/recovery.ts'
import type { Custodian, OpenedRecoveryPiece } from '../../protocol/recovery.ts'
import { dataPaths } from '../config.ts'
import type { StorageKeySource } from '../config.ts'
import { unlockStorageKey } from '../storage-key.ts'
import { LevelNodeStore } from '../store.ts'
import { readLifecycleState } from './state.ts'

/** Result of an export. */
export interface ExportSummary { nodeIndex: number, epochs: number[], files: number, outDir: string }

/**
 * Creates `path` with `mode` (O_EXCL: existing files are never overwritten), writes and fsyncs.
 * Throws KeymeshError(BAD_INPUT) naming the path when it cannot be created.
 */
export async function writeNew (path: string, data: Uint8Array | string, mode: number): Promise<void> {
  let fh
  try { fh = await open(path, 'wx', mode) } catch (e) {
    throw new KeymeshError(ErrorCode.BAD_INPUT, `cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'} (existing files are never overwritten)`)
  }
  try { await fh.writeFile(data); await fh.sync() } finally { await fh.close() }
}

async function openStore (dataDir: string, storageKey: StorageKeySource): Promise<LevelNodeStore> {
  const p = dataPaths(dataDir)
  const key = await unlockStorageKey(storageKey, p.storageParams)
  return await LevelNodeStore.open(p.db, key)
}

/**
 * Exports the node's shares of every committed, non-retired epoch. Throws BadInputError (bad
 * custodians/threshold, existing output files), KeymeshError VERIFICATION_FAILED (wrong storage
 * key), BAD_INPUT (database locked by a running node, or missing), NOT_FOUND (no committed epoch).
 */
export async function exportRecoveryKit (dataDir: string, storageKey: StorageKeySource, custodians: Custodian[], t: number, outDir: string): Promise<ExportSummary> {
  const names = new Set(custodians.map(c => c.name))
  if (names.size !== custodians.length) throw new BadInputError('--custodian', 'duplicate custodian name')
  const store = await openStore(dataDir, storageKey)
  try {
    const cur = await store.currentEpoch()
    if (cur === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, 'this node has no committed key set: nothing to export')
    const min = Math.max(1, (await readLifecycleState(dataDir)).minDecryptionEpoch)
    await mkdir(join(outDir, 'keysets'), { recursive: true, mode: 0o700 })
    for (const c of custodians) await mkdir(join(outDir, c.name), { recursive: true, mode: 0o700 })
    const epochs: number[] = []
    let files = 0
    let nodeIndex = 0
    for (let epoch = min; epoch <= cur; epoch++) {
      const ks = await store.getKeySet(epoch)
      if (ks === undefined) continue
      epochs.push(epoch)
      await writeNew(join(outDir, 'keysets', `e${epoch}.keyset`), encodeKeySet(ks), 0o644)
      for (const kind of ['wrap', 'sign'] as const) {
        const share = await store.getShare(epoch, kind)
        if (share === undefined) throw new KeymeshError(ErrorCode.INTERNAL, `epoch ${epoch} has a key set but no ${kind} share on this node`)
        nodeIndex = share.index
        const pieces = await recoveryExport(share, { clusterId: ks.clusterId, epoch, nodeIndex: share.index, keyKind: kind }, custodians, t)
        for (const [j, piece] of pieces.entries()) {
          await writeNew(join(outDir, (custodians[j] as Custodian).name, `e${epoch}-${kind}.piece`), armorRecoveryPiece(piece), 0o600)
          files++
        }
      }
    }
    return { nodeIndex, epochs, files, outDir }
  } finally { await store.close() }
}

/**
 * A custodian opens one armored piece with their X25519 secret key (32 bytes, caller-owned).
 * Returns the encoded opened piece (SECRET; the caller writes it 0600 and hands it over).
 * Throws BadInputError / VerificationError (not this custodian's piece, or altered).
 */
export function openPieceText (armored: string, custodianSecret: Uint8Array): Uint8Array {
  return encodeOpenedRecoveryPiece(openRecoveryPiece(dearmorRecoveryPiece(armored), custodianSecret))
}

/** Reads every `*.keyset` file of a directory (e.g. the kit's keysets/). Throws BadInputError. */
export async function readKeySetDir (dir: string): Promise<KeySet[]> {
  let names: string[]
  try { names = (await readdir(dir)).filter(f => f.endsWith('.keyset')) } catch { throw new BadInputError('--keysets', `cannot read directory ${dir}`) }
  const out: KeySet[] = []
  for (const f of names) out.push(decodeKeySet(new Uint8Array(await readFile(join(dir, f)))))
  return out.sort((a, b) => a.epoch - b.epoch)
}

/**
 * Restores the shares into a freshly initialised data dir. Every key set must have ≥ t opened
 * pieces for both kinds, all for ONE node index. Throws BadInputError (store not fresh, missing
 * pieces, mixed node indices or clusters), VerificationError (pieces of different kits, altered
 * pieces, a share not matching the key set). Zeroes the opened pieces' share bytes.
 */
export async function restoreRecoveryKit (dataDir: string, storageKey: StorageKeySource, keySets: KeySet[], opened: OpenedRecoveryPiece[], expectedIndex?: number): Promise<{ nodeIndex: number, epochs: number[] }> {
  try {
    if (keySets.length === 0) throw new BadInputError('--keysets', 'no key set given')
    const indices = new Set(opened.map(o => o.kit.nodeIndex))
    if (indices.size !== 1) throw new BadInputError('--opened', `pieces are for ${indices.size === 0 ? 'no' : 'several'} node(s) (${[...indices].join(', ')}); restore one node at a time`)
    const nodeIndex = [...indices][0] as number
    // The kit must be THIS node's: shares of another index would make the node answer every
    // request with INTERNAL (its share index ≠ its own) and silently cost the cluster a node.
    if (expectedIndex !== undefined && nodeIndex !== expectedIndex) {
      throw new BadInputError('--opened', `the pieces are node ${nodeIndex}'s, but this data directory's identity is node ${expectedIndex} of the cluster; restore each node's kit into that node's directory (or restore node ${nodeIndex}'s identity.key here)`)
    }
    const store = await openStore(dataDir, storageKey)
    try {
      if ((await store.currentEpoch()) !== undefined) throw new BadInputError('--data', 'this data directory already holds key shares; restore only into a freshly initialised one')
      const done: number[] = []
      // Rebuild and check everything first; commit only when every epoch checks out.
      const rebuilt: Array<{ ks: KeySet, wrap: KeyShare, sign: KeyShare }> = []
      for (const ks of keySets) {
        if (nodeIndex > ks.n) throw new BadInputError('--opened', `node index ${nodeIndex} is not in the key set of epoch ${ks.epoch} (n = ${ks.n})`)
        const of = (kind: 'wrap' | 'sign'): OpenedRecoveryPiece[] => opened.filter(o => o.kit.epoch === ks.epoch && o.kit.keyKind === kind && o.kit.clusterId === ks.clusterId)
        const ctx = { clusterId: ks.clusterId, epoch: ks.epoch, nodeIndex }
        const wrap = await recoveryRestore(of('wrap'), { ...ctx, keyKind: 'wrap', verifyingShare: ks.wrap.verifyingShares[nodeIndex - 1] as KeySet['wrap']['verifyingShares'][number] })
        const sign = await recoveryRestore(of('sign'), { ...ctx, keyKind: 'sign', verifyingShare: ks.sign.verifyingShares[nodeIndex - 1] as KeySet['sign']['verifyingShares'][number] })
        rebuilt.push({ ks, wrap, sign })
      }
      for (const r of rebuilt) { await store.commitEpoch(r.ks.epoch, r.ks, r.wrap, r.sign); done.push(r.ks.epoch) }
      return { nodeIndex, epochs: done }
    } finally { await store.close() }
  } finally {
    for (const o of opened) o.share.fill(0)
  }
}

/** Decodes opened-piece files' bytes. Throws BadInputError. */
export function decodeOpenedPieces (files: Uint8Array[]): OpenedRecoveryPiece[] { return files.map(b => decodeOpenedRecoveryPiece(b)) }
