/** Known-answer vectors for the Chaum–Pedersen DLEQ proofs (docs/PROTOCOL.md §4.2–§4.3). */
import { dleqBatchProve, dleqProve, encodeDleqProof } from '../../../protocol/dleq.ts'
import { BASE, encodePoint, encodeScalar, mod } from '../../../protocol/group.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { scalarFromWide } from '../../../protocol/wrap.ts'
import { seededRng } from '../../helpers/dealer.ts'

export function generate (): unknown {
  const rng = seededRng('keymesh-vectors-dleq')
  const x = scalarFromWide(rng(64))
  const X = BASE.multiply(x)
  const cases: Array<Record<string, unknown>> = []
  for (let i = 0; i < 2; i++) {
    const H = BASE.multiply(scalarFromWide(rng(64)))
    const D = H.multiply(x)
    const rand32 = rng(32)
    const proof = encodeDleqProof(dleqProve(x, X, H, D, rand32))
    cases.push({ name: `single ${i}`, valid: true, x: toHex(encodeScalar(x)), X: toHex(encodePoint(X)), H: [toHex(encodePoint(H))], D: [toHex(encodePoint(D))], rand32: toHex(rand32), proof: toHex(proof) })
  }
  const Hs = [0, 1, 2, 3].map(() => BASE.multiply(scalarFromWide(rng(64))))
  const Ds = Hs.map(h => h.multiply(x))
  const rand32 = rng(32)
  const bproof = encodeDleqProof(dleqBatchProve(x, X, Hs, Ds, rand32))
  const batch = { name: 'batch of 4', valid: true, x: toHex(encodeScalar(x)), X: toHex(encodePoint(X)), H: Hs.map(h => toHex(encodePoint(h))), D: Ds.map(d => toHex(encodePoint(d))), rand32: toHex(rand32), proof: toHex(bproof) }
  cases.push(batch)
  const single = cases[0] as Record<string, unknown>
  const flipped = Buffer.from(single.proof as string, 'hex'); flipped[40] = (flipped[40] as number) ^ 1
  const wrongD = encodePoint(Hs[0]!.multiply(mod(x + 1n)))
  cases.push(
    { ...single, name: 'single: flipped z', valid: false, proof: flipped.toString('hex'), error: 'VERIFICATION_FAILED' },
    { ...single, name: 'single: c not canonical', valid: false, proof: 'ff'.repeat(32) + (single.proof as string).slice(64), error: 'BAD_INPUT', field: 'proof.c' },
    { ...single, name: 'single: proof too short', valid: false, proof: (single.proof as string).slice(2), error: 'BAD_INPUT', field: 'proof' },
    { ...batch, name: 'batch: one wrong D', valid: false, D: [toHex(wrongD), ...(batch.D.slice(1))], error: 'VERIFICATION_FAILED' },
    { ...batch, name: 'batch: D reordered', valid: false, D: [...batch.D].reverse(), error: 'VERIFICATION_FAILED' }
  )
  return {
    format: 'dleq',
    version: 1,
    description: 'Chaum–Pedersen DLEQ log_B X = log_H D: t = hashToScalar("keymesh/v1/dleq/nonce", rand32, enc(x), enc(H)); A1 = t·B; A2 = t·H; c = hashToScalar("keymesh/v1/dleq", enc(B), enc(X), enc(H), enc(D), enc(A1), enc(A2)); z = t + c·x; proof = LE32(c) ‖ LE32(z). With several H/D, the proof is over the composite (M, Z) of §4.3 ("keymesh/v1/dleq/batch"). Invalid cases must fail decoding (BAD_INPUT, field) or verification.',
    cases
  }
}
