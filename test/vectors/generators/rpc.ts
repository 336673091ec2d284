/**
 * Known-answer vectors for RPC frames (docs/PROTOCOL.md): request and
 * response frames of several operations with their exact bytes on the wire (unsigned-varint length
 * prefix ‖ UTF-8 JSON), and invalid frames that must be rejected naming a field.
 */
import { toHex, utf8 } from '../../../protocol/bytes.ts'
import { ErrorCode } from '../../../protocol/errors.ts'
import { encodeErrorResponse, encodeRequest, encodeResponse } from '../../../protocol/rpc.ts'

/** Unsigned LEB128 varint (as lpStream / uint8-varint). */
export function varint (n: number): Uint8Array {
  const out: number[] = []
  let v = n
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128) }
  out.push(v)
  return new Uint8Array(out)
}

const dec = new TextDecoder()
const fill = (n: number, f: (i: number) => number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => f(i))
const ID = '0123456789abcdef'

function wire (frame: Uint8Array): string { return toHex(varint(frame.length)) + toHex(frame) }

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = []
  const req = (name: string, f: Uint8Array, op: string): void => { cases.push({ name, kind: 'request', valid: true, op, text: dec.decode(f), wire: wire(f) }) }
  const res = (name: string, f: Uint8Array, op: string): void => { cases.push({ name, kind: 'response', valid: true, op, id: ID, text: dec.decode(f), wire: wire(f) }) }
  req('request status', encodeRequest('status', {}, ID, 5000), 'status')
  req('request keyset.get latest', encodeRequest('keyset.get', {}, ID, 10000), 'keyset.get')
  req('request partial', encodeRequest('partial', { epoch: 1, envelope: fill(150, i => i), recipient: fill(32, i => 255 - i) }, ID, 30000), 'partial')
  req('request partial.batch', encodeRequest('partial.batch', { epoch: 7, envelopes: [fill(3, i => i), fill(4, i => 9 * i)], recipient: fill(32, () => 1) }, ID, 60000), 'partial.batch')
  req('request frost.sign', encodeRequest('frost.sign', { epoch: 1, session: 'c0ffee'.padEnd(32, '0'), message: utf8('{"manifest":1}'), commitments: [fill(66, i => i), fill(66, i => i + 1)] }, ID, 1), 'frost.sign')
  req('request dkg.round2', encodeRequest('dkg.round2', { session: 'e1-a0' }, ID, 10000), 'dkg.round2')
  res('response status', encodeResponse('status', ID, { version: '0.1.0', index: 1, peerId: '12D3KooWPbDY5K6cutJ7UzjL2kbFqrUEE25M4tCfWqknaZMeybZV', clusterId: 'fd55c9337e7b8f06e2dbe56075a6b6d9', epoch: 1, keySetId: 'b6c67b4a6d0ea226c5dcdc0afedad4d6388327c33449d6351ce17189ce0db84c', uptimeMs: 3012, dkg: { state: 'done' } }), 'status')
  res('response dkg.echo', encodeResponse('dkg.echo', ID, { wrap: [fill(32, i => i), fill(32, i => 2 * i)], sign: [fill(32, () => 0xaa), fill(32, () => 0xbb)] }), 'dkg.echo')
  res('response partial', encodeResponse('partial', ID, { sealed: fill(100, i => i * 7), keySetId: 'b6c67b4a6d0ea226c5dcdc0afedad4d6388327c33449d6351ce17189ce0db84c' }), 'partial')
  req('request keyset.get generation', encodeRequest('keyset.get', { epoch: 2, keySetId: '5e'.repeat(32) }, ID, 10000), 'keyset.get')
  req('request refresh.round2', encodeRequest('refresh.round2', { session: 'f3-0123456789abcdef' }, ID, 2000), 'refresh.round2')
  res('response refresh.round1', encodeResponse('refresh.round1', ID, { epochs: [1, 3], wrap: [fill(40, i => i), fill(40, i => i + 1)], sign: [fill(40, i => 2 * i), fill(40, i => 3 * i)] }), 'refresh.round1')
  res('response refresh.result', encodeResponse('refresh.result', ID, { digest: '0f'.repeat(32) }), 'refresh.result')
  req('request cluster.get', encodeRequest('cluster.get', { have: 1 }, ID, 3000), 'cluster.get')
  res('response cluster.get (no newer chain)', encodeResponse('cluster.get', ID, { revision: 1 }), 'cluster.get')
  req('request reshare.round2', encodeRequest('reshare.round2', { session: 's1-0123456789abcdef' }, ID, 2000), 'reshare.round2')
  res('response reshare.view', encodeResponse('reshare.view', ID, { dealers: [1, 2, 4], digests: [fill(32, i => i), fill(32, i => i + 1), fill(32, i => i + 2)] }), 'reshare.view')
  res('response reshare.result', encodeResponse('reshare.result', ID, { digest: 'a0'.repeat(32), committed: true }), 'reshare.result')
  cases.push({ name: 'error response BUSY', kind: 'error', valid: true, op: 'status', id: ID, code: 'BUSY', text: dec.decode(encodeErrorResponse(ID, ErrorCode.BUSY)), wire: wire(encodeErrorResponse(ID, ErrorCode.BUSY)) })
  const bad = (name: string, kind: 'request' | 'response', text: string, field: string, error = 'BAD_INPUT', op = 'status'): void => {
    cases.push({ name, kind, valid: false, op, id: ID, text, field, error })
  }
  bad('unknown op', 'request', `{"v":1,"op":"secret.dump","id":"${ID}","ttl":5,"body":{}}`, 'request.op')
  bad('unknown top-level field', 'request', `{"v":1,"op":"status","id":"${ID}","ttl":5,"body":{},"x":0}`, 'request.x')
  bad('unknown body field', 'request', `{"v":1,"op":"status","id":"${ID}","ttl":5,"body":{"x":0}}`, 'request.body.x')
  bad('ttl above cap', 'request', `{"v":1,"op":"status","id":"${ID}","ttl":60001,"body":{}}`, 'request.ttl')
  bad('ttl not an integer', 'request', `{"v":1,"op":"status","id":"${ID}","ttl":"5","body":{}}`, 'request.ttl')
  bad('uppercase id', 'request', '{"v":1,"op":"status","id":"0123456789ABCDEF","ttl":5,"body":{}}', 'request.id')
  bad('version 2', 'request', `{"v":2,"op":"status","id":"${ID}","ttl":5,"body":{}}`, 'request.v', 'UNSUPPORTED_VERSION')
  bad('padded base64url', 'request', `{"v":1,"op":"partial","id":"${ID}","ttl":5,"body":{"epoch":1,"envelope":"AAA=","recipient":"${'A'.repeat(43)}"}}`, 'request.body.envelope')
  bad('recipient 31 bytes', 'request', `{"v":1,"op":"partial","id":"${ID}","ttl":5,"body":{"epoch":1,"envelope":"AAAA","recipient":"${'A'.repeat(42)}"}}`, 'request.body.recipient')
  bad('epoch 0', 'request', `{"v":1,"op":"keyset.get","id":"${ID}","ttl":5,"body":{"epoch":0}}`, 'request.body.epoch')
  bad('bad DKG session', 'request', `{"v":1,"op":"dkg.round1","id":"${ID}","ttl":5,"body":{"session":"e1-a00"}}`, 'request.body.session')
  bad('bad refresh session', 'request', `{"v":1,"op":"refresh.echo","id":"${ID}","ttl":5,"body":{"session":"f1-0123456789ABCDEF"}}`, 'request.body.session')
  bad('bad reshare session', 'request', `{"v":1,"op":"reshare.view","id":"${ID}","ttl":5,"body":{"session":"f1-0123456789abcdef"}}`, 'request.body.session')
  bad('cluster.get orders without a newer revision count', 'response', `{"v":1,"id":"${ID}","ok":true,"body":{"revision":2,"orders":[]}}`, 'response.body.orders', 'BAD_INPUT', 'cluster.get')
  bad('partial response without keySetId', 'response', `{"v":1,"id":"${ID}","ok":true,"body":{"sealed":"AAAA"}}`, 'response.body.keySetId', 'BAD_INPUT', 'partial')
  bad('truncated JSON', 'request', `{"v":1,"op":"status","id":"${ID}","ttl":5,"bo`, 'request')
  bad('error response with a message', 'response', `{"v":1,"id":"${ID}","ok":false,"error":{"code":"INTERNAL","message":"stack..."}}`, 'response.error.message')
  bad('unknown error code', 'response', `{"v":1,"id":"${ID}","ok":false,"error":{"code":"OOPS"}}`, 'response.error.code')
  bad('response id mismatch', 'response', '{"v":1,"id":"ffffffffffffffff","ok":false,"error":{"code":"BUSY"}}', 'response.id')
  return {
    format: 'rpc',
    version: 1,
    description: 'keymesh RPC frames: wire = unsigned-varint(len) || UTF-8 JSON; valid frames decode and re-encode to the same bytes; invalid ones are rejected naming `field` (error = code).',
    cases
  }
}
