/**
 * The reshare ceremony (node/lifecycle/reshare-ceremony.ts) in one process: old members A–D
 * (3-of-4) reshare to new members A, B, C, E, F (3-of-5; D removed, E and F joining), wired
 * through the serving methods (no network), real crypto, in-memory progress records.
 * Happy path (group keys kept, new shares interpolate, removed member finishes after k' commits),
 * a bad sub-share excludes its dealer from one view only (the others still finish), equivocation
 * caught by the view digests, |Q| < k fails everywhere, resume after a "crash" keeps the dealing.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { BASE, lagrangeAtZero, mod } from '../../protocol/group.ts'
import { encodeKeySet, keySetId } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { ClusterNode } from '../../protocol/cluster.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import { encodeReshareDealing, reshareDeal } from '../../protocol/reshare.ts'
import type { DkgStatus } from '../../node/context.ts'
import { ReshareCeremony } from '../../node/lifecycle/reshare-ceremony.ts'
import type { ReshareEnv } from '../../node/lifecycle/reshare-ceremony.ts'
import { dealKeySet } from '../helpers/dealer.ts'

const NONCE = '0123456789abcdef0123456789abcdef'
const SESSION = 's1-0123456789abcdef'
const BIND = new Uint8Array(32).fill(9)
const OLD = ['A', 'B', 'C', 'D']
const NEW = ['A', 'B', 'C', 'E', 'F']
const node = (peerId: string, index: number): ClusterNode => ({ index, peerId, addresses: ['/ip4/127.0.0.1/tcp/1'] })
const oldNodes = OLD.map((p, i) => node(p, i + 1))
const newNodes = NEW.map((p, i) => node(p, i + 1))

type Tamper = (from: string, to: string, op: RpcOp, res: unknown) => unknown
type Entry = { keySet: KeySet, base: KeySet, wrapShare: KeyShare, signShare: KeyShare }

class Mesh {
  readonly ks: KeySet
  readonly shares: KeyShare[]
  readonly progress = new Map<string, Map<string, Uint8Array>>()
  readonly committed = new Map<string, Entry[]>()
  readonly c = new Map<string, ReshareCeremony>()
  readonly status = new Map<string, DkgStatus>()
  readonly logs: Array<{ peer: string, msg: string, fields: Record<string, unknown> }> = []
  readonly ac = new AbortController()
  tamper: Tamper = (_f, _t, _op, res) => res
  deadlineMs?: number

  constructor () {
    const d = dealKeySet(3, 4, 'reshare-ceremony')
    this.ks = { ...d.ks, clusterId: '5e'.repeat(16), sign: d.ks.wrap }
    this.shares = d.shares
    for (const p of new Set([...OLD, ...NEW])) this.progress.set(p, new Map())
  }

  env (peer: string, signal = this.ac.signal): ReshareEnv {
    const selfOld = OLD.indexOf(peer) + 1
    const selfNew = NEW.indexOf(peer) + 1
    return {
      clusterId: '5e'.repeat(16),
      oldNodes,
      newNodes,
      oldThreshold: 3,
      newThreshold: 3,
      ...(selfOld > 0 ? { selfOld } : {}),
      ...(selfNew > 0 ? { selfNew } : {}),
      call: async <O extends RpcOp>(to: ClusterNode, op: O, body: RequestBodies[O]): Promise<ResponseBodies[O]> => {
        await new Promise(resolve => setImmediate(resolve))
        const c = this.c.get(to.peerId)
        if (c === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'down')
        const s = (body as { session: string }).session
        let res: unknown
        if (op === 'reshare.round1') res = c.serveRound1(s)
        else if (op === 'reshare.round2') res = c.serveRound2(s, c.newIndexOf(peer) as number)
        else if (op === 'reshare.view') res = c.serveView(s)
        else if (op === 'reshare.result') res = c.serveResult(s)
        else if (op === 'keyset.get' && OLD.includes(to.peerId)) res = { keySet: encodeKeySet(this.ks) }
        else throw new KeymeshError(ErrorCode.NOT_FOUND, 'no such op here')
        return this.tamper(to.peerId, peer, op, res) as ResponseBodies[O]
      },
      liveEpochs: async () => selfOld > 0 ? [1] : [],
      generation: async () => selfOld > 0 ? { keySet: this.ks, keySetId: keySetId(this.ks), wrap: this.shares[selfOld - 1] as KeyShare, sign: this.shares[selfOld - 1] as KeyShare } : undefined,
      localKeySet: async () => selfOld > 0 ? this.ks : undefined,
      loadProgress: async (s) => this.progress.get(peer)?.get(s)?.slice(),
      saveProgress: async (s, r) => { this.progress.get(peer)?.set(s, r.slice()) },
      commit: async (s, entries) => { this.committed.set(peer, entries); this.progress.get(peer)?.delete(s) },
      committedResult: async () => undefined,
      log: (msg, fields) => { this.logs.push({ peer, msg, fields }) },
      setStatus: (st) => { this.status.set(peer, st) },
      signal,
      ...(this.deadlineMs !== undefined ? { deadlineMs: this.deadlineMs } : {})
    }
  }

  start (peer: string, signal?: AbortSignal): Promise<void> {
    const c = new ReshareCeremony(this.env(peer, signal), 1, NONCE, BIND)
    this.c.set(peer, c)
    return c.run()
  }

  async runAll (): Promise<void> { await Promise.all([...new Set([...OLD, ...NEW])].map(async p => { await this.start(p) })) }
}

function interpolateB (shares: KeyShare[]): ReturnType<typeof BASE.multiply> {
  const idx = shares.map(s => s.index)
  return BASE.multiply(mod(shares.reduce((a, s) => a + lagrangeAtZero(idx, s.index) * s.scalar, 0n)))
}

describe('reshare ceremony (in process)', () => {
  it('3-of-4 → 3-of-5 (one removed, two joining): same group key, one new generation, shares on it; the removed member finishes', async () => {
    const m = new Mesh()
    await m.runAll()
    for (const p of [...OLD, 'E', 'F']) expect(m.status.get(p)?.state).toBe('done')
    expect(m.status.get('D')?.detail).toMatch(/this node was removed/)
    expect(m.committed.has('D')).toBe(false)
    const entries = NEW.map(p => (m.committed.get(p) as Entry[])[0] as Entry)
    expect(new Set(entries.map(e => keySetId(e.keySet))).size).toBe(1)
    const ks = entries[0]?.keySet as KeySet
    expect([ks.threshold, ks.n, ks.epoch]).toEqual([3, 5, 1])
    expect(ks.wrap.commitments[0]?.equals(m.ks.wrap.commitments[0] as typeof BASE)).toBe(true)
    expect(entries.map(e => e.wrapShare.index)).toEqual([1, 2, 3, 4, 5])
    expect(interpolateB(entries.slice(2, 5).map(e => e.wrapShare)).equals(m.ks.wrap.commitments[0] as typeof BASE)).toBe(true)
    expect(interpolateB([entries[0]?.signShare as KeyShare, entries[3]?.signShare as KeyShare, entries[4]?.signShare as KeyShare]).equals(m.ks.sign.commitments[0] as typeof BASE)).toBe(true)
    // Two new shares with one old one: not the key.
    expect(interpolateB([m.shares[0] as KeyShare, entries[1]?.wrapShare as KeyShare, entries[2]?.wrapShare as KeyShare]).equals(m.ks.wrap.commitments[0] as typeof BASE)).toBe(false)
    const r = (m.c.get('E') as ReshareCeremony).serveResult(SESSION)
    expect(r.committed).toBe(true)
    expect(() => (m.c.get('E') as ReshareCeremony).serveResult('s1-ffffffffffffffff')).toThrow(KeymeshError)
  }, 60_000)

  it('a bad sub-share excludes its dealer from that member\'s view only; Q = the common dealers; still commits', async () => {
    const m = new Mesh()
    m.tamper = (from, to, op, res) => {
      if (from === 'D' && to === 'E' && op === 'reshare.round2') {
        const r = res as ResponseBodies['reshare.round2']
        const w = r.wrap.map(b => b.slice()); (w[0] as Uint8Array)[10] = ((w[0] as Uint8Array)[10] as number) ^ 1
        return { ...r, wrap: w }
      }
      return res
    }
    await m.runAll()
    for (const p of NEW) expect(m.status.get(p)?.state).toBe('done')
    expect(m.logs.some(l => l.peer === 'E' && l.msg === 'reshare dealer excluded' && (l.fields.blame as number[])[0] === 4)).toBe(true)
    expect(m.logs.find(l => l.peer === 'A' && l.msg === 'reshare dealer set agreed')?.fields.Q).toEqual([1, 2, 3])
    const entries = NEW.map(p => (m.committed.get(p) as Entry[])[0] as Entry)
    expect(interpolateB(entries.slice(0, 3).map(e => e.wrapShare)).equals(m.ks.wrap.commitments[0] as typeof BASE)).toBe(true)
  }, 60_000)

  /**
   * With a commit quorum (3 of 5 here), members that detect a problem fail, and the others either
   * fail too or — when at least q of them still agree — commit without them (the failed ones catch
   * up later by share repair). Never a split: nothing committed, or ≥ q members on ONE key set.
   */
  function consistent (m: Mesh): void {
    const ids = [...m.committed.values()].map(e => keySetId((e[0] as Entry).keySet))
    expect(ids.length === 0 || ids.length >= 3).toBe(true)
    expect(new Set(ids).size).toBeLessThanOrEqual(1)
    for (const p of NEW) expect(m.committed.has(p) || m.status.get(p)?.state === 'failed').toBe(true)
  }

  it('equivocation (another valid dealing shown to one member): the dealer is named, F never commits; no split', async () => {
    const m = new Mesh()
    const alt = reshareDeal(m.shares[3] as KeyShare, m.ks.wrap, [1, 2, 3, 4], 3, 5)
    m.tamper = (from, to, op, res) => {
      if (from !== 'D' || to !== 'F') return res
      if (op === 'reshare.round1') { const r = res as ResponseBodies['reshare.round1']; return { ...r, wrap: [encodeReshareDealing(alt.dealing)] } }
      if (op === 'reshare.round2') { const r = res as ResponseBodies['reshare.round2']; return { ...r, wrap: [alt.subShares.get(5) as Uint8Array] } }
      return res
    }
    await m.runAll()
    // Whoever compares F's view with another names dealer 4; F itself never commits.
    expect(NEW.some(p => /old node\(s\) 4 showed different dealings/.test(m.status.get(p)?.detail ?? ''))).toBe(true)
    expect(m.committed.has('F')).toBe(false)
    consistent(m)
  }, 60_000)

  it('|Q| < k (views {1,2,3} and {2,3,4}): a member comparing both fails (not enough old nodes dealt to every new member); no split', async () => {
    const m = new Mesh()
    const bad = (r: ResponseBodies['reshare.round2']): ResponseBodies['reshare.round2'] => { const w = r.wrap.map(b => b.slice()); (w[0] as Uint8Array)[10] = ((w[0] as Uint8Array)[10] as number) ^ 1; return { ...r, wrap: w } }
    m.tamper = (from, to, op, res) => {
      if (op !== 'reshare.round2') return res
      if ((from === 'D' && to === 'E') || (from === 'A' && to === 'F')) return bad(res as ResponseBodies['reshare.round2'])
      return res
    }
    await m.runAll()
    expect(NEW.some(p => /not enough old nodes dealt to every new member/.test(m.status.get(p)?.detail ?? ''))).toBe(true)
    consistent(m)
  }, 60_000)

  it('a new member that never comes up: the commit quorum (3 of 5) commits without it after the grace; the removed member finishes', async () => {
    const m = new Mesh()
    await Promise.all([...new Set([...OLD, ...NEW])].filter(p => p !== 'F').map(async p => { await m.start(p) }))
    expect([...m.committed.keys()].sort()).toEqual(['A', 'B', 'C', 'E'])
    expect(m.status.get('D')?.state).toBe('done')
  }, 60_000)

  it('fewer new members than the commit quorum up: they fail at the agreement deadline, nothing committed', async () => {
    const m = new Mesh()
    m.deadlineMs = 1_500
    // Dealers A, B, D (k = 3) are up, but only 2 of the 5 new members (A, B): below the quorum of 3.
    await Promise.all(['A', 'B', 'D'].map(async p => { await m.start(p) }))
    for (const p of ['A', 'B']) expect(m.status.get(p)?.detail).toMatch(/no agreement within 2 s|reports that reshare s1-0123456789abcdef failed there/)
    expect(['A', 'B'].some(p => /no agreement within 2 s \(fewer than 3 new members up/.test(m.status.get(p)?.detail ?? ''))).toBe(true)
    expect(m.committed.size).toBe(0)
  }, 60_000)

  it('a member stopped after dealing resumes with the same dealing and the reshare completes', async () => {
    const m = new Mesh()
    const seen = new Set<string>()
    m.tamper = (from, _to, op, res) => {
      if (from === 'B' && op === 'reshare.round1') seen.add(toHexList((res as ResponseBodies['reshare.round1']).wrap).join())
      return res
    }
    const stopB = new AbortController()
    const others = [...new Set([...OLD, ...NEW])].filter(p => p !== 'B').map(async p => { await m.start(p) })
    const first = m.start('B', AbortSignal.any([stopB.signal, m.ac.signal]))
    // Let B persist its dealing, then "crash" it.
    for (let i = 0; i < 200 && (m.progress.get('B')?.size ?? 0) === 0; i++) await new Promise(resolve => setTimeout(resolve, 5))
    const dealt = m.c.get('B')?.serveRound1(SESSION)
    seen.add(toHexList(dealt?.wrap).join())
    stopB.abort()
    await first
    m.c.delete('B')
    await new Promise(resolve => setTimeout(resolve, 50))
    const again = m.start('B')
    expect((m.c.get('B') as ReshareCeremony).state.state).toBe('running')
    await Promise.all([...others, again])
    expect(m.logs.some(l => l.peer === 'B' && l.msg === 'reshare resumed')).toBe(true)
    expect(m.c.get('B')?.state.state).toBe('done')
    // Every round-1 answer B ever served (before and after the crash) is the same dealing.
    expect(seen.size).toBe(1)
    for (const p of NEW) expect(m.status.get(p)?.state).toBe('done')
  }, 60_000)
})

function toHexList (l: Uint8Array[] | undefined): string[] { return (l ?? []).map(b => Buffer.from(b).toString('hex')) }
