/** Checks one recovery-kit known-answer case (see generators/recovery.ts). Throws on mismatch. */
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'
import { decodePoint, encodeScalar } from '../../../protocol/group.ts'
import {
  armorRecoveryPiece, dearmorRecoveryPiece, decodeOpenedRecoveryPiece, decodeRecoveryPiece, encodeOpenedRecoveryPiece,
  encodeRecoveryPiece, openRecoveryPiece, recoveryKitDigest, recoveryRestore
} from '../../../protocol/recovery.ts'
import type { KeyKind } from '../../../protocol/recovery.ts'
import { recoveryCase } from '../generators/recovery.ts'

interface RecoveryVector {
  name: string
  valid: boolean
  seed?: string
  m?: number
  t?: number
  clusterId?: string
  epoch?: number
  nodeIndex?: number
  keyKind?: KeyKind
  share?: string
  verifyingShare?: string
  custodianSecrets?: string[]
  kitDigest?: string
  pieces?: string[]
  armor0?: string
  opened?: string[]
  of?: string
  open?: { custodian: number, hex: string }
  decode?: string
  restore?: { pieces: number[], nodeIndex?: number, verifyingShare?: string }
  dearmor?: string
  error?: string
}
interface VectorFile { cases: RecoveryVector[] }

function eq (name: string, what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name}: ${what} mismatch`)
}

async function expectError (name: string, code: string | undefined, f: () => unknown): Promise<void> {
  let got: unknown
  try { await f() } catch (e) { got = e }
  if (got === undefined) throw new Error(`${name}: accepted`)
  eq(name, 'error code', errorCode(got), code)
}

function expectedOf (c: RecoveryVector): { clusterId: string, epoch: number, nodeIndex: number, keyKind: KeyKind, verifyingShare: ReturnType<typeof decodePoint> } {
  return { clusterId: c.clusterId!, epoch: c.epoch!, nodeIndex: c.nodeIndex!, keyKind: c.keyKind!, verifyingShare: decodePoint('vs', fromHex('vs', c.verifyingShare!, 32)) }
}

export async function check (c: RecoveryVector, file: VectorFile): Promise<void> {
  if (c.valid) {
    const again = await recoveryCase(c.name, c.m!, c.t!, { clusterId: c.clusterId!, epoch: c.epoch!, nodeIndex: c.nodeIndex!, keyKind: c.keyKind! })
    for (const key of ['share', 'verifyingShare', 'custodianSecrets', 'kitDigest', 'pieces', 'armor0', 'opened'] as const) eq(c.name, key, again[key], c[key])
    const pieces = c.pieces!.map(h => decodeRecoveryPiece(fromHex('piece', h)))
    pieces.forEach((p, i) => {
      eq(c.name, 'piece re-encoding', toHex(encodeRecoveryPiece(p)), c.pieces![i])
      eq(c.name, 'kit digest', toHex(recoveryKitDigest(p.kit)), c.kitDigest)
      const o = openRecoveryPiece(p, fromHex('sk', c.custodianSecrets![i]!, 32))
      eq(c.name, `opened ${i + 1}`, toHex(encodeOpenedRecoveryPiece(o)), c.opened![i])
    })
    eq(c.name, 'armor', armorRecoveryPiece(dearmorRecoveryPiece(c.armor0!)), c.armor0)
    // Restore with shamir-secret-sharing's own combine, from the first t and from the last t pieces.
    const opened = c.opened!.map(h => decodeOpenedRecoveryPiece(fromHex('opened', h)))
    for (const set of [opened.slice(0, c.t), opened.slice(-c.t!)]) {
      const share = await recoveryRestore(set, expectedOf(c))
      eq(c.name, 'restored share', toHex(encodeScalar(share.scalar)), c.share)
      eq(c.name, 'restored index', share.index, c.nodeIndex)
    }
    return
  }
  const base = file.cases.find(x => x.valid && x.name === c.of)
  if (base === undefined) throw new Error(`${c.name}: base case "${c.of}" missing`)
  if (c.open !== undefined) {
    await expectError(c.name, c.error, () => openRecoveryPiece(decodeRecoveryPiece(fromHex('piece', c.open!.hex)), fromHex('sk', base.custodianSecrets![c.open!.custodian - 1]!, 32)))
  } else if (c.decode !== undefined) {
    await expectError(c.name, c.error, () => decodeRecoveryPiece(fromHex('piece', c.decode!)))
  } else if (c.dearmor !== undefined) {
    await expectError(c.name, c.error, () => dearmorRecoveryPiece(c.dearmor!))
  } else if (c.restore !== undefined) {
    const opened = c.restore.pieces.map(i => decodeOpenedRecoveryPiece(fromHex('opened', base.opened![i - 1]!)))
    const expected = expectedOf(base)
    if (c.restore.nodeIndex !== undefined) expected.nodeIndex = c.restore.nodeIndex
    if (c.restore.verifyingShare !== undefined) expected.verifyingShare = decodePoint('vs', fromHex('vs', c.restore.verifyingShare, 32))
    await expectError(c.name, c.error, () => recoveryRestore(opened, expected))
  } else {
    throw new Error(`${c.name}: nothing to check`)
  }
}
