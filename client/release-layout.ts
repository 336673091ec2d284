/**
 * The directory layout of an encrypted release (docs/PROTOCOL.md §2).
 *
 *   <release>/artifact.kmar   encrypted artifact, STREAM format (protocol/artifact.ts)
 *   <release>/envelope.kme    the wrapped release key, ASCII-armored envelope (protocol/envelope.ts)
 *   <release>/manifest.json   the release manifest, exactly its RFC 8785 canonical bytes
 *   <release>/manifest.jws    compact JWS (EdDSA) over the same manifest, threshold-signed
 *
 * Everything a deploy target needs travels in this directory; none of it is secret. The trust
 * comes from the JWS (verified against the cluster's sign key) and from what the manifest pins:
 * the artifact's SHA-256 and size, and the envelope id. `loadRelease` checks the parts against
 * each other (manifest.json = JWS payload, envelope id and label = manifest) but not the
 * signature, which needs the key set (verify.ts).
 *
 * `writeReleaseDir` publishes atomically: it fills a hidden temp directory next to the target
 * and renames it into place only when every file is written and fsynced, so a reader sees either
 * no release or a complete one.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { BadInputError, VerificationError } from '../protocol/errors.ts'
import { equalBytes, fromUtf8, toHex, utf8 } from '../protocol/bytes.ts'
import { armorEnvelope, dearmorEnvelope, envelopeId } from '../protocol/envelope.ts'
import type { Envelope } from '../protocol/envelope.ts'
import { MAX_MANIFEST_LEN, canonicalManifest } from '../protocol/manifest.ts'
import type { Manifest } from '../protocol/manifest.ts'
import { MAX_JWS_LEN, parseJws } from '../protocol/jws.ts'
import type { ParsedJws } from '../protocol/jws.ts'
import { atomicWriteFile, exists, fsyncDir, ioError, readFileCapped, tempPathFor, trackTemp, untrackTemp } from './fsutil.ts'

/** File names inside a release directory. */
export const RELEASE_FILES = {
  artifact: 'artifact.kmar',
  envelope: 'envelope.kme',
  manifest: 'manifest.json',
  jws: 'manifest.jws'
} as const

/** The `purpose` of a release key's label. */
export const RELEASE_KEY_PURPOSE = 'release-key'
const MAX_ARMOR_LEN = 16 * 1024

/** A loaded (structurally checked, not yet signature-verified) release. */
export interface LoadedRelease {
  dir: string
  artifactPath: string
  envelope: Envelope
  /** The manifest as carried in the JWS payload (not yet verified). */
  manifest: Manifest
  /** The bytes of manifest.json (one trailing newline removed). */
  manifestJson: Uint8Array
  /** The compact JWS text. */
  jws: string
  parsedJws: ParsedJws
}

/**
 * Loads a release directory: reads and strictly parses every part (JWS, manifest.json, armored
 * envelope, artifact present). Does NOT verify the signature, compare the parts with each other
 * (`checkReleaseConsistency`, to run after the signature check so that errors say what really
 * failed) or hash the artifact. Throws BadInputError (missing/malformed file, field named).
 */
export async function loadRelease (dir: string): Promise<LoadedRelease> {
  const jwsText = fromUtf8('release.manifest.jws', await readFileCapped('release.manifest.jws', join(dir, RELEASE_FILES.jws), MAX_JWS_LEN + 2))
  const jws = jwsText.replace(/\r?\n$/, '')
  const parsedJws = parseJws(jws)
  const manifestBytes = await readFileCapped('release.manifest.json', join(dir, RELEASE_FILES.manifest), MAX_MANIFEST_LEN + 2)
  const manifestJson = manifestBytes.length > 0 && manifestBytes[manifestBytes.length - 1] === 0x0a ? manifestBytes.subarray(0, manifestBytes.length - 1) : manifestBytes
  const armor = fromUtf8('release.envelope.kme', await readFileCapped('release.envelope.kme', join(dir, RELEASE_FILES.envelope), MAX_ARMOR_LEN))
  const envelope = dearmorEnvelope(armor)
  const artifactPath = join(dir, RELEASE_FILES.artifact)
  try {
    const st = await stat(artifactPath)
    if (!st.isFile()) throw new BadInputError('release.artifact.kmar', `${artifactPath} is not a regular file`)
  } catch (err) { throw ioError('release.artifact.kmar', artifactPath, err) }
  return { dir, artifactPath, envelope, manifest: parsedJws.manifest, manifestJson, jws, parsedJws }
}

/**
 * Checks the parts of a release against each other: manifest.json is byte-identical to the JWS
 * payload, and the envelope's id and label match the manifest (cluster, epoch, purpose
 * 'release-key', app, env, release). Throws VerificationError (a swapped envelope or an edited
 * manifest.json).
 */
export function checkReleaseConsistency (rel: LoadedRelease): void {
  if (!equalBytes(rel.manifestJson, canonicalManifest(rel.manifest))) {
    throw new VerificationError('release: manifest.json differs from the signed manifest in manifest.jws (edited or swapped)')
  }
  checkEnvelopeMatchesManifest(rel.envelope, rel.manifest)
}

/**
 * Checks that `e` is the envelope the manifest pins and that its label is this release's context.
 * Throws VerificationError.
 */
export function checkEnvelopeMatchesManifest (e: Envelope, m: Manifest): void {
  if (toHex(envelopeId(e)) !== m.envelope) throw new VerificationError('release: envelope.kme is not the envelope the signed manifest names (envelope id differs)')
  const l = e.label
  const want = { clusterId: m.cluster, epoch: m.epoch, purpose: RELEASE_KEY_PURPOSE, app: m.app, env: m.env ?? '', release: m.release }
  for (const [k, v] of Object.entries(want)) {
    if ((l as unknown as Record<string, unknown>)[k] !== v) throw new VerificationError(`release: envelope label ${k} does not match the signed manifest`)
  }
}

/** SHA-256 (hex) and size of a file, streamed. Throws BadInputError when unreadable. */
export async function digestFile (path: string, onBytes?: (n: number) => void): Promise<{ sha256: string, size: number }> {
  const h = createHash('sha256')
  let size = 0
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      const b = chunk as Buffer
      h.update(b)
      size += b.length
      onBytes?.(b.length)
    }
  } catch (err) { throw ioError('artifact', path, err) }
  return { sha256: h.digest('hex'), size }
}

/**
 * Checks the encrypted artifact's SHA-256 and size against the manifest (size first: cheap).
 * Throws VerificationError.
 */
export async function verifyArtifactDigest (rel: LoadedRelease, onBytes?: (n: number) => void): Promise<void> {
  const st = await stat(rel.artifactPath)
  if (st.size !== rel.manifest.artifact.size) throw new VerificationError(`release: artifact.kmar is ${st.size} bytes, the signed manifest says ${rel.manifest.artifact.size}`)
  const d = await digestFile(rel.artifactPath, onBytes)
  if (d.sha256 !== rel.manifest.artifact.sha256) throw new VerificationError('release: artifact.kmar SHA-256 does not match the signed manifest (modified or corrupted)')
}

/**
 * Creates a hidden staging directory next to `outDir` for `writeReleaseDir`. Refuses when
 * `outDir` exists. Throws BadInputError('out').
 */
export async function stageReleaseDir (outDir: string): Promise<string> {
  if (await exists(outDir)) throw new BadInputError('out', `${outDir} already exists; choose a new release directory`)
  const parent = dirname(outDir)
  if (!await exists(parent)) throw new BadInputError('out', `parent directory ${parent} does not exist`)
  const staging = tempPathFor(outDir)
  try { await mkdir(staging, { mode: 0o755 }) } catch (err) { throw ioError('out', staging, err) }
  trackTemp(staging)
  return staging
}

/**
 * Writes envelope, manifest and JWS into `staging` (whose artifact.kmar is already written and
 * fsynced) and renames it to `outDir`. On failure removes the staging directory.
 * Throws BadInputError('out') when `outDir` appeared meanwhile; KeymeshError on I/O errors.
 */
export async function publishReleaseDir (staging: string, outDir: string, parts: { envelope: Envelope, manifest: Manifest, jws: string }): Promise<void> {
  try {
    await atomicWriteFile(join(staging, RELEASE_FILES.envelope), armorEnvelope(parts.envelope))
    await atomicWriteFile(join(staging, RELEASE_FILES.manifest), canonicalManifest(parts.manifest))
    await atomicWriteFile(join(staging, RELEASE_FILES.jws), utf8(parts.jws + '\n'))
    await fsyncDir(staging)
    if (await exists(outDir)) throw new BadInputError('out', `${outDir} already exists; choose a new release directory`)
    await rename(staging, outDir)
    untrackTemp(staging)
    await fsyncDir(dirname(outDir))
  } catch (err) {
    await discardStaging(staging)
    throw ioError('out', outDir, err)
  }
}

/** Removes a staging directory (never throws). */
export async function discardStaging (staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true }).catch(() => {})
  untrackTemp(staging)
}

/** A plain file name usable as manifest.artifact.name, or undefined. */
export function artifactNameOf (path: string): string | undefined {
  const b = basename(path)
  if (b.length === 0 || utf8(b).length > 255 || /[\u0000-\u001f\u007f-\u009f\\]/.test(b) || b === '.' || b === '..' || !b.isWellFormed()) return undefined
  return b
}
