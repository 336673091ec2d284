/**
 * The build flow (CI side): encrypt an artifact under a fresh release key, wrap the key to the
 * cluster, and get the release manifest threshold-signed — producing a release directory
 * (release-layout.ts).
 *
 *  1. Fetch the cluster's current key set (k-agreed, cached).
 *  2. Draw a fresh 32-byte release key (this function owns it; it is zeroed in `finally` and
 *     never written anywhere — brief §2.2: it exists only on this host and on allowed targets).
 *  3. Stream-encrypt the input (protocol/artifact.ts, constant memory) into the staging directory,
 *     hashing the ciphertext as it is written.
 *  4. Wrap the release key for the label {clusterId, epoch, 'release-key', app, env, release}.
 *  5. Zero the release key. Build the manifest, FROST-sign its JWS signing input with k nodes.
 *  6. Publish the directory atomically. On any failure nothing is left at `out`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { BadInputError } from '../protocol/errors.ts'
import { toHex, utf8 } from '../protocol/bytes.ts'
import { DATA_KEY_LEN } from '../protocol/constants.ts'
import { validateLabel } from '../protocol/label.ts'
import { encryptArtifact } from '../protocol/artifact.ts'
import type { ArtifactEncryptOptions } from '../protocol/artifact.ts'
import { wrap } from '../protocol/wrap.ts'
import { envelopeId } from '../protocol/envelope.ts'
import type { Envelope } from '../protocol/envelope.ts'
import { MANIFEST_TYPE, validateManifest } from '../protocol/manifest.ts'
import type { Manifest } from '../protocol/manifest.ts'
import { assembleJws, jwsSigningInput } from '../protocol/jws.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import type { KeymeshClient } from './client.ts'
import { ioError } from './fsutil.ts'
import { RELEASE_FILES, RELEASE_KEY_PURPOSE, artifactNameOf, discardStaging, publishReleaseDir, stageReleaseDir } from './release-layout.ts'
import { noProgress } from './progress.ts'
import type { ProgressFn } from './progress.ts'

/** Inputs of a build. */
export interface BuildOptions {
  app: string
  release: string
  /** Environment the release is for ('' or absent = not environment-specific). */
  env?: string
  /** Plaintext artifact file. */
  input: string
  /** Release directory to create (must not exist). */
  out: string
  repository?: string
  commit?: string
  /** STREAM chunk size (default 1 MiB). */
  chunkSize?: number
  /** Deadline of the signing step (ms). */
  signDeadlineMs?: number
  onProgress?: ProgressFn
}

/** What a build produced. */
export interface BuildResult {
  dir: string
  manifest: Manifest
  envelope: Envelope
  jws: string
  /** Nodes whose shares made the signature. */
  signers: number[]
  /** Nodes that failed or lied during signing. */
  failures: NodeFailure[]
}

/**
 * Runs the build flow. Throws BadInputError (bad app/release/env/commit, unreadable input, `out`
 * exists), QuorumUnavailableError / NotAuthorizedError (key set or signing), VerificationError.
 * Leaves nothing at `out` on failure.
 */
export async function build (client: KeymeshClient, opts: BuildOptions): Promise<BuildResult> {
  const progress = opts.onProgress ?? noProgress
  const env = opts.env ?? ''
  // Validate every input before any work (brief §2.9).
  validateLabel({ clusterId: client.cluster.clusterId, epoch: 1, purpose: RELEASE_KEY_PURPOSE, app: opts.app, env, release: opts.release })
  if (opts.commit !== undefined && !/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(opts.commit)) throw new BadInputError('commit', 'expected 40 or 64 lowercase hex characters (git SHA-1 / SHA-256)')
  let inputSize: number
  try {
    const st = await stat(opts.input)
    if (!st.isFile()) throw new BadInputError('in', `${opts.input} is not a regular file`)
    inputSize = st.size
  } catch (err) { throw ioError('in', opts.input, err) }

  progress({ phase: 'keyset', note: 'fetching the cluster key set (k-agreement)' })
  const ks = await client.keySet()
  const label = validateLabel({ clusterId: ks.clusterId, epoch: ks.epoch, purpose: RELEASE_KEY_PURPOSE, app: opts.app, env, release: opts.release })

  const staging = await stageReleaseDir(opts.out)
  // The release key: owned here, zeroed in finally, never written to disk or sent anywhere.
  const releaseKey = new Uint8Array(randomBytes(DATA_KEY_LEN))
  try {
    const { sha256, size } = await encryptFile(releaseKey, opts.input, join(staging, RELEASE_FILES.artifact), inputSize, { chunkSize: opts.chunkSize }, progress)
    const envelope = wrap(ks, label, releaseKey)
    releaseKey.fill(0)
    const manifest: Manifest = validateManifest({
      v: 1,
      type: MANIFEST_TYPE,
      cluster: ks.clusterId,
      epoch: ks.epoch,
      app: opts.app,
      release: opts.release,
      ...(env !== '' ? { env } : {}),
      artifact: { sha256, size, ...(artifactNameOf(opts.input) !== undefined ? { name: artifactNameOf(opts.input) } : {}) },
      envelope: toHex(envelopeId(envelope)),
      builder: client.identity.peerId.toString(),
      createdAt: new Date().toISOString(),
      ...(opts.repository !== undefined ? { repository: opts.repository } : {}),
      ...(opts.commit !== undefined ? { commit: opts.commit } : {})
    })
    progress({ phase: 'sign', note: `threshold-signing the manifest (${ks.threshold} of ${ks.n} nodes)` })
    const signingInput = jwsSigningInput(manifest)
    const sig = await client.sign(utf8(signingInput), { epoch: ks.epoch, deadlineMs: opts.signDeadlineMs })
    const jws = assembleJws(signingInput, sig.signature)
    progress({ phase: 'publish', note: opts.out })
    await publishReleaseDir(staging, opts.out, { envelope, manifest, jws })
    return { dir: opts.out, manifest, envelope, jws, signers: sig.signers, failures: sig.failures }
  } catch (err) {
    await discardStaging(staging)
    throw err
  } finally {
    releaseKey.fill(0)
  }
}

/**
 * Streams `input` through the STREAM encryptor into `outPath` (new file, fsynced), hashing the
 * ciphertext. `key` is owned by the caller. Returns the ciphertext's SHA-256 (hex) and size.
 * Throws BadInputError / KeymeshError on I/O errors.
 */
export async function encryptFile (key: Uint8Array, input: string, outPath: string, inputSize: number, opts: ArtifactEncryptOptions, progress: ProgressFn = noProgress): Promise<{ sha256: string, size: number }> {
  const h = createHash('sha256')
  let size = 0
  let read = 0
  let fh: FileHandle | undefined
  try {
    fh = await open(outPath, 'wx', 0o644)
    const src = createReadStream(input, { highWaterMark: 1024 * 1024 })
    const counted = (async function * () {
      for await (const chunk of src) {
        const b = chunk as Buffer
        read += b.length
        progress({ phase: 'encrypt', done: read, total: inputSize })
        yield new Uint8Array(b.buffer, b.byteOffset, b.length)
      }
    })()
    for await (const piece of encryptArtifact(key, counted, opts)) {
      h.update(piece)
      size += piece.length
      await writeAll(fh, piece)
    }
    await fh.sync()
  } catch (err) {
    throw ioError('artifact', input, err)
  } finally {
    await fh?.close().catch(() => {})
  }
  return { sha256: h.digest('hex'), size }
}

/** Writes all of `b` (FileHandle.write may write less). */
export async function writeAll (fh: FileHandle, b: Uint8Array): Promise<void> {
  let off = 0
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, b.length - off)
    off += bytesWritten
  }
}
