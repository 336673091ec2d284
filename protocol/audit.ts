/**
 * Tamper-evident audit log (brief §2.6; docs/PROTOCOL.md §9.3).
 *
 * Each node keeps one append-only hash chain of records. A record is one line: the RFC 8785
 * canonical JSON of its fields plus `hash` = hex SHA-256(`keymesh/v1/audit/record` ‖ 0x00 ‖
 * canonical JSON of the record without `hash`). `seq` counts from 1, `prev` is the previous
 * record's hash (64 zeros for seq 1). Kinds:
 *   - `request`: one request and its decision (time, requester PeerId and role, operation, app,
 *     env, release, envelope digest, recipient, decision, reason, error code);
 *   - `event`: node start/stop, policy accepted/refused;
 *   - `head`: the node's Ed25519 signature (its libp2p identity key, verifiable with its PeerId)
 *     over `keymesh/v1/audit/head` ‖ 0x00 ‖ canonical {cluster, node, seq, prev, time}: it commits
 *     to every record before it. Heads may carry `witness`: other nodes' latest signed heads as
 *     seen by this node (cross-node evidence against truncation).
 *
 * `verifyLog` detects edited records (hash mismatch), broken links (prev mismatch), removed or
 * reordered records (seq gaps / order), forged or broken head signatures, truncation or forks
 * against known heads (a node's own later head, another node's witness, or a verifier's cache).
 * `mergeTimelines` merges several nodes' verified records into one timeline.
 *
 * Pure: no I/O.
 */
import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { BadInputError } from './errors.ts'
import { concat, fromB64u, utf8 } from './bytes.ts'
import { Tag } from './constants.ts'
import { canonicalJson } from './manifest.ts'
import { ed25519Verify } from './frost.ts'

/** Domain-separation tags (protocol/constants.ts Tag; re-exported under their old names). */
export const AUDIT_RECORD_TAG = Tag.AUDIT_RECORD
export const AUDIT_HEAD_TAG = Tag.AUDIT_HEAD
export const AUDIT_VERSION = 1
export const GENESIS_PREV = '0'.repeat(64)
/** Largest accepted record line (characters). */
export const MAX_AUDIT_LINE = 8192
export const MAX_REASON_LEN = 512
export const MAX_WITNESS = 64

/** Decision recorded for a request. `error` = failed before a decision (bad input, not found, ...). */
export type AuditDecision = 'allow' | 'deny' | 'error'

/** A signed chain head of some node. */
export interface SignedHead { node: string, seq: number, prev: string, time: string, sig: string }

/** Fields common to every record. */
interface RecordBase { v: 1, seq: number, prev: string, time: string, node: string, hash: string }

export interface RequestRecord extends RecordBase {
  kind: 'request'
  peer: string
  role: string
  op: string
  app?: string
  env?: string
  release?: string
  /** envelope id(s) digest: the envelopeId (hex) for one envelope, SHA-256 over the ids for a batch */
  envelope?: string
  recipient?: string
  decision: AuditDecision
  reason: string
  code?: string
}
export interface EventRecord extends RecordBase { kind: 'event', event: string, detail: string }
export interface HeadRecord extends RecordBase { kind: 'head', cluster: string, sig: string, witness?: SignedHead[] }
export type AuditRecord = RequestRecord | EventRecord | HeadRecord

/** Fields of a new request record (the log fills v/seq/prev/time/node/hash). */
export type RequestFields = Omit<RequestRecord, keyof RecordBase | 'kind'>

const HEX64 = /^[0-9a-f]{64}$/
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/
const SHORT = /^[\x20-\x7e]{0,256}$/

function sha256Hex (...parts: Uint8Array[]): string { return createHash('sha256').update(concat(...parts)).digest('hex') }

/** The hash of a record's content (all fields but `hash`). Throws BadInputError if not serialisable. */
export function recordHash (r: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _h, ...rest } = r
  void _h
  return sha256Hex(utf8(Tag.AUDIT_RECORD), new Uint8Array([0]), utf8(canonicalJson(rest)))
}

/** Bytes a node signs for a head. Throws BadInputError. */
export function headSigningBytes (cluster: string, node: string, seq: number, prev: string, time: string): Uint8Array {
  return concat(utf8(Tag.AUDIT_HEAD), new Uint8Array([0]), utf8(canonicalJson({ cluster, node, seq, prev, time })))
}

/** Verifies a head signature with the node's PeerId public key. Never throws. */
export function verifyHeadSig (cluster: string, h: SignedHead): boolean {
  try {
    const pk = peerIdFromString(h.node).publicKey
    if (pk === undefined || pk.type !== 'Ed25519') return false
    return ed25519Verify(pk.raw, headSigningBytes(cluster, h.node, h.seq, h.prev, h.time), fromB64u('sig', h.sig, 64))
  } catch { return false }
}

/** Serialises a record to its line (canonical JSON, no newline). Throws BadInputError. */
export function encodeRecord (r: AuditRecord): string { return canonicalJson(r) }

/** Completes a record: computes its hash. Throws BadInputError. */
export function sealRecord<R extends Omit<AuditRecord, 'hash'>> (r: R): R & { hash: string } {
  return { ...r, hash: recordHash(r) }
}

function str (f: string, v: unknown, re: RegExp): string {
  if (typeof v !== 'string' || !re.test(v)) throw new BadInputError(f, 'invalid value')
  return v
}

function parseHead (f: string, v: unknown): SignedHead {
  if (typeof v !== 'object' || v === null) throw new BadInputError(f, 'expected an object')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (!['node', 'seq', 'prev', 'time', 'sig'].includes(k)) throw new BadInputError(`${f}.${k}`, 'unknown field')
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1) throw new BadInputError(`${f}.seq`, 'expected a positive integer')
  return { node: str(`${f}.node`, o.node, /^[1-9A-HJ-NP-Za-km-z]{1,128}$/), seq: o.seq, prev: str(`${f}.prev`, o.prev, HEX64), time: str(`${f}.time`, o.time, TIME_RE), sig: str(`${f}.sig`, o.sig, /^[A-Za-z0-9_-]{86}$/) }
}

const COMMON = ['v', 'seq', 'prev', 'time', 'node', 'hash', 'kind']
const REQ_KEYS = ['peer', 'role', 'op', 'app', 'env', 'release', 'envelope', 'recipient', 'decision', 'reason', 'code']

/**
 * Parses one record line strictly (known fields only, types, caps). Does not check the hash.
 * Throws BadInputError.
 */
export function parseRecord (line: string): AuditRecord {
  if (typeof line !== 'string' || line.length > MAX_AUDIT_LINE) throw new BadInputError('record', `expected a line of at most ${MAX_AUDIT_LINE} characters`)
  let v: unknown
  try { v = JSON.parse(line) } catch { throw new BadInputError('record', 'not valid JSON') }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadInputError('record', 'expected an object')
  const o = v as Record<string, unknown>
  if (o.v !== AUDIT_VERSION) throw new BadInputError('record.v', `expected ${AUDIT_VERSION}`)
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1) throw new BadInputError('record.seq', 'expected a positive integer')
  str('record.prev', o.prev, HEX64); str('record.hash', o.hash, HEX64); str('record.time', o.time, TIME_RE); str('record.node', o.node, /^[1-9A-HJ-NP-Za-km-z]{1,128}$/)
  const allowed = o.kind === 'request' ? REQ_KEYS : o.kind === 'event' ? ['event', 'detail'] : o.kind === 'head' ? ['cluster', 'sig', 'witness'] : undefined
  if (allowed === undefined) throw new BadInputError('record.kind', 'expected request|event|head')
  for (const k of Object.keys(o)) if (!COMMON.includes(k) && !allowed.includes(k)) throw new BadInputError(`record.${k}`, 'unknown field')
  if (o.kind === 'request') {
    for (const k of ['peer', 'role', 'op']) str(`record.${k}`, o[k], /^[\x21-\x7e]{1,128}$/)
    for (const k of ['app', 'env', 'release', 'recipient', 'code']) if (o[k] !== undefined) str(`record.${k}`, o[k], SHORT)
    if (o.envelope !== undefined) str('record.envelope', o.envelope, HEX64)
    if (o.decision !== 'allow' && o.decision !== 'deny' && o.decision !== 'error') throw new BadInputError('record.decision', 'expected allow|deny|error')
    if (typeof o.reason !== 'string' || o.reason.length > MAX_REASON_LEN) throw new BadInputError('record.reason', 'expected a string')
  } else if (o.kind === 'event') {
    str('record.event', o.event, /^[a-z.-]{1,64}$/)
    if (typeof o.detail !== 'string' || o.detail.length > MAX_REASON_LEN) throw new BadInputError('record.detail', 'expected a string')
  } else {
    str('record.cluster', o.cluster, /^[0-9a-f]{32}$/)
    str('record.sig', o.sig, /^[A-Za-z0-9_-]{86}$/)
    if (o.witness !== undefined) {
      if (!Array.isArray(o.witness) || o.witness.length > MAX_WITNESS) throw new BadInputError('record.witness', `expected at most ${MAX_WITNESS} heads`)
      o.witness.forEach((w, i) => parseHead(`record.witness[${i}]`, w))
    }
  }
  return o as unknown as AuditRecord
}

/** The signed head a head record carries. Never throws. */
export function headOf (r: HeadRecord): SignedHead { return { node: r.node, seq: r.seq, prev: r.prev, time: r.time, sig: r.sig } }

/** Kinds of problems verification reports. */
export type AuditIssueKind = 'malformed' | 'tampered' | 'gap' | 'reordered' | 'bad-signature' | 'fork' | 'truncated' | 'wrong-node' | 'unsigned-tail' | 'clock'

/** One problem found. `severity` warning = expected in normal operation (e.g. entries after the last head on a running node). */
export interface AuditIssue { node: string, seq?: number, kind: AuditIssueKind, severity: 'error' | 'warning', detail: string }

/** Result of verifying one node's log. */
export interface LogVerification {
  node: string
  records: AuditRecord[]
  issues: AuditIssue[]
  /** Highest seq covered by a valid head signature (0 when none). */
  signedSeq: number
  lastSeq: number
  /** Valid heads seen in this log (own), and witness heads of other nodes it carries. */
  heads: SignedHead[]
  witnesses: SignedHead[]
}

/**
 * Verifies one node's log (lines in file order) for node `node` of cluster `cluster`. Never
 * throws: every problem becomes an issue. A line that does not parse, a record whose hash does not
 * match its content, a prev link that does not match, a seq gap or step back, a record naming
 * another node, a head whose signature does not verify are errors. Records after the last valid
 * head are a warning (`unsigned-tail`).
 */
export function verifyLog (cluster: string, node: string, lines: readonly string[]): LogVerification {
  const issues: AuditIssue[] = []
  const records: AuditRecord[] = []
  const heads: SignedHead[] = []
  const witnesses: SignedHead[] = []
  const err = (kind: AuditIssueKind, detail: string, seq?: number): void => { issues.push({ node, kind, severity: 'error', detail, ...(seq !== undefined ? { seq } : {}) }) }
  let prev: AuditRecord | undefined
  let signedSeq = 0
  let lastTime = ''
  lines.forEach((line, i) => {
    if (line.trim() === '') return
    let r: AuditRecord
    try { r = parseRecord(line) } catch (e) { err('malformed', `line ${i + 1}: ${(e as Error).message}`); return }
    if (r.node !== node) err('wrong-node', `record ${r.seq} names node ${r.node}`, r.seq)
    let ok = true
    if (recordHash(r) !== r.hash) { err('tampered', `record ${r.seq} was modified (its content does not match its hash)`, r.seq); ok = false }
    const expected = prev === undefined ? 1 : prev.seq + 1
    if (r.seq < expected) {
      err('reordered', `record ${r.seq} appears after record ${prev?.seq ?? 0} (records reordered or duplicated)`, r.seq)
    } else if (r.seq > expected) {
      err('gap', `records ${expected}..${r.seq - 1} are missing (removed)`, r.seq)
    } else if (r.prev !== (prev === undefined ? GENESIS_PREV : prev.hash)) {
      err('tampered', `record ${r.seq} does not link to record ${r.seq - 1} (one of them was altered or replaced)`, r.seq)
      ok = false
    }
    if (r.time < lastTime) issues.push({ node, seq: r.seq, kind: 'clock', severity: 'warning', detail: `record ${r.seq} time ${r.time} is before the previous record's ${lastTime}` })
    else lastTime = r.time
    if (r.kind === 'head') {
      const h = headOf(r)
      if (!verifyHeadSig(cluster, h) || r.cluster !== cluster) { err('bad-signature', `head at record ${r.seq} has an invalid signature`, r.seq); ok = false }
      else if (ok && issues.every(x => x.severity !== 'error')) { signedSeq = r.seq; heads.push(h) }
      else heads.push(h)
      for (const w of r.witness ?? []) if (w.node !== node) witnesses.push(w)
    }
    records.push(r)
    prev = r
  })
  const lastSeq = prev?.seq ?? 0
  if (lastSeq > signedSeq && issues.every(x => x.severity !== 'error')) {
    issues.push({ node, kind: 'unsigned-tail', severity: 'warning', seq: signedSeq + 1, detail: `records ${signedSeq + 1}..${lastSeq} are not yet covered by a signed head (normal for a running node; a head is signed at least every minute)` })
  }
  return { node, records, issues, signedSeq, lastSeq, heads, witnesses }
}

/**
 * Checks a verified log against heads known from elsewhere (witnesses in other nodes' logs, a
 * verifier's cache of earlier runs). A known head whose seq is past the end of the log means
 * truncation; one whose prev differs from the log's record seq-1 hash means a fork (history
 * rewritten under a valid key). Known heads with a bad signature are ignored. Never throws.
 */
export function checkKnownHeads (cluster: string, v: LogVerification, known: readonly SignedHead[]): AuditIssue[] {
  const out: AuditIssue[] = []
  const bySeq = new Map(v.records.map(r => [r.seq, r]))
  for (const h of known) {
    if (h.node !== v.node || !verifyHeadSig(cluster, h)) continue
    const at = bySeq.get(h.seq)
    if (h.seq > v.lastSeq) {
      out.push({ node: v.node, seq: h.seq, kind: 'truncated', severity: 'error', detail: `the node signed a head at record ${h.seq} (${h.time}) but the log ends at record ${v.lastSeq}: records were removed from the end` })
    } else if (at === undefined || at.prev !== h.prev) {
      out.push({ node: v.node, seq: h.seq, kind: 'fork', severity: 'error', detail: `a head signed at record ${h.seq} (${h.time}) does not match this log: history was rewritten` })
    }
  }
  return out
}

/** One line of the merged timeline. */
export interface TimelineEntry { node: string, record: AuditRecord }

/** Merges several nodes' records into one timeline ordered by (time, node, seq). Never throws. */
export function mergeTimelines (logs: ReadonlyArray<{ node: string, records: readonly AuditRecord[] }>): TimelineEntry[] {
  const all: TimelineEntry[] = []
  for (const l of logs) for (const r of l.records) all.push({ node: l.node, record: r })
  return all.sort((a, b) => a.record.time < b.record.time ? -1 : a.record.time > b.record.time ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : a.record.seq - b.record.seq)
}
