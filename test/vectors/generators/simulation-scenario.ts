/**
 * Known-answer vectors of the simulation's replay contract (docs/SIMULATION.md): the seeded PRNG
 * stream (xoshiro128** seeded through splitmix32), the schedule a scenario file yields for a seed,
 * and scenario files that must be rejected (with the field named). A change here means `--seed N`
 * no longer replays old runs.
 */
import { Prng } from '../../../simulation/prng.ts'
import { buildSchedule } from '../../../simulation/schedule.ts'
import { parseScenario } from '../../../simulation/scenario.ts'

/** A small scenario exercising every seeded choice (jitter, picks, rolling order). */
export const SCENARIO = {
  format: 'keymesh.scenario',
  version: 1,
  name: 'vector',
  description: 'every seeded choice',
  topology: { nodes: 5, threshold: 3, lying: [2] },
  durationS: 30,
  recoveryS: 2,
  workload: { concurrency: 2, deadlineMs: 3000, batchSize: 4, mix: { rewrap: 1, sign: 1 } },
  faults: [
    { kind: 'crash', at: 2, atJitter: 3, duration: 4, targets: { pick: 'tolerable' } },
    { kind: 'partition', at: 10, atJitter: 1, duration: 3, clientSide: 'minority' },
    { kind: 'rolling-restart', at: 15, duration: 1, gap: 2, targets: { pick: 3 } },
    { kind: 'latency', at: 0, latencyMs: 100, jitterMs: 20, targets: { pick: 'one' } },
    { kind: 'latency', at: 1, latencyMs: 50, link: [2, 5] },
    { kind: 'lifecycle', at: 6, atJitter: 1, op: 'rotate', minDecryptionEpoch: 1, completeWithinS: 20 },
    { kind: 'lifecycle', at: 18, op: 'refresh' }
  ],
  expect: {}
}

/** Scenario mutations that must be rejected, with the field the error must name. */
export const INVALID: Array<{ name: string, patch: Record<string, unknown>, field: string }> = [
  { name: 'unknown fault kind', patch: { faults: [{ kind: 'meteor', at: 1 }] }, field: 'scenario.faults[0].kind' },
  { name: 'threshold above n', patch: { topology: { nodes: 3, threshold: 4 } }, field: 'scenario.topology.threshold' },
  { name: 'unknown top-level field', patch: { extra: 1 }, field: 'scenario.extra' },
  { name: 'latency without latencyMs', patch: { faults: [{ kind: 'latency', at: 1 }] }, field: 'scenario.faults[0].latencyMs' },
  { name: 'lifecycle without op', patch: { faults: [{ kind: 'lifecycle', at: 1 }] }, field: 'scenario.faults[0].op' },
  { name: 'lifecycle with an unknown op', patch: { faults: [{ kind: 'lifecycle', at: 1, op: 'explode' }] }, field: 'scenario.faults[0].op' },
  { name: 'retirement on a refresh', patch: { faults: [{ kind: 'lifecycle', at: 1, op: 'refresh', minDecryptionEpoch: 1 }] }, field: 'scenario.faults[0].minDecryptionEpoch' },
  { name: 'all-zero mix', patch: { workload: { concurrency: 1, deadlineMs: 1000, mix: { wrap: 0 } } }, field: 'scenario.workload.mix' }
]

export function generate (): unknown {
  const streams = [0, 1, 42, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER].map(seed => {
    const r = new Prng(seed)
    return { name: `prng seed ${seed}`, valid: true, kind: 'prng', seed, first8: Array.from({ length: 8 }, () => r.nextU32()) }
  })
  const schedules = [1, 2, 1234].map(seed => ({
    name: `schedule seed ${seed}`, valid: true, kind: 'schedule', seed, scenario: SCENARIO,
    events: buildSchedule(parseScenario(SCENARIO), seed).events.map(e => ({ t: e.t, action: e.action, ...('node' in e ? { node: e.node } : {}), ...('links' in e ? { links: e.links.length } : {}) }))
  }))
  const invalid = INVALID.map(x => ({ name: `reject: ${x.name}`, valid: false, kind: 'scenario', scenario: { ...SCENARIO, ...x.patch }, error: 'BAD_INPUT', field: x.field }))
  return {
    format: 'simulation-scenario',
    version: 1,
    description: 'keymesh simulate replay contract: PRNG stream (xoshiro128**/splitmix32), scenario → schedule for a seed, rejected scenario files',
    cases: [...streams, ...schedules, ...invalid]
  }
}
