/**
 * The one loop over every known-answer vector file in test/vectors/*.json.
 *
 * A file `<format>.json` is `{ format, version, description, cases: [...] }`; its checker
 * test/vectors/checkers/<format>.ts exports `check(testCase, file)` that recomputes the case and
 * throws on any mismatch (including cases marked `"valid": false`, which must be rejected).
 */
import { describe, expect, it } from 'vitest'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

interface VectorFile { format: string, version: number, description: string, cases: Array<{ name: string } & Record<string, unknown>> }

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors')
const files = readdirSync(dir).filter(f => f.endsWith('.json')).sort()

describe('known-answer vectors', () => {
  it('has vector files', () => { expect(files.length).toBeGreaterThan(0) })
  for (const f of files) {
    const data = JSON.parse(readFileSync(join(dir, f), 'utf8')) as VectorFile
    describe(f, () => {
      it('names its format and has cases', () => {
        expect(data.format).toBe(f.replace(/\.json$/, ''))
        expect(Array.isArray(data.cases) && data.cases.length > 0).toBe(true)
        expect(existsSync(join(dir, 'checkers', `${data.format}.ts`))).toBe(true)
      })
      for (const c of data.cases) {
        it(c.name, async () => {
          const mod = await import(join(dir, 'checkers', `${data.format}.ts`)) as { check: (c: unknown, file: VectorFile) => void | Promise<void> }
          await mod.check(c, data)
        })
      }
    })
  }
})
