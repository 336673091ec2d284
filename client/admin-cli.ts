/**
 * Admin and auditor commands (docs/POLICY.md):
 *
 *   keymesh policy init   --cluster C --out FILE [--policy-version N] [--allow-builder-deployer] [--no-require-signed-release] [--approvals ENV=N ...]
 *   keymesh policy enroll --policy FILE --name N --peer PEERID [--recipient B64U] --role R[,R] [--scope app=P,env=P ...]
 *   keymesh policy revoke --policy FILE --name N|PEERID
 *   keymesh policy show   --policy FILE | --cluster C --identity ID   [--json]
 *   keymesh policy sign   --policy FILE --cluster C --admin-key K
 *   keymesh policy push   --policy FILE --cluster C --identity ID
 *   keymesh approve       --cluster C --admin-key K --release DIR --out FILE
 *   keymesh audit         --cluster C (--identity ID | --file LOG ...) [--app --env --peer --since --until --decision] [--json]
 *
 * Exit codes as everywhere (protocol/errors.ts): `audit` exits 4 (verification failed) when any
 * chain, link or signed head does not verify, after printing the report.
 */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { BadInputError, ErrorCode, ExitCode, KeymeshError } from '../protocol/errors.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { MAX_POLICY_LEN, ROLES, verifySignedPolicy } from '../protocol/policy.ts'
import type { Role, SignedPolicy } from '../protocol/policy.ts'
import { KeymeshClient, loadClusterFile } from './client.ts'
import { loadAdminKey } from './identity.ts'
import { atomicWriteFile, exists, readTextCapped } from './fsutil.ts'
import { defaultCacheDir } from './keyset-fetch.ts'
import { loadRelease } from './release-layout.ts'
import {
  approveRelease, enroll, fetchPolicies, newPolicy, parseScope, policyFileText, pushPolicy, readPolicyText, recipientFromB64u, revoke, signPolicy
} from './policy.ts'
import { buildAuditReport, fetchAuditLogs, formatAuditReport, headsCachePath, readAuditFile, readHeadsCache, updateHeadsCache } from './audit.ts'
import type { RawLog } from './audit.ts'

function collect (v: string, prev: string[] = []): string[] { return [...prev, v] }

function print (json: boolean | undefined, obj: unknown, text: string): void {
  process.stdout.write(json === true ? JSON.stringify(obj, null, 2) + '\n' : text)
}

async function readPolicyFile (path: string): Promise<SignedPolicy> {
  return readPolicyText(await readTextCapped('--policy', path, MAX_POLICY_LEN))
}

async function writePolicyFile (path: string, sp: SignedPolicy, exclusive = false): Promise<void> {
  await atomicWriteFile(path, policyFileText(sp), { mode: 0o644, exclusive, field: '--policy' })
}

function describePolicy (sp: SignedPolicy, cluster?: ClusterFile): string {
  const p = sp.policy
  const lines = [`policy v${p.policyVersion} for cluster ${p.clusterId}`,
    `rules: requireSignedRelease=${String(p.rules.requireSignedRelease)} allowBuilderDeployer=${String(p.rules.allowBuilderDeployer)} approvals=${JSON.stringify(p.rules.approvals)}`,
    `signatures: ${sp.signatures.map(s => s.admin).join(', ') || '(none)'}${cluster !== undefined ? ` (cluster requires ${cluster.adminThreshold})` : ''}`,
    'identities:']
  for (const i of p.identities) {
    lines.push(`  ${i.name}${i.revoked === true ? ' [REVOKED]' : ''}  ${i.peerId}  roles=${i.roles.join(',')}  scopes=${i.scopes.map(s => `${s.app}/${s.env === '' ? '(none)' : s.env}`).join(' ') || '(none)'}${i.recipientKey !== undefined ? `  recipient=${i.recipientKey}` : ''}`)
  }
  return lines.join('\n') + '\n'
}

async function withClient<T> (clusterPath: string | undefined, identity: string | undefined, fn: (c: KeymeshClient) => Promise<T>): Promise<T> {
  if (clusterPath === undefined) throw new BadInputError('--cluster', 'required')
  if (identity === undefined) throw new BadInputError('--identity', 'required')
  const c = await KeymeshClient.connect(clusterPath, identity, { cacheDir: false })
  try { return await fn(c) } finally { c.identity.recipientSecretKey.fill(0); await c.close() }
}

/** Registers `policy`, `approve` and `audit` on `program`. */
export function registerAdminCommands (program: Command): void {
  const pol = program.command('policy').description('policy documents: who may build, deploy, audit and administer (docs/POLICY.md)')

  pol.command('init')
    .description('create an empty, unsigned policy for a cluster')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--out <file>', 'policy file to create (must not exist)')
    .option('--policy-version <n>', 'policyVersion (default 1)')
    .option('--allow-builder-deployer', 'allow one identity to hold both builder and deployer roles')
    .option('--no-require-signed-release', 'do not require a cluster-signed manifest for partial decryptions')
    .option('--approvals <spec>', 'ENV_PATTERN=N admin approvals required for that environment; repeatable', collect)
    .option('--json', 'print JSON')
    .action(async (o: { cluster: string, out: string, policyVersion?: string, allowBuilderDeployer?: boolean, requireSignedRelease: boolean, approvals?: string[], json?: boolean }) => {
      const cluster = await loadClusterFile(o.cluster)
      const approvals: Record<string, number> = {}
      for (const a of o.approvals ?? []) {
        const i = a.lastIndexOf('=')
        if (i < 0 || !/^\d+$/.test(a.slice(i + 1))) throw new BadInputError('--approvals', 'expected ENV_PATTERN=N')
        approvals[a.slice(0, i)] = Number(a.slice(i + 1))
      }
      const sp = newPolicy(cluster, {
        ...(o.policyVersion !== undefined ? { policyVersion: Number(o.policyVersion) } : {}),
        allowBuilderDeployer: o.allowBuilderDeployer === true,
        requireSignedRelease: o.requireSignedRelease,
        approvals
      })
      if (await exists(o.out)) throw new BadInputError('--out', `${o.out} already exists; refusing to overwrite`)
      await writePolicyFile(o.out, sp, true)
      print(o.json, { out: o.out, policyVersion: sp.policy.policyVersion }, `wrote ${o.out} (policy v${sp.policy.policyVersion}, unsigned)\n`)
    })

  pol.command('enroll')
    .description('add or replace an identity (by name); drops signatures and bumps the version of a signed document')
    .requiredOption('--policy <file>', 'policy file (edited in place)')
    .requiredOption('--name <name>', 'identity name')
    .requiredOption('--peer <peerId>', 'the identity\'s PeerId (keymesh id show)')
    .option('--recipient <b64u>', 'X25519 recipient public key (required for deployers)')
    .requiredOption('--role <roles>', `comma-separated roles: ${ROLES.join(', ')}`)
    .option('--scope <spec>', 'app=PATTERN,env=PATTERN (glob: * and ?); repeatable', collect)
    .option('--json', 'print JSON')
    .action(async (o: { policy: string, name: string, peer: string, recipient?: string, role: string, scope?: string[], json?: boolean }) => {
      const roles = o.role.split(',').map(s => s.trim()).filter(s => s !== '') as Role[]
      const sp = enroll(await readPolicyFile(o.policy), {
        name: o.name,
        peerId: o.peer,
        roles,
        scopes: (o.scope ?? []).map(parseScope),
        ...(o.recipient !== undefined ? { recipientKey: recipientFromB64u(o.recipient) } : {})
      })
      await writePolicyFile(o.policy, sp)
      print(o.json, { policyVersion: sp.policy.policyVersion, identity: o.name }, `enrolled ${o.name} as ${roles.join('+')} (policy v${sp.policy.policyVersion}, unsigned)\n`)
    })

  pol.command('revoke')
    .description('revoke an identity (takes effect on every node, including open connections, once pushed)')
    .requiredOption('--policy <file>', 'policy file (edited in place)')
    .requiredOption('--name <nameOrPeerId>', 'identity name or PeerId')
    .option('--json', 'print JSON')
    .action(async (o: { policy: string, name: string, json?: boolean }) => {
      const sp = revoke(await readPolicyFile(o.policy), o.name)
      await writePolicyFile(o.policy, sp)
      print(o.json, { policyVersion: sp.policy.policyVersion, revoked: o.name }, `revoked ${o.name} (policy v${sp.policy.policyVersion}, unsigned)\n`)
    })

  pol.command('show')
    .description('print a policy file, or the policy in force on the nodes')
    .option('--policy <file>', 'policy file')
    .option('--cluster <file>', 'cluster file (verifies signatures; with --identity, asks the nodes)')
    .option('--identity <file>', 'identity to ask the nodes with')
    .option('--json', 'print JSON')
    .action(async (o: { policy?: string, cluster?: string, identity?: string, json?: boolean }) => {
      if (o.policy !== undefined) {
        const sp = await readPolicyFile(o.policy)
        let verified: string | undefined
        const cluster = o.cluster !== undefined ? await loadClusterFile(o.cluster) : undefined
        if (cluster !== undefined) {
          try { verifySignedPolicy(sp, cluster); verified = 'signatures verify' } catch (e) { verified = `NOT acceptable: ${(e as Error).message}` }
        }
        print(o.json, { ...JSON.parse(policyFileText(sp)) as object, ...(verified !== undefined ? { verification: verified } : {}) }, describePolicy(sp, cluster) + (verified !== undefined ? `${verified}\n` : ''))
        return
      }
      await withClient(o.cluster, o.identity, async (c) => {
        const r = await fetchPolicies(c)
        const vs = r.versions.map(v => `node ${v.index}: ${v.policyVersion !== undefined ? (v.policyVersion === 0 ? 'no policy (bootstrap)' : `v${v.policyVersion}`) : `unreachable (${v.code ?? '?'})`}`).join('\n')
        print(o.json, { versions: r.versions, policy: r.newest }, vs + '\n' + (r.newest !== undefined ? describePolicy(r.newest, c.cluster) : ''))
      })
    })

  pol.command('sign')
    .description('add this admin\'s signature (the cluster file says how many admins must sign)')
    .requiredOption('--policy <file>', 'policy file (edited in place)')
    .requiredOption('--cluster <file>', 'cluster file (admin names and keys)')
    .requiredOption('--admin-key <file>', 'admin key file (keymesh id new --admin)')
    .option('--json', 'print JSON')
    .action(async (o: { policy: string, cluster: string, adminKey: string, json?: boolean }) => {
      const cluster = await loadClusterFile(o.cluster)
      const key = await loadAdminKey(o.adminKey)
      let sp: SignedPolicy
      try { sp = signPolicy(await readPolicyFile(o.policy), cluster, key) } finally { key.secretKey.fill(0) }
      await writePolicyFile(o.policy, sp)
      const n = sp.signatures.length
      print(o.json, { policyVersion: sp.policy.policyVersion, signatures: sp.signatures.map(s => s.admin), required: cluster.adminThreshold },
        `signed policy v${sp.policy.policyVersion}: ${n} of ${cluster.adminThreshold} required signature(s)\n`)
    })

  pol.command('push')
    .description('send a signed policy to every node (nodes also spread it to each other)')
    .requiredOption('--policy <file>', 'signed policy file')
    .option('--cluster <file>', 'cluster file')
    .option('--identity <file>', 'identity (an admin of the current policy, or a cluster-file client before the first policy)')
    .option('--json', 'print JSON')
    .action(async (o: { policy: string, cluster?: string, identity?: string, json?: boolean }) => {
      const sp = await readPolicyFile(o.policy)
      await withClient(o.cluster, o.identity, async (c) => {
        const res = await pushPolicy(c, sp)
        print(o.json, { policyVersion: sp.policy.policyVersion, nodes: res },
          res.map(r => `node ${r.index}: ${r.ok ? (r.accepted === true ? `accepted v${r.policyVersion ?? '?'}` : `already has v${r.policyVersion ?? '?'}`) : `refused ${r.code ?? ''} (${r.detail ?? ''})`}`).join('\n') + '\n')
      })
    })

  program.command('approve')
    .description('admin approval to deploy one release to its environment (for policies with approvals)')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--admin-key <file>', 'admin key file')
    .requiredOption('--release <dir>', 'release directory (its manifest names app, env, release and envelope)')
    .requiredOption('--out <file>', 'approval file to create')
    .option('--json', 'print JSON')
    .action(async (o: { cluster: string, adminKey: string, release: string, out: string, json?: boolean }) => {
      const cluster = await loadClusterFile(o.cluster)
      const rel = await loadRelease(o.release)
      const key = await loadAdminKey(o.adminKey)
      let a
      try { a = approveRelease(cluster, key, rel.manifest) } finally { key.secretKey.fill(0) }
      await atomicWriteFile(o.out, JSON.stringify(a) + '\n', { mode: 0o644, exclusive: true, field: '--out' })
      print(o.json, a, `approved ${a.app}/${a.env}/${a.release} (envelope ${a.envelope.slice(0, 16)}…) as ${a.admin}: ${o.out}\n`)
    })

  program.command('audit')
    .description('fetch, verify and merge every node\'s audit log: who deployed which release where and when, who was refused')
    .requiredOption('--cluster <file>', 'cluster file')
    .option('--identity <file>', 'auditor or admin identity (reads the logs from the nodes)')
    .option('--file <log>', 'read a node\'s audit.log file instead (repeatable)', collect)
    .option('--app <app>', 'only this app')
    .option('--env <env>', 'only this environment')
    .option('--peer <peer>', 'only this requester (PeerId or name)')
    .option('--since <time>', 'only records at or after this time')
    .option('--until <time>', 'only records at or before this time')
    .option('--decision <d>', 'allow, deny or error')
    .option('--cache-dir <dir>', 'where known signed heads are kept (default $KEYMESH_CACHE_DIR or ~/.cache/keymesh)')
    .option('--no-heads-cache', 'do not read or update the cache of known signed heads')
    .option('--json', 'print JSON')
    .action(async (o: { cluster: string, identity?: string, file?: string[], app?: string, env?: string, peer?: string, since?: string, until?: string, decision?: string, cacheDir?: string, headsCache: boolean, json?: boolean }) => {
      const cluster = await loadClusterFile(o.cluster)
      if (o.decision !== undefined && !['allow', 'deny', 'error'].includes(o.decision)) throw new BadInputError('--decision', 'expected allow, deny or error')
      let logs: RawLog[] = []
      let unreachable: Array<{ index: number, code: string, detail: string }> = []
      let policy
      if (o.file !== undefined && o.file.length > 0) {
        for (const f of o.file) logs.push(await readAuditFile(f, cluster))
      } else {
        await withClient(o.cluster, o.identity, async (c) => {
          const r = await fetchAuditLogs(c)
          logs = r.logs; unreachable = r.failures
          policy = (await fetchPolicies(c)).newest?.policy
        })
        if (logs.length === 0) throw new KeymeshError(unreachable[0]?.code as ErrorCode ?? ErrorCode.UNAVAILABLE, `no node served its audit log: ${unreachable.map(u => `node ${u.index}: ${u.code}`).join('; ')}`)
      }
      const cacheDir = o.cacheDir ?? defaultCacheDir()
      const cachePath = headsCachePath(cacheDir, cluster.clusterId)
      const known = o.headsCache ? await readHeadsCache(cachePath) : []
      const report = buildAuditReport(cluster, logs, {
        known,
        unreachable,
        ...(policy !== undefined ? { policy } : {}),
        filter: {
          ...(o.app !== undefined ? { app: o.app } : {}),
          ...(o.env !== undefined ? { env: o.env } : {}),
          ...(o.peer !== undefined ? { peer: o.peer } : {}),
          ...(o.since !== undefined ? { since: o.since } : {}),
          ...(o.until !== undefined ? { until: o.until } : {}),
          ...(o.decision !== undefined ? { decision: o.decision as 'allow' | 'deny' | 'error' } : {})
        }
      })
      if (o.headsCache && report.heads.length > 0) await updateHeadsCache(cachePath, cacheDir, cluster, report.heads).catch(() => {})
      print(o.json, report, formatAuditReport(report, cluster))
      if (!report.ok) process.exitCode = ExitCode.VERIFICATION_FAILED
    })
}

/** Reads an approval file's text (for deploy --approval). Throws BadInputError. */
export async function readApprovalFile (path: string): Promise<string> {
  const t = (await readFile(path, 'utf8').catch(() => { throw new BadInputError('--approval', `cannot read ${path}`) })).trim()
  return t
}

