/**
 * The node's append-only audit log (protocol/audit.ts format): DATA/audit.log, one canonical JSON
 * record per line, 0600.
 *
 * Appends are serialised (one writer, a promise chain) and each append's promise resolves only
 * after the line was handed to the OS (`write` on an O_APPEND handle); callers refuse the request
 * when it rejects (fail closed). Heads are signed with the node's libp2p identity key and followed
 * by `fdatasync`, so everything up to a head is durable; records after the last head may be lost
 * on a power cut (not on a process crash).
 *
 * On open the last complete record is read back (the last 64 KiB of the file) to continue the
 * chain; a partial last line (crash mid-write) is left as is and reported by verification. A file
 * whose tail holds no parseable record refuses to open (the chain cannot be continued honestly).
 */
import { open, readFile, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import type { PrivateKey } from '@libp2p/interface'
import { ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { toB64u } from '../protocol/bytes.ts'
import {
  GENESIS_PREV, MAX_REASON_LEN, encodeRecord, headSigningBytes, parseRecord, recordHash, sealRecord
} from '../protocol/audit.ts'
import type { AuditRecord, HeadRecord, RequestFields, SignedHead } from '../protocol/audit.ts'

const TAIL_BYTES = 64 * 1024

/** An open audit log. */
export class AuditLog {
  readonly path: string
  readonly #fh: FileHandle
  readonly #node: string
  readonly #cluster: string
  readonly #key: PrivateKey
  #seq: number
  #prev: string
  #signedSeq: number
  #lastHead: SignedHead | undefined
  #chain: Promise<unknown> = Promise.resolve()
  #closed = false
  /** Test hook: when set, appends fail (simulates a full or broken disk). */
  failWrites = false

  private constructor (path: string, fh: FileHandle, node: string, cluster: string, key: PrivateKey, seq: number, prev: string, signedSeq: number, lastHead: SignedHead | undefined) {
    this.path = path; this.#fh = fh; this.#node = node; this.#cluster = cluster; this.#key = key
    this.#seq = seq; this.#prev = prev; this.#signedSeq = signedSeq; this.#lastHead = lastHead
  }

  /**
   * Opens (creating, 0600) the log at `path` and finds the chain tip. Throws KeymeshError INTERNAL
   * when the file cannot be opened or its tail holds no valid record.
   */
  static async open (path: string, node: string, cluster: string, key: PrivateKey): Promise<AuditLog> {
    let fh: FileHandle
    try { fh = await open(path, 'a+', 0o600) } catch (e) {
      throw new KeymeshError(ErrorCode.INTERNAL, `cannot open the audit log ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e })
    }
    let seq = 0; let prev = GENESIS_PREV; let signedSeq = 0
    let lastHead: SignedHead | undefined
    const size = (await stat(path)).size
    if (size > 0) {
      const len = Math.min(size, TAIL_BYTES)
      const buf = Buffer.alloc(len)
      await fh.read(buf, 0, len, size - len)
      const lines = buf.toString('utf8').split('\n')
      if (size > len) lines.shift() // first line may be cut
      let last: AuditRecord | undefined
      for (let i = lines.length - 1; i >= 0 && last === undefined; i--) {
        const l = lines[i] as string
        if (l.trim() === '') continue
        try { last = parseRecord(l) } catch { /* partial line: keep looking */ }
      }
      if (last === undefined) {
        await fh.close()
        throw new KeymeshError(ErrorCode.INTERNAL, `audit log ${path} has no valid record in its last ${len} bytes; refusing to continue a chain that cannot be linked. Move the file aside (keep it as evidence) and restart`)
      }
      seq = last.seq; prev = recordHash(last)
      for (let i = lines.length - 1; i >= 0; i--) {
        try {
          const r = parseRecord(lines[i] as string)
          if (r.kind === 'head') { signedSeq = r.seq; lastHead = { node: r.node, seq: r.seq, prev: r.prev, time: r.time, sig: r.sig }; break }
        } catch { /* skip */ }
      }
      // A partial last line (no trailing newline) would glue onto our first record: end it.
      if (!buf.toString('utf8').endsWith('\n')) await fh.write('\n')
    }
    return new AuditLog(path, fh, node, cluster, key, seq, prev, signedSeq, lastHead)
  }

  /** Seq of the last record. */
  get lastSeq (): number { return this.#seq }
  /** The latest head this node signed (undefined before the first). */
  get lastHead (): SignedHead | undefined { return this.#lastHead }
  /** True when records exist after the last head. */
  get dirty (): boolean { return this.#seq > this.#signedSeq }

  #enqueue<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn, fn)
    this.#chain = p.catch(() => {})
    return p
  }

  async #write (r: Omit<AuditRecord, 'hash' | 'v' | 'seq' | 'prev' | 'time' | 'node'>): Promise<AuditRecord> {
    if (this.#closed) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'audit log closed')
    if (this.failWrites) throw new KeymeshError(ErrorCode.INTERNAL, 'audit log write failed (injected)')
    const rec = sealRecord({ v: 1, seq: this.#seq + 1, prev: this.#prev, time: new Date().toISOString(), node: this.#node, ...r } as Omit<AuditRecord, 'hash'>) as AuditRecord
    const line = encodeRecord(rec) + '\n'
    try {
      await this.#fh.write(line)
    } catch (e) {
      throw new KeymeshError(ErrorCode.INTERNAL, `audit log write failed: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e })
    }
    this.#seq = rec.seq; this.#prev = rec.hash
    return rec
  }

  /** Appends a request record. Throws KeymeshError (the caller must refuse the request). */
  async appendRequest (f: RequestFields): Promise<void> {
    const reason = f.reason.length > MAX_REASON_LEN ? f.reason.slice(0, MAX_REASON_LEN - 1) + '…' : f.reason
    await this.#enqueue(async () => await this.#write({ kind: 'request', ...f, reason } as Omit<AuditRecord, 'hash' | 'v' | 'seq' | 'prev' | 'time' | 'node'>))
  }

  /** Appends an event record (start, stop, policy). Throws KeymeshError. */
  async appendEvent (event: string, detail: string): Promise<void> {
    await this.#enqueue(async () => await this.#write({ kind: 'event', event, detail: detail.slice(0, MAX_REASON_LEN) } as Omit<AuditRecord, 'hash' | 'v' | 'seq' | 'prev' | 'time' | 'node'>))
  }

  /**
   * Signs the current tip (a head record), with other nodes' latest heads as witnesses, then
   * fdatasync. No-op when nothing was appended since the last head (unless `force`). Throws KeymeshError.
   */
  async signHead (witness: SignedHead[] = [], force = false): Promise<SignedHead | undefined> {
    return await this.#enqueue(async () => {
      if (!force && this.#seq === this.#signedSeq) return this.#lastHead
      const time = new Date().toISOString()
      const seq = this.#seq + 1
      const sig = toB64u(await this.#key.sign(headSigningBytes(this.#cluster, this.#node, seq, this.#prev, time)))
      const head = { kind: 'head' as const, cluster: this.#cluster, sig, ...(witness.length > 0 ? { witness } : {}) }
      if (this.#closed) throw new KeymeshError(ErrorCode.UNAVAILABLE, 'audit log closed')
      const rec = sealRecord({ v: 1 as const, seq, prev: this.#prev, time, node: this.#node, ...head }) as HeadRecord
      try {
        await this.#fh.write(encodeRecord(rec) + '\n')
        await this.#fh.datasync()
      } catch (e) {
        throw new KeymeshError(ErrorCode.INTERNAL, `audit head write failed: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e })
      }
      this.#seq = seq; this.#prev = rec.hash; this.#signedSeq = seq
      this.#lastHead = { node: this.#node, seq, prev: rec.prev, time, sig }
      return this.#lastHead
    })
  }

  /**
   * Reads records with seq ≥ from (at most `limit` records and about `maxBytes` characters), in
   * file order. Throws KeymeshError INTERNAL when the file cannot be read.
   */
  async read (from: number, limit: number, maxBytes = 2 * 1024 * 1024): Promise<string[]> {
    await this.#chain
    let text: string
    try { text = await readFile(this.path, 'utf8') } catch (e) {
      throw new KeymeshError(ErrorCode.INTERNAL, `cannot read the audit log: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e })
    }
    const out: string[] = []
    let bytes = 0
    let started = false
    for (const line of text.split('\n')) {
      if (line === '') continue
      if (!started) {
        // Records are in seq order in an untampered log; a tampered one is returned as is from the
        // first line whose seq (best effort) is ≥ from, so the verifier sees the damage.
        const m = /"seq":(\d+)/.exec(line)
        if (m !== null && Number(m[1]) >= from) started = true
        else if (m !== null || from > 1) continue
        else started = true
      }
      if (out.length >= limit || bytes + line.length > maxBytes) break
      out.push(line); bytes += line.length
    }
    return out
  }

  /** Signs a final head (when dirty) and closes. Never throws. */
  async close (witness: SignedHead[] = []): Promise<void> {
    if (this.#closed) return
    try { await this.signHead(witness) } catch { /* best effort */ }
    await this.#chain
    this.#closed = true
    await this.#fh.close().catch(() => {})
  }
}
