import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import {
  ARTIFACT_HEADER_LEN, ArtifactDecryptor, ArtifactEncryptor, artifactCiphertextSize, artifactEncryptorWithSalt,
  decodeArtifactHeader, decryptArtifact, decryptArtifactBytes, encodeArtifactHeader, encryptArtifact,
  encryptArtifactBytes, sealArtifactChunk
} from '../../protocol/artifact.ts'
import { BadInputError, UnsupportedVersionError, VerificationError } from '../../protocol/errors.ts'
import { ARTIFACT_DEFAULT_CHUNK, ARTIFACT_MAX_CHUNK, ARTIFACT_MIN_CHUNK } from '../../protocol/constants.ts'
import { concat } from '../../protocol/bytes.ts'

const CS = ARTIFACT_MIN_CHUNK
const key = new Uint8Array(randomBytes(32))

function bytes (n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

async function collect (it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of it) parts.push(p)
  return concat(...parts)
}

/** Splits an artifact (chunkSize CS) into header and ciphertext chunks. */
function split (a: Uint8Array, cs = CS): { header: Uint8Array, chunks: Uint8Array[] } {
  const header = a.subarray(0, ARTIFACT_HEADER_LEN)
  const chunks: Uint8Array[] = []
  for (let o = ARTIFACT_HEADER_LEN; o < a.length; o += cs + 16) chunks.push(a.subarray(o, Math.min(o + cs + 16, a.length)))
  return { header, chunks }
}

describe('artifact round trips', () => {
  for (const n of [0, 1, CS - 1, CS, CS + 1, 3 * CS, 3 * CS + 7]) {
    it(`${n} bytes (whole buffer)`, () => {
      const pt = bytes(n)
      const a = encryptArtifactBytes(key, pt, { chunkSize: CS })
      expect(a.length).toBe(artifactCiphertextSize(n, CS))
      expect(decryptArtifactBytes(key, a)).toEqual(pt)
    })
  }

  it('streams with odd input slicing on both sides', async () => {
    const pt = bytes(5 * CS + 123)
    async function * pieces (b: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
      let o = 0; let i = 0
      while (o < b.length) { const s = sizes[i++ % sizes.length] as number; yield b.subarray(o, o + s); o += s }
    }
    const a = await collect(encryptArtifact(key, pieces(pt, [1, 0, 4097, 70000, 3, 8191]), { chunkSize: CS }))
    expect(a.length).toBe(artifactCiphertextSize(pt.length, CS))
    expect(await collect(decryptArtifact(key, pieces(a, [7, 4112, 1, 0, 100000, 13])))).toEqual(pt)
  })

  it('push-style decryptor with odd slicing: in-place and staged pieces, one output per piece part', () => {
    // 64 KiB chunks; slices mix tiny pieces (< 16 KiB: staged), medium ones (decrypted in place from
    // the caller's buffer), exactly one ciphertext chunk, and pieces spanning several chunks.
    const cs = 64 * 1024
    const pt = bytes(7 * cs + 1234, 5)
    const a = encryptArtifactBytes(key, pt, { chunkSize: cs })
    const copy = a.slice()
    for (const sizes of [[1, 24, cs + 16], [3, 17000, 5, 9999, 40000, 2], [cs + 17, 3 * (cs + 16) + 1, 16384, 1], [a.length]]) {
      const d = new ArtifactDecryptor(key)
      const out: Uint8Array[] = []
      let o = 0; let i = 0
      while (o < a.length) { const n = sizes[i++ % sizes.length] as number; out.push(...d.push(a.subarray(o, o + n))); o += n }
      out.push(...d.finish())
      expect(Buffer.compare(concat(...out), pt)).toBe(0)
    }
    expect(Buffer.compare(a, copy)).toBe(0) // input never modified (in-place decryption only reads it)
    // Pieces aligned to ciphertext chunks: each chunk is one GCM update straight from the piece, so
    // exactly one plaintext buffer per chunk.
    const d = new ArtifactDecryptor(key)
    const { header, chunks } = split(a, cs)
    const out = [...d.push(header), ...chunks.flatMap(c => d.push(c)), ...d.finish()]
    expect(out.map(x => x.length)).toEqual([...Array(7).fill(cs), 1234])
    // Corrupt chunk 3 in a mixed-slicing stream: chunks 0..2 come out verified, nothing of chunk 3.
    const bad = new Uint8Array(a); bad[ARTIFACT_HEADER_LEN + 3 * (cs + 16) + 20000]! ^= 1
    const d2 = new ArtifactDecryptor(key)
    const got: Uint8Array[] = []
    let err: unknown
    try {
      for (let o = 0, i = 0; o < bad.length; o += [5, 17000, 9999][i++ % 3] as number) got.push(...d2.push(bad.subarray(o, o + ([5, 17000, 9999][i % 3] as number))))
    } catch (e) { err = e }
    expect(err).toBeInstanceOf(VerificationError)
    expect(Buffer.compare(concat(...got), pt.subarray(0, 3 * cs))).toBe(0)
  })

  it('accepts sync iterables and uses the default chunk size', async () => {
    const pt = bytes(ARTIFACT_DEFAULT_CHUNK + 5)
    const a = await collect(encryptArtifact(key, [pt]))
    expect(decodeArtifactHeader(a).chunkSize).toBe(ARTIFACT_DEFAULT_CHUNK)
    expect(a.length).toBe(artifactCiphertextSize(pt.length))
    // Buffer.compare: toEqual on a megabyte is slow.
    expect(Buffer.compare(await collect(decryptArtifact(key, [a])), pt)).toBe(0)
  })

  it('push-style classes: header first, one chunk per full chunk, empty artifact has one chunk', () => {
    const enc = new ArtifactEncryptor(key, { chunkSize: CS })
    const first = enc.push(new Uint8Array(0))
    expect(first).toHaveLength(1)
    expect(first[0]).toEqual(enc.header)
    const rest = enc.finish()
    const a = concat(...first, ...rest)
    expect(a.length).toBe(ARTIFACT_HEADER_LEN + 16)
    const dec = new ArtifactDecryptor(key)
    expect(concat(...dec.push(a), ...dec.finish())).toEqual(new Uint8Array(0))
    expect(dec.parsedHeader?.chunkSize).toBe(CS)
    expect(() => enc.push(new Uint8Array(1))).toThrow(/after finish/)
  })

  it('a full chunk is only sealed once more data proves it is not the last', () => {
    const enc = new ArtifactEncryptor(key, { chunkSize: CS })
    expect(concat(...enc.push(bytes(CS))).length).toBe(ARTIFACT_HEADER_LEN)
    expect(concat(...enc.push(bytes(1))).length).toBe(CS + 16)
  })

  it('does not modify the caller\'s key or input', async () => {
    const k = new Uint8Array(key)
    const pt = bytes(2 * CS + 3)
    const ptCopy = new Uint8Array(pt)
    const a = await collect(encryptArtifact(k, [pt], { chunkSize: CS }))
    await collect(decryptArtifact(k, [a]))
    const bad = new Uint8Array(a); bad[bad.length - 1]! ^= 1
    await expect(collect(decryptArtifact(k, [bad]))).rejects.toThrow(VerificationError)
    expect(k).toEqual(key)
    expect(pt).toEqual(ptCopy)
  })

  it('a consumer that stops early leaves the iterators destroyed', async () => {
    const pt = bytes(3 * CS)
    for await (const _ of encryptArtifact(key, [pt], { chunkSize: CS })) break
    const a = encryptArtifactBytes(key, pt, { chunkSize: CS })
    const got: Uint8Array[] = []
    for await (const p of decryptArtifact(key, [a.subarray(0, 25 + CS + 16), a.subarray(25 + CS + 16)])) { got.push(p); break }
    expect(concat(...got)).toEqual(pt.subarray(0, CS))
    const d = new ArtifactDecryptor(key)
    d.destroy()
    expect(() => d.push(a)).toThrow(/destroyed/)
    const e = new ArtifactEncryptor(key)
    e.destroy()
    expect(() => e.push(pt)).toThrow(/after finish/)
  })

  it('uses a fresh salt (hence a fresh payload key) per artifact', () => {
    const a = encryptArtifactBytes(key, bytes(10), { chunkSize: CS })
    const b = encryptArtifactBytes(key, bytes(10), { chunkSize: CS })
    expect(a.subarray(9, 25)).not.toEqual(b.subarray(9, 25))
    expect(a.subarray(25)).not.toEqual(b.subarray(25))
  })
})

describe('artifact tampering is rejected', () => {
  const pt = bytes(3 * CS + 10)
  const salt = new Uint8Array(16).fill(9)
  const e = artifactEncryptorWithSalt(key, salt, { chunkSize: CS })
  const a = concat(...e.push(pt), ...e.finish())
  const { header, chunks } = split(a)

  function rejects (bad: Uint8Array, cls: new (...args: never[]) => Error, k = key): void {
    expect(() => decryptArtifactBytes(k, bad)).toThrow(cls)
  }

  it('truncation at a chunk boundary', () => { rejects(concat(header, ...chunks.slice(0, 3)), VerificationError) })
  it('truncation inside a chunk', () => { rejects(a.subarray(0, a.length - 5), VerificationError) })
  it('truncation to fewer than 16 bytes of a chunk', () => { rejects(concat(header, ...chunks.slice(0, 3), (chunks[3] as Uint8Array).subarray(0, 10)), VerificationError) })
  it('header only', () => { rejects(header, VerificationError) })
  it('truncated header', () => { rejects(header.subarray(0, 20), BadInputError) })
  it('reordered chunks', () => { rejects(concat(header, chunks[1]!, chunks[0]!, chunks[2]!, chunks[3]!), VerificationError) })
  it('dropped chunk', () => { rejects(concat(header, chunks[0]!, chunks[2]!, chunks[3]!), VerificationError) })
  it('duplicated chunk', () => { rejects(concat(header, chunks[0]!, chunks[0]!, chunks[1]!, chunks[2]!, chunks[3]!), VerificationError) })
  it('trailing data after the final chunk', () => { rejects(concat(a, new Uint8Array([0])), VerificationError) })
  it('a second artifact appended', () => { rejects(concat(a, a), VerificationError) })
  it('flipped ciphertext bit', () => { const b = new Uint8Array(a); b[ARTIFACT_HEADER_LEN + CS + 20]! ^= 0x80; rejects(b, VerificationError) })
  it('flipped tag bit', () => { const b = new Uint8Array(a); b[ARTIFACT_HEADER_LEN + CS + 16 - 1]! ^= 1; rejects(b, VerificationError) })
  it('flipped salt bit', () => { const b = new Uint8Array(a); b[12]! ^= 1; rejects(b, VerificationError) })
  it('changed chunk size (valid value)', () => { const b = new Uint8Array(a); b.set(encodeArtifactHeader(2 * CS, salt)); rejects(b, VerificationError) })
  it('bad magic', () => { const b = new Uint8Array(a); b[0] = 0x4c; rejects(b, BadInputError) })
  it('unknown version', () => { const b = new Uint8Array(a); b[4] = 2; rejects(b, UnsupportedVersionError) })
  it('chunk size out of range', () => {
    const b = new Uint8Array(a); new DataView(b.buffer).setUint32(5, CS - 1); rejects(b, BadInputError)
    new DataView(b.buffer).setUint32(5, ARTIFACT_MAX_CHUNK + 1); rejects(b, BadInputError)
  })
  it('wrong key', () => { rejects(a, VerificationError, new Uint8Array(32).fill(1)) })
  it('final flag on a middle chunk (early final)', () => {
    const early = sealArtifactChunk(key, header, 1, true, pt.subarray(CS, 2 * CS))
    rejects(concat(header, chunks[0]!, early, chunks[2]!, chunks[3]!), VerificationError)
  })
  it('last chunk without the final flag', () => {
    const nf = sealArtifactChunk(key, header, 3, false, pt.subarray(3 * CS))
    rejects(concat(header, ...chunks.slice(0, 3), nf), VerificationError)
  })
  it('an empty final chunk after data', () => {
    const c2 = sealArtifactChunk(key, header, 2, false, pt.subarray(2 * CS, 3 * CS))
    const empty = sealArtifactChunk(key, header, 3, true, new Uint8Array(0))
    rejects(concat(header, chunks[0]!, chunks[1]!, c2, empty), VerificationError)
  })

  it('never yields a chunk before its tag verified; earlier verified chunks may come first', async () => {
    const b = new Uint8Array(a); b[ARTIFACT_HEADER_LEN + (CS + 16) + 3]! ^= 1 // corrupt chunk 1
    const got: Uint8Array[] = []
    const pieces = [b.subarray(0, ARTIFACT_HEADER_LEN + CS + 16), b.subarray(ARTIFACT_HEADER_LEN + CS + 16)]
    await expect((async () => { for await (const p of decryptArtifact(key, pieces)) got.push(p) })()).rejects.toThrow(/chunk 1/)
    expect(concat(...got)).toEqual(pt.subarray(0, CS))
  })

  it('a failed decryptor stays failed', () => {
    const d = new ArtifactDecryptor(key)
    const bad = new Uint8Array(a); bad[4] = 7
    expect(() => d.push(bad)).toThrow(UnsupportedVersionError)
    expect(() => d.push(a)).toThrow(UnsupportedVersionError)
    expect(() => d.finish()).toThrow(UnsupportedVersionError)
  })
})

describe('artifact input validation', () => {
  it('rejects bad keys, chunk sizes and non-bytes', async () => {
    expect(() => new ArtifactEncryptor(new Uint8Array(31))).toThrow(BadInputError)
    expect(() => new ArtifactDecryptor(new Uint8Array(33))).toThrow(BadInputError)
    expect(() => new ArtifactEncryptor(key, { chunkSize: ARTIFACT_MIN_CHUNK - 1 })).toThrow(BadInputError)
    expect(() => new ArtifactEncryptor(key, { chunkSize: ARTIFACT_MAX_CHUNK + 1 })).toThrow(BadInputError)
    expect(() => new ArtifactEncryptor(key, { chunkSize: 5000.5 })).toThrow(BadInputError)
    expect(() => new ArtifactEncryptor(key).push('x' as unknown as Uint8Array)).toThrow(BadInputError)
    await expect(collect(encryptArtifact(key, ['x' as unknown as Uint8Array]))).rejects.toThrow(BadInputError)
    expect(() => artifactCiphertextSize(-1)).toThrow(BadInputError)
    expect(() => decodeArtifactHeader(new Uint8Array(3))).toThrow(BadInputError)
  })

  it('artifactCiphertextSize', () => {
    expect(artifactCiphertextSize(0, CS)).toBe(25 + 16)
    expect(artifactCiphertextSize(CS, CS)).toBe(25 + CS + 16)
    expect(artifactCiphertextSize(CS + 1, CS)).toBe(25 + CS + 1 + 32)
  })
})

describe('artifact constant memory', () => {
  it('streams a 200 MB artifact through encrypt and decrypt without buffering it', async () => {
    const total = 200 * 1024 * 1024
    const piece = 1024 * 1024 + 17 // misaligned with the chunk size on purpose
    async function * source (): AsyncGenerator<Uint8Array> {
      let sent = 0; let i = 0
      while (sent < total) {
        const n = Math.min(piece, total - sent)
        const b = new Uint8Array(n).fill(i++ & 0xff)
        sent += n
        yield b
      }
    }
    const hIn = createHash('sha256')
    async function * tap (src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> { for await (const b of src) { hIn.update(b); yield b } }
    const hOut = createHash('sha256')
    const before = process.memoryUsage().rss
    let peak = before
    let n = 0
    for await (const b of decryptArtifact(key, encryptArtifact(key, tap(source())))) {
      hOut.update(b); n += b.length
      peak = Math.max(peak, process.memoryUsage().rss)
    }
    expect(n).toBe(total)
    expect(hOut.digest('hex')).toBe(hIn.digest('hex'))
    // Generous bound (GC is lazy): far less than the 200 MB that buffering would cost.
    console.log(`artifact 200 MB stream: rss growth ${((peak - before) / 1048576).toFixed(1)} MiB`)
    expect(peak - before).toBeLessThan(100 * 1024 * 1024)
  })
})
