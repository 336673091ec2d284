/**
 * Known-answer vectors for the offline recovery kit (docs/PROTOCOL.md §10.4).
 *
 * shamir-secret-sharing draws its randomness internally, so the vectors use `gf256Split`, a
 * deterministic split over the same field (GF(2^8) mod x^8+x^4+x^3+x+1) and the same piece layout
 * (y bytes ‖ x); the checker recombines with the package's own `combine`, which cross-checks the
 * layout. Custodian keys, HPKE ephemeral keys and the kit nonce come from fixed seeds.
 */
import { drbg } from './dkg.ts'
import { toHex } from '../../../protocol/bytes.ts'
import { encodeScalar } from '../../../protocol/group.ts'
import { recipientPublicKey } from '../../../protocol/hpke.ts'
import type { KeyShare } from '../../../protocol/keyset.ts'
import {
  armorRecoveryPiece, encodeOpenedRecoveryPiece, encodeRecoveryPiece, openRecoveryPiece, recoveryExportWithRandomness, recoveryKitDigest
} from '../../../protocol/recovery.ts'
import type { RecoveryContext, RecoveryPiece } from '../../../protocol/recovery.ts'
import { dealKey } from './reshare.ts'

function gfMul (a: number, b: number): number {
  let r = 0
  for (let i = 0; i < 8; i++) {
    if ((b & 1) !== 0) r ^= a
    const hi = a & 0x80
    a = (a << 1) & 0xff
    if (hi !== 0) a ^= 0x1b
    b >>= 1
  }
  return r
}

/** Deterministic t-of-m split in shamir-secret-sharing's layout (test vectors only). */
export function gf256Split (seed: string): (secret: Uint8Array, m: number, t: number) => Promise<Uint8Array[]> {
  return async (secret, m, t) => {
    const rng = drbg(`${seed}/split`)
    const xs: number[] = []
    for (const b of rng(512)) { if (b !== 0 && !xs.includes(b)) xs.push(b); if (xs.length === m) break }
    const out = xs.map(x => { const p = new Uint8Array(secret.length + 1); p[secret.length] = x; return p })
    for (let i = 0; i < secret.length; i++) {
      const coeffs = [secret[i]!, ...rng(t - 1)]
      out.forEach((p, j) => {
        let y = 0
        for (let c = coeffs.length - 1; c >= 0; c--) y = gfMul(y, xs[j]!) ^ coeffs[c]!
        p[i] = y
      })
    }
    return out
  }
}

export interface RecoveryRun {
  seed: string
  share: KeyShare
  meta: RecoveryContext
  t: number
  names: string[]
  custodianSecrets: Uint8Array[]
  verifyingShare: Uint8Array
  pieces: RecoveryPiece[]
}

/** Builds the deterministic kit for a case. */
export async function recoveryRun (seed: string, m: number, t: number, meta: RecoveryContext): Promise<RecoveryRun> {
  const key = dealKey(2, 3, drbg(`${seed}/key`))
  const share = key.shares[meta.nodeIndex - 1]!
  const custodianSecrets = Array.from({ length: m }, (_, i) => drbg(`${seed}/custodian/${i + 1}`)(32))
  const names = Array.from({ length: m }, (_, i) => ['alice', 'bob', 'carol', 'dave', 'erin'][i] ?? `custodian-${i + 1}`)
  const pieces = await recoveryExportWithRandomness(share, meta, custodianSecrets.map((sk, i) => ({ name: names[i]!, publicKey: recipientPublicKey(sk) })), t, {
    nonce: drbg(`${seed}/nonce`)(16),
    ephemeral: Array.from({ length: m }, (_, i) => drbg(`${seed}/ephemeral/${i + 1}`)(32)),
    split: gf256Split(seed)
  })
  return { seed, share, meta, t, names, custodianSecrets, verifyingShare: key.pub.verifyingShares[meta.nodeIndex - 1]!.toBytes(), pieces }
}

export async function recoveryCase (name: string, m: number, t: number, meta: RecoveryContext): Promise<Record<string, unknown>> {
  const seed = `keymesh/v1 recovery vector ${name}`
  const r = await recoveryRun(seed, m, t, meta)
  return {
    name,
    valid: true,
    seed,
    m,
    t,
    ...meta,
    share: toHex(encodeScalar(r.share.scalar)),
    verifyingShare: toHex(r.verifyingShare),
    custodianSecrets: r.custodianSecrets.map(toHex),
    kitDigest: toHex(recoveryKitDigest(r.pieces[0]!.kit)),
    pieces: r.pieces.map(p => toHex(encodeRecoveryPiece(p))),
    armor0: armorRecoveryPiece(r.pieces[0]!),
    opened: r.pieces.map((p, i) => toHex(encodeOpenedRecoveryPiece(openRecoveryPiece(p, r.custodianSecrets[i]!))))
  }
}

export async function generate (): Promise<unknown> {
  const cid = '5eed5eed5eed5eed5eed5eed5eed5eed'
  const a = await recoveryCase('2-of-3 wrap share of node 2', 3, 2, { clusterId: cid, epoch: 1, nodeIndex: 2, keyKind: 'wrap' })
  const b = await recoveryCase('3-of-5 sign share of node 3', 5, 3, { clusterId: cid, epoch: 9, nodeIndex: 3, keyKind: 'sign' })
  const p0 = (b.pieces as string[])[0]!
  const flip = (hex: string, pos: number): string => hex.slice(0, 2 * pos) + (parseInt(hex.slice(2 * pos, 2 * pos + 2), 16) ^ 1).toString(16).padStart(2, '0') + hex.slice(2 * pos + 2)
  const of = b.name
  return {
    format: 'recovery',
    version: 1,
    description: 'Offline recovery kit (docs/PROTOCOL.md §10.4): KMRP pieces (binary and armored), KMRO opened pieces, kit digest, restore; deterministic split in shamir-secret-sharing layout. Negative cases must fail with the stated error code.',
    cases: [
      a,
      b,
      { name: 'ciphertext bit flip is refused at open', valid: false, of, open: { custodian: 1, hex: flip(p0, p0.length / 2 - 1) }, error: 'VERIFICATION_FAILED' },
      { name: 'edited kit epoch is refused at open', valid: false, of, open: { custodian: 1, hex: flip(p0, 4 + 1 + 16 + 3) }, error: 'VERIFICATION_FAILED' },
      { name: 'piece opened with another custodian key is refused', valid: false, of, open: { custodian: 2, hex: p0 }, error: 'BAD_INPUT' },
      { name: 'bad magic', valid: false, of, decode: flip(p0, 0), error: 'BAD_INPUT' },
      { name: 'version 2', valid: false, of, decode: p0.slice(0, 8) + '02' + p0.slice(10), error: 'UNSUPPORTED_VERSION' },
      { name: 'trailing byte', valid: false, of, decode: p0 + '00', error: 'BAD_INPUT' },
      { name: 'restore for another node is refused', valid: false, of, restore: { pieces: [1, 2, 3], nodeIndex: 2 }, error: 'BAD_INPUT' },
      { name: 'restore with t−1 pieces is refused', valid: false, of, restore: { pieces: [2, 5] }, error: 'BAD_INPUT' },
      { name: 'restore against another verifying share is refused', valid: false, of, restore: { pieces: [1, 3, 4], verifyingShare: a.verifyingShare }, error: 'VERIFICATION_FAILED' },
      { name: 'armor with an edited header is refused', valid: false, of, dearmor: (b.armor0 as string).replace('Threshold: 3', 'Threshold: 2'), error: 'BAD_INPUT' }
    ]
  }
}
