import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { toB64u } from '../../protocol/bytes.ts'
import { validateClusterFile } from '../../protocol/cluster.ts'
import { GENESIS_PREV, encodeRecord, headSigningBytes, sealRecord, verifyLog } from '../../protocol/audit.ts'
import type { AuditRecord } from '../../protocol/audit.ts'
import { ROLES, decide, inScope, validatePolicy } from '../../protocol/policy.ts'
import type { Policy, PolicyOp, Role } from '../../protocol/policy.ts'

const CLUSTER = 'ab'.repeat(16)
const peers = await Promise.all(Array.from({ length: 8 }, async (_, i) => peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))).toString()))
const nodeKey = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(0x77))
const node = peerIdFromPrivateKey(nodeKey).toString()
const cluster = validateClusterFile({
  format: 'keymesh.cluster', version: 1, clusterId: CLUSTER, threshold: 2,
  nodes: [{ index: 1, peerId: node, addresses: ['/ip4/127.0.0.1/tcp/1'] }, { index: 2, peerId: peers[7], addresses: ['/ip4/127.0.0.1/tcp/2'] }],
  admins: [], adminThreshold: 0, clients: [], createdAt: '2026-01-01T00:00:00Z'
})

const pat = fc.constantFrom('*', 'web', 'api', 'web*', 'prod', 'p?od', '')
const keyOf = (i: number): string => toB64u(new Uint8Array(32).fill(0x40 + i))
const policyArb = fc.record({
  ids: fc.array(fc.record({ roles: fc.subarray([...ROLES], { minLength: 1 }), scopes: fc.array(fc.record({ app: pat.filter(p => p !== ''), env: pat }), { maxLength: 3 }), revoked: fc.boolean(), hasKey: fc.boolean() }), { minLength: 1, maxLength: 7 }),
  allowBD: fc.boolean(),
  signed: fc.boolean()
}).map(({ ids, allowBD }): Policy | undefined => {
  try {
    return validatePolicy({
      format: 'keymesh.policy', version: 1, clusterId: CLUSTER, policyVersion: 1,
      identities: ids.map((x, i) => ({ name: `id${i}`, peerId: peers[i], roles: x.roles, scopes: x.scopes, ...(x.hasKey || x.roles.includes('deployer') ? { recipientKey: keyOf(i) } : {}), ...(x.revoked ? { revoked: true } : {}) })),
      rules: { requireSignedRelease: true, allowBuilderDeployer: allowBD, approvals: {} }
    })
  } catch { return undefined }
})

describe('decide invariants (property)', () => {
  it('an allowed partial is always sealed to an enrolled, non-revoked deployer key in scope, for a signed release, never to a builder\'s own key without allowBuilderDeployer', () => {
    fc.assert(fc.property(policyArb, fc.nat(7), fc.constantFrom('web', 'api'), fc.constantFrom('prod', 'dev', ''), fc.nat(8), fc.boolean(), (p, who, app, env, key, signed) => {
      if (p === undefined) return
      const recipient = keyOf(key)
      const d = decide(p, cluster, { peerId: peers[who] as string, kind: 'client' }, 'partial', { app, env, release: 'r', recipient, signedRelease: signed })
      if (!d.allow) return
      const caller = p.identities.find(i => i.peerId === peers[who])
      const target = p.identities.find(i => i.recipientKey === recipient)
      expect(signed).toBe(true)
      expect(caller?.revoked).not.toBe(true)
      expect(target).toBeDefined()
      expect(target?.revoked).not.toBe(true)
      expect(target?.roles).toContain('deployer')
      expect(inScope(target?.scopes ?? [], app, env)).toBe(true)
      expect(inScope(caller?.scopes ?? [], app, env)).toBe(true)
      if (target?.peerId !== caller?.peerId) expect(caller?.roles).toContain('builder' as Role)
      if (target?.peerId === caller?.peerId && caller?.roles.includes('builder') === true) expect(p.rules.allowBuilderDeployer).toBe(true)
    }), { numRuns: 400 })
  })

  it('never throws; nodes never get partial/frost/audit; unknown peers get nothing', () => {
    const ops: PolicyOp[] = ['connect', 'status', 'keyset.get', 'policy.get', 'policy.push', 'audit.read', 'wrap', 'frost.commit', 'frost.sign', 'partial', 'dkg']
    fc.assert(fc.property(policyArb, fc.constantFrom(...ops), (p, op) => {
      const n = decide(p, cluster, { peerId: node, kind: 'node' }, op, {})
      if (['partial', 'frost.sign', 'frost.commit', 'audit.read', 'wrap'].includes(op)) expect(n.allow).toBe(false)
      const stranger = decide(p, cluster, { peerId: 'x', kind: 'client' }, op, {})
      expect(stranger.allow).toBe(false)
    }), { numRuns: 200 })
  })
})

describe('audit chain (property)', () => {
  const lines: string[] = []
  let prev = GENESIS_PREV
  const add = (r: Record<string, unknown>): void => {
    const rec = sealRecord({ v: 1, seq: lines.length + 1, prev, node, time: `2026-01-01T00:00:${String(lines.length).padStart(2, '0')}.000Z`, ...r } as never) as AuditRecord
    prev = rec.hash; lines.push(encodeRecord(rec))
  }
  for (let i = 0; i < 12; i++) add({ kind: 'request', peer: peers[i % 3], role: 'deployer', op: 'partial', app: 'web', env: 'prod', release: `r${i}`, decision: i % 3 === 0 ? 'deny' : 'allow', reason: `reason ${i}` })
  const t = '2026-01-01T00:00:59.000Z'
  const sig = toB64u(nodeKey.sign(headSigningBytes(CLUSTER, node, lines.length + 1, prev, t)) as Uint8Array)
  add({ kind: 'head', cluster: CLUSTER, sig })
  // the helper above sets time from the index; rebuild the head with the signed time
  const headObj = JSON.parse(lines.pop() as string) as Record<string, unknown>
  prev = headObj.prev as string
  lines.push(encodeRecord(sealRecord({ ...headObj, time: t, hash: undefined } as never) as AuditRecord))

  it('the untouched chain verifies and is fully signed', () => {
    const v = verifyLog(CLUSTER, node, lines)
    expect(v.issues).toEqual([])
    expect(v.signedSeq).toBe(lines.length)
  })

  it('any change to one character of one record, any deletion and any swap is detected', () => {
    fc.assert(fc.property(fc.nat(lines.length - 1), fc.nat(10_000), fc.integer({ min: 0x20, max: 0x7e }), fc.constantFrom('edit', 'delete', 'swap'), (li, pos, ch, how) => {
      const c = [...lines]
      if (how === 'edit') {
        const l = c[li] as string
        const p = pos % l.length
        if (l.charCodeAt(p) === ch) return
        c[li] = l.slice(0, p) + String.fromCharCode(ch) + l.slice(p + 1)
      } else if (how === 'delete') {
        if (li === lines.length - 1) return // dropping the tail is truncation: needs a known head (checkKnownHeads)
        c.splice(li, 1)
      } else {
        const lj = (li + 1 + (pos % (lines.length - 1))) % lines.length
        ;[c[li], c[lj]] = [c[lj] as string, c[li] as string]
      }
      const v = verifyLog(CLUSTER, node, c)
      expect(v.issues.some(i => i.severity === 'error')).toBe(true)
    }), { numRuns: 300 })
  })
})
