/**
 * Fuzzing the RPC server of a running node with thousands of random and mutated frames: random
 * bytes, truncated JSON, wrong types, unknown fields and ops, bad versions, deep nesting, broken
 * length prefixes and oversize frames. The node must answer each with a well-formed error
 * response (or reset the stream when no frame could be read), keep answering valid `status`
 * requests throughout, and never crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_RPC_MESSAGE } from '../../protocol/constants.ts'
import { encodeRequest, RPC_OPS } from '../../protocol/rpc.ts'
import { isErrorCode } from '../../protocol/errors.ts'
import { startTestCluster } from '../helpers/cluster.ts'
import type { TestClient, TestCluster } from '../helpers/cluster.ts'

let c: TestCluster
let cl: TestClient

beforeAll(async () => {
  c = await startTestCluster({ n: 2, threshold: 2 })
  cl = await c.client((await import('../../node/identity.ts').then(m => m.loadClientIdentity(c.clientIdentityPaths[1] as string))).peerKey)
})
afterAll(async () => { await c?.cleanup() })

// Deterministic PRNG (mulberry32) so a failure is reproducible.
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const te = new TextEncoder()
const td = new TextDecoder()

const VALID: Array<Record<string, unknown>> = [
  { v: 1, op: 'status', id: '0123456789abcdef', ttl: 5000, body: {} },
  { v: 1, op: 'keyset.get', id: '0123456789abcdef', ttl: 5000, body: { epoch: 1 } },
  { v: 1, op: 'partial', id: '0123456789abcdef', ttl: 5000, body: { epoch: 1, envelope: 'AAAA', recipient: 'A'.repeat(43) } },
  { v: 1, op: 'partial.batch', id: '0123456789abcdef', ttl: 5000, body: { epoch: 1, envelopes: ['AAAA'], recipient: 'A'.repeat(43) } },
  { v: 1, op: 'frost.commit', id: '0123456789abcdef', ttl: 5000, body: { epoch: 1, session: '0'.repeat(32) } },
  { v: 1, op: 'frost.sign', id: '0123456789abcdef', ttl: 5000, body: { epoch: 1, session: '0'.repeat(32), message: 'AAAA', commitments: ['AAAA'] } },
  { v: 1, op: 'dkg.round1', id: '0123456789abcdef', ttl: 5000, body: { session: 'e1-a0' } }
]

function randomValue (r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 12)
  switch (k) {
    case 0: return null
    case 1: return r() < 0.5
    case 2: return Math.floor(r() * 2 ** 40) - 2 ** 39
    case 3: return r() * 1e308 * (r() < 0.5 ? -1 : 1)
    case 4: return ''
    case 5: return 'x'.repeat(Math.floor(r() * 300))
    case 6: return RPC_OPS[Math.floor(r() * RPC_OPS.length)]
    case 7: return depth < 3 ? [randomValue(r, depth + 1), randomValue(r, depth + 1)] : []
    case 8: return depth < 3 ? { a: randomValue(r, depth + 1), __proto__x: 1 } : {}
    case 9: return 'e1-a0'
    case 10: return '0123456789abcdef'
    default: return Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256))).toString('base64url')
  }
}

function mutate (r: () => number): Uint8Array {
  const base = structuredClone(VALID[Math.floor(r() * VALID.length)]) as Record<string, unknown>
  const kind = Math.floor(r() * 10)
  const keys = Object.keys(base)
  const body = base.body as Record<string, unknown>
  switch (kind) {
    case 0: base[keys[Math.floor(r() * keys.length)] as string] = randomValue(r); break
    case 1: delete base[keys[Math.floor(r() * keys.length)] as string]; break
    case 2: base[`extra${Math.floor(r() * 5)}`] = randomValue(r); break
    case 3: { const bk = Object.keys(body); if (bk.length > 0) body[bk[Math.floor(r() * bk.length)] as string] = randomValue(r); else body.x = 1; break }
    case 4: body[`unknown${Math.floor(r() * 3)}`] = randomValue(r); break
    case 5: base.op = `op.${Math.floor(r() * 1000)}`; break
    case 6: base.v = Math.floor(r() * 5); break
    case 7: base.ttl = [0, -1, 60_001, 1.5, 'x', 1e20][Math.floor(r() * 6)]; break
    case 8: base.id = ['', 'ABCDEF0123456789', '0123456789abcde', 7][Math.floor(r() * 4)]; break
    default: {
      // truncate the JSON text anywhere
      const s = JSON.stringify(base)
      return te.encode(s.slice(0, Math.floor(r() * s.length)))
    }
  }
  return te.encode(JSON.stringify(base))
}

function randomFrame (r: () => number): Uint8Array {
  const k = Math.floor(r() * 10)
  if (k < 2) return Uint8Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256))
  if (k === 2) return te.encode(JSON.stringify(randomValue(r)))
  if (k === 3) return te.encode('[' .repeat(1 + Math.floor(r() * 20000)))
  if (k === 4) return new Uint8Array([0xef, 0xbb, 0xbf, ...te.encode(JSON.stringify(VALID[0]))]) // BOM
  return mutate(r)
}

/** Checks a response is one well-formed frame: {v:1,id,ok:false,error:{code}} or ok:true. */
function checkResponse (res: Uint8Array): string {
  const j = JSON.parse(td.decode(res)) as { v: number, ok: boolean, id: string, error?: { code: unknown } }
  expect(j.v).toBe(1)
  expect(j.id).toMatch(/^[0-9a-f]{16}$/)
  if (j.ok) return 'OK'
  expect(isErrorCode(j.error?.code)).toBe(true)
  return String(j.error?.code)
}

describe('RPC fuzzing against a running node', () => {
  it('answers thousands of malformed frames with typed errors and keeps serving status', async () => {
    const r = rng(0x5eed)
    const TOTAL = 3000
    const CONCURRENCY = 24
    const codes = new Map<string, number>()
    let sent = 0
    let statusChecks = 0
    const worker = async (): Promise<void> => {
      while (sent < TOTAL) {
        const n = sent++
        if (n % 100 === 0) {
          const s = await c.status(1)
          expect(s.index).toBe(1)
          statusChecks++
        }
        const frame = randomFrame(r)
        try {
          const code = checkResponse(await cl.raw(1, frame, { timeoutMs: 15_000 }))
          codes.set(code, (codes.get(code) ?? 0) + 1)
        } catch (e) {
          if ((e as { constructor?: { name?: string } }).constructor?.name === 'AssertionError') throw e
          codes.set('reset', (codes.get('reset') ?? 0) + 1)
          const k = `reset:${(e as Error).name}`
          codes.set(k, (codes.get(k) ?? 0) + 1)
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    console.log('fuzz result codes', JSON.stringify(Object.fromEntries(codes)))
    expect(statusChecks).toBeGreaterThanOrEqual(TOTAL / 100)
    const bad = codes.get('BAD_INPUT') ?? 0
    expect(bad).toBeGreaterThan(TOTAL / 2)
    // a valid-looking but malformed frame never gets an OK, except a status request left intact
    expect((codes.get('reset') ?? 0)).toBeLessThan(TOTAL / 100)
    expect(c.nodes[0]?.exit).toBeUndefined()
  })

  it('rejects broken length prefixes and oversize frames, then still serves', async () => {
    // a prefix announcing MAX_RPC_MESSAGE + 1 bytes: refused before reading the body
    const big = MAX_RPC_MESSAGE + 1
    const varint: number[] = []
    for (let v = big; ; v = Math.floor(v / 128)) { if (v < 128) { varint.push(v); break } varint.push((v & 0x7f) | 0x80) }
    const raws = [
      new Uint8Array(varint),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // varint overflow
      new Uint8Array([0x05, 0x7b]), // announces 5 bytes, sends 1, closes
      new Uint8Array([])
    ]
    for (const b of raws) {
      try { checkResponse(await cl.raw(1, b, { prefixed: false, timeoutMs: 15_000 })) } catch { /* reset is fine */ }
      expect((await c.status(1)).index).toBe(1)
    }
    // a real oversize frame (4 MiB + 16 bytes of JSON-ish data)
    const huge = new Uint8Array(MAX_RPC_MESSAGE + 16).fill(0x20)
    try { checkResponse(await cl.raw(1, huge, { timeoutMs: 20_000 })) } catch { /* reset is fine */ }
    expect((await c.status(1)).index).toBe(1)
    // a valid request of an unknown version gets UNSUPPORTED_VERSION; a valid status gets OK
    const v2 = te.encode(JSON.stringify({ ...VALID[0], v: 2 }))
    expect(checkResponse(await cl.raw(1, v2))).toBe('UNSUPPORTED_VERSION')
    expect(checkResponse(await cl.raw(1, encodeRequest('status', {}, 'fedcba9876543210', 5000)))).toBe('OK')
    expect(c.nodes[0]?.exit).toBeUndefined()
  })

  it('holds slow callers to the per-peer limit (BUSY) and recovers when they go', async () => {
    // Streams that never send a full frame occupy in-flight slots until the read deadline or reset.
    const slow = (n: number): Array<Promise<unknown>> => Array.from({ length: n }, async () =>
      await cl.raw(1, new Uint8Array([0x10]), { prefixed: false, close: false, timeoutMs: 2_000 }).catch(() => 'timeout'))
    const few = slow(16)
    await new Promise(resolve => setTimeout(resolve, 200))
    for (let i = 0; i < 3; i++) expect((await cl.rpc(1, 'status', {})).index).toBe(1)
    await Promise.all(few)
    const many = slow(40)
    await new Promise(resolve => setTimeout(resolve, 300))
    await expect(cl.rpc(1, 'status', {})).rejects.toMatchObject({ code: 'BUSY' })
    // another peer is not affected by one peer's full quota
    expect((await c.status(1)).index).toBe(1)
    await Promise.all(many)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect((await cl.rpc(1, 'status', {})).index).toBe(1)
    expect(c.nodes[0]?.exit).toBeUndefined()
  })
})
