/**
 * keymesh client library: public API.
 *
 * Connect to a cluster with an enrolled identity, fetch the key set (k-agreed), wrap keys,
 * rewrap them through any k nodes (hedged, lying nodes blamed), batch rewrap, threshold-sign,
 * the build / deploy-prepare / deploy / verify flows over release directories, and moving
 * envelopes to the newest epoch (migrateToLatest). Key-set generations (share refresh) are
 * handled inside every quorum operation (generations.ts).
 * docs/CLIENT.md has runnable examples.
 */
import '../protocol/polyfill.ts'

export { KeymeshClient, loadClusterFile } from './client.ts'
export type { ConnectOptions } from './client.ts'
export { ClientTransport, DEFAULT_CALL_TIMEOUT_MS } from './transport.ts'
export type { CallOptions, TransportOptions } from './transport.ts'
export {
  generateIdentity, loadIdentity, writeIdentityFile, identityFromJSON, identityToJSON, wipeIdentity,
  generateAdminKey, loadAdminKey, writeAdminKeyFile, IDENTITY_FORMAT, ADMIN_KEY_FORMAT
} from './identity.ts'
export type { ClientIdentity, IdentityFileJSON, AdminKey, AdminKeyFileJSON } from './identity.ts'
export { fetchKeySet, defaultCacheDir, listCachedEpochs, readCachedKeySet, writeCachedKeySet, checkKeySetMatchesCluster } from './keyset-fetch.ts'
export type { KeySetFetchOptions } from './keyset-fetch.ts'
export { rewrap, rewrapBatch } from './rewrap.ts'
export { resolveGeneration, checkGeneration } from './generations.ts'
export type { ResolveOptions } from './generations.ts'
export { migrateToLatest, DEFAULT_MIGRATE_BATCH } from './migrate.ts'
export type { MigrateOptions, MigrateResult, MigrateFailure } from './migrate.ts'
export type { RewrapOptions, RewrapResult, RewrapBatchResult } from './rewrap.ts'
export { thresholdSign } from './sign.ts'
export type { SignOptions, SignResult } from './sign.ts'
export { build, encryptFile } from './build.ts'
export type { BuildOptions, BuildResult } from './build.ts'
export { deploy, prepareBundle, openReleaseBundle, collectSealed } from './deploy.ts'
export type { DeployOptions, DeployResult, PrepareOptions, OnVerifyFailure } from './deploy.ts'
export { verifyRelease, verifyReleaseSignature } from './verify.ts'
export type { VerifyResult } from './verify.ts'
export { RELEASE_FILES, RELEASE_KEY_PURPOSE, loadRelease, checkReleaseConsistency, verifyArtifactDigest, checkEnvelopeMatchesManifest } from './release-layout.ts'
export type { LoadedRelease } from './release-layout.ts'
export { devUp, freeListenPorts, devDown, startDevNode, stopDevNode, waitForDkg, readDevState, describeDevCluster, DEV_IDENTITIES } from './dev-cluster.ts'
export type { DevUpOptions, DevClusterInfo, DevClusterState } from './dev-cluster.ts'
export type { ProgressEvent, ProgressFn } from './progress.ts'
export { registerClientCommands } from './cli.ts'
export { newOrder, signOrder, pushOrder, waitForEpoch, waitForRefresh } from './lifecycle.ts'
export type { PushResult } from './lifecycle.ts'
