/**
 * Release artifacts: streaming chunked AEAD in the shape of age's STREAM (Hoang–Reyhanitabar–
 * Rogaway–Vizár, "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015;
 * docs/PROTOCOL.md is the byte-level spec).
 *
 *   artifact = header ‖ chunk_0 ‖ … ‖ chunk_{m-1}
 *   header   = "KMAR" ‖ u8 version (1) ‖ u32 chunkSize ‖ salt[16]                (25 bytes)
 *   K        = HKDF-SHA256(IKM = release key, salt = salt, info = Tag.ARTIFACT_KEY, L = 32)
 *   aad      = SHA-256(u32(len(Tag.ARTIFACT_HEADER)) ‖ Tag.ARTIFACT_HEADER ‖ header)
 *   chunk_i  = AES-256-GCM(K, nonce = u88(i) ‖ last_i, aad, p_i) = ct_i ‖ tag_i[16]
 *
 * Every plaintext chunk p_i is exactly chunkSize bytes except the last, which is 1..chunkSize
 * bytes, or 0 bytes when the whole artifact is empty (m = 1). `last_i` is 0x01 only for i = m-1.
 * The counter in the nonce defeats reordering and dropping; the last flag defeats truncation at a
 * chunk boundary and appending; the header goes into every chunk's AAD (and its salt into the
 * key), so a changed header fails the first chunk. A fresh random salt per artifact makes K unique
 * per artifact even if a release key were ever reused, so (K, nonce) pairs never repeat.
 *
 * Release of plaintext: a chunk's plaintext is handed out only after that chunk's GCM tag verified
 * (`decipher.final()`), never before. A streaming decrypt does hand out the verified chunks
 * before a *later* chunk fails (that is what makes it constant-memory), so a caller writing a file
 * must write to a temporary file and rename it into place only after the stream finished without
 * error, and delete it otherwise. Only then is "the file exists" the same as "the whole artifact
 * verified".
 *
 * Memory: the encryptor/decryptor hold at most one chunk of input (by reference, plus a reusable
 * staging buffer for small input pieces) and one chunk of output, whatever the artifact's size.
 *
 * Pure: no I/O. Works over byte iterables (`encryptArtifact` / `decryptArtifact`) or push-style
 * (`ArtifactEncryptor` / `ArtifactDecryptor`, on which the iterables are built). AES-GCM is
 * node:crypto's (OpenSSL, AES-NI), which is what makes it run at close to raw AES-GCM speed.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { BadInputError, UnsupportedVersionError, VerificationError } from './errors.ts'
import { abytes, aint, equalBytes, u32, utf8 } from './bytes.ts'
import {
  AEAD_NONCE_LEN, AEAD_TAG_LEN, ARTIFACT_DEFAULT_CHUNK, ARTIFACT_HEADER_LEN, ARTIFACT_MAGIC, ARTIFACT_MAX_CHUNK,
  ARTIFACT_MAX_COUNTER as MAX_COUNTER, ARTIFACT_MIN_CHUNK, ARTIFACT_SALT_LEN, ARTIFACT_VERSION, DATA_KEY_LEN, Tag
} from './constants.ts'

/** Format constants (magic, version, salt and header lengths), defined in constants.ts, re-exported here. */
export { ARTIFACT_MAGIC, ARTIFACT_VERSION, ARTIFACT_SALT_LEN, ARTIFACT_HEADER_LEN } from './constants.ts'
/**
 * Input pieces smaller than this are copied into a staging buffer rather than referenced, so that
 * a source of tiny pieces cannot make the pending list grow to millions of entries, and so that
 * each GCM `update` covers enough bytes to amortise its per-call cost. Measured (Node 20, AES-NI):
 * copying costs ≈ 28 % of the AES-GCM time of the copied bytes, while a direct 16 KiB `update` is
 * within a few % of a 1 MiB one, so pieces of ≥ 16 KiB are decrypted in place.
 */
const COALESCE_BELOW = 16 * 1024

const MAGIC_BYTES = utf8(ARTIFACT_MAGIC)
const AAD_TAG = utf8(Tag.ARTIFACT_HEADER)
const KEY_INFO = utf8(Tag.ARTIFACT_KEY)

/** Parsed artifact header (public data). */
export interface ArtifactHeader {
  version: 1
  chunkSize: number
  salt: Uint8Array
}

/** Options for encryption. */
export interface ArtifactEncryptOptions {
  /** Plaintext bytes per chunk, ARTIFACT_MIN_CHUNK..ARTIFACT_MAX_CHUNK; default 1 MiB. */
  chunkSize?: number
}

/** Test-vector hook: a fixed salt. Not part of the public API (a reused salt + key repeats nonces). */
const SALT_OVERRIDE: unique symbol = Symbol('artifact.salt (test vectors only)')
interface InternalEncryptOptions extends ArtifactEncryptOptions { [SALT_OVERRIDE]?: Uint8Array }

/**
 * Encodes a header. Throws BadInputError('artifact.chunkSize' | 'artifact.salt').
 */
export function encodeArtifactHeader (chunkSize: number, salt: Uint8Array): Uint8Array {
  aint('artifact.chunkSize', chunkSize, ARTIFACT_MIN_CHUNK, ARTIFACT_MAX_CHUNK)
  abytes('artifact.salt', salt, ARTIFACT_SALT_LEN)
  const h = new Uint8Array(ARTIFACT_HEADER_LEN)
  h.set(MAGIC_BYTES, 0)
  h[4] = ARTIFACT_VERSION
  h.set(u32(chunkSize), 5)
  h.set(salt, 9)
  return h
}

/**
 * Decodes and validates the first ARTIFACT_HEADER_LEN bytes of an artifact (extra bytes are
 * ignored: this reads a prefix). Throws BadInputError('artifact.header' | 'artifact.magic' |
 * 'artifact.chunkSize'), UnsupportedVersionError('artifact.version').
 */
export function decodeArtifactHeader (b: Uint8Array): ArtifactHeader {
  abytes('artifact.header', b)
  if (b.length < ARTIFACT_HEADER_LEN) throw new BadInputError('artifact.header', `truncated (need ${ARTIFACT_HEADER_LEN} bytes, have ${b.length})`)
  if (!equalBytes(b.subarray(0, 4), MAGIC_BYTES)) throw new BadInputError('artifact.magic', `not a keymesh artifact (expected magic "${ARTIFACT_MAGIC}")`)
  const version = b[4] as number
  if (version !== ARTIFACT_VERSION) throw new UnsupportedVersionError('artifact.version', version, String(ARTIFACT_VERSION))
  const chunkSize = new DataView(b.buffer, b.byteOffset + 5, 4).getUint32(0, false)
  aint('artifact.chunkSize', chunkSize, ARTIFACT_MIN_CHUNK, ARTIFACT_MAX_CHUNK)
  return { version: ARTIFACT_VERSION, chunkSize, salt: new Uint8Array(b.subarray(9, 9 + ARTIFACT_SALT_LEN)) }
}

/**
 * Exact size of the encrypted artifact for `plainSize` plaintext bytes:
 * header + plainSize + 16 · max(1, ⌈plainSize / chunkSize⌉).
 * Throws BadInputError('artifact.plainSize' | 'artifact.chunkSize').
 */
export function artifactCiphertextSize (plainSize: number, chunkSize: number = ARTIFACT_DEFAULT_CHUNK): number {
  aint('artifact.plainSize', plainSize, 0, Number.MAX_SAFE_INTEGER)
  aint('artifact.chunkSize', chunkSize, ARTIFACT_MIN_CHUNK, ARTIFACT_MAX_CHUNK)
  const chunks = Math.max(1, Math.ceil(plainSize / chunkSize))
  return ARTIFACT_HEADER_LEN + plainSize + chunks * AEAD_TAG_LEN
}

/** aad = SHA-256(u32(len(tag)) ‖ tag ‖ header): length-prefixed like group.hashToScalar. */
function headerAad (header: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(u32(AAD_TAG.length)).update(AAD_TAG).update(header).digest())
}

/**
 * Payload key K = HKDF-SHA256(release key, salt, Tag.ARTIFACT_KEY) (RFC 5869), returned as a
 * KeyObject so the only copy lives in native memory; the temporary byte copy is zeroed here.
 */
function payloadKey (releaseKey: Uint8Array, salt: Uint8Array): KeyObject {
  const k = new Uint8Array(hkdfSync('sha256', releaseKey, salt, KEY_INFO, DATA_KEY_LEN))
  const ko = createSecretKey(k)
  k.fill(0)
  return ko
}

/** nonce = 11-byte big-endian counter ‖ last flag. */
function chunkNonce (counter: number, last: boolean): Buffer {
  return writeChunkNonce(Buffer.alloc(AEAD_NONCE_LEN), counter, last)
}

/**
 * Writes the chunk nonce into `n` (12 bytes whose bytes 0..2 are zero) and returns it. Used with
 * one reusable buffer per stream: createCipheriv/createDecipheriv copy the IV.
 */
function writeChunkNonce (n: Buffer, counter: number, last: boolean): Buffer {
  // counter < 2^53 fits the low 8 of the 11 counter bytes (bytes 3..10); bytes 0..2 stay zero.
  n.writeUInt32BE(Math.floor(counter / 0x100000000), 3)
  n.writeUInt32BE(counter >>> 0, 7)
  n[11] = last ? 1 : 0
  return n
}

/**
 * Intermediate values of one artifact's key schedule (for test vectors and interop debugging).
 * Returns the payload key bytes: the caller owns them and must zero them. Not re-exported from
 * protocol/index.ts. Throws BadInputError.
 */
export function artifactKeySchedule (releaseKey: Uint8Array, header: Uint8Array): { payloadKey: Uint8Array, aad: Uint8Array } {
  abytes('artifact.key', releaseKey, DATA_KEY_LEN)
  const h = decodeArtifactHeader(header)
  return {
    payloadKey: new Uint8Array(hkdfSync('sha256', releaseKey, h.salt, KEY_INFO, DATA_KEY_LEN)),
    aad: headerAad(header.subarray(0, ARTIFACT_HEADER_LEN))
  }
}

/**
 * Low-level: seals one chunk with an explicit counter and flag. For building negative test
 * vectors (reordered, mis-flagged chunks); never needed to encrypt an artifact. Not re-exported
 * from protocol/index.ts. Throws BadInputError.
 */
export function sealArtifactChunk (releaseKey: Uint8Array, header: Uint8Array, counter: number, last: boolean, plaintext: Uint8Array): Uint8Array {
  abytes('artifact.key', releaseKey, DATA_KEY_LEN)
  aint('artifact.counter', counter, 0, MAX_COUNTER)
  abytes('artifact.chunk', plaintext)
  const h = decodeArtifactHeader(header)
  const c = createCipheriv('aes-256-gcm', payloadKey(releaseKey, h.salt), chunkNonce(counter, last), { authTagLength: AEAD_TAG_LEN })
  c.setAAD(headerAad(header.subarray(0, ARTIFACT_HEADER_LEN)))
  return toU8(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]))
}

/**
 * Bytes of the chunk being collected: references to input pieces (large ones) and views of a
 * reusable staging buffer (runs of small ones). Never more than `cap` bytes in total.
 */
class PendingChunk {
  readonly pieces: Uint8Array[] = []
  length = 0
  private stage: Uint8Array | undefined
  private stageUsed = 0
  private lastIsStage = false

  constructor (private readonly cap: number) {}

  /** Adds `b` (b.length ≤ cap − length). Large pieces are kept by reference (see class docs). */
  add (b: Uint8Array): void {
    if (b.length === 0) return
    if (b.length >= COALESCE_BELOW) {
      this.pieces.push(b)
      this.lastIsStage = false
    } else {
      this.stage ??= new Uint8Array(this.cap)
      this.stage.set(b, this.stageUsed)
      const end = this.stageUsed + b.length
      if (this.lastIsStage) {
        const prev = this.pieces.pop() as Uint8Array
        this.pieces.push(this.stage.subarray(end - prev.length - b.length, end))
      } else {
        this.pieces.push(this.stage.subarray(this.stageUsed, end))
        this.lastIsStage = true
      }
      this.stageUsed = end
    }
    this.length += b.length
  }

  /** Forgets the pieces; the staging buffer is reused (its old contents are overwritten). */
  reset (): void {
    this.pieces.length = 0
    this.length = 0
    this.stageUsed = 0
    this.lastIsStage = false
  }

  /** Zeroes the staging buffer (it may hold plaintext) and drops it. */
  wipe (): void {
    this.stage?.fill(0)
    this.stage = undefined
    this.reset()
  }
}

/**
 * Push-style encryptor. `push(bytes)` returns the output produced so far (possibly none),
 * `finish()` returns the rest; concatenated in order they are the artifact. Output pieces are
 * fresh buffers the caller owns.
 *
 * Input ownership: to avoid copying, input pieces of ≥ 64 KiB are kept by reference until the
 * chunk containing them is sealed (at the latest by the next push or finish), so do not modify a
 * pushed buffer afterwards — the same rule as Node's writable streams. Pushing one huge buffer
 * returns all its chunks at once; feed ≤ chunkSize pieces to keep memory constant
 * (`encryptArtifact` does).
 *
 * The release key is owned by the caller; the encryptor keeps only the derived payload key (as a
 * native KeyObject) and never modifies `key`.
 */
export class ArtifactEncryptor {
  /** The 25-byte header (also the first output). */
  readonly header: Uint8Array
  readonly chunkSize: number
  private readonly key: KeyObject
  private readonly aad: Uint8Array
  private readonly pending: PendingChunk
  private readonly nonce = Buffer.alloc(AEAD_NONCE_LEN)
  private counter = 0
  private headerSent = false
  private done = false

  /** Throws BadInputError('artifact.key' | 'artifact.chunkSize'). */
  constructor (key: Uint8Array, opts: ArtifactEncryptOptions = {}) {
    abytes('artifact.key', key, DATA_KEY_LEN)
    this.chunkSize = aint('artifact.chunkSize', opts.chunkSize ?? ARTIFACT_DEFAULT_CHUNK, ARTIFACT_MIN_CHUNK, ARTIFACT_MAX_CHUNK)
    const fixed = (opts as InternalEncryptOptions)[SALT_OVERRIDE]
    const salt = fixed !== undefined ? new Uint8Array(abytes('artifact.salt', fixed, ARTIFACT_SALT_LEN)) : new Uint8Array(randomBytes(ARTIFACT_SALT_LEN))
    this.header = encodeArtifactHeader(this.chunkSize, salt)
    this.key = payloadKey(key, salt)
    this.aad = headerAad(this.header)
    this.pending = new PendingChunk(this.chunkSize)
  }

  /** Adds plaintext. Throws BadInputError('artifact.plaintext') on non-bytes, Error after finish(). */
  push (data: Uint8Array): Uint8Array[] {
    abytes('artifact.plaintext', data)
    if (this.done) throw new Error('ArtifactEncryptor: push after finish')
    const out: Uint8Array[] = []
    this.sendHeader(out)
    let off = 0
    while (off < data.length) {
      // A full pending chunk is sealed as non-final only once more data proves it is not the last.
      if (this.pending.length === this.chunkSize) this.seal(false, out)
      const take = Math.min(this.chunkSize - this.pending.length, data.length - off)
      this.pending.add(data.subarray(off, off + take))
      off += take
    }
    return out
  }

  /** Seals the final chunk (empty only when nothing was pushed). Throws Error when called twice. */
  finish (): Uint8Array[] {
    if (this.done) throw new Error('ArtifactEncryptor: finish called twice')
    const out: Uint8Array[] = []
    this.sendHeader(out)
    this.seal(true, out)
    this.done = true
    this.pending.wipe()
    return out
  }

  /** Abandons the stream: zeroes the staging buffer (it may hold plaintext). Later calls throw. Throws nothing. */
  destroy (): void {
    this.done = true
    this.pending.wipe()
  }

  private sendHeader (out: Uint8Array[]): void {
    if (!this.headerSent) { out.push(new Uint8Array(this.header)); this.headerSent = true }
  }

  private seal (last: boolean, out: Uint8Array[]): void {
    if (this.counter > MAX_COUNTER) throw new BadInputError('artifact.plaintext', 'artifact too large (chunk counter exhausted)')
    const c = createCipheriv('aes-256-gcm', this.key, writeChunkNonce(this.nonce, this.counter, last), { authTagLength: AEAD_TAG_LEN })
    c.setAAD(this.aad)
    for (const p of this.pending.pieces) {
      const ct = c.update(p)
      if (ct.length > 0) out.push(ct)
    }
    const fin = c.final()
    if (fin.length > 0) out.push(fin)
    out.push(c.getAuthTag())
    this.counter++
    this.pending.reset()
  }
}

/**
 * Push-style decryptor. `push(bytes)` returns plaintext of every chunk completed *and verified*
 * so far; `finish()` verifies the final chunk and returns its plaintext. Plaintext of a chunk is
 * never returned before its tag verified, but earlier verified chunks are returned before a later
 * chunk fails: write to a temporary file and rename only after `finish()` succeeded.
 *
 * Throws (from push or finish) BadInputError('artifact.magic' | 'artifact.chunkSize' |
 * 'artifact.header' | 'artifact.ciphertext'), UnsupportedVersionError('artifact.version'),
 * VerificationError (wrong key, modified, reordered, dropped or truncated chunks, data after the
 * final chunk). After a throw the decryptor is dead: every later call throws the same error.
 * Same input-ownership rule as ArtifactEncryptor.
 */
export class ArtifactDecryptor {
  private readonly releaseKey: Uint8Array
  private headerBuf: Uint8Array | undefined = new Uint8Array(ARTIFACT_HEADER_LEN)
  private headerGot = 0
  private header: ArtifactHeader | undefined
  private key: KeyObject | undefined
  private aad: Uint8Array | undefined
  private ctChunk = 0
  private pending: PendingChunk | undefined
  /** Reusable per-chunk scratch: nonce (the IV is copied by createDecipheriv), tag (copied by
   * setAuthTag) and the list of a chunk's not-yet-verified plaintext segments. */
  private readonly nonce = Buffer.alloc(AEAD_NONCE_LEN)
  private readonly tag = Buffer.alloc(AEAD_TAG_LEN)
  private readonly plain: Buffer[] = []
  private counter = 0
  private failed: Error | undefined
  private done = false

  /** Throws BadInputError('artifact.key'). Keeps a copy of the key until the header arrives. */
  constructor (key: Uint8Array) {
    // A real copy: Buffer#slice would alias the caller's key, which wipe() zeroes.
    this.releaseKey = new Uint8Array(abytes('artifact.key', key, DATA_KEY_LEN))
  }

  /** The parsed header, once its 25 bytes have been pushed. */
  get parsedHeader (): ArtifactHeader | undefined { return this.header }

  /** Adds ciphertext; returns verified plaintext (fresh buffers the caller owns). */
  push (data: Uint8Array): Uint8Array[] {
    abytes('artifact.ciphertext', data)
    this.alive()
    try {
      const out: Uint8Array[] = []
      let off = 0
      if (this.header === undefined) {
        off = this.readHeader(data)
        if (this.header === undefined) return out
      }
      const pending = this.pending as PendingChunk
      while (off < data.length) {
        if (pending.length === this.ctChunk) this.open(false, out)
        const take = Math.min(this.ctChunk - pending.length, data.length - off)
        pending.add(data.subarray(off, off + take))
        off += take
      }
      return out
    } catch (e) { throw this.fail(e) }
  }

  /** Ends the stream: verifies the final chunk. Throws as described on the class. */
  finish (): Uint8Array[] {
    this.alive()
    try {
      if (this.header === undefined) throw new BadInputError('artifact.header', `truncated (need ${ARTIFACT_HEADER_LEN} bytes, have ${this.headerGot})`)
      const pending = this.pending as PendingChunk
      if (pending.length < AEAD_TAG_LEN) {
        throw new VerificationError(this.counter === 0 && pending.length === 0
          ? 'artifact truncated: no chunks after the header'
          : 'artifact truncated: stream ended without a final chunk')
      }
      if (pending.length === AEAD_TAG_LEN && this.counter > 0) {
        // Only an empty artifact has an empty (final) chunk; the encoder never emits one after data.
        throw new VerificationError('artifact malformed: empty final chunk after data')
      }
      const out: Uint8Array[] = []
      this.open(true, out)
      this.done = true
      this.wipe()
      return out
    } catch (e) { throw this.fail(e) }
  }

  /** Abandons the stream: zeroes the key copy and buffers. Later calls throw. Throws nothing. */
  destroy (): void {
    if (this.failed === undefined && !this.done) this.failed = new Error('ArtifactDecryptor: destroyed')
    this.wipe()
  }

  private alive (): void {
    if (this.failed !== undefined) throw this.failed
    if (this.done) throw new Error('ArtifactDecryptor: used after finish')
  }

  private fail (e: unknown): Error {
    const err = e instanceof Error ? e : new Error(String(e))
    this.failed = err
    this.wipe()
    return err
  }

  private wipe (): void {
    this.releaseKey.fill(0)
    this.pending?.wipe()
  }

  /** Collects header bytes; returns how many bytes of `data` were consumed. */
  private readHeader (data: Uint8Array): number {
    const buf = this.headerBuf as Uint8Array
    const take = Math.min(ARTIFACT_HEADER_LEN - this.headerGot, data.length)
    buf.set(data.subarray(0, take), this.headerGot)
    this.headerGot += take
    // Reject a wrong magic/version as early as possible, before waiting for the whole header.
    if (this.headerGot >= 4 && !equalBytes(buf.subarray(0, 4), MAGIC_BYTES)) throw new BadInputError('artifact.magic', `not a keymesh artifact (expected magic "${ARTIFACT_MAGIC}")`)
    if (this.headerGot < ARTIFACT_HEADER_LEN) return take
    const h = decodeArtifactHeader(buf)
    this.header = h
    this.key = payloadKey(this.releaseKey, h.salt)
    this.releaseKey.fill(0)
    this.aad = headerAad(buf)
    this.ctChunk = h.chunkSize + AEAD_TAG_LEN
    this.pending = new PendingChunk(this.ctChunk)
    this.headerBuf = undefined
    return take
  }

  /**
   * Verifies and decrypts the pending chunk; appends its plaintext only after the tag verified.
   * The ciphertext is decrypted straight from the referenced input pieces (no copy; only pieces
   * under COALESCE_BELOW were copied, into the staging buffer): one `update` per piece.
   */
  private open (last: boolean, out: Uint8Array[]): void {
    if (this.counter > MAX_COUNTER) throw new BadInputError('artifact.ciphertext', 'artifact too large (chunk counter exhausted)')
    const pending = this.pending as PendingChunk
    const ctLen = pending.length - AEAD_TAG_LEN
    const d = createDecipheriv('aes-256-gcm', this.key as KeyObject, writeChunkNonce(this.nonce, this.counter, last), { authTagLength: AEAD_TAG_LEN })
    d.setAAD(this.aad as Uint8Array)
    const tag = this.tag
    const plain = this.plain
    let pos = 0
    for (const p of pending.pieces) {
      const end = pos + p.length
      if (pos < ctLen) {
        const n = Math.min(p.length, ctLen - pos)
        const pt = d.update(n === p.length ? p : p.subarray(0, n))
        if (pt.length > 0) plain.push(pt)
      }
      if (end > ctLen) {
        const from = Math.max(0, ctLen - pos)
        tag.set(p.subarray(from), pos + from - ctLen)
      }
      pos = end
    }
    d.setAuthTag(tag)
    try {
      const fin = d.final()
      if (fin.length > 0) plain.push(fin)
    } catch {
      // Unverified plaintext never leaves this function.
      for (const p of plain) p.fill(0)
      plain.length = 0
      throw new VerificationError(this.counter === 0
        ? 'artifact does not verify: wrong key, modified header or modified first chunk'
        : `artifact does not verify at chunk ${this.counter}: modified, reordered, dropped or truncated chunks, or data after the final chunk`)
    }
    for (const p of plain) out.push(p)
    plain.length = 0
    this.counter++
    pending.reset()
  }
}

/** A plain Uint8Array view of a Buffer (no copy). */
function toU8 (b: Buffer): Uint8Array { return new Uint8Array(b.buffer, b.byteOffset, b.length) }

/**
 * Encrypts a byte stream into an artifact stream (header first), in constant memory.
 * `key`: the 32-byte release key (owned by the caller, not modified). Throws
 * BadInputError('artifact.key' | 'artifact.chunkSize' | 'artifact.plaintext'); errors of
 * `source` propagate.
 */
export async function * encryptArtifact (key: Uint8Array, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: ArtifactEncryptOptions = {}): AsyncGenerator<Uint8Array> {
  const enc = new ArtifactEncryptor(key, opts)
  const max = enc.chunkSize
  try {
    for await (const piece of source) {
      abytes('artifact.plaintext', piece)
      // Push at most one chunk's worth at a time so each push seals at most one chunk.
      if (piece.length <= max) { for (const c of enc.push(piece)) yield c; continue }
      for (let o = 0; o < piece.length; o += max) for (const c of enc.push(piece.subarray(o, Math.min(o + max, piece.length)))) yield c
    }
    for (const c of enc.finish()) yield c
  } finally {
    // Also on error or when the consumer stops early: no plaintext left in the staging buffer.
    enc.destroy()
  }
}

/**
 * Decrypts an artifact stream, yielding plaintext chunk by chunk, each only after its tag
 * verified. Earlier chunks are yielded before a later chunk may fail: write to a temp file and
 * rename only after the iteration completed. Throws as ArtifactDecryptor (BadInputError,
 * UnsupportedVersionError, VerificationError); errors of `source` propagate.
 */
export async function * decryptArtifact (key: Uint8Array, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const dec = new ArtifactDecryptor(key)
  try {
    for await (const piece of source) {
      abytes('artifact.ciphertext', piece)
      // Push at most one ciphertext chunk at a time, so each push opens at most one chunk and every
      // verified chunk is yielded before the next one is even tried.
      for (let o = 0; o < piece.length;) {
        const h = dec.parsedHeader
        const max = h === undefined ? ARTIFACT_HEADER_LEN : h.chunkSize + AEAD_TAG_LEN
        const end = Math.min(o + max, piece.length)
        for (const c of dec.push(piece.subarray(o, end))) yield c
        o = end
      }
    }
    for (const c of dec.finish()) yield c
  } finally {
    dec.destroy()
  }
}

/**
 * Whole-buffer convenience for small artifacts (tests, manifests): encrypts `plaintext` at once.
 * Throws like encryptArtifact.
 */
export function encryptArtifactBytes (key: Uint8Array, plaintext: Uint8Array, opts: ArtifactEncryptOptions = {}): Uint8Array {
  const enc = new ArtifactEncryptor(key, opts)
  return toU8(Buffer.concat([...enc.push(plaintext), ...enc.finish()]))
}

/** Whole-buffer convenience: decrypts and verifies a complete artifact. Throws like decryptArtifact. */
export function decryptArtifactBytes (key: Uint8Array, artifact: Uint8Array): Uint8Array {
  const dec = new ArtifactDecryptor(key)
  return toU8(Buffer.concat([...dec.push(artifact), ...dec.finish()]))
}

/**
 * Test-vector hook: an encryptor with a fixed salt. Never use outside tests — reusing a
 * (key, salt) pair repeats GCM nonces. Not re-exported from protocol/index.ts.
 */
export function artifactEncryptorWithSalt (key: Uint8Array, salt: Uint8Array, opts: ArtifactEncryptOptions = {}): ArtifactEncryptor {
  const o: InternalEncryptOptions = { ...opts, [SALT_OVERRIDE]: salt }
  return new ArtifactEncryptor(key, o)
}
