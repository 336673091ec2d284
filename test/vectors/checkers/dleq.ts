/** Checks one DLEQ known-answer case (see generators/dleq.ts). Throws on mismatch. */
import { decodeDleqProof, dleqBatchProve, dleqBatchVerify, dleqProve, dleqVerify, encodeDleqProof } from '../../../protocol/dleq.ts'
import { BASE, decodePoint, decodeScalar, encodePoint } from '../../../protocol/group.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { VerificationError } from '../../../protocol/errors.ts'
import { expectFailure, same } from '../../helpers/vectors-common.ts'

interface DleqCase { name: string, valid: boolean, x: string, X: string, H: string[], D: string[], rand32: string, proof: string, error?: string, field?: string }

export function check (c: DleqCase): void {
  const x = decodeScalar('x', fromHex('x', c.x, 32))
  const X = decodePoint('X', fromHex('X', c.X, 32))
  const Hs = c.H.map((h, i) => decodePoint(`H[${i}]`, fromHex('H', h, 32)))
  const Ds = c.D.map((d, i) => decodePoint(`D[${i}]`, fromHex('D', d, 32)))
  const verify = (): void => {
    const p = decodeDleqProof('proof', fromHex('proof', c.proof))
    const ok = Hs.length === 1 ? dleqVerify(X, Hs[0]!, Ds[0]!, p) : dleqBatchVerify(X, Hs, Ds, p)
    if (!ok) throw new VerificationError('proof does not verify')
  }
  if (!c.valid) { expectFailure(c.name, verify, c.error as string, c.field); return }
  same(c.name, 'X', toHex(encodePoint(BASE.multiply(x))), c.X)
  const rand = fromHex('rand32', c.rand32, 32)
  const proof = Hs.length === 1 ? dleqProve(x, X, Hs[0]!, Ds[0]!, rand) : dleqBatchProve(x, X, Hs, Ds, rand)
  same(c.name, 'proof', toHex(encodeDleqProof(proof)), c.proof)
  verify()
}
