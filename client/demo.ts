/**
 * `npm run demo`: the whole keymesh journey on one machine, in a temp directory.
 *
 *   1. dev up: 5 real node processes, threshold 3, DKG
 *   2. build: encrypt a sample artifact, wrap its release key, threshold-sign the manifest
 *   3. deploy to a target, compare bytes
 *   4. stop 2 nodes, deploy again (any 3 of 5 suffice)
 *   5. stop a third: deploy fails cleanly with QuorumUnavailable (nothing written)
 *   6. restart the stopped nodes and deploy once more
 *
 * One summary line per step; exit 0 only if every step behaved as stated. The temp directory and
 * every node process are cleaned up on success, failure and Ctrl-C.
 */
import '../protocol/polyfill.ts'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QuorumUnavailableError } from '../protocol/errors.ts'
import { KeymeshClient } from './client.ts'
import { build } from './build.ts'
import { deploy } from './deploy.ts'
import { devDown, devUp, startDevNode, stopDevNode, waitForDkg } from './dev-cluster.ts'
import { fmtBytes } from './progress.ts'

const base = await mkdtemp(join(tmpdir(), 'keymesh-demo-'))
const dir = join(base, 'cluster')
let cleaned = false
async function cleanup (): Promise<void> {
  if (cleaned) return
  cleaned = true
  await devDown(dir).catch(() => {})
  await rm(base, { recursive: true, force: true }).catch(() => {})
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stdout.write(`\ninterrupted (${sig}); stopping nodes and removing ${base}\n`)
    void cleanup().finally(() => process.exit(130))
  })
}

let step = 0
const t0 = Date.now()
function line (ok: boolean, text: string): void {
  step++
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${step}. ${text}  [${((Date.now() - t0) / 1000).toFixed(1)} s]\n`)
  if (!ok) throw new Error(`step ${step} did not behave as stated`)
}

let client: KeymeshClient | undefined
let builder: KeymeshClient | undefined
try {
  process.stdout.write(`keymesh demo in ${base}\n`)
  const info = await devUp({ dir, nodes: 5, threshold: 3, timeoutMs: 120_000 })
  line(true, `dev cluster up: ${info.nodes.length} node processes, threshold ${info.threshold}, DKG done (epoch ${info.epoch}, key set ${info.keySetId.slice(0, 12)}…)`)

  const work = join(base, 'work')
  await (await import('node:fs/promises')).mkdir(work)
  const artifact = join(work, 'app-1.0.0.tar.gz')
  await writeFile(artifact, randomBytes(8 * 1024 * 1024))
  builder = await KeymeshClient.connect(info.clusterPath, info.identities.builder, { cacheDir: join(base, 'cache-builder') })
  const rel = join(work, 'release-1.0.0')
  const b = await build(builder, { app: 'demo-app', release: '1.0.0', env: 'prod', input: artifact, out: rel })
  line(true, `build: ${fmtBytes(b.manifest.artifact.size)} encrypted, release key wrapped to the cluster, manifest signed by nodes ${b.signers.join(', ')} (FROST, Ed25519)`)

  client = await KeymeshClient.connect(info.clusterPath, info.identities.target, { cacheDir: join(base, 'cache-target') })
  const original = await readFile(artifact)
  const deployTo = async (name: string): Promise<{ nodes: number[], same: boolean }> => {
    const out = join(work, name)
    const d = await deploy(client as KeymeshClient, { release: rel, out, deadlineMs: 5_000 })
    return { nodes: d.nodes, same: Buffer.compare(await readFile(out), original) === 0 }
  }
  const d1 = await deployTo('deploy-1.bin')
  line(d1.same, `deploy: signature verified, release key rewrapped by nodes ${d1.nodes.join(', ')}, decrypted bytes ${d1.same ? 'identical' : 'DIFFERENT'}`)

  await stopDevNode(dir, 1)
  await stopDevNode(dir, 2)
  const d2 = await deployTo('deploy-2.bin')
  line(d2.same && !d2.nodes.includes(1) && !d2.nodes.includes(2), `nodes 1 and 2 stopped: deploy still works via nodes ${d2.nodes.join(', ')}, bytes ${d2.same ? 'identical' : 'DIFFERENT'}`)

  await stopDevNode(dir, 3)
  const out3 = join(work, 'deploy-3.bin')
  const started = Date.now()
  const err = await deploy(client, { release: rel, out: out3, deadlineMs: 5_000 }).then(() => undefined, (e: unknown) => e)
  const clean = err instanceof QuorumUnavailableError && !existsSync(out3)
  line(clean, `node 3 stopped too: deploy refused in ${Date.now() - started} ms, nothing written — ${err instanceof Error ? err.message.split('.')[0] : 'it SUCCEEDED (wrong)'}`)

  for (const i of [1, 2, 3]) await startDevNode(dir, i)
  await waitForDkg(dir, { nodes: [1, 2, 3], timeoutMs: 60_000 })
  const d4 = await deployTo('deploy-4.bin')
  line(d4.same, `nodes 1-3 restarted: deploy works again via nodes ${d4.nodes.join(', ')}, bytes ${d4.same ? 'identical' : 'DIFFERENT'}`)
  process.stdout.write(`demo passed: every step behaved as stated (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`)
  await Promise.all([client.close(), builder.close()])
  await cleanup()
  process.exit(0)
} catch (e) {
  process.stdout.write(`demo FAILED: ${e instanceof Error ? e.message : String(e)}\n`)
  await Promise.all([client?.close(), builder?.close()])
  await cleanup()
  process.exit(1)
}
