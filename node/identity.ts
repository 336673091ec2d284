/**
 * Node and client identities: persistent Ed25519 libp2p keys.
 *
 * Node identity: DATA/identity.key, the 68-byte libp2p protobuf encoding of the Ed25519 private
 * key, created once by `keymesh node init` with O_EXCL and mode 0600. `loadNodeIdentity` refuses
 * (with a message naming the path and what to do) when the file is missing, unreadable, corrupt,
 * not Ed25519 or readable by group/others — it never creates or replaces a key at start, because a
 * node's PeerId is its identity in the cluster file and a silently new key would strand its
 * shares.
 *
 * Client identity file (JSON, mode 0600; shared format with client/, used here by `status`):
 *   { "format": "keymesh.identity", "version": 1, "peerKey": b64u(68-byte protobuf key),
 *     "recipientSecretKey"?: b64u(32), "recipientPublicKey"?: b64u(32) }
 *
 * Ownership: the PrivateKey object is owned by the process that loaded it (libp2p host).
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { open, readFile, stat } from 'node:fs/promises'
import { ErrorCode, KeymeshError } from '../protocol/errors.ts'
import { fromB64u, toB64u } from '../protocol/bytes.ts'

/** Size of the protobuf-encoded Ed25519 private key. */
export const PEER_KEY_LEN = 68
/** `format` of a client identity file. */
export const IDENTITY_FORMAT = 'keymesh.identity'

function refuse (msg: string): never { throw new KeymeshError(ErrorCode.BAD_INPUT, msg) }

/** Parses a 68-byte protobuf Ed25519 key. Throws KeymeshError(BAD_INPUT) naming `what`. */
export function parsePeerKey (bytes: Uint8Array, what: string): PrivateKey {
  if (bytes.length !== PEER_KEY_LEN) refuse(`${what} is corrupt: expected a ${PEER_KEY_LEN}-byte Ed25519 libp2p key, got ${bytes.length} bytes`)
  let key: PrivateKey
  try { key = privateKeyFromProtobuf(bytes) } catch { refuse(`${what} is corrupt: not a libp2p private key`) }
  if (key.type !== 'Ed25519') refuse(`${what} is not an Ed25519 key`)
  return key
}

/** Writes `data` to a new file with O_EXCL and mode 0600. Throws KeymeshError(CONFLICT) if it exists. */
export async function writeNewSecretFile (path: string, data: Uint8Array | string): Promise<void> {
  let fh
  try {
    fh = await open(path, 'wx', 0o600)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new KeymeshError(ErrorCode.CONFLICT, `${path} already exists; refusing to overwrite it`)
    throw new KeymeshError(ErrorCode.BAD_INPUT, `cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e })
  }
  try { await fh.writeFile(data); await fh.sync() } finally { await fh.close() }
}

/**
 * Generates a new Ed25519 node key and writes it to `path` (O_EXCL, 0600).
 * Throws KeymeshError(CONFLICT) if the file exists.
 */
export async function createNodeIdentity (path: string): Promise<PrivateKey> {
  const key = await generateKeyPair('Ed25519')
  await writeNewSecretFile(path, privateKeyToProtobuf(key))
  return key
}

/**
 * Loads the node key from `path`. Throws KeymeshError(BAD_INPUT) with a message naming the path
 * and what to do when it is missing, unreadable, has a mode other than 0600/0400, or is corrupt.
 */
export async function loadNodeIdentity (path: string): Promise<PrivateKey> {
  let st
  try { st = await stat(path) } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    refuse(code === 'ENOENT'
      ? `node identity ${path} is missing. If this is a new node run \`keymesh node init --data <dir>\`; if the node was initialised before, restore the data directory from backup (a new identity would not match the cluster file)`
      : `cannot read node identity ${path}: ${code ?? 'error'}`)
  }
  if (!st.isFile()) refuse(`node identity ${path} is not a regular file`)
  if ((st.mode & 0o077) !== 0) refuse(`node identity ${path} has mode ${(st.mode & 0o777).toString(8)}; it must not be readable by group/others: run \`chmod 600 ${path}\``)
  let bytes: Uint8Array
  try { bytes = new Uint8Array(await readFile(path)) } catch (e) {
    refuse(`cannot read node identity ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  return parsePeerKey(bytes, `node identity ${path} (restore it from backup)`)
}

/** The PeerId string of a key. */
export function peerIdOf (key: PrivateKey): string { return peerIdFromPrivateKey(key).toString() }

/** A client identity (peer key + optional HPKE recipient key pair). */
export interface ClientIdentity {
  peerKey: PrivateKey
  recipientSecretKey?: Uint8Array
  recipientPublicKey?: Uint8Array
}

/**
 * Serialises a client identity file (JSON). Writing: `writeNewSecretFile(path, text)`.
 */
export function encodeClientIdentity (id: ClientIdentity): string {
  const j: Record<string, unknown> = { format: IDENTITY_FORMAT, version: 1, peerKey: toB64u(privateKeyToProtobuf(id.peerKey)) }
  if (id.recipientSecretKey !== undefined) j.recipientSecretKey = toB64u(id.recipientSecretKey)
  if (id.recipientPublicKey !== undefined) j.recipientPublicKey = toB64u(id.recipientPublicKey)
  return JSON.stringify(j, null, 2) + '\n'
}

/** Parses a client identity file's text. Throws KeymeshError(BAD_INPUT) naming `what`. */
export function decodeClientIdentity (text: string, what: string): ClientIdentity {
  let j: unknown
  try { j = JSON.parse(text) } catch { refuse(`${what} is not valid JSON`) }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) refuse(`${what} is not a JSON object`)
  const o = j as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!['format', 'version', 'peerKey', 'recipientSecretKey', 'recipientPublicKey'].includes(k)) refuse(`${what}: unknown field ${k}`)
  }
  if (o.format !== IDENTITY_FORMAT) refuse(`${what}: format must be "${IDENTITY_FORMAT}"`)
  if (o.version !== 1) refuse(`${what}: unsupported version`)
  let peerKeyBytes: Uint8Array
  try { peerKeyBytes = fromB64u(`${what}.peerKey`, o.peerKey, 128) } catch { refuse(`${what}: peerKey is not base64url`) }
  const id: ClientIdentity = { peerKey: parsePeerKey(peerKeyBytes, `${what}.peerKey`) }
  for (const f of ['recipientSecretKey', 'recipientPublicKey'] as const) {
    if (o[f] === undefined) continue
    let b: Uint8Array
    try { b = fromB64u(`${what}.${f}`, o[f], 32) } catch { refuse(`${what}: ${f} is not base64url`) }
    if (b.length !== 32) refuse(`${what}: ${f} must be 32 bytes`)
    id[f] = b
  }
  return id
}

/** Loads a client identity file; refuses group/world-readable files. Throws KeymeshError(BAD_INPUT). */
export async function loadClientIdentity (path: string): Promise<ClientIdentity> {
  let st
  try { st = await stat(path) } catch (e) {
    refuse(`cannot read identity file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if ((st.mode & 0o077) !== 0) refuse(`identity file ${path} has mode ${(st.mode & 0o777).toString(8)}; run \`chmod 600 ${path}\``)
  return decodeClientIdentity(await readFile(path, 'utf8'), `identity file ${path}`)
}

/** Generates a new client identity (peer key only) and writes it (O_EXCL, 0600). Throws CONFLICT if it exists. */
export async function createClientIdentity (path: string): Promise<ClientIdentity> {
  const id: ClientIdentity = { peerKey: await generateKeyPair('Ed25519') }
  await writeNewSecretFile(path, encodeClientIdentity(id))
  return id
}
