/** Shared helpers of the threshold-encryption vector generators and checkers. */
import { BadInputError, UnsupportedVersionError, errorCode } from '../../protocol/errors.ts'
import { fromHex } from '../../protocol/bytes.ts'

/** An rng that replays the given hex chunks in order (throws if asked for a different length). */
export function replayRng (chunks: string[]): (n: number) => Uint8Array {
  let i = 0
  return (n: number) => {
    const c = chunks[i++]
    if (c === undefined) throw new Error('replayRng: out of chunks')
    return fromHex('rng', c, n)
  }
}

/** Runs `f`, which must throw an error with `code` (and `field` when given). */
export function expectFailure (name: string, f: () => unknown, code: string, field?: string): void {
  let got: unknown
  try { f() } catch (e) { got = e }
  if (got === undefined) throw new Error(`${name}: invalid input was accepted`)
  if (errorCode(got) !== code) throw new Error(`${name}: expected ${code}, got ${errorCode(got)} (${String(got)})`)
  // Both BadInputError and UnsupportedVersionError name the offending field.
  const gotField = got instanceof BadInputError || got instanceof UnsupportedVersionError ? got.field : undefined
  if (field !== undefined && gotField !== field) {
    throw new Error(`${name}: expected field ${field}, got ${gotField ?? 'none'}`)
  }
}

/** Throws unless a === b. */
export function same (name: string, what: string, got: string, want: unknown): void {
  if (got !== want) throw new Error(`${name}: ${what} mismatch`)
}
