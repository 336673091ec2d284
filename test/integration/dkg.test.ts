/**
 * The DKG ceremony over a real mesh: 5 node processes, threshold 3 (test/helpers/cluster.ts).
 *
 * 1. A node killed (SIGKILL) right after it logged its round-1 step and restarted resumes from its
 *    persisted progress, and the ceremony completes with one key set (the others wait meanwhile).
 * 2. Every node reports the same keySetId via `status` and serves the same key set via
 *    `keyset.get`; an envelope wrapped to the fetched key set opens with partials from any 3 nodes.
 * 3. After all nodes stop and start again the key set and the shares are unchanged and work.
 * (The uninterrupted ceremony is also exercised by test/integration/partial.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { startTestCluster } from '../helpers/cluster.ts'
import type { TestCluster } from '../helpers/cluster.ts'
import { decodeKeySet, keySetId } from '../../protocol/keyset.ts'
import type { KeySet } from '../../protocol/keyset.ts'
import { wrap } from '../../protocol/wrap.ts'
import { encodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { openSealedPartial } from '../../protocol/partial.ts'
import type { Partial } from '../../protocol/partial.ts'
import { combine } from '../../protocol/combine.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { equalBytes, toHex } from '../../protocol/bytes.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { loadNodeIdentity } from '../../node/identity.ts'
import { dataPaths } from '../../node/config.ts'

const N = 5
const K = 3
const clusters: TestCluster[] = []

afterAll(async () => { await Promise.all(clusters.map(async c => { await c.cleanup() })) })

async function allDone (c: TestCluster, timeoutMs = 45_000): Promise<string> {
  const st = await c.waitFor(s => s.every(x => x?.dkg.state === 'done' || x?.dkg.state === 'failed'), timeoutMs)
  for (const s of st) {
    expect(s?.dkg.state, JSON.stringify(s?.dkg)).toBe('done')
    expect(s?.epoch).toBe(1)
  }
  const ids = new Set(st.map(s => s?.keySetId))
  expect(ids.size).toBe(1)
  const id = st[0]?.keySetId
  expect(id).toMatch(/^[0-9a-f]{64}$/)
  return id as string
}

async function openWith (c: TestCluster, ks: KeySet, e: Envelope, nodes: number[]): Promise<Uint8Array> {
  const r = generateRecipientKeyPair()
  const ps = await Promise.all(nodes.map(async i => {
    const { sealed } = await c.rpc(i, 'partial', { epoch: 1, envelope: encodeEnvelope(e), recipient: r.publicKey })
    return openSealedPartial(sealed, ks, [envelopeId(e)], i, r.secretKey) as Partial
  }))
  // strict: every DLEQ proof is checked, so a node answering with a wrong share would be caught.
  return combine(ks, e, ps, { strict: true })
}

function dkgLog (c: TestCluster, i: number, msg: string): boolean {
  return (c.nodes[i - 1]?.logs ?? []).some(l => l.msg === msg)
}

describe('DKG over the mesh (5 processes, k = 3)', () => {
  // One cluster for the whole file (starting 5 node processes is the expensive part): the first
  // test kills a node in the middle of the ceremony, the others check the resulting key set.
  let c: TestCluster
  let id: string
  let ks: KeySet
  const dataKey = new Uint8Array(randomBytes(32))
  let e: Envelope

  beforeAll(async () => {
    c = await startTestCluster({ n: N, threshold: K, start: false })
    clusters.push(c)
  })

  it('completes although a node is killed right after its round-1 step and restarted', async () => {
    // All five start together; node 5 is killed as soon as it has persisted and published its
    // round-1 packages (the log line comes right after the write).
    const starting = Promise.all([1, 2, 3, 4, 5].map(async i => { await c.start(i) }))
    const until = Date.now() + 20_000
    while (!dkgLog(c, 5, 'dkg round1 ready')) {
      if (Date.now() > until) throw new Error('node 5 never logged its round-1 step')
      await new Promise(resolve => setTimeout(resolve, 2))
    }
    await c.kill(5)
    await starting
    expect(dkgLog(c, 5, 'dkg committed')).toBe(false)
    // Without node 5 nobody can finish (every step needs all n nodes): the others keep polling.
    await new Promise(resolve => setTimeout(resolve, 700))
    const mid = await Promise.all([1, 2, 3, 4].map(async i => await c.status(i)))
    for (const s of mid) {
      expect(s.dkg.state).toBe('running')
      expect(s.keySetId).toBeNull()
    }
    await expect(c.status(5, 1_000)).rejects.toBeDefined()

    await c.start(5)
    id = await allDone(c)
    const lines = c.nodes[4]?.logs ?? []
    expect(lines.some(l => l.msg === 'dkg resumed'), 'node 5 resumed from its persisted progress').toBe(true)
    expect(lines.filter(l => l.msg === 'dkg round1 ready').length).toBe(2) // once per process, same packages
    // Progress was logged, step by step, with counts.
    for (const i of [1, 2, 3, 4, 5]) {
      for (const m of ['dkg round1 ready', 'dkg echo ok', 'dkg finished', 'dkg committed']) expect(dkgLog(c, i, m), `node ${i}: ${m}`).toBe(true)
    }
    expect(c.nodes[0]?.logs.some(l => l.msg === 'dkg round1 received' && l.of === N)).toBe(true)
  })

  it('every node serves the same key set; partials from any 3 nodes open a wrap', async () => {
    // keyset.get: the same bytes from every node, and its id is the one status reports.
    const sets = await Promise.all([1, 2, 3, 4, 5].map(async i => (await c.rpc(i, 'keyset.get', {})).keySet))
    for (const b of sets) expect(equalBytes(b, sets[0] as Uint8Array)).toBe(true)
    ks = decodeKeySet(sets[0] as Uint8Array)
    expect(keySetId(ks)).toBe(id)
    expect(ks.clusterId).toBe(c.cluster.clusterId)
    expect([ks.epoch, ks.threshold, ks.n]).toEqual([1, K, N])
    expect((await c.rpc(3, 'keyset.get', { epoch: 1 })).keySet).toEqual(sets[0])
    await expect(c.rpc(3, 'keyset.get', { epoch: 2 })).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })

    // DKG ops are node-only: the client is refused.
    await expect(c.rpc(1, 'dkg.round2', { session: 'e1-a0' })).rejects.toMatchObject({ code: ErrorCode.NOT_AUTHORIZED })

    const label = { clusterId: ks.clusterId, epoch: 1, purpose: 'release-key', app: 'shop', env: 'prod', release: 'v1.0.0' }
    e = wrap(ks, label, dataKey)
    expect(toHex(await openWith(c, ks, e, [1, 3, 5]))).toBe(toHex(dataKey))
    expect(toHex(await openWith(c, ks, e, [4, 2, 1]))).toBe(toHex(dataKey))
  })

  it('after every node stops and starts again: same key set, shares still work', async () => {
    const codes = await Promise.all([1, 2, 3, 4, 5].map(async i => await c.stop(i)))
    expect(codes).toEqual([0, 0, 0, 0, 0])
    await Promise.all([1, 2, 3, 4, 5].map(async i => { await c.start(i) }))
    expect(await allDone(c, 20_000)).toBe(id)
    for (const i of [1, 2, 3, 4, 5]) {
      // The restarted node found epoch 1 committed and ran no ceremony.
      const lines = c.nodes[i - 1]?.logs ?? []
      const lastReady = lines.map(l => l.msg).lastIndexOf('node ready')
      expect(lines.slice(lastReady).some(l => l.msg === 'dkg round1 ready')).toBe(false)
    }
    expect(equalBytes((await c.rpc(2, 'keyset.get', {})).keySet, (await c.rpc(5, 'keyset.get', {})).keySet)).toBe(true)
    expect(toHex(await openWith(c, ks, e, [2, 4, 5]))).toBe(toHex(dataKey))
    expect(toHex(await openWith(c, ks, e, [3, 1, 5]))).toBe(toHex(dataKey))

    // Speaking as node 1 (its identity key), ask restarted node 2 what a lagging peer would:
    // the committed session still answers dkg.result; the secret round-2 data is gone.
    const asNode1 = await c.client(await loadNodeIdentity(dataPaths(c.nodes[0]?.dataDir as string).identity))
    expect((await asNode1.rpc(2, 'dkg.result', { session: 'e1-a0' })).keySetId).toBe(id)
    await expect(asNode1.rpc(2, 'dkg.round2', { session: 'e1-a0' })).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
    await expect(asNode1.rpc(2, 'dkg.round1', { session: 'e1-a0' })).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
    await expect(asNode1.rpc(2, 'dkg.result', { session: 'e1-a1' })).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
    await expect(asNode1.rpc(2, 'dkg.result', { session: 'e2-a0' })).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND })
    // A node is not a client: it gets no partial decryption.
    const r = generateRecipientKeyPair()
    await expect(asNode1.rpc(2, 'partial', { epoch: 1, envelope: encodeEnvelope(e), recipient: r.publicKey })).rejects.toMatchObject({ code: ErrorCode.NOT_AUTHORIZED })
  })
})
