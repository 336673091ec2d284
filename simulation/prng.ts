/**
 * Seeded PRNG for the simulation harness: xoshiro128** (Blackman & Vigna, 2018) seeded through
 * splitmix32, so `--seed N` reproduces the same fault schedule and workload order.
 *
 * Not for cryptography: it only chooses fault targets, times and workload order. Key material in
 * the workload (data keys, messages) comes from node:crypto, never from here.
 */

/** splitmix32 step: a well-mixed 32-bit value from a 32-bit state (used only for seeding). */
function splitmix32 (s: number): { next: number, value: number } {
  const next = (s + 0x9e3779b9) >>> 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
  return { next, value: (z ^ (z >>> 16)) >>> 0 }
}

/** FNV-1a of a string (to derive independent sub-streams by name). */
function fnv1a (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** A deterministic random stream. */
export class Prng {
  private s: Uint32Array

  /**
   * @param seed any safe integer (its low 53 bits are mixed in); the same seed gives the same stream.
   * Throws RangeError for a non-integer seed.
   */
  constructor (readonly seed: number, stream = '') {
    if (!Number.isSafeInteger(seed)) throw new RangeError('seed: expected a safe integer')
    let st = (seed >>> 0) ^ fnv1a(stream)
    const hi = Math.floor(Math.abs(seed) / 2 ** 32) >>> 0
    this.s = new Uint32Array(4)
    for (let i = 0; i < 4; i++) {
      const r = splitmix32((st + Math.imul(hi, i + 1)) >>> 0)
      st = r.next
      this.s[i] = r.value
    }
    if (this.s.every(x => x === 0)) this.s[0] = 1
  }

  /** Next 32-bit unsigned value (xoshiro128**). Never throws. */
  nextU32 (): number {
    const s = this.s
    const s0 = s[0] as number
    const s1 = s[1] as number
    const s2 = s[2] as number
    const s3 = s[3] as number
    const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0
    const t = (s1 << 9) >>> 0
    s[2] = s2 ^ s0
    s[3] = s3 ^ s1
    s[1] = s1 ^ (s[2] as number)
    s[0] = s0 ^ (s[3] as number)
    s[2] = (s[2] as number) ^ t
    s[3] = rotl(s[3] as number, 11)
    return result
  }

  /** Uniform float in [0, 1). Never throws. */
  float (): number { return this.nextU32() / 2 ** 32 }

  /** Uniform integer in [lo, hi] (inclusive). Throws RangeError when hi < lo. */
  int (lo: number, hi: number): number {
    if (!(hi >= lo)) throw new RangeError(`int: empty range [${lo}, ${hi}]`)
    return lo + Math.floor(this.float() * (hi - lo + 1))
  }

  /** Uniform float in [lo, hi). */
  range (lo: number, hi: number): number { return lo + this.float() * (hi - lo) }

  /** True with probability p. */
  chance (p: number): boolean { return this.float() < p }

  /** A uniformly chosen element. Throws RangeError for an empty list. */
  pick<T> (xs: readonly T[]): T {
    if (xs.length === 0) throw new RangeError('pick: empty list')
    return xs[this.int(0, xs.length - 1)] as T
  }

  /** Fisher–Yates shuffle into a new array. Never throws. */
  shuffle<T> (xs: readonly T[]): T[] {
    const a = [...xs]
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      const t = a[i] as T
      a[i] = a[j] as T
      a[j] = t
    }
    return a
  }

  /** An index drawn with the given non-negative weights. Throws RangeError when all are 0. */
  weighted (weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + Math.max(0, b), 0)
    if (!(total > 0)) throw new RangeError('weighted: all weights are zero')
    let x = this.float() * total
    for (let i = 0; i < weights.length; i++) {
      x -= Math.max(0, weights[i] as number)
      if (x < 0) return i
    }
    return weights.length - 1
  }

  /** An independent stream derived from this seed and a name (e.g. 'faults', 'workload'). */
  fork (name: string): Prng { return new Prng(this.seed, name) }
}

/** A fresh random seed (for runs without --seed); printed so that the run can be replayed. */
export function randomSeed (): number {
  return Math.floor(Math.random() * 2 ** 31)
}
