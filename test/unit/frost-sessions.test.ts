import { describe, expect, it } from 'vitest'
import { FrostSessions } from '../../node/frost-sessions.ts'
import { ErrorCode, KeymeshError } from '../../protocol/errors.ts'

function codeOf (f: () => unknown): string | undefined {
  try { f() } catch (e) { return e instanceof KeymeshError ? e.code : 'FOREIGN' }
  return undefined
}

function table (now: { t: number }, disposed: number[][] = []): FrostSessions<number[]> {
  return new FrostSessions<number[]>({ now: () => now.t, dispose: n => disposed.push(n) })
}

const C = new Uint8Array([1, 2, 3])

describe('FrostSessions', () => {
  it('hands out nonces exactly once; a replay is CONFLICT', () => {
    const clock = { t: 0 }
    const s = table(clock)
    s.put('peerA', 's1', [7], C)
    const got = s.take('peerA', 's1')
    expect(got.nonces).toEqual([7])
    expect(got.commitment).toBe(C)
    expect(codeOf(() => s.take('peerA', 's1'))).toBe(ErrorCode.CONFLICT)
    // re-committing a used session id is refused too (no second nonce pair under one id)
    expect(codeOf(() => s.put('peerA', 's1', [8], C))).toBe(ErrorCode.CONFLICT)
  })

  it('remembers the key set generation a session was committed under', () => {
    const s = table({ t: 0 })
    s.put('peerA', 'g1', [1], C, 'ab'.repeat(32))
    s.put('peerA', 'g2', [2], C)
    expect(s.take('peerA', 'g1').keySetId).toBe('ab'.repeat(32))
    expect(s.take('peerA', 'g2').keySetId).toBeUndefined()
  })

  it('unknown session is NOT_FOUND; sessions are per peer', () => {
    const clock = { t: 0 }
    const s = table(clock)
    expect(codeOf(() => s.take('peerA', 'nope'))).toBe(ErrorCode.NOT_FOUND)
    s.put('peerA', 's1', [1], C)
    expect(codeOf(() => s.take('peerB', 's1'))).toBe(ErrorCode.NOT_FOUND)
    // peer B's failed attempt did not consume A's session
    expect(s.take('peerA', 's1').nonces).toEqual([1])
  })

  it('a live duplicate commit is CONFLICT and keeps the first nonces', () => {
    const clock = { t: 0 }
    const s = table(clock)
    s.put('p', 's', [1], C)
    expect(codeOf(() => s.put('p', 's', [2], C))).toBe(ErrorCode.CONFLICT)
    expect(s.take('p', 's').nonces).toEqual([1])
  })

  it('expires after 60 s and disposes the nonces', () => {
    const clock = { t: 1000 }
    const disposed: number[][] = []
    const s = table(clock, disposed)
    s.put('p', 's', [9], C)
    clock.t += 59_999
    expect(s.outstanding('p')).toBe(1)
    clock.t += 1
    expect(codeOf(() => s.take('p', 's'))).toBe(ErrorCode.NOT_FOUND)
    expect(disposed).toEqual([[9]])
    expect(s.outstanding('p')).toBe(0)
  })

  it('caps outstanding sessions per peer at 64 (BUSY), others unaffected', () => {
    const clock = { t: 0 }
    const s = table(clock)
    for (let i = 0; i < 64; i++) s.put('p', `s${i}`, [i], C)
    expect(codeOf(() => s.put('p', 's64', [64], C))).toBe(ErrorCode.BUSY)
    s.put('q', 's0', [0], C) // another peer has its own budget
    s.take('p', 's3') // using one frees a slot
    s.put('p', 's64', [64], C)
    expect(s.outstanding('p')).toBe(64)
    clock.t += 60_000 // expiry frees every slot
    s.put('p', 'fresh', [1], C)
    expect(s.outstanding('p')).toBe(1)
  })

  it('tombstones expire, so memory stays bounded', () => {
    const clock = { t: 0 }
    const s = new FrostSessions<number[]>({ now: () => clock.t, maxTombstonesPerPeer: 2 })
    for (let i = 0; i < 5; i++) { s.put('p', `s${i}`, [i], C); s.take('p', `s${i}`) }
    // only the 2 newest used ids are remembered
    expect(codeOf(() => s.take('p', 's4'))).toBe(ErrorCode.CONFLICT)
    expect(codeOf(() => s.take('p', 's0'))).toBe(ErrorCode.NOT_FOUND)
    clock.t += 60_001
    expect(codeOf(() => s.take('p', 's4'))).toBe(ErrorCode.NOT_FOUND)
  })

  it('clear disposes every live nonce pair', () => {
    const clock = { t: 0 }
    const disposed: number[][] = []
    const s = table(clock, disposed)
    s.put('p', 'a', [1], C)
    s.put('q', 'b', [2], C)
    s.clear()
    expect(disposed.sort()).toEqual([[1], [2]])
    expect(codeOf(() => s.take('p', 'a'))).toBe(ErrorCode.NOT_FOUND)
  })
})
