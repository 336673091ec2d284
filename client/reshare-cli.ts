/**
 * Membership commands (docs/LIFECYCLE.md "Reshare"), registered by client/lifecycle-cli.ts:
 *
 *   keymesh cluster reshare --cluster C --admin-key K [--admin-key K2 ...] --identity ID
 *                           [--add PEERID@ADDR[,ADDR] ...] [--remove PEERID ...] [--threshold K']
 *                           [--out FILE] [--no-wait] [--timeout SECONDS] [--json]
 *   keymesh cluster show    --cluster C --identity ID [--json]
 *
 * `reshare` learns the current membership from the nodes (cluster.get, folded onto the cluster
 * file and verified with its admins), builds the new member list — removed entries are replaced IN
 * PLACE by added ones, extra additions are appended, extra removals compacted — signs a reshare
 * order for the current epoch and either writes it (--out, or too few signatures: other admins
 * `order-sign` it; new nodes start with `node start --join FILE`) or, when no node is added,
 * pushes it to the current members and waits until every new member serves the next membership
 * revision. With additions, write it with --out, start the new nodes with --join, then
 * `keymesh cluster order-push --order FILE` (which waits the same way).
 *
 * `show` prints the membership the nodes serve (revision, threshold, members).
 */
import type { Command } from 'commander'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { aint } from '../protocol/bytes.ts'
import type { ClusterFile, ClusterNode } from '../protocol/cluster.ts'
import { validateNodeAddress, validatePeerId } from '../protocol/cluster.ts'
import { applyReshare, foldMembership, reshareCommitQuorum } from '../protocol/membership.ts'
import type { Membership } from '../protocol/membership.ts'
import { reshareSessionId } from '../protocol/rpc.ts'
import type { OrderMember, SignedOrder } from '../protocol/order.ts'
import { loadClusterFile } from './client.ts'
import { loadAdminKey, loadIdentity, wipeIdentity } from './identity.ts'
import type { AdminKey, ClientIdentity } from './identity.ts'
import { ClientTransport } from './transport.ts'
import { atomicWriteFile } from './fsutil.ts'
import { newOrder, orderText, pushOrder, signOrder } from './lifecycle.ts'
import { fetchKeySet } from './keyset-fetch.ts'
import { fetchNewerMembership } from './membership.ts'

function collect (v: string, prev: string[] = []): string[] { return [...prev, v] }

function print (json: boolean | undefined, obj: unknown, text: string): void {
  process.stdout.write(json === true ? JSON.stringify(obj, null, 2) + '\n' : text)
}

/**
 * The new member list: removals replaced in place by additions, extra additions appended, extra
 * removals compacted; indices renumbered 1..n'. Throws BadInputError (unknown or duplicate PeerId,
 * an added node already a member, fewer than 2 members).
 */
export function reshareMembers (current: ClusterNode[], add: Array<{ peerId: string, addresses: string[] }>, remove: string[]): OrderMember[] {
  for (const r of remove) if (!current.some(n => n.peerId === r)) throw new BadInputError('--remove', `${r} is not a member of the current view`)
  if (new Set(remove).size !== remove.length) throw new BadInputError('--remove', 'duplicate PeerId')
  for (const a of add) if (current.some(n => n.peerId === a.peerId)) throw new BadInputError('--add', `${a.peerId} is already a member`)
  if (new Set(add.map(a => a.peerId)).size !== add.length) throw new BadInputError('--add', 'duplicate PeerId')
  const queue = [...add]
  const out: Array<{ peerId: string, addresses: string[] }> = []
  for (const n of current) {
    if (!remove.includes(n.peerId)) { out.push({ peerId: n.peerId, addresses: [...n.addresses] }); continue }
    const repl = queue.shift()
    if (repl !== undefined) out.push(repl)
  }
  out.push(...queue)
  if (out.length < 2) throw new BadInputError('--remove', 'a cluster needs at least 2 members')
  return out.map((m, j) => ({ index: j + 1, peerId: m.peerId, addresses: m.addresses }))
}

/** Parses `--add PEERID@ADDR[,ADDR]`. Throws BadInputError. */
export function parseAddSpec (spec: string): { peerId: string, addresses: string[] } {
  const at = spec.indexOf('@')
  if (at <= 0) throw new BadInputError(`--add ${spec}`, 'expected PEERID@MULTIADDR[,MULTIADDR]')
  return { peerId: validatePeerId('--add.peerId', spec.slice(0, at)), addresses: spec.slice(at + 1).split(',').map((a, j) => validateNodeAddress(`--add.addresses[${j}]`, a)) }
}

/** A transport on the newest membership the nodes serve (verified with the cluster file's admins). Throws as ClientTransport.create. */
export async function currentView (genesis: ClusterFile, id: ClientIdentity): Promise<{ t: ClientTransport, m: Membership }> {
  const t = await ClientTransport.create(genesis, id)
  let m = foldMembership(genesis, [])
  // A removed node may serve an old chain: repeat until no newer revision appears.
  for (let round = 0; round < 8; round++) {
    const r = await fetchNewerMembership(t, genesis, m)
    if (r.membership === undefined) break
    m = r.membership
    await t.adoptMembership(m.cluster)
  }
  return { t, m }
}

/** How long a new member that does not answer at all is waited for once a commit quorum serves the new revision (ms). */
export const LATE_MEMBER_WAIT_MS = 15_000

/**
 * Polls cluster.get on every NEW member until each serves revision ≥ `revision`, or until a commit
 * quorum (max(k′, ⌊n′/2⌋+1)) does and the others have not answered at all for LATE_MEMBER_WAIT_MS
 * (down: they catch up by share repair when back; returned as `late`). Throws CONFLICT when a
 * member reports the reshare failed, TIMEOUT when the timeout passes.
 */
export async function waitForMembership (genesis: ClusterFile, id: ClientIdentity, view: ClusterFile, revision: number, session: string, opts: { timeoutMs: number, onProgress?: (line: string) => void }): Promise<{ late: number[] }> {
  const t = await ClientTransport.create(view, id)
  const q = reshareCommitQuorum(view.threshold, view.nodes.length)
  const heard = new Map<number, number>()
  let reachedQ = 0
  try {
    const until = Date.now() + opts.timeoutMs
    for (;;) {
      const got = await Promise.all(t.indices.map(async i => {
        const r = await t.call(i, 'cluster.get', { have: 0 }, { timeoutMs: 3_000 }).catch(() => undefined)
        const s = await t.call(i, 'status', {}, { timeoutMs: 3_000 }).catch(() => undefined)
        if (r !== undefined || s !== undefined) heard.set(i, Date.now())
        if (s?.dkg.state === 'failed' && (s.dkg.detail ?? '').includes(session)) throw new KeymeshError(ErrorCode.CONFLICT, `reshare failed on new member ${i}: ${s.dkg.detail ?? ''}; nothing changed unless some members committed — issue a new order`)
        return r !== undefined && r.revision >= revision && r.orders !== undefined && foldMembership(genesis, r.orders).revision >= revision
      }))
      const done = got.filter(Boolean).length
      const missing = t.indices.filter((_, x) => got[x] !== true)
      opts.onProgress?.(`reshare ${session}: ${done}/${got.length} new members serve membership revision ${revision}${missing.length > 0 && done >= q ? ` (committed; waiting for ${missing.join(',')})` : ''}`)
      if (done === got.length) return { late: [] }
      if (done >= q) {
        if (reachedQ === 0) reachedQ = Date.now()
        const silent = missing.every(i => Date.now() - (heard.get(i) ?? 0) >= LATE_MEMBER_WAIT_MS)
        if (silent && Date.now() - reachedQ >= LATE_MEMBER_WAIT_MS) return { late: missing }
      }
      if (Date.now() > until) throw new KeymeshError(ErrorCode.TIMEOUT, `reshare not complete after ${opts.timeoutMs / 1000} s: ${done}/${got.length} new members at revision ${revision}`)
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  } finally { await t.close() }
}

/**
 * Pushes a reshare order to the current members and waits for every new member (or a commit
 * quorum, when the others are down) to serve the next revision. Throws as pushOrder / waitForMembership.
 */
export async function pushReshareAndWait (genesis: ClusterFile, so: SignedOrder, o: { identity?: string, wait?: boolean, timeout?: string, json?: boolean }): Promise<void> {
  if (o.identity === undefined) throw new BadInputError('--identity', 'required to reach the nodes (an enrolled client identity)')
  const id = await loadIdentity(o.identity)
  try {
    const { t, m } = await currentView(genesis, id)
    let view: ClusterFile
    try {
      view = applyReshare(m.cluster, so.order)
      const t0 = Date.now()
      const results = await pushOrder(t, so)
      const session = reshareSessionId(so.order.epoch, so.order.nonce)
      if (o.wait === false) {
        print(o.json, { pushed: results, session }, `reshare order ${so.order.nonce} pushed (session ${session}):\n${results.map(r => `  node ${r.index}: ${r.receipt !== undefined ? (r.receipt.accepted ? 'accepted' : `refused ${r.receipt.code ?? ''} ${r.receipt.detail}`) : `unreachable (${r.error ?? 'error'})`}`).join('\n')}\n`)
        return
      }
      let last = ''
      const { late } = await waitForMembership(genesis, id, view, m.revision + 1, session, {
        timeoutMs: (o.timeout !== undefined ? aint('--timeout', Number(o.timeout), 1, 86_400) : 600) * 1000,
        onProgress: (line) => { if (o.json !== true && line !== last) { process.stderr.write(line + '\n'); last = line } }
      })
      const ms = Date.now() - t0
      print(o.json, { revision: m.revision + 1, threshold: view.threshold, n: view.nodes.length, ms, session, late },
        `reshare committed: membership revision ${m.revision + 1}, ${view.threshold}-of-${view.nodes.length}, in ${(ms / 1000).toFixed(1)} s\n` +
        (late.length > 0 ? `new member(s) ${late.join(',')} did not answer: start them as usual; each catches up by share repair when it is back (keymesh status shows it)\n` : ''))
    } finally { await t.close() }
  } finally { wipeIdentity(id) }
}

/** Registers `cluster reshare` and `cluster show` on the `cluster` command. */
export function registerReshareCommands (cluster: Command): void {
  cluster.command('reshare')
    .description('change the members and/or threshold with the SAME keys (every envelope and JWKS entry stays valid)')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--admin-key <file>', 'admin key file; repeat for several admins', collect)
    .requiredOption('--identity <file>', 'enrolled client identity used to reach the nodes')
    .option('--add <spec>', 'PEERID@MULTIADDR[,MULTIADDR] of a new node; repeatable', collect)
    .option('--remove <peerId>', 'PeerId of a member to remove; repeatable', collect)
    .option('--threshold <k>', 'new threshold (default: unchanged)')
    .option('--out <file>', 'write the (partially) signed order here instead of pushing it (needed when nodes are added: start them with --join FILE)')
    .option('--no-wait', 'return once the order is accepted')
    .option('--timeout <seconds>', 'how long to wait for the new members (default 600); members that stay silent once a commit quorum has committed are reported, not waited for')
    .option('--json', 'machine-readable output')
    .action(async (o: { cluster: string, adminKey: string[], identity: string, add?: string[], remove?: string[], threshold?: string, out?: string, wait?: boolean, timeout?: string, json?: boolean }) => {
      const genesis = await loadClusterFile(o.cluster)
      const keys: AdminKey[] = []
      for (const p of o.adminKey) keys.push(await loadAdminKey(p))
      const id = await loadIdentity(o.identity)
      try {
        const { t, m } = await currentView(genesis, id)
        let so: SignedOrder
        try {
          const add = (o.add ?? []).map(parseAddSpec)
          const members = reshareMembers(m.cluster.nodes, add, (o.remove ?? []).map(r => validatePeerId('--remove', r)))
          const k = o.threshold !== undefined ? aint('--threshold', /^\d+$/.test(o.threshold) ? Number(o.threshold) : NaN, 2, members.length) : Math.min(m.cluster.threshold, members.length)
          const epoch = (await fetchKeySet(t)).epoch
          so = newOrder(genesis, 'reshare', epoch, { members, newThreshold: k })
          for (const key of keys) so = signOrder(so, genesis, key)
          applyReshare(m.cluster, so.order)
        } finally { await t.close() }
        const what = `reshare ${m.cluster.threshold}-of-${m.cluster.nodes.length} → ${so.order.params.newThreshold ?? 0}-of-${so.order.params.members?.length ?? 0}`
        if (o.out !== undefined || so.signatures.length < genesis.adminThreshold || (o.add ?? []).length > 0) {
          if (o.out === undefined) {
            throw new BadInputError('--out', so.signatures.length < genesis.adminThreshold
              ? `the order has ${so.signatures.length} of ${genesis.adminThreshold} required admin signatures; write it with --out and have other admins run \`keymesh cluster order-sign\``
              : 'new nodes need the order: write it with --out FILE, start each new node with `keymesh node start --data D --cluster C --join FILE`, then run `keymesh cluster order-push --order FILE`')
          }
          await atomicWriteFile(o.out, orderText(so) + '\n', { mode: 0o644, exclusive: true, field: '--out' })
          print(o.json, { order: so.order, signatures: so.signatures.map(s => s.admin), file: o.out, revision: m.revision + 1 },
            `wrote order ${so.order.nonce} (${what}, membership revision ${m.revision} → ${m.revision + 1}) to ${o.out}: ${so.signatures.length}/${genesis.adminThreshold} signatures\n` +
            ((o.add ?? []).length > 0 ? `start each new node with: keymesh node start --data <dir> --cluster ${o.cluster} --join ${o.out}\nthen: keymesh cluster order-push --cluster ${o.cluster} --order ${o.out} --identity ${o.identity}\n` : ''))
          return
        }
        await pushReshareAndWait(genesis, so, o)
      } finally { for (const key of keys) key.secretKey.fill(0); wipeIdentity(id) }
    })

  cluster.command('show')
    .description('print the current membership (revision, threshold, members) as the nodes serve it')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--identity <file>', 'enrolled client identity used to reach the nodes')
    .option('--json', 'machine-readable output')
    .action(async (o: { cluster: string, identity: string, json?: boolean }) => {
      const genesis = await loadClusterFile(o.cluster)
      const id = await loadIdentity(o.identity)
      try {
        const { t, m } = await currentView(genesis, id)
        try {
          const reach = await Promise.all(t.indices.map(async i => await t.call(i, 'status', {}, { timeoutMs: 3_000 }).then(() => true, () => false)))
          const c = m.cluster
          print(o.json, { clusterId: c.clusterId, revision: m.revision, threshold: c.threshold, n: c.nodes.length, nodes: c.nodes.map((n, j) => ({ ...n, reachable: reach[j] ?? false })) },
            `cluster ${c.clusterId}: membership revision ${m.revision}, ${c.threshold}-of-${c.nodes.length}\n` +
            c.nodes.map((n, j) => `  node ${n.index} ${n.peerId} ${n.addresses.join(',')} ${reach[j] === true ? 'reachable' : 'UNREACHABLE'}\n`).join(''))
        } finally { await t.close() }
      } finally { wipeIdentity(id) }
    })
}
