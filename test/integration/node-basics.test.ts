/**
 * Node basics with real processes on 127.0.0.1: start + status, the connection gater, node-only
 * operations, restart identity, and refusal to start on a damaged data directory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, ExitCode, KeymeshError } from '../../protocol/errors.ts'
import { runCli, startTestCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'

let c: TestCluster

beforeAll(async () => { c = await startTestCluster({ n: 3, threshold: 2 }) })
afterAll(async () => { await c?.cleanup() })

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p } catch (e) { return e instanceof KeymeshError ? e.code : `foreign:${(e as Error).name}` }
  return 'OK'
}

describe('a 3-node cluster', () => {
  it('every node answers status with its own identity', async () => {
    for (const n of c.nodes) {
      const s = await c.status(n.index)
      expect(s.index).toBe(n.index)
      expect(s.peerId).toBe(n.peerId)
      expect(s.clusterId).toBe(c.cluster.clusterId)
      expect(s.version).toMatch(/^\d+\.\d+\.\d+/)
      expect(s.uptimeMs).toBeGreaterThanOrEqual(0)
    }
    // request logged as one JSON line per request, without bodies
    const line = c.nodes[0]?.logs.find(l => l.msg === 'rpc' && l.op === 'status')
    expect(line).toMatchObject({ kind: 'client', code: 'OK', peer: c.clientPeerId })
  })

  it('`keymesh status` with the enrolled identity shows all nodes; without it, none', async () => {
    const [ok, anon] = await Promise.all([
      runCli(['status', '--cluster', c.clusterPath, '--identity', c.clientIdentityPath, '--json']),
      runCli(['status', '--cluster', c.clusterPath, '--timeout', '2000'])
    ])
    expect(ok.code).toBe(0)
    const j = JSON.parse(ok.stdout) as { reachable: number, nodes: Array<{ reachable: boolean }> }
    expect(j.reachable).toBe(3)
    expect(anon.code).toBe(ExitCode.QUORUM_UNAVAILABLE)
    expect(anon.stdout).toContain('0/3 nodes reachable')
    expect(anon.stderr).toMatch(/^error: quorum unavailable/)
  })

  it('refuses a peer that is not in the cluster file at the connection', async () => {
    const intruder = await c.client()
    const code = await codeOf(intruder.rpc(1, 'status', {}, { ttlMs: 3_000 }))
    expect(['UNAVAILABLE', 'TIMEOUT']).toContain(code)
    // the node never served it
    expect(c.nodes[0]?.logs.some(l => l.peer === intruder.peerId)).toBe(false)
    // the listed client still works
    expect((await c.status(1)).index).toBe(1)
  })

  it('answers NOT_AUTHORIZED when a client calls a node-only operation', async () => {
    for (const op of ['dkg.round1', 'dkg.echo', 'dkg.round2', 'dkg.result'] as const) {
      expect(await codeOf(c.rpc(2, op, { session: 'e1-a0' }))).toBe(ErrorCode.NOT_AUTHORIZED)
    }
  })

  it('keeps its PeerId across a restart and exits 0 on SIGTERM', async () => {
    const before = await c.status(3)
    expect(await c.stop(3)).toBe(0)
    await c.start(3)
    const after = await c.status(3)
    expect(after.peerId).toBe(before.peerId)
    expect(after.peerId).toBe(c.nodes[2]?.peerId)
    expect(after.uptimeMs).toBeLessThan(before.uptimeMs + 60_000)
  })
})

describe('refusing to start on a damaged data directory', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'keymesh-bad-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('a missing data directory is an error and is not created', async () => {
    const data = join(dir, 'nope')
    const r = await runCli(['node', 'start', '--data', data, '--cluster', c.clusterPath, '--insecure-dev-passphrase'])
    expect(r.code).toBe(ExitCode.BAD_INPUT)
    expect(r.stderr).toContain(data)
    expect(r.stderr).toContain('node init')
    expect(existsSync(data)).toBe(false)
  })

  it('a missing, corrupt or world-readable identity is refused and never replaced', async () => {
    const data = join(dir, 'n1')
    expect((await runCli(['node', 'init', '--data', data, '--insecure-dev-passphrase'])).code).toBe(0)
    const idPath = join(data, 'identity.key')
    expect((await stat(idPath)).mode & 0o777).toBe(0o600)
    // init refuses to run twice
    const again = await runCli(['node', 'init', '--data', data, '--insecure-dev-passphrase'])
    expect(again.code).toBe(ExitCode.CONFLICT)

    await chmod(idPath, 0o644)
    let r = await runCli(['node', 'start', '--data', data, '--cluster', c.clusterPath, '--insecure-dev-passphrase'])
    expect(r.code).toBe(ExitCode.BAD_INPUT)
    expect(r.stderr).toContain(idPath)
    expect(r.stderr).toContain('chmod 600')

    await unlink(idPath)
    await writeFile(idPath, new Uint8Array(10), { mode: 0o600 })
    r = await runCli(['node', 'start', '--data', data, '--cluster', c.clusterPath, '--insecure-dev-passphrase'])
    expect(r.code).toBe(ExitCode.BAD_INPUT)
    expect(r.stderr).toMatch(/identity .*corrupt/)
    expect((await readFile(idPath)).length).toBe(10)

    await unlink(idPath)
    r = await runCli(['node', 'start', '--data', data, '--cluster', c.clusterPath, '--insecure-dev-passphrase'])
    expect(r.code).toBe(ExitCode.BAD_INPUT)
    expect(r.stderr).toContain('missing')
    expect(existsSync(idPath)).toBe(false)
  })

  it('a wrong passphrase is a clear error (exit 4) and changes nothing', async () => {
    const pass = join(dir, 'pass.txt')
    const wrong = join(dir, 'wrong.txt')
    await writeFile(pass, 'correct horse battery staple\n', { mode: 0o600 })
    await writeFile(wrong, 'incorrect horse battery staple\n', { mode: 0o600 })
    const a = join(dir, 'pa')
    const b = join(dir, 'pb')
    const [ia, ib] = await Promise.all([
      runCli(['node', 'init', '--data', a, '--listen', '/ip4/127.0.0.1/tcp/1', '--passphrase-file', pass, '--json']),
      runCli(['node', 'init', '--data', b, '--listen', '/ip4/127.0.0.1/tcp/2', '--passphrase-file', pass, '--json'])
    ])
    expect(ia.code).toBe(0)
    expect(ib.code).toBe(0)
    const spec = (r: { stdout: string }): string => (JSON.parse(r.stdout) as { nodeSpec: string }).nodeSpec
    const cl = join(dir, 'pcluster.json')
    expect((await runCli(['cluster', 'genesis', '--threshold', '2', '--node', spec(ia), '--node', spec(ib), '--out', cl])).code).toBe(0)
    const params = await readFile(join(a, 'storage-key.json'), 'utf8')
    const [again, r, r2] = await Promise.all([
      // genesis refuses to overwrite
      runCli(['cluster', 'genesis', '--threshold', '2', '--node', spec(ia), '--node', spec(ib), '--out', cl]),
      runCli(['node', 'start', '--data', a, '--cluster', cl, '--passphrase-file', wrong]),
      // the other storage key source is refused with the flag to use
      runCli(['node', 'start', '--data', b, '--cluster', cl, '--insecure-dev-passphrase'])
    ])
    expect(again.code).toBe(ExitCode.CONFLICT)
    expect(r.code).toBe(ExitCode.VERIFICATION_FAILED)
    expect(r.stderr).toMatch(/^error: wrong passphrase or key file/m)
    expect(r.stderr).not.toMatch(/\n\s+at /) // no stack without KEYMESH_DEBUG
    expect(await readFile(join(a, 'storage-key.json'), 'utf8')).toBe(params)
    expect(r2.code).toBe(ExitCode.BAD_INPUT)
    expect(r2.stderr).toContain('--passphrase-file')
  })
})
