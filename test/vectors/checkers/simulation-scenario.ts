/** Checks one simulation-scenario known-answer case (see generators/simulation-scenario.ts). Throws on mismatch. */
import { Prng } from '../../../simulation/prng.ts'
import { buildSchedule } from '../../../simulation/schedule.ts'
import { parseScenario } from '../../../simulation/scenario.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface Case { name: string, valid: boolean, kind: 'prng' | 'schedule' | 'scenario', seed?: number, first8?: number[], scenario?: unknown, events?: unknown[], error?: string, field?: string }

export function check (c: Case): void {
  if (c.kind === 'prng') {
    const r = new Prng(c.seed as number)
    same(c.name, 'stream', JSON.stringify(Array.from({ length: 8 }, () => r.nextU32())), JSON.stringify(c.first8))
    return
  }
  if (!c.valid) { expectFailure(c.name, () => parseScenario(c.scenario), c.error as string, c.field); return }
  const events = buildSchedule(parseScenario(c.scenario), c.seed as number).events
    .map(e => ({ t: e.t, action: e.action, ...('node' in e ? { node: e.node } : {}), ...('links' in e ? { links: e.links.length } : {}) }))
  same(c.name, 'schedule', JSON.stringify(events), JSON.stringify(c.events))
}
