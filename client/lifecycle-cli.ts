/**
 * Lifecycle commands (docs/LIFECYCLE.md). Registered by `registerLifecycleCommands(program)`
 * (wired into bin/keymesh.ts by the lead):
 *
 *   keymesh cluster rotate     --cluster C --admin-key K [--admin-key K2 ...] [--identity ID]
 *                              [--epoch N] [--min-decryption-epoch N] [--attempt N] [--out FILE]
 *                              [--no-wait] [--timeout SECONDS] [--json]
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
 * Exit codes (protocol/errors.ts ExitCode): 2 bad input / refused order (CONFLICT, BAD_INPUT),
 * 3 not authorised, 4 signature check failed, 5 nodes unreachable or the ceremony timed out.
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
import { newOrder, orderText, pushOrder, readOrderText, signOrder, waitForEpoch } from './lifecycle.ts'
import type { PushResult } from './lifecycle.ts'

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
  const timeoutMs = (int('--timeout', o.timeout, 1, 86_400) ?? 600) * 1000
  await withTransport(cluster, o.identity, async (t) => {
    const t0 = Date.now()
    const results = await pushOrder(t, so)
    if (o.wait === false) {
      print(o.json, { pushed: results }, `order ${so.order.nonce} (${so.order.op} → epoch ${so.order.epoch}) pushed:\n${summary(results)}`)
      return
    }
    if (o.json !== true) process.stderr.write(`order ${so.order.nonce} accepted; waiting for every node to commit epoch ${so.order.epoch}\n`)
    let last = ''
    const st = await waitForEpoch(t, so.order.epoch, {
      timeoutMs,
      onProgress: (line) => { if (o.json !== true && line !== last) { process.stderr.write(line + '\n'); last = line } }
    })
    const ms = Date.now() - t0
    print(o.json, { op: so.order.op, epoch: so.order.epoch, keySetId: st[0]?.keySetId ?? null, ms, pushed: results },
      `epoch ${so.order.epoch} committed on all ${st.length} nodes in ${(ms / 1000).toFixed(1)} s\nkeySetId ${st[0]?.keySetId ?? '?'}\n`)
  })
}

function cmd (program: Command, name: string): Command {
  return program.commands.find(c => c.name() === name) ?? program.command(name).description('cluster-wide operations')
}

/** Registers `cluster rotate`, `cluster order-sign` and `cluster order-push` on `program`. */
export function registerLifecycleCommands (program: Command): void {
  const cluster = cmd(program, 'cluster')

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
