/** Client identity and admin key files: creation (0600, no overwrite), loading, strict validation. */
import { describe, expect, it } from 'vitest'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ed25519 } from '@noble/curves/ed25519.js'
import {
  generateAdminKey, generateIdentity, identityFromJSON, identityToJSON, loadAdminKey, loadIdentity, writeAdminKeyFile, writeIdentityFile
} from '../../client/identity.ts'
import { BadInputError } from '../../protocol/errors.ts'
import { equalBytes } from '../../protocol/bytes.ts'

describe('client identity file', () => {
  it('round-trips, is mode 0600, and is never overwritten', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keymesh-id-'))
    try {
      const id = await generateIdentity()
      const p = join(dir, 'id.json')
      await writeIdentityFile(p, id)
      expect((await stat(p)).mode & 0o777).toBe(0o600)
      const back = await loadIdentity(p)
      expect(back.peerId.toString()).toBe(id.peerId.toString())
      expect(equalBytes(back.recipientPublicKey, id.recipientPublicKey)).toBe(true)
      const before = await readFile(p)
      await expect(writeIdentityFile(p, await generateIdentity())).rejects.toBeInstanceOf(BadInputError)
      expect(await readFile(p)).toEqual(before)
      await chmod(p, 0o644)
      await expect(loadIdentity(p)).rejects.toThrow(/chmod 600/)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('rejects malformed files naming the field', async () => {
    const j = identityToJSON(await generateIdentity())
    expect(() => identityFromJSON({ ...j, recipientSecretKey: 'AA' })).toThrow(/identity.recipientSecretKey/)
    expect(() => identityFromJSON('nope')).toThrow(BadInputError)
    expect(() => identityFromJSON({ ...j, peerKey: j.peerKey.slice(0, -2) })).toThrow(/identity.peerKey/)
  })

  it('rejects invalid JSON in a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keymesh-id-'))
    try {
      const p = join(dir, 'bad.json')
      await writeFile(p, '{not json', { mode: 0o600 })
      await expect(loadIdentity(p)).rejects.toThrow(/not valid JSON/)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})

describe('admin key file', () => {
  it('round-trips and its public key verifies its signatures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keymesh-admin-'))
    try {
      const k = generateAdminKey()
      const p = join(dir, 'admin.json')
      await writeAdminKeyFile(p, k)
      const back = await loadAdminKey(p)
      const msg = new Uint8Array([1, 2, 3])
      expect(ed25519.verify(ed25519.sign(msg, back.secretKey), msg, k.publicKey)).toBe(true)
      await expect(loadIdentity(p)).rejects.toThrow(/admin key, not a client identity/)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})
