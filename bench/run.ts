/**
 * Benchmark runner: `npm run bench -- [--suite crypto,node,client] [--quick] [--json]
 * [--rows id,id] [--out path]`.
 *
 * Suites are modules bench/suites/<name>.ts exporting `run(ctx): Promise<Result[]>`; the runner
 * loads whichever of the requested suites exist (all of them when --suite is not given) and skips
 * the others with a message. It prints a readable table on stdout, then (with --json) the JSON
 * report, and always writes the JSON report to bench/results/latest.json (or --out).
 * Progress goes to stderr so that `--json` output can be piped.
 */
import '../protocol/polyfill.ts'
import { existsSync } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { formatTable } from './lib.ts'
import type { BenchContext, BenchReport, Result, Suite } from './lib.ts'

const here = dirname(fileURLToPath(import.meta.url))
/** Preferred order; other suite files run after these, alphabetically. */
const ORDER = ['crypto', 'node', 'client']

export interface BenchArgs { suites?: string[]; quick: boolean; json: boolean; rows?: string[]; out: string }

/** Parses argv (without node and script). Throws Error on an unknown flag. */
export function parseArgs (argv: string[]): BenchArgs {
  const a: BenchArgs = { quick: false, json: false, out: join(here, 'results', 'latest.json') }
  const list = (v: string | undefined, flag: string): string[] => {
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a comma-separated list`)
    return v.split(',').map(s => s.trim()).filter(s => s !== '')
  }
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i] as string
    const [flag, inline] = f.includes('=') ? [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)] : [f, undefined]
    const value = (): string | undefined => inline ?? argv[++i]
    switch (flag) {
      case '--suite': case '--suites': a.suites = list(value(), flag); break
      case '--rows': a.rows = list(value(), flag); break
      case '--quick': a.quick = true; break
      case '--json': a.json = true; break
      case '--out': { const v = value(); if (v === undefined) throw new Error('--out needs a path'); a.out = v; break }
      case '--help': case '-h':
        console.log('usage: npm run bench -- [--suite crypto,node,client] [--quick] [--json] [--rows id,id] [--out file]')
        process.exit(0)
        break
      default: throw new Error(`unknown option ${f}`)
    }
  }
  return a
}

/** Names of the suite files present in bench/suites/, in run order. */
export async function availableSuites (): Promise<string[]> {
  const files = (await readdir(join(here, 'suites'))).filter(f => f.endsWith('.ts')).map(f => f.slice(0, -3))
  return files.sort((x, y) => {
    const ix = ORDER.indexOf(x); const iy = ORDER.indexOf(y)
    return (ix < 0 ? ORDER.length : ix) - (iy < 0 ? ORDER.length : iy) || x.localeCompare(y)
  })
}

/** Runs the selected suites and returns the report (no printing, no file). */
export async function runBench (args: BenchArgs, log: (m: string) => void = m => process.stderr.write(m + '\n')): Promise<BenchReport> {
  const present = await availableSuites()
  const selected = args.suites ?? present
  const results: Result[] = []
  const ran: string[] = []
  for (const name of selected) {
    const file = join(here, 'suites', `${name}.ts`)
    if (!existsSync(file)) { log(`bench: suite '${name}' not found (bench/suites/${name}.ts); skipped`); continue }
    const mod = await import(pathToFileURL(file).href) as Partial<Suite>
    if (typeof mod.run !== 'function') { log(`bench: bench/suites/${name}.ts does not export run(ctx); skipped`); continue }
    const ctx: BenchContext = { quick: args.quick, rows: args.rows, log }
    try {
      results.push(...await mod.run(ctx))
    } catch (e) {
      results.push({ suite: name, id: 'suite-error', name: 'suite failed', unit: 'ops/s', value: null, note: `not available: ${e instanceof Error ? e.message : String(e)}` })
    }
    ran.push(name)
  }
  const cpu = cpus()
  return {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? 'unknown',
      quick: args.quick,
      suites: ran
    },
    results
  }
}

async function main (): Promise<void> {
  let args: BenchArgs
  try { args = parseArgs(process.argv.slice(2)) } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(2)
  }
  const report = await runBench(args)
  const { meta } = report
  console.log(`keymesh bench — ${meta.date} — node ${meta.node} — ${meta.cpus}× ${meta.cpuModel}${meta.quick ? ' — QUICK (smoke, not representative)' : ''}`)
  console.log(formatTable(report.results))
  const json = JSON.stringify(report, null, 2)
  if (args.json) console.log(json)
  await mkdir(dirname(args.out), { recursive: true })
  await writeFile(args.out, json + '\n')
  process.stderr.write(`bench: wrote ${args.out}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
