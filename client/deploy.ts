/**
 * Deploy flows (target side): `prepareBundle` (anyone enrolled to act for a target asks k nodes to
 * seal partials to the TARGET's recipient key; only the target can open the bundle) and `deploy`
 * (verify, obtain the release key from a bundle or from k nodes, decrypt, check, publish).
 *
 * Order in `deploy` (brief §2.7: integrity before deployment):
 *  1. load the release directory (parts consistent with each other);
 *  2. verify the manifest JWS against the k-agreed key set of its epoch — on failure `block`
 *     (default) stops here, `warn` reports and continues;
 *  3. check the encrypted artifact's size against the manifest (cheap, before any key work);
 *  4. get the release key: open the bundle (sealed to this identity's recipient key; a bundle made
 *     before a share refresh names an older generation of the epoch's key set, which is fetched
 *     and checked against the trusted one — client/generations.ts) or rewrap through k nodes
 *     (hedged, lying nodes blamed and routed around, one generation per combine);
 *  5. stream-decrypt into a temp file next to `out`, hashing the ciphertext on the way; compare
 *     SHA-256 and size with the signed manifest; fsync; rename into place.
 * Any failure removes the temp file: `out` either does not appear or is complete and verified.
 * The release key is owned here and zeroed in `finally`.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BadInputError, NotAuthorizedError, VerificationError } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { equalBytes, toHex } from '../protocol/bytes.ts'
import type { KeySet } from '../protocol/keyset.ts'
import { decryptArtifact } from '../protocol/artifact.ts'
import { encodeEnvelope, envelopeId } from '../protocol/envelope.ts'
import type { Envelope } from '../protocol/envelope.ts'
import { MAX_BUNDLE_LEN, decodeBundle, encodeBundle, openBundle } from '../protocol/bundle.ts'
import type { Bundle, SealedEntry } from '../protocol/bundle.ts'
import { RECIPIENT_KEY_LEN } from '../protocol/constants.ts'
import { recipientPublicKey as recipientPublicFromSecret } from '../protocol/hpke.ts'
import type { Manifest } from '../protocol/manifest.ts'
import type { KeymeshClient } from './client.ts'
import { atomicWriteFile, exists, fsyncDir, ioError, readFileCapped, tempPathFor, trackTemp, untrackTemp } from './fsutil.ts'
import { checkReleaseConsistency, loadRelease } from './release-layout.ts'
import type { LoadedRelease } from './release-layout.ts'
import { verifyReleaseSignature } from './verify.ts'
import { writeAll } from './build.ts'
import { rewrap } from './rewrap.ts'
import { failureOf, quorumError } from './quorum.ts'
import { GenerationGroups, checkGeneration, idOf, namedGeneration, reaskDelay, resolveGeneration } from './generations.ts'
import { noProgress } from './progress.ts'
import type { ProgressFn } from './progress.ts'

/** What to do when the signature or digest check fails. */
export type OnVerifyFailure = 'block' | 'warn'

/** Options of `deploy`. */
export interface DeployOptions {
  /** Release directory. */
  release: string
  /** Output file for the decrypted artifact (must not exist). */
  out: string
  /** A bundle file prepared for this identity; without it, k nodes are asked. */
  bundle?: string
  /** Default 'block'. */
  onVerifyFailure?: OnVerifyFailure
  /** Called with a message for each check that failed under 'warn'. */
  onWarning?: (message: string) => void
  /** Deadline of the rewrap (ms). */
  deadlineMs?: number
  /** Admin approvals (JSON text each) to present to the nodes, when the policy asks for them. */
  approvals?: string[]
  onProgress?: ProgressFn
}

/** What a deploy did. */
export interface DeployResult {
  out: string
  manifest: Manifest
  /** Plaintext size written. */
  bytes: number
  /** 'bundle' or 'nodes'. */
  keySource: 'bundle' | 'nodes'
  /** Nodes whose partials were combined (rewrap), or that the bundle carried. */
  nodes: number[]
  /** Nodes that failed or were blamed. */
  failures: NodeFailure[]
  /** Checks that failed under 'warn'. */
  warnings: string[]
}

/**
 * Runs the deploy flow. Throws BadInputError (files, flags), VerificationError (signature, digest,
 * envelope, AEAD; blocked), NotAuthorizedError (nodes refuse; a bundle for another target),
 * QuorumUnavailableError (fewer than k nodes). Writes nothing at `out` on failure.
 */
export async function deploy (client: KeymeshClient, opts: DeployOptions): Promise<DeployResult> {
  const progress = opts.onProgress ?? noProgress
  const policy = opts.onVerifyFailure ?? 'block'
  if (policy !== 'block' && policy !== 'warn') throw new BadInputError('onVerifyFailure', 'expected "block" or "warn"')
  const warnings: string[] = []
  const check = (fn: () => void): void => {
    try { fn() } catch (err) {
      if (!(err instanceof VerificationError) || policy === 'block') throw err
      warnings.push(err.message)
      opts.onWarning?.(err.message)
    }
  }
  if (await exists(opts.out)) throw new BadInputError('out', `${opts.out} already exists; refusing to overwrite`)
  if (!await exists(dirname(opts.out))) throw new BadInputError('out', `directory ${dirname(opts.out)} does not exist`)

  const rel = await loadRelease(opts.release)
  if (rel.manifest.cluster !== client.cluster.clusterId) throw new VerificationError(`release is for cluster ${rel.manifest.cluster}, not this cluster (${client.cluster.clusterId})`)
  progress({ phase: 'keyset', note: `epoch ${rel.manifest.epoch}` })
  const ks = await client.keySet(rel.manifest.epoch)
  progress({ phase: 'verify', note: 'manifest signature' })
  check(() => { verifyReleaseSignature(rel, [ks], client.cluster.clusterId) })
  // The parts must belong together whatever the policy: the envelope is what gets decrypted.
  checkReleaseConsistency(rel)
  const st = await stat(rel.artifactPath)
  check(() => {
    if (st.size !== rel.manifest.artifact.size) throw new VerificationError(`artifact.kmar is ${st.size} bytes, the signed manifest says ${rel.manifest.artifact.size}`)
  })

  let releaseKey: Uint8Array | undefined
  let keySource: 'bundle' | 'nodes'
  let nodes: number[]
  let failures: NodeFailure[] = []
  try {
    if (opts.bundle !== undefined) {
      keySource = 'bundle'
      progress({ phase: 'bundle', note: opts.bundle })
      // A bundle made before a share refresh names an older generation of the epoch's key set:
      // fetch that generation (checked against the trusted key set) instead of refusing.
      const r = await openReleaseBundle(opts.bundle, rel, ks, client.identity.recipientSecretKey, async id => await resolveGeneration(client.transport, ks, id), client.transport.cluster)
      releaseKey = r.key
      nodes = r.nodes
      failures = r.blame.map(i => ({ index: i, code: 'VERIFICATION_FAILED', detail: 'its sealed partial in the bundle did not verify' }))
    } else {
      keySource = 'nodes'
      progress({ phase: 'rewrap', note: `asking ${ks.threshold} of ${ks.n} nodes` })
      const r = await rewrap(client.transport, ks, rel.envelope, { deadlineMs: opts.deadlineMs, manifests: [rel.jws], approvals: opts.approvals })
      releaseKey = r.dataKey
      // k nodes vouched for the generation they answered with (share refresh): cache it.
      if (r.keySet !== ks) await client.adoptGeneration(r.keySet)
      nodes = r.nodes
      failures = r.failures
    }
    progress({ phase: 'decrypt', done: 0, total: st.size })
    const bytes = await decryptToFile(releaseKey, rel, opts.out, st.size, check, progress)
    return { out: opts.out, manifest: rel.manifest, bytes, keySource, nodes, failures, warnings }
  } finally {
    releaseKey?.fill(0)
  }
}

/**
 * Opens a bundle for the release's envelope. A bundle naming another generation of `ks`'s epoch
 * (made before or after a share refresh) is opened with the key set `resolve` returns for its id
 * (resolveGeneration: same group keys as `ks`, id checked); without `resolve` it is refused.
 * Throws NotAuthorizedError (sealed to another target), BadInputError (malformed, other key set,
 * envelope not in the bundle), VerificationError (fewer than k partials verify; blame; the bundle's
 * generation is not a refresh of `ks`).
 */
export async function openReleaseBundle (path: string, rel: LoadedRelease, ks: KeySet, recipientSecret: Uint8Array, resolve?: (keySetId: string) => Promise<KeySet>, view?: { threshold: number, nodes: readonly unknown[] }): Promise<{ key: Uint8Array, nodes: number[], blame: number[] }> {
  const bundle = decodeBundle(await readFileCapped('bundle', path, MAX_BUNDLE_LEN))
  const myPub = recipientPublicFromSecret(recipientSecret)
  if (!equalBytes(bundle.recipient, myPub)) throw new NotAuthorizedError('this bundle is sealed to another deploy target (its recipient key is not this identity\'s); prepare a bundle with this identity\'s recipient public key')
  if (bundle.keySetId !== idOf(ks)) {
    if (resolve === undefined) throw new BadInputError('bundle.keySetId', `bundle is for another key set than epoch ${ks.epoch} of this cluster`)
    const gks = await resolve(bundle.keySetId)
    // Checked here too (the resolver is the caller's), with the membership in use: after a reshare
    // the bundle's generation may be k′-of-n′.
    checkGeneration(ks, gks, bundle.keySetId, view)
    ks = gks
  }
  const want = toHex(envelopeId(rel.envelope))
  const pos = bundle.envelopes.findIndex(e => toHex(envelopeId(e)) === want)
  if (pos < 0) throw new BadInputError('bundle', 'the bundle does not contain this release\'s envelope')
  let blame: number[] = []
  const keys = openBundle(bundle, ks, recipientSecret, { onBlame: b => { blame = b } })
  const key = keys[pos] as Uint8Array
  keys.forEach((k, i) => { if (i !== pos) k.fill(0) })
  return { key, nodes: bundle.partials.map(p => p.index).filter(i => !blame.includes(i)), blame }
}

async function decryptToFile (key: Uint8Array, rel: LoadedRelease, out: string, total: number, check: (fn: () => void) => void, progress: ProgressFn): Promise<number> {
  const tmp = tempPathFor(out)
  trackTemp(tmp)
  const h = createHash('sha256')
  let ctBytes = 0
  let ptBytes = 0
  let fh: FileHandle | undefined
  try {
    fh = await open(tmp, 'wx', 0o600)
    const src = (async function * () {
      for await (const chunk of createReadStream(rel.artifactPath, { highWaterMark: 1024 * 1024 })) {
        const b = chunk as Buffer
        h.update(b)
        ctBytes += b.length
        progress({ phase: 'decrypt', done: ctBytes, total })
        yield new Uint8Array(b.buffer, b.byteOffset, b.length)
      }
    })()
    for await (const piece of decryptArtifact(key, src)) {
      await writeAll(fh, piece)
      ptBytes += piece.length
    }
    const digest = h.digest('hex')
    check(() => {
      if (ctBytes !== rel.manifest.artifact.size || digest !== rel.manifest.artifact.sha256) throw new VerificationError('artifact.kmar does not match the SHA-256/size in the signed manifest (modified or corrupted)')
    })
    await fh.sync()
    await fh.close()
    fh = undefined
    if (await exists(out)) throw new BadInputError('out', `${out} already exists; refusing to overwrite`)
    await rename(tmp, out)
    await fsyncDir(dirname(out))
    return ptBytes
  } catch (err) {
    await fh?.close().catch(() => {})
    await rm(tmp, { force: true }).catch(() => {})
    // The manifest pinned these bytes: a malformed artifact (bad magic, truncated header) is a
    // modified artifact, i.e. a verification failure, not a user input error.
    if (err instanceof BadInputError && err.field.startsWith('artifact')) {
      throw new VerificationError(`artifact.kmar is malformed (${err.message}); it does not match the signed manifest`, [], { cause: err })
    }
    throw ioError('out', out, err)
  } finally {
    untrackTemp(tmp)
  }
}

/** Options of `prepareBundle`. */
export interface PrepareOptions {
  /** Release directory. */
  release: string
  /** The target's X25519 recipient public key (32 bytes). */
  target: Uint8Array
  /** Bundle file to write (must not exist). */
  out: string
  /** Whole-operation deadline (ms, default 10000). */
  deadlineMs?: number
  /** After k nodes answered, wait this long for more (spares let the target route around a liar). Default 250. */
  graceMs?: number
  /** Admin approvals (JSON text each) to present to the nodes, when the policy asks for them. */
  approvals?: string[]
  onProgress?: ProgressFn
}

/**
 * Prepares a bundle for a deploy target: verifies the release signature (always blocking: a
 * bundle is never made for an unverified release), asks every node for a batch partial of the
 * release envelope sealed to `target`, and writes a bundle with every sealed partial received
 * (≥ k). Throws BadInputError, VerificationError, QuorumUnavailableError, NotAuthorizedError.
 */
export async function prepareBundle (client: KeymeshClient, opts: PrepareOptions): Promise<{ out: string, bundle: Bundle, failures: NodeFailure[] }> {
  if (!(opts.target instanceof Uint8Array) || opts.target.length !== RECIPIENT_KEY_LEN) throw new BadInputError('target', `expected a ${RECIPIENT_KEY_LEN}-byte X25519 public key`)
  if (await exists(opts.out)) throw new BadInputError('out', `${opts.out} already exists; refusing to overwrite`)
  const rel = await loadRelease(opts.release)
  const ks = await client.keySet(rel.manifest.epoch)
  verifyReleaseSignature(rel, [ks], client.cluster.clusterId)
  checkReleaseConsistency(rel)
  const { entries, failures, keySet: gks } = await collectSealed(client, ks, [rel.envelope], opts.target, opts.deadlineMs ?? 10_000, opts.graceMs ?? 250, { manifests: [rel.jws], approvals: opts.approvals })
  // The bundle names the generation whose shares computed its partials (one generation only).
  const bundle: Bundle = { version: 1, recipient: new Uint8Array(opts.target), keySetId: idOf(gks), envelopes: [rel.envelope], partials: entries }
  await atomicWriteFile(opts.out, encodeBundle(bundle), { exclusive: true, field: 'out', mode: 0o644 })
  return { out: opts.out, bundle, failures }
}

/**
 * Asks every node for a `partial.batch` of `es` sealed to `recipient`; resolves when all answered,
 * or k answered and `graceMs` passed, or at the deadline with ≥ k. Answers are grouped by the key-set
 * generation each node names (share refresh): only the newest group with ≥ k answers is returned,
 * with its key set (checked against `ks`; a node naming an unknown or invalid generation is
 * blamed). When the answers are split so that no group reaches k, the nodes outside the newest
 * group are asked again after a short backoff, within the deadline. The partials are sealed to
 * `recipient`, so they cannot be verified here: the recipient verifies them when opening the bundle.
 * Throws the quorum error when no generation gets k answers.
 */
export async function collectSealed (client: KeymeshClient, ks: KeySet, es: Envelope[], recipient: Uint8Array, deadlineMs: number, graceMs: number, present: { manifests?: string[], approvals?: string[] } = {}): Promise<{ entries: SealedEntry[], failures: NodeFailure[], keySet: KeySet }> {
  const t = client.transport
  const envelopes = es.map(encodeEnvelope)
  const groups = new GenerationGroups<{ sealed: Uint8Array, ks: KeySet }>(idOf(ks))
  // Each generation's own threshold (a reshare may change k); the anchor's until one is resolved.
  const gk = new Map<string, number>([[idOf(ks), ks.threshold]])
  const kOf = (id: string): number => gk.get(id) ?? Math.max(ks.threshold, t.cluster.threshold)
  const failed = new Map<number, NodeFailure>()
  const ctl = new AbortController()
  const deadlineAt = Date.now() + deadlineMs
  const body = { epoch: ks.epoch, envelopes, recipient, ...(present.manifests !== undefined && present.manifests.length > 0 ? { manifests: present.manifests } : {}), ...(present.approvals !== undefined && present.approvals.length > 0 ? { approvals: present.approvals } : {}) }
  const round = async (targets: number[]): Promise<void> => {
    await new Promise<void>((resolve) => {
      let settled = 0
      let grace: NodeJS.Timeout | undefined
      let over = false
      const done = (): void => { over = true; clearTimeout(deadline); if (grace !== undefined) clearTimeout(grace); resolve() }
      const deadline = setTimeout(done, Math.max(1, deadlineAt - Date.now()))
      for (const index of targets) {
        (async () => {
          const res = await t.call(index, 'partial.batch', body, { timeoutMs: Math.max(1, deadlineAt - Date.now()), signal: ctl.signal })
          const id = namedGeneration(index, res.keySetId, ks)
          const gks = await resolveGeneration(t, ks, id, { from: index, signal: ctl.signal, timeoutMs: Math.max(1, deadlineAt - Date.now()) })
          gk.set(id, gks.threshold)
          return { id, sealed: res.sealed, gks }
        })().then((r) => {
          if (over) return
          failed.delete(index)
          groups.set(index, r.id, { sealed: r.sealed, ks: r.gks })
        }, (err: unknown) => {
          if (over) return
          groups.delete(index)
          failed.set(index, failureOf(index, err))
        }).finally(() => {
          settled++
          if (settled === targets.length) done()
          else if (grace === undefined && groups.ready(kOf) !== undefined) grace = setTimeout(done, graceMs)
        })
      }
    })
  }
  try {
    await round(t.indices)
    for (let r = 0; groups.ready(kOf) === undefined; r++) {
      const wait = reaskDelay(r)
      if (groups.size < Math.min(...gk.values()) || Date.now() + wait >= deadlineAt) break
      await new Promise(resolve => setTimeout(resolve, wait))
      await round(groups.outsideNewest())
    }
  } finally {
    // Stop accepting late answers.
    ctl.abort()
  }
  const group = groups.ready(kOf)
  const failures = [...failed.values()]
  if (group === undefined) {
    for (const i of t.indices) {
      if (failed.has(i)) continue
      const id = groups.generationOf(i)
      if (id === undefined) failures.push({ index: i, code: 'TIMEOUT', detail: 'no answer before the deadline' })
      else failures.push({ index: i, code: 'CONFLICT', detail: `answered with key set generation ${id.slice(0, 16)}…; no generation reached ${ks.threshold} answers (a share refresh in progress?)` })
    }
    throw quorumError(ks.threshold, groups.maxGroupSize(), failures, ks.n)
  }
  const entries = [...group.answers].map(([index, a]) => ({ index, sealed: a.sealed })).sort((a, b) => a.index - b.index)
  const first = group.answers.values().next().value as { ks: KeySet }
  return { entries, failures: failures.sort((a, b) => a.index - b.index), keySet: first.ks }
}
