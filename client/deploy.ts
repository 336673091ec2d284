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
 *  4. get the release key: open the bundle (sealed to this identity's recipient key) or rewrap
 *     through k nodes (hedged, lying nodes blamed and routed around);
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
import { keySetId } from '../protocol/keyset.ts'
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
      const r = await openReleaseBundle(opts.bundle, rel, ks, client.identity.recipientSecretKey)
      releaseKey = r.key
      nodes = r.nodes
      failures = r.blame.map(i => ({ index: i, code: 'VERIFICATION_FAILED', detail: 'its sealed partial in the bundle did not verify' }))
    } else {
      keySource = 'nodes'
      progress({ phase: 'rewrap', note: `asking ${ks.threshold} of ${ks.n} nodes` })
      const r = await rewrap(client.transport, ks, rel.envelope, { deadlineMs: opts.deadlineMs, manifests: [rel.jws], approvals: opts.approvals })
      releaseKey = r.dataKey
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
 * Opens a bundle for the release's envelope. Throws NotAuthorizedError (sealed to another
 * target), BadInputError (malformed, other key set, envelope not in the bundle),
 * VerificationError (fewer than k partials verify; blame).
 */
export async function openReleaseBundle (path: string, rel: LoadedRelease, ks: KeySet, recipientSecret: Uint8Array): Promise<{ key: Uint8Array, nodes: number[], blame: number[] }> {
  const bundle = decodeBundle(await readFileCapped('bundle', path, MAX_BUNDLE_LEN))
  const myPub = recipientPublicFromSecret(recipientSecret)
  if (!equalBytes(bundle.recipient, myPub)) throw new NotAuthorizedError('this bundle is sealed to another deploy target (its recipient key is not this identity\'s); prepare a bundle with this identity\'s recipient public key')
  if (bundle.keySetId !== keySetId(ks)) throw new BadInputError('bundle.keySetId', `bundle is for another key set than epoch ${ks.epoch} of this cluster`)
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
  const { entries, failures } = await collectSealed(client, ks, [rel.envelope], opts.target, opts.deadlineMs ?? 10_000, opts.graceMs ?? 250, { manifests: [rel.jws], approvals: opts.approvals })
  const bundle: Bundle = { version: 1, recipient: new Uint8Array(opts.target), keySetId: keySetId(ks), envelopes: [rel.envelope], partials: entries }
  await atomicWriteFile(opts.out, encodeBundle(bundle), { exclusive: true, field: 'out', mode: 0o644 })
  return { out: opts.out, bundle, failures }
}

/**
 * Asks every node for a `partial.batch` of `es` sealed to `recipient`; resolves when all answered,
 * or k answered and `graceMs` passed, or at the deadline with ≥ k. Throws the quorum error otherwise.
 */
export async function collectSealed (client: KeymeshClient, ks: KeySet, es: Envelope[], recipient: Uint8Array, deadlineMs: number, graceMs: number, present: { manifests?: string[], approvals?: string[] } = {}): Promise<{ entries: SealedEntry[], failures: NodeFailure[] }> {
  const t = client.transport
  const envelopes = es.map(encodeEnvelope)
  const entries: SealedEntry[] = []
  const failures: NodeFailure[] = []
  const ctl = new AbortController()
  const all = t.indices
  await new Promise<void>((resolve) => {
    let settled = 0
    let grace: NodeJS.Timeout | undefined
    const done = (): void => { clearTimeout(deadline); if (grace !== undefined) clearTimeout(grace); ctl.abort(); resolve() }
    const deadline = setTimeout(done, deadlineMs)
    for (const index of all) {
      t.call(index, 'partial.batch', { epoch: ks.epoch, envelopes, recipient, ...(present.manifests !== undefined && present.manifests.length > 0 ? { manifests: present.manifests } : {}), ...(present.approvals !== undefined && present.approvals.length > 0 ? { approvals: present.approvals } : {}) }, { timeoutMs: deadlineMs, signal: ctl.signal }).then((res) => {
        entries.push({ index, sealed: res.sealed })
      }, (err: unknown) => { failures.push(failureOf(index, err)) }).finally(() => {
        settled++
        if (settled === all.length) done()
        else if (grace === undefined && entries.length >= ks.threshold) grace = setTimeout(done, graceMs)
      })
    }
  })
  // Stop accepting late answers: copy what arrived before the cut-off.
  const got = [...entries].sort((a, b) => a.index - b.index)
  if (got.length < ks.threshold) {
    for (const i of all) if (!got.some(e => e.index === i) && !failures.some(f => f.index === i)) failures.push({ index: i, code: 'TIMEOUT', detail: 'no answer before the deadline' })
    throw quorumError(ks.threshold, got.length, failures, ks.n)
  }
  return { entries: got, failures: failures.sort((a, b) => a.index - b.index) }
}
