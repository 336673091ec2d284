/**
 * `keymesh rewrap --to-latest`: move envelopes wrapped under older epochs to the cluster's newest
 * epoch, in bulk (docs/CLIENT.md). For an epoch rotation followed by retiring the old epochs
 * (`--min-decryption-epoch`): envelopes must be moved while their epoch is still live.
 *
 * Per envelope: recover the data key through k nodes (`partial.batch`, ≤ MAX_BATCH envelopes per
 * request, one request per node per batch, generations handled as in rewrap.ts), wrap it again
 * under the newest k-agreed key set with the SAME label except `epoch`, zero the key, and write the
 * new envelope in the input's format (binary "KMEV" or ASCII armor) atomically (temp + fsync +
 * rename, mode 0644), never over an existing file without `force`. Envelopes already at the newest
 * epoch are left alone (not rewritten). Envelopes of another cluster are refused.
 *
 * Failures are per envelope and never stop the others: every envelope is first checked locally
 * (validity proof against its epoch's key set: a tampered or corrupted envelope is named without
 * asking any node); a batch the nodes reject (an envelope whose ciphertext does not open, a label
 * the policy refuses) is split in halves until the culprits are isolated (O(log m) extra requests
 * per bad envelope); a batch failing for want of a quorum fails its envelopes with that reason.
 *
 * Release directories are refused: their signed manifest pins the envelope (id and epoch), so a
 * moved release needs a new manifest signed by the cluster with the builder's provenance — re-run
 * `keymesh build` for it (see docs/CLIENT.md).
 *
 * Secrets: each recovered data key is owned here from rewrapBatch until it is re-wrapped, then
 * zeroed (also on every error path). Nothing secret is written to disk or put in a message.
 */
import { lstat, readdir } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { BadInputError, ErrorCode, KeymeshError, errorCode } from '../protocol/errors.ts'
import type { ErrorCode as ErrorCodeT } from '../protocol/errors.ts'
import { fromUtf8, utf8 } from '../protocol/bytes.ts'
import { ARMOR_BEGIN, MAX_BATCH, MAX_ENVELOPE_LEN } from '../protocol/constants.ts'
import { armorEnvelope, decodeEnvelope, dearmorEnvelope, encodeEnvelope } from '../protocol/envelope.ts'
import type { Envelope } from '../protocol/envelope.ts'
import type { KeySet } from '../protocol/keyset.ts'
import { validateLabel } from '../protocol/label.ts'
import { verifyEnvelope, verifyEnvelopes, wrap } from '../protocol/wrap.ts'
import type { KeymeshClient } from './client.ts'
import { atomicWriteFile, ensureDir, exists, ioError, readFileCapped } from './fsutil.ts'
import { RELEASE_FILES } from './release-layout.ts'

/** Largest envelope file read (armor of the largest envelope plus slack). */
const MAX_ENVELOPE_FILE = 2 * MAX_ENVELOPE_LEN + 256
/** Files looked at in directory inputs (a directory tree, walked without following symlinks). */
const MAX_FILES = 1_000_000
/** Default envelopes per partial.batch request (a batch's proof and request costs amortise well by 250). */
export const DEFAULT_MIGRATE_BATCH = 250

/** Options of `migrateToLatest`. */
export interface MigrateOptions {
  /** Envelope files and/or directories (walked recursively; files that are not envelopes are skipped). */
  inputs: string[]
  /**
   * Output directory (created): a file input's new envelope goes to OUT/<name>, a directory input's
   * files to OUT/<path relative to that directory>. Without it, inputs are replaced in place,
   * which needs `force`.
   */
  outDir?: string
  /** Overwrite existing output files (and replace inputs in place when there is no outDir). */
  force?: boolean
  /** Envelopes per batch request, 1..MAX_BATCH (default 250). */
  batchSize?: number
  /** Deadline per batch request (ms; default 30 s + 20 ms per envelope: bulk work on a busy cluster). */
  deadlineMs?: number
  /** One human-readable line per step (stderr in the CLI). */
  onProgress?: (line: string) => void
}

/** One envelope that could not be moved, and why. */
export interface MigrateFailure { path: string, code: ErrorCodeT, reason: string }

/** What `migrateToLatest` did. */
export interface MigrateResult {
  /** The newest epoch (k-agreed) envelopes were moved to. */
  epoch: number
  /** Envelope files moved: input → output path. */
  moved: Array<{ path: string, out: string, fromEpoch: number }>
  /** Envelope files already at the newest epoch (left alone). */
  alreadyLatest: string[]
  failed: MigrateFailure[]
  /** Wall time of the whole run (ms). */
  ms: number
}

interface Item { path: string, out: string, armored: boolean, e: Envelope }

function isReleaseDir (names: string[]): boolean {
  return names.includes(RELEASE_FILES.jws) && names.includes(RELEASE_FILES.envelope)
}

const RELEASE_REFUSAL = 'release directory: its signed manifest pins this envelope (its id and epoch), so moving it needs a new cluster-signed manifest with the builder\'s provenance. Re-run `keymesh build` for this release to get it under the newest epoch (its old epoch must stay live until then)'

/**
 * Lists the envelope files of the inputs: { path, out } pairs, plus failures for release
 * directories and unreadable inputs. Throws BadInputError when an input does not exist.
 */
async function collectFiles (inputs: string[], outDir: string | undefined, failed: MigrateFailure[]): Promise<Array<{ path: string, out: string }>> {
  const files: Array<{ path: string, out: string }> = []
  const outFor = (path: string, root: string | undefined): string => {
    if (outDir === undefined) return path
    return root === undefined ? join(outDir, basename(path)) : join(outDir, relative(root, path))
  }
  for (const input of inputs) {
    let st
    try { st = await lstat(input) } catch (err) { throw ioError('--in', input, err) }
    if (st.isFile()) {
      if (basename(input) === RELEASE_FILES.envelope && await exists(join(dirname(input), RELEASE_FILES.jws))) {
        failed.push({ path: input, code: ErrorCode.BAD_INPUT, reason: RELEASE_REFUSAL })
        continue
      }
      files.push({ path: input, out: outFor(input, undefined) })
      continue
    }
    if (!st.isDirectory()) { failed.push({ path: input, code: ErrorCode.BAD_INPUT, reason: 'not a regular file or directory' }); continue }
    const root = input
    const stack = [root]
    while (stack.length > 0) {
      const dir = stack.pop() as string
      let names: string[]
      try { names = (await readdir(dir)).sort() } catch (err) { failed.push({ path: dir, code: ErrorCode.BAD_INPUT, reason: ioError('--in', dir, err).message }); continue }
      if (isReleaseDir(names)) { failed.push({ path: dir, code: ErrorCode.BAD_INPUT, reason: RELEASE_REFUSAL }); continue }
      for (const name of names) {
        if (name.startsWith('.') && name.endsWith('.tmp')) continue // our own temp files
        const p = join(dir, name)
        const s = await lstat(p).catch(() => undefined)
        if (s?.isDirectory() === true) { if (outDir === undefined || resolve(p) !== resolve(outDir)) stack.push(p) } else if (s?.isFile() === true) files.push({ path: p, out: outFor(p, root) })
        if (files.length > MAX_FILES) throw new BadInputError('--in', `more than ${MAX_FILES} files`)
      }
    }
  }
  return files
}

/** Reads one file as an envelope: binary "KMEV" or ASCII armor; undefined when it is neither (skipped). Throws BadInputError for a broken envelope. */
async function readEnvelopeFile (path: string): Promise<{ e: Envelope, armored: boolean } | undefined> {
  const b = await readFileCapped('envelope', path, MAX_ENVELOPE_FILE).catch((err: unknown) => {
    // Too large to be an envelope: not one of ours, skip it.
    if (err instanceof BadInputError && /limit is/.test(err.message)) return undefined
    throw err
  })
  if (b === undefined) return undefined
  if (b.length >= 4 && b[0] === 0x4b && b[1] === 0x4d && b[2] === 0x45 && b[3] === 0x56) return { e: decodeEnvelope(b), armored: false } // "KMEV"
  const head = utf8(ARMOR_BEGIN)
  let start = 0
  while (start < b.length && (b[start] === 0x20 || b[start] === 0x0a || b[start] === 0x0d || b[start] === 0x09)) start++
  if (b.length - start >= head.length && head.every((x, j) => b[start + j] === x)) return { e: dearmorEnvelope(fromUtf8('envelope', b)), armored: true }
  return undefined
}

/**
 * Moves every envelope of `opts.inputs` whose epoch is older than the cluster's newest epoch to
 * the newest epoch (module doc). Per-envelope failures are returned, not thrown. Throws
 * BadInputError (an input missing, a bad option, in-place replacement without `force`),
 * QuorumUnavailableError / NotAuthorizedError when the newest key set cannot be fetched.
 */
export async function migrateToLatest (client: KeymeshClient, opts: MigrateOptions): Promise<MigrateResult> {
  const t0 = Date.now()
  const say = opts.onProgress ?? (() => {})
  const batchSize = opts.batchSize ?? DEFAULT_MIGRATE_BATCH
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new BadInputError('--batch', `expected 1..${MAX_BATCH}`)
  if (opts.inputs.length === 0) throw new BadInputError('--in', 'no input files or directories')
  if (opts.outDir === undefined && opts.force !== true) throw new BadInputError('--out', 'without --out DIR the inputs would be replaced in place; pass --out DIR, or --force to replace them')
  const failed: MigrateFailure[] = []
  const files = await collectFiles(opts.inputs, opts.outDir, failed)
  const newest = await client.keySet()
  const cluster = client.cluster.clusterId
  const alreadyLatest: string[] = []
  const todo: Item[] = []
  const outs = new Set<string>()
  for (const f of files) {
    let r: { e: Envelope, armored: boolean } | undefined
    try { r = await readEnvelopeFile(f.path) } catch (err) {
      failed.push({ path: f.path, code: errorCode(err), reason: `not a valid envelope (${(err as Error).message})` })
      continue
    }
    if (r === undefined) continue
    const l = r.e.label
    if (l.clusterId !== cluster) { failed.push({ path: f.path, code: ErrorCode.BAD_INPUT, reason: `envelope of another cluster (${l.clusterId}); refused` }); continue }
    if (l.epoch === newest.epoch) { alreadyLatest.push(f.path); continue }
    if (l.epoch > newest.epoch) { failed.push({ path: f.path, code: ErrorCode.CONFLICT, reason: `envelope epoch ${l.epoch} is newer than the cluster's newest epoch ${newest.epoch}` }); continue }
    const key = resolve(f.out)
    if (outs.has(key)) { failed.push({ path: f.path, code: ErrorCode.BAD_INPUT, reason: `another input maps to the same output ${f.out}` }); continue }
    outs.add(key)
    if (opts.force !== true && await exists(f.out)) { failed.push({ path: f.path, code: ErrorCode.BAD_INPUT, reason: `${f.out} already exists; refusing to overwrite (pass --force)` }); continue }
    todo.push({ path: f.path, out: f.out, armored: r.armored, e: r.e })
  }
  say(`rewrap --to-latest: newest epoch ${newest.epoch}; ${todo.length} to move, ${alreadyLatest.length} already latest, ${failed.length} refused`)

  const moved: MigrateResult['moved'] = []
  const byEpoch = new Map<number, Item[]>()
  for (const it of todo) byEpoch.set(it.e.label.epoch, [...(byEpoch.get(it.e.label.epoch) ?? []), it])
  let done = 0
  for (const [epoch, items] of [...byEpoch].sort((a, b) => a[0] - b[0])) {
    let oldKs: KeySet
    try { oldKs = await client.keySet(epoch) } catch (err) {
      for (const it of items) failed.push({ path: it.path, code: errorCode(err), reason: `key set of epoch ${epoch} unavailable: ${(err as Error).message}` })
      continue
    }
    // Pipelined: while this process re-wraps and writes batch i, the nodes already compute the
    // partials of batch i+1 (recover never rejects; its failures are recorded per envelope).
    const chunks: Item[][] = []
    for (let off = 0; off < items.length; off += batchSize) chunks.push(items.slice(off, off + batchSize))
    const start = (j: number): Promise<Recovered[]> | undefined => {
      const chunk = chunks[j]
      return chunk === undefined ? undefined : recover(client, checkLocally(oldKs, chunk, failed), opts, failed)
    }
    let next = start(0)
    for (let j = 0; next !== undefined; j++) {
      const got = await next
      next = start(j + 1)
      await writeMoved(newest, got, opts, moved, failed)
      done += (chunks[j] as Item[]).length
      say(`rewrap --to-latest: epoch ${epoch} → ${newest.epoch}: ${done}/${todo.length} envelopes (${moved.length} moved, ${failed.length} failed)`)
    }
  }
  return { epoch: newest.epoch, moved, alreadyLatest, failed, ms: Date.now() - t0 }
}

/** Validity proofs checked locally (one batched check; per envelope only when it fails). Returns the good ones. */
function checkLocally (ks: KeySet, chunk: Item[], failed: MigrateFailure[]): Item[] {
  try { verifyEnvelopes(ks, chunk.map(it => it.e)); return chunk } catch { /* find the culprits */ }
  return chunk.filter((it) => {
    try { verifyEnvelope(ks, it.e); return true } catch (err) {
      failed.push({ path: it.path, code: ErrorCode.VERIFICATION_FAILED, reason: `envelope validity proof does not verify (tampered or corrupted): ${(err as Error).message}` })
      return false
    }
  })
}

/** Codes that are a verdict on the request (some envelope in it), not on the nodes' availability. */
const VERDICTS = new Set<string>([ErrorCode.VERIFICATION_FAILED, ErrorCode.NOT_AUTHORIZED, ErrorCode.BAD_INPUT, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.NOT_FOUND])

/** An envelope whose data key was recovered; the key is owned by the holder until writeMoved zeroes it. */
interface Recovered { it: Item, key: Uint8Array }

/**
 * Recovers the data keys of `chunk` with one batch request per node; on a verdict against the batch
 * halves it until the culprits are isolated, on a quorum failure retries once in halves. Never
 * rejects: failures are recorded per envelope.
 */
async function recover (client: KeymeshClient, chunk: Item[], opts: MigrateOptions, failed: MigrateFailure[], retried = false): Promise<Recovered[]> {
  if (chunk.length === 0) return []
  try {
    const keys = (await client.rewrapBatch(chunk.map(it => it.e), { deadlineMs: opts.deadlineMs ?? 30_000 + 20 * chunk.length })).dataKeys
    return chunk.map((it, j) => ({ it, key: keys[j] as Uint8Array }))
  } catch (err) {
    const code = errorCode(err)
    const mid = Math.ceil(chunk.length / 2)
    // Some envelope(s) in the batch were refused (verdict), or no quorum in time for the whole
    // batch (an overloaded cluster: one retry in halves).
    if (chunk.length > 1 && (VERDICTS.has(code) || !retried)) {
      const again = !VERDICTS.has(code) || retried
      const a = await recover(client, chunk.slice(0, mid), opts, failed, again)
      const b = await recover(client, chunk.slice(mid), opts, failed, again)
      return [...a, ...b]
    }
    for (const it of chunk) failed.push({ path: it.path, code, reason: (err as Error).message })
    return []
  }
}

/** Wraps each recovered key under the newest key set (same label but the epoch) and writes it; zeroes every key. */
async function writeMoved (newest: KeySet, got: Recovered[], opts: MigrateOptions, moved: MigrateResult['moved'], failed: MigrateFailure[]): Promise<void> {
  try {
    for (const { it, key } of got) {
      try {
        const label = validateLabel({ ...it.e.label, epoch: newest.epoch })
        const e = wrap(newest, label, key)
        key.fill(0)
        const bytes = it.armored ? armorEnvelope(e) : encodeEnvelope(e)
        await ensureDir(dirname(it.out))
        await atomicWriteFile(it.out, bytes, { mode: 0o644, exclusive: opts.force !== true, field: 'out' })
        moved.push({ path: it.path, out: it.out, fromEpoch: it.e.label.epoch })
      } catch (err) {
        failed.push({ path: it.path, code: err instanceof KeymeshError ? err.code : ErrorCode.INTERNAL, reason: `could not write the moved envelope: ${(err as Error).message}` })
      } finally {
        key.fill(0)
      }
    }
  } finally {
    for (const r of got) r.key.fill(0)
  }
}
