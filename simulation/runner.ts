/**
 * Runs one scenario end to end: a cluster (new, or reused from the previous scenario when the
 * topology matches and no node was destroyed), the client, the DKG wait, the workload, the fault
 * schedule, continuous invariant checks, healing, the final sweep, and the report.
 *
 * Time base: every time in records and reports is ms since the workload clock started (t = 0
 * after setup and the pre-wraps); the fault schedule uses the same clock.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeymeshClient, deploy } from '../client/index.ts'
import { MAX_BATCH } from '../protocol/constants.ts'
import { errorCode } from '../protocol/errors.ts'
import { readFile } from 'node:fs/promises'
import { SimCluster } from './cluster.ts'
import { InvariantChecker } from './invariants.ts'
import { LifecycleDriver, checkEpochAgreement, epochKeySets, statusAll } from './lifecycle.ts'
import type { Reachability } from './invariants.ts'
import { buildSchedule } from './schedule.ts'
import type { SimEvent } from './schedule.ts'
import type { Scenario } from './scenario.ts'
import { Workload } from './workload.ts'
import type { BrokenClientMode, OpRecord } from './workload.ts'
import { countOps, percentiles, series, writeScenarioReport } from './report.ts'
import type { ExecutedEvent, ScenarioResult } from './report.ts'

/** Options of `runScenario`. */
export interface RunOptions {
  seed: number
  /** Write report.{json,md} and timeline.svg under reportDir/<scenario>/. */
  reportDir?: string
  /** Reuse this cluster when it fits (same n and k, no destroyed node). */
  cluster?: SimCluster
  /** Keep the cluster running afterwards (returned) instead of tearing it down. */
  keepCluster?: boolean
  /** The command that replays this run (printed on failure). Default `keymesh simulate NAME --seed N`. */
  replay?: string
  /** Progress lines (default: stderr). */
  progress?: (line: string) => void
  /** TEST ONLY: run the workload with a deliberately broken client (see workload.ts). */
  brokenClient?: BrokenClientMode
  /** Deadline for the DKG after start (ms, default 120000). */
  dkgTimeoutMs?: number
}

/** What `runScenario` returns. */
export interface RunOutput { result: ScenarioResult, cluster?: SimCluster }

const sleep = async (ms: number): Promise<void> => { await new Promise(res => setTimeout(res, Math.max(0, ms))) }

/** True when `c` can host scenario `s` (same size and threshold, every node still startable and a member). */
export function canReuse (c: SimCluster | undefined, s: Scenario): boolean {
  return c !== undefined && c.n === s.topology.nodes && c.threshold === s.topology.threshold &&
    c.nodes.every(x => x.state !== 'wiped' && x.state !== 'refused' && x.state !== 'removed')
}

async function statuses (client: KeymeshClient, n: number, timeoutMs: number): Promise<Array<{ index: number, epoch: number | null, keySetId: string | null }>> {
  const all = await Promise.all(Array.from({ length: n }, async (_, i) => {
    try {
      const s = await client.transport.call(i + 1, 'status', {}, { timeoutMs })
      return { index: i + 1, epoch: s.epoch, keySetId: s.keySetId, dkg: s.dkg.state }
    } catch { return undefined }
  }))
  return all.filter((x): x is NonNullable<typeof x> => x !== undefined)
}

/**
 * Runs scenario `s` with `o.seed`. Never throws for a failing cluster: setup errors end up in
 * `result.error` (and `passed: false`). Throws only for invalid options.
 */
export async function runScenario (s: Scenario, o: RunOptions): Promise<RunOutput> {
  const progress = o.progress ?? ((l: string) => { process.stderr.write(l + '\n') })
  const replay = o.replay ?? `keymesh simulate ${s.name} --seed ${o.seed}`
  const wall0 = Date.now()
  const schedule = buildSchedule(s, o.seed)
  const n = s.topology.nodes
  const k = s.topology.threshold
  const checker = new InvariantChecker({ n, k, lying: s.topology.lying, recoveryMs: s.recoveryS * 1000, seed: o.seed, replay, minQuorumSuccessRate: s.expect.minQuorumSuccessRate ?? 1 })
  const ops: OpRecord[] = []
  const executed: ExecutedEvent[] = []
  let cluster: SimCluster | undefined
  let client: KeymeshClient | undefined
  let workDir: string | undefined
  let setupS = 0
  let error: string | undefined
  let t0 = Date.now()
  const now = (): number => Date.now() - t0
  let sweep: ScenarioResult['sweep'] = { checked: 0, wrong: 0 }
  let workload: Workload | undefined
  let lifecycle: LifecycleDriver | undefined
  const tag = `[${s.name}]`
  try {
    // ---- setup
    if (o.cluster !== undefined && canReuse(o.cluster, s)) {
      cluster = o.cluster
      progress(`${tag} reusing the running ${k}-of-${n} cluster`)
      cluster.healNetwork()
      for (const x of cluster.nodes) {
        const lying = s.topology.lying.includes(x.index)
        if (x.lying !== lying) { await cluster.term(x.index); x.lying = lying }
      }
    } else {
      if (o.cluster !== undefined) await o.cluster.dispose()
      workDir = await mkdtemp(join(tmpdir(), `keymesh-sim-${s.name}-`))
      progress(`${tag} creating a ${k}-of-${n} cluster in ${workDir}${s.topology.lying.length > 0 ? ` (lying: ${s.topology.lying.join(',')})` : ''}`)
      cluster = await SimCluster.create({ dir: workDir, n, threshold: k, lying: s.topology.lying })
    }
    const c = cluster
    const booting = c.nodes.filter(x => x.state !== 'up')
    await Promise.all(booting.map(async x => { await c.start(x.index) }))
    client = await KeymeshClient.connect(c.clientClusterPath, c.clientIdentityPath, { cacheDir: join(c.dir, 'keyset-cache') })
    const cl = client
    const dkgUntil = Date.now() + (o.dkgTimeoutMs ?? 120_000)
    for (;;) {
      const st = await statuses(cl, n, 2_000)
      const ids = new Set(st.map(x => x.keySetId))
      if (st.length === n && ids.size === 1 && st[0]?.keySetId !== null && st[0]?.epoch !== null) {
        checker.setReferenceKeySet(st[0]?.epoch as number, st[0]?.keySetId as string)
        break
      }
      if (Date.now() > dkgUntil) throw new Error(`the DKG did not finish on all nodes within ${o.dkgTimeoutMs ?? 120_000} ms: ${JSON.stringify(st)}`)
      await sleep(300)
    }
    workDir ??= c.dir
    workload = new Workload({
      client: cl, spec: s.workload, seed: o.seed, dir: join(c.dir, `work-${s.name}`), now, brokenClient: o.brokenClient,
      onOp: op => { ops.push(op); checker.onOp(op) }
    })
    const wl = workload
    // Set once the clock runs: a reshare's commit / removals / reloads change the cluster model.
    let disturb = (): void => {}
    lifecycle = new LifecycleDriver({
      cluster: c, client: cl, checker, now,
      log: (label, fault, note) => { executed.push({ tMs: now(), label, fault, ...(note !== undefined ? { note } : {}) }) },
      onRetire: epoch => { wl.retireBelow(epoch) },
      disturb: () => { disturb() }
    })
    const lc = lifecycle
    if (schedule.events.some(e => e.action === 'lifecycle')) await lc.init()
    await workload.prewrap(s.workload.prewrap ?? 4)
    // Fresh node processes only (a reused cluster's running nodes are warm already).
    if (booting.length > 0) await workload.warmup()
    setupS = (Date.now() - wall0) / 1000
    progress(`${tag} cluster ready in ${setupS.toFixed(1)} s; running ${s.durationS} s of workload with ${schedule.events.length} fault events (seed ${o.seed})`)

    // ---- the clock starts
    t0 = Date.now()
    const snapshot = (disturbance: boolean): Reachability => {
      // A node reloading under a new membership (reshare) is not reachable until it is ready again.
      const reachable = c.nodes.filter(x => x.state === 'up' && x.reloading !== true && !c.proxy({ from: 'client', to: x.index }).conditions.partitioned).map(x => x.index)
      return { t: now(), reachable, honest: reachable.filter(i => !c.node(i).lying), disturbance, starting: c.nodes.filter(x => x.state === 'starting').map(x => x.index) }
    }
    checker.noteChange(snapshot(false))
    // Not a disturbance (that would also move lifecycle.completed's bound): the reshare's liveness
    // window (InvariantChecker.openWindow) covers its commit, removals and reloads.
    disturb = () => { checker.noteChange(snapshot(false)) }
    // Reshare reloads and a removed node's exit happen inside the nodes: follow them from their logs.
    c.onNodeEvent = (_i, what) => { if (what === 'committed' || what === 'reloading') lc.onReloading(); disturb() }
    workload.start()
    let stop = false
    const poller = (async () => {
      while (!stop) {
        await sleep(1_000)
        if (stop) break
        const t = now()
        const st = await statusAll(cl, c, 1_000, { skip: lc.leaving })
        checker.onStatuses(t, st, now())
      }
    })()
    const ticker = setInterval(() => {
      const okN = ops.filter(x => x.ok).length
      const down = c.nodes.filter(x => x.state !== 'up').map(x => `${x.index}:${x.state}`)
      const lcNow = lc.records.find(r => r.issuedMs !== undefined && r.allCommittedMs === undefined && r.error === undefined)
      const lcText = lcNow === undefined ? '' : ` ${lcNow.op} in progress (${Object.keys(lcNow.committedMs).length}/${lcNow.newIndex !== undefined ? Object.keys(lcNow.newIndex).length : n} committed)`
      progress(`${tag} t=${(now() / 1000).toFixed(0)}s ops=${ops.length} ok=${okN} failed=${ops.length - okN} violations=${checker.violations.length}${down.length > 0 ? ` nodes ${down.join(' ')}` : ''}${lcText}`)
    }, 2_000)
    // Action chains (per node unless the event names one): a start waits for the kill/stop before
    // it; a rolling restart's steps wait for each other. Node actions are logged when they run.
    const chains = new Map<string, Promise<void>>()
    const run = (e: SimEvent): void => {
      const onNode = (i: number, f: () => Promise<void>): void => {
        const key = e.chain ?? `node-${i}`
        const p = (chains.get(key) ?? Promise.resolve()).then(async () => {
          executed.push({ tMs: now(), label: e.label, fault: e.fault })
          checker.noteChange(snapshot(true))
          await f()
        }).catch((err: unknown) => {
          executed.push({ tMs: now(), label: `node ${i} action failed`, fault: -1, note: (err as Error).message.slice(0, 200) })
        })
        chains.set(key, p)
      }
      if (!('node' in e)) executed.push({ tMs: now(), label: e.label, fault: e.fault })
      switch (e.action) {
        case 'kill': onNode(e.node, async () => { await c.kill(e.node); checker.noteChange(snapshot(true)) }); break
        case 'term': onNode(e.node, async () => { await c.term(e.node); checker.noteChange(snapshot(true)) }); break
        case 'pause': onNode(e.node, async () => { c.pause(e.node); checker.noteChange(snapshot(true)) }); break
        case 'resume': onNode(e.node, async () => { c.resume(e.node); checker.noteChange(snapshot(true)) }); break
        case 'start': onNode(e.node, async () => {
          await c.start(e.node)
          executed.push({ tMs: now(), label: `node ${e.node} ready`, fault: e.fault })
          checker.noteChange(snapshot(true))
        }); break
        case 'wipe': onNode(e.node, async () => { await c.wipe(e.node) }); break
        case 'corrupt': onNode(e.node, async () => { await c.corrupt(e.node, e.part) }); break
        case 'start-expect-refusal': onNode(e.node, async () => {
          const r = await c.startExpectRefusal(e.node)
          executed.push({ tMs: now(), label: `node ${e.node} ${r.refused ? 'refused to start' : 'STARTED'}`, fault: e.fault, note: r.message.slice(0, 300) })
          checker.onRefusal(now(), e.node, r.refused, r.message, c.node(e.node).dataDir)
          checker.noteChange(snapshot(true))
        }); break
        case 'links':
          // Latency and bandwidth are not disturbances: hedging must cope with them.
          checker.noteChange(snapshot(e.set.partitioned !== undefined))
          c.setLinks(e.links, e.set)
          checker.noteChange(snapshot(e.set.partitioned !== undefined))
          break
        case 'lifecycle':
          // Not a disturbance in itself: operations during a ceremony must keep succeeding with
          // ≥ k nodes reachable (the faults scheduled around it are disturbances as usual).
          lc.issue(e.fault, e.op, e.boundMs, {
            ...(e.minDecryptionEpoch !== undefined ? { minDecryptionEpoch: e.minDecryptionEpoch } : {}),
            ...(e.newThreshold !== undefined ? { newThreshold: e.newThreshold } : {}),
            ...(e.remove !== undefined ? { remove: e.remove } : {})
          })
          break
        case 'reset-links': {
          const cnt = c.resetLinks(e.links)
          executed[executed.length - 1]!.note = `${cnt} connections reset`
          // Not a disturbance: a reset call is one node's failure, which hedging must route around.
          checker.noteChange(snapshot(false))
          break
        }
      }
    }
    for (const e of schedule.events) {
      await sleep(e.t - now())
      run(e)
    }
    await sleep(s.durationS * 1000 - now())

    // ---- end of the workload
    clearInterval(ticker)
    progress(`${tag} workload done at ${(now() / 1000).toFixed(1)} s; healing`)
    await workload.stop()
    stop = true
    await poller
    await Promise.allSettled([...chains.values()])
    c.healNetwork()
    const refusedExpected = new Set(schedule.events.filter(e => e.action === 'start-expect-refusal').map(e => (e as { node: number }).node))
    await Promise.all(c.nodes.filter(x => x.state === 'down' && !refusedExpected.has(x.index)).map(async x => {
      try { await c.start(x.index) } catch (e) { executed.push({ tMs: now(), label: `node ${x.index} restart for the sweep failed`, fault: -1, note: (e as Error).message.slice(0, 200) }) }
    }))
    executed.push({ tMs: now(), label: 'healed: network restored, stopped nodes restarted', fault: -1 })
    checker.noteChange(snapshot(true))
    if (lc.pending) progress(`${tag} waiting for the lifecycle order(s) to complete`)
    // Orders still in progress get their bound after the heal (lifecycle.completed).
    await lc.settled()
    // Wait until every running node serves the reference key set again (restarted nodes load from disk).
    const upIdx = c.nodes.filter(x => x.state === 'up').map(x => x.index)
    const until = Date.now() + 30_000
    for (;;) {
      const st = (await statusAll(cl, c, 2_000)).filter(x => upIdx.includes(x.index))
      if (st.length === upIdx.length || Date.now() > until) { checker.onStatuses(now(), st); break }
      await sleep(300)
    }

    // consistency.epoch-keysets at the end: every node serves the same key set of every epoch.
    const finalRef = checker.reference()
    if (finalRef !== undefined) checkEpochAgreement(checker, now(), await epochKeySets(cl, c, finalRef.epoch), 'at the end')

    // ---- final sweep: every acknowledged wrap and build must still open with k nodes up — of
    // every epoch (one batch is one epoch); wraps of epochs a committed rotation retired must be
    // refused instead (lifecycle.retired-refused).
    const retiredBelow = Math.max(0, ...lc.records.filter(r => r.allCommittedMs !== undefined).map(r => r.minDecryptionEpoch ?? 0))
    let checked = 0
    let wrong = 0
    const perEpoch: Record<string, number> = {}
    try {
      const byEpoch = new Map<number, typeof workload.acked>()
      for (const a of workload.acked) byEpoch.set(a.envelope.label.epoch, [...(byEpoch.get(a.envelope.label.epoch) ?? []), a])
      for (const [epoch, acked] of [...byEpoch.entries()].sort((x, y) => x[0] - y[0])) {
        if (epoch < retiredBelow) {
          const refused = await cl.rewrapBatch(acked.slice(0, MAX_BATCH).map(a => a.envelope), { deadlineMs: 20_000 }).then(() => undefined, (e: unknown) => e)
          const codes = refused === undefined ? [] : [errorCode(refused), ...((refused as { failures?: Array<{ code: string }> }).failures ?? []).map(f => f.code)]
          checker.record('lifecycle.retired-refused', codes.includes('NOT_AUTHORIZED'), now(), () => refused === undefined
            ? `envelopes of epoch ${epoch} still unwrap although a rotation retired epochs below ${retiredBelow}`
            : `envelopes of retired epoch ${epoch} failed with ${codes.join(', ')} instead of NOT_AUTHORIZED`)
          continue
        }
        for (let off = 0; off < acked.length; off += MAX_BATCH) {
          const slice = acked.slice(off, off + MAX_BATCH)
          const r = await cl.rewrapBatch(slice.map(a => a.envelope), { deadlineMs: 20_000 })
          perEpoch[String(epoch)] = (perEpoch[String(epoch)] ?? 0) + slice.length
          slice.forEach((a, i) => { checked++; const got = r.dataKeys[i]; if (got === undefined || got.length !== a.dataKey.length || !got.every((b, j) => b === a.dataKey[j])) wrong++ })
        }
      }
      for (const [q, rel] of workload.releases.filter(x => x.epoch >= retiredBelow).slice(0, 5).entries()) {
        const out = join(c.dir, `work-${s.name}`, `sweep-${q}.bin`)
        await deploy(cl, { release: rel.dir, out, deadlineMs: 20_000 })
        const got = new Uint8Array(await readFile(out))
        checked++
        if (got.length !== rel.plaintext.length || !got.every((b, j) => b === rel.plaintext[j])) wrong++
        await rm(out, { force: true })
      }
      // A reshare keeps the epoch: wraps made before the order and after its commit must both have
      // been re-opened above (same epoch, older and newer key set generation).
      const reshares = lc.records.filter(r => r.op === 'reshare' && r.allCommittedMs !== undefined)
      if (reshares.length > 0) {
        const ackedAt = new Map(ops.filter(op => op.ok && op.type === 'wrap').map(op => [op.id, op.endMs]))
        const swept = workload.acked.filter(a => a.envelope.label.epoch >= retiredBelow)
        const first = reshares[0] as (typeof reshares)[number]
        const last = reshares[reshares.length - 1] as (typeof reshares)[number]
        const pre = swept.filter(a => a.opId < 0 || (ackedAt.get(a.opId) ?? Infinity) < (first.issuedMs ?? 0)).length
        const post = swept.filter(a => (ackedAt.get(a.opId) ?? -Infinity) > (last.allCommittedMs ?? Infinity)).length
        sweep.reshare = { before: pre, after: post }
        checker.record('safety.acked-unwrappable', pre > 0 && post > 0, now(), () => `the final sweep had ${pre} wrap(s) acknowledged before the reshare order and ${post} after its commit; both must be re-opened`)
      }
      sweep = { ...sweep, checked, wrong, epochs: perEpoch }
      checker.onSweep(now(), checked, wrong)
    } catch (e) {
      sweep = { checked, wrong, epochs: perEpoch, error: `${errorCode(e)}: ${(e as Error).message.slice(0, 300)}` }
      checker.onSweep(now(), checked, wrong, sweep.error)
    }
    for (const i of refusedExpected) {
      if (!executed.some(e => e.label.startsWith(`node ${i} refused`) || e.label.startsWith(`node ${i} STARTED`))) {
        checker.onRefusal(now(), i, false, 'the refusal was never checked')
      }
    }
  } catch (e) {
    error = (e as Error).message
    progress(`${tag} run error: ${error}`)
  } finally {
    if (cluster !== undefined) delete cluster.onNodeEvent
    lifecycle?.stop()
    await workload?.stop()
    await lifecycle?.settled()
  }

  // ---- results
  const stableOf = (types: Set<string>): ReturnType<typeof percentiles> =>
    percentiles(ops.filter(op => op.ok && types.has(op.type) && checker.expectations.get(op.id) === 'succeed').map(op => op.endMs - op.startMs))
  const stableLat = stableOf(new Set(['rewrap', 'batch', 'sign']))
  const boundLat = stableOf(new Set(s.expect.p99Ops ?? ['rewrap', 'batch', 'sign']))
  checker.finish(now(), {
    lyingDetected: s.expect.lyingDetected ?? s.topology.lying.length > 0,
    maxP99Ms: s.expect.maxP99Ms,
    p99Ms: boundLat.count > 0 ? boundLat.p99 : undefined,
    p99Ops: (s.expect.p99Ops ?? ['rewrap', 'batch', 'sign']).join('/'),
    quorumOps: ops.filter(op => op.ok && op.type !== 'wrap').length
  })
  const byType: Record<string, ReturnType<typeof countOps>> = {}
  const latByType: Record<string, ReturnType<typeof percentiles>> = {}
  for (const t of [...new Set(ops.map(op => op.type))].sort()) {
    const xs = ops.filter(op => op.type === t)
    byType[t] = countOps(xs)
    latByType[t] = percentiles(xs.filter(op => op.ok).map(op => op.endMs - op.startMs))
  }
  const result: ScenarioResult = {
    scenario: s.name,
    description: s.description,
    seed: o.seed,
    topology: s.topology,
    durationS: s.durationS,
    recoveryS: s.recoveryS,
    replay,
    startedAt: new Date(wall0).toISOString(),
    wallS: (Date.now() - wall0) / 1000,
    setupS,
    ops: { ...countOps(ops), byType },
    latency: { ...percentiles(ops.filter(op => op.ok).map(op => op.endMs - op.startMs)), byType: latByType, stableQuorum: stableLat },
    invariants: checker.counts,
    violations: checker.violations,
    // Lifecycle bands run from the order's push until every node committed it.
    faults: schedule.windows.map(w => {
      const r = lifecycle?.records.find(x => x.fault === w.fault)
      return w.kind !== 'lifecycle' || r === undefined ? w : { ...w, startMs: r.issuedMs ?? w.startMs, endMs: r.allCommittedMs ?? w.endMs, label: `${w.label}${r.allCommittedMs !== undefined && r.issuedMs !== undefined ? ` (${((r.allCommittedMs - r.issuedMs) / 1000).toFixed(1)} s)` : ' (not completed)'}` }
    }),
    lifecycle: lifecycle?.records ?? [],
    events: executed,
    expected: s.expect,
    liarNamed: checker.namedCounts,
    sweep,
    series: series(ops, s.durationS),
    passed: error === undefined && checker.violations.length === 0,
    ...(error !== undefined ? { error } : {})
  }
  await client?.close()
  if (o.reportDir !== undefined) await writeScenarioReport(o.reportDir, result)
  progress(`${tag} ${result.passed ? 'PASS' : 'FAIL'}: ${result.ops.attempted} ops, ${result.ops.failed} failed, p99 ${result.latency.p99} ms, ${result.violations.length} violations${result.passed ? '' : ` — replay: ${replay}`}`)
  // A cluster with an order that never completed may still hold it pending (later orders would be
  // refused): start the next scenario on a fresh one.
  // A resharded cluster has another membership than its topology: never reused.
  const reusable = cluster !== undefined && o.keepCluster === true && error === undefined &&
    (lifecycle?.records ?? []).every(r => r.allCommittedMs !== undefined && r.op !== 'reshare')
  if (!reusable) {
    await cluster?.dispose()
    return { result }
  }
  return { result, cluster }
}
