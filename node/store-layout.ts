/**
 * The level key layout of DATA/db, in one place (docs/OPERATIONS.md "Data directory").
 *
 * Keys are UTF-8 strings, values raw bytes. Epoch numbers are zero-padded to 10 digits so that
 * lexicographic order is numeric order.
 *
 * | key                                  | value                                                  | at rest   |
 * | ------------------------------------ | ------------------------------------------------------ | --------- |
 * | `meta/layout`                        | u8 layout version (1)                                  | plain     |
 * | `meta/epoch`                         | u32 BE: the current (last committed) epoch             | plain     |
 * | `meta/policy-floor`                  | u32 BE: highest policyVersion ever in force here       | sealed    |
 * | `keyset/<epoch>`                     | encodeKeySet bytes of that epoch's CURRENT generation  | plain     |
 * | `keysetgen/<epoch>/<keySetId>`       | encodeKeySet bytes of every generation ever committed  | plain     |
 * | `share/<epoch>/wrap`                 | share record: u16 BE index ‖ 32-byte LE scalar          | sealed    |
 * | `share/<epoch>/sign`                 | same, for the sign key                                 | sealed    |
 * | `dkg/<session>/<name>`               | opaque DKG progress bytes (public parts)               | plain     |
 * | `dkg/<session>/secret:<name>`        | opaque DKG progress bytes (secret parts)               | sealed    |
 * | `dkg/f<e>-<n16>/result`             | refresh result record (public; written by replaceGenerations) | plain |
 *
 * "sealed" = StorageKey.seal(<the full key string>, bytes) (node/storage-key.ts): AES-256-GCM with
 * the key string in the AAD, so a sealed value copied to another key does not open.
 * `<session>` is a DKG session id `e<epoch>-a<attempt>` or a refresh session id
 * `f<epoch>-<16 hex>` (protocol/rpc.ts).
 *
 * Generations: a proactive refresh (node/lifecycle/refresh-ceremony.ts) gives an epoch a new key
 * set with the same group keys (new commitments/verifying shares, new keySetId). The current one
 * stays under `keyset/<epoch>`; every generation ever committed here (the first one included) is
 * also kept under `keysetgen/<epoch>/<keySetId>` so that a client holding an older generation can
 * fetch and check it. Shares exist only for the current generation.
 */

/** Layout version stored under META_LAYOUT. */
export const LAYOUT_VERSION = 1
export const META_LAYOUT = 'meta/layout'
export const META_EPOCH = 'meta/epoch'
/**
 * Highest policy version this node has put in force. Sealed (authenticated by the storage key), so
 * deleting or rolling back DATA/policy.json cannot silently reopen the bootstrap rule or an older
 * policy: without the storage passphrase the floor can be neither lowered nor forged.
 */
export const META_POLICY_FLOOR = 'meta/policy-floor'

/** Which of the two keys of an epoch. */
export type KeyKind = 'wrap' | 'sign'

/** Secret DKG entries start with this prefix (encrypted at rest). */
export const SECRET_PREFIX = 'secret:'

/** Zero-padded epoch. Throws RangeError outside u32. */
export function epochKey (epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 1 || epoch > 0xffffffff) throw new RangeError('epoch out of range')
  return String(epoch).padStart(10, '0')
}

export function keySetKey (epoch: number): string { return `keyset/${epochKey(epoch)}` }
/** Record of one generation of an epoch's key set. keySetId: 64 lowercase hex (not checked here). */
export function keySetGenKey (epoch: number, keySetId: string): string { return `keysetgen/${epochKey(epoch)}/${keySetId}` }
export function shareKey (epoch: number, kind: KeyKind): string { return `share/${epochKey(epoch)}/${kind}` }
export function dkgPrefix (session: string): string { return `dkg/${session}/` }
export function dkgKey (session: string, name: string): string { return `${dkgPrefix(session)}${name}` }
/** Prefix of every DKG session of an epoch (`dkg/e<epoch>-a`). */
export function dkgEpochPrefix (epoch: number): string { return `dkg/e${epoch}-a` }
/** Upper bound for a prefix range scan (`lt`). */
export function prefixEnd (prefix: string): string { return prefix + '\uffff' }

/**
 * Files next to DATA/db (not level keys: the audit log is an append-only file so that it can be
 * copied, shipped and verified on its own; the policy is one small document replaced atomically).
 *
 * | file               | content                                                        | mode |
 * | ------------------ | -------------------------------------------------------------- | ---- |
 * | `DATA/policy.json` | the signed policy in force (canonical JSON, protocol/policy.ts) | 0600 |
 * | `DATA/audit.log`   | the audit hash chain, one record per line (protocol/audit.ts)   | 0600 |
 * | `DATA/lifecycle.json` | lifecycle orders: replay nonces, pending order, retirement line (node/lifecycle/state.ts) | 0600 |
 */
export const POLICY_FILE = 'policy.json'
export const AUDIT_LOG_FILE = 'audit.log'
