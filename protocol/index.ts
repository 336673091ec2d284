/**
 * keymesh protocol: the public surface of the pure package (no I/O).
 *
 * Re-exports what node/, client/ and simulation/ use. Functions that take explicit randomness
 * (`*WithRandomness`, `*WithEphemeral`, `*WithRng`, `*WithSalt`) exist only for known-answer vectors
 * and are deliberately not exported here.
 */
export * from './errors.ts'
export * from './bytes.ts'
export * from './constants.ts'
export {
  type Point, type Scalar, type GroupBackend, BASE, IDENTITY, L, nobleBackend, group, setGroupBackend,
  mod, inv, encodePoint, decodePoint, decodePointUnchecked, encodeScalar, decodeScalar, randomScalar,
  hashToScalar, lagrangeAtZero
} from './group.ts'
export { type Label, LABEL_VERSION, MAX_LABEL_LEN, validateLabel, encodeLabel, decodeLabel } from './label.ts'
export {
  type GroupPublicKey, type KeySet, type KeyShare, type KeySetJSON, type GroupPublicKeyJSON, KEYSET_MAGIC, KEYSET_VERSION,
  MAX_KEYSET_LEN, validateClusterId, validateThreshold, checkVerifyingShares, evalCommitment, encodeKeySet,
  decodeKeySet, keySetId, wrapKey, signKey, keySetToJSON, keySetFromJSON
} from './keyset.ts'
export {
  type Envelope, ENVELOPE_MAGIC, ENVELOPE_VERSION, ENVELOPE_CIPHERTEXT_LEN, MAX_ENVELOPE_LEN, ARMOR_BEGIN, ARMOR_END,
  envelopeHeader, encodeEnvelope, decodeEnvelope, armorEnvelope, dearmorEnvelope, envelopeId
} from './envelope.ts'
export { wrap, verifyEnvelope, verifyEnvelopes } from './wrap.ts'
export { type DleqProof, DLEQ_PROOF_LEN, encodeDleqProof, decodeDleqProof, dleqProve, dleqVerify } from './dleq.ts'
export {
  type RecipientKeyPair, HPKE_KEM_X25519_SHA256, HPKE_KDF_HKDF_SHA256, HPKE_AEAD_AES_128_GCM, HPKE_AEAD_AES_256_GCM,
  type HpkeAeadId, HPKE_ENC_LEN, generateRecipientKeyPair, recipientPublicKey, hpkeSeal, hpkeOpen
} from './hpke.ts'
export {
  type Partial, type BatchPartial, PARTIAL_KIND_SINGLE, PARTIAL_KIND_BATCH, MAX_SEALED_PARTIAL_LEN, computePartial,
  computeBatchPartial, encodePartial, decodePartial, partialSealInfo, sealPartial, openSealedPartial
} from './partial.ts'
export { type CombineOptions, verifyPartial, verifyBatchPartial, combine, combineBatch } from './combine.ts'
export { type SealedEntry, type Bundle, BUNDLE_MAGIC, BUNDLE_VERSION, MAX_BUNDLE_LEN, encodeBundle, decodeBundle, openBundle } from './bundle.ts'
export {
  type DkgRound1Package, type DkgState, DKG_VERSION, dkgStart, verifyRound1, encodeDkgRound1, decodeDkgRound1,
  transcriptDigests, compareTranscripts, dkgRound2, decodeDkgRound2, dkgFinish, dkgErase, encodeDkgState, decodeDkgState
} from './dkg.ts'
export {
  type SigningCommitment, type SigningNonces, type FrostPublic, SIGNING_COMMITMENT_LEN, SIGNATURE_SHARE_LEN, ED25519_SIG_LEN,
  frostPublic, validateCommitments, frostCommit, frostSignShare, frostVerifyShare, ed25519PublicKeyObject, ed25519Verify,
  frostAggregate, encodeSigningCommitment, decodeSigningCommitment, encodeSigningCommitments, decodeSigningCommitments,
  encodeSignatureShare, decodeSignatureShare
} from './frost.ts'
export {
  type Manifest, MANIFEST_TYPE, MANIFEST_VERSION, MAX_MANIFEST_LEN, canonicalJson, validateManifest, canonicalManifest, parseManifest
} from './manifest.ts'
export {
  type JwsHeader, type Jwk, type Jwks, type ParsedJws, JWS_ALG, JWS_TYP, MAX_JWS_LEN, jwsKid, jwsSigningInput, assembleJws,
  parseJws, jwksFromKeySets, validateJwks, verifyJws
} from './jws.ts'
export {
  type ArtifactHeader, type ArtifactEncryptOptions, ARTIFACT_MAGIC, ARTIFACT_VERSION, ARTIFACT_HEADER_LEN,
  encodeArtifactHeader, decodeArtifactHeader, artifactCiphertextSize, ArtifactEncryptor, ArtifactDecryptor, encryptArtifact, decryptArtifact,
  encryptArtifactBytes, decryptArtifactBytes
} from './artifact.ts'
export {
  type ClusterNode, type ClusterAdmin, type ClusterClient, type ClusterFile, CLUSTER_FORMAT, CLUSTER_VERSION,
  validatePeerId, validateNodeAddress, validateClusterFile, parseClusterFile, serializeClusterFile, nodeByPeerId,
  nodeByIndex, allowedPeerIds
} from './cluster.ts'
export {
  type RpcOp, type RequestBodies, type ResponseBodies, type DecodedRequest, RPC_PROTOCOL, RPC_VERSION, MAX_RPC_TTL_MS,
  RPC_OPS, NODE_ONLY_OPS, isRpcOp, validateDkgSession, parseDkgSession, dkgSessionId, validateRequestId, encodeRequest,
  decodeRequest, peekRequestId, encodeResponse, encodeErrorResponse, RemoteError, decodeResponse, decodeResponseBody
} from './rpc.ts'
