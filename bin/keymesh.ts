/**
 * The keymesh CLI: one program, node commands (node/cli.ts) and client commands (client/cli.ts).
 *
 * Errors: a KeymeshError prints `error: <message>` on stderr and exits with ExitCode[code]
 * (protocol/errors.ts); anything else exits 1. Stacks only with KEYMESH_DEBUG=1. Commander usage
 * errors exit 2 (bad input).
 */
import '../protocol/polyfill.ts'
import { Command, CommanderError } from 'commander'
import { ExitCode, KeymeshError } from '../protocol/errors.ts'
import { registerNodeCommands } from '../node/cli.ts'
import { registerClientCommands } from '../client/cli.ts'
import { registerSimulateCommand } from '../simulation/cli.ts'
import { registerLifecycleCommands } from '../client/lifecycle-cli.ts'
import { registerRecoveryCommands } from '../node/lifecycle/recovery-cli.ts'
import { registerAdminCommands } from '../client/admin-cli.ts'

const debug = process.env.KEYMESH_DEBUG === '1'

function fail (err: unknown): never {
  if (err instanceof CommanderError) {
    // help / version are "errors" under exitOverride; commander already printed the text.
    process.exit(err.exitCode === 0 ? 0 : ExitCode.BAD_INPUT)
  }
  if (err instanceof KeymeshError) {
    process.stderr.write(`error: ${err.message}\n`)
    if (debug && err.stack !== undefined) process.stderr.write(err.stack + '\n')
    process.exit(ExitCode[err.code])
  }
  const e = err as Error
  process.stderr.write(`error: ${e?.message ?? String(err)}\n`)
  if (debug && e?.stack !== undefined) process.stderr.write(e.stack + '\n')
  process.exit(1)
}

const program = new Command()
program
  .name('keymesh')
  .description('peer-to-peer threshold key-manager cluster for release keys')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError()

registerNodeCommands(program)
registerClientCommands(program)
registerSimulateCommand(program)
registerLifecycleCommands(program)
registerRecoveryCommands(program)
registerAdminCommands(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  fail(err)
}
