/**
 * End to end: `npm run demo` (client/demo.ts) must pass every step on real node processes, under
 * an enforced signed policy, and leave nothing behind (no node process, no temp directory).
 */
import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/client-cluster.ts'

describe('npm run demo', () => {
  it('runs every step as stated under a signed policy and cleans up', async () => {
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
    const steps = r.out.split('\n').filter(l => /^ok +\d+\./.test(l))
    expect(steps).toHaveLength(9)
    expect(r.out).not.toMatch(/^FAIL/m)
    // The cluster file names the admin; the signed policy, pushed to one node, reaches all five.
    expect(steps[0]).toMatch(/cluster file names admin "dev-admin"/)
    expect(steps[1]).toMatch(/policy v1 signed by dev-admin and pushed to node 1 only: 5 of 5 nodes enforce it/)
    expect(steps[1]).toMatch(/node 1 v1, node 2 v1, node 3 v1, node 4 v1, node 5 v1/)
    expect(r.out).toMatch(/enrolled ci-builder: builder webshop\/\*/)
    expect(r.out).toMatch(/enrolled webshop-prod: deployer webshop\/prod, partials only to its own recipient key/)
    // The flows run as the enrolled identities.
    expect(steps[2]).toMatch(/build by ci-builder: webshop\/prod 1\.0\.0/)
    expect(steps[3]).toMatch(/deploy by webshop-prod: .*decrypted bytes identical/)
    // Refusals: out of scope, and a builder asking for a release key; the nodes' reasons come from the audit logs.
    expect(steps[4]).toMatch(/webshop\/staging 1\.0\.0 \(outside its scope\) → NOT_AUTHORIZED; ci-builder asking for the webshop\/prod release key itself → NOT_AUTHORIZED; nothing written/)
    expect(r.out).toMatch(/webshop-prod: partial webshop\/staging denied — "webshop-prod" is not scoped for app "webshop" env "staging"/)
    expect(r.out).toMatch(/ci-builder: partial webshop\/prod denied — /)
    // Availability under the same policy.
    expect(steps[5]).toMatch(/nodes 1 and 2 stopped: deploy still works via nodes 3, 4, 5, bytes identical/)
    expect(steps[6]).toMatch(/quorum unavailable: needed 3 correct answers, got 2/)
    expect(steps[7]).toMatch(/5 of 5 nodes enforce policy v1.*deploy works again/)
    // Audit: every chain verifies; the refusals are on record.
    expect(steps[8]).toMatch(/every hash chain and signed head verified; release keys obtained by webshop-prod \(/)
    expect(steps[8]).toMatch(/refused requests by (webshop-prod, ci-builder|ci-builder, webshop-prod)/)
    const base = /keymesh demo in (\S+)/.exec(r.out)?.[1]
    expect(base).toBeDefined()
    expect(existsSync(base as string)).toBe(false)
  }, 120_000)
})
