/**
 * The refresh ceremony (node/lifecycle/refresh-ceremony.ts) in one process: n ceremonies wired
 * together through their serving methods (no network), real crypto, in-memory progress records.
 * Happy path (2 epochs, group keys kept, new shares interpolate, secrets gone after commit), blame
 * as data (a bad sub-share names its dealer; nothing is committed anywhere), equivocation caught
 * by the echo check, resume with the same dealings after a "crash".
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { BASE, lagrangeAtZero, mod } from '../../protocol/group.ts'
import { keySetId } from '../../protocol/keyset.ts'
import type { KeySet, KeyShare } from '../../protocol/keyset.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import type { DkgStatus } from '../../node/context.ts'
import { RefreshCeremony, decodeRefreshProgress } from '../../node/lifecycle/refresh-ceremony.ts'
import type { Generation, RefreshEnv } from '../../node/lifecycle/refresh-ceremony.ts'
import { dealKeySet } from '../helpers/dealer.ts'

const NONCE = '0123456789abcdef0123456789abcdef'
const BIND = new Uint8Array(32).fill(7)

type Tamper = (from: number, to: number, op: RpcOp, res: unknown) => unknown

/** n nodes, each with a store (generations + progress records) and a ceremony. */
class Mesh {
  readonly gens = new Map<number, Map<number, Generation>>()
  readonly progress = new Map<number, Map<string, Uint8Array>>()
  readonly committed = new Map<number, Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }>>()
  readonly c = new Map<number, RefreshCeremony>()
  readonly status = new Map<number, DkgStatus>()
  readonly ac = new AbortController()
  tamper: Tamper = (_f, _t, _op, res) => res
  deadlineMs?: number

  constructor (readonly n: number, readonly k: number, epochs: number) {
    for (let i = 1; i <= n; i++) { this.gens.set(i, new Map()); this.progress.set(i, new Map()) }
    for (let e = 1; e <= epochs; e++) {
      const d = dealKeySet(k, n, `refresh-ceremony-${e}`)
      // One dealt polynomial serves as both keys (the dealer helper returns wrap shares only).
      const ks: KeySet = { ...d.ks, clusterId: '5e'.repeat(16), epoch: e, sign: d.ks.wrap }
      for (let i = 1; i <= n; i++) this.gens.get(i)?.set(e, { keySet: ks, keySetId: keySetId(ks), wrap: d.shares[i - 1] as KeyShare, sign: d.shares[i - 1] as KeyShare })
    }
  }

  env (i: number): RefreshEnv {
    return {
      clusterId: '5e'.repeat(16),
      selfIndex: i,
      threshold: this.k,
      n: this.n,
      call: async <O extends RpcOp>(j: number, op: O, body: RequestBodies[O]): Promise<ResponseBodies[O]> => {
        await new Promise(resolve => setImmediate(resolve))
        const c = this.c.get(j)
        if (c === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'down')
        const s = (body as { session: string }).session
        let res: unknown
        if (op === 'refresh.round1') res = c.serveRound1(s)
        else if (op === 'refresh.echo') res = c.serveEcho(s)
        else if (op === 'refresh.round2') res = c.serveRound2(s, i)
        else res = c.serveResult(s)
        return this.tamper(j, i, op, res) as ResponseBodies[O]
      },
      liveEpochs: async () => [...(this.gens.get(i) as Map<number, Generation>).keys()],
      generation: async (e) => this.gens.get(i)?.get(e),
      loadProgress: async (s) => this.progress.get(i)?.get(s)?.slice(),
      saveProgress: async (s, r) => { this.progress.get(i)?.set(s, r.slice()) },
      commit: async (s, entries) => {
        this.committed.set(i, entries)
        this.progress.get(i)?.delete(s)
      },
      log: () => {},
      setStatus: (st) => { this.status.set(i, st) },
      signal: this.ac.signal,
      ...(this.deadlineMs !== undefined ? { deadlineMs: this.deadlineMs } : {})
    }
  }

  start (i: number): Promise<void> {
    const c = new RefreshCeremony(this.env(i), 2, NONCE, BIND)
    this.c.set(i, c)
    return c.run()
  }

  async runAll (): Promise<void> { await Promise.all([...Array(this.n).keys()].map(async j => { await this.start(j + 1) })) }
}

function interpolateB (shares: KeyShare[]): ReturnType<typeof BASE.multiply> {
  const idx = shares.map(s => s.index)
  return BASE.multiply(mod(shares.reduce((a, s) => a + lagrangeAtZero(idx, s.index) * s.scalar, 0n)))
}

describe('refresh ceremony (in process)', () => {
  it('refreshes every epoch on every node: same group keys, new ids, shares on the new polynomial, secrets dropped', async () => {
    const m = new Mesh(5, 3, 2)
    await m.runAll()
    expect([...m.status.values()].map(s => s.state)).toEqual(['done', 'done', 'done', 'done', 'done'])
    expect(m.status.get(1)?.detail).toMatch(/^refresh f2-0123456789abcdef: committed epochs 1,2/)
    for (const e of [1, 2]) {
      const old = m.gens.get(1)?.get(e) as Generation
      const ids = new Set([1, 2, 3, 4, 5].map(i => keySetId((m.committed.get(i) as Array<{ keySet: KeySet }>)[e - 1]?.keySet as KeySet)))
      expect(ids.size).toBe(1)
      expect(ids.has(old.keySetId)).toBe(false)
      const entries = [1, 2, 3, 4, 5].map(i => (m.committed.get(i) as Array<{ keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare }>)[e - 1] as { keySet: KeySet, wrapShare: KeyShare, signShare: KeyShare })
      const ks = entries[0]?.keySet as KeySet
      expect(ks.wrap.commitments[0]?.equals(old.keySet.wrap.commitments[0] as typeof BASE)).toBe(true)
      expect(ks.epoch).toBe(e)
      expect(interpolateB(entries.slice(0, 3).map(x => x.wrapShare)).equals(old.keySet.wrap.commitments[0] as typeof BASE)).toBe(true)
      expect(interpolateB(entries.slice(2, 5).map(x => x.signShare)).equals(old.keySet.sign.commitments[0] as typeof BASE)).toBe(true)
      // One old share with two new ones: not the group key.
      expect(interpolateB([old.wrap, entries[1]?.wrapShare as KeyShare, entries[2]?.wrapShare as KeyShare]).equals(old.keySet.wrap.commitments[0] as typeof BASE)).toBe(false)
    }
    // After the commit only the result is served, and the dealt/received sub-shares are gone.
    const c1 = m.c.get(1) as RefreshCeremony
    const prog = (c1 as unknown as { progress: { dealt: Map<number, unknown>, round2: Map<number, unknown> } }).progress
    expect(prog.dealt.size + prog.round2.size).toBe(0)
    expect(() => c1.serveRound2('f2-0123456789abcdef', 2)).toThrow(/no longer served/)
    expect(c1.serveResult('f2-0123456789abcdef').digest).toMatch(/^[0-9a-f]{64}$/)
    expect(() => c1.serveResult('f2-ffffffffffffffff')).toThrow(KeymeshError)
  }, 30_000)

  it('names the dealer of a bad sub-share (blame as data) and commits nothing anywhere', async () => {
    const m = new Mesh(4, 3, 1)
    m.tamper = (from, to, op, res) => {
      if (op !== 'refresh.round2' || from !== 3 || to !== 1) return res
      const r = res as ResponseBodies['refresh.round2']
      const w = (r.wrap[0] as Uint8Array).slice(); w[38] = (w[38] as number) ^ 1
      return { ...r, wrap: [w] }
    }
    await m.runAll()
    expect(m.status.get(1)).toMatchObject({ state: 'failed' })
    expect(m.status.get(1)?.detail).toMatch(/blame node\(s\) 3/)
    expect(m.committed.size).toBe(0)
    for (const i of [2, 3, 4]) expect(m.status.get(i)?.state).toBe('failed')
    // The failure is persisted without secrets: a restart does not deal again.
    const rec = decodeRefreshProgress(m.progress.get(1)?.get('f2-0123456789abcdef') as Uint8Array)
    expect(rec.phase).toBe(0xff)
    expect(rec.dealt.size + rec.round2.size).toBe(0)
    await m.start(1)
    expect(m.status.get(1)?.state).toBe('failed')
  }, 30_000)

  it('catches an equivocating dealer with the echo check', async () => {
    const m = new Mesh(4, 2, 1)
    // A second, equally VALID dealing of node 2 (from a throw-away ceremony of node 2 over the
    // same key): node 2 shows it to node 3 and its real one to everyone else.
    const alt = new Mesh(4, 2, 1)
    const altC = new RefreshCeremony(alt.env(2), 2, NONCE, BIND)
    alt.c.set(2, altC)
    void altC.run()
    await new Promise(resolve => setTimeout(resolve, 50))
    const second = altC.serveRound1('f2-0123456789abcdef')
    alt.ac.abort()
    m.tamper = (from, to, op, res) => (op === 'refresh.round1' && from === 2 && to === 3) ? second : res
    await m.runAll()
    for (const i of [1, 2, 3, 4]) expect(m.status.get(i)?.state).toBe('failed')
    expect(m.committed.size).toBe(0)
    expect([...m.status.values()].some(s => /echo check failed: .*node\(s\) 2\b/.test(s.detail ?? ''))).toBe(true)
  }, 30_000)

  it('a node that never comes up: the others fail at the deadline, nothing committed (no order stays stuck)', async () => {
    const m = new Mesh(4, 3, 1)
    m.deadlineMs = 800
    await Promise.all([1, 2, 3].map(async i => { await m.start(i) }))
    for (const i of [1, 2, 3]) expect(m.status.get(i)?.state).toBe('failed')
    expect([1, 2, 3].some(i => /no agreement within 1 s \(a node down or unreachable\?\)/.test(m.status.get(i)?.detail ?? ''))).toBe(true)
    expect(m.committed.size).toBe(0)
  }, 30_000)

  it('a node that crashes after dealing resumes with the very same dealings and sub-shares', async () => {
    const m = new Mesh(3, 2, 2)
    // Node 1 alone: it deals and persists, then "crashes" (abort) while waiting for the others.
    const ac = new AbortController()
    const c1 = new RefreshCeremony({ ...m.env(1), signal: ac.signal }, 2, NONCE, BIND)
    m.c.set(1, c1)
    const run1 = c1.run()
    await new Promise(resolve => setTimeout(resolve, 50))
    const before = c1.serveRound1('f2-0123456789abcdef')
    ac.abort()
    await run1
    const served: Array<ResponseBodies['refresh.round1']> = []
    m.tamper = (from, _to, op, res) => { if (op === 'refresh.round1' && from === 1) served.push(res as ResponseBodies['refresh.round1']); return res }
    await m.runAll()
    const after = (m.c.get(1) as RefreshCeremony)
    expect([...m.status.values()].map(s => s.state)).toEqual(['done', 'done', 'done'])
    expect(after).not.toBe(c1)
    // Node 2 verified node 1's dealings (the resumed ones) and everyone agreed: equal to the first ones.
    const session = 'f2-0123456789abcdef'
    expect(() => after.serveRound1(session)).toThrow(/no longer served/)
    expect(before.wrap.length).toBe(2)
    expect(served.length).toBeGreaterThan(0)
    const hex = (r: ResponseBodies['refresh.round1']): string => JSON.stringify([r.epochs, r.wrap.map(b => Buffer.from(b).toString('hex')), r.sign.map(b => Buffer.from(b).toString('hex'))])
    for (const r of served) expect(hex(r)).toBe(hex(before))
    expect(m.committed.get(2)?.length).toBe(2)
  }, 30_000)
})
