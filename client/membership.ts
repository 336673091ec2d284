/**
 * The client side of cluster membership after reshares (docs/PROTOCOL.md §11.8).
 *
 * A client's trust anchor stays ITS cluster file (genesis or any earlier view it was given). It
 * learns later views with `cluster.get {have}` from the nodes it can reach, folds the returned
 * chain of signed reshare orders onto its cluster file with `foldMembership` (every order verified
 * against the cluster file's admins, adminThreshold, strictly increasing issuedAt) and adopts a
 * strictly higher revision: the transport then dials the new node list (new indices, PeerIds,
 * addresses), and a key set generation with the adopted (k', n') and the same group keys is
 * accepted (client/generations.ts checkGeneration). A node cannot forge a view: the chain is
 * admin-signed, and a chain is adopted only when k′ members of its membership serve it (a signed
 * order that never committed is not enough). A node can withhold the newest chain; asking every
 * reachable node defeats that unless all of them withhold it.
 *
 * Cache: the adopted chain is written to `<cacheDir>/keysets/<clusterId>/membership.json` (public;
 * re-verified when read) so a restarted client starts from the newest view it saw.
 */
import { readFile } from 'node:fs/promises'
import { atomicWriteFile, ensureDir } from './fsutil.ts'
import { join } from 'node:path'
import { foldMembership } from '../protocol/membership.ts'
import type { Membership } from '../protocol/membership.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import type { ClientTransport } from './transport.ts'

function cacheFile (cacheDir: string, clusterId: string): string { return join(cacheDir, 'keysets', clusterId, 'membership.json') }

/** The cached chain folded onto `genesis`, or the genesis itself. Never throws (a bad cache is ignored). */
export async function readCachedMembership (cacheDir: string | undefined, genesis: ClusterFile): Promise<Membership> {
  const none = foldMembership(genesis, [])
  if (cacheDir === undefined) return none
  try {
    const o = JSON.parse(await readFile(cacheFile(cacheDir, genesis.clusterId), 'utf8')) as { orders?: unknown }
    if (!Array.isArray(o.orders) || o.orders.some(x => typeof x !== 'string')) return none
    return foldMembership(genesis, o.orders as string[])
  } catch { return none }
}

/** Writes the chain to the cache (atomic rename). Never throws (a cache write failure is not an error). */
export async function writeCachedMembership (cacheDir: string | undefined, m: Membership): Promise<void> {
  if (cacheDir === undefined || m.orders.length === 0) return
  try {
    await ensureDir(join(cacheDir, 'keysets', m.cluster.clusterId), 0o700)
    await atomicWriteFile(cacheFile(cacheDir, m.cluster.clusterId), JSON.stringify({ format: 'keymesh.membership', version: 1, clusterId: m.cluster.clusterId, orders: m.orders }) + '\n', { mode: 0o600 })
  } catch { /* cache only */ }
}

/**
 * Asks every node of the transport's current view for a newer membership than `current`
 * (cluster.get), folds each answer onto `genesis`, and returns the highest one that extends
 * `current` AND that at least k′ members of its own membership serve (members of the new view not
 * in the current one are asked too). Admin signatures prove an order was issued, not that it
 * committed (a failed reshare's order is just as well signed); a member records the chain only
 * after committing, so k′ of them vouching prove the commit — the rule the nodes apply too.
 * Answers that do not verify or fork are ignored (listed in `rejected`). Never throws.
 */
export async function fetchNewerMembership (t: ClientTransport, genesis: ClusterFile, current: Membership, timeoutMs = 2_000): Promise<{ membership?: Membership, rejected: number[] }> {
  /** Verified chains by answering PeerId. */
  const chains = new Map<string, Membership>()
  const rejected: number[] = []
  const folded = new Map<string, Membership>()
  const ask = async (nodes: ClusterFile['nodes'], direct: boolean): Promise<void> => {
    await Promise.all(nodes.filter(n => !chains.has(n.peerId)).map(async (n) => {
      try {
        const r = direct ? await t.call(n.index, 'cluster.get', { have: current.revision }, { timeoutMs }) : await t.callNode(n, 'cluster.get', { have: current.revision }, { timeoutMs })
        if (r.orders === undefined || r.revision <= current.revision) return
        // Fold each distinct chain once (honest answers are identical).
        const key = r.orders[r.orders.length - 1] ?? ''
        const m = folded.get(key) ?? foldMembership(genesis, r.orders)
        folded.set(key, m)
        // The chain must extend ours (same prefix): a view never forks.
        if (current.orders.some((o, x) => m.orders[x] !== o)) { if (direct) rejected.push(n.index); return }
        chains.set(n.peerId, m)
      } catch { /* unreachable, or an old node without cluster.get */ }
    }))
  }
  await ask(t.cluster.nodes, true)
  const candidates = [...folded.values()].filter(m => [...chains.values()].includes(m)).sort((a, b) => b.revision - a.revision)
  for (const m of candidates) {
    const vouchers = (): number => m.cluster.nodes.filter(n => { const c = chains.get(n.peerId); return c !== undefined && m.orders.every((o, j) => c.orders[j] === o) }).length
    if (vouchers() < m.cluster.threshold) await ask(m.cluster.nodes.filter(n => !t.cluster.nodes.some(x => x.peerId === n.peerId)), false)
    if (vouchers() >= m.cluster.threshold) return { membership: m, rejected }
  }
  return { rejected }
}
