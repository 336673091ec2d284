import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { allowedPeerIds, nodeByIndex, nodeByPeerId, parseClusterFile, serializeClusterFile } from '../../protocol/cluster.ts'
import { BadInputError, UnsupportedVersionError } from '../../protocol/errors.ts'

const ids = await Promise.all(Array.from({ length: 5 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()

function valid (): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any -- mutable JSON for negative tests
  return {
    format: 'keymesh.cluster',
    version: 1,
    clusterId: '0123456789abcdef0123456789abcdef',
    threshold: 2,
    nodes: [1, 2, 3].map(i => ({ index: i, peerId: ids[i - 1], addresses: [`/ip4/127.0.0.1/tcp/${7000 + i}`] })),
    admins: [{ name: 'alice', publicKey: Buffer.alloc(32, 1).toString('base64url') }],
    adminThreshold: 1,
    clients: [{ name: 'ci-builder', peerId: ids[3] }],
    createdAt: '2026-11-25T03:00:00Z'
  }
}

function fieldOf (o: unknown): string {
  try { parseClusterFile(JSON.stringify(o)) } catch (e) { if (e instanceof BadInputError) return e.field; throw e }
  throw new Error('accepted')
}

describe('cluster file', () => {
  it('parses a valid file and serialises it back identically', () => {
    const c = parseClusterFile(JSON.stringify(valid()))
    expect(c.nodes).toHaveLength(3)
    expect(c.admins[0]?.publicKey).toEqual(new Uint8Array(32).fill(1))
    expect(parseClusterFile(serializeClusterFile(c))).toEqual(c)
    expect(JSON.parse(serializeClusterFile(c))).toEqual(valid())
    expect(nodeByPeerId(c, ids[1] as string)?.index).toBe(2)
    expect(nodeByIndex(c, 3)?.peerId).toBe(ids[2])
    expect(allowedPeerIds(c)).toEqual(new Set(ids.slice(0, 4)))
  })

  it('accepts dns and ip6 addresses and several addresses per node', () => {
    const o = valid()
    o.nodes[0].addresses = ['/dns4/km1.example.com/tcp/7001', '/ip6/::1/tcp/7001']
    expect(parseClusterFile(JSON.stringify(o)).nodes[0]?.addresses).toHaveLength(2)
  })

  it('names the field of every invalid value', () => {
    const cases: Array<[string, (o: Record<string, any>) => void]> = [ // eslint-disable-line @typescript-eslint/no-explicit-any -- mutable JSON
      ['cluster.format', o => { o.format = 'x' }],
      ['cluster.clusterId', o => { o.clusterId = 'ABC' }],
      ['cluster.threshold', o => { o.threshold = 4 }],
      ['cluster.threshold', o => { o.threshold = 1 }],
      ['cluster.nodes', o => { o.nodes = o.nodes.slice(0, 1) }],
      ['cluster.nodes[1].index', o => { o.nodes[1].index = 3 }],
      ['cluster.nodes[1].peerId', o => { o.nodes[1].peerId = 'Qmfoo' }],
      ['cluster.nodes[1].peerId', o => { o.nodes[1].peerId = secp }],
      ['cluster.nodes[1].peerId', o => { o.nodes[1].peerId = o.nodes[0].peerId }],
      ['cluster.nodes[0].addresses[0]', o => { o.nodes[0].addresses = ['/ip4/1.2.3.4/udp/7'] }],
      ['cluster.nodes[0].addresses[0]', o => { o.nodes[0].addresses = [`/ip4/1.2.3.4/tcp/7/p2p/${ids[0]}`] }],
      ['cluster.nodes[0].addresses[0]', o => { o.nodes[0].addresses = ['not a multiaddr'] }],
      ['cluster.nodes[0].addresses[0]', o => { o.nodes[0].addresses = ['/ip4/1.2.3.4/tcp/0'] }],
      ['cluster.nodes[0].addresses', o => { o.nodes[0].addresses = [] }],
      ['cluster.nodes[0].extra', o => { o.nodes[0].extra = 1 }],
      ['cluster.admins[0].publicKey', o => { o.admins[0].publicKey = 'AAAA' }],
      ['cluster.admins[0].name', o => { o.admins[0].name = 'bad name' }],
      ['cluster.adminThreshold', o => { o.adminThreshold = 2 }],
      ['cluster.adminThreshold', o => { o.admins = []; o.adminThreshold = 1 }],
      ['cluster.clients[0].peerId', o => { o.clients[0].peerId = ids[0] }],
      ['cluster.clients[1].name', o => { o.clients.push({ name: 'ci-builder', peerId: ids[4] }) }],
      ['cluster.createdAt', o => { o.createdAt = 'yesterday' }],
      ['cluster.extra', o => { o.extra = true }],
      ['cluster.clients', o => { delete o.clients }]
    ]
    for (const [field, mutate] of cases) {
      const o = valid()
      mutate(o)
      expect(fieldOf(o), field).toBe(field)
    }
  })

  it('rejects invalid JSON, another version, and non-objects', () => {
    expect(() => parseClusterFile('{')).toThrow(BadInputError)
    expect(() => parseClusterFile('[]')).toThrow(BadInputError)
    expect(() => parseClusterFile(JSON.stringify({ ...valid(), version: 2 }))).toThrow(UnsupportedVersionError)
    expect(() => parseClusterFile(new Uint8Array([0xff]))).toThrow(BadInputError)
  })
})
