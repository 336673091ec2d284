/**
 * Node-side CLI commands, registered onto the program built in bin/keymesh.ts:
 *
 *   keymesh node init   --data DIR [--listen MULTIADDR ...] (--passphrase-file F | --key-file F | --insecure-dev-passphrase) [--json]
 *   keymesh node start  --data DIR --cluster FILE [--join ORDER] [--listen MULTIADDR ...] (key source) [--log-level L] [--max-request-ms MS] [--max-inflight N]
 *   keymesh cluster genesis --threshold K --node PEERID@MULTIADDR[,MULTIADDR] ... [--admin NAME=PUBKEY ...] [--admin-threshold N] [--client [NAME=]PEERID ...] --out FILE
 *   keymesh status --cluster FILE [--identity FILE] [--timeout MS] [--json]
 *
 * `status` must pass the nodes' connection gater, so it needs an enrolled identity (`--identity`,
 * a client identity file whose PeerId is in the cluster file's `clients`). Without one it uses a
 * throw-away key, which every node refuses: all nodes then show as unreachable.
 *
 * Parsing and printing only; the work is in node/service.ts and node/peer-caller.ts.
 */
import type { Command } from 'commander'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { BadInputError, ErrorCode, KeymeshError, QuorumUnavailableError, errorCode } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { fromB64u } from '../protocol/bytes.ts'
import {
  CLUSTER_FORMAT, CLUSTER_VERSION, NAME_PATTERN, serializeClusterFile, validateNodeAddress, validatePeerId
} from '../protocol/cluster.ts'
import type { ClusterAdmin, ClusterClient, ClusterFile, ClusterNode } from '../protocol/cluster.ts'
import type { ResponseBodies } from '../protocol/rpc.ts'
import { configFromOptions } from './config.ts'
import type { NodeCliOptions } from './config.ts'
import { initNode, loadClusterFile, runNode } from './service.ts'
import { loadClientIdentity, peerIdOf } from './identity.ts'
import { createHost } from './host.ts'
import { nodeDialAddrs, rpcCall } from './peer-caller.ts'
import { foldMembership } from '../protocol/membership.ts'

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

function addKeySourceOptions (c: Command): Command {
  return c
    .option('--passphrase-file <file>', 'file holding the operator passphrase (storage key via scrypt)')
    .option('--key-file <file>', 'file holding a 32-byte storage key (raw or 64 hex chars)')
    .option('--insecure-dev-passphrase', 'INSECURE: use a public built-in passphrase (tests/demos only)')
}

function print (json: boolean, value: unknown, human: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human)
}

/** Parses `--node PEERID@MA[,MA]`. Throws BadInputError. */
export function parseNodeSpec (spec: string, index: number): ClusterNode {
  const at = spec.indexOf('@')
  if (at <= 0) throw new BadInputError(`--node ${spec}`, 'expected PEERID@MULTIADDR[,MULTIADDR]')
  const peerId = validatePeerId(`--node[${index - 1}].peerId`, spec.slice(0, at))
  const addresses = spec.slice(at + 1).split(',').map((a, j) => validateNodeAddress(`--node[${index - 1}].addresses[${j}]`, a))
  return { index, peerId, addresses }
}

/** Parses `--admin NAME=PUBKEY` (32-byte Ed25519 public key, b64u). Throws BadInputError. */
export function parseAdminSpec (spec: string): ClusterAdmin {
  const eq = spec.indexOf('=')
  if (eq <= 0) throw new BadInputError(`--admin ${spec}`, 'expected NAME=PUBKEY (base64url 32-byte Ed25519 key)')
  const name = spec.slice(0, eq)
  if (!NAME_PATTERN.test(name)) throw new BadInputError('--admin name', `must match ${NAME_PATTERN.source}`)
  const publicKey = fromB64u('--admin publicKey', spec.slice(eq + 1), 32)
  if (publicKey.length !== 32) throw new BadInputError('--admin publicKey', 'expected 32 bytes')
  return { name, publicKey }
}

/** Parses `--client [NAME=]PEERID`. Throws BadInputError. */
export function parseClientSpec (spec: string, i: number): ClusterClient {
  const eq = spec.indexOf('=')
  const name = eq > 0 ? spec.slice(0, eq) : `client-${i + 1}`
  if (!NAME_PATTERN.test(name)) throw new BadInputError('--client name', `must match ${NAME_PATTERN.source}`)
  return { name, peerId: validatePeerId(`--client[${i}]`, eq > 0 ? spec.slice(eq + 1) : spec) }
}

/** One row of `keymesh status`. */
export interface StatusRow {
  index: number
  peerId: string
  reachable: boolean
  error?: string
  status?: ResponseBodies['status']
  ms?: number
}

/**
 * Queries `status` on every node of the cluster with the given client key (or a throw-away key).
 * Never throws for an unreachable node: its row says why.
 */
export async function clusterStatus (genesis: ClusterFile, identityPath: string | undefined, timeoutMs: number, view?: { cluster: ClusterFile, revision: number }): Promise<StatusRow[]> {
  let cluster = genesis
  const peerKey = identityPath !== undefined ? (await loadClientIdentity(identityPath)).peerKey : await generateKeyPair('Ed25519')
  const nodeIds = new Set(cluster.nodes.map(n => n.peerId))
  const host = await createHost({ privateKey: peerKey, listen: [], allow: pid => nodeIds.has(pid) })
  try {
    void peerIdOf(peerKey)
    // After reshares the members are the cluster file folded with the committed reshare orders
    // (docs/PROTOCOL.md §11.8): ask the nodes (cluster.get), verify with the file's admins.
    let best = foldMembership(genesis, [])
    for (let round = 0; round < 4; round++) {
      const answers = await Promise.all(best.cluster.nodes.map(async n => await rpcCall(host, nodeDialAddrs(n), 'cluster.get', { have: best.revision }, { ttlMs: Math.min(timeoutMs, 2_000) }).catch(() => undefined)))
      let next = best
      for (const a of answers) {
        if (a?.orders === undefined || a.revision <= next.revision) continue
        try { next = foldMembership(genesis, a.orders) } catch { /* not signed by the admins: ignored */ }
      }
      if (next.revision === best.revision) break
      best = next
      for (const n of best.cluster.nodes) nodeIds.add(n.peerId)
    }
    cluster = best.cluster
    if (view !== undefined) { view.cluster = best.cluster; view.revision = best.revision }
    return await Promise.all(cluster.nodes.map(async (n): Promise<StatusRow> => {
      const t0 = Date.now()
      try {
        const status = await rpcCall(host, nodeDialAddrs(n), 'status', {}, { ttlMs: timeoutMs })
        if (status.peerId !== n.peerId || status.index !== n.index || status.clusterId !== cluster.clusterId) {
          return { index: n.index, peerId: n.peerId, reachable: false, error: 'answered with another identity or cluster' }
        }
        return { index: n.index, peerId: n.peerId, reachable: true, status, ms: Date.now() - t0 }
      } catch (e) {
        return { index: n.index, peerId: n.peerId, reachable: false, error: `${errorCode(e)}: ${(e as Error).message}` }
      }
    }))
  } finally {
    await host.stop()
  }
}

function fmtUptime (ms: number): string {
  const s = Math.floor(ms / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`
}

/** Registers `node init|start`, `cluster genesis` and `status` on `program`. */
export function registerNodeCommands (program: Command): void {
  const node = program.command('node').description('run a keymesh node daemon')

  addKeySourceOptions(node.command('init')
    .description('create a node data directory (identity key, storage key parameters, database)')
    .requiredOption('--data <dir>', 'node data directory (created, mode 700)')
    .option('--listen <multiaddr>', 'address this node will listen on (printed for `cluster genesis`); repeatable', collect))
    .option('--json', 'print JSON')
    .action(async (o: NodeCliOptions & { json?: boolean }) => {
      const cfg = configFromOptions(o, false)
      for (const [j, a] of cfg.listen.entries()) validateNodeAddress(`--listen[${j}]`, a)
      const r = await initNode(cfg)
      const spec = r.addresses.length > 0 ? `${r.peerId}@${r.addresses.join(',')}` : undefined
      print(o.json === true, { peerId: r.peerId, addresses: r.addresses, dataDir: r.dataDir, nodeSpec: spec ?? null },
        `initialised ${r.dataDir}\npeerId: ${r.peerId}\n` +
        (spec !== undefined ? `for cluster genesis: --node ${spec}\n` : 'for cluster genesis: --node <peerId>@/ip4/<address>/tcp/<port>\n') +
        'back up this data directory (identity.key, storage-key.json, db/); the passphrase or key file is needed to start the node\n')
    })

  addKeySourceOptions(node.command('start')
    .description('start the node daemon (structured JSON logs on stderr; stops on SIGTERM/SIGINT)')
    .requiredOption('--data <dir>', 'node data directory made by `node init`')
    .requiredOption('--cluster <file>', 'cluster file (genesis; the membership after reshares is kept in DATA/membership.json)')
    .option('--join <order>', 'a NEW node: the signed reshare order that adds it (ignored once it is a member)')
    .option('--listen <multiaddr>', 'listen address (default: this node\'s addresses in the cluster file); repeatable', collect))
    .option('--log-level <level>', 'debug|info|warn|error', 'info')
    .option('--max-request-ms <ms>', 'server cap on any request deadline')
    .option('--max-inflight <n>', 'requests in flight per peer before BUSY')
    .action(async (o: NodeCliOptions) => {
      await runNode(configFromOptions(o, true))
    })

  const cluster = program.command('cluster').description('cluster file tools')
  cluster.command('genesis')
    .description('write a new cluster file (random clusterId); refuses to overwrite')
    .requiredOption('--threshold <k>', 'signing/decryption threshold k (2 ≤ k ≤ n)')
    .requiredOption('--node <spec>', 'PEERID@MULTIADDR[,MULTIADDR] in index order; repeatable', collect)
    .option('--admin <spec>', 'NAME=PUBKEY (base64url Ed25519); repeatable', collect)
    .option('--admin-threshold <n>', 'admins needed to sign a policy (default 1 with admins, 0 without)')
    .option('--client <spec>', '[NAME=]PEERID of an enrolled client; repeatable', collect)
    .requiredOption('--out <file>', 'output file (must not exist)')
    .option('--json', 'print JSON')
    .action(async (o: { threshold: string, node: string[], admin?: string[], adminThreshold?: string, client?: string[], out: string, json?: boolean }) => {
      const nodes = o.node.map((s, i) => parseNodeSpec(s, i + 1))
      const admins = (o.admin ?? []).map(parseAdminSpec)
      const num = (name: string, v: string): number => { if (!/^\d+$/.test(v)) throw new BadInputError(name, 'expected an integer'); return Number(v) }
      const c: ClusterFile = {
        format: CLUSTER_FORMAT,
        version: CLUSTER_VERSION,
        clusterId: randomBytes(16).toString('hex'),
        threshold: num('--threshold', o.threshold),
        nodes,
        admins,
        adminThreshold: o.adminThreshold !== undefined ? num('--admin-threshold', o.adminThreshold) : (admins.length > 0 ? 1 : 0),
        clients: (o.client ?? []).map(parseClientSpec),
        createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
      }
      const text = serializeClusterFile(c)
      try {
        await writeFile(o.out, text, { flag: 'wx', mode: 0o644 })
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new KeymeshError(ErrorCode.CONFLICT, `${o.out} already exists; refusing to overwrite`)
        throw new KeymeshError(ErrorCode.BAD_INPUT, `cannot write ${o.out}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
      }
      print(o.json === true, { out: o.out, clusterId: c.clusterId, threshold: c.threshold, n: nodes.length },
        `wrote ${o.out}: cluster ${c.clusterId}, ${c.threshold}-of-${nodes.length}\n`)
    })

  program.command('status')
    .description('show each node\'s reachability, epoch, key set, version and uptime (needs an enrolled --identity)')
    .requiredOption('--cluster <file>', 'cluster file')
    .option('--identity <file>', 'client identity file (JSON, mode 600) enrolled in the cluster file')
    .option('--timeout <ms>', 'per-node timeout', '5000')
    .option('--json', 'print JSON')
    .action(async (o: { cluster: string, identity?: string, timeout: string, json?: boolean }) => {
      const genesis = await loadClusterFile(o.cluster)
      if (!/^\d+$/.test(o.timeout)) throw new BadInputError('--timeout', 'expected milliseconds')
      const timeout = Math.min(Math.max(Number(o.timeout), 100), 60_000)
      const view = { cluster: genesis, revision: 1 }
      const rows = await clusterStatus(genesis, o.identity, timeout, view)
      const cluster = view.cluster
      const ok = rows.filter(r => r.reachable).length
      if (o.json === true) {
        print(true, { clusterId: cluster.clusterId, threshold: cluster.threshold, reachable: ok, nodes: rows }, '')
      } else {
        let out = `cluster ${cluster.clusterId}: ${ok}/${rows.length} nodes reachable (threshold ${cluster.threshold}${view.revision > 1 ? `, membership revision ${view.revision}` : ''})\n`
        for (const r of rows) {
          if (r.status !== undefined) {
            const s = r.status
            out += `  node ${r.index} ${r.peerId}  reachable  epoch ${s.epoch ?? '-'}  keySet ${s.keySetId?.slice(0, 16) ?? '-'}  v${s.version}  up ${fmtUptime(s.uptimeMs)}  dkg ${s.dkg.state}${s.dkg.detail !== undefined ? ` (${s.dkg.detail})` : ''}\n`
          } else {
            out += `  node ${r.index} ${r.peerId}  UNREACHABLE  ${r.error ?? ''}\n`
          }
        }
        if (o.identity === undefined) out += 'note: no --identity given; nodes refuse unknown peers, so pass an identity enrolled in the cluster file\n'
        process.stdout.write(out)
      }
      if (ok < cluster.threshold) {
        const failures: NodeFailure[] = rows.filter(r => !r.reachable).map(r => ({ index: r.index, code: ErrorCode.UNAVAILABLE, detail: r.error ?? 'unreachable' }))
        throw new QuorumUnavailableError(cluster.threshold, ok, failures)
      }
    })
}
