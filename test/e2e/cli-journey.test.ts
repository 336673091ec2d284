/**
 * End to end through the CLI only: `dev up` (3-of-4), `id new`, `build`, `verify`, `deploy
 * prepare` by a relay, `deploy --bundle` on the target, `deploy` via nodes, `dev stop`, exit code
 * 5 on quorum loss, `dev down`. Every command's exit code and JSON output are checked.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli } from '../helpers/client-cluster.ts'
import { devDown } from '../../client/dev-cluster.ts'

let base = ''
let dir = ''

afterAll(async () => {
  // The library, not the CLI: a broken CLI must not leave node processes behind.
  if (dir !== '') await devDown(dir).catch(() => {})
  if (base !== '') await rm(base, { recursive: true, force: true })
})

describe('CLI journey', () => {
  it('dev up → build → verify → prepare → deploy (bundle and nodes) → quorum loss → dev down', async () => {
    base = await mkdtemp(join(tmpdir(), 'keymesh-cli-'))
    dir = join(base, 'cluster')
    const cache = join(base, 'cache')
    const up = await cli(['dev', 'up', '--dir', dir, '--nodes', '4', '--threshold', '3', '--json'], { timeoutMs: 100_000 })
    expect(up.code).toBe(0)
    const info = JSON.parse(up.stdout) as { clusterPath: string, identities: Record<'builder' | 'target' | 'relay', string>, epoch: number }
    expect(info.epoch).toBe(1)
    const C = ['--cluster', info.clusterPath, '--cache-dir', cache]

    // id new: mode 600, refuses to overwrite (exit 2)
    const idf = join(base, 'extra.json')
    const idr = await cli(['id', 'new', '--out', idf, '--json'])
    expect(idr.code).toBe(0)
    expect(((await stat(idf)).mode & 0o777).toString(8)).toBe('600')
    expect((await cli(['id', 'new', '--out', idf])).code).toBe(2)

    const input = join(base, 'app.bin')
    await writeFile(input, randomBytes(1_000_000))
    const rel = join(base, 'rel')
    const b = await cli(['build', ...C, '--identity', info.identities.builder, '--app', 'shop', '--release', '7', '--env', 'prod', '--in', input, '--out', rel, '--json'])
    expect(b.code).toBe(0)
    expect((JSON.parse(b.stdout) as { signers: number[] }).signers).toHaveLength(3)
    expect((await cli(['verify', ...C, '--release', rel])).code).toBe(0)

    const show = JSON.parse((await cli(['id', 'show', '--identity', info.identities.target, '--json'])).stdout) as { recipientPublicKey: string }
    const bundle = join(base, 'b.kmb')
    const p = await cli(['deploy', 'prepare', ...C, '--identity', info.identities.relay, '--release', rel, '--target', show.recipientPublicKey, '--out', bundle])
    expect(p.code).toBe(0)
    const viaRelay = await cli(['deploy', ...C, '--identity', info.identities.relay, '--release', rel, '--bundle', bundle, '--out', join(base, 'relay.out')])
    expect(viaRelay.code).toBe(3)
    expect(existsSync(join(base, 'relay.out'))).toBe(false)
    const viaBundle = await cli(['deploy', ...C, '--identity', info.identities.target, '--release', rel, '--bundle', bundle, '--out', join(base, 'b.out'), '--json'])
    expect(viaBundle.code).toBe(0)
    expect(await readFile(join(base, 'b.out'))).toEqual(await readFile(input))

    expect((await cli(['dev', 'stop', '--dir', dir, '--node', '4'])).code).toBe(0)
    const viaNodes = await cli(['deploy', ...C, '--identity', info.identities.target, '--release', rel, '--out', join(base, 'n.out'), '--json'])
    expect(viaNodes.code).toBe(0)
    expect((JSON.parse(viaNodes.stdout) as { nodes: number[] }).nodes).toEqual([1, 2, 3])
    expect((await cli(['dev', 'stop', '--dir', dir, '--node', '1'])).code).toBe(0)
    const lost = await cli(['deploy', ...C, '--identity', info.identities.target, '--release', rel, '--out', join(base, 'lost.out')])
    expect(lost.code).toBe(5)
    expect(lost.stderr).toMatch(/node 1: UNAVAILABLE.*node 4: UNAVAILABLE/)
    expect(existsSync(join(base, 'lost.out'))).toBe(false)

    const down = await cli(['dev', 'down', '--dir', dir, '--json'])
    expect(down.code).toBe(0)
    expect((JSON.parse(down.stdout) as { stopped: number[] }).stopped).toEqual([2, 3])
    dir = ''
  }, 120_000)
})
