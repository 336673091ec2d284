/** protocol/order.ts + client/lifecycle.ts order building/signing (no network). */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ed25519 } from '@noble/curves/ed25519.js'
import { validateClusterFile } from '../../protocol/cluster.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'
import { encodeSignedOrder, parseSignedOrder, verifySignedOrder } from '../../protocol/order.ts'
import { ErrorCode, errorCode } from '../../protocol/errors.ts'
import { newOrder, signOrder } from '../../client/lifecycle.ts'
import { ADMIN_SEEDS, orderCluster } from '../vectors/generators/order.ts'

const keys = ADMIN_SEEDS.map(s => ({ secretKey: s, publicKey: ed25519.getPublicKey(s) }))

async function cluster (): Promise<ClusterFile> { return validateClusterFile(await orderCluster()) }

describe('lifecycle orders', () => {
  it('an order signed by adminThreshold admins verifies after a text round trip', async () => {
    const c = await cluster()
    const so = signOrder(signOrder(newOrder(c, 'rotate', 5, { minDecryptionEpoch: 4, attempt: 1 }), c, keys[0]!), c, keys[1]!)
    const o = verifySignedOrder(parseSignedOrder(encodeSignedOrder(so)), c)
    expect(o).toMatchObject({ op: 'rotate', epoch: 5, params: { minDecryptionEpoch: 4, attempt: 1 } })
    // Re-signing by the same admin replaces, never duplicates.
    expect(signOrder(so, c, keys[0]!).signatures.map(s => s.admin)).toEqual(['bob', 'alice'])
  })

  it('a non-admin key cannot sign', async () => {
    const c = await cluster()
    const k = new Uint8Array(32).fill(9)
    expect(() => signOrder(newOrder(c, 'rotate', 2), c, { secretKey: k, publicKey: ed25519.getPublicKey(k) })).toThrow(/not an admin/)
  })

  it('any change to a signed order is refused (property)', async () => {
    const c = await cluster()
    const so = signOrder(signOrder(newOrder(c, 'rotate', 2), c, keys[0]!), c, keys[1]!)
    fc.assert(fc.property(fc.constantFrom('epoch', 'nonce', 'issuedAt', 'params'), fc.integer({ min: 3, max: 1000 }), (field, n) => {
      const o = { ...so.order } as Record<string, unknown>
      if (field === 'epoch') o.epoch = n
      if (field === 'nonce') o.nonce = n.toString(16).padStart(32, '0')
      if (field === 'issuedAt') o.issuedAt = new Date(Date.parse(so.order.issuedAt) + n).toISOString()
      if (field === 'params') o.params = { attempt: n }
      let err: unknown
      try { verifySignedOrder(parseSignedOrder(JSON.stringify({ order: o, signatures: so.signatures })), c) } catch (e) { err = e }
      expect(errorCode(err)).toBe(ErrorCode.VERIFICATION_FAILED)
    }), { numRuns: 40 })
  })

  it('validates reshare parameters', async () => {
    const c = await cluster()
    const members = c.nodes.map(n => ({ index: n.index, peerId: n.peerId, addresses: n.addresses }))
    expect(newOrder(c, 'reshare', 2, { members, newThreshold: 3 }).order.params.newThreshold).toBe(3)
    expect(() => newOrder(c, 'reshare', 2, { members, newThreshold: 4 })).toThrow(/newThreshold/)
    expect(() => newOrder(c, 'reshare', 2, { members: [members[1]!, members[0]!], newThreshold: 2 })).toThrow(/index/)
    expect(() => newOrder(c, 'rotate', 2, { minDecryptionEpoch: 3 })).toThrow(/minDecryptionEpoch/)
  })
})
