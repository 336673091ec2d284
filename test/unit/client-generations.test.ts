/**
 * Key-set generations on the client (client/generations.ts, rewrap.ts, sign.ts, deploy.ts bundles)
 * with real crypto: a dealer key set (generation A) and an in-process proactive refresh of it
 * (protocol/refresh.ts refreshDeal/refreshFinish, every node dealing) give generation B with the
 * same group keys and new shares. In-process "nodes" behind a ClientTransport-shaped object compute
 * real partials / FROST shares with their current generation's share and name it; the client must
 * group by generation, combine one generation only, re-ask split nodes, blame nodes naming an
 * unknown or invalid generation, and never output a wrong key.
 */
import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, KeymeshError, QuorumUnavailableError, VerificationError } from '../../protocol/errors.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import { encodeKeySet, signKey } from '../../protocol/keyset.ts'
import type { GroupPublicKey, KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { Point } from '../../protocol/group.ts'
import { refreshDeal, refreshFinish } from '../../protocol/refresh.ts'
import { wrap } from '../../protocol/wrap.ts'
import { decodeEnvelope, envelopeId } from '../../protocol/envelope.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import { computeBatchPartial, computePartial, sealPartial } from '../../protocol/partial.ts'
import { decodeSigningCommitment, ed25519Verify, encodeSignatureShare, encodeSigningCommitment, frostCommit, frostSignShare } from '../../protocol/frost.ts'
import type { SigningNonces } from '../../protocol/frost.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { encodeBundle } from '../../protocol/bundle.ts'
import { toHex } from '../../protocol/bytes.ts'
import { dealKeySet, labelFor } from '../helpers/dealer.ts'
import { GenerationGroups, checkGeneration, idOf, resolveGeneration } from '../../client/generations.ts'
import { rewrap, rewrapBatch } from '../../client/rewrap.ts'
import { thresholdSign } from '../../client/sign.ts'
import { openReleaseBundle } from '../../client/deploy.ts'
import { fetchKeySet } from '../../client/keyset-fetch.ts'
import { refreshNodeState, refreshSession } from '../../client/lifecycle.ts'
import type { LoadedRelease } from '../../client/release-layout.ts'
import type { ClientTransport } from '../../client/transport.ts'

// ---- fixtures: generation A (dealer) and B (a real refresh of A) --------------------------------

interface Gen { ks: KeySet, wrap: KeyShare[], sign: KeyShare[] }

function refresh (pub: GroupPublicKey, shares: KeyShare[]): { pub: GroupPublicKey, shares: KeyShare[] } {
  const dealers = shares.map(s => s.index)
  const deals = new Map(shares.map(s => [s.index, refreshDeal(s, pub)]))
  const commitments = new Map<number, Point[]>([...deals].map(([i, d]) => [i, d.commitment]))
  let out: GroupPublicKey | undefined
  const next = shares.map((s) => {
    const subs = new Map<number, Uint8Array>([...deals].map(([i, d]) => [i, d.subShares.get(s.index) as Uint8Array]))
    const r = refreshFinish(s, pub, dealers, commitments, subs)
    out = r.publicKey
    return r.share
  })
  return { pub: out as GroupPublicKey, shares: next }
}

const K = 3
const N = 5
const wrapDeal = dealKeySet(K, N, 'client-generations wrap')
const signDeal = dealKeySet(K, N, 'client-generations sign')
const A: Gen = { ks: { ...wrapDeal.ks, sign: signDeal.ks.wrap }, wrap: wrapDeal.shares, sign: signDeal.shares }
const rw = refresh(A.ks.wrap, A.wrap)
const rs = refresh(A.ks.sign, A.sign)
const B: Gen = { ks: { ...A.ks, wrap: rw.pub, sign: rs.pub }, wrap: rw.shares, sign: rs.shares }
const rw2 = refresh(B.ks.wrap, B.wrap)
const rs2 = refresh(B.ks.sign, B.sign)
const C: Gen = { ks: { ...A.ks, wrap: rw2.pub, sign: rs2.pub }, wrap: rw2.shares, sign: rs2.shares }
/** Same cluster, epoch and shape, but another wrap key: a forged "generation". */
const other = dealKeySet(K, N, 'client-generations forged')
const FORGED: KeySet = { ...A.ks, wrap: other.ks.wrap }

// ---- in-process nodes ---------------------------------------------------------------------------

interface FakeNode {
  gen: Gen
  down?: boolean
  /** Names this id instead of its real generation's (a liar). */
  names?: string
  /** Serves these bytes for any keyset.get with a keySetId (a liar). */
  serves?: Uint8Array
  /** Called after each answered partial/commit (e.g. to commit a refresh "meanwhile"). */
  after?: (op: RpcOp, node: FakeNode) => void
  asked: number
}

function fakeTransport (nodes: FakeNode[], gens: Gen[]): { t: ClientTransport, calls: Array<{ index: number, op: RpcOp }> } {
  const me = generateRecipientKeyPair()
  const calls: Array<{ index: number, op: RpcOp }> = []
  const sessions = new Map<string, { nonces: SigningNonces, gen: Gen }>()
  const call = async <O extends RpcOp>(index: number, op: O, body: RequestBodies[O]): Promise<ResponseBodies[O]> => {
    calls.push({ index, op })
    await new Promise(resolve => setImmediate(resolve))
    const node = nodes[index - 1] as FakeNode
    if (node.down === true) throw new KeymeshError(ErrorCode.UNAVAILABLE, `node ${index}: connection refused`)
    const g = node.gen
    const named = node.names ?? idOf(g.ks)
    let res: unknown
    if (op === 'keyset.get') {
      const b = body as RequestBodies['keyset.get']
      if (b.keySetId === undefined) {
        node.after?.(op, node)
        return { keySet: encodeKeySet(g.ks) } as ResponseBodies[O]
      }
      if (node.serves !== undefined) res = { keySet: node.serves }
      else {
        const found = gens.find(x => idOf(x.ks) === b.keySetId)
        if (found === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `node ${index}: no such key set generation`)
        res = { keySet: encodeKeySet(found.ks) }
      }
      return res as ResponseBodies[O]
    }
    if (op === 'partial') {
      const b = body as RequestBodies['partial']
      const e = decodeEnvelope(b.envelope)
      res = { sealed: sealPartial(computePartial(g.wrap[index - 1] as KeyShare, g.ks, e), g.ks, [envelopeId(e)], b.recipient), keySetId: named }
    } else if (op === 'partial.batch') {
      const b = body as RequestBodies['partial.batch']
      const es = b.envelopes.map(decodeEnvelope)
      res = { sealed: sealPartial(computeBatchPartial(g.wrap[index - 1] as KeyShare, g.ks, es), g.ks, es.map(envelopeId), b.recipient), keySetId: named }
    } else if (op === 'frost.commit') {
      const b = body as RequestBodies['frost.commit']
      const { nonces, commitment } = frostCommit(g.sign[index - 1] as KeyShare)
      sessions.set(`${index}/${b.session}`, { nonces, gen: g })
      res = { commitment: encodeSigningCommitment(commitment), keySetId: named }
    } else if (op === 'frost.sign') {
      const b = body as RequestBodies['frost.sign']
      const s = sessions.get(`${index}/${b.session}`)
      if (s === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `node ${index}: unknown session`)
      if (b.keySetId !== undefined && b.keySetId !== idOf(g.ks)) throw new KeymeshError(ErrorCode.CONFLICT, `node ${index}: key set changed by a refresh; start the signing again`)
      const share = frostSignShare(s.gen.sign[index - 1] as KeyShare, s.gen.ks, s.nonces, b.commitments.map(decodeSigningCommitment), b.message)
      return { share: encodeSignatureShare(share) } as ResponseBodies[O]
    } else {
      throw new KeymeshError(ErrorCode.BAD_INPUT, `unexpected op ${op}`)
    }
    node.asked++
    node.after?.(op, node)
    return res as ResponseBodies[O]
  }
  const t = {
    cluster: { clusterId: A.ks.clusterId, threshold: K, nodes: nodes.map((_, j) => ({ index: j + 1, peerId: `p${j + 1}`, addresses: [] })) },
    identity: { recipientPublicKey: me.publicKey, recipientSecretKey: me.secretKey },
    indices: nodes.map((_, j) => j + 1),
    latencyQuantile: () => undefined,
    call,
    close: async () => {}
  }
  // A structural stand-in for the libp2p transport: the crypto on both sides is real.
  return { t: t as unknown as ClientTransport, calls }
}

function nodesOn (gens: Gen[], over: Array<Partial<FakeNode>> = []): FakeNode[] {
  return gens.map((gen, j) => ({ gen, asked: 0, ...(over[j] ?? {}) }))
}

function envelope (release = 'r1'): { e: Envelope, key: Uint8Array } {
  const key = new Uint8Array(randomBytes(32))
  return { e: wrap(A.ks, labelFor(A.ks, { release }), key), key }
}

// ---- pure parts ---------------------------------------------------------------------------------

describe('generations: pure checks', () => {
  it('the refresh keeps group keys and changes the key set id', () => {
    expect(idOf(B.ks)).not.toBe(idOf(A.ks))
    expect(B.ks.wrap.commitments[0]!.equals(A.ks.wrap.commitments[0]!)).toBe(true)
    expect(toHex(signKey(B.ks))).toBe(toHex(signKey(A.ks)))
  })

  it('checkGeneration accepts a refresh and refuses another id, group key, epoch, threshold or cluster', () => {
    expect(() => { checkGeneration(A.ks, B.ks, idOf(B.ks)) }).not.toThrow()
    expect(() => { checkGeneration(B.ks, A.ks, idOf(A.ks)) }).not.toThrow()
    expect(() => { checkGeneration(A.ks, B.ks, idOf(C.ks)) }).toThrow(/another id/)
    expect(() => { checkGeneration(A.ks, FORGED, idOf(FORGED)) }).toThrow(/wrap key/)
    const e2 = { ...B.ks, epoch: 2 }
    expect(() => { checkGeneration(A.ks, e2, idOf(e2)) }).toThrow(/epoch/)
    const c2 = { ...B.ks, clusterId: 'ab'.repeat(16) }
    expect(() => { checkGeneration(A.ks, c2, idOf(c2)) }).toThrow(/clusterId/)
    const s2 = { ...B.ks, sign: other.ks.wrap }
    expect(() => { checkGeneration(A.ks, s2, idOf(s2)) }).toThrow(/sign key/)
  })

  it('GenerationGroups: ranks newer generations, only a group of k is ready, re-asks outside the newest', () => {
    const a = idOf(A.ks); const b = idOf(B.ks); const c = idOf(C.ks)
    const g = new GenerationGroups<string>(a)
    g.set(1, a, 'x'); g.set(2, a, 'x'); g.set(3, b, 'y')
    expect(g.ready(3)).toBeUndefined()
    expect(g.newest()).toBe(b)
    expect(g.outsideNewest().sort()).toEqual([1, 2])
    expect(g.maxGroupSize()).toBe(2)
    expect(g.set(1, b, 'y')).toBe(true) // node 1 moved forward
    expect(g.ready(3)).toBeUndefined()
    g.set(2, b, 'y')
    expect(g.ready(3)?.keySetId).toBe(b)
    expect([...(g.ready(3)?.answers.keys() ?? [])].sort()).toEqual([1, 2, 3])
    // Two groups of k: the newest wins; a node moving C → B would make B newest again.
    g.set(4, c, 'z'); g.set(5, c, 'z'); g.set(6, c, 'z')
    expect(g.ready(3)?.keySetId).toBe(c)
    g.set(6, b, 'y')
    expect(g.newest()).toBe(b)
    g.delete(6)
    expect(g.size).toBe(5)
  })
})

// ---- rewrap -------------------------------------------------------------------------------------

describe('generations: rewrap', () => {
  it('answers from two generations: combines the group of k only, with its key set, right key', async () => {
    const { e, key } = envelope()
    for (let trial = 0; trial < 4; trial++) {
      const { t } = fakeTransport(nodesOn([A, A, B, B, B]), [A, B])
      const r = await rewrap(t, A.ks, e, { hedgeMs: 5, order: [1, 2, 3, 4, 5] })
      expect(toHex(r.dataKey)).toBe(toHex(key))
      expect(r.nodes).toEqual([3, 4, 5])
      expect(idOf(r.keySet)).toBe(idOf(B.ks))
      expect(r.failures).toEqual([])
    }
    // The trusted generation itself has k: no fetch needed.
    const { t, calls } = fakeTransport(nodesOn([A, A, A, B, B]), [A, B])
    const r = await rewrap(t, A.ks, e, { order: [1, 2, 3] })
    expect(toHex(r.dataKey)).toBe(toHex(key))
    expect(r.keySet).toBe(A.ks)
    expect(calls.filter(c => c.op === 'keyset.get')).toEqual([])
  })

  it('a split that cannot reach k is re-asked; nodes that committed meanwhile are combined', async () => {
    const { e, key } = envelope()
    // 4 and 5 are down; 1 and 2 still on A when first asked, and on B from then on.
    const move = (_: RpcOp, n: FakeNode): void => { n.gen = B }
    const nodes = nodesOn([A, A, B, A, A], [{ after: move }, { after: move }, {}, { down: true }, { down: true }])
    const { t, calls } = fakeTransport(nodes, [A, B])
    const r = await rewrap(t, A.ks, e, { hedgeMs: 5, deadlineMs: 3_000 })
    expect(toHex(r.dataKey)).toBe(toHex(key))
    expect(r.nodes).toEqual([1, 2, 3])
    expect(idOf(r.keySet)).toBe(idOf(B.ks))
    expect(calls.filter(c => c.op === 'partial' && c.index === 1).length).toBe(2)
    expect(calls.filter(c => c.op === 'partial' && c.index === 3).length).toBe(1)
  })

  it('a split that never resolves fails by the deadline (never a mixed combine, never a wrong key)', async () => {
    const { e } = envelope()
    const nodes = nodesOn([A, A, B, B, A], [{}, {}, {}, {}, { down: true }])
    const { t } = fakeTransport(nodes, [A, B])
    const t0 = Date.now()
    const err = await rewrap(t, A.ks, e, { hedgeMs: 5, deadlineMs: 600 }).catch((x: unknown) => x)
    expect(Date.now() - t0).toBeLessThan(2_000)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    const fs = (err as QuorumUnavailableError).failures
    expect(fs.filter(f => f.code === ErrorCode.CONFLICT).map(f => f.index).sort()).toEqual([1, 2, 3, 4])
    expect(fs.find(f => f.index === 5)?.code).toBe(ErrorCode.UNAVAILABLE)
  })

  it('blames a node naming an unknown generation and one serving a forged generation; still succeeds', async () => {
    const { e, key } = envelope()
    const nodes = nodesOn([A, A, A, A, A], [{ names: idOf(C.ks) }, { names: idOf(FORGED), serves: encodeKeySet(FORGED) }])
    const { t } = fakeTransport(nodes, [A]) // nobody knows C
    const r = await rewrap(t, A.ks, e, { order: [1, 2, 3, 4, 5], hedgeMs: 5 })
    expect(toHex(r.dataKey)).toBe(toHex(key))
    expect(r.nodes).toEqual([3, 4, 5])
    const byIndex = new Map(r.failures.map(f => [f.index, f]))
    expect(byIndex.get(1)?.code).toBe(ErrorCode.VERIFICATION_FAILED)
    expect(byIndex.get(1)?.detail).toMatch(/cannot back it/)
    expect(byIndex.get(2)?.code).toBe(ErrorCode.VERIFICATION_FAILED)
    expect(byIndex.get(2)?.detail).toMatch(/not a refresh of the trusted key set/)
  })

  it('a node naming a newer generation than its share is blamed (its partial does not open under it)', async () => {
    const { e, key } = envelope()
    const nodes = nodesOn([A, A, A, A, B], [{ names: idOf(B.ks) }])
    const { t } = fakeTransport(nodes, [A, B])
    const r = await rewrap(t, A.ks, e, { order: [1, 2, 3, 4, 5], hedgeMs: 5 })
    expect(toHex(r.dataKey)).toBe(toHex(key))
    expect(r.keySet).toBe(A.ks)
    expect(r.failures.find(f => f.index === 1)?.code).toBe(ErrorCode.VERIFICATION_FAILED)
  })

  it('batch rewrap over a refresh: one generation per slice, right keys', async () => {
    const items = Array.from({ length: 7 }, (_, j) => envelope(`b${j}`))
    const move = (_: RpcOp, n: FakeNode): void => { n.gen = B }
    const nodes = nodesOn([A, B, B, A, A], [{ after: move }, {}, {}, { down: true }, { down: true }])
    const { t } = fakeTransport(nodes, [A, B])
    const r = await rewrapBatch(t, A.ks, items.map(x => x.e), { hedgeMs: 5, deadlineMs: 3_000 })
    expect(r.dataKeys.map(toHex)).toEqual(items.map(x => toHex(x.key)))
    expect(idOf(r.keySet as KeySet)).toBe(idOf(B.ks))
  })

  it('resolveGeneration without a naming node asks every node, takes a valid answer, blames a forger', async () => {
    const nodes = nodesOn([A, A, B, B, B], [{ serves: encodeKeySet(FORGED) }])
    const { t } = fakeTransport(nodes, [A, B])
    expect(idOf(await resolveGeneration(t, A.ks, idOf(B.ks)))).toBe(idOf(B.ks))
    const err = await resolveGeneration(t, A.ks, idOf(C.ks)).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(VerificationError)
    expect((err as VerificationError).blame).toEqual([1])
  })
})

// ---- key-set fetch ------------------------------------------------------------------------------

describe('generations: k-agreed key-set fetch during a refresh', () => {
  it('answers split between generations are asked again; the generation k nodes agree on wins', async () => {
    const move = (op: RpcOp, n: FakeNode): void => { if (op === 'keyset.get') n.gen = B }
    const nodes = nodesOn([A, A, B, B, A], [{ after: move }, {}, {}, {}, { down: true }])
    const { t, calls } = fakeTransport(nodes, [A, B])
    const ks = await fetchKeySet(t, { graceMs: 5 })
    expect(idOf(ks)).toBe(idOf(B.ks))
    expect(calls.filter(c => c.index === 1 && c.op === 'keyset.get').length).toBe(2)
  })

  it('a forged key set does not make a split worth waiting for: fails at once', async () => {
    const nodes = nodesOn([A, A, B, B, A], [{}, {}, {}, { serves: encodeKeySet(FORGED) }, { down: true }])
    nodes[3]!.gen = { ...B, ks: FORGED }
    const { t } = fakeTransport(nodes.map((n, j) => j === 2 ? { ...n, down: true } : n), [A, B])
    const t0 = Date.now()
    await expect(fetchKeySet(t, { graceMs: 5 })).rejects.toThrow(QuorumUnavailableError)
    expect(Date.now() - t0).toBeLessThan(1_000)
  })
})

// ---- signing ------------------------------------------------------------------------------------

describe('generations: FROST signing', () => {
  const msg = new Uint8Array(randomBytes(64))

  it('signs with k signers of one generation, passes keySetId, verifies under the unchanged key', async () => {
    const { t } = fakeTransport(nodesOn([A, B, B, A, B]), [A, B])
    const s = await thresholdSign(t, A.ks, msg, { hedgeMs: 5, order: [1, 2, 3, 4, 5] })
    expect(s.signers).toEqual([2, 3, 5])
    expect(idOf(s.keySet)).toBe(idOf(B.ks))
    expect(ed25519Verify(signKey(A.ks), msg, s.signature)).toBe(true)
  })

  it('signers that commit a refresh between commit and sign answer CONFLICT: restarted once, nobody blamed', async () => {
    const nodes = nodesOn([A, A, A, A, A])
    let commits = 0
    // Once k commitments (all generation A) are out, every node commits the refresh (B).
    const after = (op: RpcOp): void => { if (op === 'frost.commit' && ++commits === K) for (const n of nodes) n.gen = B }
    for (const n of nodes) n.after = after
    const { t, calls } = fakeTransport(nodes, [A, B])
    const s = await thresholdSign(t, A.ks, msg, { hedgeMs: 1_000, order: [1, 2, 3] })
    expect(ed25519Verify(signKey(A.ks), msg, s.signature)).toBe(true)
    expect(idOf(s.keySet)).toBe(idOf(B.ks))
    expect(s.failures).toEqual([])
    // Round 2 was refused by the 3 signers once (CONFLICT), then the restart signed under B.
    expect(calls.filter(c => c.op === 'frost.sign').length).toBe(6)
    expect(calls.filter(c => c.op === 'frost.commit').length).toBe(6)
  })

  it('a second CONFLICT counts as the signers\' failure: no endless restarts, the error names them', async () => {
    const nodes = nodesOn([A, A, A, A, A])
    const gens = [A, B, C]
    let commits = 0
    // After each round 1 (3 commitments), every node moves one generation further (twice).
    const after = (op: RpcOp): void => {
      if (op !== 'frost.commit') return
      if (++commits % 3 === 0) for (const n of nodes) n.gen = gens[Math.min(2, gens.indexOf(n.gen) + 1)] as Gen
    }
    for (const n of nodes) n.after = after
    const { t, calls } = fakeTransport(nodes, gens)
    const err = await thresholdSign(t, A.ks, msg, { hedgeMs: 1_000, order: [1, 2, 3, 4, 5] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    expect((err as QuorumUnavailableError).failures.map(f => [f.index, f.code])).toEqual([[1, ErrorCode.CONFLICT], [2, ErrorCode.CONFLICT], [3, ErrorCode.CONFLICT]])
    expect(calls.filter(c => c.op === 'frost.sign').length).toBe(6)
  })
})

// ---- bundles ------------------------------------------------------------------------------------

describe('generations: bundles made before a refresh', () => {
  it('a bundle of generation A opens for a client whose trusted key set is B (and vice versa); forged refused', async () => {
    const target = generateRecipientKeyPair()
    const { e, key } = envelope('bundle')
    const id = envelopeId(e)
    const partials = [1, 2, 3, 4].map(i => ({ index: i, sealed: sealPartial(computeBatchPartial(A.wrap[i - 1] as KeyShare, A.ks, [e]), A.ks, [id], target.publicKey) }))
    const dir = await mkdtemp(join(tmpdir(), 'kmgen-'))
    try {
      const path = join(dir, 'a.kmb')
      await writeFile(path, encodeBundle({ version: 1, recipient: target.publicKey, keySetId: idOf(A.ks), envelopes: [e], partials }))
      const rel = { envelope: e } as unknown as LoadedRelease
      const { t } = fakeTransport(nodesOn([B, B, B, B, B]), [A, B])
      const r = await openReleaseBundle(path, rel, B.ks, target.secretKey, async gid => await resolveGeneration(t, B.ks, gid))
      expect(toHex(r.key)).toBe(toHex(key))
      expect(r.nodes).toEqual([1, 2, 3, 4])
      // Without a resolver the old behaviour stands: refused.
      await expect(openReleaseBundle(path, rel, B.ks, target.secretKey)).rejects.toThrow(/another key set/)
      // A resolver returning a key set with another group key is refused.
      await expect(openReleaseBundle(path, rel, B.ks, target.secretKey, async () => FORGED)).rejects.toThrow(VerificationError)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

// ---- refresh progress -----------------------------------------------------------------------------

describe('generations: refresh progress from status', () => {
  const nonce = 'ab'.repeat(16)
  const before = idOf(A.ks)
  const st = (over: Partial<ResponseBodies['status']>): ResponseBodies['status'] => ({
    version: '0', index: 1, peerId: 'p1', clusterId: A.ks.clusterId, epoch: 2, keySetId: before, uptimeMs: 1, dkg: { state: 'done' }, ...over
  })
  it('classifies each node: done on a new key set id of the epoch, failed only for this session', () => {
    expect(refreshSession(2, nonce)).toBe('f2-abababababababab')
    expect(refreshNodeState(undefined, 2, nonce, before)).toBe('unreachable')
    expect(refreshNodeState(st({}), 2, nonce, before)).toBe('pending')
    expect(refreshNodeState(st({ dkg: { state: 'running', detail: `refresh ${refreshSession(2, nonce)}: round 2` } }), 2, nonce, before)).toBe('pending')
    expect(refreshNodeState(st({ keySetId: idOf(B.ks) }), 2, nonce, before)).toBe('done')
    expect(refreshNodeState(st({ dkg: { state: 'done', detail: `refresh ${refreshSession(2, nonce)}: committed epochs 1,2` } }), 2, nonce, before)).toBe('done')
    expect(refreshNodeState(st({ dkg: { state: 'failed', detail: `refresh ${refreshSession(2, nonce)}: equivocation by node 3` } }), 2, nonce, before)).toBe('failed')
    // A stale failure of another ceremony is not this refresh's failure.
    expect(refreshNodeState(st({ dkg: { state: 'failed', detail: 'dkg e2-a0: bad dealing from node 2' } }), 2, nonce, before)).toBe('pending')
    // Another epoch (a rotation happened meanwhile) is not "done".
    expect(refreshNodeState(st({ epoch: 3, keySetId: idOf(B.ks) }), 2, nonce, before)).toBe('pending')
  })
})
