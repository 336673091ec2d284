/**
 * The node's membership chain `DATA/membership.json` (0600, replaced atomically: temp file, fsync,
 * rename; docs/PROTOCOL.md §11.8). Public data only: the signed reshare orders this node saw
 * COMMIT, oldest first. The node's effective cluster is foldMembership(genesis, orders).
 *
 * ```json
 * { "format": "keymesh.membership", "version": 1, "clusterId": "<32 hex>", "orders": ["<signed order text>", ...] }
 * ```
 */
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { BadInputError, ErrorCode, KeymeshError } from '../../protocol/errors.ts'
import { MAX_MEMBERSHIP_ORDERS, foldMembership } from '../../protocol/membership.ts'
import type { Membership } from '../../protocol/membership.ts'
import type { ClusterFile } from '../../protocol/cluster.ts'

/** File name under the data directory. */
export const MEMBERSHIP_FILE = 'membership.json'
export const MEMBERSHIP_FORMAT = 'keymesh.membership'

/**
 * Reads DATA/membership.json and folds it onto `genesis`; a missing file is the genesis itself
 * (revision 1). Throws KeymeshError(INTERNAL) when the file exists but is corrupt or does not
 * verify against the genesis file (never silently reset: the node would serve under a stale view).
 */
export async function readMembership (dataDir: string, genesis: ClusterFile): Promise<Membership> {
  const path = join(dataDir, MEMBERSHIP_FILE)
  let text: string
  try { text = await readFile(path, 'utf8') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return foldMembership(genesis, [])
    throw new KeymeshError(ErrorCode.INTERNAL, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    const o = JSON.parse(text) as Record<string, unknown>
    if (o.format !== MEMBERSHIP_FORMAT || o.version !== 1) throw new BadInputError('membership.format', 'unknown format or version')
    if (o.clusterId !== genesis.clusterId) throw new BadInputError('membership.clusterId', `is not the cluster file's ${genesis.clusterId}`)
    if (!Array.isArray(o.orders) || o.orders.length > MAX_MEMBERSHIP_ORDERS || o.orders.some(x => typeof x !== 'string')) throw new BadInputError('membership.orders', 'expected a list of signed order texts')
    return foldMembership(genesis, o.orders as string[])
  } catch (e) {
    throw new KeymeshError(ErrorCode.INTERNAL, `${path} is corrupt or does not match the cluster file (${e instanceof Error ? e.message : 'error'}); restore it from backup or from another node's copy`)
  }
}

/** Writes DATA/membership.json atomically (0600). Throws the fs error. */
export async function writeMembership (dataDir: string, clusterId: string, orders: string[]): Promise<void> {
  const path = join(dataDir, MEMBERSHIP_FILE)
  const tmp = `${path}.tmp`
  const text = JSON.stringify({ format: MEMBERSHIP_FORMAT, version: 1, clusterId, orders }, null, 2) + '\n'
  const fh = await open(tmp, 'w', 0o600)
  try { await fh.writeFile(text); await fh.sync() } finally { await fh.close() }
  await rename(tmp, path)
}
