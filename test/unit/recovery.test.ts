import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { combine as shamirCombine } from 'shamir-secret-sharing'
import { BadInputError, UnsupportedVersionError, VerificationError } from '../../protocol/errors.ts'
import { BASE } from '../../protocol/group.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import type { RecipientKeyPair } from '../../protocol/hpke.ts'
import {
  RECOVERY_SECRET_LEN, armorRecoveryPiece, dearmorRecoveryPiece, decodeOpenedRecoveryPiece, decodeRecoveryPiece,
  encodeOpenedRecoveryPiece, encodeRecoveryPiece, openRecoveryPiece, recoveryExport, recoveryKitDigest, recoveryRestore
} from '../../protocol/recovery.ts'
import type { OpenedRecoveryPiece, RecoveryContext, RecoveryPiece } from '../../protocol/recovery.ts'
import { dealKey } from '../vectors/generators/reshare.ts'

const clusterId = '0123456789abcdef0123456789abcdef'
const names = ['alice', 'bob', 'carol', 'dave', 'erin']

describe('recovery kit', async () => {
  const key = dealKey(3, 5)
  const share = key.shares[1]!
  const meta: RecoveryContext = { clusterId, epoch: 4, nodeIndex: 2, keyKind: 'wrap' }
  const expected = { ...meta, verifyingShare: key.pub.verifyingShares[1]! }
  const custodians: RecipientKeyPair[] = names.map(() => generateRecipientKeyPair())
  const pieces = await recoveryExport(share, meta, custodians.map((c, i) => ({ name: names[i]!, publicKey: c.publicKey })), 3)
  const open = (p: RecoveryPiece): OpenedRecoveryPiece => openRecoveryPiece(p, custodians[p.custodianIndex - 1]!.secretKey)

  it('round trip: any t of m custodians restore the share, checked against the verifying share', async () => {
    expect(pieces).toHaveLength(5)
    const opened = pieces.map(open)
    for (const set of [[0, 1, 2], [4, 2, 0], [1, 3, 4], [0, 1, 2, 3, 4]]) {
      const got = await recoveryRestore(set.map(i => opened[i]!), expected)
      expect(got).toEqual(share)
    }
  })

  it('fewer than t pieces are refused, and t−1 raw Shamir pieces do not give the package', async () => {
    const opened = pieces.map(open)
    await expect(recoveryRestore(opened.slice(0, 2), expected)).rejects.toThrow(/needs 3 of 5 pieces, got 2/)
    await expect(recoveryRestore(opened.slice(0, 2), expected)).rejects.toBeInstanceOf(BadInputError)
    const raw = await shamirCombine(opened.slice(0, 2).map(o => new Uint8Array(o.share)))
    expect(raw.length).toBe(RECOVERY_SECRET_LEN)
    // The package starts with the magic "KMRK" and ends with the share: neither survives t−1 pieces.
    expect(new TextDecoder().decode(raw.subarray(0, 4))).not.toBe('KMRK')
  })

  it('a piece for another node, key, epoch or cluster is refused with a clear reason', async () => {
    const opened = pieces.map(open)
    await expect(recoveryRestore(opened.slice(0, 3), { ...expected, nodeIndex: 3 })).rejects.toThrow(/pieces are for node 2, expected 3/)
    await expect(recoveryRestore(opened.slice(0, 3), { ...expected, keyKind: 'sign' })).rejects.toThrow(/the key wrap, expected sign/)
    await expect(recoveryRestore(opened.slice(0, 3), { ...expected, epoch: 5 })).rejects.toThrow(/epoch 4, expected 5/)
    await expect(recoveryRestore(opened.slice(0, 3), { ...expected, clusterId: 'ff'.repeat(16) })).rejects.toThrow(/cluster/)
    // Right context but another node's verifying share (e.g. a wrong key set): refused after restoring.
    await expect(recoveryRestore(opened.slice(0, 3), { ...expected, verifyingShare: key.pub.verifyingShares[2]! })).rejects.toBeInstanceOf(VerificationError)
    // Mixing pieces of two kits (same share exported twice, or another node's kit) is refused.
    const other = await recoveryExport(key.shares[2]!, { ...meta, nodeIndex: 3 }, custodians.map((c, i) => ({ name: names[i]!, publicKey: c.publicKey })), 3)
    await expect(recoveryRestore([opened[0]!, opened[1]!, open(other[2]!)], expected)).rejects.toThrow(/different kits/)
    const again = await recoveryExport(share, meta, custodians.map((c, i) => ({ name: names[i]!, publicKey: c.publicKey })), 3)
    await expect(recoveryRestore([opened[0]!, opened[1]!, open(again[2]!)], expected)).rejects.toThrow(/different kits/)
    // duplicates do not count twice
    await expect(recoveryRestore([opened[0]!, opened[1]!, opened[1]!], expected)).rejects.toThrow(/two pieces of custodian 2/)
  })

  it('tampered pieces are refused: ciphertext, header, swapped custodian index, altered opened piece', async () => {
    const p = pieces[0]!
    const ct = new Uint8Array(p.ciphertext); ct[5]! ^= 1
    expect(() => open({ ...p, ciphertext: ct })).toThrow(VerificationError)
    // header edits change the kit digest that HPKE info binds
    expect(() => open({ ...p, kit: { ...p.kit, epoch: 5 } })).toThrow(VerificationError)
    expect(() => open({ ...p, kit: { ...p.kit, threshold: 2 } })).toThrow(VerificationError)
    // a piece relabelled as another custodian's, opened by that custodian, fails
    expect(() => openRecoveryPiece({ ...p, custodianIndex: 2 }, custodians[1]!.secretKey)).toThrow(VerificationError)
    // the wrong custodian key is refused by name before any decryption
    expect(() => openRecoveryPiece(p, custodians[1]!.secretKey)).toThrow(/sealed to custodian 1 "alice"/)
    // an opened piece altered on its way to the restorer is named
    const opened = pieces.map(open)
    const bad = { ...opened[1]!, share: new Uint8Array(opened[1]!.share) }; bad.share[0]! ^= 1
    await expect(recoveryRestore([opened[0]!, bad, opened[2]!], expected)).rejects.toThrow(/custodian\(s\) 2 were altered/)
    // byte-level tamper of the encoded piece: every single-byte flip is refused somewhere
    const enc = encodeRecoveryPiece(p)
    for (const pos of [0, 4, 5, 30, enc.length - 100, enc.length - 1]) {
      const b = new Uint8Array(enc); b[pos]! ^= 0x40
      let ok = false
      try { open(decodeRecoveryPiece(b)) ; ok = true } catch (e) { expect(e instanceof BadInputError || e instanceof VerificationError || e instanceof UnsupportedVersionError).toBe(true) }
      expect(ok).toBe(false)
    }
  })

  it('binary and armored forms round-trip; armor is strict', () => {
    const p = pieces[3]!
    const enc = encodeRecoveryPiece(p)
    expect(encodeRecoveryPiece(decodeRecoveryPiece(enc))).toEqual(enc)
    const a = armorRecoveryPiece(p)
    expect(a).toContain('Custodian: 4 of 5 (dave)')
    expect(a).toContain(`Kit: ${Buffer.from(recoveryKitDigest(p.kit)).toString('hex')}`)
    expect(encodeRecoveryPiece(dearmorRecoveryPiece(a))).toEqual(enc)
    expect(encodeRecoveryPiece(dearmorRecoveryPiece(a.replace(/\n/g, '\r\n') + '\n\n'))).toEqual(enc)
    expect(() => dearmorRecoveryPiece(a.replace('Node: 2', 'Node: 3'))).toThrow(/headers do not match/)
    expect(() => dearmorRecoveryPiece(a.split('\n').slice(0, -3).join('\n'))).toThrow(BadInputError)
    expect(() => dearmorRecoveryPiece(a.replace(/\n\n/, '\n'))).toThrow(BadInputError)
    expect(() => decodeRecoveryPiece(enc.subarray(0, enc.length - 1))).toThrow(BadInputError)
    expect(() => decodeRecoveryPiece(new Uint8Array([...enc, 0]))).toThrow(BadInputError)
    const v2 = new Uint8Array(enc); v2[4] = 2
    expect(() => decodeRecoveryPiece(v2)).toThrow(UnsupportedVersionError)
    // opened piece codec (secret form)
    const o = open(p)
    expect(decodeOpenedRecoveryPiece(encodeOpenedRecoveryPiece(o))).toEqual(o)
  })

  it('sign-key kits and input validation', async () => {
    const s = dealKey(2, 3)
    const two = custodians.slice(0, 2)
    const ps = await recoveryExport(s.shares[0]!, { ...meta, nodeIndex: 1, keyKind: 'sign' }, two.map((c, i) => ({ name: names[i]!, publicKey: c.publicKey })), 2)
    const got = await recoveryRestore(ps.map(open), { ...meta, nodeIndex: 1, keyKind: 'sign', verifyingShare: BASE.multiply(s.shares[0]!.scalar) })
    expect(got.scalar).toBe(s.shares[0]!.scalar)
    const cs = two.map((c, i) => ({ name: names[i]!, publicKey: c.publicKey }))
    await expect(recoveryExport(share, meta, cs, 3)).rejects.toBeInstanceOf(BadInputError) // t > m
    await expect(recoveryExport(share, meta, cs, 1)).rejects.toBeInstanceOf(BadInputError) // t < 2
    await expect(recoveryExport(share, { ...meta, nodeIndex: 3 }, cs, 2)).rejects.toThrow(/share is node 2/)
    await expect(recoveryExport(share, meta, [cs[0]!, { ...cs[1]!, name: 'alice' }], 2)).rejects.toThrow(/duplicate custodian name/)
    await expect(recoveryExport(share, meta, [cs[0]!, { ...cs[1]!, publicKey: cs[0]!.publicKey }], 2)).rejects.toThrow(/duplicate custodian key/)
    await expect(recoveryExport(share, meta, [cs[0]!, { ...cs[1]!, name: 'has space' }], 2)).rejects.toBeInstanceOf(BadInputError)
    await expect(recoveryExport(share, { ...meta, clusterId: 'XYZ' }, cs, 2)).rejects.toBeInstanceOf(BadInputError)
    await expect(recoveryExport(share, meta, [cs[0]!, { ...cs[1]!, publicKey: new Uint8Array(32) }], 2)).rejects.toBeInstanceOf(BadInputError) // small-order X25519 key
  })
})
