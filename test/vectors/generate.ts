/**
 * Regenerates every known-answer vector file: `npx tsx test/vectors/generate.ts [format ...]`.
 *
 * Each generator in ./generators/<format>.ts exports `generate(): Promise<VectorFile> | VectorFile`
 * built from fixed seeds, so the output is deterministic; the result is written to
 * ./<format>.json. Regenerating must not change a committed file unless the format changed
 * (and then the format's version must change too: docs/PROTOCOL.md §0).
 */
import '../../protocol/polyfill.ts'
import { readdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const wanted = new Set(process.argv.slice(2))
const files = (await readdir(join(here, 'generators'))).filter(f => f.endsWith('.ts')).sort()
for (const f of files) {
  const format = f.replace(/\.ts$/, '')
  if (wanted.size > 0 && !wanted.has(format)) continue
  const mod = await import(join(here, 'generators', f)) as { generate: () => unknown }
  const data = await mod.generate()
  await writeFile(join(here, `${format}.json`), JSON.stringify(data, null, 2) + '\n')
  console.log(`wrote test/vectors/${format}.json`)
}
