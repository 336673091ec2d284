/**
 * `keymesh simulate [SCENARIO ...] [--seed N] [--nodes N --threshold K] [--duration S] [--report DIR]`
 *
 * Registered by bin/keymesh.ts (`registerSimulateCommand(program)`). Without SCENARIO it runs the
 * standard set. Progress goes to stderr; the summary table to stdout; a failing run prints the
 * exact command that replays each failing scenario and exits with code 1.
 */
import type { Command } from 'commander'
import { BadInputError } from '../protocol/errors.ts'
import { STANDARD_SCENARIOS, listStandardScenarios, simulate } from './simulate.ts'

function int (name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new BadInputError(name, `expected an integer in [${lo}, ${hi}]`)
  return Number(v)
}

/** Registers `simulate` on `program`. Its action throws BadInputError for bad options or scenarios. */
export function registerSimulateCommand (program: Command): void {
  program.command('simulate')
    .description('run failover scenarios against a real local cluster with injected faults; check invariants; write a report')
    .argument('[scenario...]', `standard scenario names or scenario JSON files (default: the standard set: ${STANDARD_SCENARIOS.join(', ')})`)
    .option('--seed <n>', 'seed of the fault schedule and workload order (default: random, printed)')
    .option('--nodes <n>', 'override the number of nodes of every scenario')
    .option('--threshold <k>', 'override the threshold of every scenario')
    .option('--duration <s>', 'override the workload duration (fault times scale with it)')
    .option('--report <dir>', 'report directory', 'simulation-report')
    .option('--no-reuse', 'start a fresh cluster for every scenario')
    .option('--list', 'list the standard scenarios and exit')
    .action(async (refs: string[], o: { seed?: string, nodes?: string, threshold?: string, duration?: string, report: string, reuse: boolean, list?: boolean }) => {
      if (o.list === true) { process.stdout.write((await listStandardScenarios()).join('\n') + '\n'); return }
      const seed = int('--seed', o.seed, 0, Number.MAX_SAFE_INTEGER)
      const nodes = int('--nodes', o.nodes, 2, 32)
      const threshold = int('--threshold', o.threshold, 2, 32)
      const durationS = int('--duration', o.duration, 1, 86_400)
      const r = await simulate(refs.length > 0 ? refs : [...STANDARD_SCENARIOS], {
        ...(seed !== undefined ? { seed } : {}),
        ...(nodes !== undefined ? { nodes } : {}),
        ...(threshold !== undefined ? { threshold } : {}),
        ...(durationS !== undefined ? { durationS } : {}),
        reportDir: o.report,
        reuse: o.reuse
      })
      process.stdout.write(r.table)
      process.stdout.write(`\nreport: ${o.report}/index.md (seed ${r.seed})\n`)
      if (!r.passed) {
        process.stdout.write('\nFAILED. Replay each failing scenario with:\n' + r.replays.map(x => `  ${x}\n`).join(''))
        process.exitCode = 1
      }
    })
}
