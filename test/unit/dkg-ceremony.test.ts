/**
 * The DKG ceremony state machine (node/dkg-ceremony.ts) on an in-memory mesh: real protocol/dkg.ts
 * crypto, real RPC body codecs (every answer goes through encodeResponse/decodeResponse), fake
 * disks and crashes. Covers what is slow or impossible to arrange with real processes: crashes
 * at many points, the retention rule (a committed node while the others restart), equivocation and
 * a bad dealer.
 */
import { describe, expect, it } from 'vitest'
import {
  DkgCeremony, DkgPhase, decodeDkgProgress, encodeDkgProgress, transcriptContext
} from '../../node/dkg-ceremony.ts'
import type { DkgEnv } from '../../node/dkg-ceremony.ts'
import type { DkgStatus } from '../../node/context.ts'
import { dkgStart, encodeDkgRound1, decodeDkgRound2 } from '../../protocol/dkg.ts'
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { Writer, toHex } from '../../protocol/bytes.ts'
import { encodeScalar, mod } from '../../protocol/group.ts'
import { keySetId } from '../../protocol/keyset.ts'
import { decodeResponse, encodeResponse } from '../../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'

const CLUSTER = '00112233445566778899aabbccddeeff'
const RID = '0123456789abcdef'

type Tamper = (to: number, from: number, op: RpcOp, res: unknown) => unknown

/** An in-memory mesh of n nodes with persistent "disks". */
class Mesh {
  readonly disks = new Map<number, Map<string, Uint8Array>>()
  readonly committed = new Map<number, string>()
  readonly live = new Map<number, { c: DkgCeremony, ac: AbortController, done: Promise<void>, status: DkgStatus }>()
  readonly logs: Array<{ node: number, msg: string, fields: Record<string, unknown> }> = []
  commitGate?: { node: number, open: Promise<void> }
  tamper?: Tamper
  /** Node whose next progress write (after the first) fails like a broken disk. */
  diskError?: number

  constructor (readonly n: number, readonly k: number) {}

  private serve (to: number, from: number, op: RpcOp, body: { session: string }): unknown {
    const node = this.live.get(to)
    // A stopped node is unreachable.
    if (node === undefined) throw new KeymeshError(ErrorCode.UNAVAILABLE, `node ${to} down`)
    const c = node.c
    switch (op) {
      case 'dkg.round1': return c.serveRound1(body.session)
      case 'dkg.echo': return c.serveEcho(body.session)
      case 'dkg.round2': return c.serveRound2(body.session, from)
      case 'dkg.result': return c.serveResult(body.session)
      default: throw new KeymeshError(ErrorCode.NOT_FOUND, 'op')
    }
  }

  /** A restarted node that has committed runs no ceremony: it answers dkg.result from its store. */
  private committedResponder (i: number): DkgCeremony {
    const id = this.committed.get(i) as string
    const notFound = (): never => { throw new KeymeshError(ErrorCode.NOT_FOUND, 'complete') }
    return { session: 'e1-a0', serveRound1: notFound, serveEcho: notFound, serveRound2: notFound, serveResult: () => ({ keySetId: id }) } as unknown as DkgCeremony
  }

  start (i: number): void {
    if (!this.disks.has(i)) this.disks.set(i, new Map())
    const disk = this.disks.get(i) as Map<string, Uint8Array>
    const ac = new AbortController()
    const holder = { status: { state: 'idle' } as DkgStatus }
    if (this.committed.has(i)) {
      this.live.set(i, { c: this.committedResponder(i), ac, done: Promise.resolve(), status: { state: 'done' } })
      return
    }
    const env: DkgEnv = {
      clusterId: CLUSTER,
      selfIndex: i,
      threshold: this.k,
      n: this.n,
      call: async <O extends RpcOp>(to: number, op: O, body: RequestBodies[O]): Promise<ResponseBodies[O]> => {
        await new Promise(resolve => setTimeout(resolve, 1))
        if (ac.signal.aborted) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'self down')
        let res = this.serve(to, i, op, body as { session: string }) as ResponseBodies[O]
        if (this.tamper !== undefined) res = this.tamper(to, i, op, res) as ResponseBodies[O]
        // Through the real wire codec, as between processes.
        return decodeResponse(op, RID, encodeResponse(op, RID, res))
      },
      loadProgress: async (s) => disk.get(s),
      saveProgress: async (s, r) => {
        if (ac.signal.aborted) throw new Error('crashed')
        if (this.diskError === i && disk.has(s)) { this.diskError = undefined; throw new Error('EIO: disk error') }
        disk.set(s, new Uint8Array(r))
      },
      deleteProgress: async (s) => { disk.delete(s) },
      commit: async (_e, ks) => {
        if (this.commitGate?.node === i) await this.commitGate.open
        if (ac.signal.aborted) throw new Error('crashed')
        disk.clear() // commitEpoch deletes the session's entries in the same batch
        this.committed.set(i, keySetId(ks))
      },
      log: (msg, fields) => { this.logs.push({ node: i, msg, fields }) },
      setStatus: (s) => { holder.status = s },
      signal: ac.signal
    }
    const c = new DkgCeremony(env)
    const entry = { c, ac, done: c.run(), status: holder.status }
    Object.defineProperty(entry, 'status', { get: () => holder.status })
    this.live.set(i, entry)
  }

  crash (i: number): void {
    const x = this.live.get(i)
    x?.ac.abort()
    this.live.delete(i)
  }

  status (i: number): DkgStatus { return this.live.get(i)?.status ?? { state: 'idle' } }

  async settle (nodes: number[], timeoutMs = 20_000): Promise<DkgStatus[]> {
    const until = Date.now() + timeoutMs
    const keep = setInterval(() => {}, 1000)
    try {
      for (;;) {
        const st = nodes.map(i => this.status(i))
        if (st.every(s => s.state === 'done' || s.state === 'failed')) return st
        if (Date.now() > until) throw new Error(`not settled: ${JSON.stringify(st)}`)
        await new Promise(resolve => setTimeout(resolve, 10))
      }
    } finally { clearInterval(keep) }
  }

  stopAll (): void { for (const i of [...this.live.keys()]) this.crash(i) }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, j) => j + 1)

describe('DKG ceremony (in-memory mesh)', () => {
  it('completes with one key set; every node commits; no progress record is left', async () => {
    const m = new Mesh(5, 3)
    const addressed: string[] = []
    m.tamper = (to, from, op, res) => {
      if (op === 'dkg.round2') {
        const r = res as ResponseBodies['dkg.round2']
        const w = decodeDkgRound2(r.wrap)
        const g = decodeDkgRound2(r.sign)
        addressed.push(`${w.from}>${w.to},${g.from}>${g.to}` === `${to}>${from},${to}>${from}` ? 'ok' : `${to}>${from} got ${w.from}>${w.to}`)
      }
      return res
    }
    for (const i of range(5)) m.start(i)
    const st = await m.settle(range(5))
    // Every round-2 answer carried the packages of the callee addressed to the caller, nothing else.
    expect(addressed.length).toBeGreaterThanOrEqual(20)
    expect(addressed.filter(a => a !== 'ok')).toEqual([])
    expect(st.map(s => s.state)).toEqual(Array(5).fill('done'))
    expect(new Set(m.committed.values()).size).toBe(1)
    expect(m.committed.size).toBe(5)
    for (const d of m.disks.values()) expect(d.size).toBe(0)
    m.stopAll()
  })

  it('survives crashes at many points (and restarts with the same packages)', async () => {
    for (const [victim, delay] of [[2, 5], [5, 40], [1, 90], [3, 150]] as const) {
      const m = new Mesh(4, 3)
      for (const i of range(4)) m.start(i)
      await new Promise(resolve => setTimeout(resolve, delay))
      const before = m.disks.get(victim)?.get('e1-a0')
      m.crash(victim)
      await new Promise(resolve => setTimeout(resolve, 50))
      m.start(victim)
      const st = await m.settle(range(4))
      expect(st.map(s => s.state), `victim ${victim} after ${delay} ms`).toEqual(Array(4).fill('done'))
      expect(new Set(m.committed.values()).size).toBe(1)
      if (before !== undefined) {
        // The resumed node re-used its persisted round-1 packages (no equivocation happened).
        expect(m.logs.some(l => l.node === victim && l.msg === 'dkg resumed')).toBe(true)
      }
      m.stopAll()
    }
  })

  it('a node that committed while the others restart does not block them (retention rule)', async () => {
    const m = new Mesh(4, 2)
    let open!: () => void
    m.commitGate = { node: 4, open: new Promise<void>(resolve => { open = resolve }) }
    for (const i of range(4)) m.start(i)
    await m.settle([1, 2, 3])
    expect(m.committed.size).toBe(3)
    // Node 4 served its result but has not committed; now everybody restarts.
    for (const i of range(4)) m.crash(i)
    open()
    for (const i of range(4)) m.start(i)
    const st = await m.settle(range(4))
    expect(st.map(s => s.state)).toEqual(Array(4).fill('done'))
    expect(m.committed.size).toBe(4)
    expect(new Set(m.committed.values()).size).toBe(1)
    expect(m.logs.some(l => l.node === 4 && l.msg === 'dkg resumed' && l.fields.phase === DkgPhase.FINISHED)).toBe(true)
    m.stopAll()
  })

  it('a local error halts one node without failing the session; after a restart it completes', async () => {
    const m = new Mesh(3, 2)
    m.diskError = 2
    for (const i of range(3)) m.start(i)
    const until = Date.now() + 10_000
    while (m.status(2).state !== 'failed') {
      if (Date.now() > until) throw new Error('node 2 did not halt')
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    expect(m.status(2).detail).toMatch(/local error/)
    await new Promise(resolve => setTimeout(resolve, 300))
    // The peers see node 2 as unavailable and keep waiting; nothing was persisted as failed.
    expect([m.status(1).state, m.status(3).state]).toEqual(['running', 'running'])
    expect(decodeDkgProgress(m.disks.get(2)?.get('e1-a0') as Uint8Array).phase).not.toBe(DkgPhase.FAILED)
    m.crash(2)
    m.start(2)
    const st = await m.settle(range(3))
    expect(st.map(s => s.state)).toEqual(['done', 'done', 'done'])
    expect(new Set(m.committed.values()).size).toBe(1)
    m.stopAll()
  })

  it('equivocation in round 1 is caught by the echo check, names the sender, commits nothing', async () => {
    const m = new Mesh(4, 3)
    const fake = encodeDkgRound1(dkgStart(3, 3, 4).round1)
    const fake2 = encodeDkgRound1(dkgStart(3, 3, 4).round1)
    // Node 3 shows node 1 a different round-1 package (wrap and sign).
    m.tamper = (to, from, op, res) => (to === 3 && from === 1 && op === 'dkg.round1') ? { wrap: fake, sign: fake2 } : res
    for (const i of range(4)) m.start(i)
    const st = await m.settle(range(4))
    expect(st.map(s => s.state)).toEqual(Array(4).fill('failed'))
    expect(m.committed.size).toBe(0)
    for (const i of [1, 2, 4]) {
      expect(m.status(i).detail).toMatch(/echo check failed.*node\(s\) 3\b/)
      expect(m.logs.find(l => l.node === i && l.msg === 'dkg failed')?.fields.blame).toEqual([3])
    }
    // Failure is persisted without secrets; a restart stays failed (no fresh packages).
    const rec = decodeDkgProgress(m.disks.get(1)?.get('e1-a0') as Uint8Array)
    expect(rec.phase).toBe(DkgPhase.FAILED)
    expect(rec.wrapState.length + rec.signState.length + rec.round2.size).toBe(0)
    m.crash(1)
    m.start(1)
    expect((await m.settle([1]))[0]?.state).toBe('failed')
    m.stopAll()
  })

  it('a bad round-2 share is blamed on its dealer; the others learn the session failed', async () => {
    const m = new Mesh(4, 3)
    // Node 2 deals node 4 a wrong sign share (still a well-formed package).
    m.tamper = (to, from, op, res) => {
      if (to !== 2 || from !== 4 || op !== 'dkg.round2') return res
      const r = res as ResponseBodies['dkg.round2']
      const d = decodeDkgRound2(r.sign)
      const bad = new Writer().raw(r.sign.subarray(0, 7)).raw(encodeScalar(mod(d.share + 1n))).bytes()
      return { wrap: r.wrap, sign: bad }
    }
    for (const i of range(4)) m.start(i)
    const st = await m.settle(range(4))
    expect(st.map(s => s.state)).toEqual(Array(4).fill('failed'))
    expect(m.committed.size).toBe(0)
    expect(m.logs.find(l => l.node === 4 && l.msg === 'dkg failed')?.fields.blame).toEqual([2])
    expect(m.status(1).detail).toMatch(/node 4 reports that session e1-a0 failed/)
    m.stopAll()
  })

  it('serves round 2 only to its addressee and only after the echo check; other sessions are NOT_FOUND', async () => {
    const m = new Mesh(3, 2)
    for (const i of range(3)) m.start(i)
    const c = m.live.get(1)?.c as DkgCeremony
    expect(() => c.serveRound2('e1-a0', 2)).toThrow(expect.objectContaining({ code: ErrorCode.UNAVAILABLE }))
    expect(() => c.serveResult('e1-a0')).toThrow(expect.objectContaining({ code: ErrorCode.UNAVAILABLE }))
    expect(() => c.serveRound1('e1-a1')).toThrow(expect.objectContaining({ code: ErrorCode.NOT_FOUND }))
    expect(() => c.serveRound2('e1-a0', 1)).toThrow(expect.objectContaining({ code: ErrorCode.NOT_AUTHORIZED }))
    expect(() => c.serveRound2('e1-a0', 7)).toThrow(expect.objectContaining({ code: ErrorCode.NOT_AUTHORIZED }))
    await m.settle(range(3))
    // After commit: the result is still served, the secret round-2 packages are gone.
    expect(c.serveResult('e1-a0').keySetId).toBe(m.committed.get(1))
    expect(() => c.serveRound2('e1-a0', 2)).toThrow(expect.objectContaining({ code: ErrorCode.NOT_FOUND }))
    m.stopAll()
  })
})

describe('progress record codec', () => {
  it('round-trips and rejects malformed records', () => {
    const { state } = dkgStart(1, 2, 3)
    const rec = {
      session: 'e1-a0',
      phase: DkgPhase.ROUND2,
      wrapState: new Uint8Array([1, 2, 3]),
      signState: new Uint8Array([4]),
      round1: new Map([[1, { wrap: encodeDkgRound1(state.round1), sign: new Uint8Array([9]) }]]),
      round2: new Map([[3, { wrap: new Uint8Array([7]), sign: new Uint8Array([8]) }]]),
      detail: ''
    }
    const b = encodeDkgProgress(rec)
    expect(toHex(encodeDkgProgress(decodeDkgProgress(b)))).toBe(toHex(b))
    expect(() => decodeDkgProgress(b.subarray(0, b.length - 1))).toThrow(KeymeshError)
    expect(() => decodeDkgProgress(new Uint8Array([...b, 0]))).toThrow(KeymeshError)
    const v2 = new Uint8Array(b); v2[4] = 2
    expect(() => decodeDkgProgress(v2)).toThrow(expect.objectContaining({ code: ErrorCode.UNSUPPORTED_VERSION }))
    const badPhase = new Uint8Array(b); badPhase[4 + 1 + 2 + 5] = 7
    expect(() => decodeDkgProgress(badPhase)).toThrow(expect.objectContaining({ code: ErrorCode.BAD_INPUT }))
  })

  it('transcript context separates cluster, session and key', () => {
    const a = toHex(transcriptContext(CLUSTER, 'e1-a0', 'wrap'))
    expect(a).toBe(CLUSTER + '00000005' + toHex(new TextEncoder().encode('e1-a0')) + '01')
    expect(toHex(transcriptContext(CLUSTER, 'e1-a0', 'sign'))).not.toBe(a)
    expect(toHex(transcriptContext(CLUSTER, 'e1-a1', 'wrap'))).not.toBe(a)
  })
})
