/**
 * Test helper for the client's integration/e2e tests: a real dev cluster (node processes on
 * 127.0.0.1) in a temp directory, CLI invocation with exit code capture, and small file helpers.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { devDown, devUp } from '../../client/dev-cluster.ts'
import type { DevClusterInfo, DevUpOptions } from '../../client/dev-cluster.ts'
import type { KeymeshClient } from '../../client/client.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { toHex } from '../../protocol/bytes.ts'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const BIN = join(ROOT, 'bin', 'keymesh.js')
export const LYING_NODE = join(ROOT, 'test', 'fixtures', 'lying-node.ts')

/** A running dev cluster plus a scratch directory; `stop()` tears everything down. */
export interface TestCluster {
  info: DevClusterInfo
  /** Scratch directory for releases, bundles, outputs. */
  work: string
  /** Key-set cache directory to pass to clients. */
  cache: string
  stop: () => Promise<void>
}

/** Starts a dev cluster in a fresh temp dir. */
export async function startTestCluster (opts: Omit<DevUpOptions, 'dir'> = {}): Promise<TestCluster> {
  const base = await mkdtemp(join(tmpdir(), 'keymesh-client-'))
  const dir = join(base, 'cluster')
  let info: DevClusterInfo
  try {
    info = await devUp({ nodes: 5, threshold: 3, timeoutMs: 90_000, ...opts, dir })
  } catch (err) {
    await rm(base, { recursive: true, force: true })
    throw err
  }
  const work = join(base, 'work')
  const cache = join(base, 'cache')
  const { mkdir } = await import('node:fs/promises')
  await mkdir(work)
  return {
    info,
    work,
    cache,
    stop: async () => {
      await devDown(dir).catch(() => {})
      await rm(base, { recursive: true, force: true })
    }
  }
}

/** Result of one CLI run. */
export interface CliResult { code: number, stdout: string, stderr: string }

/** Runs `node bin/keymesh.js ...args` and captures its exit code and output. */
export async function cli (args: string[], opts: { env?: Record<string, string>, timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 60_000)
    child.on('error', rej)
    child.on('close', (code) => { clearTimeout(timer); res({ code: code ?? -1, stdout, stderr }) })
  })
}

/** argv for a node started from the lying-node fixture (faults on) instead of the normal CLI. */
export function lyingNodeArgv (startArgs: string[], faults: string[] = ['--corrupt-partial', '--corrupt-sign-share']): string[] {
  return ['--import', import.meta.resolve('tsx'), LYING_NODE, ...startArgs, ...faults]
}

/**
 * Rewraps `envs` (round robin) with `client` until stopped; every answer must be the kept data key.
 * Returns the count of successes and the first 50 failures (after a failure it waits 200 ms, so a
 * cluster that is down does not make a tight loop). Never throws.
 */
export function rewrapLoop (client: KeymeshClient, envs: Array<{ e: Envelope, key: Uint8Array }>): { stop: () => Promise<{ ok: number, failures: unknown[] }> } {
  let stopped = false
  let ok = 0
  const failures: unknown[] = []
  const run = (async () => {
    for (let j = 0; !stopped; j++) {
      const x = envs[j % envs.length] as { e: Envelope, key: Uint8Array }
      try {
        const r = await client.rewrap(x.e, { deadlineMs: 20_000 })
        if (toHex(r.dataKey) !== toHex(x.key)) throw new Error('wrong data key')
        ok++
      } catch (e) {
        if (failures.length < 50) failures.push(e)
        await new Promise(resolve => setTimeout(resolve, 200))
      }
    }
  })()
  return { stop: async () => { stopped = true; await run; return { ok, failures } } }
}
