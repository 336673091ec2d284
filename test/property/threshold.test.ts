import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { wrap } from '../../protocol/wrap.ts'
import { computePartial } from '../../protocol/partial.ts'
import type { Partial } from '../../protocol/partial.ts'
import { combine } from '../../protocol/combine.ts'
import { mod, randomScalar } from '../../protocol/group.ts'
import { BadInputError, VerificationError } from '../../protocol/errors.ts'
import { dealKeySet, labelFor } from '../helpers/dealer.ts'

const n = 5
const k = 3
const { ks, shares } = dealKeySet(k, n, 'threshold-property')
const dataKey = new Uint8Array(randomBytes(32))
const env = wrap(ks, labelFor(ks), dataKey)
const honest = shares.map(s => computePartial(s, ks, env))
// Independent random errors per node (a constant error on every share would be a consistent
// polynomial, and some subsets would then cancel it out — correct, but not what this test is about).
const wrong = shares.map(s => computePartial({ index: s.index, scalar: mod(s.scalar + randomScalar()) }, ks, env))

/** A permutation of a subset of 1..n of the given size range. */
const subset = (min: number, max: number): fc.Arbitrary<number[]> =>
  fc.shuffledSubarray([1, 2, 3, 4, 5], { minLength: min, maxLength: max })

describe('threshold property', () => {
  it('any k (or more) of n partials, in any order, combine to the data key', () => {
    fc.assert(fc.property(subset(k, n), fc.boolean(), (idx, strict) => {
      expect(combine(ks, env, idx.map(i => honest[i - 1] as Partial), { strict })).toEqual(dataKey)
    }), { numRuns: 40 })
  })

  it('any k−1 partials fail', () => {
    fc.assert(fc.property(subset(1, k - 1), idx => {
      expect(() => combine(ks, env, idx.map(i => honest[i - 1] as Partial))).toThrow(BadInputError)
    }), { numRuns: 20 })
  })

  it('wrong partials are blamed exactly; combine succeeds iff at least k honest remain', () => {
    fc.assert(fc.property(subset(k, n), fc.array(fc.boolean(), { minLength: n, maxLength: n }), (idx, bad) => {
      const ps = idx.map(i => (bad[i - 1] === true ? wrong : honest)[i - 1] as Partial)
      const badIdx = idx.filter(i => bad[i - 1] === true).sort((a, b) => a - b)
      const honestCount = idx.length - badIdx.length
      const blamed: number[][] = []
      if (honestCount >= k) {
        expect(combine(ks, env, ps, { onBlame: b => blamed.push(b) })).toEqual(dataKey)
        // The optimistic path needs no blame when the first k happen to be honest.
        if (blamed.length > 0) expect(blamed[0]).toEqual(badIdx)
      } else {
        try { combine(ks, env, ps); throw new Error('combine should have failed') } catch (err) {
          expect(err).toBeInstanceOf(VerificationError)
          expect((err as VerificationError).blame).toEqual(badIdx)
        }
      }
    }), { numRuns: 40 })
  })
})
