/**
 * Client CLI commands, registered onto the program built in bin/keymesh.ts:
 *
 *   keymesh id new --out FILE [--admin] [--json]
 *   keymesh id show --identity FILE [--json]
 *   keymesh build --cluster C --identity ID --app APP --release REL [--env ENV] --in FILE --out DIR [--repository URL] [--commit SHA]
 *   keymesh deploy prepare --cluster C --identity ID --release DIR --target RECIPIENT_PUBKEY --out BUNDLE
 *   keymesh deploy --cluster C --identity ID --release DIR [--bundle BUNDLE] --out FILE [--on-verify-failure block|warn]
 *   keymesh verify --cluster C --release DIR [--jwks FILE | --identity ID]
 *   keymesh jwks --cluster C --identity ID [--out FILE]
 *   keymesh rewrap --to-latest --cluster C --identity ID --in FILES|DIRS... [--out DIR] [--force] [--batch N]
 *   keymesh dev up --dir DIR [--nodes 5] [--threshold 3] | dev down --dir DIR | dev stop|start --dir DIR --node I
 *
 * Results go to stdout (human text, or JSON with --json); progress and warnings to stderr.
 * Errors are KeymeshErrors, which bin/keymesh.ts turns into `error: …` and the exit code of
 * protocol/errors.ts (bad input 2, not authorized 3, verification failed 4, quorum unavailable 5).
 * Every file written is written atomically (temp + fsync + rename); nothing partial on failure.
 */
import type { Command } from 'commander'
import { BadInputError, ExitCode, KeymeshError } from '../protocol/errors.ts'
import { fromB64u, toB64u } from '../protocol/bytes.ts'
import { MAX_BATCH, RECIPIENT_KEY_LEN } from '../protocol/constants.ts'
import { jwksFromKeySets, validateJwks } from '../protocol/jws.ts'
import type { Jwks } from '../protocol/jws.ts'
import { KeymeshClient, loadClusterFile } from './client.ts'
import { generateAdminKey, generateIdentity, loadIdentity, wipeIdentity, writeAdminKeyFile, writeIdentityFile } from './identity.ts'
import { build } from './build.ts'
import { deploy, prepareBundle } from './deploy.ts'
import type { OnVerifyFailure } from './deploy.ts'
import { verifyRelease } from './verify.ts'
import { DEFAULT_MIGRATE_BATCH, migrateToLatest } from './migrate.ts'
import { loadRelease } from './release-layout.ts'
import { defaultCacheDir, readCachedKeySet } from './keyset-fetch.ts'
import { atomicWriteFile, cleanupTempsSync, exists, readJsonCapped, readTextCapped } from './fsutil.ts'
import { devDown, devUp, describeDevCluster, startDevNode, stopDevNode, waitForDkg, readDevState } from './dev-cluster.ts'
import { endProgress, fmtBytes, stderrProgress } from './progress.ts'

interface Common { cluster: string, identity: string, cacheDir?: string, json?: boolean, quiet?: boolean }

function out (json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write(json === true ? JSON.stringify(value, null, 2) + '\n' : human)
}

function example (lines: string[]): string {
  return '\nExample:\n' + lines.map(l => `  $ ${l}`).join('\n') + '\n'
}

function int (name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new BadInputError(name, 'expected an integer')
  const n = Number(v)
  if (n < min || n > max) throw new BadInputError(name, `expected ${min}..${max}`)
  return n
}

function cacheOpt (o: { cacheDir?: string }): string { return o.cacheDir ?? defaultCacheDir() }

async function connect (o: Common): Promise<KeymeshClient> {
  return await KeymeshClient.connect(o.cluster, o.identity, { cacheDir: cacheOpt(o) })
}

async function withClient<T> (o: Common, fn: (c: KeymeshClient) => Promise<T>): Promise<T> {
  const c = await connect(o)
  try { return await fn(c) } finally {
    wipeIdentity(c.identity)
    await c.close()
  }
}

/**
 * Parses a recipient public key given as base64url (32 bytes), or as a path to a file holding
 * either that string or a JSON object with `recipientPublicKey` (only that field is read).
 * Throws BadInputError('--target').
 */
export async function parseRecipient (v: string): Promise<Uint8Array> {
  if (/^[A-Za-z0-9_-]{43}$/.test(v)) {
    const b = fromB64u('--target', v, RECIPIENT_KEY_LEN)
    if (b.length === RECIPIENT_KEY_LEN) return b
  }
  if (!await exists(v)) throw new BadInputError('--target', 'expected a base64url X25519 public key (43 characters) or a file holding one')
  const text = (await readTextCapped('--target', v, 16 * 1024)).trim()
  if (text.startsWith('{')) {
    const j = await readJsonCapped('--target', v, 16 * 1024) as { recipientPublicKey?: unknown }
    return fromB64u('--target recipientPublicKey', j.recipientPublicKey, RECIPIENT_KEY_LEN)
  }
  const b = fromB64u('--target', text, RECIPIENT_KEY_LEN)
  if (b.length !== RECIPIENT_KEY_LEN) throw new BadInputError('--target', `expected ${RECIPIENT_KEY_LEN} bytes`)
  return b
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

let interruptInstalled = false
/**
 * Ctrl-C / SIGTERM during a client command that writes files: remove temp files and staging
 * directories (a half-decrypted artifact must not survive), then exit 130 / 143. Installed only by
 * those commands — never for `node start`, which has its own graceful shutdown.
 */
function installInterruptCleanup (): void {
  if (interruptInstalled) return
  interruptInstalled = true
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      cleanupTempsSync()
      process.stderr.write(`\ninterrupted (${sig}); temporary files removed\n`)
      process.exit(code)
    })
  }
}

/** Reads approval files (JSON text, ≤ 64 KiB each; the nodes validate them). Throws BadInputError('--approval'). */
async function readApprovals (files: string[] | undefined): Promise<string[] | undefined> {
  if (files === undefined || files.length === 0) return undefined
  return await Promise.all(files.map(async f => (await readTextCapped('--approval', f, 64 * 1024)).trim()))
}

/** Registers the client commands (id, build, deploy, verify, jwks, dev) on `program`. */
export function registerClientCommands (program: Command): void {
  // `deploy` has its own options and a `prepare` subcommand: options after a subcommand name must
  // belong to that subcommand.
  program.enablePositionalOptions()

  // ---- id
  const id = program.command('id').description('client identities and admin keys')
  id.command('new')
    .description('create a client identity (libp2p Ed25519 key + X25519 recipient key), or an admin key with --admin; file mode 600, never overwritten')
    .requiredOption('--out <file>', 'identity file to create (must not exist)')
    .option('--admin', 'make an Ed25519 admin key (signs cluster documents) instead of a client identity')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh id new --out ci-builder.json', 'keymesh id new --admin --out alice-admin.json']))
    .action(async (o: { out: string, admin?: boolean, json?: boolean }) => {
      installInterruptCleanup()
      if (o.admin === true) {
        const k = generateAdminKey()
        try { await writeAdminKeyFile(o.out, k) } finally { k.secretKey.fill(0) }
        out(o.json, { out: o.out, kind: 'admin', publicKey: toB64u(k.publicKey) },
          `wrote admin key ${o.out}\npublic key: ${toB64u(k.publicKey)}\nfor cluster genesis: --admin <name>=${toB64u(k.publicKey)}\n`)
        return
      }
      const ident = await generateIdentity()
      try { await writeIdentityFile(o.out, ident) } finally { wipeIdentity(ident) }
      out(o.json, { out: o.out, kind: 'client', peerId: ident.peerId.toString(), recipientPublicKey: toB64u(ident.recipientPublicKey) },
        `wrote identity ${o.out}\npeerId: ${ident.peerId.toString()}\nrecipient public key: ${toB64u(ident.recipientPublicKey)}\n` +
        `enroll it: keymesh cluster genesis … --client <name>=${ident.peerId.toString()}\n`)
    })
  id.command('show')
    .description('print the public parts of a client identity (PeerId, recipient public key)')
    .requiredOption('--identity <file>', 'identity file')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh id show --identity target.json --json']))
    .action(async (o: { identity: string, json?: boolean }) => {
      const ident = await loadIdentity(o.identity)
      wipeIdentity(ident)
      out(o.json, { peerId: ident.peerId.toString(), recipientPublicKey: toB64u(ident.recipientPublicKey) },
        `peerId: ${ident.peerId.toString()}\nrecipient public key: ${toB64u(ident.recipientPublicKey)}\n`)
    })

  // ---- build
  program.command('build')
    .description('encrypt an artifact under a fresh release key, wrap the key to the cluster, threshold-sign the manifest; writes a release directory')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--identity <file>', 'builder identity file (enrolled in the cluster)')
    .requiredOption('--app <app>', 'application name')
    .requiredOption('--release <id>', 'release id')
    .option('--env <env>', 'environment the release is for (default: any)')
    .requiredOption('--in <file>', 'plaintext artifact')
    .requiredOption('--out <dir>', 'release directory to create (must not exist)')
    .option('--repository <url>', 'source repository, recorded in the signed manifest')
    .option('--commit <sha>', 'source commit (40/64 hex), recorded in the signed manifest')
    .option('--cache-dir <dir>', 'key-set cache directory (default $KEYMESH_CACHE_DIR or ~/.cache/keymesh)')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh build --cluster cluster.json --identity ci-builder.json --app web --release 2026.11.25-1 --env prod --in dist/web.tar.gz --out releases/web-2026.11.25-1']))
    .action(async (o: Common & { app: string, release: string, env?: string, in: string, out: string, repository?: string, commit?: string }) => {
      installInterruptCleanup()
      const r = await withClient(o, async c => await build(c, {
        app: o.app, release: o.release, env: o.env, input: o.in, out: o.out, repository: o.repository, commit: o.commit, onProgress: stderrProgress(o.quiet === true || o.json === true)
      }))
      endProgress()
      out(o.json, { dir: r.dir, manifest: r.manifest, signers: r.signers, failures: r.failures },
        `built ${r.dir}: ${r.manifest.app} ${r.manifest.release}${r.manifest.env !== undefined ? ` (${r.manifest.env})` : ''}, ${fmtBytes(r.manifest.artifact.size)} encrypted, sha256 ${r.manifest.artifact.sha256.slice(0, 16)}…\n` +
        `signed by nodes ${r.signers.join(', ')} (epoch ${r.manifest.epoch})${r.failures.length > 0 ? `; failed: ${r.failures.map(f => `node ${f.index} ${f.code}`).join(', ')}` : ''}\n`)
    })

  // ---- deploy (and deploy prepare)
  const dep = program.command('deploy')
    .description('verify a release, obtain its release key (bundle or k nodes), decrypt it to --out; or `deploy prepare` a bundle for a target')
    .option('--cluster <file>', 'cluster file (required)')
    .option('--identity <file>', 'deploy target identity file (required)')
    .option('--release <dir>', 'release directory (required)')
    .option('--bundle <file>', 'bundle prepared for this target (default: ask k nodes)')
    .option('--out <file>', 'decrypted artifact to create (required; must not exist)')
    .option('--on-verify-failure <mode>', 'block (default) or warn', 'block')
    .option('--approval <file>', 'admin approval file to present to the nodes (when the policy requires approvals); repeatable', collect)
    .option('--cache-dir <dir>', 'key-set cache directory')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print JSON')
    .addHelpText('after', example([
      'keymesh deploy --cluster cluster.json --identity target.json --release releases/web-1 --out /srv/web.tar.gz',
      'keymesh deploy --cluster cluster.json --identity target.json --release releases/web-1 --bundle web-1.kmb --out /srv/web.tar.gz'
    ]))
    .action(async (o: Common & { release?: string, bundle?: string, out?: string, onVerifyFailure: string, approval?: string[] }) => {
      installInterruptCleanup()
      for (const [k, v] of [['--cluster', o.cluster], ['--identity', o.identity], ['--release', o.release], ['--out', o.out]] as const) {
        if (v === undefined) throw new BadInputError(k, 'required')
      }
      if (o.onVerifyFailure !== 'block' && o.onVerifyFailure !== 'warn') throw new BadInputError('--on-verify-failure', 'expected block or warn')
      const r = await withClient(o, async c => await deploy(c, {
        release: o.release as string,
        out: o.out as string,
        bundle: o.bundle,
        onVerifyFailure: o.onVerifyFailure as OnVerifyFailure,
        approvals: await readApprovals(o.approval),
        onWarning: m => { process.stderr.write(`warning: verification failed but --on-verify-failure=warn: ${m}\n`) },
        onProgress: stderrProgress(o.quiet === true || o.json === true)
      }))
      endProgress()
      out(o.json, { out: r.out, bytes: r.bytes, keySource: r.keySource, nodes: r.nodes, failures: r.failures, warnings: r.warnings, manifest: r.manifest },
        `deployed ${r.manifest.app} ${r.manifest.release} to ${r.out} (${fmtBytes(r.bytes)}); release key from ${r.keySource === 'bundle' ? 'bundle' : 'nodes'} ${r.nodes.join(', ')}` +
        `${r.failures.length > 0 ? `; routed around: ${r.failures.map(f => `node ${f.index} ${f.code}`).join(', ')}` : ''}${r.warnings.length > 0 ? `; ${r.warnings.length} WARNING(S)` : ''}\n`)
    })
  dep.command('prepare')
    .description('ask k nodes to seal partial decryptions of a release key to a deploy target\'s recipient key; writes a bundle only that target can open')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--identity <file>', 'identity of the caller (enrolled in the cluster)')
    .requiredOption('--release <dir>', 'release directory')
    .requiredOption('--target <pubkey>', 'target recipient public key (base64url, from `keymesh id show`), or a file holding it')
    .requiredOption('--out <file>', 'bundle file to create (must not exist)')
    .option('--approval <file>', 'admin approval file to present to the nodes; repeatable', collect)
    .option('--cache-dir <dir>', 'key-set cache directory')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh deploy prepare --cluster cluster.json --identity ops.json --release releases/web-1 --target "$(keymesh id show --identity target.json --json | jq -r .recipientPublicKey)" --out web-1.kmb']))
    .action(async (o: Common & { release: string, target: string, out: string, approval?: string[] }) => {
      installInterruptCleanup()
      const target = await parseRecipient(o.target)
      const approvals = await readApprovals(o.approval)
      const r = await withClient(o, async c => await prepareBundle(c, { release: o.release, target, out: o.out, approvals }))
      out(o.json, { out: r.out, nodes: r.bundle.partials.map(p => p.index), failures: r.failures, recipient: toB64u(target) },
        `wrote bundle ${r.out} for target ${toB64u(target)} with sealed partials from nodes ${r.bundle.partials.map(p => p.index).join(', ')}\n`)
    })

  // ---- rewrap --to-latest
  program.command('rewrap')
    .description('move envelopes wrapped under older epochs to the newest epoch (batched through k nodes); label unchanged except the epoch')
    .option('--to-latest', 'move every envelope older than the newest epoch (required)')
    .option('--cluster <file>', 'cluster file (required)')
    .option('--identity <file>', 'identity whose policy role may rewrap these labels (required)')
    .option('--in <paths...>', 'envelope files (binary KMEV or armored) and/or directories (walked; other files skipped)')
    .option('--out <dir>', 'write moved envelopes here (same relative paths); without it, --force replaces the inputs in place')
    .option('--force', 'overwrite existing output files (or replace inputs in place without --out)')
    .option('--batch <n>', `envelopes per batch request (1..${MAX_BATCH})`, String(DEFAULT_MIGRATE_BATCH))
    .option('--cache-dir <dir>', 'key-set cache directory')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print JSON')
    .addHelpText('after', example([
      'keymesh rewrap --to-latest --cluster cluster.json --identity ops.json --in envelopes/ --out envelopes-latest/',
      'keymesh rewrap --to-latest --cluster cluster.json --identity ops.json --in a.kmev b.kmev --force'
    ]))
    .action(async (o: Partial<Common> & { toLatest?: boolean, in?: string[], out?: string, force?: boolean, batch: string }) => {
      installInterruptCleanup()
      if (o.toLatest !== true) throw new BadInputError('--to-latest', 'required (the only rewrap mode of the CLI: move envelopes to the newest epoch)')
      for (const [k, v] of [['--cluster', o.cluster], ['--identity', o.identity]] as const) if (v === undefined) throw new BadInputError(k, 'required')
      if (o.in === undefined || o.in.length === 0) throw new BadInputError('--in', 'required: envelope files or directories')
      const quiet = o.quiet === true || o.json === true
      const r = await withClient(o as Common, async c => await migrateToLatest(c, {
        inputs: o.in as string[],
        outDir: o.out,
        force: o.force === true,
        batchSize: int('--batch', o.batch, 1, MAX_BATCH),
        onProgress: quiet ? undefined : line => { process.stderr.write(line + '\n') }
      }))
      const summaryLine = `moved ${r.moved.length}, already latest ${r.alreadyLatest.length}, failed ${r.failed.length} (epoch ${r.epoch}, ${(r.ms / 1000).toFixed(1)} s)`
      out(o.json, { epoch: r.epoch, moved: r.moved, alreadyLatest: r.alreadyLatest, failed: r.failed, ms: r.ms },
        `${summaryLine}\n${r.failed.map(f => `failed: ${f.path}: ${f.reason}\n`).join('')}`)
      if (r.failed.length > 0) {
        // Exit with the highest exit code among the failures (5 quorum, 4 tampered, 3 refused, 2 bad input).
        const code = r.failed.map(f => f.code).reduce((a, b) => ExitCode[b] > ExitCode[a] ? b : a)
        throw new KeymeshError(code, `${r.failed.length} envelope file(s) not moved (listed above)`)
      }
    })

  // ---- verify
  program.command('verify')
    .description('verify a release directory without decrypting: manifest signature (JWKS) and encrypted artifact digest')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--release <dir>', 'release directory')
    .option('--jwks <file>', 'JWKS file (from `keymesh jwks`); default: the key-set cache, else --identity')
    .option('--identity <file>', 'fetch the key set from the nodes with this identity when not cached')
    .option('--cache-dir <dir>', 'key-set cache directory')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh verify --cluster cluster.json --release releases/web-1', 'keymesh verify --cluster cluster.json --release releases/web-1 --jwks jwks.json']))
    .action(async (o: Omit<Common, 'identity'> & { identity?: string, release: string, jwks?: string }) => {
      const cluster = await loadClusterFile(o.cluster)
      const rel = await loadRelease(o.release)
      let keys: Jwks | undefined
      if (o.jwks !== undefined) keys = validateJwks(await readJsonCapped('--jwks', o.jwks, 1024 * 1024))
      else {
        const cached = await readCachedKeySet(cacheOpt(o), cluster, rel.manifest.epoch)
        if (cached !== undefined) keys = jwksFromKeySets([cached])
        else if (o.identity !== undefined) {
          keys = await withClient({ ...o, identity: o.identity }, async c => jwksFromKeySets([await c.keySet(rel.manifest.epoch)]))
        }
      }
      if (keys === undefined) throw new BadInputError('--jwks', `no key set of epoch ${rel.manifest.epoch} in the cache; pass --jwks FILE or --identity FILE`)
      const r = await verifyRelease(o.release, keys, { clusterId: cluster.clusterId, onProgress: stderrProgress(o.quiet === true || o.json === true) })
      endProgress()
      out(o.json, { ok: true, kid: r.kid, manifest: r.manifest },
        `OK ${r.manifest.app} ${r.manifest.release}: signature valid (${r.kid}), artifact ${fmtBytes(r.manifest.artifact.size)} sha256 matches\n`)
    })

  // ---- jwks
  program.command('jwks')
    .description('print the JWKS of the cluster\'s signing key (from the key set that k nodes agree on)')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--identity <file>', 'client identity enrolled in the cluster')
    .option('--out <file>', 'write the JWKS to a file (atomic) instead of stdout')
    .option('--cache-dir <dir>', 'key-set cache directory')
    .addHelpText('after', example(['keymesh jwks --cluster cluster.json --identity ci-builder.json --out jwks.json']))
    .action(async (o: Common & { out?: string }) => {
      installInterruptCleanup()
      const jwks = await withClient(o, async c => await c.jwks())
      const text = JSON.stringify(jwks, null, 2) + '\n'
      if (o.out !== undefined) {
        await atomicWriteFile(o.out, text, { field: '--out' })
        process.stderr.write(`wrote ${o.out}\n`)
      } else process.stdout.write(text)
    })

  // ---- dev
  const dev = program.command('dev').description('local development cluster (real node processes on 127.0.0.1)')
  dev.command('up')
    .description('create and start a local cluster in DIR, wait until its DKG is done, print a summary')
    .requiredOption('--dir <dir>', 'directory for the cluster (created)')
    .option('--nodes <n>', 'number of nodes', '5')
    .option('--threshold <k>', 'threshold', '3')
    .option('--timeout <ms>', 'how long to wait for the DKG', '120000')
    .option('--max-inflight <n>', 'per-peer in-flight request cap passed to every node')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh dev up --nodes 5 --threshold 3 --dir .keymesh-dev']))
    .action(async (o: { dir: string, nodes: string, threshold: string, timeout: string, maxInflight?: string, json?: boolean }) => {
      // Interrupted before the cluster is ready: stop whatever was started (nodes are detached).
      const onSignal = (): void => {
        process.stderr.write('\ninterrupted; stopping the nodes started so far\n')
        void devDown(o.dir).catch(() => []).finally(() => process.exit(130))
      }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const info = await devUp({
        dir: o.dir,
        nodes: int('--nodes', o.nodes, 2, 64),
        threshold: int('--threshold', o.threshold, 2, 64),
        timeoutMs: int('--timeout', o.timeout, 1000, 3_600_000),
        nodeArgs: o.maxInflight !== undefined ? ['--max-inflight', String(int('--max-inflight', o.maxInflight, 1, 100_000))] : [],
        onProgress: stderrProgress(o.json === true)
      })
      const { cluster: _c, ...rest } = info
      out(o.json, { ...rest, clusterId: info.cluster.clusterId }, describeDevCluster(info))
    })
  dev.command('down')
    .description('stop every node of the dev cluster in DIR (the directory is kept)')
    .requiredOption('--dir <dir>', 'dev cluster directory')
    .option('--json', 'print JSON')
    .addHelpText('after', example(['keymesh dev down --dir .keymesh-dev']))
    .action(async (o: { dir: string, json?: boolean }) => {
      const stopped = await devDown(o.dir)
      out(o.json, { stopped }, `stopped ${stopped.length} node(s)${stopped.length > 0 ? `: ${stopped.join(', ')}` : ''}\n`)
    })
  dev.command('stop')
    .description('stop one node of the dev cluster')
    .requiredOption('--dir <dir>', 'dev cluster directory')
    .requiredOption('--node <i>', 'node index')
    .addHelpText('after', example(['keymesh dev stop --dir .keymesh-dev --node 2']))
    .action(async (o: { dir: string, node: string }) => {
      const was = await stopDevNode(o.dir, int('--node', o.node, 1, 64))
      process.stdout.write(was ? `stopped node ${o.node}\n` : `node ${o.node} was not running\n`)
    })
  dev.command('start')
    .description('start (restart) one node of the dev cluster and wait until it serves its key set')
    .requiredOption('--dir <dir>', 'dev cluster directory')
    .requiredOption('--node <i>', 'node index')
    .addHelpText('after', example(['keymesh dev start --dir .keymesh-dev --node 2']))
    .action(async (o: { dir: string, node: string }) => {
      const i = int('--node', o.node, 1, 64)
      await readDevState(o.dir)
      const pid = await startDevNode(o.dir, i)
      await waitForDkg(o.dir, { nodes: [i], timeoutMs: 30_000 })
      process.stdout.write(`node ${i} running (pid ${pid})\n`)
    })
}
