/**
 * Lifecycle benchmark suite: wall time of the admin-ordered ceremonies on real node processes
 * (client/dev-cluster.ts dev clusters on 127.0.0.1, all nodes sharing this machine's cores).
 *
 * Rows (value = 1 / median wall time, as the node suite's DKG rows; `meanMs` = median wall time):
 *  - rotate-3of5 / rotate-5of9    order push (to node 1 only; nodes relay it) → every node reports
 *                                 the new epoch with one keySetId and dkg state `done`.
 *  - refresh-3of5 / refresh-5of9  order push → every node reports a new keySetId for the current
 *                                 epoch (same epoch) and state `done`. The refresh covers every
 *                                 live epoch: each repetition runs after the rotations, so it
 *                                 refreshes 1 + (rotations so far) epochs; `extra.epochs` says how many.
 * `extra.minMs` / `extra.medianMs` / `extra.maxMs` over the repetitions (3; 1 with --quick). Status
 * is polled every 50 ms, so each figure includes ≤ 50 ms of polling slack. `extra.nodeMs` is the
 * median ceremony time from the nodes' own log lines (first "lifecycle order accepted" → last
 * "dkg committed" / "refresh committed" of the repetition).
 */
import '../../protocol/polyfill.ts'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { median, unavailable } from '../lib.ts'
import type { BenchContext, Result } from '../lib.ts'
import { KeymeshClient } from '../../client/client.ts'
import { devDown, devUp } from '../../client/dev-cluster.ts'
import type { DevClusterInfo } from '../../client/dev-cluster.ts'
import { loadAdminKey } from '../../client/identity.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import type { ClientTransport } from '../../client/transport.ts'
import { encodeSignedOrder } from '../../protocol/order.ts'
import type { OrderOp } from '../../protocol/order.ts'
import type { ResponseBodies } from '../../protocol/rpc.ts'

const SUITE = 'lifecycle'
const POLL_MS = 50
const TIMEOUT_MS = 180_000

function why (e: unknown): string { return e instanceof Error ? `${e.name}: ${e.message.split('\n')[0] as string}` : String(e) }

async function statuses (t: ClientTransport): Promise<Array<ResponseBodies['status'] | undefined>> {
  return await Promise.all(t.indices.map(async i => await t.call(i, 'status', {}, { timeoutMs: 3_000 }).catch(() => undefined)))
}

/** Node log lines (JSON) of the dev cluster's nodes. */
async function logTimes (info: DevClusterInfo, since: number): Promise<{ first: number, last: number }> {
  let first = Infinity
  let last = -Infinity
  for (const x of info.nodes) {
    const text = await readFile(x.log, 'utf8').catch(() => '')
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue
      let l: Record<string, unknown>
      try { l = JSON.parse(line) as Record<string, unknown> } catch { continue }
      const t = typeof l.time === 'string' ? Date.parse(l.time) : NaN
      if (!(t >= since)) continue
      if (l.msg === 'lifecycle order accepted') first = Math.min(first, t)
      if (l.msg === 'dkg committed' || l.msg === 'refresh committed') last = Math.max(last, t)
    }
  }
  return { first, last }
}

/**
 * Orders one `op` and waits until every node has committed it. Returns the wall time (ms) and the
 * node-side time from the logs. Throws when a node reports a failure or on timeout.
 */
async function once (info: DevClusterInfo, t: ClientTransport, op: OrderOp): Promise<{ ms: number, nodeMs?: number }> {
  const before = await statuses(t)
  const s0 = before[0]
  if (s0?.epoch === null || s0?.epoch === undefined || before.some(s => s?.dkg.state !== 'done' && s?.dkg.state !== undefined)) throw new Error('cluster not idle')
  const epoch = op === 'rotate' ? s0.epoch + 1 : s0.epoch
  const admin = await loadAdminKey(info.adminKey, { allowLoosePermissions: true })
  const so = signOrder(newOrder(info.cluster, op, epoch), info.cluster, admin)
  const since = Date.now()
  const t0 = performance.now()
  const r = await t.call(1, 'lifecycle.order', { order: encodeSignedOrder(so) }, { timeoutMs: 10_000 })
  if (!r.accepted) throw new Error(`order refused: ${r.code ?? ''} ${r.detail}`)
  for (;;) {
    const st = await statuses(t)
    const failed = st.find(s => s?.dkg.state === 'failed')
    if (failed !== undefined) throw new Error(`${op} failed on node ${failed.index}: ${failed.dkg.detail ?? ''}`)
    const done = st.every(s => s !== undefined && s.dkg.state === 'done' && s.epoch === epoch &&
      (op === 'rotate' || s.keySetId !== s0.keySetId))
    if (done && new Set(st.map(s => s?.keySetId)).size === 1) break
    if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`${op} not committed on every node within ${TIMEOUT_MS / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  const ms = performance.now() - t0
  // Let the nodes clear their pending order (the manager's bookkeeping after the commit).
  await new Promise(resolve => setTimeout(resolve, 300))
  const lt = await logTimes(info, since - 1000)
  return { ms, ...(Number.isFinite(lt.first) && Number.isFinite(lt.last) ? { nodeMs: lt.last - lt.first } : {}) }
}

function row (id: string, name: string, samples: Array<{ ms: number, nodeMs?: number }>, extra: Record<string, number>): Result {
  const ms = samples.map(s => s.ms)
  const med = median(ms)
  const node = samples.map(s => s.nodeMs).filter((x): x is number => x !== undefined)
  return {
    suite: SUITE,
    id,
    name,
    unit: 'ops/s',
    value: 1000 / med,
    meanMs: med,
    samples: ms.length,
    extra: { minMs: Math.min(...ms), medianMs: med, maxMs: Math.max(...ms), ...(node.length > 0 ? { nodeMs: median(node) } : {}), ...extra },
    note: `order push → every node committed: min ${(Math.min(...ms) / 1000).toFixed(2)} s, median ${(med / 1000).toFixed(2)} s over ${ms.length}` +
      (node.length > 0 ? `; node logs (first accepted → last committed) median ${(median(node) / 1000).toFixed(2)} s` : '') +
      ' ("value" = 1/median wall time)'
  }
}

async function cluster (ctx: BenchContext, base: string, n: number, k: number, reps: number): Promise<Result[]> {
  const dir = join(base, `cluster-${k}of${n}`)
  const ids = { rotate: `rotate-${k}of${n}`, refresh: `refresh-${k}of${n}` }
  let info: DevClusterInfo | undefined
  let client: KeymeshClient | undefined
  try {
    ctx.log(`lifecycle: ${k}-of-${n} dev cluster (${n} node processes)`)
    info = await devUp({ dir, nodes: n, threshold: k, timeoutMs: 300_000 })
    client = await KeymeshClient.connect(info.clusterPath, info.identities.relay, { cacheDir: join(base, `cache-${n}`) })
    const t = client.transport
    const rot: Array<{ ms: number, nodeMs?: number }> = []
    const ref: Array<{ ms: number, nodeMs?: number }> = []
    for (let r = 0; r < reps; r++) {
      ctx.log(`lifecycle: ${k}-of-${n} rotate ${r + 1}/${reps}`)
      rot.push(await once(info, t, 'rotate'))
      ctx.log(`lifecycle: ${k}-of-${n} refresh ${r + 1}/${reps} (${r + 2} live epochs)`)
      ref.push(await once(info, t, 'refresh'))
    }
    return [
      row(ids.rotate, `rotate ${k}-of-${n} (new epoch), real processes`, rot, {}),
      row(ids.refresh, `refresh ${k}-of-${n} (all live epochs), real processes`, ref, { epochs: 2, epochsLast: reps + 1 })
    ]
  } catch (e) {
    ctx.log(`lifecycle: ${k}-of-${n} failed: ${why(e)}`)
    return [unavailable(SUITE, ids.rotate, `rotate ${k}-of-${n}`, why(e)), unavailable(SUITE, ids.refresh, `refresh ${k}-of-${n}`, why(e))]
  } finally {
    await client?.close().catch(() => {})
    await devDown(dir).catch(() => {})
  }
}

/** Runs the lifecycle suite (3-of-5 and 5-of-9). Never throws: a failure becomes unavailable rows. */
export async function run (ctx: BenchContext): Promise<Result[]> {
  const reps = ctx.quick ? 1 : 3
  const base = await mkdtemp(join(tmpdir(), 'keymesh-bench-lifecycle-'))
  try {
    const out: Result[] = []
    for (const [n, k] of [[5, 3], [9, 5]] as const) {
      if (ctx.rows !== undefined && !ctx.rows.some(r => r.endsWith(`${k}of${n}`))) continue
      out.push(...await cluster(ctx, base, n, k, reps))
    }
    return out
  } finally {
    await rm(base, { recursive: true, force: true }).catch(() => {})
  }
}
