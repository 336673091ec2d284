/**
 * Quorum behaviour of the client against a real 3-of-5 cluster whose node 5 lies on purpose
 * (test/fixtures/lying-node.ts: wrong partials, wrong FROST shares): the liar is detected, named
 * and routed around; a hung node is hedged around; deploy works with n−k nodes stopped and fails
 * cleanly — QuorumUnavailable within the deadline, exit code 5, no output — with n−k+1 stopped;
 * restarted nodes serve again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KeymeshClient } from '../../client/client.ts'
import { build } from '../../client/build.ts'
import { deploy } from '../../client/deploy.ts'
import { loadRelease } from '../../client/release-layout.ts'
import { startDevNode, stopDevNode, waitForDkg } from '../../client/dev-cluster.ts'
import { ErrorCode, QuorumUnavailableError } from '../../protocol/errors.ts'
import { utf8 } from '../../protocol/bytes.ts'
import { signKey } from '../../protocol/keyset.ts'
import { ed25519Verify } from '../../protocol/frost.ts'
import { jwsSigningInput } from '../../protocol/jws.ts'
import { cli, lyingNodeArgv, startTestCluster } from '../helpers/client-cluster.ts'
import type { TestCluster } from '../helpers/client-cluster.ts'

const LIAR = 5
let tc: TestCluster
let builder: KeymeshClient
let target: KeymeshClient
let rel: string
let input: string

beforeAll(async () => {
  tc = await startTestCluster({ nodeCommand: (i, args) => i === LIAR ? lyingNodeArgv(args) : undefined })
  builder = await KeymeshClient.connect(tc.info.clusterPath, tc.info.identities.builder, { cacheDir: join(tc.cache, 'b') })
  target = await KeymeshClient.connect(tc.info.clusterPath, tc.info.identities.target, { cacheDir: join(tc.cache, 't') })
  input = join(tc.work, 'app.bin')
  await writeFile(input, randomBytes(200_000))
  rel = join(tc.work, 'rel')
  await build(builder, { app: 'api', release: 'v1', env: 'prod', input, out: rel })
}, 120_000)

afterAll(async () => {
  await Promise.all([builder?.close(), target?.close()])
  await tc?.stop()
})

describe('a lying node', () => {
  it('is blamed for a bad partial and routed around (rewrap still succeeds)', async () => {
    const { envelope } = await loadRelease(rel)
    const r = await target.rewrap(envelope, { order: [LIAR, 1, 2, 3, 4] })
    expect(r.dataKey).toHaveLength(32)
    expect(r.nodes).not.toContain(LIAR)
    expect(r.failures).toContainEqual(expect.objectContaining({ index: LIAR, code: ErrorCode.VERIFICATION_FAILED }))
    r.dataKey.fill(0)
  })

  it('is blamed for a bad FROST share; the signature is retried without it and verifies', async () => {
    // Nodes sign only JWS signing inputs of valid manifests of this cluster.
    const { manifest } = await loadRelease(rel)
    const msg = utf8(jwsSigningInput({ ...manifest, release: 'v1-resigned' }))
    const s = await builder.sign(msg, { order: [LIAR, 1, 2, 3, 4] })
    expect(s.signers).not.toContain(LIAR)
    expect(s.failures).toContainEqual(expect.objectContaining({ index: LIAR, code: ErrorCode.VERIFICATION_FAILED }))
    expect(ed25519Verify(signKey(s.keySet), msg, s.signature)).toBe(true)
  })

  it('a message that is not a manifest signing input is refused as bad input (not "quorum unavailable")', async () => {
    const err = await builder.sign(utf8('not a manifest')).catch((e: unknown) => e)
    expect((err as { code?: string }).code).toBe(ErrorCode.BAD_INPUT)
  })

  it('deploy succeeds and names the liar when it was asked', async () => {
    const out = join(tc.work, 'liar.out')
    const d = await deploy(target, { release: rel, out })
    expect(await readFile(out)).toEqual(await readFile(input))
    if (d.failures.length > 0) expect(d.failures.map(f => f.index)).toEqual([LIAR])
  })

  it('batch rewrap blames the liar too', async () => {
    const { envelope } = await loadRelease(rel)
    const r = await target.rewrapBatch([envelope, envelope, envelope], { order: [LIAR, 1, 2, 3, 4] })
    expect(r.dataKeys).toHaveLength(3)
    expect(r.failures).toContainEqual(expect.objectContaining({ index: LIAR, code: ErrorCode.VERIFICATION_FAILED }))
  })
})

describe('availability', () => {
  it('hedges around a hung node (SIGSTOP) well within the deadline', async () => {
    const pid = Number((await readFile(join(tc.info.dir, 'node-1.pid'), 'utf8')).trim())
    process.kill(pid, 'SIGSTOP')
    try {
      const { envelope } = await loadRelease(rel)
      const t0 = Date.now()
      const r = await target.rewrap(envelope, { order: [1, 2, 3, 4], exclude: [LIAR], deadlineMs: 8_000 })
      expect(Date.now() - t0).toBeLessThan(3_000)
      expect(r.nodes).toEqual([2, 3, 4])
    } finally {
      process.kill(pid, 'SIGCONT')
    }
  })

  it('deploy works with n−k nodes stopped, fails cleanly with n−k+1 stopped, and recovers after restart', async () => {
    await stopDevNode(tc.info.dir, LIAR)
    await stopDevNode(tc.info.dir, 1)
    const ok = join(tc.work, 'two-down.out')
    const d = await deploy(target, { release: rel, out: ok })
    expect(d.nodes).toEqual([2, 3, 4])
    expect(await readFile(ok)).toEqual(await readFile(input))

    await stopDevNode(tc.info.dir, 2)
    const bad = join(tc.work, 'three-down.out')
    const t0 = Date.now()
    const err = await deploy(target, { release: rel, out: bad, deadlineMs: 4_000 }).catch((e: unknown) => e)
    expect(Date.now() - t0).toBeLessThan(5_000)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    const q = err as QuorumUnavailableError
    expect(q.needed).toBe(3)
    expect(q.failures.map(f => f.index).sort()).toEqual([1, 2, LIAR])
    expect(q.message).toMatch(/node 1: UNAVAILABLE/)
    expect(existsSync(bad)).toBe(false)
    // The CLI maps it to exit code 5 and writes nothing either.
    const r = await cli(['deploy', '--cluster', tc.info.clusterPath, '--identity', tc.info.identities.target, '--release', rel, '--out', bad, '--cache-dir', join(tc.cache, 't')])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/quorum unavailable/)
    expect(existsSync(bad)).toBe(false)

    await startDevNode(tc.info.dir, 1)
    await startDevNode(tc.info.dir, 2)
    await waitForDkg(tc.info.dir, { nodes: [1, 2], timeoutMs: 30_000 })
    const again = join(tc.work, 'restarted.out')
    const d2 = await deploy(target, { release: rel, out: again })
    expect(d2.nodes).toHaveLength(3)
    expect(await readFile(again)).toEqual(await readFile(input))
  }, 90_000)
})
