/**
 * Client identity files (docs/PROTOCOL.md §1).
 *
 * A client identity is two independent keys in one JSON file, mode 0600:
 *  - `peerKey`: the libp2p Ed25519 private key (68-byte protobuf, as libp2p persists it). Its
 *    PeerId is what the cluster's policy enrolls; Noise proves it on every connection.
 *  - `recipientSecretKey`/`recipientPublicKey`: an X25519 key pair (RFC 7748). Nodes seal partial
 *    decryptions to the public key (HPKE base mode, RFC 9180); only this file can open them.
 * Keeping them separate means a deploy target can hand its recipient public key to a third party
 * (for `deploy prepare`) without involving its PeerId, and a builder needs no recipient key at all.
 *
 * An admin key (`--admin`) is a plain Ed25519 key pair used to sign cluster documents (policy);
 * it never connects to anything.
 *
 * Ownership: the returned secret buffers belong to the caller, who zeroes them when done
 * (`wipeIdentity`). The libp2p PrivateKey object holds its own copy that cannot be wiped.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { BadInputError, UnsupportedVersionError } from '../protocol/errors.ts'
import { abytes, equalBytes, fromB64u, toB64u } from '../protocol/bytes.ts'
import { RECIPIENT_KEY_LEN } from '../protocol/constants.ts'
import { atomicWriteFile, readJsonCapped } from './fsutil.ts'

/** `format` of a client identity file. */
export const IDENTITY_FORMAT = 'keymesh.identity'
/** `format` of an admin key file. */
export const ADMIN_KEY_FORMAT = 'keymesh.admin-key'
/** Current identity file version. */
export const IDENTITY_VERSION = 1
/** libp2p protobuf encoding of an Ed25519 private key: 4-byte header + 32 seed + 32 public. */
export const PEER_KEY_PROTOBUF_LEN = 68
/** Identity files are tiny; anything larger is not one. */
const MAX_IDENTITY_FILE = 16 * 1024

/** A loaded client identity. */
export interface ClientIdentity {
  /** libp2p private key (Ed25519). */
  privateKey: PrivateKey
  peerId: PeerId
  /** X25519 secret key (32 bytes). Owned by the holder of this object; wipe when done. */
  recipientSecretKey: Uint8Array
  /** X25519 public key (32 bytes). Public. */
  recipientPublicKey: Uint8Array
}

/** JSON form of a client identity file. */
export interface IdentityFileJSON {
  format: typeof IDENTITY_FORMAT
  version: 1
  peerKey: string
  recipientSecretKey: string
  recipientPublicKey: string
}

/** JSON form of an admin key file. */
export interface AdminKeyFileJSON {
  format: typeof ADMIN_KEY_FORMAT
  version: 1
  /** Ed25519 seed (RFC 8032 private key), 32 bytes b64u. */
  secretKey: string
  /** Ed25519 public key, 32 bytes b64u (the value to put in the cluster file's `admins`). */
  publicKey: string
}

/** A loaded admin key. `secretKey` is owned by the caller. */
export interface AdminKey { secretKey: Uint8Array; publicKey: Uint8Array }

/** Creates a fresh client identity in memory. Throws only on RNG failure. */
export async function generateIdentity (): Promise<ClientIdentity> {
  const privateKey = await generateKeyPair('Ed25519')
  const recipientSecretKey = new Uint8Array(randomBytes(RECIPIENT_KEY_LEN))
  const recipientPublicKey = x25519.getPublicKey(recipientSecretKey)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), recipientSecretKey, recipientPublicKey }
}

/** JSON encoding of an identity (contains secrets: write it only with mode 0600). */
export function identityToJSON (id: ClientIdentity): IdentityFileJSON {
  return {
    format: IDENTITY_FORMAT,
    version: IDENTITY_VERSION,
    peerKey: toB64u(privateKeyToProtobuf(id.privateKey)),
    recipientSecretKey: toB64u(id.recipientSecretKey),
    recipientPublicKey: toB64u(id.recipientPublicKey)
  }
}

function exactObject (field: string, o: unknown, keys: string[]): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new BadInputError(field, 'expected a JSON object')
  const rec = o as Record<string, unknown>
  for (const k of Object.keys(rec)) if (!keys.includes(k)) throw new BadInputError(`${field}.${k}`, 'unknown field')
  for (const k of keys) if (!Object.hasOwn(rec, k)) throw new BadInputError(`${field}.${k}`, 'missing')
  return rec
}

/**
 * Parses and validates an identity file's JSON: exact fields, the 68-byte Ed25519 protobuf key,
 * 32-byte X25519 keys and that the public key matches the secret key. Throws BadInputError(field)
 * or UnsupportedVersionError.
 */
export function identityFromJSON (j: unknown): ClientIdentity {
  const format = typeof j === 'object' && j !== null ? (j as Record<string, unknown>).format : undefined
  // Check the format first: a user handing an admin key file where an identity belongs gets told so.
  if (format !== IDENTITY_FORMAT) throw new BadInputError('identity.format', `expected "${IDENTITY_FORMAT}"${format === ADMIN_KEY_FORMAT ? ' (this is an admin key, not a client identity)' : ''}`)
  const o = exactObject('identity', j, ['format', 'version', 'peerKey', 'recipientSecretKey', 'recipientPublicKey'])
  if (o.version !== IDENTITY_VERSION) throw new UnsupportedVersionError('identity.version', typeof o.version === 'number' ? o.version : String(o.version), '1')
  const peerKey = fromB64u('identity.peerKey', o.peerKey, 256)
  abytes('identity.peerKey', peerKey, PEER_KEY_PROTOBUF_LEN)
  let privateKey: PrivateKey
  try { privateKey = privateKeyFromProtobuf(peerKey) } catch { throw new BadInputError('identity.peerKey', 'not a libp2p protobuf private key') }
  if (privateKey.type !== 'Ed25519') throw new BadInputError('identity.peerKey', 'expected an Ed25519 key')
  peerKey.fill(0)
  const recipientSecretKey = abytes('identity.recipientSecretKey', fromB64u('identity.recipientSecretKey', o.recipientSecretKey, 64), RECIPIENT_KEY_LEN)
  const recipientPublicKey = abytes('identity.recipientPublicKey', fromB64u('identity.recipientPublicKey', o.recipientPublicKey, 64), RECIPIENT_KEY_LEN)
  if (!equalBytes(x25519.getPublicKey(recipientSecretKey), recipientPublicKey)) throw new BadInputError('identity.recipientPublicKey', 'does not match recipientSecretKey')
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), recipientSecretKey, recipientPublicKey }
}

/**
 * Writes a new identity file, mode 0600, atomically; refuses to overwrite an existing file.
 * Throws BadInputError('out') when the file exists or its directory is missing.
 */
export async function writeIdentityFile (path: string, id: ClientIdentity): Promise<void> {
  await atomicWriteFile(path, JSON.stringify(identityToJSON(id), null, 2) + '\n', { mode: 0o600, exclusive: true, field: 'out' })
}

/**
 * Loads and validates an identity file. Refuses a file readable by group/others (like ssh does with
 * private keys) unless `allowLoosePermissions`. Throws BadInputError('identity' …).
 */
export async function loadIdentity (path: string, opts: { allowLoosePermissions?: boolean } = {}): Promise<ClientIdentity> {
  await checkPermissions('identity', path, opts.allowLoosePermissions === true)
  return identityFromJSON(await readJsonCapped('identity', path, MAX_IDENTITY_FILE))
}

async function checkPermissions (field: string, path: string, allowLoose: boolean): Promise<void> {
  if (allowLoose || process.platform === 'win32') return
  let mode: number
  try { mode = (await stat(path)).mode } catch { throw new BadInputError(field, `${path}: no such file`) }
  if ((mode & 0o077) !== 0) throw new BadInputError(field, `${path} is accessible by other users (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path}`)
}

/** Zeroes the identity's recipient secret key (the libp2p key object cannot be wiped). */
export function wipeIdentity (id: ClientIdentity): void { id.recipientSecretKey.fill(0) }

/** Creates a fresh Ed25519 admin key pair. */
export function generateAdminKey (): AdminKey {
  const secretKey = new Uint8Array(randomBytes(32))
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) }
}

/** Writes an admin key file (0600, exclusive, atomic). Throws BadInputError('out'). */
export async function writeAdminKeyFile (path: string, key: AdminKey): Promise<void> {
  const j: AdminKeyFileJSON = { format: ADMIN_KEY_FORMAT, version: 1, secretKey: toB64u(key.secretKey), publicKey: toB64u(key.publicKey) }
  await atomicWriteFile(path, JSON.stringify(j, null, 2) + '\n', { mode: 0o600, exclusive: true, field: 'out' })
}

/** Loads and validates an admin key file. Throws BadInputError('adminKey' …). */
export async function loadAdminKey (path: string, opts: { allowLoosePermissions?: boolean } = {}): Promise<AdminKey> {
  await checkPermissions('adminKey', path, opts.allowLoosePermissions === true)
  const o = exactObject('adminKey', await readJsonCapped('adminKey', path, MAX_IDENTITY_FILE), ['format', 'version', 'secretKey', 'publicKey'])
  if (o.format !== ADMIN_KEY_FORMAT) throw new BadInputError('adminKey.format', `expected "${ADMIN_KEY_FORMAT}"`)
  if (o.version !== 1) throw new UnsupportedVersionError('adminKey.version', typeof o.version === 'number' ? o.version : String(o.version), '1')
  const secretKey = abytes('adminKey.secretKey', fromB64u('adminKey.secretKey', o.secretKey, 64), 32)
  const publicKey = abytes('adminKey.publicKey', fromB64u('adminKey.publicKey', o.publicKey, 64), 32)
  if (!equalBytes(ed25519.getPublicKey(secretKey), publicKey)) throw new BadInputError('adminKey.publicKey', 'does not match secretKey')
  return { secretKey, publicKey }
}
