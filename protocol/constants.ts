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
  BUNDLE: 'keymesh/v1/bundle',
  // The next five frame their input as utf8(tag) ‖ 0x00 ‖ RFC 8785 canonical JSON (no length
  // prefix: the JSON cannot contain 0x00, so the framing is still injective).
  /** Admin signatures on a policy document (policy.ts, docs/POLICY.md). */
  POLICY: 'keymesh/v1/policy',
  /** Admin approvals of one release for one environment (policy.ts). */
  APPROVAL: 'keymesh/v1/approval',
  /** Admin signatures on a lifecycle order (order.ts). */
  ORDER: 'keymesh/v1/order',
  /** Hash of one audit record (audit.ts). */
  AUDIT_RECORD: 'keymesh/v1/audit/record',
  /** A node's signature on its audit chain head (audit.ts). */
  AUDIT_HEAD: 'keymesh/v1/audit/head',
  /** Recovery kit: kit context, custodian piece sealing, rebuilt-share check (recovery.ts). */
  RECOVERY_KIT: 'keymesh/v1/recovery/kit',
  RECOVERY_PIECE: 'keymesh/v1/recovery/piece',
  RECOVERY_SHARE: 'keymesh/v1/recovery/share'
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

// ---------------------------------------------------------------------------------------------
// Per-format constants: magics, version bytes, exact/maximum lengths and caps of every encoding.
// The owning module re-exports each (`export { X } from './constants.ts'`), so importers of the
// module keep working; docs/PROTOCOL.md *.md give the byte layouts these belong to.

/** Label encoding version byte (label.ts, docs/PROTOCOL.md §3.1). */
export const LABEL_VERSION = 1
/** Longest canonical label encoding: 1 + (2+32) + 4 + (2+32) + 3·(2+128). */
export const MAX_LABEL_LEN = 1 + 2 + 32 + 4 + 2 + 32 + 3 * (2 + MAX_LABEL_FIELD_LEN)

/** Binary magic of an envelope (envelope.ts, §3.2). */
export const ENVELOPE_MAGIC = 'KMEV'
/** Current envelope format version. */
export const ENVELOPE_VERSION = 1
/** AES-256-GCM output for a 32-byte data key: ciphertext ‖ tag. */
export const ENVELOPE_CIPHERTEXT_LEN = DATA_KEY_LEN + AEAD_TAG_LEN
/**
 * Longest binary envelope (the exact format maximum, 614 bytes). Not the same as protocol/rpc.ts's
 * own MAX_ENVELOPE_LEN (an RPC field cap), which rpc.ts defines and exports separately.
 */
export const MAX_ENVELOPE_LEN = 4 + 1 + 2 + MAX_LABEL_LEN + 3 * 32 + ENVELOPE_CIPHERTEXT_LEN
/** Envelope armor header line. */
export const ARMOR_BEGIN = '-----BEGIN KEYMESH ENVELOPE-----'
/** Envelope armor footer line. */
export const ARMOR_END = '-----END KEYMESH ENVELOPE-----'
/** Base64 characters per armor body line. */
export const ARMOR_LINE_LEN = 64

/** Chaum–Pedersen proof length: LE32(c) ‖ LE32(z) (dleq.ts). */
export const DLEQ_PROOF_LEN = 2 * SCALAR_LEN

/** HPKE KEM DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1). */
export const HPKE_KEM_X25519_SHA256 = 0x0020
/** HKDF-SHA256 (RFC 9180 §7.2). */
export const HPKE_KDF_HKDF_SHA256 = 0x0001
/** AES-128-GCM (RFC 9180 §7.3): only for the RFC's test vectors. */
export const HPKE_AEAD_AES_128_GCM = 0x0001
/** AES-256-GCM (RFC 9180 §7.3): keymesh's AEAD. */
export const HPKE_AEAD_AES_256_GCM = 0x0002
/** Length of HPKE `enc` (the ephemeral X25519 public key). */
export const HPKE_ENC_LEN = 32

/** Plaintext kind byte of a single sealed partial (partial.ts). */
export const PARTIAL_KIND_SINGLE = 1
/** Plaintext kind byte of a batch sealed partial. */
export const PARTIAL_KIND_BATCH = 2
/** Largest sealed partial: enc ‖ AEAD(kind ‖ index ‖ u16 m ‖ m·D ‖ proof). */
export const MAX_SEALED_PARTIAL_LEN = HPKE_ENC_LEN + 4 + MAX_BATCH * POINT_LEN + DLEQ_PROOF_LEN + 16

/** Binary magic of a bundle (bundle.ts, §7). */
export const BUNDLE_MAGIC = 'KMBU'
/** Current bundle format version. */
export const BUNDLE_VERSION = 1
/** Largest bundle accepted by decodeBundle. */
export const MAX_BUNDLE_LEN = 4 + 1 + 32 + 32 + 2 + MAX_BATCH * (4 + MAX_ENVELOPE_LEN) + 1 + MAX_NODES * (1 + 4 + MAX_SEALED_PARTIAL_LEN)

/** Binary magic of an encoded key set (keyset.ts, docs/PROTOCOL.md §4.1). */
export const KEYSET_MAGIC = 'KMKS'
/** Current key set format version. */
export const KEYSET_VERSION = 1
/** Largest possible key set encoding: header + 2 keys × (MAX_NODES + MAX_NODES) points. */
export const MAX_KEYSET_LEN = 4 + 1 + CLUSTER_ID_LEN + 4 + 1 + 1 + 2 * 2 * MAX_NODES * POINT_LEN

/** DKG package/state format version (dkg.ts, §4.2). */
export const DKG_VERSION = 1
/** Magic of a DKG round-1 package. */
export const DKG_ROUND1_MAGIC = 'KMD1'
/** Magic of a DKG round-2 package. */
export const DKG_ROUND2_MAGIC = 'KMD2'
/** Magic of an encoded (secret) DKG state. */
export const DKG_STATE_MAGIC = 'KMDS'
/** DKG proof of knowledge: R ‖ z. */
export const DKG_POK_LEN = 64
/** Round-2 package: magic ‖ version ‖ from ‖ to ‖ scalar. */
export const DKG_ROUND2_LEN = 4 + 1 + 1 + 1 + SCALAR_LEN

/** Encoded FROST SigningCommitment: u8 index ‖ hiding (32) ‖ binding (32) (frost.ts, §4.3). */
export const SIGNING_COMMITMENT_LEN = 1 + 2 * POINT_LEN
/** Encoded FROST signature share: a 32-byte little-endian scalar < L (RFC 9591 §4.1). */
export const SIGNATURE_SHARE_LEN = SCALAR_LEN
/** Ed25519 signature (RFC 8032 §5.1.6): R ‖ S. */
export const ED25519_SIG_LEN = 64

/** The release manifest `type` value (manifest.ts, §4.4). */
export const MANIFEST_TYPE = 'keymesh.release-manifest'
/** Current manifest version (`v`). */
export const MANIFEST_VERSION = 1
/** Largest canonical manifest accepted (bytes). */
export const MAX_MANIFEST_LEN = 8 * 1024
/** Longest manifest artifact.name. */
export const MAX_ARTIFACT_NAME_LEN = 255
/** Longest manifest repository. */
export const MAX_REPOSITORY_LEN = 512
/** Longest manifest builder (libp2p PeerId string). */
export const MAX_PEER_ID_LEN = 128

/** JWS alg of a manifest signature (jws.ts, §4.5; RFC 8037 §3.1). */
export const JWS_ALG = 'EdDSA'
/** JWS typ of a manifest signature. */
export const JWS_TYP = 'keymesh-manifest+jws'
/** Largest compact JWS accepted (characters). */
export const MAX_JWS_LEN = 4 + Math.ceil(MAX_MANIFEST_LEN * 4 / 3) + 512
/** Largest decoded JWS protected header accepted (bytes). */
export const MAX_JWS_HEADER_LEN = 256
/** Largest JWKS accepted: one key per epoch, at most this many. */
export const MAX_JWKS_KEYS = 1024

/** Magic of an encrypted artifact ("KMAR"; artifact.ts, docs/PROTOCOL.md). */
export const ARTIFACT_MAGIC = 'KMAR'
/** Current artifact format version. */
export const ARTIFACT_VERSION = 1
/** Artifact salt length in the header. */
export const ARTIFACT_SALT_LEN = 16
/** Artifact header length: magic 4 + version 1 + chunkSize 4 + salt 16. */
export const ARTIFACT_HEADER_LEN = 4 + 1 + 4 + ARTIFACT_SALT_LEN
/**
 * Largest artifact chunk counter this implementation produces or accepts. The format has 88 bits;
 * 2^53 − 1 chunks of ≥ 4 KiB is 32 ZiB, far beyond anything real, and keeps the counter a safe
 * JS integer.
 */
export const ARTIFACT_MAX_COUNTER = Number.MAX_SAFE_INTEGER
