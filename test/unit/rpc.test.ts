import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  MAX_ENVELOPE_LEN, NODE_ONLY_OPS, RPC_OPS, RemoteError, UNKNOWN_REQUEST_ID, decodeRequest, decodeResponse,
  dkgSessionId, encodeErrorResponse, encodeRequest, encodeResponse, parseDkgSession, parseRefreshSession, peekRequestId,
  refreshSessionId
} from '../../protocol/rpc.ts'
import type { RequestBodies, ResponseBodies, RpcOp } from '../../protocol/rpc.ts'
import { BadInputError, ErrorCode, KeymeshError, UnsupportedVersionError } from '../../protocol/errors.ts'
import { MAX_BATCH, MAX_RPC_MESSAGE } from '../../protocol/constants.ts'

const te = new TextEncoder()
const ID = '0123456789abcdef'
const b = (n: number, v = 7): Uint8Array => new Uint8Array(n).fill(v)

const REQUESTS: { [O in RpcOp]: RequestBodies[O] } = {
  status: {},
  'keyset.get': { epoch: 3 },
  partial: { epoch: 1, envelope: b(200), recipient: b(32) },
  'partial.batch': { epoch: 1, envelopes: [b(200), b(201, 1)], recipient: b(32) },
  'frost.commit': { epoch: 1, session: 'ab'.repeat(16) },
  'frost.sign': { epoch: 1, session: 'ab'.repeat(16), message: te.encode('manifest'), commitments: [b(66), b(66, 2)] },
  'dkg.round1': { session: 'e1-a0' },
  'dkg.echo': { session: 'e1-a0' },
  'dkg.round2': { session: 'e2-a13' },
  'dkg.result': { session: 'e1-a0' },
  'policy.get': { have: 0 },
  'policy.push': { policy: '{"policy":{},"signatures":[]}' },
  'audit.read': { from: 1, limit: 100 },
  'lifecycle.order': { order: '{"order":{},"signatures":[]}' },
  'dkg.order': { order: '{"order":{},"signatures":[]}' },
  'refresh.round1': { session: 'f3-0123456789abcdef' },
  'refresh.echo': { session: 'f3-0123456789abcdef' },
  'refresh.round2': { session: 'f1-ffffffffffffffff' },
  'refresh.result': { session: 'f4294967295-0000000000000000' },
  'cluster.get': { have: 1 },
  'reshare.round1': { session: 's3-0123456789abcdef' },
  'reshare.round2': { session: 's3-0123456789abcdef' },
  'reshare.view': { session: 's1-ffffffffffffffff' },
  'reshare.result': { session: 's4294967295-0000000000000000' },
  'repair.open': { repair: 'ab'.repeat(16), epochs: [1, 3], keySetIds: ['a'.repeat(64), 'b'.repeat(64)], helpers: [1, 2, 4] },
  'repair.piece': { repair: '01'.repeat(16) },
  'repair.sum': { repair: 'ff'.repeat(16) }
}

const KSID = 'c'.repeat(64)

const RESPONSES: { [O in RpcOp]: ResponseBodies[O] } = {
  status: { version: '0.1.0', index: 2, peerId: '12D3KooWPbDY5K6cutJ7UzjL2kbFqrUEE25M4tCfWqknaZMeybZV', clusterId: 'a'.repeat(32), epoch: null, keySetId: null, uptimeMs: 5, dkg: { state: 'running', detail: 'round1 2/3' } },
  'keyset.get': { keySet: b(500) },
  partial: { sealed: b(150), keySetId: KSID },
  'partial.batch': { sealed: b(3000), keySetId: KSID },
  'frost.commit': { commitment: b(66), keySetId: KSID },
  'frost.sign': { share: b(32) },
  'dkg.round1': { wrap: b(200), sign: b(200, 3) },
  'dkg.echo': { wrap: [b(32), b(32, 1)], sign: [b(32, 2), b(32, 3)] },
  'dkg.round2': { wrap: b(40), sign: b(40, 1) },
  'dkg.result': { keySetId: 'f'.repeat(64) },
  'policy.get': { policyVersion: 3, policy: '{}', head: { node: '12D3KooWNH5pb2TkQBssPgWH78MJXwMdJ5d9MbhqXzy7f8dU6rdg', seq: 4, prev: 'a'.repeat(64), time: '2026-01-01T00:00:00.000Z', sig: 'A'.repeat(86) } },
  'policy.push': { policyVersion: 3, accepted: true },
  'audit.read': { records: ['{"seq":1}'], lastSeq: 1 },
  'lifecycle.order': { accepted: true, detail: 'rotation to epoch 2 started' },
  'dkg.order': { accepted: false, code: 'VERIFICATION_FAILED', detail: 'order: 1 valid admin signature(s), the cluster file requires 2' },
  'refresh.round1': { epochs: [1, 2, 5], wrap: [b(136), b(136, 1), b(136, 2)], sign: [b(136, 3), b(136, 4), b(136, 5)] },
  'refresh.echo': { digests: [b(32), b(32, 1), b(32, 2)] },
  'refresh.round2': { wrap: [b(39), b(39, 1)], sign: [b(39, 2), b(39, 3)] },
  'refresh.result': { digest: 'e'.repeat(64) },
  'cluster.get': { revision: 3, orders: ['{"order":1}', '{"order":2}'] },
  'reshare.round1': { epochs: [1, 2], base: ['a'.repeat(64), 'b'.repeat(64)], wrap: [b(136), b(136, 1)], sign: [b(136, 3), b(136, 4)] },
  'reshare.round2': { wrap: [b(39), b(39, 1)], sign: [b(39, 2), b(39, 3)] },
  'reshare.view': { dealers: [1, 3, 4], digests: [b(32), b(32, 1), b(32, 2)] },
  'reshare.result': { digest: 'e'.repeat(64), committed: false },
  'repair.open': { opened: true },
  'repair.piece': { wrap: [b(39), b(39, 1)], sign: [b(39, 2), b(39, 3)] },
  'repair.sum': { wrap: [b(39, 5)], sign: [b(39, 6)] }
}

function frame (o: unknown): Uint8Array { return te.encode(JSON.stringify(o)) }
function fieldOf (f: () => unknown): string {
  try { f() } catch (e) { if (e instanceof BadInputError) return e.field; throw e }
  throw new Error('did not throw')
}

describe('rpc frames', () => {
  it('round-trips every operation request and response', () => {
    for (const op of RPC_OPS) {
      const enc = encodeRequest(op, REQUESTS[op] as never, ID, 1234)
      const dec = decodeRequest(enc)
      expect(dec).toEqual({ op, id: ID, ttlMs: 1234, body: REQUESTS[op] })
      const res = encodeResponse(op, ID, RESPONSES[op] as never)
      expect(decodeResponse(op, ID, res)).toEqual(RESPONSES[op])
    }
  })

  it('encodes the documented wire shape', () => {
    const enc = new TextDecoder().decode(encodeRequest('partial', REQUESTS.partial, ID, 5000))
    expect(JSON.parse(enc)).toEqual({ v: 1, op: 'partial', id: ID, ttl: 5000, body: { epoch: 1, envelope: Buffer.from(b(200)).toString('base64url'), recipient: Buffer.from(b(32)).toString('base64url') } })
    expect(new TextDecoder().decode(encodeErrorResponse(ID, ErrorCode.BUSY))).toBe('{"v":1,"id":"0123456789abcdef","ok":false,"error":{"code":"BUSY"}}')
  })

  it('names the field of every rejected request', () => {
    const ok = { v: 1, op: 'partial', id: ID, ttl: 5000, body: { epoch: 1, envelope: 'AAAA', recipient: 'A'.repeat(43) } }
    const mut = (f: (o: any) => void): Uint8Array => { const o = structuredClone(ok) as any; f(o); return frame(o) } // eslint-disable-line @typescript-eslint/no-explicit-any -- test mutation of arbitrary JSON
    expect(fieldOf(() => decodeRequest(mut(o => { o.extra = 1 })))).toBe('request.extra')
    expect(fieldOf(() => decodeRequest(mut(o => { delete o.ttl })))).toBe('request.ttl')
    expect(fieldOf(() => decodeRequest(mut(o => { o.ttl = 0 })))).toBe('request.ttl')
    expect(fieldOf(() => decodeRequest(mut(o => { o.ttl = 60_001 })))).toBe('request.ttl')
    expect(fieldOf(() => decodeRequest(mut(o => { o.id = 'ABCDEF0123456789' })))).toBe('request.id')
    expect(fieldOf(() => decodeRequest(mut(o => { o.op = 'nope' })))).toBe('request.op')
    expect(fieldOf(() => decodeRequest(mut(o => { o.v = '1' })))).toBe('request.v')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.epoch = 0 })))).toBe('request.body.epoch')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.epoch = 2 ** 32 })))).toBe('request.body.epoch')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.recipient = 'A'.repeat(42) })))).toBe('request.body.recipient')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.envelope = 'AAAA=' })))).toBe('request.body.envelope')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.envelope = '' })))).toBe('request.body.envelope')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.envelope = 'A'.repeat(Math.ceil(MAX_ENVELOPE_LEN * 4 / 3) + 8) })))).toBe('request.body.envelope')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body.x = 1 })))).toBe('request.body.x')
    expect(fieldOf(() => decodeRequest(mut(o => { o.body = [] })))).toBe('request.body')
    expect(fieldOf(() => decodeRequest(te.encode('{"v":1,')))).toBe('request')
    expect(fieldOf(() => decodeRequest(new Uint8Array([0xff, 0xfe])))).toBe('request')
    expect(fieldOf(() => decodeRequest(frame([1, 2])))).toBe('request')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'partial.batch', body: { epoch: 1, envelopes: [], recipient: 'A'.repeat(43) } })))).toBe('request.body.envelopes')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'partial.batch', body: { epoch: 1, envelopes: Array(MAX_BATCH + 1).fill('AAAA'), recipient: 'A'.repeat(43) } })))).toBe('request.body.envelopes')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'partial.batch', body: { epoch: 1, envelopes: ['AAAA', 7], recipient: 'A'.repeat(43) } })))).toBe('request.body.envelopes[1]')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'dkg.round1', body: { session: 'e0-a0' } })))).toBe('request.body.session')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'dkg.round1', body: { session: 'e1-a01' } })))).toBe('request.body.session')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'frost.commit', body: { epoch: 1, session: 'AB'.repeat(16) } })))).toBe('request.body.session')
    expect(fieldOf(() => decodeRequest(frame({ ...ok, op: 'status', body: { a: 1 } })))).toBe('request.body.a')
  })

  it('reports another version as UNSUPPORTED_VERSION and refuses oversize frames', () => {
    expect(() => decodeRequest(frame({ v: 2, op: 'status', id: ID, ttl: 5, body: {} }))).toThrow(UnsupportedVersionError)
    expect(fieldOf(() => decodeRequest(new Uint8Array(MAX_RPC_MESSAGE + 1)))).toBe('request')
    expect(() => encodeRequest('frost.sign', { ...REQUESTS['frost.sign'], message: b(64 * 1024 + 1) }, ID, 5)).toThrow(BadInputError)
  })

  it('rejects the __proto__ key and does not pollute prototypes', () => {
    const f = te.encode(`{"v":1,"op":"status","id":"${ID}","ttl":5,"body":{"__proto__":{"x":1}}}`)
    expect(fieldOf(() => decodeRequest(f))).toBe('request.body.__proto__')
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })

  it('turns an error response into a KeymeshError with the peer code, checks the id', () => {
    const e = ((): unknown => { try { decodeResponse('status', ID, encodeErrorResponse(ID, ErrorCode.NOT_AUTHORIZED)); return undefined } catch (x) { return x } })()
    expect(e).toBeInstanceOf(RemoteError)
    expect((e as KeymeshError).code).toBe('NOT_AUTHORIZED')
    expect(fieldOf(() => decodeResponse('status', 'ffffffffffffffff', encodeErrorResponse(ID, ErrorCode.BUSY)))).toBe('response.id')
    expect(fieldOf(() => decodeResponse('status', ID, frame({ v: 1, id: ID, ok: false, error: { code: 'WHAT' } })))).toBe('response.error.code')
    expect(fieldOf(() => decodeResponse('status', ID, frame({ v: 1, id: ID, ok: false, error: { code: 'BUSY', message: 'x' } })))).toBe('response.error.message')
    expect(fieldOf(() => decodeResponse('dkg.echo', ID, frame({ v: 1, id: ID, ok: true, body: { wrap: ['AB'.repeat(32)], sign: [] } })))).toBe('response.body.wrap[0]')
    expect(fieldOf(() => decodeResponse('status', ID, frame({ v: 1, id: ID, ok: true, body: { ...RESPONSES.status, dkg: { state: 'weird' } } })))).toBe('response.body.dkg.state')
    expect(() => encodeErrorResponse(ID, 'NOPE' as ErrorCode)).toThrow(BadInputError)
  })

  it('peeks the id of a bad request when it can', () => {
    expect(peekRequestId(frame({ id: ID, junk: true }))).toBe(ID)
    expect(peekRequestId(te.encode('{"id":'))).toBe(UNKNOWN_REQUEST_ID)
    expect(peekRequestId(frame({ id: 'x' }))).toBe(UNKNOWN_REQUEST_ID)
  })

  it('carries the generation fields (keySetId) and refuses malformed ones', () => {
    const withId = encodeRequest('keyset.get', { epoch: 2, keySetId: KSID }, ID, 5)
    expect(decodeRequest(withId).body).toEqual({ epoch: 2, keySetId: KSID })
    expect(decodeRequest(encodeRequest('keyset.get', { keySetId: KSID }, ID, 5)).body).toEqual({ keySetId: KSID })
    const sign = { ...REQUESTS['frost.sign'], keySetId: KSID }
    expect(decodeRequest(encodeRequest('frost.sign', sign, ID, 5)).body).toEqual(sign)
    const req = (op: RpcOp, body: unknown): Uint8Array => frame({ v: 1, op, id: ID, ttl: 5, body })
    expect(fieldOf(() => decodeRequest(req('keyset.get', { keySetId: 'C'.repeat(64) })))).toBe('request.body.keySetId')
    expect(fieldOf(() => decodeRequest(req('frost.sign', { ...JSON.parse(new TextDecoder().decode(encodeRequest('frost.sign', REQUESTS['frost.sign'], ID, 5))).body, keySetId: 'c'.repeat(63) })))).toBe('request.body.keySetId')
    // keySetId is REQUIRED in partial / partial.batch / frost.commit responses.
    const res = (body: unknown): Uint8Array => frame({ v: 1, id: ID, ok: true, body })
    expect(fieldOf(() => decodeResponse('partial', ID, res({ sealed: 'AAAA' })))).toBe('response.body.keySetId')
    expect(fieldOf(() => decodeResponse('partial.batch', ID, res({ sealed: 'AAAA', keySetId: 'x' })))).toBe('response.body.keySetId')
    expect(fieldOf(() => decodeResponse('frost.commit', ID, res({ commitment: 'AAAA' })))).toBe('response.body.keySetId')
  })

  it('refresh ops: sessions, node-only, caps and shapes', () => {
    expect(refreshSessionId(3, '0123456789abcdef0123456789abcdef')).toBe('f3-0123456789abcdef')
    expect(parseRefreshSession('f12-00000000000000ff')).toEqual({ epoch: 12, nonce16: '00000000000000ff' })
    expect(() => refreshSessionId(0, 'ab'.repeat(16))).toThrow(BadInputError)
    expect(() => refreshSessionId(1, 'AB'.repeat(16))).toThrow(BadInputError)
    for (const op of ['refresh.round1', 'refresh.echo', 'refresh.round2', 'refresh.result'] as const) expect(NODE_ONLY_OPS.has(op)).toBe(true)
    const req = (op: RpcOp, body: unknown): Uint8Array => frame({ v: 1, op, id: ID, ttl: 5, body })
    for (const s of ['e1-a0', 'f0-0123456789abcdef', 'f1-0123456789abcde', 'f1-0123456789ABCDEF', 'f01-0123456789abcdef', 'f4294967296-0123456789abcdef', 'f1-0123456789abcdef0']) {
      expect(fieldOf(() => decodeRequest(req('refresh.round1', { session: s })))).toBe('request.body.session')
    }
    expect(fieldOf(() => decodeRequest(req('dkg.round1', { session: 'f1-0123456789abcdef' })))).toBe('request.body.session')
    const res = (body: unknown): Uint8Array => frame({ v: 1, id: ID, ok: true, body })
    const d = Buffer.from(b(136)).toString('base64url')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: [2, 1], wrap: [d, d], sign: [d, d] })))).toBe('response.body.epochs[1]')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: [1, 1], wrap: [d, d], sign: [d, d] })))).toBe('response.body.epochs[1]')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: [1, 2], wrap: [d], sign: [d, d] })))).toBe('response.body.wrap')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: [1], wrap: [d], sign: [d, d] })))).toBe('response.body.sign')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: [], wrap: [], sign: [] })))).toBe('response.body.epochs')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: Array.from({ length: 257 }, (_, i) => i + 1), wrap: [d], sign: [d] })))).toBe('response.body.epochs')
    expect(fieldOf(() => decodeResponse('refresh.round1', ID, res({ epochs: [1], wrap: [Buffer.from(b(2049)).toString('base64url')], sign: [d] })))).toBe('response.body.wrap[0]')
    expect(fieldOf(() => decodeResponse('refresh.round2', ID, res({ wrap: [Buffer.from(b(38)).toString('base64url')], sign: [Buffer.from(b(39)).toString('base64url')] })))).toBe('response.body.wrap[0]')
    expect(fieldOf(() => decodeResponse('refresh.round2', ID, res({ wrap: [Buffer.from(b(39)).toString('base64url')], sign: [] })))).toBe('response.body.sign')
    expect(fieldOf(() => decodeResponse('refresh.echo', ID, res({ digests: ['ab'.repeat(32)] })))).toBe('response.body.digests')
    expect(fieldOf(() => decodeResponse('refresh.echo', ID, res({ digests: ['ab'.repeat(32), 'AB'.repeat(32)] })))).toBe('response.body.digests[1]')
    expect(fieldOf(() => decodeResponse('refresh.result', ID, res({ digest: 'ab'.repeat(16) })))).toBe('response.body.digest')
  })

  it('DKG session ids round-trip', () => {
    expect(dkgSessionId(12, 3)).toBe('e12-a3')
    expect(parseDkgSession('e12-a3')).toEqual({ epoch: 12, attempt: 3 })
    expect(() => parseDkgSession('e4294967296-a0')).toThrow(BadInputError)
    expect(NODE_ONLY_OPS.has('dkg.round1') && !NODE_ONLY_OPS.has('partial')).toBe(true)
  })

  it('never throws anything but KeymeshError on arbitrary input (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.json().map(s => te.encode(s)), fc.jsonValue().map(v => frame({ v: 1, op: 'partial', id: ID, ttl: 5, body: v }))), bytes => {
      try { decodeRequest(bytes) } catch (e) { if (!(e instanceof KeymeshError)) throw e }
      try { decodeResponse('status', ID, bytes) } catch (e) { if (!(e instanceof KeymeshError)) throw e }
    }), { numRuns: 2000 })
  })
})

describe('rpc frames: membership and reshare ops', () => {
  it('cluster.get: orders only with the right count; reshare ops need an s-session; reshare.* are node-only', () => {
    expect(decodeResponse('cluster.get', ID, encodeResponse('cluster.get', ID, { revision: 1 }))).toEqual({ revision: 1 })
    expect(() => decodeResponse('cluster.get', ID, frame({ v: 1, id: ID, ok: true, body: { revision: 3, orders: ['x'] } }))).toThrow(BadInputError)
    expect(() => decodeResponse('cluster.get', ID, frame({ v: 1, id: ID, ok: true, body: { revision: 0 } }))).toThrow(BadInputError)
    expect(() => encodeRequest('reshare.round1', { session: 'f3-0123456789abcdef' }, ID, 1000)).toThrow(BadInputError)
    expect(() => decodeResponse('reshare.view', ID, frame({ v: 1, id: ID, ok: true, body: { dealers: [2, 1], digests: ['00'.repeat(32), '00'.repeat(32)] } }))).toThrow(BadInputError)
    expect(() => decodeResponse('reshare.round1', ID, frame({ v: 1, id: ID, ok: true, body: { epochs: [1], base: [], wrap: ['AA'], sign: ['AA'] } }))).toThrow(BadInputError)
    for (const op of ['reshare.round1', 'reshare.round2', 'reshare.view', 'reshare.result', 'repair.open', 'repair.piece', 'repair.sum'] as const) expect(NODE_ONLY_OPS.has(op)).toBe(true)
    expect(NODE_ONLY_OPS.has('cluster.get')).toBe(false)
  })
})

describe('rpc frames: share repair ops', () => {
  it('repair.open needs ascending helpers (≥ 2), a 32-hex id and one keySetId per epoch; messages are 39 bytes', () => {
    const open = { repair: 'ab'.repeat(16), epochs: [1, 2], keySetIds: ['a'.repeat(64), 'b'.repeat(64)], helpers: [1, 3] }
    expect(decodeRequest(encodeRequest('repair.open', open, ID, 1000)).body).toEqual(open)
    expect(() => encodeRequest('repair.open', { ...open, helpers: [3, 1] }, ID, 1000)).toThrow(BadInputError)
    expect(() => encodeRequest('repair.open', { ...open, helpers: [1] }, ID, 1000)).toThrow(BadInputError)
    expect(() => encodeRequest('repair.open', { ...open, keySetIds: ['a'.repeat(64)] }, ID, 1000)).toThrow(BadInputError)
    expect(() => encodeRequest('repair.open', { ...open, repair: 'AB'.repeat(16) }, ID, 1000)).toThrow(BadInputError)
    expect(() => decodeResponse('repair.sum', ID, frame({ v: 1, id: ID, ok: true, body: { wrap: ['AA'], sign: ['AA'] } }))).toThrow(BadInputError)
    const r = { digest: 'c'.repeat(64), committed: true, epochs: [2, 5], keySetIds: ['d'.repeat(64), 'e'.repeat(64)] }
    expect(decodeResponse('reshare.result', ID, encodeResponse('reshare.result', ID, r))).toEqual(r)
    expect(() => decodeResponse('reshare.result', ID, frame({ v: 1, id: ID, ok: true, body: { ...r, keySetIds: ['d'.repeat(64)] } }))).toThrow(BadInputError)
  })
})
