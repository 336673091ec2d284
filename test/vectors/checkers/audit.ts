/** Checks one audit known-answer case (see generators/audit.ts). Throws on mismatch. */
import { recordHash, parseRecord, verifyLog } from '../../../protocol/audit.ts'

interface AuditCase { name: string, valid: boolean, cluster: string, node: string, lines: string[], hashes?: string[], signedSeq?: number, lastSeq?: number, issues: string[] }

export function check (c: AuditCase): void {
  const v = verifyLog(c.cluster, c.node, c.lines)
  const kinds = [...new Set(v.issues.map(i => i.kind))].sort()
  if (JSON.stringify(kinds) !== JSON.stringify([...c.issues].sort())) throw new Error(`${c.name}: issues ${kinds.join(',')} expected ${c.issues.join(',')}`)
  if (c.valid) {
    c.lines.forEach((l, i) => { if (recordHash(parseRecord(l)) !== c.hashes?.[i]) throw new Error(`${c.name}: hash ${i} mismatch`) })
    if (v.signedSeq !== c.signedSeq || v.lastSeq !== c.lastSeq) throw new Error(`${c.name}: signed/last seq mismatch`)
  } else if (!v.issues.some(i => i.severity === 'error')) {
    throw new Error(`${c.name}: accepted`)
  }
}
