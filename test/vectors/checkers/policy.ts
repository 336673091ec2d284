/** Checks one policy known-answer case (see generators/policy.ts). Throws on mismatch. */
import { ed25519 } from '@noble/curves/ed25519.js'
import { fromHex, toHex, utf8 } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'
import { validateClusterFile } from '../../../protocol/cluster.ts'
import { approvalSigningBytes, canonicalPolicy, countApprovals, parseApproval, parseSignedPolicy, policySigningBytes, verifySignedPolicy } from '../../../protocol/policy.ts'

interface PolicyCase { name: string, valid: boolean, cluster: unknown, signed?: unknown, approval?: unknown, canonical?: string, signingBytes?: string, sig?: string, error?: string }

export function check (c: PolicyCase): void {
  const cluster = validateClusterFile(c.cluster)
  if (c.approval !== undefined) {
    const a = parseApproval(c.approval)
    if (toHex(approvalSigningBytes(a)) !== c.signingBytes) throw new Error(`${c.name}: signing bytes mismatch`)
    if (!ed25519.verify(fromHex('sig', c.sig), fromHex('m', c.signingBytes), cluster.admins[0]!.publicKey)) throw new Error(`${c.name}: signature does not verify`)
    if (countApprovals([a], cluster, a).count !== 1) throw new Error(`${c.name}: not counted`)
    return
  }
  if (!c.valid) {
    let got: unknown
    try { verifySignedPolicy(parseSignedPolicy(c.signed), cluster) } catch (e) { got = e }
    if (got === undefined) throw new Error(`${c.name}: accepted`)
    if (errorCode(got) !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${errorCode(got)}`)
    return
  }
  const sp = parseSignedPolicy(c.signed)
  const p = verifySignedPolicy(sp, cluster)
  if (toHex(utf8(canonicalPolicy(p))) !== c.canonical) throw new Error(`${c.name}: canonical bytes mismatch`)
  if (toHex(policySigningBytes(p)) !== c.signingBytes) throw new Error(`${c.name}: signing bytes mismatch`)
  if (toHex(ed25519.sign(fromHex('m', c.signingBytes), new Uint8Array(32).fill(0xa1))) !== c.sig) throw new Error(`${c.name}: signature mismatch`)
}
