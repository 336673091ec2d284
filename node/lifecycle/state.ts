/**
 * The node's lifecycle state file `DATA/lifecycle.json` (0600, replaced atomically: temp file,
 * fsync, rename). Public data only — no secret ever goes here (secrets of a running ceremony are
 * in the store's sealed DKG progress records).
 *
 * ```json
 * { "format": "keymesh.lifecycle-state", "version": 1,
 *   "minDecryptionEpoch": 0,          // 0 = no epoch retired
 *   "seen": ["<nonce>", ...],         // nonces of every order ever accepted (replay protection), newest last
 *   "pending": "<signed order text>" | null,    // accepted, not yet finished
 *   "committedAttempts": { "<epoch>": <attempt> } } // DKG attempt that committed each rotated epoch (when ≠ 0)
 * ```
 *
 * Why a file and not the level store: the store's API is owned by the store layer and has no
 * generic record; this document is tiny, public and rewritten rarely (once per lifecycle order).
 */
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { BadInputError, ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { aint } from '../../protocol/bytes.ts'

/** File name under the data directory. */
export const LIFECYCLE_FILE = 'lifecycle.json'
export const LIFECYCLE_STATE_FORMAT = 'keymesh.lifecycle-state'
/** Nonces remembered (oldest dropped first; orders also carry a target epoch, which bounds replays). */
export const MAX_SEEN_NONCES = 4096

/** The persisted lifecycle state. */
export interface LifecycleState {
  minDecryptionEpoch: number
  seen: string[]
  pending: string | null
  /** Epoch (decimal string) → the DKG attempt that committed it, recorded only when ≠ 0. */
  committedAttempts: Record<string, number>
}

/** A fresh state (no file yet). */
export function emptyLifecycleState (): LifecycleState { return { minDecryptionEpoch: 0, seen: [], pending: null, committedAttempts: {} } }

/**
 * Reads DATA/lifecycle.json; a missing file is the empty state. Throws KeymeshError(INTERNAL)
 * when the file exists but is corrupt (never silently reset: it holds the replay list).
 */
export async function readLifecycleState (dataDir: string): Promise<LifecycleState> {
  const path = join(dataDir, LIFECYCLE_FILE)
  let text: string
  try { text = await readFile(path, 'utf8') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyLifecycleState()
    throw new KeymeshError(ErrorCode.INTERNAL, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    const o = JSON.parse(text) as Record<string, unknown>
    if (o.format !== LIFECYCLE_STATE_FORMAT || o.version !== 1) throw new BadInputError('lifecycle.format', 'unknown format or version')
    const minDecryptionEpoch = aint('lifecycle.minDecryptionEpoch', o.minDecryptionEpoch, 0, 0xffffffff)
    if (!Array.isArray(o.seen) || o.seen.some(x => typeof x !== 'string' || !/^[0-9a-f]{32}$/.test(x))) throw new BadInputError('lifecycle.seen', 'expected nonces')
    if (o.pending !== null && typeof o.pending !== 'string') throw new BadInputError('lifecycle.pending', 'expected a string or null')
    const committedAttempts: Record<string, number> = {}
    if (o.committedAttempts !== undefined) {
      if (typeof o.committedAttempts !== 'object' || o.committedAttempts === null || Array.isArray(o.committedAttempts)) throw new BadInputError('lifecycle.committedAttempts', 'expected an object')
      for (const [k, v] of Object.entries(o.committedAttempts as Record<string, unknown>)) {
        if (!/^[1-9][0-9]{0,9}$/.test(k)) throw new BadInputError('lifecycle.committedAttempts', 'expected epoch keys')
        committedAttempts[k] = aint('lifecycle.committedAttempts', v, 0, 999_999)
      }
    }
    return { minDecryptionEpoch, seen: o.seen as string[], pending: o.pending, committedAttempts }
  } catch (e) {
    throw new KeymeshError(ErrorCode.INTERNAL, `${path} is corrupt (${e instanceof Error ? e.message : 'error'}); restore it from backup`)
  }
}

/** Writes DATA/lifecycle.json atomically (0600). Throws the fs error (the caller refuses the order). */
export async function writeLifecycleState (dataDir: string, s: LifecycleState): Promise<void> {
  const path = join(dataDir, LIFECYCLE_FILE)
  const tmp = `${path}.tmp`
  const seen = s.seen.slice(-MAX_SEEN_NONCES)
  const text = JSON.stringify({ format: LIFECYCLE_STATE_FORMAT, version: 1, minDecryptionEpoch: s.minDecryptionEpoch, seen, pending: s.pending, committedAttempts: s.committedAttempts }, null, 2) + '\n'
  const fh = await open(tmp, 'w', 0o600)
  try { await fh.writeFile(text); await fh.sync() } finally { await fh.close() }
  await rename(tmp, path)
}
