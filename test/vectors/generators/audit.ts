/**
 * Known-answer vectors for the audit log (docs/PROTOCOL.md §9.4): a fixed
 * chain of records (request, event, head signed with a libp2p Ed25519 key from a fixed seed),
 * their exact lines and hashes, and damaged variants with the issue kinds verification must report.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { toB64u } from '../../../protocol/bytes.ts'
import { GENESIS_PREV, encodeRecord, headSigningBytes, sealRecord } from '../../../protocol/audit.ts'
import type { AuditRecord } from '../../../protocol/audit.ts'

export const AUDIT_CLUSTER = '6b65796d6573682d746573742d303031'

export async function generate (): Promise<unknown> {
  const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(0x0a))
  const node = peerIdFromPrivateKey(key).toString()
  const peer = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(0x0b))).toString()
  const recs: AuditRecord[] = []
  const push = (r: Record<string, unknown>): void => {
    const prev = recs.length === 0 ? GENESIS_PREV : (recs[recs.length - 1] as AuditRecord).hash
    recs.push(sealRecord({ v: 1, seq: recs.length + 1, prev, node, time: `2026-11-25T04:00:0${recs.length}.000Z`, ...r } as never) as AuditRecord)
  }
  push({ kind: 'event', event: 'node.start', detail: 'policy v7' })
  push({ kind: 'request', peer, role: 'deployer', op: 'partial', app: 'web', env: 'prod', release: '1.4.2', envelope: '2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae', recipient: toB64u(new Uint8Array(32).fill(0x44)), decision: 'allow', reason: 'deployer "web-prod" rewrap to its own key for app "web" env "prod"' })
  push({ kind: 'request', peer, role: 'deployer', op: 'partial', app: 'api', env: 'prod', release: '9', decision: 'deny', reason: '"web-prod" is not scoped for app "api" env "prod"' })
  const time = '2026-11-25T04:00:03.000Z'
  const last = recs[recs.length - 1] as AuditRecord
  const sig = toB64u(await key.sign(headSigningBytes(AUDIT_CLUSTER, node, 4, last.hash, time)))
  recs.push(sealRecord({ v: 1, seq: 4, prev: last.hash, node, time, kind: 'head', cluster: AUDIT_CLUSTER, sig }) as AuditRecord)
  push({ kind: 'request', peer, role: 'auditor', op: 'audit.read', decision: 'allow', reason: 'x' })
  const lines = recs.map(encodeRecord)
  const edit = (i: number, f: (s: string) => string): string[] => lines.map((l, j) => j === i ? f(l) : l)
  return {
    format: 'audit',
    version: 1,
    description: 'Audit hash chain: record hash = SHA-256("keymesh/v1/audit/record" 0x00 canonical-without-hash), head sig = Ed25519(node key, "keymesh/v1/audit/head" 0x00 canonical{cluster,node,seq,prev,time}); damaged variants with expected issue kinds',
    cases: [
      { name: 'intact chain', valid: true, cluster: AUDIT_CLUSTER, node, lines, hashes: recs.map(r => r.hash), signedSeq: 4, lastSeq: 5, issues: ['unsigned-tail'] },
      { name: 'edited record', valid: false, cluster: AUDIT_CLUSTER, node, lines: edit(1, l => l.replace('"allow"', '"deny"')), issues: ['tampered'] },
      { name: 'removed record', valid: false, cluster: AUDIT_CLUSTER, node, lines: lines.filter((_, j) => j !== 2), issues: ['gap'] },
      { name: 'reordered records', valid: false, cluster: AUDIT_CLUSTER, node, lines: [lines[0], lines[2], lines[1], lines[3], lines[4]], issues: ['clock', 'gap', 'reordered'] },
      { name: 'head signature replaced', valid: false, cluster: AUDIT_CLUSTER, node, lines: edit(3, l => l.replace(/"sig":"./, m => m.endsWith('A') ? m.slice(0, -1) + 'B' : m.slice(0, -1) + 'A')), issues: ['tampered', 'bad-signature'] },
      { name: 'another node', valid: false, cluster: AUDIT_CLUSTER, node: peer, lines, issues: ['wrong-node'] }
    ]
  }
}
