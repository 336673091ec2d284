/**
 * `npm run simulate` (node --import tsx simulation/run-standard.ts [--seed N] [--report DIR]):
 * the standard scenario set, report in ./simulation-report by default. Exit code 1 when any
 * invariant was violated (the replay commands are printed).
 */
import '../protocol/polyfill.ts'
import { Command } from 'commander'
import { registerSimulateCommand } from './cli.ts'

const program = new Command().name('npm run simulate --')
registerSimulateCommand(program)
try {
  await program.parseAsync(['node', 'run-standard', 'simulate', ...process.argv.slice(2)])
} catch (e) {
  process.stderr.write(`simulate: ${(e as Error).message}\n`)
  process.exitCode = 2
}
