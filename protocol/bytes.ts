/**
 * Byte helpers: labelled assertions, a bounds-checked reader and a writer, encodings.
 *
 * All binary formats in docs/PROTOCOL.md use big-endian integers and u16/u32 length prefixes;
 * Reader/Writer are the only code that touches offsets, so a malformed input always ends in a
 * BadInputError naming the field, never in an out-of-bounds read or a partial result.
 */
import { BadInputError } from './errors.ts'

const te = new TextEncoder()
const td = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Asserts `b` is a Uint8Array, of exactly `len` bytes when given. Throws BadInputError(field). */
export function abytes (field: string, b: unknown, len?: number): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new BadInputError(field, 'expected bytes')
  if (len !== undefined && b.length !== len) throw new BadInputError(field, `expected ${len} bytes, got ${b.length}`)
  return b
}

/** Asserts an integer in [min, max]. Throws BadInputError(field). */
export function aint (field: string, n: unknown, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new BadInputError(field, `expected an integer in [${min}, ${max}]`)
  }
  return n
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  let len = 0
  for (const p of parts) len += p.length
  const out = new Uint8Array(len)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

/** Constant-time equality for equal-length inputs (length itself is not secret). */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number)
  return d === 0
}

export function utf8 (s: string): Uint8Array { return te.encode(s) }

/** Strict UTF-8 decode. Throws BadInputError(field) on invalid UTF-8. */
export function fromUtf8 (field: string, b: Uint8Array): string {
  try { return td.decode(b) } catch { throw new BadInputError(field, 'invalid UTF-8') }
}

export function u16 (n: number): Uint8Array { return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]) }
export function u32 (n: number): Uint8Array {
  const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n >>> 0, false); return b
}
export function u64 (n: bigint): Uint8Array {
  const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, n, false); return b
}

export function toHex (b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex') }

/** Strict lowercase/uppercase hex, even length, exact byte length when given. */
export function fromHex (field: string, s: unknown, len?: number): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new BadInputError(field, 'expected hex')
  const b = new Uint8Array(Buffer.from(s, 'hex'))
  if (len !== undefined && b.length !== len) throw new BadInputError(field, `expected ${len} bytes, got ${b.length}`)
  return b
}

export function toB64u (b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url') }

/**
 * Strict unpadded base64url (RFC 4648 §5): rejects padding, whitespace, foreign characters and
 * non-canonical trailing bits (re-encoding must give back the input).
 */
export function fromB64u (field: string, s: unknown, maxLen = 16 * 1024 * 1024): Uint8Array {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new BadInputError(field, 'expected unpadded base64url')
  if (s.length > Math.ceil(maxLen * 4 / 3) + 4) throw new BadInputError(field, `longer than ${maxLen} bytes`)
  const b = Buffer.from(s, 'base64url')
  if (b.toString('base64url') !== s) throw new BadInputError(field, 'non-canonical base64url')
  if (b.length > maxLen) throw new BadInputError(field, `longer than ${maxLen} bytes`)
  return new Uint8Array(b)
}

/** Appends big-endian fields; `bytes()` returns the result. */
export class Writer {
  private readonly parts: Uint8Array[] = []
  u8 (n: number): this { this.parts.push(new Uint8Array([n & 0xff])); return this }
  u16 (n: number): this { this.parts.push(u16(n)); return this }
  u32 (n: number): this { this.parts.push(u32(n)); return this }
  u64 (n: bigint): this { this.parts.push(u64(n)); return this }
  raw (b: Uint8Array): this { this.parts.push(b); return this }
  /** u16 length prefix then the bytes. Throws RangeError when longer than 65535. */
  var16 (b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError('var16 field longer than 65535 bytes')
    return this.u16(b.length).raw(b)
  }
  /** u32 length prefix then the bytes. */
  var32 (b: Uint8Array): this { return this.u32(b.length).raw(b) }
  bytes (): Uint8Array { return concat(...this.parts) }
}

/**
 * Bounds-checked cursor. Every read names its field; reading past the end throws
 * BadInputError(field, 'truncated'). Call `end()` to reject trailing bytes.
 */
export class Reader {
  private off = 0
  private readonly view: DataView
  constructor (private readonly buf: Uint8Array, private readonly what: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  get offset (): number { return this.off }
  get remaining (): number { return this.buf.length - this.off }

  private need (field: string, n: number): void {
    if (this.buf.length - this.off < n) throw new BadInputError(`${this.what}.${field}`, `truncated (need ${n} bytes, have ${this.buf.length - this.off})`)
  }

  u8 (field: string): number { this.need(field, 1); return this.buf[this.off++] as number }
  u16 (field: string): number { this.need(field, 2); const v = this.view.getUint16(this.off, false); this.off += 2; return v }
  u32 (field: string): number { this.need(field, 4); const v = this.view.getUint32(this.off, false); this.off += 4; return v }
  u64 (field: string): bigint { this.need(field, 8); const v = this.view.getBigUint64(this.off, false); this.off += 8; return v }
  /** Exactly n bytes (a copy-free subarray of the input). */
  raw (field: string, n: number): Uint8Array { this.need(field, n); const v = this.buf.subarray(this.off, this.off + n); this.off += n; return v }
  /** u16-prefixed bytes, at most `max`. */
  var16 (field: string, max = 0xffff): Uint8Array {
    const n = this.u16(field)
    if (n > max) throw new BadInputError(`${this.what}.${field}`, `length ${n} exceeds maximum ${max}`)
    return this.raw(field, n)
  }
  /** u32-prefixed bytes, at most `max`. */
  var32 (field: string, max: number): Uint8Array {
    const n = this.u32(field)
    if (n > max) throw new BadInputError(`${this.what}.${field}`, `length ${n} exceeds maximum ${max}`)
    return this.raw(field, n)
  }
  /** Throws unless every byte was consumed. */
  end (): void {
    if (this.off !== this.buf.length) throw new BadInputError(this.what, `${this.buf.length - this.off} unexpected trailing bytes`)
  }
}
