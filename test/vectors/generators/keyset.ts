/**
 * Known-answer vectors for the KeySet binary and JSON forms and keySetId
 * (docs/PROTOCOL.md §4.1). The keys come from seeded DKG runs
 * (generators/dkg.ts), one for the wrap key and one for the sign key. Negative cases are
 * encodings that decodeKeySet must reject with the stated error code.
 */
import { concat, toHex } from '../../../protocol/bytes.ts'
import { encodeKeySet, keySetId, keySetToJSON } from '../../../protocol/keyset.ts'
import type { KeySet } from '../../../protocol/keyset.ts'
import { BASE, encodePoint } from '../../../protocol/group.ts'
import { seededDkg } from './dkg.ts'

export const VECTOR_CLUSTER = '6b65796d6573682d746573742d303031'

export function seededKeySet (k: number, n: number, epoch: number): KeySet {
  const wrap = seededDkg(k, n, `keymesh/v1 keyset vector ${k}-of-${n} epoch ${epoch} wrap`).publicKey
  const sign = seededDkg(k, n, `keymesh/v1 keyset vector ${k}-of-${n} epoch ${epoch} sign`).publicKey
  return { version: 1, clusterId: VECTOR_CLUSTER, epoch, threshold: k, n, wrap, sign }
}

const HEADER = 27

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = []
  for (const [k, n, epoch] of [[2, 3, 1], [3, 5, 7]] as const) {
    const ks = seededKeySet(k, n, epoch)
    cases.push({
      name: `${k}-of-${n} epoch ${epoch}`,
      valid: true,
      encoding: toHex(encodeKeySet(ks)),
      keySetId: keySetId(ks),
      wrapKey: toHex(encodePoint(ks.wrap.commitments[0]!)),
      signKey: toHex(encodePoint(ks.sign.commitments[0]!)),
      json: keySetToJSON(ks)
    })
  }
  const ks = seededKeySet(2, 3, 1)
  const enc = encodeKeySet(ks)
  const mut = (f: (b: Uint8Array) => void): string => { const b = new Uint8Array(enc); f(b); return toHex(b) }
  const vsOff = HEADER + 2 * 32 // first wrap verifying share
  const identity = new Uint8Array(32); identity[0] = 1
  const bad: Array<[string, string, string]> = [
    ['verifying share not on the commitment polynomial', mut(b => { b.set(encodePoint(ks.wrap.verifyingShares[0]!.add(BASE)), vsOff) }), 'BAD_INPUT'],
    ['two verifying shares swapped', mut(b => { b.set(enc.subarray(vsOff + 32, vsOff + 64), vsOff); b.set(enc.subarray(vsOff, vsOff + 32), vsOff + 32) }), 'BAD_INPUT'],
    ['sign commitment replaced', mut(b => { b.set(encodePoint(BASE), HEADER + 5 * 32) }), 'BAD_INPUT'],
    ['threshold 1', mut(b => { b[25] = 1 }), 'BAD_INPUT'],
    ['threshold above n', mut(b => { b[25] = 4 }), 'BAD_INPUT'],
    ['n above MAX_NODES', mut(b => { b[26] = 65 }), 'BAD_INPUT'],
    ['identity point', mut(b => { b.set(identity, HEADER) }), 'BAD_INPUT'],
    ['non-canonical point encoding', mut(b => { b.set(new Uint8Array(32).fill(0xff).fill(0x7f, 31), HEADER) }), 'BAD_INPUT'],
    ['point of small order', mut(b => { b.set(new Uint8Array(32).fill(0).fill(0x80, 31), HEADER) }), 'BAD_INPUT'],
    ['epoch 0', mut(b => { b.fill(0, 21, 25) }), 'BAD_INPUT'],
    ['bad magic', mut(b => { b[3] = 0x58 }), 'BAD_INPUT'],
    ['version 2', mut(b => { b[4] = 2 }), 'UNSUPPORTED_VERSION'],
    ['truncated', toHex(enc.subarray(0, enc.length - 1)), 'BAD_INPUT'],
    ['trailing byte', toHex(concat(enc, new Uint8Array([0]))), 'BAD_INPUT']
  ]
  for (const [name, encoding, error] of bad) cases.push({ name, valid: false, encoding, error })
  return { format: 'keyset', version: 1, description: 'KeySet binary encoding ("KMKS" v1), JSON form and keySetId (docs/PROTOCOL.md §4.1)', cases }
}
