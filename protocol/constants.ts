/**
 * Every protocol constant in one place: domain-separation tags, sizes, caps, version numbers.
 * docs/PROTOCOL.md §1 lists the same values; a change here is a protocol change.
 */

/** Protocol generation. Tags carry it; a new generation gets new tags and a new version byte. */
export const PROTOCOL_VERSION = 1

/**
 * Domain-separation tags. Every hash, KDF, proof challenge and signature input is prefixed by
 * exactly one of these (length-prefixed, see group.hashToScalar), so no value computed for one
 * purpose can be replayed as another.
 */
export const Tag = {
  WRAP_KDF: 'keymesh/v1/wrap/kdf',
  WRAP_POK: 'keymesh/v1/wrap/pok',
  WRAP_LABEL: 'keymesh/v1/wrap/label',
  DLEQ: 'keymesh/v1/dleq',
  DLEQ_BATCH: 'keymesh/v1/dleq/batch',
  DLEQ_NONCE: 'keymesh/v1/dleq/nonce',
  PARTIAL_SEAL: 'keymesh/v1/partial/seal',
  ENVELOPE_ID: 'keymesh/v1/envelope/id',
  KEYSET_ID: 'keymesh/v1/keyset/id',
  DKG_TRANSCRIPT: 'keymesh/v1/dkg/transcript',
  ARTIFACT_KEY: 'keymesh/v1/artifact/key',
  ARTIFACT_HEADER: 'keymesh/v1/artifact/header',
  STORAGE_KEY: 'keymesh/v1/storage/key',
  BUNDLE: 'keymesh/v1/bundle'
} as const

/** Sizes of group elements (edwards25519, RFC 8032 encodings). */
export const POINT_LEN = 32
export const SCALAR_LEN = 32
/** A data key (release key, deployment key): AES-256. */
export const DATA_KEY_LEN = 32
export const AEAD_TAG_LEN = 16
export const AEAD_NONCE_LEN = 12
/** X25519 recipient public key (HPKE DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1). */
export const RECIPIENT_KEY_LEN = 32
export const SHA256_LEN = 32

/** Cluster limits. n ≤ 64 keeps every per-node list small and every message bounded. */
export const MAX_NODES = 64
export const MIN_THRESHOLD = 2
/** Cluster id: 16 random bytes, shown as 32 hex characters. */
export const CLUSTER_ID_LEN = 16

/** Label field limits (docs/PROTOCOL.md §3.1). */
export const MAX_LABEL_FIELD_LEN = 128
export const LABEL_FIELD_PATTERN = /^[A-Za-z0-9._:@+/-]*$/

/** RPC caps. A request or response larger than MAX_RPC_MESSAGE is refused before parsing. */
export const MAX_RPC_MESSAGE = 4 * 1024 * 1024
export const MAX_BATCH = 1000

/** Artifact STREAM format (docs/PROTOCOL.md §7). */
export const ARTIFACT_DEFAULT_CHUNK = 1024 * 1024
export const ARTIFACT_MIN_CHUNK = 4 * 1024
export const ARTIFACT_MAX_CHUNK = 16 * 1024 * 1024
