/**
 * File helpers for the client flows: atomic writes (temp file + fsync + rename, so a reader never
 * sees a half-written file and a failure leaves nothing behind), exclusive creation of secret files
 * (mode 0600, O_EXCL) and size-capped reads of untrusted files.
 */
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { fromUtf8 } from '../protocol/bytes.ts'

/** A temp path next to `path` (same directory, so rename(2) is atomic on one file system). */
export function tempPathFor (path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
}

/** fsync a directory so a rename in it survives a crash (best effort: some file systems refuse). */
export async function fsyncDir (dir: string): Promise<void> {
  let fh: FileHandle | undefined
  try { fh = await open(dir, 'r'); await fh.sync() } catch { /* not supported here; rename is still atomic */ } finally { await fh?.close() }
}

/**
 * Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync of the
 * directory. With `exclusive`, refuses (BadInputError(field)) when `path` exists. `mode` applies to
 * the new file (0600 for secrets). On any failure the temp file is removed and `path` is untouched.
 * Throws BadInputError(field) when the target exists (exclusive) or its directory is missing;
 * KeymeshError(INTERNAL) on other I/O errors.
 */
export async function atomicWriteFile (path: string, data: Uint8Array | string, opts: { mode?: number, exclusive?: boolean, field?: string } = {}): Promise<void> {
  const field = opts.field ?? 'out'
  if (opts.exclusive === true && await exists(path)) throw new BadInputError(field, `${path} already exists; refusing to overwrite`)
  const tmp = tempPathFor(path)
  let fh: FileHandle | undefined
  trackTemp(tmp)
  try {
    fh = await open(tmp, 'wx', opts.mode ?? 0o644)
    await fh.writeFile(data)
    await fh.sync()
    await fh.close()
    fh = undefined
    if (opts.exclusive === true && await exists(path)) throw new BadInputError(field, `${path} already exists; refusing to overwrite`)
    await rename(tmp, path)
    await fsyncDir(dirname(path))
  } catch (err) {
    await fh?.close().catch(() => {})
    await rm(tmp, { force: true }).catch(() => {})
    throw ioError(field, path, err)
  } finally {
    untrackTemp(tmp)
  }
}

/** Maps a Node I/O error to a KeymeshError naming the file (never including file contents). */
export function ioError (field: string, path: string, err: unknown): KeymeshError {
  if (err instanceof KeymeshError) return err
  const code = (err as { code?: string }).code
  if (code === 'ENOENT') return new BadInputError(field, `${path}: no such file or directory`)
  if (code === 'EEXIST') return new BadInputError(field, `${path} already exists; refusing to overwrite`)
  if (code === 'EACCES' || code === 'EPERM') return new BadInputError(field, `${path}: permission denied`)
  if (code === 'EISDIR') return new BadInputError(field, `${path} is a directory`)
  if (code === 'ENOTDIR') return new BadInputError(field, `${path}: a path component is not a directory`)
  return new KeymeshError(ErrorCode.INTERNAL, `${field}: I/O error on ${path}: ${(err as Error).message ?? String(err)}`, { cause: err })
}

/** True when `path` exists (any type). */
export async function exists (path: string): Promise<boolean> {
  try { await stat(path); return true } catch { return false }
}

/**
 * Reads a file of at most `maxBytes`. Throws BadInputError(field) when missing, unreadable or too
 * large (checked before reading the whole file).
 */
export async function readFileCapped (field: string, path: string, maxBytes: number): Promise<Uint8Array> {
  let fh: FileHandle | undefined
  try {
    fh = await open(path, 'r')
    const st = await fh.stat()
    if (!st.isFile()) throw new BadInputError(field, `${path} is not a regular file`)
    if (st.size > maxBytes) throw new BadInputError(field, `${path} is ${st.size} bytes; the limit is ${maxBytes}`)
    const b = await fh.readFile()
    if (b.length > maxBytes) throw new BadInputError(field, `${path} grew past ${maxBytes} bytes while reading`)
    return new Uint8Array(b.buffer, b.byteOffset, b.length)
  } catch (err) {
    throw ioError(field, path, err)
  } finally {
    await fh?.close().catch(() => {})
  }
}

/** Reads a UTF-8 text file of at most `maxBytes` (strict UTF-8). Throws BadInputError(field). */
export async function readTextCapped (field: string, path: string, maxBytes: number): Promise<string> {
  return fromUtf8(field, await readFileCapped(field, path, maxBytes))
}

/** Reads and parses a JSON file of at most `maxBytes`. Throws BadInputError(field). */
export async function readJsonCapped (field: string, path: string, maxBytes: number): Promise<unknown> {
  const text = await readTextCapped(field, path, maxBytes)
  try { return JSON.parse(text) as unknown } catch { throw new BadInputError(field, `${path} is not valid JSON`) }
}

/** mkdir -p. Throws KeymeshError on failure. */
export async function ensureDir (dir: string, mode = 0o755): Promise<void> {
  try { await mkdir(dir, { recursive: true, mode }) } catch (err) { throw ioError('dir', dir, err) }
}

/** Reads a whole file without a cap (trusted local paths only, e.g. our own cache). */
export async function readOwnFile (path: string): Promise<Uint8Array> {
  const b = await readFile(path)
  return new Uint8Array(b.buffer, b.byteOffset, b.length)
}

/** Temp files/directories in progress, removed by `cleanupTempsSync` on SIGINT/SIGTERM. */
const temps = new Set<string>()

/** Registers a temp path to remove if the process is interrupted before it is published. */
export function trackTemp (path: string): void { temps.add(path) }

/** Forgets a temp path (it was renamed into place or removed). */
export function untrackTemp (path: string): void { temps.delete(path) }

/**
 * Removes every tracked temp path synchronously (for signal handlers: a half-decrypted artifact
 * must not survive Ctrl-C). Never throws.
 */
export function cleanupTempsSync (): void {
  for (const p of temps) {
    try { rmSync(p, { recursive: true, force: true }) } catch { /* best effort */ }
  }
  temps.clear()
}
