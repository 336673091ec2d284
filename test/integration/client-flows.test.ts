/**
 * Client flows against a real 3-of-5 cluster (node processes on 127.0.0.1): build → deploy round
 * trip of a random 50 MB artifact; bundle prepare/open (only the target can open it, also when
 * relayed); tampering with each part of a release is rejected with exit code 4 and no output;
 * verify and jwks commands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { cp, open, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KeymeshClient } from '../../client/client.ts'
import { build } from '../../client/build.ts'
import { deploy, prepareBundle } from '../../client/deploy.ts'
import { generateIdentity, loadIdentity } from '../../client/identity.ts'
import { RELEASE_FILES } from '../../client/release-layout.ts'
import { NotAuthorizedError, QuorumUnavailableError, VerificationError } from '../../protocol/errors.ts'
import { toB64u } from '../../protocol/bytes.ts'
import { cli, startTestCluster } from '../helpers/client-cluster.ts'
import type { TestCluster } from '../helpers/client-cluster.ts'

let tc: TestCluster
let builder: KeymeshClient
let target: KeymeshClient
let relay: KeymeshClient
let rel: string
const SIZE = 50 * 1024 * 1024

async function sha256File (p: string): Promise<string> {
  const h = createHash('sha256')
  for await (const c of createReadStream(p)) h.update(c as Buffer)
  return h.digest('hex')
}

async function writeRandom (p: string, size: number): Promise<void> {
  const fh = await open(p, 'w')
  try { for (let o = 0; o < size; o += 4 << 20) await fh.write(randomBytes(Math.min(4 << 20, size - o))) } finally { await fh.close() }
}

/** A copy of the release directory with `edit` applied to one file. */
async function tampered (name: string, edit: (b: Buffer) => Buffer | string): Promise<string> {
  const dir = join(tc.work, `tampered-${name}-${randomBytes(3).toString('hex')}`)
  await cp(rel, dir, { recursive: true })
  const p = join(dir, name)
  await writeFile(p, edit(await readFile(p)))
  return dir
}

beforeAll(async () => {
  tc = await startTestCluster()
  const ids = tc.info.identities
  builder = await KeymeshClient.connect(tc.info.clusterPath, ids.builder, { cacheDir: join(tc.cache, 'b') })
  target = await KeymeshClient.connect(tc.info.clusterPath, ids.target, { cacheDir: join(tc.cache, 't') })
  relay = await KeymeshClient.connect(tc.info.clusterPath, ids.relay, { cacheDir: join(tc.cache, 'r') })
  rel = join(tc.work, 'rel-small')
  await writeFile(join(tc.work, 'small.bin'), randomBytes(300_000))
  await build(builder, { app: 'web', release: 'r-small', env: 'prod', input: join(tc.work, 'small.bin'), out: rel })
}, 120_000)

afterAll(async () => {
  await Promise.all([builder?.close(), target?.close(), relay?.close()])
  await tc?.stop()
})

describe('build → deploy', () => {
  it('round-trips a random 50 MB artifact byte for byte', async () => {
    const input = join(tc.work, 'big.bin')
    await writeRandom(input, SIZE)
    const out = join(tc.work, 'big-rel')
    const b = await build(builder, { app: 'web', release: 'r-big', env: 'prod', input, out, repository: 'https://example.com/web.git', commit: 'a'.repeat(40) })
    expect(b.signers).toHaveLength(3)
    expect(b.manifest.builder).toBe(builder.identity.peerId.toString())
    expect(b.manifest.artifact.size).toBeGreaterThan(SIZE)
    expect((await readdir(out)).sort()).toEqual(Object.values(RELEASE_FILES).sort())
    const dest = join(tc.work, 'big.out')
    const d = await deploy(target, { release: out, out: dest })
    expect(d.bytes).toBe(SIZE)
    expect(d.nodes).toHaveLength(3)
    expect(await sha256File(dest)).toBe(await sha256File(input))
  }, 90_000)

  it('refuses to overwrite an existing output and an existing release directory', async () => {
    await expect(deploy(target, { release: rel, out: join(tc.work, 'small.bin') })).rejects.toThrow(/already exists/)
    await expect(build(builder, { app: 'web', release: 'x', input: join(tc.work, 'small.bin'), out: rel })).rejects.toThrow(/already exists/)
  })
})

describe('bundles', () => {
  it('a bundle prepared by a third party opens only on its target', async () => {
    const bundle = join(tc.work, 'for-target.kmb')
    const p = await prepareBundle(relay, { release: rel, target: target.identity.recipientPublicKey, out: bundle })
    expect(p.bundle.partials.length).toBeGreaterThanOrEqual(3)
    // The relay holds the bundle but cannot open it.
    const relayOut = join(tc.work, 'relay.out')
    await expect(deploy(relay, { release: rel, out: relayOut, bundle })).rejects.toBeInstanceOf(NotAuthorizedError)
    expect(existsSync(relayOut)).toBe(false)
    // The target opens it without asking any node for a partial.
    const out = join(tc.work, 'bundle.out')
    const d = await deploy(target, { release: rel, out, bundle })
    expect(d.keySource).toBe('bundle')
    expect(await sha256File(out)).toBe(await sha256File(join(tc.work, 'small.bin')))
  })

  it('a bundle for another target does not open, even with its recipient field rewritten', async () => {
    const other = await loadIdentity(tc.info.identities.relay)
    const bundle = join(tc.work, 'for-relay.kmb')
    await prepareBundle(builder, { release: rel, target: other.recipientPublicKey, out: bundle })
    await expect(deploy(target, { release: rel, out: join(tc.work, 'x1.out'), bundle })).rejects.toBeInstanceOf(NotAuthorizedError)
    // Rewrite the recipient field (offset 5) to the target's key: the HPKE seals still do not open.
    const b = await readFile(bundle)
    b.set(target.identity.recipientPublicKey, 5)
    const forged = join(tc.work, 'forged.kmb')
    await writeFile(forged, b)
    const err = await deploy(target, { release: rel, out: join(tc.work, 'x2.out'), bundle: forged }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VerificationError)
    expect((err as VerificationError).blame.length).toBeGreaterThanOrEqual(3)
    expect(existsSync(join(tc.work, 'x2.out'))).toBe(false)
  })
})

describe('tampering is rejected (CLI exit code 4, no output file)', () => {
  const deployCli = async (dir: string, extra: string[] = []): Promise<{ code: number, out: string, stderr: string }> => {
    const out = join(tc.work, `out-${randomBytes(4).toString('hex')}`)
    const r = await cli(['deploy', '--cluster', tc.info.clusterPath, '--identity', tc.info.identities.target, '--release', dir, '--out', out, '--cache-dir', join(tc.cache, 't'), ...extra])
    return { code: r.code, out, stderr: r.stderr }
  }

  it('artifact: one flipped byte', async () => {
    const dir = await tampered(RELEASE_FILES.artifact, b => { b[b.length - 100] = (b[b.length - 100] as number) ^ 1; return b })
    const r = await deployCli(dir)
    expect(r.code).toBe(4)
    expect(existsSync(r.out)).toBe(false)
    const v = await cli(['verify', '--cluster', tc.info.clusterPath, '--release', dir, '--cache-dir', join(tc.cache, 't')])
    expect(v.code).toBe(4)
    expect(v.stderr).toMatch(/SHA-256/)
  }, 30_000)

  it('artifact: damaged header or truncated file (library: VerificationError, nothing written)', async () => {
    for (const edit of [(b: Buffer) => { b[1] = 0; return b }, (b: Buffer) => b.subarray(0, b.length - 20)]) {
      const dir = await tampered(RELEASE_FILES.artifact, edit)
      const out = join(tc.work, `lib-${randomBytes(4).toString('hex')}`)
      // with --on-verify-failure warn the size/digest checks only warn: the AEAD still refuses
      const err = await deploy(target, { release: dir, out, onVerifyFailure: 'warn' }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(VerificationError)
      expect(existsSync(out)).toBe(false)
    }
  })

  it('envelope: swapped for another valid envelope', async () => {
    const other = join(tc.work, 'rel-other')
    await build(builder, { app: 'web', release: 'r-small', env: 'prod', input: join(tc.work, 'small.bin'), out: other })
    const env = await readFile(join(other, RELEASE_FILES.envelope))
    const dir = await tampered(RELEASE_FILES.envelope, () => env)
    const r = await deployCli(dir)
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/envelope/)
    expect(existsSync(r.out)).toBe(false)
  }, 30_000)

  it('manifest: manifest.json edited', async () => {
    const dir = await tampered(RELEASE_FILES.manifest, b => b.toString().replace('"r-small"', '"r-evil"'))
    const r = await deployCli(dir)
    expect(r.code).toBe(4)
    expect(existsSync(r.out)).toBe(false)
  }, 30_000)

  it('manifest: JWS payload replaced (signature kept)', async () => {
    const dir = await tampered(RELEASE_FILES.jws, (b) => {
      const [h, p, s] = b.toString().trim().split('.') as [string, string, string]
      const m = Buffer.from(p, 'base64url').toString().replace('"r-small"', '"r-smalm"')
      return `${h}.${Buffer.from(m).toString('base64url')}.${s}\n`
    })
    // keep manifest.json consistent with the forged payload so only the signature can catch it
    const [, p] = (await readFile(join(dir, RELEASE_FILES.jws), 'utf8')).trim().split('.') as [string, string]
    await writeFile(join(dir, RELEASE_FILES.manifest), Buffer.from(p, 'base64url'))
    const r = await deployCli(dir)
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/signature/)
    expect(existsSync(r.out)).toBe(false)
  }, 30_000)

  it('signature: altered, blocked by default, allowed only with --on-verify-failure warn', async () => {
    const dir = await tampered(RELEASE_FILES.jws, (b) => {
      const [h, p, s] = b.toString().trim().split('.') as [string, string, string]
      const sig = Buffer.from(s, 'base64url')
      sig[10] = (sig[10] as number) ^ 0x40
      return `${h}.${p}.${sig.toString('base64url')}\n`
    })
    const r = await deployCli(dir)
    expect(r.code).toBe(4)
    expect(existsSync(r.out)).toBe(false)
    const w = await deployCli(dir, ['--on-verify-failure', 'warn'])
    expect(w.code).toBe(0)
    expect(w.stderr).toMatch(/warning: verification failed/)
    expect(existsSync(w.out)).toBe(true)
  }, 30_000)
})

describe('CLI', () => {
  it('verify and jwks agree with the cluster key set', async () => {
    const j = await cli(['jwks', '--cluster', tc.info.clusterPath, '--identity', tc.info.identities.builder, '--cache-dir', join(tc.cache, 'cli')])
    expect(j.code).toBe(0)
    const jwks = JSON.parse(j.stdout) as { keys: Array<{ kid: string, x: string }> }
    const ks = await builder.keySet()
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]?.kid).toBe(`keymesh:${ks.clusterId}:${ks.epoch}`)
    const { signKey } = await import('../../protocol/keyset.ts')
    expect(jwks.keys[0]?.x).toBe(toB64u(signKey(ks)))
    const jf = join(tc.work, 'jwks.json')
    await writeFile(jf, j.stdout)
    const v = await cli(['verify', '--cluster', tc.info.clusterPath, '--release', rel, '--jwks', jf, '--json'])
    expect(v.code).toBe(0)
    expect((JSON.parse(v.stdout) as { ok: boolean }).ok).toBe(true)
  }, 30_000)

  it('an identity that is not enrolled is refused by every node, with a hint', async () => {
    const stranger = await KeymeshClient.connect(tc.info.clusterPath, await generateIdentity(), { cacheDir: false })
    try {
      const err = await stranger.keySet(undefined, { deadlineMs: 5_000 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(QuorumUnavailableError)
      expect((err as Error).message).toMatch(/listed in the cluster file's clients/)
    } finally { await stranger.close() }
  })

  it('bad input exits 2 and writes nothing', async () => {
    const out = join(tc.work, 'bad-input.out')
    const r = await cli(['build', '--cluster', tc.info.clusterPath, '--identity', tc.info.identities.builder, '--app', 'bad app!', '--release', 'r', '--in', join(tc.work, 'small.bin'), '--out', out])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/label\.app/)
    expect(existsSync(out)).toBe(false)
  }, 30_000)
})
