/**
 * The workload driver: `concurrency` workers issue wraps, rewraps, batch rewraps, threshold
 * signatures and build→deploy flows through the real client library (client/index.ts public API),
 * in an order drawn from the seeded PRNG (each worker has its own stream, so `--seed` reproduces
 * every worker's sequence of operation types and envelope choices).
 *
 * The driver is also the oracle's memory: it keeps each acknowledged wrap's data key (the harness
 * owns those copies; they are throw-away test keys) so that every later unwrap can be compared
 * byte for byte, and hands each finished operation to the invariant checker at once.
 *
 * TEST-ONLY SWITCH `brokenClient: 'skip-verification'`: rewraps then bypass the client library and
 * run a deliberately broken recipient — it combines the first k sealed partials it gets without
 * checking DLEQ proofs or the AEAD tag (AES-GCM decrypted as bare CTR). It exists so the harness
 * can be tested to catch the bugs it is meant to catch (test/integration/simulation-smoke.test.ts);
 * nothing in production code has such a switch.
 */
import { createDecipheriv, randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KeymeshClient, build, deploy } from '../client/index.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { KeymeshError, QuorumUnavailableError, VerificationError, errorCode } from '../protocol/errors.ts'
import type { Envelope } from '../protocol/envelope.ts'
import { encodeEnvelope, envelopeHeader, envelopeId } from '../protocol/envelope.ts'
import { encodeLabel } from '../protocol/label.ts'
import type { KeySet } from '../protocol/keyset.ts'
import { wrapKey } from '../protocol/keyset.ts'
import { deriveKek } from '../protocol/wrap.ts'
import { openSealedPartial } from '../protocol/partial.ts'
import type { Partial } from '../protocol/partial.ts'
import { IDENTITY, inv, lagrangeAtZero, mod } from '../protocol/group.ts'
import { MANIFEST_TYPE, validateManifest } from '../protocol/manifest.ts'
import { assembleJws, jwksFromKeySets, jwsSigningInput, verifyJws } from '../protocol/jws.ts'
import { toHex, utf8 } from '../protocol/bytes.ts'
import { HANG_SLACK_MS } from './invariants.ts'
import { Prng } from './prng.ts'
import { OP_TYPES } from './scenario.ts'
import type { OpType, WorkloadSpec } from './scenario.ts'

/**
 * Test-only broken-client modes (see the file comment): 'skip-verification' (no DLEQ / AEAD-tag
 * checks in rewraps) and 'no-hedging' (rewraps, batches and signatures wait for the first nodes
 * asked instead of hedging: hedgeMs = 60 s) — the slow-node scenario's p99 bound must catch it.
 */
export type BrokenClientMode = 'skip-verification' | 'no-hedging'

/** hedgeMs that effectively switches hedging off (a failed node is still replaced at once). */
const NO_HEDGE_MS = 60_000

/** One finished operation. Times are ms since the run's clock start. */
export interface OpRecord {
  id: number
  worker: number
  type: OpType
  startMs: number
  endMs: number
  ok: boolean
  /** Error code of a failure (KeymeshError code; INTERNAL for anything else). */
  code?: string
  detail?: string
  /** Nodes whose answers were used (rewrap/batch/sign/deploy). */
  used: number[]
  /** Nodes the client named as failed, with their codes. */
  failures: NodeFailure[]
  /** Nodes blamed by a VerificationError the operation threw. */
  blamed: number[]
  /** Oracle findings about the result (safety), filled by the driver. */
  wrongKeys: number
  /** Number of data keys / outputs checked against the oracle. */
  checkedKeys: number
  /** A failed operation left output behind (partial output). */
  partialOutput: boolean
  /** The operation did not settle by deadline + slack (reported by the watchdog). */
  hung: boolean
  deadlineMs: number
}

/** An acknowledged wrap (the oracle's copy of its data key). */
export interface AckedWrap { envelope: Envelope, dataKey: Uint8Array, opId: number }

/** An acknowledged build (its plaintext artifact and release directory). */
export interface AckedRelease { dir: string, plaintext: Uint8Array, opId: number, /** Epoch of the release's envelope. */ epoch: number }

/** Options of a workload. */
export interface WorkloadOptions {
  client: KeymeshClient
  spec: WorkloadSpec
  seed: number
  /** Scratch directory for build/deploy files. */
  dir: string
  /** ms since the run's start. */
  now: () => number
  /** Called for every finished operation (and for a hang, once, when the watchdog fires). */
  onOp: (op: OpRecord) => void
  /** Extra time after an operation's deadline before it counts as hung (ms, default HANG_SLACK_MS; the checker uses the same). */
  hangSlackMs?: number
  /** TEST ONLY: see the file comment. */
  brokenClient?: BrokenClientMode
}

/** The driver. */
export class Workload {
  readonly acked: AckedWrap[] = []
  readonly releases: AckedRelease[] = []
  private seq = 0
  private stopping = false
  private readonly running: Array<Promise<void>> = []

  /** Envelopes of epochs below this are not picked any more (a rotation with minDecryptionEpoch retires them). */
  private minEpoch = 0

  constructor (private readonly o: WorkloadOptions) {}

  /**
   * Stops picking acknowledged wraps of epochs below `epoch` for rewraps and batches (called when a
   * rotation that retires them is issued: nodes refuse their partials once it commits). The final
   * sweep checks them separately.
   */
  retireBelow (epoch: number): void { this.minEpoch = Math.max(this.minEpoch, epoch) }

  /** Acknowledged wraps that rewraps and batches may pick (not retired). */
  private live (): AckedWrap[] {
    return this.minEpoch === 0 ? this.acked : this.acked.filter(a => a.envelope.label.epoch >= this.minEpoch)
  }

  /** Wraps `count` keys before the clock starts (retries each up to 5 times). Throws the last error. */
  async prewrap (count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      let last: unknown
      for (let a = 0; a < 5; a++) {
        try {
          const dataKey = KeymeshClient.newDataKey()
          const { envelope } = await this.o.client.wrap(this.label('pre'), dataKey)
          this.acked.push({ envelope, dataKey, opId: -1 })
          last = undefined
          break
        } catch (e) { last = e }
      }
      if (last !== undefined) throw last
    }
  }

  /**
   * Warms every node up before the clock starts: one rewrap, one batch rewrap and one signature
   * (unreported; failures ignored), so that first-use costs in fresh node processes (JIT, lazily
   * built tables, first streams) are not charged to the first operations of a steady-state run.
   * Never throws.
   */
  async warmup (): Promise<void> {
    if (this.acked.length === 0) return
    const scratch = (): OpRecord => ({ id: -1, worker: -1, type: 'rewrap', startMs: 0, endMs: 0, ok: false, used: [], failures: [], blamed: [], wrongKeys: 0, checkedKeys: 0, partialOutput: false, hung: false, deadlineMs: 20_000 })
    const picks = Array.from({ length: this.o.spec.batchSize }, (_, i) => i)
    for (const type of ['rewrap', 'batch', 'sign'] as const) {
      // Twice: the hedged client asks different nodes each time.
      for (let i = 0; i < 2; i++) await this.execute(scratch(), type, i, picks, 20_000).catch(() => {})
    }
  }

  /** Starts the workers. */
  start (): void {
    for (let w = 0; w < this.o.spec.concurrency; w++) this.running.push(this.worker(w))
  }

  /**
   * Stops issuing operations and waits for the in-flight ones — at most until the longest
   * deadline + slack has passed (a hung operation was already reported by its watchdog). Never throws.
   */
  async stop (): Promise<void> {
    this.stopping = true
    const cap = 2 * this.o.spec.deadlineMs + BUILD_KEYSET_DEADLINE_MS + (this.o.hangSlackMs ?? HANG_SLACK_MS) + 1_000
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled(this.running),
      new Promise<void>(resolve => { timer = setTimeout(resolve, cap) })
    ])
    clearTimeout(timer)
  }

  /** Hedge options: the library's defaults, or hedging off under the 'no-hedging' test switch. */
  private hedge (): { hedgeMs?: number } {
    return this.o.brokenClient === 'no-hedging' ? { hedgeMs: NO_HEDGE_MS } : {}
  }

  private label (prefix: string): { purpose: string, app: string, env: string, release: string } {
    return { purpose: 'release-key', app: 'sim', env: '', release: `${prefix}-${++this.seq}` }
  }

  private async worker (w: number): Promise<void> {
    const rng = new Prng(this.o.seed, `workload-${w}`)
    const weights = OP_TYPES.map(t => this.o.spec.mix[t] ?? 0)
    let opNo = 0
    while (!this.stopping) {
      let type = OP_TYPES[rng.weighted(weights)] as OpType
      // Draw the envelope choices now (fixed number of draws per op keeps the stream aligned).
      const r1 = rng.nextU32()
      const picks = Array.from({ length: this.o.spec.batchSize }, () => rng.nextU32())
      if ((type === 'rewrap' || type === 'batch') && this.live().length === 0) type = 'wrap'
      const ok = await this.runOp(w, w * 1_000_000 + opNo++, type, r1, picks)
      // A client backs off after a failure (a failing quorum op returns in milliseconds; without a
      // pause the workers would spin and starve the restarting nodes of CPU on a small host).
      const pause = ok ? (this.o.spec.thinkMs ?? 0) : Math.max(this.o.spec.thinkMs ?? 0, this.o.spec.failureBackoffMs ?? 200)
      if (pause > 0) await new Promise(res => setTimeout(res, pause))
    }
  }

  /** Runs one operation and reports it; resolves true when it succeeded. */
  private async runOp (worker: number, id: number, type: OpType, r1: number, picks: number[]): Promise<boolean> {
    // build() fetches the key set with the library's default deadline (8 s; BuildOptions has no
    // whole-operation deadline), then signs (deadline); deploy() rewraps (deadline).
    const deadlineMs = type === 'deploy' ? 2 * this.o.spec.deadlineMs + BUILD_KEYSET_DEADLINE_MS : this.o.spec.deadlineMs
    const rec: OpRecord = {
      id, worker, type, startMs: this.o.now(), endMs: 0, ok: false, used: [], failures: [], blamed: [],
      wrongKeys: 0, checkedKeys: 0, partialOutput: false, hung: false, deadlineMs
    }
    const slack = this.o.hangSlackMs ?? HANG_SLACK_MS
    const watchdog = setTimeout(() => {
      rec.hung = true
      this.o.onOp({ ...rec, endMs: this.o.now(), code: 'HANG', detail: `no result after ${deadlineMs + slack} ms` })
    }, deadlineMs + slack)
    try {
      await this.execute(rec, type, r1, picks, deadlineMs)
      rec.ok = true
    } catch (e) {
      rec.ok = false
      rec.code = errorCode(e)
      rec.detail = (e instanceof Error ? e.message : String(e)).slice(0, 300)
      if (e instanceof VerificationError) rec.blamed = [...e.blame]
      if (e instanceof QuorumUnavailableError) rec.failures = e.failures
    } finally {
      clearTimeout(watchdog)
    }
    rec.endMs = this.o.now()
    if (!rec.hung) this.o.onOp(rec)
    return rec.ok
  }

  private async execute (rec: OpRecord, type: OpType, r1: number, picks: number[], deadlineMs: number): Promise<void> {
    const c = this.o.client
    switch (type) {
      case 'wrap': {
        const dataKey = KeymeshClient.newDataKey()
        // The k-agreed key set (network, under the op's deadline), then the local wrap for its epoch.
        const ks = await c.keySet(undefined, { deadlineMs })
        const { envelope } = await c.wrap({ ...this.label('w'), epoch: ks.epoch }, dataKey)
        this.acked.push({ envelope, dataKey, opId: rec.id })
        return
      }
      case 'rewrap': {
        const pool = this.live()
        const a = pool[r1 % pool.length] as AckedWrap
        const r = this.o.brokenClient === 'skip-verification'
          ? await brokenRewrap(c, a.envelope, deadlineMs, r1)
          : await c.rewrap(a.envelope, { deadlineMs, ...this.hedge() })
        rec.used = r.nodes
        rec.failures = r.failures
        rec.checkedKeys = 1
        if (!equal(r.dataKey, a.dataKey)) rec.wrongKeys = 1
        return
      }
      case 'batch': {
        // One batch is one epoch: the first pick chooses the epoch, every pick is taken among the
        // acknowledged wraps of that epoch (before any rotation: all of them, as before).
        const pool = this.live()
        const epoch = (pool[(picks[0] ?? 0) % pool.length] as AckedWrap).envelope.label.epoch
        const same = pool.filter(a => a.envelope.label.epoch === epoch)
        const chosen = picks.map(p => same[p % same.length] as AckedWrap)
        const r = await c.rewrapBatch(chosen.map(a => a.envelope), { deadlineMs, ...this.hedge() })
        rec.failures = r.failures
        rec.checkedKeys = chosen.length
        if (r.dataKeys.length !== chosen.length) rec.partialOutput = true
        chosen.forEach((a, i) => { const k = r.dataKeys[i]; if (k === undefined || !equal(k, a.dataKey)) rec.wrongKeys++ })
        return
      }
      case 'sign': {
        const t0 = Date.now()
        const ks = await c.keySet(undefined, { deadlineMs })
        const manifest = validateManifest({
          v: 1,
          type: MANIFEST_TYPE,
          cluster: ks.clusterId,
          epoch: ks.epoch,
          app: 'sim',
          release: `s-${++this.seq}`,
          artifact: { sha256: toHex(randomBytes(32)), size: 1 + (r1 % 1_000_000) },
          envelope: toHex(randomBytes(32)),
          builder: c.identity.peerId.toString(),
          createdAt: new Date().toISOString()
        })
        const input = jwsSigningInput(manifest)
        const r = await c.sign(utf8(input), { deadlineMs: Math.max(1, deadlineMs - (Date.now() - t0)), epoch: ks.epoch, ...this.hedge() })
        rec.used = r.signers
        rec.failures = r.failures
        rec.checkedKeys = 1
        // Independent check: the assembled JWS verifies under the cluster's JWKS.
        try { verifyJws(assembleJws(input, r.signature), jwksFromKeySets([ks])) } catch { rec.wrongKeys = 1 }
        return
      }
      case 'deploy': {
        const n = ++this.seq
        const input = join(this.o.dir, `artifact-${n}.bin`)
        const rel = join(this.o.dir, `release-${n}`)
        const out = join(this.o.dir, `deployed-${n}.bin`)
        await mkdir(this.o.dir, { recursive: true })
        const plaintext = new Uint8Array(randomBytes(2048 + (r1 % 2048)))
        await writeFile(input, plaintext)
        let epoch: number
        try {
          epoch = (await build(c, { app: 'sim', release: `d-${n}`, input, out: rel, signDeadlineMs: this.o.spec.deadlineMs })).envelope.label.epoch
        } catch (e) {
          if (await exists(rel)) rec.partialOutput = true
          throw e
        } finally {
          await rm(input, { force: true })
        }
        this.releases.push({ dir: rel, plaintext, opId: rec.id, epoch })
        try {
          const d = await deploy(c, { release: rel, out, deadlineMs: this.o.spec.deadlineMs })
          rec.used = d.nodes
          rec.failures = d.failures
        } catch (e) {
          if (await exists(out)) rec.partialOutput = true
          throw e
        }
        rec.checkedKeys = 1
        if (!equal(new Uint8Array(await readFile(out)), plaintext)) rec.wrongKeys = 1
        await rm(out, { force: true })
      }
    }
  }
}

async function exists (p: string): Promise<boolean> {
  try { await stat(p); return true } catch { return false }
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

const INV64 = inv(64n)

/** Deadline the client library uses for the key-set fetch inside build() (keyset-fetch.ts default). */
export const BUILD_KEYSET_DEADLINE_MS = 8_000

/**
 * TEST-ONLY broken recipient (see the file comment): asks nodes one by one (order drawn from `r`),
 * takes the first k partials that open, combines them WITHOUT checking any DLEQ proof and decrypts
 * the data key WITHOUT checking the AES-GCM tag. Throws QuorumUnavailableError with fewer than k.
 */
async function brokenRewrap (c: KeymeshClient, e: Envelope, deadlineMs: number, r: number): Promise<{ dataKey: Uint8Array, nodes: number[], failures: NodeFailure[] }> {
  const t = c.transport
  const ks: KeySet = await c.keySet(e.label.epoch)
  const k = ks.threshold
  const order = new Prng(r).shuffle(t.indices)
  const ids = [envelopeId(e)]
  const envelope = encodeEnvelope(e)
  const got: Partial[] = []
  const failures: NodeFailure[] = []
  const until = Date.now() + deadlineMs
  for (const i of order) {
    if (got.length === k) break
    const left = until - Date.now()
    if (left <= 0) break
    try {
      const res = await t.call(i, 'partial', { epoch: ks.epoch, envelope, recipient: t.identity.recipientPublicKey }, { timeoutMs: Math.min(left, 2_000) })
      got.push(openSealedPartial(res.sealed, ks, ids, i, t.identity.recipientSecretKey) as Partial)
    } catch (err) {
      failures.push({ index: i, code: err instanceof KeymeshError ? err.code : 'INTERNAL', detail: 'broken client: call failed' })
    }
  }
  if (got.length < k) throw new QuorumUnavailableError(k, got.length, failures)
  const idx = got.map(p => p.index)
  let Z = IDENTITY
  for (const p of got) Z = Z.add(p.D.clearCofactor().multiplyUnsafe(mod(lagrangeAtZero(idx, p.index) * INV64)))
  const header = envelopeHeader(encodeLabel(e.label), e.R)
  const kek = deriveKek(Z, e.R, wrapKey(ks), header)
  // AES-GCM's keystream for the first block is CTR from inc32(J0) = IV ‖ 0x00000002 (SP 800-38D §7.1); no tag check.
  const iv = new Uint8Array(16)
  iv[15] = 2
  const d = createDecipheriv('aes-256-ctr', kek, iv)
  const dataKey = new Uint8Array(d.update(e.ciphertext.subarray(0, 32)))
  return { dataKey, nodes: idx.sort((a, b) => a - b), failures }
}
