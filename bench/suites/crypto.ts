/**
 * Crypto suite: the cost of every protocol operation, in ops/s and as a multiple of one bare
 * variable-base scalar multiplication measured in the same run (docs/BENCHMARKS.md explains each
 * row), plus artifact STREAM throughput against raw AES-256-GCM on the same buffer.
 *
 * Protocol modules are loaded with dynamic imports and every row is measured inside its own
 * try/catch, so a module that is missing or broken turns into a "not available" row (with the
 * reason) instead of a fake number or a crashed run.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { setFlagsFromString } from 'node:v8'
import { execFile } from 'node:child_process'
import { dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runInNewContext } from 'node:vm'
import { atMost, measure, median, opsRow, timingFor, unavailable } from '../lib.ts'
import type { Baseline, BenchContext, Result, Timing } from '../lib.ts'
import type { Point } from '../../protocol/group.ts'
import type { KeySet, KeyShare, GroupPublicKey } from '../../protocol/keyset.ts'
import type { Label } from '../../protocol/label.ts'
import type { Envelope } from '../../protocol/envelope.ts'
import type { Partial as NodePartial } from '../../protocol/partial.ts'
import type { DkgRound1Package, DkgState } from '../../protocol/dkg.ts'
import type { SigningNonces } from '../../protocol/frost.ts'
import type * as wrapNS from '../../protocol/wrap.ts'
import type * as partialNS from '../../protocol/partial.ts'
import type * as combineNS from '../../protocol/combine.ts'
import type * as hpkeNS from '../../protocol/hpke.ts'
import type * as dkgNS from '../../protocol/dkg.ts'
import type * as frostNS from '../../protocol/frost.ts'
import type * as artifactNS from '../../protocol/artifact.ts'
import type * as groupNS from '../../protocol/group.ts'
import type * as labelNS from '../../protocol/label.ts'

type WrapMod = typeof wrapNS
type PartialMod = typeof partialNS
type CombineMod = typeof combineNS
type HpkeMod = typeof hpkeNS
type DkgMod = typeof dkgNS
type FrostMod = typeof frostNS
type ArtifactMod = typeof artifactNS
type GroupMod = typeof groupNS
type LabelMod = typeof labelNS

const SUITE = 'crypto'
const K = 3
const N = 5
const BATCH = 100
const MiB = 1024 * 1024


/**
 * A full, synchronous garbage collection between timed passes, so every pass starts from the same
 * heap state (garbage from earlier passes would otherwise be collected inside a later pass, and
 * which side it lands on is luck). Uses V8's gc() when exposed, else enables it at run time.
 */
function fullGc (): void {
  let gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
}

/** Imports a protocol module; returns the reason instead of throwing. */
async function load<T> (name: string): Promise<T | string> {
  try {
    return await import(`../../protocol/${name}.ts`) as T
  } catch (e) {
    return `protocol/${name}.ts failed to load (${e instanceof Error ? e.message.split('\n')[0] as string : String(e)})`
  }
}

function why (e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message.split('\n')[0] as string}` : String(e)
}

/** Runs the in-process DKG for a k-of-n key (all participants in this process). */
function runDkg (dkg: DkgMod, k: number, n: number): { shares: KeyShare[], publicKey: GroupPublicKey } {
  const states: DkgState[] = []
  const round1s: DkgRound1Package[] = []
  for (let i = 1; i <= n; i++) { const s = dkg.dkgStart(i, k, n); states.push(s.state); round1s.push(s.round1) }
  const inbox = states.map(() => new Map<number, Uint8Array>())
  for (const s of states) for (const [to, pkg] of dkg.dkgRound2(s, round1s)) (inbox[to - 1] as Map<number, Uint8Array>).set(s.index, pkg)
  const outs = states.map((s, i) => dkg.dkgFinish(s, round1s, inbox[i] as Map<number, Uint8Array>))
  return { shares: outs.map(o => o.share), publicKey: (outs[0] as { publicKey: GroupPublicKey }).publicKey }
}

/** Trusted-dealer key (bench set-up only, when the DKG module is unavailable). */
function dealerKey (g: GroupMod, k: number, n: number): { shares: KeyShare[], publicKey: GroupPublicKey } {
  const coeffs = Array.from({ length: k }, () => g.randomScalar())
  const shares: KeyShare[] = []
  for (let i = 1; i <= n; i++) {
    let y = 0n
    for (let j = k - 1; j >= 0; j--) y = g.mod(y * BigInt(i) + (coeffs[j] as bigint))
    shares.push({ index: i, scalar: y })
  }
  return { shares, publicKey: { commitments: coeffs.map(c => g.BASE.multiply(c)), verifyingShares: shares.map(s => g.BASE.multiply(s.scalar)) } }
}

function wanted (ctx: BenchContext, id: string): boolean {
  return ctx.rows === undefined || ctx.rows.includes(id)
}

/** Runs the crypto suite. Never throws for a missing/broken protocol module (rows say why). */
export async function run (ctx: BenchContext): Promise<Result[]> {
  const T = timingFor(ctx.quick)
  const out: Result[] = []
  const g = await load<GroupMod>('group')
  if (typeof g === 'string') return [unavailable(SUITE, 'scalarmult', 'scalar mult (baseline)', g)]

  // Baseline: noble's constant-time variable-base Point.multiply, random point × random scalar.
  ctx.log('crypto: scalar multiplication baseline')
  const points: Point[] = Array.from({ length: 16 }, () => ed25519.Point.BASE.multiply(g.randomScalar()))
  let pi = 0
  const scalarMult: Baseline<{ P: Point, s: bigint }> = { prepare: () => ({ P: points[pi++ & 15] as Point, s: g.randomScalar() }), run: ({ P, s }) => P.multiply(s) }
  const base = await measure(scalarMult.run, T, scalarMult.prepare)
  // Every later row interleaves baseline calls with its own calls (multiple = p10 / p10, lib.ts).
  const timed = async <S = void>(fn: (s: S) => unknown, opts = T, setup?: () => S): Promise<Timing> => await measure(fn, opts, setup, scalarMult)
  out.push(opsRow(SUITE, 'scalarmult', 'scalar mult (baseline = 1×)', base, { multiple: 1, note: 'noble ed25519 Point.multiply (constant time), random point × random scalar' }))
  const row = (id: string, name: string, t: Timing, extra: Partial<Result> = {}): Result => opsRow(SUITE, id, name, t, extra, base)

  // Key set: the real DKG when it works (the dkg row times it), else a dealer polynomial.
  const [wrapM, partialM, combineM, hpkeM, dkgM, frostM, labelM] = await Promise.all([
    load<WrapMod>('wrap'), load<PartialMod>('partial'), load<CombineMod>('combine'), load<HpkeMod>('hpke'),
    load<DkgMod>('dkg'), load<FrostMod>('frost'), load<LabelMod>('label')
  ])
  let ks: KeySet | undefined
  let wrapShares: KeyShare[] = []
  let signShares: KeyShare[] = []
  let keyNote = ''
  try {
    let w, s
    if (typeof dkgM !== 'string') {
      try { w = runDkg(dkgM, K, N); s = runDkg(dkgM, K, N); keyNote = 'key set from the in-process DKG' } catch (e) { keyNote = `DKG failed (${why(e)}); dealer key set` }
    } else keyNote = 'DKG unavailable; dealer key set'
    w ??= dealerKey(g, K, N)
    s ??= dealerKey(g, K, N)
    ks = { version: 1, clusterId: randomBytes(16).toString('hex'), epoch: 1, threshold: K, n: N, wrap: w.publicKey, sign: s.publicKey }
    wrapShares = w.shares
    signShares = s.shares
  } catch (e) {
    keyNote = `key set set-up failed: ${why(e)}`
  }
  ctx.log(`crypto: ${keyNote}`)
  const label: Label = { clusterId: ks?.clusterId ?? '', epoch: 1, purpose: 'release-key', app: 'billing-api', env: 'prod', release: 'v1.2.3' }
  if (typeof labelM !== 'string' && ks !== undefined) {
    try { labelM.validateLabel(label) } catch (e) { keyNote += `; label invalid: ${why(e)}` }
  }

  // wrap
  let envelope: Envelope | undefined
  if (typeof wrapM === 'string' || ks === undefined) {
    out.push(unavailable(SUITE, 'wrap', 'wrap', typeof wrapM === 'string' ? wrapM : keyNote))
  } else {
    const ksW = ks
    try {
      envelope = wrapM.wrap(ksW, label, randomBytes(32))
      if (wanted(ctx, 'wrap')) {
        ctx.log('crypto: wrap')
        out.push(row('wrap', 'wrap (client, no network)', await timed(() => wrapM.wrap(ksW, label, randomBytes(32)), T)))
      }
    } catch (e) { out.push(unavailable(SUITE, 'wrap', 'wrap', why(e))) }
  }

  // partial, verify, combine, batch partial
  let partials: NodePartial[] = []
  const needPartials = ['partial', 'verify-partial', 'combine-k3'].some(id => wanted(ctx, id))
  if (needPartials) {
    if (typeof partialM === 'string' || ks === undefined || envelope === undefined) {
      const r = typeof partialM === 'string' ? partialM : 'needs a key set and an envelope (wrap unavailable)'
      for (const [id, name] of [['partial', 'node partial (check + D_i + proof)'], ['verify-partial', 'partial proof verify'], ['combine-k3', `combine k=${K}`]] as const) {
        if (wanted(ctx, id)) out.push(unavailable(SUITE, id, name, r))
      }
    } else {
      const ksP = ks; const e = envelope
      try {
        partials = wrapShares.slice(0, K).map(sh => partialM.computePartial(sh, ksP, e))
        if (wanted(ctx, 'partial')) {
          ctx.log('crypto: partial')
          const sh = wrapShares[0] as KeyShare
          out.push(atMost(row('partial', 'node partial (check + D_i + proof)', await timed(() => partialM.computePartial(sh, ksP, e), T),
            { note: 'computePartial: envelope validity proof check + D_i = x_i·R + DLEQ proof' }), 4))
        }
      } catch (e2) { out.push(unavailable(SUITE, 'partial', 'node partial (check + D_i + proof)', why(e2))) }
      if (typeof combineM === 'string') {
        for (const [id, name] of [['verify-partial', 'partial proof verify'], ['combine-k3', `combine k=${K}`]] as const) {
          if (wanted(ctx, id)) out.push(unavailable(SUITE, id, name, combineM))
        }
      } else if (partials.length === K) {
        const p0 = partials[0] as NodePartial
        if (wanted(ctx, 'verify-partial')) {
          try {
            if (!combineM.verifyPartial(ksP, e, p0)) throw new Error('verifyPartial returned false for a good partial')
            ctx.log('crypto: verify partial')
            out.push(atMost(row('verify-partial', 'partial proof verify', await timed(() => combineM.verifyPartial(ksP, e, p0), T)), 3))
          } catch (e2) { out.push(unavailable(SUITE, 'verify-partial', 'partial proof verify', why(e2))) }
        }
        if (wanted(ctx, 'combine-k3')) {
          try {
            combineM.combine(ksP, e, partials)
            ctx.log('crypto: combine')
            out.push(atMost(row('combine-k3', `combine k=${K} (optimistic)`, await timed(() => combineM.combine(ksP, e, partials), T),
              { note: 'combine: Σ λ_i·D_i, KEK derivation, AEAD open; proofs checked only if the open fails' }), 3.5))
          } catch (e2) { out.push(unavailable(SUITE, 'combine-k3', `combine k=${K}`, why(e2))) }
        }
      }
    }
  }

  if (wanted(ctx, 'batch-partial')) {
    const name = `batch partial, ${BATCH} envelopes (per envelope)`
    if (typeof partialM === 'string' || typeof wrapM === 'string' || ks === undefined) {
      out.push(unavailable(SUITE, 'batch-partial', name, typeof partialM === 'string' ? partialM : 'needs wrap and a key set'))
    } else {
      try {
        const ksB = ks
        const es = Array.from({ length: BATCH }, (_, i) => wrapM.wrap(ksB, { ...label, release: `v1.2.${i}` }, randomBytes(32)))
        const sh = wrapShares[0] as KeyShare
        ctx.log('crypto: batch partial')
        const t = await timed(() => partialM.computeBatchPartial(sh, ksB, es), { ...T, minSamples: Math.min(T.minSamples, 5) })
        // Per-envelope figures: one batch call covers BATCH envelopes.
        const per: Timing = { ...t, opsPerSec: t.opsPerSec * BATCH, meanMs: t.meanMs / BATCH, p10Ms: t.p10Ms / BATCH, p50Ms: t.p50Ms / BATCH, p99Ms: t.p99Ms / BATCH }
        out.push(row('batch-partial', name, per, { note: `computeBatchPartial over ${BATCH} envelopes (batched validity check + batched DLEQ), divided by ${BATCH}` }))
      } catch (e) { out.push(unavailable(SUITE, 'batch-partial', name, why(e))) }
    }
  }

  if (wanted(ctx, 'hpke')) {
    if (typeof hpkeM === 'string') out.push(unavailable(SUITE, 'hpke', 'HPKE seal+open', hpkeM))
    else {
      try {
        const kp = hpkeM.generateRecipientKeyPair()
        const info = new TextEncoder().encode('keymesh/v1/partial/seal')
        const aad = new Uint8Array(0)
        const pt = randomBytes(100) // ≈ a sealed single partial: index + D + DLEQ proof
        ctx.log('crypto: hpke')
        out.push(row('hpke', 'HPKE seal+open (100 B)', await timed(() => {
          const { enc, ct } = hpkeM.hpkeSeal(kp.publicKey, info, aad, pt)
          return hpkeM.hpkeOpen(kp.secretKey, enc, info, aad, ct)
        }, T), { note: 'RFC 9180 base mode, DHKEM(X25519) + HKDF-SHA256 + AES-256-GCM via node:crypto' }))
      } catch (e) { out.push(unavailable(SUITE, 'hpke', 'HPKE seal+open', why(e))) }
    }
  }

  // FROST: commit + signShare for one node, and aggregate of k shares.
  const frostIds = ['frost-sign', 'frost-aggregate']
  if (frostIds.some(id => wanted(ctx, id))) {
    if (typeof frostM === 'string' || ks === undefined) {
      const r = typeof frostM === 'string' ? frostM : keyNote
      if (wanted(ctx, 'frost-sign')) out.push(unavailable(SUITE, 'frost-sign', 'FROST commit+signShare (per node)', r))
      if (wanted(ctx, 'frost-aggregate')) out.push(unavailable(SUITE, 'frost-aggregate', `FROST aggregate k=${K}`, r))
    } else {
      const ksF = ks
      const msg = randomBytes(200)
      const signers = signShares.slice(0, K)
      if (wanted(ctx, 'frost-sign')) {
        try {
          const others = signers.slice(1).map(sh => frostM.frostCommit(sh).commitment)
          const me = signers[0] as KeyShare
          ctx.log('crypto: frost sign')
          out.push(row('frost-sign', 'FROST commit+signShare (per node)', await timed(() => {
            const { nonces, commitment } = frostM.frostCommit(me)
            return frostM.frostSignShare(me, ksF, nonces, [commitment, ...others], msg)
          }, T), { note: 'frostCommit + frostSignShare for one signer in a k=3 session' }))
        } catch (e) { out.push(unavailable(SUITE, 'frost-sign', 'FROST commit+signShare (per node)', why(e))) }
      }
      if (wanted(ctx, 'frost-aggregate')) {
        try {
          const cs = signers.map(sh => frostM.frostCommit(sh))
          const commitments = cs.map(c => c.commitment)
          const shares = new Map<number, Uint8Array>()
          signers.forEach((sh, i) => shares.set(sh.index, frostM.frostSignShare(sh, ksF, (cs[i] as { nonces: SigningNonces }).nonces, commitments, msg)))
          ctx.log('crypto: frost aggregate')
          out.push(row('frost-aggregate', `FROST aggregate k=${K}`, await timed(() => frostM.frostAggregate(ksF, commitments, msg, shares), T),
            { note: 'frostAggregate: aggregate + standard Ed25519 verification of the result' }))
        } catch (e) { out.push(unavailable(SUITE, 'frost-aggregate', `FROST aggregate k=${K}`, why(e))) }
      }
    }
  }

  if (wanted(ctx, 'dkg')) {
    const name = `DKG ${K}-of-${N} in-process (whole ceremony)`
    if (typeof dkgM === 'string') out.push(unavailable(SUITE, 'dkg', name, dkgM))
    else {
      try {
        ctx.log('crypto: dkg')
        out.push(row('dkg', name, await timed(() => runDkg(dkgM, K, N), { ...T, minSamples: Math.min(T.minSamples, 5) }),
          { note: `all ${N} participants' rounds 1–3 in one process (one key; an epoch runs two)` }))
      } catch (e) { out.push(unavailable(SUITE, 'dkg', name, why(e))) }
    }
  }

  if (wanted(ctx, 'artifact')) {
    ctx.log('crypto: artifact (fresh child process)')
    const child = await artifactRowsInChild(ctx)
    if (typeof child === 'string') {
      ctx.log(`crypto: artifact child process failed (${child}); measuring in this process`)
      out.push(...await artifactRows(ctx))
    } else {
      out.push(...child)
      // The same measurement in this long-lived process, for comparison (no target: see
      // docs/BENCHMARKS.md "artifact rows" on why the two differ).
      const here = await artifactRows(ctx)
      for (const r of here.filter(x => x.unit === '%')) {
        out.push({ ...r, id: `${r.id}-inprocess`, name: `${r.name} (in suite process)`, target: undefined, targetMet: undefined, note: 'same measurement inside the bench process after the other rows; informational' })
      }
    }
  }
  return out
}

/**
 * Runs artifactRows in a fresh Node process (what `keymesh build` is: a short-lived process that
 * encrypts one artifact) and returns its rows, or the reason it failed.
 */
async function artifactRowsInChild (ctx: BenchContext): Promise<Result[] | string> {
  const self = fileURLToPath(import.meta.url)
  const code = `const m = await import(${JSON.stringify(pathToFileURL(self).href)}); ` +
    `const r = await m.artifactRows({ quick: ${String(ctx.quick)}, log: () => {} }); process.stdout.write(JSON.stringify(r))`
  return await new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: dirname(dirname(dirname(self))), maxBuffer: 1 << 20, timeout: 600_000 }, (err, stdout) => {
      if (err !== null) { resolve(why(err)); return }
      try { resolve(JSON.parse(stdout) as Result[]) } catch (e) { resolve(why(e)) }
    })
  })
}

/**
 * Artifact STREAM vs raw AES-256-GCM over the same in-memory buffer, fed in 1 MiB pieces.
 * Raw = one GCM context over the whole buffer (update per 1 MiB piece, then final): the ceiling.
 *
 * Passes alternate (artifact enc, raw enc, artifact dec, raw dec) and each is timed in process
 * CPU time (user + system, which includes page faults and GC) as well as wall time: on a shared
 * 2-core machine wall time swings by ±30% with other processes' load, CPU time far less. MB/s are
 * medians over the passes (CPU time; wall-time medians are in `extra`); the ratio is the median of
 * the per-pass ratios artifact/raw (adjacent passes share the machine's state, so pairing cancels
 * slow drifts in load). Pass 0 is a warm-up and is not counted.
 */
export async function artifactRows (ctx: BenchContext): Promise<Result[]> {
  const art = await load<ArtifactMod>('artifact')
  const size = ctx.quick ? 16 * MiB : 256 * MiB
  const passes = ctx.quick ? 2 : 9
  const sizeName = `${size / MiB} MiB`
  if (typeof art === 'string') {
    return ['artifact-encrypt', 'artifact-decrypt'].map(id => unavailable(SUITE, id, `artifact ${id.slice(9)} (${sizeName})`, art, { unit: 'MB/s' }))
  }
  ctx.log(`crypto: artifact ${sizeName} × ${passes} passes`)
  const key = randomBytes(32)
  const buf = Buffer.alloc(size)
  for (let o = 0; o < size; o += 65536) randomBytes(65536).copy(buf, o)
  const ct = Buffer.from(art.encryptArtifactBytes(key, buf))
  const iv = randomBytes(12)
  const rc = createCipheriv('aes-256-gcm', key, iv)
  const rawCt = Buffer.concat([rc.update(buf), rc.final()])
  const rawTag = rc.getAuthTag()

  async function * pieces (b: Uint8Array): AsyncGenerator<Uint8Array> {
    for (let o = 0; o < b.length; o += MiB) yield b.subarray(o, Math.min(o + MiB, b.length))
  }
  const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
  type Kind = 'enc' | 'rawEnc' | 'dec' | 'rawDec'
  const cpu: Record<Kind, number[]> = { enc: [], rawEnc: [], dec: [], rawDec: [] }
  const wall: Record<Kind, number[]> = { enc: [], rawEnc: [], dec: [], rawDec: [] }
  let n = 0
  const time = async (kind: Kind, pass: number, f: () => Promise<void> | void): Promise<void> => {
    fullGc()
    const c0 = cpuMs(); const w0 = performance.now()
    await f()
    if (pass > 0) { cpu[kind].push(cpuMs() - c0); wall[kind].push(performance.now() - w0) }
  }
  for (let p = 0; p <= passes; p++) {
    await time('enc', p, async () => { for await (const c of art.encryptArtifact(key, pieces(buf))) n += c.length })
    await time('rawEnc', p, () => {
      const c = createCipheriv('aes-256-gcm', key, iv)
      for (let o = 0; o < size; o += MiB) n += c.update(buf.subarray(o, o + MiB)).length
      n += c.final().length
      c.getAuthTag()
    })
    await time('dec', p, async () => { for await (const c of art.decryptArtifact(key, pieces(ct))) n += c.length })
    await time('rawDec', p, () => {
      const d = createDecipheriv('aes-256-gcm', key, iv)
      d.setAuthTag(rawTag)
      for (let o = 0; o < size; o += MiB) n += d.update(rawCt.subarray(o, o + MiB)).length
      n += d.final().length
    })
  }
  if (n < 4 * size * (passes + 1)) throw new Error('artifact bench: short output')
  const mbps = (ms: number): number => (size / 1e6) / (ms / 1000)
  const mb = (k: Kind): number => mbps(median(cpu[k]))
  const mbWall = (k: Kind): number => mbps(median(wall[k]))
  const pairRatio = (a: Kind, b: Kind): number => median(cpu[a].map((t, i) => (cpu[b][i] as number) / t))
  const tput = (id: string, name: string, k: Kind, note?: string): Result => ({
    suite: SUITE, id, name, unit: 'MB/s', value: mb(k), samples: passes, extra: { wallMBps: mbWall(k), bestCpuMBps: mbps(Math.min(...cpu[k])) }, ...(note !== undefined ? { note } : {})
  })
  const ratio = (id: string, name: string, v: number): Result => ({
    suite: SUITE, id, name, unit: '%', value: 100 * v, target: '≥ 90%', targetMet: v >= 0.9, samples: passes
  })
  return [
    tput('aes-gcm-encrypt', `raw AES-256-GCM encrypt (${sizeName})`, 'rawEnc', 'node:crypto, one GCM context over the buffer, 1 MiB updates (the ceiling); MB/s from CPU time, median of passes'),
    tput('artifact-encrypt', `artifact encrypt (${sizeName}, 1 MiB pieces)`, 'enc'),
    ratio('artifact-encrypt-ratio', 'artifact encrypt / raw AES-GCM', pairRatio('enc', 'rawEnc')),
    tput('aes-gcm-decrypt', `raw AES-256-GCM decrypt (${sizeName})`, 'rawDec'),
    tput('artifact-decrypt', `artifact decrypt (${sizeName}, 1 MiB pieces)`, 'dec'),
    ratio('artifact-decrypt-ratio', 'artifact decrypt / raw AES-GCM', pairRatio('dec', 'rawDec'))
  ]
}
