/**
 * Known-answer vectors for the client identity file (docs/PROTOCOL.md
 * §8.1): fixed seeds → file JSON → PeerId and recipient public key; plus files that must be
 * rejected (field named).
 */
import { generateKeyPairFromSeed, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { x25519 } from '@noble/curves/ed25519.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { toB64u, toHex, utf8 } from '../../../protocol/bytes.ts'

function seed (label: string): Uint8Array { return sha256(utf8(`keymesh/test-vectors/identity/${label}`)) }

async function identityJson (label: string): Promise<{ json: Record<string, unknown>, peerId: string, recipientPublicKey: string }> {
  const key = await generateKeyPairFromSeed('Ed25519', seed(`${label}/peer`))
  const rsk = seed(`${label}/recipient`)
  const rpk = x25519.getPublicKey(rsk)
  return {
    json: { format: 'keymesh.identity', version: 1, peerKey: toB64u(privateKeyToProtobuf(key)), recipientSecretKey: toB64u(rsk), recipientPublicKey: toB64u(rpk) },
    peerId: peerIdFromPrivateKey(key).toString(),
    recipientPublicKey: toHex(rpk)
  }
}

/** Builds the vector file. */
export async function generate (): Promise<unknown> {
  const a = await identityJson('a')
  const b = await identityJson('b')
  const bad = (name: string, json: Record<string, unknown>, error: string, field: string): Record<string, unknown> =>
    ({ name, valid: false, file: JSON.stringify(json), error, field })
  const peerKeyBytes = Buffer.from(a.json.peerKey as string, 'base64url')
  return {
    format: 'identity',
    version: 1,
    description: 'keymesh client identity file (keymesh.identity v1): JSON → PeerId (base58btc) and X25519 recipient public key (hex); invalid files must be rejected with the named field',
    cases: [
      { name: 'identity a', valid: true, file: JSON.stringify(a.json), peerId: a.peerId, recipientPublicKey: a.recipientPublicKey },
      { name: 'identity b (pretty-printed)', valid: true, file: JSON.stringify(b.json, null, 2) + '\n', peerId: b.peerId, recipientPublicKey: b.recipientPublicKey },
      bad('wrong format', { ...a.json, format: 'keymesh.admin-key' }, 'BAD_INPUT', 'identity.format'),
      { name: 'unknown version', valid: false, file: JSON.stringify({ ...a.json, version: 2 }), error: 'UNSUPPORTED_VERSION' },
      bad('unknown member', { ...a.json, extra: 1 }, 'BAD_INPUT', 'identity.extra'),
      bad('missing recipient public key', { format: a.json.format, version: 1, peerKey: a.json.peerKey, recipientSecretKey: a.json.recipientSecretKey }, 'BAD_INPUT', 'identity.recipientPublicKey'),
      bad('recipient public key of another secret', { ...a.json, recipientPublicKey: b.json.recipientPublicKey }, 'BAD_INPUT', 'identity.recipientPublicKey'),
      bad('peer key truncated (67 bytes)', { ...a.json, peerKey: toB64u(peerKeyBytes.subarray(0, 67)) }, 'BAD_INPUT', 'identity.peerKey'),
      bad('peer key padded base64url', { ...a.json, peerKey: peerKeyBytes.toString('base64') }, 'BAD_INPUT', 'identity.peerKey'),
      bad('recipient secret 31 bytes', { ...a.json, recipientSecretKey: toB64u(new Uint8Array(31)) }, 'BAD_INPUT', 'identity.recipientSecretKey')
    ]
  }
}
