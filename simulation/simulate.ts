/**
 * A simulation run over several scenarios: resolves scenario names/paths, runs them one after the
 * other (reusing the cluster between scenarios of the same topology), writes the per-scenario
 * reports and the index, and prints the summary table and, for each failing scenario, the exact
 * command that replays it. Used by `keymesh simulate` (cli.ts) and `npm run simulate`
 * (run-standard.ts).
 */
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BadInputError } from '../protocol/errors.ts'
import type { SimCluster } from './cluster.ts'
import { randomSeed } from './prng.ts'
import { summaryTable, writeIndex } from './report.ts'
import type { ScenarioResult } from './report.ts'
import { canReuse, runScenario } from './runner.ts'
import { loadScenarioFile, withOverrides } from './scenario.ts'
import type { Scenario } from './scenario.ts'
import type { BrokenClientMode } from './workload.ts'

const here = dirname(fileURLToPath(import.meta.url))
/** Directory of the standard scenario files. */
export const SCENARIO_DIR = join(here, 'scenarios')

/**
 * The standard set, in run order: scenarios that share a topology run back to back on one cluster,
 * destructive ones (wiped/corrupted disks) last. The lifecycle scenarios (rotations and a refresh)
 * come after the others of the 3-of-5 cluster: each one leaves the cluster at a new epoch or key
 * set generation, which later scenarios simply adopt as their reference at setup.
 * `reshare-under-faults` and `reshare-member-down` change the membership, so each runs on a fresh
 * cluster after the destructive ones (whose clusters are not reused either).
 */
export const STANDARD_SCENARIOS = [
  'steady-state', 'lying-node', 'slow-node', 'flaky-links', 'minority-crash', 'majority-crash-recovery',
  'partition-client-majority', 'partition-client-minority', 'rolling-restart', 'full-restart',
  'rotate-under-load', 'rotate-with-crash', 'refresh-under-faults', 'wiped-disk',
  'corrupted-disk', 'reshare-under-faults', 'reshare-member-down', 'minority-crash-5of9'
] as const

/**
 * Scenario files shipped in simulation/scenarios but NOT in the standard set (run them by name;
 * a new scenario stays here until it passes 3 seeds in a row): none at the moment.
 */
export const EXPERIMENTAL_SCENARIOS: readonly string[] = []

/** Names of the scenario files shipped in simulation/scenarios. */
export async function listStandardScenarios (): Promise<string[]> {
  return (await readdir(SCENARIO_DIR)).filter(f => f.endsWith('.json')).map(f => f.slice(0, -5)).sort()
}

/** Loads a scenario by standard name or file path. Throws BadInputError. */
export async function resolveScenario (nameOrPath: string): Promise<{ scenario: Scenario, ref: string }> {
  if (/^[a-z0-9][a-z0-9-]*$/.test(nameOrPath)) {
    const p = join(SCENARIO_DIR, `${nameOrPath}.json`)
    if (!existsSync(p)) throw new BadInputError('scenario', `no standard scenario '${nameOrPath}' (have: ${(await listStandardScenarios()).join(', ')}); or pass a path to a JSON file`)
    return { scenario: await loadScenarioFile(p), ref: nameOrPath }
  }
  return { scenario: await loadScenarioFile(nameOrPath), ref: nameOrPath }
}

/** Options of a simulation run. */
export interface SimulateOptions {
  seed?: number
  nodes?: number
  threshold?: number
  durationS?: number
  reportDir?: string
  /** Reuse one cluster across scenarios of the same topology (default true). */
  reuse?: boolean
  /** How to spell the command in replay lines (default `keymesh simulate`). */
  command?: string
  progress?: (line: string) => void
  /** TEST ONLY (see workload.ts). */
  brokenClient?: BrokenClientMode
}

/** Result of a simulation run. */
export interface SimulateResult { seed: number, results: ScenarioResult[], passed: boolean, table: string, replays: string[] }

/**
 * Runs `refs` (standard names or JSON paths) in order. Throws BadInputError for an unknown or
 * invalid scenario (before anything starts); scenario failures are results, not exceptions.
 */
export async function simulate (refs: string[], o: SimulateOptions = {}): Promise<SimulateResult> {
  const seed = o.seed ?? randomSeed()
  const progress = o.progress ?? ((l: string) => { process.stderr.write(l + '\n') })
  const loaded = await Promise.all(refs.map(resolveScenario))
  const overrides = { ...(o.nodes !== undefined ? { nodes: o.nodes } : {}), ...(o.threshold !== undefined ? { threshold: o.threshold } : {}), ...(o.durationS !== undefined ? { durationS: o.durationS } : {}) }
  const scenarios = loaded.map(x => ({ ref: x.ref, scenario: withOverrides(x.scenario, overrides) }))
  const flags = [
    `--seed ${seed}`,
    ...(o.nodes !== undefined ? [`--nodes ${o.nodes}`] : []),
    ...(o.threshold !== undefined ? [`--threshold ${o.threshold}`] : []),
    ...(o.durationS !== undefined ? [`--duration ${o.durationS}`] : [])
  ].join(' ')
  progress(`simulate: ${scenarios.length} scenario(s), seed ${seed}${o.reportDir !== undefined ? `, report in ${o.reportDir}` : ''}`)
  const results: ScenarioResult[] = []
  let cluster: SimCluster | undefined
  for (const [i, { ref, scenario }] of scenarios.entries()) {
    const next = scenarios[i + 1]?.scenario
    const out = await runScenario(scenario, {
      seed,
      ...(o.reportDir !== undefined ? { reportDir: o.reportDir } : {}),
      ...(o.reuse !== false && cluster !== undefined ? { cluster } : {}),
      keepCluster: o.reuse !== false && next !== undefined,
      replay: `${o.command ?? 'keymesh simulate'} ${ref} ${flags}`,
      progress,
      ...(o.brokenClient !== undefined ? { brokenClient: o.brokenClient } : {})
    })
    results.push(out.result)
    cluster = out.cluster
    if (cluster !== undefined && next !== undefined && !canReuse(cluster, next)) {
      await cluster.dispose()
      cluster = undefined
    }
  }
  await cluster?.dispose()
  if (o.reportDir !== undefined) await writeIndex(o.reportDir, results)
  const replays = results.filter(r => !r.passed).map(r => r.replay)
  return { seed, results, passed: replays.length === 0, table: summaryTable(results), replays }
}
