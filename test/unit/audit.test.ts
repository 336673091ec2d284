import '../../protocol/polyfill.ts'
import { describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { checkKnownHeads, mergeTimelines, parseRecord, verifyLog } from '../../protocol/audit.ts'
import type { AuditIssueKind, SignedHead } from '../../protocol/audit.ts'
import { AuditLog } from '../../node/audit-log.ts'

const CLUSTER = 'ab'.repeat(16)
const kinds = (v: ReturnType<typeof verifyLog>): AuditIssueKind[] => v.issues.filter(i => i.severity === 'error').map(i => i.kind)

async function makeLog (n = 6): Promise<{ dir: string, node: string, lines: string[], log: AuditLog, head: SignedHead | undefined }> {
  const dir = await mkdtemp(join(tmpdir(), 'km-audit-'))
  const key = await generateKeyPair('Ed25519')
  const node = peerIdFromPrivateKey(key).toString()
  const log = await AuditLog.open(join(dir, 'audit.log'), node, CLUSTER, key)
  await log.appendEvent('node.start', 'test')
  for (let i = 0; i < n; i++) {
    await log.appendRequest({ peer: node, role: 'deployer', op: 'partial', app: 'web', env: 'prod', release: `r${i}`, decision: i % 2 === 0 ? 'allow' : 'deny', reason: 'because' })
    if (i === 2) await log.signHead()
  }
  const head = await log.signHead()
  const lines = (await readFile(join(dir, 'audit.log'), 'utf8')).split('\n').filter(l => l !== '')
  return { dir, node, lines, log, head }
}

describe('audit log', () => {
  it('an intact log verifies; continues its chain after reopening; reads pages', async () => {
    const { dir, node, lines, log } = await makeLog()
    const v = verifyLog(CLUSTER, node, lines)
    expect(v.issues).toEqual([])
    expect(v.signedSeq).toBe(lines.length)
    await log.close()
    const key = await generateKeyPair('Ed25519') // wrong key: heads would not verify → detected
    const again = await AuditLog.open(join(dir, 'audit.log'), node, CLUSTER, key)
    await again.appendEvent('node.start', 'again')
    expect(again.lastSeq).toBe(lines.length + 1)
    await again.signHead()
    const more = (await readFile(join(dir, 'audit.log'), 'utf8')).split('\n').filter(l => l !== '')
    expect(kinds(verifyLog(CLUSTER, node, more))).toEqual(['bad-signature'])
    expect((await again.read(3, 2)).map(l => parseRecord(l).seq)).toEqual([3, 4])
    await again.close()
    await rm(dir, { recursive: true })
  })

  it('detects edited, re-hashed, removed, reordered records, bad signatures, truncation and forks', async () => {
    const { dir, node, lines, log, head } = await makeLog()
    await log.close()
    const edit = (i: number, f: (o: Record<string, unknown>) => void): string[] => {
      const c = [...lines]; const o = JSON.parse(c[i] as string) as Record<string, unknown>; f(o); c[i] = JSON.stringify(o); return c
    }
    expect(kinds(verifyLog(CLUSTER, node, edit(2, o => { o.decision = 'allow' })))).toContain('tampered')
    // Re-hashed edit: its own hash is consistent but the next record's link breaks.
    const { recordHash } = await import('../../protocol/audit.ts')
    const rehashed = edit(2, o => { o.reason = 'nothing to see'; o.hash = recordHash(o as never) })
    expect(kinds(verifyLog(CLUSTER, node, rehashed))).toContain('tampered')
    expect(kinds(verifyLog(CLUSTER, node, [...lines.slice(0, 3), ...lines.slice(4)]))).toContain('gap')
    const swapped = [...lines]; [swapped[3], swapped[4]] = [swapped[4] as string, swapped[3] as string]
    expect(kinds(verifyLog(CLUSTER, node, swapped))).toEqual(expect.arrayContaining(['gap', 'reordered']))
    const badSig = edit(lines.length - 1, o => { o.sig = (o.sig as string).replace(/^./, c => c === 'A' ? 'B' : 'A'); o.hash = recordHash(o as never) })
    expect(kinds(verifyLog(CLUSTER, node, badSig))).toContain('bad-signature')
    expect(kinds(verifyLog(CLUSTER, node, ['not json', ...lines]))).toContain('malformed')
    // Truncated tail (final head included): the log alone looks fine up to its last head...
    const cut = verifyLog(CLUSTER, node, lines.slice(0, 5))
    expect(kinds(cut)).toEqual([])
    // ...but a head known from elsewhere (witness or cache) exposes it.
    expect(checkKnownHeads(CLUSTER, cut, [head as SignedHead]).map(i => i.kind)).toEqual(['truncated'])
    // A rewritten history under the same key is a fork against the known head.
    const full = verifyLog(CLUSTER, node, lines)
    expect(checkKnownHeads(CLUSTER, full, [head as SignedHead])).toEqual([])
    const forged = { ...(head as SignedHead), prev: 'f'.repeat(64) }
    expect(checkKnownHeads(CLUSTER, full, [forged])).toEqual([]) // bad signature: ignored, not trusted
    await rm(dir, { recursive: true })
  })

  it('fails closed: a failing append rejects', async () => {
    const { dir, log } = await makeLog(1)
    log.failWrites = true
    await expect(log.appendRequest({ peer: 'x', role: 'r', op: 'status', decision: 'allow', reason: '' })).rejects.toThrow(/write failed/)
    await log.close()
    await writeFile(join(dir, 'audit.log'), 'garbage with no record\n')
    const key = await generateKeyPair('Ed25519')
    await expect(AuditLog.open(join(dir, 'audit.log'), peerIdFromPrivateKey(key).toString(), CLUSTER, key)).rejects.toThrow(/no valid record/)
    await rm(dir, { recursive: true })
  })

  it('merges timelines by time', async () => {
    const a = await makeLog(2); const b = await makeLog(2)
    await a.log.close(); await b.log.close()
    const va = verifyLog(CLUSTER, a.node, a.lines); const vb = verifyLog(CLUSTER, b.node, b.lines)
    const m = mergeTimelines([va, vb])
    expect(m).toHaveLength(va.records.length + vb.records.length)
    for (let i = 1; i < m.length; i++) expect(m[i - 1]!.record.time <= m[i]!.record.time).toBe(true)
    await rm(a.dir, { recursive: true }); await rm(b.dir, { recursive: true })
  })
})
