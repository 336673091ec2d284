/**
 * Smoke test of the benchmark harness: runs the crypto suite in --quick mode on the cheap rows
 * only and checks the structure of the rows, the table and the JSON report. Timings are NOT
 * asserted (they depend on the machine); only that they are positive numbers.
 */
import { describe, expect, it } from 'vitest'
import { run } from '../../bench/suites/crypto.ts'
import { formatTable, median, percentile, summarise } from '../../bench/lib.ts'
import type { BenchReport, Result } from '../../bench/lib.ts'
import { availableSuites, parseArgs } from '../../bench/run.ts'

describe('bench harness', () => {
  it('statistics helpers', () => {
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5)
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10)
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 2, 3])).toBe(2.5)
    const s = summarise([1, 1, 2])
    expect(s.samples).toBe(3)
    expect(s.opsPerSec).toBeCloseTo(750)
    expect(s.p10Ms).toBe(1)
  })

  it('parses options', () => {
    const a = parseArgs(['--suite', 'crypto,node', '--quick', '--json', '--rows=wrap,hpke'])
    expect(a).toMatchObject({ suites: ['crypto', 'node'], quick: true, json: true, rows: ['wrap', 'hpke'] })
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown option/)
    expect(() => parseArgs(['--suite'])).toThrow()
  })

  it('finds the crypto suite first', async () => {
    expect((await availableSuites())[0]).toBe('crypto')
  })

  it('crypto suite, quick, cheap rows: well-formed rows, table and JSON', async () => {
    const rows = ['scalarmult', 'wrap', 'hpke', 'verify-partial']
    const results: Result[] = await run({ quick: true, rows, log: () => {} })
    const ids = results.map(r => r.id)
    expect(ids[0]).toBe('scalarmult')
    for (const id of ['wrap', 'hpke', 'verify-partial']) expect(ids).toContain(id)
    expect(ids).not.toContain('dkg')
    for (const r of results) {
      expect(r.suite).toBe('crypto')
      expect(typeof r.name).toBe('string')
      if (r.value === null) {
        expect(r.note).toMatch(/^not available/)
      } else {
        expect(r.value).toBeGreaterThan(0)
        expect(r.unit).toBe('ops/s')
        expect(r.multiple).toBeGreaterThan(0)
        expect(r.p50Ms).toBeGreaterThan(0)
        expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms as number)
      }
    }
    const base = results[0] as Result
    expect(base.multiple).toBe(1)
    const verify = results.find(r => r.id === 'verify-partial') as Result
    expect(verify.target).toBe('≤ 3×')
    if (verify.value !== null) expect(typeof verify.targetMet).toBe('boolean')

    const table = formatTable(results)
    const lines = table.split('\n')
    expect(lines[0]).toMatch(/^suite\s+operation\s+value\s+unit\s+× base\s+p50 ms\s+p99 ms\s+target\s+ok$/)
    expect(lines[1]).toMatch(/^-+( +-+)+$/)
    for (const r of results) expect(table).toContain(r.name)

    const report: BenchReport = { meta: { date: new Date().toISOString(), node: process.version, platform: process.platform, cpus: 1, cpuModel: 'x', quick: true, suites: ['crypto'] }, results }
    const back = JSON.parse(JSON.stringify(report)) as BenchReport
    expect(back.results).toHaveLength(results.length)
    expect(back.results[0]).toMatchObject({ suite: 'crypto', id: 'scalarmult', unit: 'ops/s' })
  })

  it('a missing operation is printed as not available', () => {
    const table = formatTable([{ suite: 'crypto', id: 'x', name: 'thing', unit: 'ops/s', value: null, note: 'not available: protocol/x.ts missing' }])
    expect(table).toContain('not available')
    expect(table).toContain('crypto/x: not available: protocol/x.ts missing')
  })
})
