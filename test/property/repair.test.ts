import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { VerificationError } from '../../protocol/errors.ts'
import { mod } from '../../protocol/group.ts'
import { utf8 } from '../../protocol/bytes.ts'
import { decodeSubShare } from '../../protocol/reshare.ts'
import { REPAIR_PIECE_MAGIC, REPAIR_VERSION, repairCoefficient, repairFinish, repairSplit } from '../../protocol/repair.ts'
import { dealKey, drbg } from '../vectors/generators/reshare.ts'
import { simulateRepair } from '../vectors/generators/repair.ts'

const PIECE = utf8(REPAIR_PIECE_MAGIC)

/** (k, n, target, H): k ≤ n ≤ 9, H a k-subset of 1..n without the target (so k ≤ n − 1). */
const scenario = fc.integer({ min: 3, max: 9 }).chain(n =>
  fc.integer({ min: 2, max: n - 1 }).chain(k =>
    fc.integer({ min: 1, max: n }).chain(target =>
      fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i + 1).filter(i => i !== target), { minLength: k, maxLength: k })
        .map(helpers => ({ n, k, target, helpers })))))

describe('repair properties', () => {
  it('repair from any k helpers (any order) reproduces the target share exactly', () => {
    fc.assert(fc.property(scenario, fc.string(), ({ n, k, target, helpers }, seed) => {
      const key = dealKey(k, n, drbg(`prop repair ${seed}`))
      const run = simulateRepair(key, helpers, target, { seed })
      expect(run.share).toEqual({ index: target, scalar: key.shares[target - 1]!.scalar })
    }), { numRuns: 40 })
  })

  it('the pieces of every helper sum to λ_i^H(r)·s_i, and Σ_i λ_i^H(r)·s_i = s_r', () => {
    fc.assert(fc.property(scenario, ({ n, k, target, helpers }) => {
      const key = dealKey(k, n)
      let total = 0n
      for (const i of helpers) {
        const pieces = repairSplit(key.shares[i - 1]!, helpers, target)
        expect(pieces.size).toBe(k)
        let acc = 0n
        for (const p of pieces.values()) acc = mod(acc + decodeSubShare('p', PIECE, REPAIR_PIECE_MAGIC, REPAIR_VERSION, p).share)
        const delta = mod(repairCoefficient(helpers, i, target) * key.shares[i - 1]!.scalar)
        expect(acc).toBe(delta)
        // nothing trivial leaks: no single piece sent to another helper equals δ_i or s_i
        for (const [j, p] of pieces) {
          if (j === i) continue
          const v = decodeSubShare('p', PIECE, REPAIR_PIECE_MAGIC, REPAIR_VERSION, p).share
          expect(v).not.toBe(delta)
          expect(v).not.toBe(key.shares[i - 1]!.scalar)
        }
        total = mod(total + delta)
      }
      expect(total).toBe(key.shares[target - 1]!.scalar)
    }), { numRuns: 30 })
  })

  it('any single altered sum is refused with blame = H (never a wrong share)', () => {
    fc.assert(fc.property(scenario, fc.nat(), fc.bigInt({ min: 1n, max: 2n ** 200n }), ({ n, k, target, helpers }, pick, delta) => {
      const key = dealKey(k, n)
      const run = simulateRepair(key, helpers, target)
      const victim = helpers[pick % helpers.length]!
      const sums = new Map(run.sums)
      const d = decodeSubShare('s', utf8('KMRT'), 'KMRT', 1, sums.get(victim)!)
      const changed = new Uint8Array(sums.get(victim)!)
      let v = mod(d.share + delta)
      for (let x = 7; x < 39; x++) { changed[x] = Number(v & 0xffn); v >>= 8n }
      sums.set(victim, changed)
      let err: unknown
      try { repairFinish(target, key.pub, helpers, sums) } catch (e) { err = e }
      expect(err).toBeInstanceOf(VerificationError)
      expect((err as VerificationError).blame).toEqual([...helpers].sort((a, b) => a - b))
    }), { numRuns: 20 })
  })
})
