/**
 * The node storage key: encrypts secrets at rest (key shares, DKG secret state) with AES-256-GCM.
 *
 * Sources (exactly one, chosen at `node init` and fixed for the life of the data dir):
 * - `passphrase-file`: scrypt (node:crypto, RFC 7914) over an operator passphrase read from a file,
 *   N = 2^15..2^17 (default 2^17), r = 8, p = 1, 32-byte random salt;
 * - `key-file`: 32 random bytes (raw, or 64 hex characters) in a file the operator provides;
 * - `insecure-dev`: scrypt over a fixed public passphrase (N = 2^15). Anyone with the disk can
 *   read the shares; a loud warning is printed. For tests and local demos only.
 *
 * The master secret (scrypt output or key-file bytes) goes through HKDF-SHA256 with salt = the
 * stored salt and info = Tag.STORAGE_KEY ‖ 0x00 ‖ kind to give the 32-byte storage key. The
 * non-secret parameters live in DATA/storage-key.json together with a check value: the
 * AES-256-GCM sealing of a fixed string under the storage key. Opening the check value with a
 * wrong passphrase fails the GCM tag, so a wrong passphrase gives a clear error before anything
 * else is touched (and never a silent re-initialisation).
 *
 * Sealed value (version 1): 0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16), AES-256-GCM with
 * AAD = Tag.STORAGE_KEY ‖ "/seal" ‖ 0x00 ‖ utf8(name), where `name` is the store key the value is
 * stored under. A sealed value moved to another key does not open.
 *
 * Ownership: the storage key bytes are owned by the StorageKey object (one per node process);
 * `close()` zeroes them. Passphrase bytes are zeroed right after derivation.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt as scryptCb } from 'node:crypto'
import { open, readFile, stat } from 'node:fs/promises'
import { KeymeshError, ErrorCode, BadInputError } from '../protocol/errors.ts'
import { concat, fromB64u, toB64u, utf8 } from '../protocol/bytes.ts'
import { AEAD_NONCE_LEN, AEAD_TAG_LEN, Tag } from '../protocol/constants.ts'
import type { StorageKeySource } from './config.ts'

/** Format tag of DATA/storage-key.json. */
export const STORAGE_PARAMS_FORMAT = 'keymesh.storage-key'
/** scrypt cost bounds (log2 N). */
export const SCRYPT_MIN_LOG_N = 15
export const SCRYPT_MAX_LOG_N = 17
export const SCRYPT_DEFAULT_LOG_N = 17
/** The public passphrase of `--insecure-dev-passphrase`. */
export const INSECURE_DEV_PASSPHRASE = 'keymesh-insecure-dev-passphrase-DO-NOT-USE-IN-PRODUCTION'
/** Sealed value version byte. */
export const SEAL_VERSION = 1
const CHECK_NAME = 'storage-key-check'
const CHECK_PLAINTEXT = utf8('keymesh storage key check v1')
const MIN_PASSPHRASE_LEN = 8
const MAX_KEYFILE_LEN = 1024

/** Non-secret storage key parameters, stored in DATA/storage-key.json. */
export interface StorageParams {
  format: 'keymesh.storage-key'
  version: 1
  kind: StorageKeySource['kind']
  /** 32-byte salt (b64u). */
  salt: string
  /** scrypt parameters (passphrase kinds only). */
  scrypt?: { logN: number, r: 8, p: 1 }
  /** Sealed check value (b64u). */
  check: string
}

function fail (msg: string): never { throw new KeymeshError(ErrorCode.BAD_INPUT, msg) }

async function scrypt (pass: Uint8Array, salt: Uint8Array, logN: number): Promise<Uint8Array> {
  const N = 2 ** logN
  return await new Promise((resolve, reject) => {
    // maxmem: 128·N·r bytes plus headroom.
    scryptCb(pass, salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 }, (err, key) => {
      if (err !== null) reject(err); else resolve(new Uint8Array(key))
    })
  })
}

/** Warns (through `warn`) when a secret file is readable by group or others. */
async function checkSecretFileMode (path: string, warn: (msg: string) => void): Promise<void> {
  try {
    const st = await stat(path)
    if ((st.mode & 0o077) !== 0) warn(`${path} is readable by group/others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`)
  } catch { /* the read below reports a missing file */ }
}

async function readSecretFile (path: string, what: string): Promise<Uint8Array> {
  try {
    const st = await stat(path)
    if (!st.isFile()) fail(`${what} ${path} is not a regular file`)
    if (st.size > MAX_KEYFILE_LEN) fail(`${what} ${path} is larger than ${MAX_KEYFILE_LEN} bytes`)
    return new Uint8Array(await readFile(path))
  } catch (e) {
    if (e instanceof KeymeshError) throw e
    fail(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}; create it (mode 600) or pass the right path`)
  }
}

/** Reads the master secret (passphrase bytes or key bytes) of a source. Caller zeroes it. */
async function readMaster (src: StorageKeySource, warn: (msg: string) => void): Promise<Uint8Array> {
  if (src.kind === 'insecure-dev') return utf8(INSECURE_DEV_PASSPHRASE)
  await checkSecretFileMode(src.path, warn)
  const raw = await readSecretFile(src.path, src.kind === 'key-file' ? 'key file' : 'passphrase file')
  if (src.kind === 'passphrase-file') {
    // Strip one trailing newline (echo/editors add one); the rest is the passphrase, verbatim.
    let end = raw.length
    if (end > 0 && raw[end - 1] === 0x0a) end--
    if (end > 0 && raw[end - 1] === 0x0d) end--
    const pass = raw.slice(0, end)
    raw.fill(0)
    if (pass.length < MIN_PASSPHRASE_LEN) { pass.fill(0); fail(`passphrase file ${src.path}: passphrase shorter than ${MIN_PASSPHRASE_LEN} bytes`) }
    return pass
  }
  // key-file: 32 raw bytes, or 64 hex characters with an optional trailing newline.
  if (raw.length === 32) return raw
  const text = Buffer.from(raw).toString('latin1').trim()
  raw.fill(0)
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'))
  fail(`key file ${src.path}: expected 32 raw bytes or 64 hex characters (e.g. \`head -c 32 /dev/urandom > ${src.path}\`)`)
}

async function deriveKey (src: StorageKeySource, salt: Uint8Array, logN: number | undefined, warn: (msg: string) => void): Promise<Uint8Array> {
  const master = await readMaster(src, warn)
  try {
    const ikm = src.kind === 'key-file' ? master : await scrypt(master, salt, logN as number)
    const info = concat(utf8(Tag.STORAGE_KEY), new Uint8Array([0]), utf8(src.kind))
    const key = new Uint8Array(hkdfSync('sha256', ikm, salt, info, 32))
    if (ikm !== master) ikm.fill(0)
    return key
  } finally {
    master.fill(0)
  }
}

function aad (name: string): Uint8Array {
  return concat(utf8(Tag.STORAGE_KEY), utf8('/seal'), new Uint8Array([0]), utf8(name))
}

/** An unlocked storage key. Seals and opens values bound to their store key name. */
export class StorageKey {
  #key: Uint8Array | undefined
  constructor (key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('storage key must be 32 bytes')
    this.#key = key
  }

  #k (): Uint8Array {
    if (this.#key === undefined) throw new KeymeshError(ErrorCode.INTERNAL, 'storage key used after close')
    return this.#key
  }

  /** Seals `plaintext` for the store key `name`. Throws KeymeshError(INTERNAL) after close(). */
  seal (name: string, plaintext: Uint8Array): Uint8Array {
    const nonce = randomBytes(AEAD_NONCE_LEN)
    const c = createCipheriv('aes-256-gcm', this.#k(), nonce, { authTagLength: AEAD_TAG_LEN })
    c.setAAD(aad(name))
    const ct = concat(c.update(plaintext), c.final())
    return concat(new Uint8Array([SEAL_VERSION]), nonce, ct, c.getAuthTag())
  }

  /**
   * Opens a value sealed for `name`. Throws KeymeshError(VERIFICATION_FAILED) when it does not
   * open (wrong key, wrong name, corrupted), BadInputError when malformed.
   */
  open (name: string, sealed: Uint8Array): Uint8Array {
    if (sealed.length < 1 + AEAD_NONCE_LEN + AEAD_TAG_LEN || sealed[0] !== SEAL_VERSION) throw new BadInputError(`store[${name}]`, 'malformed sealed value')
    const nonce = sealed.subarray(1, 1 + AEAD_NONCE_LEN)
    const tag = sealed.subarray(sealed.length - AEAD_TAG_LEN)
    const ct = sealed.subarray(1 + AEAD_NONCE_LEN, sealed.length - AEAD_TAG_LEN)
    const d = createDecipheriv('aes-256-gcm', this.#k(), nonce, { authTagLength: AEAD_TAG_LEN })
    d.setAAD(aad(name))
    d.setAuthTag(tag)
    try {
      return new Uint8Array(concat(d.update(ct), d.final()))
    } catch {
      throw new KeymeshError(ErrorCode.VERIFICATION_FAILED, `stored value ${name} does not open with this storage key (wrong key or corrupted data)`)
    }
  }

  /** Zeroes the key. */
  close (): void { this.#key?.fill(0); this.#key = undefined }
}

/**
 * Creates the storage key parameters for a new data dir and writes them to `paramsPath`
 * (O_EXCL, mode 0600; refuses to overwrite). Returns the unlocked key.
 * Throws KeymeshError(BAD_INPUT) for unreadable/short passphrase or key files, CONFLICT when the
 * params file exists.
 */
export async function createStorageKey (src: StorageKeySource, paramsPath: string, opts: { logN?: number, warn?: (msg: string) => void } = {}): Promise<StorageKey> {
  const warn = opts.warn ?? (() => {})
  const logN = src.kind === 'insecure-dev' ? SCRYPT_MIN_LOG_N : (opts.logN ?? SCRYPT_DEFAULT_LOG_N)
  if (logN < SCRYPT_MIN_LOG_N || logN > SCRYPT_MAX_LOG_N) throw new BadInputError('scrypt.logN', `expected ${SCRYPT_MIN_LOG_N}..${SCRYPT_MAX_LOG_N}`)
  const salt = randomBytes(32)
  const key = new StorageKey(await deriveKey(src, salt, logN, warn))
  const params: StorageParams = {
    format: STORAGE_PARAMS_FORMAT,
    version: 1,
    kind: src.kind,
    salt: toB64u(salt),
    ...(src.kind === 'key-file' ? {} : { scrypt: { logN, r: 8 as const, p: 1 as const } }),
    check: toB64u(key.seal(CHECK_NAME, CHECK_PLAINTEXT))
  }
  let fh
  try {
    fh = await open(paramsPath, 'wx', 0o600)
  } catch (e) {
    key.close()
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new KeymeshError(ErrorCode.CONFLICT, `${paramsPath} already exists; this data directory is already initialised`)
    throw e
  }
  try { await fh.writeFile(JSON.stringify(params, null, 2) + '\n') } finally { await fh.close() }
  return key
}

/** Parses storage-key.json. Throws KeymeshError(BAD_INPUT) naming the path. */
export function parseStorageParams (text: string, path: string): StorageParams {
  const bad = (what: string): never => fail(`${path} is corrupt (${what}); restore it from backup — do not delete it, the shares in db/ cannot be read without it`)
  let j: unknown
  try { j = JSON.parse(text) } catch { return bad('invalid JSON') }
  if (typeof j !== 'object' || j === null) return bad('not an object')
  const o = j as Record<string, unknown>
  if (o.format !== STORAGE_PARAMS_FORMAT || o.version !== 1) return bad('format/version')
  if (o.kind !== 'passphrase-file' && o.kind !== 'key-file' && o.kind !== 'insecure-dev') return bad('kind')
  try {
    if (fromB64u('salt', o.salt, 32).length !== 32) return bad('salt')
    fromB64u('check', o.check, 256)
  } catch { return bad('salt/check encoding') }
  if (o.kind !== 'key-file') {
    const s = o.scrypt as Record<string, unknown> | undefined
    if (typeof s !== 'object' || s === null || typeof s.logN !== 'number' || !Number.isInteger(s.logN) ||
      s.logN < SCRYPT_MIN_LOG_N || s.logN > SCRYPT_MAX_LOG_N || s.r !== 8 || s.p !== 1) return bad('scrypt parameters')
  }
  return o as unknown as StorageParams
}

/**
 * Unlocks the storage key of an existing data dir: reads the params, derives the key from `src`,
 * and checks it against the stored check value. Throws KeymeshError(BAD_INPUT) when the params
 * file is missing/corrupt or the source kind differs from the one used at init, and
 * KeymeshError(VERIFICATION_FAILED) "wrong passphrase or key file" when the check fails.
 */
export async function unlockStorageKey (src: StorageKeySource, paramsPath: string, opts: { warn?: (msg: string) => void } = {}): Promise<StorageKey> {
  const warn = opts.warn ?? (() => {})
  let text: string
  try { text = await readFile(paramsPath, 'utf8') } catch (e) {
    fail(`cannot read ${paramsPath} (${(e as NodeJS.ErrnoException).code ?? 'error'}): is --data the directory made by \`keymesh node init\`? Restore it from backup; never re-initialise a node that holds shares`)
  }
  const p = parseStorageParams(text, paramsPath)
  if (p.kind !== src.kind) {
    const flag = { 'passphrase-file': '--passphrase-file', 'key-file': '--key-file', 'insecure-dev': '--insecure-dev-passphrase' }[p.kind]
    fail(`this data directory was initialised with ${flag}; start the node with ${flag}`)
  }
  const salt = fromB64u('salt', p.salt, 32)
  const key = new StorageKey(await deriveKey(src, salt, p.scrypt?.logN, warn))
  try {
    const check = key.open(CHECK_NAME, fromB64u('check', p.check, 256))
    if (Buffer.compare(Buffer.from(check), Buffer.from(CHECK_PLAINTEXT)) !== 0) throw new Error('check mismatch')
  } catch {
    key.close()
    throw new KeymeshError(ErrorCode.VERIFICATION_FAILED, `wrong passphrase or key file for ${paramsPath}: the storage key check value does not open`)
  }
  return key
}

/** The loud warning printed for --insecure-dev-passphrase. */
export const INSECURE_DEV_WARNING = [
  '**********************************************************************',
  '*  WARNING: --insecure-dev-passphrase — the node storage key is      *',
  '*  derived from a PUBLIC passphrase. Anyone who can read this data   *',
  '*  directory can read the key shares. Use only for tests and demos.  *',
  '**********************************************************************'
].join('\n')
