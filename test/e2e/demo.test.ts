/**
 * End to end: `npm run demo` (client/demo.ts) must pass every step on real node processes and leave
 * nothing behind (no node process, no temp directory).
 */
import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/client-cluster.ts'

describe('npm run demo', () => {
  it('runs every step as stated and cleans up', async () => {
    const r = await new Promise<{ code: number, out: string }>((res, rej) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'client', 'demo.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (d: Buffer) => { out += d.toString() })
      child.stderr.on('data', (d: Buffer) => { out += d.toString() })
      const timer = setTimeout(() => { child.kill('SIGINT') }, 110_000)
      child.on('error', rej)
      child.on('close', (code) => { clearTimeout(timer); res({ code: code ?? -1, out }) })
    })
    expect(r.out).toMatch(/demo passed/)
    expect(r.code).toBe(0)
    const steps = r.out.split('\n').filter(l => /^ok +\d\./.test(l))
    expect(steps).toHaveLength(6)
    expect(r.out).toMatch(/quorum unavailable: needed 3 correct answers, got 2/)
    const base = /keymesh demo in (\S+)/.exec(r.out)?.[1]
    expect(base).toBeDefined()
    expect(existsSync(base as string)).toBe(false)
  }, 120_000)
})
