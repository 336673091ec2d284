/**
 * `npm run demo`: the whole keymesh journey on one machine, in a temp directory, under an
 * ENFORCED signed policy (docs/POLICY.md).
 *
 *   1. dev up: 5 real node processes, threshold 3, DKG; the cluster file names the demo admin key
 *   2. policy: enrol the build host as builder (webshop/*), the deploy target as deployer
 *      (webshop/prod, its own recipient key) and an operator as admin+auditor; sign it with the
 *      admin key; push it to node 1 only; every node enforces it within moments (anti-entropy)
 *   3. build: encrypt a sample artifact, wrap its release key, threshold-sign the manifest
 *   4. deploy to the target, compare bytes
 *   5. refusals: the target asking for a webshop/staging release (outside its scope) and the
 *      builder asking for the prod release key itself are both refused with NOT_AUTHORIZED; the
 *      nodes' audit logs say why
 *   6. stop 2 nodes, deploy again (any 3 of 5 suffice)
 *   7. stop a third: deploy fails cleanly with QuorumUnavailable (nothing written)
 *   8. restart the stopped nodes and deploy once more
 *   9. audit: every node's hash chain and signed heads verify; who obtained what, who was refused
 *
 * One summary line per step; exit 0 only if every step behaved as stated. The temp directory and
 * every node process are cleaned up on success, failure and Ctrl-C.
 */
import '../protocol/polyfill.ts'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, QuorumUnavailableError, errorCode } from '../protocol/errors.ts'
import { encodeSignedPolicy, verifySignedPolicy } from '../protocol/policy.ts'
import { KeymeshClient } from './client.ts'
import { build } from './build.ts'
import { deploy } from './deploy.ts'
import { devDown, devUp, startDevNode, stopDevNode, waitForDkg } from './dev-cluster.ts'
import { loadAdminKey } from './identity.ts'
import { enroll, fetchPolicies, newPolicy, parseScope, policyFileText, signPolicy } from './policy.ts'
import { buildAuditReport, fetchAuditLogs } from './audit.ts'
import { fmtBytes } from './progress.ts'

/** The demo's app and the environments it uses. */
const APP = 'webshop'
const ENV = 'prod'
const OTHER_ENV = 'staging'

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
/** An indented detail line under a step (not a step of its own). */
function detail (text: string): void { process.stdout.write(`       ${text}\n`) }

async function sleep (ms: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }

let client: KeymeshClient | undefined
let builder: KeymeshClient | undefined
let ops: KeymeshClient | undefined
try {
  process.stdout.write(`keymesh demo in ${base}\n`)
  const info = await devUp({ dir, nodes: 5, threshold: 3, timeoutMs: 120_000 })
  const cluster = info.cluster
  line(true, `dev cluster up: ${info.nodes.length} node processes, threshold ${info.threshold}, DKG done (epoch ${info.epoch}, key set ${info.keySetId.slice(0, 12)}…); cluster file names admin "${cluster.admins.map(a => a.name).join('", "')}" (${cluster.adminThreshold} signature required)`)

  // --- 2. the policy: the same library calls as `keymesh policy init | enroll | sign | push`.
  const work = join(base, 'work')
  await mkdir(work)
  builder = await KeymeshClient.connect(info.clusterPath, info.identities.builder, { cacheDir: join(base, 'cache-builder') })
  client = await KeymeshClient.connect(info.clusterPath, info.identities.target, { cacheDir: join(base, 'cache-target') })
  ops = await KeymeshClient.connect(info.clusterPath, info.identities.relay, { cacheDir: false })
  let sp = newPolicy(cluster) // requireSignedRelease: true, separation of duties on
  sp = enroll(sp, { name: 'ci-builder', peerId: builder.identity.peerId.toString(), roles: ['builder'], scopes: [parseScope(`app=${APP},env=*`)] })
  sp = enroll(sp, { name: `${APP}-${ENV}`, peerId: client.identity.peerId.toString(), recipientKey: client.identity.recipientPublicKey, roles: ['deployer'], scopes: [parseScope(`app=${APP},env=${ENV}`)] })
  sp = enroll(sp, { name: 'ops', peerId: ops.identity.peerId.toString(), roles: ['admin', 'auditor'], scopes: [] })
  const adminKey = await loadAdminKey(info.adminKey)
  try { sp = signPolicy(sp, cluster, adminKey) } finally { adminKey.secretKey.fill(0) }
  const policyPath = join(work, 'policy.json')
  await writeFile(policyPath, policyFileText(sp))
  verifySignedPolicy(sp, cluster) // what `keymesh policy push` checks before sending
  // Pushed to ONE node on purpose: the nodes spread it to each other (push on accept, and
  // anti-entropy on connect and every few seconds).
  const pushedAt = Date.now()
  const pushed = await ops.transport.call(1, 'policy.push', { policy: encodeSignedPolicy(sp) }, { timeoutMs: 5_000 })
  const want = sp.policy.policyVersion
  let versions: Array<number | undefined> = []
  for (const until = Date.now() + 20_000; Date.now() < until; await sleep(100)) {
    versions = (await fetchPolicies(ops, 2_000)).versions.map(v => v.policyVersion)
    if (versions.every(v => v === want)) break
  }
  const spread = Date.now() - pushedAt
  line(pushed.accepted && versions.length === info.nodes.length && versions.every(v => v === want),
    `policy v${want} signed by ${sp.signatures.map(s => s.admin).join(', ')} and pushed to node 1 only: ${versions.filter(v => v === want).length} of ${info.nodes.length} nodes enforce it after ${spread} ms (policy.get: ${versions.map((v, i) => `node ${i + 1} v${v ?? '?'}`).join(', ')})`)
  for (const i of sp.policy.identities) detail(`enrolled ${i.name}: ${i.roles.join('+')} ${i.scopes.map(s => `${s.app}/${s.env}`).join(' ') || '(no scope needed)'}${i.recipientKey !== undefined ? ', partials only to its own recipient key' : ''}`)
  detail(`rules: requireSignedRelease=${String(sp.policy.rules.requireSignedRelease)}, builder+deployer in one identity ${sp.policy.rules.allowBuilderDeployer ? 'allowed' : 'refused'}; pushed by ops (a cluster-file client: bootstrap rule); file ${policyPath}`)

  // --- 3. build (builder, in scope webshop/*)
  const artifact = join(work, `${APP}-1.0.0.tar.gz`)
  await writeFile(artifact, randomBytes(8 * 1024 * 1024))
  const rel = join(work, 'release-1.0.0')
  const b = await build(builder, { app: APP, release: '1.0.0', env: ENV, input: artifact, out: rel })
  line(true, `build by ci-builder: ${APP}/${ENV} 1.0.0, ${fmtBytes(b.manifest.artifact.size)} encrypted, release key wrapped to the cluster, manifest signed by nodes ${b.signers.join(', ')} (FROST, Ed25519)`)

  // --- 4. deploy (target, in scope webshop/prod, to its own recipient key, with the signed manifest)
  const original = await readFile(artifact)
  const deployTo = async (name: string): Promise<{ nodes: number[], same: boolean }> => {
    const out = join(work, name)
    const d = await deploy(client as KeymeshClient, { release: rel, out, deadlineMs: 5_000 })
    return { nodes: d.nodes, same: Buffer.compare(await readFile(out), original) === 0 }
  }
  const d1 = await deployTo('deploy-1.bin')
  line(d1.same, `deploy by ${APP}-${ENV}: signature verified, release key rewrapped by nodes ${d1.nodes.join(', ')}, decrypted bytes ${d1.same ? 'identical' : 'DIFFERENT'}`)

  // --- 5. refusals: out of scope, and a builder asking for a release key
  const small = join(work, `${APP}-1.0.0-rc.tar.gz`)
  await writeFile(small, randomBytes(64 * 1024))
  const relStaging = join(work, 'release-1.0.0-staging')
  await build(builder, { app: APP, release: '1.0.0', env: OTHER_ENV, input: small, out: relStaging })
  const refusedOut = join(work, 'refused-staging.bin')
  const e1 = await deploy(client, { release: relStaging, out: refusedOut, deadlineMs: 5_000 }).then(() => undefined, (e: unknown) => e)
  const refusedOut2 = join(work, 'refused-builder.bin')
  const e2 = await deploy(builder, { release: rel, out: refusedOut2, deadlineMs: 5_000 }).then(() => undefined, (e: unknown) => e)
  const c1 = e1 === undefined ? 'ALLOWED (wrong)' : errorCode(e1)
  const c2 = e2 === undefined ? 'ALLOWED (wrong)' : errorCode(e2)
  line(c1 === ErrorCode.NOT_AUTHORIZED && c2 === ErrorCode.NOT_AUTHORIZED && !existsSync(refusedOut) && !existsSync(refusedOut2),
    `refused as the policy says: ${APP}-${ENV} asking for ${APP}/${OTHER_ENV} 1.0.0 (outside its scope) → ${c1}; ci-builder asking for the ${APP}/${ENV} release key itself → ${c2}; nothing written`)
  // The nodes' reasons, from their audit logs (what `keymesh audit --decision deny` shows).
  const denied = buildAuditReport(cluster, (await fetchAuditLogs(ops)).logs, { policy: sp.policy, filter: { decision: 'deny' } }).refused
  for (const who of [`${APP}-${ENV}`, 'ci-builder']) {
    const r = denied.find(x => x.name === who)
    detail(`${who}: ${r !== undefined ? `${r.op} ${r.app ?? ''}/${r.env ?? ''} denied — ${r.reason}` : 'no refusal in the audit logs (wrong)'}`)
    if (r === undefined) throw new Error(`no audit record of ${who}'s refusal`)
  }

  // --- 6-8. availability under the same policy
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
  const reloaded = (await fetchPolicies(ops, 5_000)).versions.filter(v => v.policyVersion === want).length
  const d4 = await deployTo('deploy-4.bin')
  line(d4.same && reloaded === info.nodes.length, `nodes 1-3 restarted (${reloaded} of ${info.nodes.length} nodes enforce policy v${want}, reloaded from their stores): deploy works again via nodes ${d4.nodes.join(', ')}, bytes ${d4.same ? 'identical' : 'DIFFERENT'}`)

  // --- 9. audit (as ops, an auditor): verify every chain, answer who obtained what / who was refused
  const audit = await fetchAuditLogs(ops)
  const report = buildAuditReport(cluster, audit.logs, { policy: sp.policy, unreachable: audit.failures })
  const obtained = report.deployments.filter(x => x.op.startsWith('partial'))
  const signed = report.deployments.filter(x => x.op === 'frost.sign')
  const byName = (xs: Array<{ name?: string, peer: string }>): string => [...new Set(xs.map(x => x.name ?? x.peer))].join(', ') || 'nobody'
  line(report.ok && audit.failures.length === 0 && report.refused.length > 0,
    `audit: ${report.nodes.length} node logs, ${report.nodes.reduce((s, n) => s + n.records, 0)} records, every hash chain and signed head ${report.ok ? 'verified' : 'DID NOT VERIFY'}; release keys obtained by ${byName(obtained)} (${obtained.length} partials), manifests signed for ${byName(signed)} (${signed.length} shares), ${report.refused.length} refused requests by ${byName(report.refused)}`)
  process.stdout.write(`demo passed: every step behaved as stated (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`)
  await Promise.all([client.close(), builder.close(), ops.close()])
  await cleanup()
  process.exit(0)
} catch (e) {
  process.stdout.write(`demo FAILED: ${e instanceof Error ? e.message : String(e)}\n`)
  await Promise.all([client?.close(), builder?.close(), ops?.close()])
  await cleanup()
  // When `dev up` fails in one `node init`, the other init processes may still be writing into
  // the directory (devUp does not wait for them): remove it once more after they are done.
  await sleep(2_000)
  await rm(base, { recursive: true, force: true }).catch(() => {})
  process.exit(1)
}
