/** Checks one lifecycle-order known-answer case (see generators/order.ts). Throws on mismatch. */
import { ed25519 } from '@noble/curves/ed25519.js'
import { fromB64u, fromHex, toHex, utf8 } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'
import { validateClusterFile } from '../../../protocol/cluster.ts'
import { canonicalJson } from '../../../protocol/manifest.ts'
import { encodeSignedOrder, orderSigningBytes, parseSignedOrder, verifySignedOrder } from '../../../protocol/order.ts'

interface OrderCase { name: string, valid: boolean, cluster: unknown, signed: unknown, canonical?: string, signingBytes?: string, sigs?: string[], error?: string }

export function check (c: OrderCase): void {
  const cluster = validateClusterFile(c.cluster)
  if (!c.valid) {
    let got: unknown
    try { verifySignedOrder(parseSignedOrder(JSON.stringify(c.signed)), cluster) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
    return
  }
  const so = parseSignedOrder(JSON.stringify(c.signed))
  const o = verifySignedOrder(so, cluster)
  if (toHex(utf8(canonicalJson(o))) !== c.canonical) throw new Error(`${c.name}: canonical bytes mismatch`)
  if (toHex(orderSigningBytes(o)) !== c.signingBytes) throw new Error(`${c.name}: signing bytes mismatch`)
  const seeds = [new Uint8Array(32).fill(0xa1), new Uint8Array(32).fill(0xb2)]
  c.sigs?.forEach((s, k) => {
    const sig = fromB64u('sig', s, 64)
    if (toHex(ed25519.sign(fromHex('m', c.signingBytes), seeds[k] as Uint8Array)) !== toHex(sig)) throw new Error(`${c.name}: signature ${k} mismatch`)
  })
  // Round trip of the canonical signed form.
  if (encodeSignedOrder(parseSignedOrder(encodeSignedOrder(so))) !== encodeSignedOrder(so)) throw new Error(`${c.name}: encodeSignedOrder not stable`)
}
