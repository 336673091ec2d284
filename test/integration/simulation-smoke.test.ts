/**
 * Smoke subset of the failover simulation (`keymesh simulate`), on one real 3-of-5 cluster of node
 * processes behind the fault-injecting proxies, reused across the scenarios:
 *   steady state, minority crash and a lying node must pass every invariant; the same lying-node
 *   scenario driven by a deliberately broken client (test-only switch in the workload driver: no
 *   DLEQ check, no AEAD tag check) must be reported as a safety violation with a replay command,
 *   and a client with hedging switched off must fail the slow-node scenario's latency bound; last,
 *   an epoch rotation under load with a paused node (the lifecycle event kind) must commit on every
 *   node with no violation, and the final sweep must re-open wraps of both epochs.
 * Durations are shortened (fault times scale with them). Budget: < 135 s wall on 2 cores (the
 * rotation adds ~10 s on the reused cluster).
 */
import { afterAll, describe, expect, it } from 'vitest'
import type { SimCluster } from '../../simulation/cluster.ts'
import { runScenario } from '../../simulation/runner.ts'
import type { RunOptions } from '../../simulation/runner.ts'
import { resolveScenario } from '../../simulation/simulate.ts'
import { withOverrides } from '../../simulation/scenario.ts'
import type { ScenarioResult } from '../../simulation/report.ts'

const SEED = 20261125
let cluster: SimCluster | undefined
const lines: string[] = []

async function run (name: string, durationS: number, extra: Partial<RunOptions> = {}): Promise<ScenarioResult> {
  const s = withOverrides((await resolveScenario(name)).scenario, { durationS })
  const out = await runScenario(s, {
    seed: SEED,
    keepCluster: true,
    ...(cluster !== undefined ? { cluster } : {}),
    replay: `keymesh simulate ${name} --seed ${SEED} --duration ${durationS}`,
    progress: l => { lines.push(l) },
    ...extra
  })
  cluster = out.cluster
  return out.result
}

/** Explains a failing scenario in the assertion message. */
const why = (r: ScenarioResult): string => `${r.scenario}: ${r.error ?? ''} ${JSON.stringify(r.violations.slice(0, 5), null, 1)}\n${lines.slice(-15).join('\n')}`

afterAll(async () => { await cluster?.dispose() })

describe('simulation smoke (3-of-5)', () => {
  it('steady state: every invariant holds', async () => {
    const r = await run('steady-state', 5)
    expect(r.passed, why(r)).toBe(true)
    expect(r.ops.attempted).toBeGreaterThan(5)
    expect(r.ops.failed).toBe(0)
    expect(r.invariants['liveness.quorum-ok']!.passed).toBeGreaterThan(0)
    expect(r.invariants['consistency.keysets']!.passed).toBeGreaterThan(0)
    expect(r.invariants['safety.acked-unwrappable']).toEqual({ passed: 1, failed: 0 })
  }, 90_000)

  it('minority crash: n−k nodes killed and restarted, no violation', async () => {
    const r = await run('minority-crash', 8)
    expect(r.passed, why(r)).toBe(true)
    expect(r.events.filter(e => e.label.startsWith('crash node'))).toHaveLength(2)
    expect(r.events.filter(e => / ready$/.test(e.label))).toHaveLength(2)
    expect(r.sweep.checked).toBeGreaterThan(0)
  }, 60_000)

  it('lying node: detected and named, never trusted, no violation', async () => {
    const r = await run('lying-node', 5)
    expect(r.passed, why(r)).toBe(true)
    expect(r.liarNamed[2] ?? 0).toBeGreaterThan(0)
    expect(r.invariants['safety.liar-never-trusted']!.failed).toBe(0)
    expect(r.invariants['safety.liar-detected']).toEqual({ passed: 1, failed: 0 })
  }, 60_000)

  it('a broken client (no proof / tag checks) is caught as a safety violation with a replay command', async () => {
    const r = await run('lying-node', 3, { brokenClient: 'skip-verification' })
    expect(r.passed).toBe(false)
    const kinds = new Set(r.violations.map(v => v.invariant))
    expect(kinds.has('safety.correct-data-key'), why(r)).toBe(true)
    expect(kinds.has('safety.liar-never-trusted')).toBe(true)
    const v = r.violations.find(x => x.invariant === 'safety.correct-data-key')
    expect(v?.seed).toBe(SEED)
    expect(v?.replay).toContain(`--seed ${SEED}`)
    expect(v?.tMs).toBeGreaterThanOrEqual(0)
  }, 60_000)

  it('a client without hedging is caught by the slow-node scenario (latency bound / liveness)', async () => {
    // The slow node adds ≥ 2 s per round trip; with hedging off, the quorum ops that ask it first
    // (k of n are asked first, ~60 %) blow the 2 s p99 bound or the deadline.
    const r = await run('slow-node', 5, { brokenClient: 'no-hedging' })
    expect(r.passed).toBe(false)
    const kinds = new Set(r.violations.map(v => v.invariant))
    expect(kinds.has('liveness.p99') || kinds.has('liveness.quorum-ok'), why(r)).toBe(true)
    expect([...kinds].every(k => k.startsWith('liveness.')), why(r)).toBe(true)
  }, 60_000)

  it('rotation under load with a paused node: committed on every node, both epochs unwrap, no violation', async () => {
    const r = await run('rotate-under-load', 10)
    expect(r.passed, why(r)).toBe(true)
    const lc = r.lifecycle?.[0]
    expect(lc, why(r)).toMatchObject({ op: 'rotate', targetEpoch: (lc?.epochBefore ?? 0) + 1 })
    expect(lc?.allCommittedMs, why(r)).toBeGreaterThan(lc?.issuedMs ?? Infinity)
    expect(Object.keys(lc?.committedMs ?? {})).toHaveLength(5)
    expect(r.invariants['lifecycle.completed']).toEqual({ passed: 1, failed: 0 })
    expect(r.invariants['consistency.epoch-keysets']!.passed).toBeGreaterThan(2)
    expect(r.invariants['liveness.quorum-ok']!.passed).toBeGreaterThan(0)
    // Wraps of the old and of the new epoch were both re-opened by the final sweep.
    expect(Object.keys(r.sweep.epochs ?? {}).length, why(r)).toBeGreaterThanOrEqual(2)
  }, 75_000)
})
