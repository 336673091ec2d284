/**
 * The simulation's fault-injecting TCP proxy on its own: pass-through, added latency (and jitter
 * ordering), partition (black hole and reset modes, heal), dropped connections, bandwidth limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import { LinkProxy } from '../../simulation/proxy.ts'

let echo: Server
let echoPort = 0
const proxies: LinkProxy[] = []

beforeAll(async () => {
  echo = createServer(s => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', () => { resolve() }))
  echoPort = (echo.address() as AddressInfo).port
})
afterAll(async () => {
  await Promise.all(proxies.map(async p => { await p.close() }))
  await new Promise<void>(resolve => echo.close(() => { resolve() }))
})

async function proxy (): Promise<LinkProxy> {
  const p = await LinkProxy.start('test', echoPort)
  proxies.push(p)
  return p
}

async function dial (port: number): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => { resolve(s) })
    s.once('error', reject)
  })
}

/** Writes `data` and resolves with the time until all of it came back, or rejects after timeoutMs / on close. */
async function roundTrip (s: Socket, data: Buffer, timeoutMs = 3_000): Promise<number> {
  const t0 = performance.now()
  return await new Promise((resolve, reject) => {
    let got = 0
    const onData = (d: Buffer): void => {
      got += d.length
      if (got >= data.length) { cleanup(); resolve(performance.now() - t0) }
    }
    const onClose = (): void => { cleanup(); reject(new Error('closed')) }
    const t = setTimeout(() => { cleanup(); reject(new Error('timeout')) }, timeoutMs)
    const cleanup = (): void => { clearTimeout(t); s.off('data', onData); s.off('close', onClose) }
    s.on('data', onData)
    s.once('close', onClose)
    s.write(data)
  })
}

describe('simulation proxy', () => {
  it('forwards bytes both ways unchanged', async () => {
    const p = await proxy()
    const s = await dial(p.port)
    const msg = Buffer.from('hello through the proxy')
    const back: Buffer[] = []
    s.on('data', (d: Buffer) => back.push(d))
    await roundTrip(s, msg)
    expect(Buffer.concat(back).toString()).toBe(msg.toString())
    expect(p.stats.bytesForwarded).toBe(2 * msg.length)
    s.destroy()
  })

  it('adds latency in both directions and keeps chunk order under jitter', async () => {
    const p = await proxy()
    const s = await dial(p.port)
    const base = await roundTrip(s, Buffer.from('x'))
    p.set({ latencyMs: 100 })
    const slow = await roundTrip(s, Buffer.from('y'))
    expect(slow).toBeGreaterThanOrEqual(195) // 100 ms each way
    expect(slow).toBeLessThan(base + 600)
    p.set({ latencyMs: 5, jitterMs: 40 })
    const back: Buffer[] = []
    s.on('data', (d: Buffer) => back.push(d))
    const parts = Array.from({ length: 20 }, (_, i) => Buffer.from(`<${i}>`))
    for (const part of parts) { s.write(part); await new Promise(resolve => setTimeout(resolve, 2)) }
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(Buffer.concat(back).toString()).toBe(Buffer.concat(parts).toString())
    p.heal()
    const fast = await roundTrip(s, Buffer.from('z'))
    expect(fast).toBeLessThan(100)
    s.destroy()
  })

  it('partition: resets open connections, black-holes new ones, heals', async () => {
    const p = await proxy()
    const before = await dial(p.port)
    await roundTrip(before, Buffer.from('a'))
    const closed = new Promise<void>(resolve => { before.once('close', () => { resolve() }) })
    before.on('error', () => {})
    p.set({ partitioned: true })
    await closed // the open connection was reset
    const during = await dial(p.port) // TCP accept still happens: the dialer cannot tell
    during.on('error', () => {})
    await expect(roundTrip(during, Buffer.from('b'), 300)).rejects.toThrow('timeout') // nothing comes back
    expect(p.stats.blackholed).toBeGreaterThanOrEqual(1)
    const duringClosed = new Promise<void>(resolve => { during.once('close', () => { resolve() }) })
    p.set({ partitioned: false })
    await duringClosed // healing releases black-holed sockets
    const after = await dial(p.port)
    expect(await roundTrip(after, Buffer.from('c'))).toBeLessThan(1_000)
    after.destroy()
  })

  it('partition in reset mode refuses new connections at once', async () => {
    const p = await proxy()
    p.set({ partitioned: true, partitionMode: 'reset' })
    // Either the connect itself sees the RST, or the first exchange does.
    const outcome = await dial(p.port).then(async s => {
      s.on('error', () => {})
      return await roundTrip(s, Buffer.from('x'), 2_000).then(() => 'answered', (e: Error) => e.message)
    }, (e: NodeJS.ErrnoException) => e.code)
    expect(['ECONNRESET', 'closed']).toContain(outcome)
  })

  it('drop: resetConnections() resets every open connection; new ones work', async () => {
    const p = await proxy()
    const a = await dial(p.port)
    const b = await dial(p.port)
    a.on('error', () => {})
    b.on('error', () => {})
    await roundTrip(a, Buffer.from('1'))
    await roundTrip(b, Buffer.from('2'))
    expect(p.openConnections).toBe(2)
    const closed = Promise.all([a, b].map(async s => await new Promise<void>(resolve => { s.once('close', () => { resolve() }) })))
    expect(p.resetConnections()).toBe(2)
    await closed
    expect(p.openConnections).toBe(0)
    const c = await dial(p.port)
    expect(await roundTrip(c, Buffer.from('3'))).toBeLessThan(1_000)
    c.destroy()
  })

  it('limits bandwidth per direction', async () => {
    const p = await proxy()
    const s = await dial(p.port)
    await roundTrip(s, Buffer.from('warm'))
    p.set({ bytesPerSec: 100_000 })
    const ms = await roundTrip(s, Buffer.alloc(40_000, 1), 5_000)
    // 40 kB at 100 kB/s = 400 ms one way; the echo's return direction is limited too (pipelined).
    expect(ms).toBeGreaterThanOrEqual(380)
    expect(ms).toBeLessThan(2_500)
    p.heal()
    expect(await roundTrip(s, Buffer.alloc(40_000, 2), 5_000)).toBeLessThan(300)
    s.destroy()
  })

  it('a dead target shows up as a reset, not a hang', async () => {
    const p = await LinkProxy.start('dead', 1) // nothing listens on port 1
    proxies.push(p)
    const s = await dial(p.port)
    s.on('error', () => {})
    await expect(roundTrip(s, Buffer.from('x'), 2_000)).rejects.toThrow('closed')
  })
})
