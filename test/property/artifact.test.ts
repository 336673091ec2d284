import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ArtifactDecryptor, ArtifactEncryptor, artifactCiphertextSize, decryptArtifact, encryptArtifact } from '../../protocol/artifact.ts'
import { VerificationError } from '../../protocol/errors.ts'
import { ARTIFACT_MIN_CHUNK } from '../../protocol/constants.ts'
import { concat } from '../../protocol/bytes.ts'

const key = new Uint8Array(32).fill(0x42)

/** Cuts `b` at the given fractional positions (sorted, deduplicated). */
function cut (b: Uint8Array, fractions: number[]): Uint8Array[] {
  const points = [...new Set(fractions.map(f => Math.floor(f * b.length)))].sort((x, y) => x - y)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) { out.push(b.subarray(prev, p)); prev = p }
  out.push(b.subarray(prev))
  return out
}

async function collect (it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of it) parts.push(p)
  return concat(...parts)
}

const sizes = fc.oneof(
  fc.integer({ min: 0, max: 3 * ARTIFACT_MIN_CHUNK + 50 }),
  fc.constantFrom(0, 1, ARTIFACT_MIN_CHUNK - 1, ARTIFACT_MIN_CHUNK, ARTIFACT_MIN_CHUNK + 1, 2 * ARTIFACT_MIN_CHUNK)
)
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 })
const chunkSizes = fc.constantFrom(ARTIFACT_MIN_CHUNK, ARTIFACT_MIN_CHUNK + 1, 5000)

describe('artifact properties', () => {
  it('any plaintext and any input/ciphertext slicing round-trips exactly', async () => {
    await fc.assert(fc.asyncProperty(sizes, fc.integer({ min: 0, max: 255 }), chunkSizes, cuts, cuts, async (n, seed, cs, ptCuts, ctCuts) => {
      const pt = new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff)
      const a = await collect(encryptArtifact(key, cut(pt, ptCuts), { chunkSize: cs }))
      expect(a.length).toBe(artifactCiphertextSize(n, cs))
      const back = await collect(decryptArtifact(key, cut(a, ctCuts)))
      expect(Buffer.compare(back, pt)).toBe(0)
    }), { numRuns: 60 })
  })

  it('the push classes give the same plaintext however the ciphertext is sliced', () => {
    fc.assert(fc.property(sizes, chunkSizes, cuts, (n, cs, ctCuts) => {
      const pt = new Uint8Array(n).fill(n & 0xff)
      const e = new ArtifactEncryptor(key, { chunkSize: cs })
      const a = concat(...e.push(pt), ...e.finish())
      const d = new ArtifactDecryptor(key)
      const parts: Uint8Array[] = []
      for (const piece of cut(a, ctCuts)) parts.push(...d.push(piece))
      parts.push(...d.finish())
      expect(Buffer.compare(concat(...parts), pt)).toBe(0)
    }), { numRuns: 60 })
  })

  it('any single-byte change or any truncation is rejected', () => {
    fc.assert(fc.property(sizes, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.integer({ min: 1, max: 255 }), fc.boolean(), (n, pos, flip, truncate) => {
      const e = new ArtifactEncryptor(key, { chunkSize: ARTIFACT_MIN_CHUNK })
      const a = concat(...e.push(new Uint8Array(n)), ...e.finish())
      const i = Math.floor(pos * a.length)
      const bad = truncate ? a.subarray(0, i) : new Uint8Array(a)
      if (!truncate) bad[i]! ^= flip
      const d = new ArtifactDecryptor(key)
      // Either the header is rejected (BadInput/UnsupportedVersion) or a chunk fails to verify;
      // a modified artifact is never accepted.
      expect(() => { d.push(bad); d.finish() }).toThrow()
      if (i >= 25 || truncate) {
        const d2 = new ArtifactDecryptor(key)
        let err: unknown
        try { d2.push(bad); d2.finish() } catch (x) { err = x }
        if (i >= 25) expect(err).toBeInstanceOf(VerificationError)
      }
    }), { numRuns: 150 })
  })
})
