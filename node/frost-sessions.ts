/**
 * In-memory FROST signing sessions (RFC 9591 §5.1 round one nonces) of one node.
 *
 * Round one (`frost.commit`) draws fresh hiding/binding nonces; round two (`frost.sign`) uses
 * them exactly once. Reusing a nonce pair for two different messages reveals the signing share
 * (RFC 9591 §7.1 / §8), so this table enforces:
 *   - nonces live in memory only (a restart forgets them: a pending session just fails);
 *   - they are keyed by (caller PeerId, session id): a peer can only consume its own sessions;
 *   - single use: `take` removes the entry on the first sign attempt, whether that attempt then
 *     succeeds or fails, and leaves a tombstone so a replay is answered CONFLICT, not NOT_FOUND;
 *   - they expire after `ttlMs` (60 s);
 *   - at most `maxPerPeer` (64) outstanding per peer, so one peer cannot exhaust memory (BUSY).
 *
 * Ownership: the table owns the nonces from `put` until `take` hands them to the caller (who
 * must use them once and drop them) or until they expire / are evicted, when `dispose` is called
 * so that the owner can wipe what can be wiped.
 *
 * No timers: expiry is enforced lazily on every call, so the table never keeps a process alive.
 */
import { ErrorCode, KeymeshError } from '../protocol/errors.ts'

/** Default lifetime of a nonce pair (ms). */
export const FROST_NONCE_TTL_MS = 60_000
/** Default cap of outstanding sessions per peer. */
export const FROST_MAX_SESSIONS_PER_PEER = 64
/** Cap of remembered used session ids (tombstones) per peer; older ones are forgotten first. */
export const FROST_MAX_TOMBSTONES_PER_PEER = 1024

/** Options of a session table. */
export interface FrostSessionOptions<N> {
  ttlMs?: number
  maxPerPeer?: number
  maxTombstonesPerPeer?: number
  /** Clock (ms); tests inject a fake one. */
  now?: () => number
  /** Called once for every nonce pair the table drops without handing it out (expiry, clear). */
  dispose?: (nonces: N) => void
}

interface Entry<N> { nonces: N; commitment: Uint8Array; keySetId?: string; expires: number }
interface PeerTable<N> { live: Map<string, Entry<N>>; used: Map<string, number> }

/**
 * What `take` hands back: the nonces (now owned by the caller), the commitment sent in round one
 * and the key set generation (keySetId) the session was committed under, if recorded.
 */
export interface TakenSession<N> { nonces: N; commitment: Uint8Array; keySetId?: string }

/** Per-peer, single-use, expiring FROST nonce table. Generic over the nonce type. */
export class FrostSessions<N> {
  private readonly peers = new Map<string, PeerTable<N>>()
  private readonly ttlMs: number
  private readonly maxPerPeer: number
  private readonly maxTombstones: number
  private readonly now: () => number
  private readonly dispose: (nonces: N) => void

  constructor (opts: FrostSessionOptions<N> = {}) {
    this.ttlMs = opts.ttlMs ?? FROST_NONCE_TTL_MS
    this.maxPerPeer = opts.maxPerPeer ?? FROST_MAX_SESSIONS_PER_PEER
    this.maxTombstones = opts.maxTombstonesPerPeer ?? FROST_MAX_TOMBSTONES_PER_PEER
    this.now = opts.now ?? Date.now
    this.dispose = opts.dispose ?? (() => {})
  }

  /** Drops expired entries and tombstones of one peer; removes the peer when empty. */
  private sweep (peer: string, t: PeerTable<N>, now: number): void {
    for (const [s, e] of t.live) {
      if (e.expires <= now) { t.live.delete(s); this.dispose(e.nonces) }
    }
    for (const [s, until] of t.used) if (until <= now) t.used.delete(s)
    if (t.live.size === 0 && t.used.size === 0) this.peers.delete(peer)
  }

  private tombstone (t: PeerTable<N>, session: string, now: number): void {
    t.used.set(session, now + this.ttlMs)
    while (t.used.size > this.maxTombstones) {
      const oldest = t.used.keys().next().value
      if (oldest === undefined) break
      t.used.delete(oldest)
    }
  }

  /**
   * Stores the nonces of a new session. Throws KeymeshError CONFLICT when (peer, session) is live
   * or was used within the last ttl, BUSY when the peer already has `maxPerPeer` live sessions.
   * On a throw the caller still owns `nonces`. `keySetId`: the generation of the sign key the
   * session is bound to (handed back by `take`).
   */
  put (peer: string, session: string, nonces: N, commitment: Uint8Array, keySetId?: string): void {
    const now = this.now()
    let t = this.peers.get(peer)
    if (t !== undefined) this.sweep(peer, t, now)
    t = this.peers.get(peer)
    if (t === undefined) { t = { live: new Map(), used: new Map() }; this.peers.set(peer, t) }
    if (t.live.has(session) || t.used.has(session)) {
      throw new KeymeshError(ErrorCode.CONFLICT, `frost session ${session} already exists or was used; start a new session`)
    }
    if (t.live.size >= this.maxPerPeer) {
      throw new KeymeshError(ErrorCode.BUSY, `too many outstanding frost sessions (${this.maxPerPeer}); finish or let some expire`)
    }
    t.live.set(session, { nonces, commitment, ...(keySetId !== undefined ? { keySetId } : {}), expires: now + this.ttlMs })
  }

  /**
   * Removes and returns the session (single use: a second `take` is CONFLICT). Throws
   * KeymeshError CONFLICT for a session already taken, NOT_FOUND for an unknown or expired one.
   */
  take (peer: string, session: string): TakenSession<N> {
    const now = this.now()
    const t = this.peers.get(peer)
    if (t === undefined) throw new KeymeshError(ErrorCode.NOT_FOUND, `unknown frost session ${session}; call frost.commit first`)
    const e = t.live.get(session)
    if (e !== undefined && e.expires > now) {
      t.live.delete(session)
      this.tombstone(t, session, now)
      return { nonces: e.nonces, commitment: e.commitment, ...(e.keySetId !== undefined ? { keySetId: e.keySetId } : {}) }
    }
    const replay = e === undefined && t.used.has(session) && (t.used.get(session) as number) > now
    this.sweep(peer, t, now)
    if (replay) throw new KeymeshError(ErrorCode.CONFLICT, `frost session ${session} was already used; nonces are single use`)
    throw new KeymeshError(ErrorCode.NOT_FOUND, `unknown or expired frost session ${session}; call frost.commit again`)
  }

  /** Live sessions of one peer (after expiry). Never throws. */
  outstanding (peer: string): number {
    const t = this.peers.get(peer)
    if (t === undefined) return 0
    this.sweep(peer, t, this.now())
    return this.peers.get(peer)?.live.size ?? 0
  }

  /** Drops everything (node stop), disposing every live nonce pair. Never throws. */
  clear (): void {
    for (const t of this.peers.values()) for (const e of t.live.values()) this.dispose(e.nonces)
    this.peers.clear()
  }
}
