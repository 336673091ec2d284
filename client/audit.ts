/**
 * `keymesh audit` on the client side: fetch every node's audit log (`audit.read`, paged) or read
 * log files, verify each hash chain and signed head (protocol/audit.ts), cross-check heads known
 * from elsewhere (other nodes' witnesses and a local cache of heads seen by earlier runs), merge
 * into one timeline, filter, and summarise who did what where and who was refused.
 *
 * Witness cache: `<cacheDir>/audit-heads-<clusterId>.json` keeps, per node, the highest signed
 * head seen in a log that verified cleanly. A later log that ends before it (truncation) or
 * disagrees with it (rewritten history) is flagged even when the node re-signed its tip.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BadInputError } from '../protocol/errors.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { checkKnownHeads, mergeTimelines, parseRecord, verifyHeadSig, verifyLog } from '../protocol/audit.ts'
import type { AuditIssue, AuditRecord, LogVerification, RequestRecord, SignedHead, TimelineEntry } from '../protocol/audit.ts'
import { MAX_AUDIT_PAGE } from '../protocol/rpc.ts'
import type { Policy } from '../protocol/policy.ts'
import type { KeymeshClient } from './client.ts'
import { atomicWriteFile, ensureDir, exists } from './fsutil.ts'
import { failureOf } from './quorum.ts'

/** One node's raw log. */
export interface RawLog { node: string, index?: number, lines: string[], source: string }

/**
 * Reads every node's whole log through `audit.read` (pages of MAX_AUDIT_PAGE). Nodes that fail
 * are returned in `failures` (an unreachable node is a gap in the evidence, reported as such).
 */
export async function fetchAuditLogs (client: KeymeshClient, timeoutMs = 15_000): Promise<{ logs: RawLog[], failures: Array<{ index: number, code: string, detail: string }> }> {
  const failures: Array<{ index: number, code: string, detail: string }> = []
  const logs: RawLog[] = []
  await Promise.all(client.transport.indices.map(async (index) => {
    const node = client.cluster.nodes[index - 1]?.peerId as string
    const lines: string[] = []
    try {
      let from = 1
      for (;;) {
        const r = await client.transport.call(index, 'audit.read', { from, limit: MAX_AUDIT_PAGE }, { timeoutMs })
        lines.push(...r.records)
        if (r.records.length === 0) break
        let last = 0
        try { last = parseRecord(r.records[r.records.length - 1] as string).seq } catch { break }
        if (last >= r.lastSeq || last < from) break
        from = last + 1
      }
      logs.push({ node, index, lines, source: `node ${index}` })
    } catch (e) {
      const f = failureOf(index, e)
      failures.push({ index, code: f.code, detail: f.detail })
    }
  }))
  logs.sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
  return { logs, failures: failures.sort((a, b) => a.index - b.index) }
}

/** Reads a log file; the node is taken from its first parseable record. Throws BadInputError. */
export async function readAuditFile (path: string, cluster: ClusterFile): Promise<RawLog> {
  let text: string
  try { text = await readFile(path, 'utf8') } catch (e) { throw new BadInputError('--file', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`) }
  const lines = text.split('\n').filter(l => l.trim() !== '')
  let node: string | undefined
  for (const l of lines) { try { node = parseRecord(l).node; break } catch { /* next */ } }
  if (node === undefined) throw new BadInputError('--file', `${path} holds no audit record`)
  const n = cluster.nodes.find(x => x.peerId === node)
  if (n === undefined) throw new BadInputError('--file', `${path} is the log of ${node}, which is not a node of this cluster`)
  return { node, index: n.index, lines, source: path }
}

/** Filters for the report. Times are RFC 3339 strings compared lexicographically (UTC). */
export interface AuditFilter { app?: string, env?: string, peer?: string, since?: string, until?: string, decision?: 'allow' | 'deny' | 'error' }

/** The report `keymesh audit` prints. */
export interface AuditReport {
  ok: boolean
  nodes: Array<{ node: string, index?: number, source: string, records: number, signedSeq: number, lastSeq: number, errors: number }>
  unreachable: Array<{ index: number, code: string, detail: string }>
  issues: AuditIssue[]
  /** Filtered request records, merged over the nodes, in time order. */
  timeline: Array<{ node: string, index?: number, record: RequestRecord, name?: string }>
  /** Allowed partial/partial.batch (releases obtained) and frost.sign (releases signed) by peer. */
  deployments: Array<{ time: string, node: string, peer: string, name?: string, op: string, app?: string, env?: string, release?: string, recipient?: string }>
  refused: Array<{ time: string, node: string, peer: string, name?: string, op: string, app?: string, env?: string, reason: string }>
  /** Newest valid head per node (to update the witness cache). */
  heads: SignedHead[]
}

function normTime (t: string | undefined, field: string): string | undefined {
  if (t === undefined) return undefined
  const d = new Date(t)
  if (Number.isNaN(d.getTime())) throw new BadInputError(field, 'expected a date/time (e.g. 2026-01-02T03:04:05Z)')
  return d.toISOString()
}

/**
 * Verifies and merges logs. `known` = heads from the witness cache. Never throws for bad logs
 * (they become issues); throws BadInputError for bad filters.
 */
export function buildAuditReport (cluster: ClusterFile, logs: RawLog[], opts: { known?: SignedHead[], filter?: AuditFilter, policy?: Policy, unreachable?: AuditReport['unreachable'] } = {}): AuditReport {
  const f = opts.filter ?? {}
  const since = normTime(f.since, '--since')
  const until = normTime(f.until, '--until')
  const names = new Map<string, string>()
  for (const c of cluster.clients) names.set(c.peerId, c.name)
  for (const i of opts.policy?.identities ?? []) names.set(i.peerId, i.name)
  const vs: Array<LogVerification & { index?: number, source: string }> = logs.map(l => ({ ...verifyLog(cluster.clusterId, l.node, l.lines), ...(l.index !== undefined ? { index: l.index } : {}), source: l.source }))
  const issues: AuditIssue[] = vs.flatMap(v => v.issues)
  // Heads known from elsewhere: other nodes' witnesses and the local cache.
  const known: SignedHead[] = [...(opts.known ?? []), ...vs.flatMap(v => v.witnesses)]
  for (const v of vs) issues.push(...checkKnownHeads(cluster.clusterId, v, known.filter(h => h.node === v.node)))
  for (const n of cluster.nodes) {
    if (!vs.some(v => v.node === n.peerId) && !(opts.unreachable ?? []).some(u => u.index === n.index)) {
      issues.push({ node: n.peerId, kind: 'truncated', severity: 'warning', detail: `no log for node ${n.index}` })
    }
  }
  const merged: TimelineEntry[] = mergeTimelines(vs)
  const timeline: AuditReport['timeline'] = []
  for (const e of merged) {
    const r = e.record
    if (r.kind !== 'request') continue
    if (f.app !== undefined && r.app !== f.app) continue
    if (f.env !== undefined && r.env !== f.env) continue
    if (f.peer !== undefined && r.peer !== f.peer && names.get(r.peer) !== f.peer) continue
    if (f.decision !== undefined && r.decision !== f.decision) continue
    if (since !== undefined && r.time < since) continue
    if (until !== undefined && r.time > until) continue
    const idx = cluster.nodes.find(n => n.peerId === e.node)?.index
    const name = names.get(r.peer)
    timeline.push({ node: e.node, ...(idx !== undefined ? { index: idx } : {}), record: r, ...(name !== undefined ? { name } : {}) })
  }
  const deployments = timeline.filter(t => t.record.decision === 'allow' && ['partial', 'partial.batch', 'frost.sign'].includes(t.record.op)).map(t => ({
    time: t.record.time, node: t.node, peer: t.record.peer, ...(t.name !== undefined ? { name: t.name } : {}), op: t.record.op,
    ...(t.record.app !== undefined ? { app: t.record.app } : {}), ...(t.record.env !== undefined ? { env: t.record.env } : {}), ...(t.record.release !== undefined ? { release: t.record.release } : {}),
    ...(t.record.recipient !== undefined ? { recipient: t.record.recipient } : {})
  }))
  const refused = timeline.filter(t => t.record.decision === 'deny').map(t => ({
    time: t.record.time, node: t.node, peer: t.record.peer, ...(t.name !== undefined ? { name: t.name } : {}), op: t.record.op,
    ...(t.record.app !== undefined ? { app: t.record.app } : {}), ...(t.record.env !== undefined ? { env: t.record.env } : {}), reason: t.record.reason
  }))
  const heads: SignedHead[] = []
  for (const v of vs) {
    if (v.issues.some(i => i.severity === 'error')) continue
    const h = v.heads.filter(x => verifyHeadSig(cluster.clusterId, x)).sort((a, b) => b.seq - a.seq)[0]
    if (h !== undefined) heads.push(h)
  }
  return {
    ok: issues.every(i => i.severity !== 'error'),
    nodes: vs.map(v => ({ node: v.node, ...(v.index !== undefined ? { index: v.index } : {}), source: v.source, records: v.records.length, signedSeq: v.signedSeq, lastSeq: v.lastSeq, errors: v.issues.filter(i => i.severity === 'error').length })),
    unreachable: opts.unreachable ?? [],
    issues,
    timeline,
    deployments,
    refused,
    heads
  }
}

/** Path of the witness cache for a cluster. */
export function headsCachePath (cacheDir: string, clusterId: string): string { return join(cacheDir, `audit-heads-${clusterId}.json`) }

/** Reads the witness cache (missing or unreadable = empty). Never throws. */
export async function readHeadsCache (path: string): Promise<SignedHead[]> {
  try {
    if (!await exists(path)) return []
    const j = JSON.parse(await readFile(path, 'utf8')) as { heads?: unknown }
    return Array.isArray(j.heads) ? j.heads as SignedHead[] : []
  } catch { return [] }
}

/** Merges new heads into the cache (keeps the highest seq per node). Throws BadInputError on a write failure. */
export async function updateHeadsCache (path: string, dir: string, cluster: ClusterFile, fresh: SignedHead[]): Promise<void> {
  const cur = await readHeadsCache(path)
  const by = new Map<string, SignedHead>()
  for (const h of [...cur, ...fresh]) {
    if (!verifyHeadSig(cluster.clusterId, h)) continue
    const o = by.get(h.node)
    if (o === undefined || o.seq < h.seq) by.set(h.node, h)
  }
  await ensureDir(dir, 0o700)
  await atomicWriteFile(path, JSON.stringify({ clusterId: cluster.clusterId, heads: [...by.values()] }, null, 2) + '\n', { mode: 0o600 })
}

/** Human-readable report. Never throws. */
export function formatAuditReport (r: AuditReport, cluster: ClusterFile): string {
  const idx = (node: string): string => { const n = cluster.nodes.find(x => x.peerId === node); return n === undefined ? node : `node ${n.index}` }
  const lines: string[] = []
  for (const n of r.nodes) lines.push(`${idx(n.node)}: ${n.records} records, signed through ${n.signedSeq}/${n.lastSeq}${n.errors > 0 ? `, ${n.errors} ERROR(S)` : ''} (${n.source})`)
  for (const u of r.unreachable) lines.push(`node ${u.index}: UNREACHABLE (${u.code}: ${u.detail}) — its log was not checked`)
  if (r.issues.length > 0) {
    lines.push('', 'issues:')
    for (const i of r.issues) lines.push(`  ${i.severity === 'error' ? 'ERROR' : 'warn '} ${idx(i.node)}${i.seq !== undefined ? ` #${i.seq}` : ''} ${i.kind}: ${i.detail}`)
  }
  lines.push('', 'timeline:')
  for (const t of r.timeline) {
    const x = t.record
    const who = t.name !== undefined ? `${t.name} (${x.peer.slice(-8)})` : x.peer
    const what = [x.app, x.env, x.release].filter(s => s !== undefined && s !== '').join('/')
    lines.push(`  ${x.time} ${idx(t.node)} ${x.decision.toUpperCase().padEnd(5)} ${x.op.padEnd(13)} ${who} [${x.role}]${what !== '' ? ` ${what}` : ''}${x.decision !== 'allow' ? ` — ${x.reason}` : ''}`)
  }
  const who = (peer: string, name?: string): string => name !== undefined ? name : peer
  const rel = (x: { app?: string, env?: string, release?: string }): string => `${x.app ?? '?'}/${x.env === undefined || x.env === '' ? '(any env)' : x.env}/${x.release ?? '?'}`
  lines.push('', 'releases signed (frost.sign) and release keys obtained (partial):')
  for (const d of r.deployments) lines.push(`  ${d.time} ${who(d.peer, d.name)} ${d.op === 'frost.sign' ? 'signed' : 'obtained'} ${rel(d)} via ${idx(d.node)}`)
  lines.push('', 'refused:')
  for (const d of r.refused) lines.push(`  ${d.time} ${who(d.peer, d.name)} ${d.op}${d.app !== undefined ? ` ${rel(d)}` : ''} at ${idx(d.node)}: ${d.reason}`)
  lines.push('', `releases obtained/signed: ${r.deployments.length}, refused requests: ${r.refused.length}`)
  lines.push(r.ok ? 'audit: every chain and signed head verified' : 'audit: VERIFICATION FAILED (see issues above)')
  return lines.join('\n') + '\n'
}

/** Re-export for callers that render records. */
export type { AuditRecord }
