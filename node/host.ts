/**
 * The libp2p host: TCP transport, Noise (XX, mutual PeerId authentication), yamux, and a
 * connection gater that admits only the cluster's nodes and enrolled clients.
 *
 * The allow-list check runs in `denyInbound/OutboundEncryptedConnection` — after the Noise
 * handshake, so the PeerId is authenticated — and in `denyDialPeer` (no dial to strangers).
 * An unknown peer's dial may appear to succeed on its side but the connection is aborted right
 * after the handshake and no stream ever reaches the RPC handler (docs/OPERATIONS.md).
 *
 * No libp2p services (identify, ping, DHT) are enabled: the cluster file is the only address
 * source, and the connection monitor is off (it would ping every 10 s on /ipfs/ping).
 */
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface'

/** Options of createHost. */
export interface HostOptions {
  privateKey: PrivateKey
  /** Listen multiaddrs; [] for a dial-only client. */
  listen: string[]
  /** Returns true when `peerId` may connect (and be dialed). */
  allow: (peerId: string) => boolean
  /** Connection dial timeout, ms (default 5000). */
  dialTimeoutMs?: number
}

/** Builds the allow-list gater. */
export function allowListGater (allow: (peerId: string) => boolean): ConnectionGater {
  const deny = (p: PeerId): boolean => !allow(p.toString())
  return {
    denyDialPeer: deny,
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny
  }
}

/**
 * Creates and starts a libp2p host. Throws (libp2p errors) when a listen address cannot be bound;
 * callers turn that into a KeymeshError naming the address.
 */
export async function createHost (opts: HostOptions): Promise<Libp2p> {
  return await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // maxEarlyStreams: streams a peer opens before this side finished setting up the connection.
    // The default (10) aborts the WHOLE connection when a client fires many requests right after
    // dialing a busy node; allow as many as the RPC server's per-connection stream limit.
    streamMuxers: [yamux({ maxEarlyStreams: 256 })],
    connectionGater: allowListGater(opts.allow),
    connectionMonitor: { enabled: false },
    connectionManager: {
      dialTimeout: opts.dialTimeoutMs ?? 5_000,
      // Default is 5 new inbound connections/s per remote IP: too low for clusters or CI runners
      // sharing a host. Unknown peers are still refused by the gater after the handshake.
      inboundConnectionThreshold: 200,
      maxIncomingPendingConnections: 64
    }
  })
}
