/**
 * The client's quorum machinery without a network: Hedger (hedging, replacement on failure,
 * deadline, fail-fast when a quorum is impossible) and quorumError (which error the user sees).
 */
import { describe, expect, it } from 'vitest'
import { Hedger, candidatesFor, quorumError } from '../../client/quorum.ts'
import { ErrorCode, KeymeshError, NotAuthorizedError, QuorumUnavailableError } from '../../protocol/errors.ts'

const sleep = async (ms: number): Promise<void> => await new Promise(r => setTimeout(r, ms))

describe('Hedger', () => {
  it('asks k nodes first and resolves with their answers', async () => {
    const asked: number[] = []
    const h = new Hedger<number>([1, 2, 3, 4, 5], 3, 5, 1000, 500, async (i) => { asked.push(i); return i * 10 })
    const got = await h.want(3)
    h.close()
    expect([...got.keys()].sort()).toEqual([1, 2, 3])
    expect(asked).toEqual([1, 2, 3])
  })

  it('replaces a failed node at once and records the failure', async () => {
    const h = new Hedger<number>([1, 2, 3, 4, 5], 3, 5, 1000, 500, async (i) => {
      if (i === 2) throw new KeymeshError(ErrorCode.UNAVAILABLE, `node ${i}: connection refused`)
      return i
    })
    const got = await h.want(3)
    h.close()
    expect([...got.keys()].sort()).toEqual([1, 3, 4])
    expect(h.failures).toEqual([{ index: 2, code: ErrorCode.UNAVAILABLE, detail: 'connection refused' }])
  })

  it('hedges past a slow node after hedgeMs', async () => {
    const t0 = Date.now()
    const h = new Hedger<number>([1, 2, 3, 4, 5], 3, 5, 5000, 30, async (i, signal) => {
      if (i === 1) await new Promise((_, rej) => signal.addEventListener('abort', () => rej(new Error('aborted'))))
      return i
    })
    const got = await h.want(3)
    h.close()
    expect(Date.now() - t0).toBeLessThan(1000)
    expect([...got.keys()].sort()).toEqual([2, 3, 4])
  })

  it('fails fast with QuorumUnavailableError listing every node when fewer than k can answer', async () => {
    const h = new Hedger<number>([1, 2, 3, 4, 5], 3, 5, 5000, 500, async (i) => {
      if (i <= 3) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'down')
      await sleep(20)
      return i
    })
    const t0 = Date.now()
    const err = await h.want(3).catch((e: unknown) => e)
    h.close()
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    const q = err as QuorumUnavailableError
    expect(q.got).toBe(2)
    expect(q.failures.map(f => f.index)).toEqual([1, 2, 3])
  })

  it('never hangs: rejects at the deadline with the silent nodes as TIMEOUT', async () => {
    const h = new Hedger<number>([1, 2, 3], 3, 3, 100, 20, async (i, signal) => {
      if (i === 3) await new Promise((_, rej) => signal.addEventListener('abort', () => rej(new Error('aborted'))))
      return i
    })
    const t0 = Date.now()
    const err = await h.want(3).catch((e: unknown) => e)
    h.close()
    expect(Date.now() - t0).toBeLessThan(500)
    expect(err).toBeInstanceOf(QuorumUnavailableError)
    expect((err as QuorumUnavailableError).failures).toEqual([{ index: 3, code: ErrorCode.TIMEOUT, detail: 'no answer before the operation deadline' }])
  })

  it('drop() removes a blamed answer; the next want() brings a spare', async () => {
    const h = new Hedger<number>([1, 2, 3, 4], 3, 4, 1000, 500, async i => i)
    await h.want(3)
    h.drop(2, ErrorCode.VERIFICATION_FAILED, 'bad proof')
    const got = await h.want(3)
    h.close()
    expect([...got.keys()].sort()).toEqual([1, 3, 4])
    expect(h.failures).toContainEqual({ index: 2, code: ErrorCode.VERIFICATION_FAILED, detail: 'bad proof' })
  })
})

describe('quorumError', () => {
  const f = (index: number, code: ErrorCode): { index: number, code: ErrorCode, detail: string } => ({ index, code, detail: 'x' })
  it('is NotAuthorized when more than n−k nodes refused', () => {
    expect(quorumError(3, 0, [f(1, 'NOT_AUTHORIZED'), f(2, 'NOT_AUTHORIZED'), f(3, 'NOT_AUTHORIZED')], 5)).toBeInstanceOf(NotAuthorizedError)
  })
  it('is BAD_INPUT when more than n−k nodes rejected the request', () => {
    expect(quorumError(3, 0, [f(1, 'BAD_INPUT'), f(2, 'BAD_INPUT'), f(3, 'BAD_INPUT')], 5).code).toBe(ErrorCode.BAD_INPUT)
  })
  it('is QuorumUnavailable otherwise, sorted by node', () => {
    const e = quorumError(3, 2, [f(3, 'UNAVAILABLE'), f(1, 'NOT_AUTHORIZED'), f(2, 'TIMEOUT')], 5)
    expect(e).toBeInstanceOf(QuorumUnavailableError)
    expect((e as QuorumUnavailableError).failures.map(x => x.index)).toEqual([1, 2, 3])
  })
})

describe('candidatesFor', () => {
  it('puts the preferred order first, drops excluded and unknown nodes, keeps every other node once', () => {
    const c = candidatesFor([1, 2, 3, 4, 5], [2], [5, 2, 9, 5, 1])
    expect(c.slice(0, 2)).toEqual([5, 1])
    expect([...c].sort()).toEqual([1, 3, 4, 5])
  })
})
