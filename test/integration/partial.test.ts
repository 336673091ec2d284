/**
 * Crypto operations of real node processes (4 nodes, k = 3) after their own DKG:
 * batch partials of 100 envelopes; bad envelopes are refused with a clear code and change
 * nothing; FROST signing over a release manifest verifies with node:crypto Ed25519; replayed and
 * tampered signing sessions are refused; a lying node (test fixture) is detected and blamed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createPublicKey, randomBytes, verify } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { decodeKeySet, keySetId, signKey } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { wrap } from '../../protocol/wrap.ts'
import { encodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import type { Label } from '../../protocol/label.ts'
import { openSealedPartial } from '../../protocol/partial.ts'
import type { BatchPartial, Partial } from '../../protocol/partial.ts'
import { combine, combineBatch } from '../../protocol/combine.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { decodeSigningCommitment, encodeSigningCommitment, frostAggregate } from '../../protocol/frost.ts'
import { jwsSigningInput } from '../../protocol/jws.ts'
import type { Manifest } from '../../protocol/manifest.ts'
import { toHex, utf8 } from '../../protocol/bytes.ts'
import { ErrorCode, VerificationError } from '../../protocol/errors.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
let c: TestCluster
let ks: KeySet
let label: Label
const recipient = generateRecipientKeyPair()

beforeAll(async () => {
  c = await startTestCluster({ n: 4, threshold: 3 })
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), 45_000)
  expect(st.map(s => s?.dkg.state)).toEqual(['done', 'done', 'done', 'done'])
  ks = decodeKeySet((await c.rpc(1, 'keyset.get', {})).keySet)
  expect(keySetId(ks)).toBe(st[0]?.keySetId)
  label = { clusterId: ks.clusterId, epoch: 1, purpose: 'release-key', app: 'shop', env: 'prod', release: 'v1' }
})

afterAll(async () => { await c?.cleanup() })

async function partialOf (i: number, e: Envelope): Promise<Partial> {
  const { sealed } = await c.rpc(i, 'partial', { epoch: 1, envelope: encodeEnvelope(e), recipient: recipient.publicKey })
  return openSealedPartial(sealed, ks, [envelopeId(e)], i, recipient.secretKey) as Partial
}

function manifestFor (e: Envelope, release = 'v1'): Manifest {
  return {
    v: 1,
    type: 'keymesh.release-manifest',
    cluster: ks.clusterId,
    epoch: 1,
    app: 'shop',
    release,
    env: 'prod',
    artifact: { sha256: toHex(randomBytes(32)), size: 1234, name: 'shop.tar.gz' },
    envelope: toHex(envelopeId(e)),
    builder: c.clientPeerId,
    createdAt: '2026-11-25T03:00:00Z'
  }
}

function ed25519Verify (pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(pub)])
  return verify(null, msg, createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig)
}

async function frostSign (signers: number[], msg: Uint8Array): Promise<{ session: string, commitments: Uint8Array[], shares: Map<number, Uint8Array> }> {
  const session = toHex(randomBytes(16))
  const commitments = await Promise.all(signers.map(async i => (await c.rpc(i, 'frost.commit', { epoch: 1, session })).commitment))
  const shares = new Map<number, Uint8Array>()
  await Promise.all(signers.map(async i => {
    shares.set(i, (await c.rpc(i, 'frost.sign', { epoch: 1, session, message: msg, commitments })).share)
  }))
  return { session, commitments, shares }
}

describe('partial / partial.batch', () => {
  it('batch partial of 100 envelopes from 3 nodes opens every envelope', async () => {
    const keys = Array.from({ length: 100 }, () => new Uint8Array(randomBytes(32)))
    const es = keys.map((k, j) => wrap(ks, { ...label, release: `v1.${j}` }, k))
    const t0 = performance.now()
    const ps = await Promise.all([2, 3, 4].map(async i => {
      const { sealed } = await c.rpc(i, 'partial.batch', { epoch: 1, envelopes: es.map(encodeEnvelope), recipient: recipient.publicKey }, { ttlMs: 30_000 })
      return openSealedPartial(sealed, ks, es.map(envelopeId), i, recipient.secretKey) as BatchPartial
    }))
    const ms = performance.now() - t0
    const got = combineBatch(ks, es, ps, { strict: true })
    expect(got.map(toHex)).toEqual(keys.map(toHex))
    console.log(`partial.batch of 100 from 3 nodes in parallel: ${ms.toFixed(0)} ms`)
  })

  it('bad envelopes are refused (BAD_INPUT / VERIFICATION_FAILED) and the node keeps serving', async () => {
    const dataKey = new Uint8Array(randomBytes(32))
    const e = wrap(ks, label, dataKey)
    const good = encodeEnvelope(e)
    const ask = async (envelope: Uint8Array, epoch = 1): Promise<unknown> =>
      await c.rpc(1, 'partial', { epoch, envelope, recipient: recipient.publicKey })

    // A flipped byte in the ciphertext: the envelope still decodes, its proof no longer verifies.
    const flipped = new Uint8Array(good)
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0x01
    await expect(ask(flipped)).rejects.toMatchObject({ code: ErrorCode.VERIFICATION_FAILED })
    // A flipped byte in the magic: does not even decode.
    const badMagic = new Uint8Array(good)
    badMagic[0] = (badMagic[0] as number) ^ 0x20
    await expect(ask(badMagic)).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // Truncated.
    await expect(ask(good.subarray(0, good.length - 3))).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // A valid envelope of another cluster (same key set otherwise).
    const foreign = wrap({ ...ks, clusterId: 'f'.repeat(32) }, { ...label, clusterId: 'f'.repeat(32) }, dataKey)
    await expect(ask(encodeEnvelope(foreign))).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // A valid envelope for epoch 2, asked as epoch 1; and as epoch 2 (no such key set here).
    const e2 = wrap({ ...ks, epoch: 2 }, { ...label, epoch: 2 }, dataKey)
    await expect(ask(encodeEnvelope(e2))).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    await expect(ask(encodeEnvelope(e2), 2)).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
    // Envelope for epoch 1 asked as epoch 2.
    await expect(ask(good, 2)).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // One bad envelope fails the whole batch.
    await expect(c.rpc(1, 'partial.batch', { epoch: 1, envelopes: [good, flipped, good], recipient: recipient.publicKey }))
      .rejects.toMatchObject({ code: ErrorCode.VERIFICATION_FAILED })
    // A recipient key that is not a usable X25519 key (all zero).
    await expect(c.rpc(1, 'partial', { epoch: 1, envelope: good, recipient: new Uint8Array(32) })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })

    // Still serving, and the good envelope opens.
    expect((await c.status(1)).dkg.state).toBe('done')
    const ps = await Promise.all([1, 2, 3].map(async i => await partialOf(i, e)))
    expect(toHex(combine(ks, e, ps, { strict: true }))).toBe(toHex(dataKey))
  })
})

describe('frost.commit / frost.sign', () => {
  it('3 nodes sign a release manifest; the aggregate verifies with node:crypto Ed25519; replay is refused', async () => {
    const e = wrap(ks, label, new Uint8Array(randomBytes(32)))
    const msg = utf8(jwsSigningInput(manifestFor(e)))
    const { session, commitments, shares } = await frostSign([1, 3, 4], msg)
    const sig = frostAggregate(ks, commitments.map(decodeSigningCommitment), msg, shares)
    expect(ed25519Verify(signKey(ks), msg, sig)).toBe(true)
    expect(ed25519Verify(signKey(ks), utf8(jwsSigningInput(manifestFor(e, 'v2'))), sig)).toBe(false)

    // Replaying the sign request of a used session: CONFLICT (nonces are single use).
    await expect(c.rpc(1, 'frost.sign', { epoch: 1, session, message: msg, commitments })).rejects.toMatchObject({ code: ErrorCode.CONFLICT })
    // Re-committing under a used session id is refused too.
    await expect(c.rpc(1, 'frost.commit', { epoch: 1, session })).rejects.toMatchObject({ code: ErrorCode.CONFLICT })
    // A session never committed: NOT_FOUND.
    await expect(c.rpc(2, 'frost.sign', { epoch: 1, session: toHex(randomBytes(16)), message: msg, commitments }))
      .rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
  })

  it('refuses tampered commitments and non-manifest messages, consuming the session', async () => {
    const e = wrap(ks, label, new Uint8Array(randomBytes(32)))
    const msg = utf8(jwsSigningInput(manifestFor(e)))
    const session = toHex(randomBytes(16))
    const cs = await Promise.all([1, 2, 3].map(async i => (await c.rpc(i, 'frost.commit', { epoch: 1, session })).commitment))
    // Node 1 gets a list where its own commitment was swapped for node 2's points.
    const mine = decodeSigningCommitment(cs[0] as Uint8Array)
    const theirs = decodeSigningCommitment(cs[1] as Uint8Array)
    const swapped = [encodeSigningCommitment({ index: mine.index, hiding: theirs.hiding, binding: theirs.binding }), cs[1] as Uint8Array, cs[2] as Uint8Array]
    await expect(c.rpc(1, 'frost.sign', { epoch: 1, session, message: msg, commitments: swapped })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // The failed attempt consumed node 1's session.
    await expect(c.rpc(1, 'frost.sign', { epoch: 1, session, message: msg, commitments: cs })).rejects.toMatchObject({ code: ErrorCode.CONFLICT })
    // Node 2 refuses to sign bytes that are not a manifest signing input (no signing oracle).
    await expect(c.rpc(2, 'frost.sign', { epoch: 1, session, message: utf8('pay mallory 1000'), commitments: cs })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    // Node 3 refuses a manifest of another cluster.
    const other = { ...manifestFor(e), cluster: 'a'.repeat(32) }
    await expect(c.rpc(3, 'frost.sign', { epoch: 1, session, message: utf8(jwsSigningInput(other)), commitments: cs })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
  })
})

describe('frost nonce limits', () => {
  it('at most 64 outstanding sessions per peer (BUSY beyond); using them frees the slots', async () => {
    const sessions = Array.from({ length: 64 }, () => toHex(randomBytes(16)))
    // Sequential: the RPC server's own per-peer in-flight cap must not be what answers BUSY here.
    const cs: Uint8Array[] = []
    for (const session of sessions) cs.push((await c.rpc(2, 'frost.commit', { epoch: 1, session })).commitment)
    expect(new Set(cs.map(toHex)).size).toBe(64) // fresh nonces every time
    await expect(c.rpc(2, 'frost.commit', { epoch: 1, session: toHex(randomBytes(16)) })).rejects.toMatchObject({ code: ErrorCode.BUSY })
    // Other nodes keep their own budget.
    await c.rpc(3, 'frost.commit', { epoch: 1, session: toHex(randomBytes(16)) })
    // Each sign attempt consumes its session, even a refused one.
    const junk = utf8('not a manifest')
    for (const [j, session] of sessions.entries()) {
      await expect(c.rpc(2, 'frost.sign', { epoch: 1, session, message: junk, commitments: [cs[j] as Uint8Array] })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT })
    }
    await c.rpc(2, 'frost.commit', { epoch: 1, session: toHex(randomBytes(16)) })
  })
})

describe('the lying node (test fixture)', () => {
  let liar: ChildProcess | undefined
  afterAll(async () => {
    if (liar !== undefined && liar.exitCode === null) {
      const done = new Promise(resolve => liar?.once('exit', resolve))
      liar.kill('SIGTERM')
      await done
    }
  })

  it('its wrong partial and wrong signature share are detected and blamed on it', async () => {
    expect(await c.stop(4)).toBe(0)
    const node4 = c.nodes[3]
    if (node4 === undefined) throw new Error('no node 4')
    liar = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/lying-node.ts'), '--data', node4.dataDir, '--cluster', c.clusterPath,
      '--insecure-dev-passphrase', '--corrupt-partial', '--corrupt-sign-share'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    await new Promise<void>((resolve, reject) => {
      let err = ''
      const t = setTimeout(() => { reject(new Error(`lying node not ready: ${err}`)) }, 20_000)
      liar?.stderr?.on('data', (d: Buffer) => {
        err += d.toString()
        if (err.includes('"msg":"node ready"')) { clearTimeout(t); resolve() }
      })
      liar?.once('exit', code => { clearTimeout(t); reject(new Error(`lying node exited ${String(code)}: ${err}`)) })
    })

    const dataKey = new Uint8Array(randomBytes(32))
    const e = wrap(ks, label, dataKey)
    const ps = await Promise.all([4, 1, 2, 3].map(async i => await partialOf(i, e)))
    // Strict combine checks every proof: node 4 is named, the other three open the envelope.
    let blamed: number[] = []
    expect(toHex(combine(ks, e, ps, { strict: true, onBlame: b => { blamed = b } }))).toBe(toHex(dataKey))
    expect(blamed).toEqual([4])
    // With only node 4 and two honest nodes there are not enough valid partials.
    expect(() => combine(ks, e, ps.slice(0, 3))).toThrow(VerificationError)

    const msg = utf8(jwsSigningInput(manifestFor(e)))
    const { commitments, shares } = await frostSign([1, 2, 4], msg)
    let err: unknown
    try { frostAggregate(ks, commitments.map(decodeSigningCommitment), msg, shares) } catch (x) { err = x }
    expect(err).toBeInstanceOf(VerificationError)
    expect((err as VerificationError).blame).toEqual([4])
  })
})
