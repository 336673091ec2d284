/** Checks one RPC frame known-answer case (see generators/rpc.ts). Throws on mismatch. */
import { toHex, utf8 } from '../../../protocol/bytes.ts'
import { BadInputError, KeymeshError, errorCode } from '../../../protocol/errors.ts'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, isRpcOp } from '../../../protocol/rpc.ts'
import type { RpcOp } from '../../../protocol/rpc.ts'
import { varint } from '../generators/rpc.ts'

interface RpcCase { name: string, kind: 'request' | 'response' | 'error', valid: boolean, op: string, id?: string, text: string, wire?: string, field?: string, error?: string, code?: string }

export function check (c: RpcCase): void {
  const frame = utf8(c.text)
  if (!isRpcOp(c.op)) throw new Error(`${c.name}: bad op in vector`)
  const op: RpcOp = c.op
  if (c.valid) {
    if (toHex(varint(frame.length)) + toHex(frame) !== c.wire) throw new Error(`${c.name}: wire bytes mismatch`)
    if (c.kind === 'request') {
      const r = decodeRequest(frame)
      if (r.op !== op) throw new Error(`${c.name}: op mismatch`)
      if (toHex(encodeRequest(r.op, r.body as never, r.id, r.ttlMs)) !== toHex(frame)) throw new Error(`${c.name}: re-encoding differs`)
    } else if (c.kind === 'response') {
      const body = decodeResponse(op, c.id as string, frame)
      if (toHex(encodeResponse(op, c.id as string, body as never)) !== toHex(frame)) throw new Error(`${c.name}: re-encoding differs`)
    } else {
      let got: unknown
      try { decodeResponse(op, c.id as string, frame) } catch (e) { got = e }
      if (!(got instanceof KeymeshError) || got instanceof BadInputError || got.code !== c.code) throw new Error(`${c.name}: expected remote ${String(c.code)}, got ${String(got)}`)
    }
    return
  }
  let got: unknown
  try {
    if (c.kind === 'request') decodeRequest(frame); else decodeResponse(op, c.id as string, frame)
  } catch (e) { got = e }
  if (got === undefined) throw new Error(`${c.name}: invalid frame accepted`)
  if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
  const field = (got as { field?: string }).field
  if (field !== c.field) throw new Error(`${c.name}: expected field ${String(c.field)}, got ${String(field)}`)
}
