/**
 * Lifecycle commands (docs/LIFECYCLE.md). Registered by `registerLifecycleCommands(program)`
 * (wired into bin/keymesh.ts by the lead):
 *
 *   keymesh cluster rotate     --cluster C --admin-key K [--admin-key K2 ...] [--identity ID]
 *                              [--epoch N] [--min-decryption-epoch N] [--attempt N] [--out FILE]
 *                              [--no-wait] [--timeout SECONDS] [--json]
 *   keymesh cluster refresh    --cluster C --admin-key K [--admin-key K2 ...] [--identity ID]
 *                              [--epoch N] [--out FILE] [--no-wait] [--timeout SECONDS] [--json]
 *   keymesh cluster order-sign --cluster C --order FILE --admin-key K [--json]
 *   keymesh cluster order-push --cluster C --order FILE --identity ID [--no-wait] [--timeout SECONDS] [--json]
 *
 * `rotate` builds a rotate order for epoch N (default: the nodes' current epoch + 1, asked with
 * --identity), signs it with every given admin key, and — when it carries adminThreshold
 * signatures and no --out is given — pushes it to every node and waits until every node has
 * committed the new epoch, printing the wall time. With --out (or too few signatures) it writes
 * the order file instead, for other admins to `order-sign` on their machines and anyone enrolled
 * to `order-push`.
 *
 * `refresh` does the same for a proactive share refresh (docs/LIFECYCLE.md): the order names the
 * CURRENT epoch (asked from the nodes: the key set k nodes agree on, unless --epoch is given), and
 * the wait ends when every node reports a new key set id for it ("refresh epoch 3: 4/5 nodes have
 * the new key set"). `order-push` of a refresh order waits the same way.
 *
 * Exit codes (protocol/errors.ts ExitCode): 2 bad input / refused order / failed ceremony
 * (CONFLICT, BAD_INPUT), 3 not authorised, 4 signature check failed (or the nodes disagree on the
 * refreshed key set), 5 nodes unreachable or the ceremony timed out.
 */
import type { Command } from 'commander'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { aint } from '../protocol/bytes.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { MAX_ORDER_LEN } from '../protocol/order.ts'
import type { OrderParams, SignedOrder } from '../protocol/order.ts'
import { loadClusterFile } from './client.ts'
import { loadAdminKey, loadIdentity, wipeIdentity } from './identity.ts'
import type { AdminKey } from './identity.ts'
import { ClientTransport } from './transport.ts'
import { atomicWriteFile, readTextCapped } from './fsutil.ts'
import { newOrder, orderText, pushOrder, readOrderText, refreshSession, signOrder, waitForEpoch, waitForRefresh } from './lifecycle.ts'
import { fetchKeySet } from './keyset-fetch.ts'
import { idOf } from './generations.ts'
import type { PushResult } from './lifecycle.ts'
import { pushReshareAndWait, registerReshareCommands } from './reshare-cli.ts'

function collect (v: string, prev: string[] = []): string[] { return [...prev, v] }

function int (field: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d{1,10}$/.test(v)) throw new BadInputError(field, 'expected a non-negative integer')
  return aint(field, Number(v), min, max)
}

function print (json: boolean | undefined, obj: unknown, text: string): void {
  process.stdout.write(json === true ? JSON.stringify(obj, null, 2) + '\n' : text)
}

async function withTransport<T> (cluster: ClusterFile, identityPath: string | undefined, fn: (t: ClientTransport) => Promise<T>): Promise<T> {
  if (identityPath === undefined) throw new BadInputError('--identity', 'required to reach the nodes (an enrolled client identity)')
  const id = await loadIdentity(identityPath)
  const t = await ClientTransport.create(cluster, id)
  try { return await fn(t) } finally { wipeIdentity(id); await t.close() }
}

/** The highest epoch reported by any node. Throws KeymeshError(QUORUM_UNAVAILABLE-ish UNAVAILABLE) when none answers. */
async function currentEpoch (t: ClientTransport): Promise<number> {
  const st = await Promise.all(t.indices.map(async i => await t.call(i, 'status', {}, { timeoutMs: 3_000 }).catch(() => undefined)))
  const epochs = st.map(s => s?.epoch).filter((e): e is number => typeof e === 'number')
  if (epochs.length === 0) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'no node reported a committed epoch (unreachable, or the initial DKG has not finished)')
  return Math.max(...epochs)
}

function summary (results: PushResult[]): string {
  return results.map(r => `  node ${r.index}: ${r.receipt !== undefined ? (r.receipt.accepted ? 'accepted' : `refused ${r.receipt.code ?? ''} ${r.receipt.detail}`) : `unreachable (${r.error ?? 'error'})`}`).join('\n') + '\n'
}

async function pushAndWait (cluster: ClusterFile, so: SignedOrder, o: { identity?: string, wait?: boolean, timeout?: string, json?: boolean }): Promise<void> {
  // A reshare is pushed to the CURRENT members and waited for on the new ones (client/reshare-cli.ts).
  if (so.order.op === 'reshare') { await pushReshareAndWait(cluster, so, o); return }
  const timeoutMs = (int('--timeout', o.timeout, 1, 86_400) ?? 600) * 1000
  await withTransport(cluster, o.identity, async (t) => {
    const t0 = Date.now()
    // A refresh keeps the epoch: progress is "a new key set id", so note the current one first
    // (the key set k nodes agree on now).
    let beforeId: string | undefined
    if (so.order.op === 'refresh' && o.wait !== false) {
      const cur = await fetchKeySet(t)
      if (cur.epoch !== so.order.epoch) throw new KeymeshError(ErrorCode.CONFLICT, `the refresh order names epoch ${so.order.epoch}, but the cluster's current epoch is ${cur.epoch}; issue a new refresh order`)
      beforeId = idOf(cur)
    }
    const results = await pushOrder(t, so)
    if (o.wait === false) {
      const what = so.order.op === 'refresh' ? `refresh of epoch ${so.order.epoch}` : `${so.order.op} → epoch ${so.order.epoch}`
      print(o.json, { pushed: results }, `order ${so.order.nonce} (${what}) pushed:\n${summary(results)}`)
      return
    }
    let last = ''
    const onProgress = (line: string): void => { if (o.json !== true && line !== last) { process.stderr.write(line + '\n'); last = line } }
    if (beforeId !== undefined) {
      if (o.json !== true) process.stderr.write(`order ${so.order.nonce} accepted; waiting for every node to refresh its shares of epoch ${so.order.epoch} and every live epoch (session ${refreshSession(so.order.epoch, so.order.nonce)})\n`)
      const st = await waitForRefresh(t, so.order.epoch, so.order.nonce, beforeId, { timeoutMs, onProgress })
      const ms = Date.now() - t0
      print(o.json, { op: so.order.op, epoch: so.order.epoch, keySetIdBefore: beforeId, keySetId: st[0]?.keySetId ?? null, ms, pushed: results },
        `refresh of epoch ${so.order.epoch} committed on all ${st.length} nodes in ${(ms / 1000).toFixed(1)} s\nkeySetId ${beforeId.slice(0, 16)}… → ${st[0]?.keySetId ?? '?'}\n`)
      return
    }
    if (o.json !== true) process.stderr.write(`order ${so.order.nonce} accepted; waiting for every node to commit epoch ${so.order.epoch}\n`)
    const st = await waitForEpoch(t, so.order.epoch, { timeoutMs, onProgress })
    const ms = Date.now() - t0
    print(o.json, { op: so.order.op, epoch: so.order.epoch, keySetId: st[0]?.keySetId ?? null, ms, pushed: results },
      `epoch ${so.order.epoch} committed on all ${st.length} nodes in ${(ms / 1000).toFixed(1)} s\nkeySetId ${st[0]?.keySetId ?? '?'}\n`)
  })
}

/**
 * Signs the order with every key. Returns it when it is to be pushed (enough signatures, no --out);
 * otherwise writes it to `out` (exclusive, 0644) and returns undefined. Throws BadInputError when
 * it is under-signed without --out, or `out` exists.
 */
async function writeOrSign (c: ClusterFile, so0: SignedOrder, keys: AdminKey[], out: string | undefined, json: boolean | undefined, what: string): Promise<SignedOrder | undefined> {
  let so = so0
  for (const k of keys) so = signOrder(so, c, k)
  if (out === undefined && so.signatures.length >= c.adminThreshold) return so
  if (out === undefined) throw new BadInputError('--out', `the order has ${so.signatures.length} of ${c.adminThreshold} required admin signatures; write it with --out and have other admins run \`keymesh cluster order-sign\``)
  await atomicWriteFile(out, orderText(so) + '\n', { mode: 0o644, exclusive: true, field: '--out' })
  print(json, { order: so.order, signatures: so.signatures.map(s => s.admin), file: out },
    `wrote order ${so.order.nonce} (${what}) to ${out}: ${so.signatures.length}/${c.adminThreshold} signatures\n`)
  return undefined
}

function cmd (program: Command, name: string): Command {
  return program.commands.find(c => c.name() === name) ?? program.command(name).description('cluster-wide operations')
}

/** Registers `cluster rotate`, `cluster refresh`, `cluster order-sign` and `cluster order-push` on `program`. */
export function registerLifecycleCommands (program: Command): void {
  const cluster = cmd(program, 'cluster')
  registerReshareCommands(cluster)

  cluster.command('rotate')
    .description('start a new key epoch (fresh DKG, same members); older epochs keep decrypting unless retired')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--admin-key <file>', 'admin key file; repeat for several admins', collect)
    .option('--identity <file>', 'enrolled client identity used to reach the nodes')
    .option('--epoch <n>', 'target epoch (default: current epoch + 1, asked from the nodes)')
    .option('--min-decryption-epoch <n>', 'after the rotation, refuse partials and signing for epochs below N')
    .option('--attempt <n>', 'DKG attempt number (retry of a failed rotation to the same epoch)')
    .option('--out <file>', 'write the (partially) signed order here instead of pushing it')
    .option('--no-wait', 'return once the order is accepted')
    .option('--timeout <seconds>', 'how long to wait for every node to commit (default 600)')
    .option('--json', 'machine-readable output')
    .action(async (o: { cluster: string, adminKey: string[], identity?: string, epoch?: string, minDecryptionEpoch?: string, attempt?: string, out?: string, wait?: boolean, timeout?: string, json?: boolean }) => {
      const c = await loadClusterFile(o.cluster)
      const keys: AdminKey[] = []
      for (const p of o.adminKey) keys.push(await loadAdminKey(p))
      try {
        let epoch = int('--epoch', o.epoch, 2, 0xffffffff)
        if (epoch === undefined) epoch = await withTransport(c, o.identity, async t => (await currentEpoch(t)) + 1)
        const min = int('--min-decryption-epoch', o.minDecryptionEpoch, 1, 0xffffffff)
        const attempt = int('--attempt', o.attempt, 0, 999_999)
        const params: OrderParams = { ...(min !== undefined ? { minDecryptionEpoch: min } : {}), ...(attempt !== undefined ? { attempt } : {}) }
        let so = newOrder(c, 'rotate', epoch, params)
        for (const k of keys) so = signOrder(so, c, k)
        if (o.out !== undefined || so.signatures.length < c.adminThreshold) {
          const out = o.out
          if (out === undefined) throw new BadInputError('--out', `the order has ${so.signatures.length} of ${c.adminThreshold} required admin signatures; write it with --out and have other admins run \`keymesh cluster order-sign\``)
          await atomicWriteFile(out, orderText(so) + '\n', { mode: 0o644, exclusive: true, field: '--out' })
          print(o.json, { order: so.order, signatures: so.signatures.map(s => s.admin), file: out },
            `wrote order ${so.order.nonce} (rotate → epoch ${epoch}) to ${out}: ${so.signatures.length}/${c.adminThreshold} signatures\n`)
          return
        }
        await pushAndWait(c, so, o)
      } finally { for (const k of keys) k.secretKey.fill(0) }
    })

  cluster.command('refresh')
    .description('proactive share refresh: every node re-randomises its shares of every live epoch; same keys, same epoch, new key set ids')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--admin-key <file>', 'admin key file; repeat for several admins', collect)
    .option('--identity <file>', 'enrolled client identity used to reach the nodes')
    .option('--epoch <n>', 'the cluster\'s current epoch (default: asked from the nodes; needed with --out when offline)')
    .option('--out <file>', 'write the (partially) signed order here instead of pushing it')
    .option('--no-wait', 'return once the order is accepted')
    .option('--timeout <seconds>', 'how long to wait for every node to commit (default 600)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  $ keymesh cluster refresh --cluster cluster.json --admin-key alice.admin.json --admin-key bob.admin.json --identity operator.json\n')
    .action(async (o: { cluster: string, adminKey: string[], identity?: string, epoch?: string, out?: string, wait?: boolean, timeout?: string, json?: boolean }) => {
      const c = await loadClusterFile(o.cluster)
      const keys: AdminKey[] = []
      for (const p of o.adminKey) keys.push(await loadAdminKey(p))
      try {
        let epoch = int('--epoch', o.epoch, 1, 0xffffffff)
        // The current epoch is the newest key set k nodes agree on (one node cannot steer it).
        if (epoch === undefined) epoch = await withTransport(c, o.identity, async t => (await fetchKeySet(t)).epoch)
        const so = await writeOrSign(c, newOrder(c, 'refresh', epoch, {}), keys, o.out, o.json, `refresh of epoch ${epoch}`)
        if (so !== undefined) await pushAndWait(c, so, o)
      } finally { for (const k of keys) k.secretKey.fill(0) }
    })

  cluster.command('order-sign')
    .description('add your admin signature to an order file (in place)')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--order <file>', 'order file')
    .requiredOption('--admin-key <file>', 'admin key file')
    .option('--json', 'machine-readable output')
    .action(async (o: { cluster: string, order: string, adminKey: string, json?: boolean }) => {
      const c = await loadClusterFile(o.cluster)
      const key = await loadAdminKey(o.adminKey)
      try {
        const so = signOrder(readOrderText(await readTextCapped('--order', o.order, MAX_ORDER_LEN)), c, key)
        await atomicWriteFile(o.order, orderText(so) + '\n', { mode: 0o644, field: '--order' })
        print(o.json, { signatures: so.signatures.map(s => s.admin), required: c.adminThreshold },
          `signed; ${so.signatures.length}/${c.adminThreshold} signatures (${so.signatures.map(s => s.admin).join(', ')})\n`)
      } finally { key.secretKey.fill(0) }
    })

  cluster.command('order-push')
    .description('push a signed order file to the nodes and wait for it to complete')
    .requiredOption('--cluster <file>', 'cluster file')
    .requiredOption('--order <file>', 'order file')
    .requiredOption('--identity <file>', 'enrolled client identity used to reach the nodes')
    .option('--no-wait', 'return once the order is accepted')
    .option('--timeout <seconds>', 'how long to wait for every node to commit (default 600)')
    .option('--json', 'machine-readable output')
    .action(async (o: { cluster: string, order: string, identity: string, wait?: boolean, timeout?: string, json?: boolean }) => {
      const c = await loadClusterFile(o.cluster)
      const so = readOrderText(await readTextCapped('--order', o.order, MAX_ORDER_LEN))
      await pushAndWait(c, so, o)
    })
}
