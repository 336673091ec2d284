/**
 * Node configuration: every CLI option of `keymesh node start|init` becomes one field of
 * NodeConfig here, in one place, with its default and its validation.
 */
import { isAbsolute, join, resolve } from 'node:path'
import { BadInputError } from '../protocol/errors.ts'
import { aint } from '../protocol/bytes.ts'
import type { LogLevel } from './log.ts'

/** Where the storage key comes from. */
export type StorageKeySource =
  | { kind: 'passphrase-file', path: string }
  | { kind: 'key-file', path: string }
  | { kind: 'insecure-dev' }

/** Everything the node daemon needs to know at start. */
export interface NodeConfig {
  /** Absolute data directory (identity, storage-key params, db/). */
  dataDir: string
  /** Absolute path of the cluster file (undefined for `node init`). */
  clusterPath?: string
  /** Absolute path of a signed reshare order this NEW node joins by (`node start --join`). */
  joinPath?: string
  /** Listen multiaddrs; default: the node's own addresses from the cluster file. */
  listen: string[]
  storageKey: StorageKeySource
  /** Server-side cap on any request's deadline, ms. */
  maxRequestMs: number
  /** Requests in flight per remote peer before BUSY. */
  maxInflightPerPeer: number
  /** Deadline to read one request frame, ms. */
  readTimeoutMs: number
  /** Default per-call timeout of node→node calls, ms. */
  peerCallTimeoutMs: number
  logLevel: LogLevel
}

/** Defaults of the tunables. */
export const CONFIG_DEFAULTS = {
  maxRequestMs: 30_000,
  maxInflightPerPeer: 32,
  readTimeoutMs: 10_000,
  peerCallTimeoutMs: 10_000,
  logLevel: 'info' as LogLevel
}

/** Layout of files in the data directory. */
export function dataPaths (dataDir: string): { identity: string, storageParams: string, db: string, lock: string } {
  return {
    identity: join(dataDir, 'identity.key'),
    storageParams: join(dataDir, 'storage-key.json'),
    db: join(dataDir, 'db'),
    lock: join(dataDir, 'node.lock')
  }
}

/** Raw commander options (strings) for `node start` / `node init`. */
export interface NodeCliOptions {
  data?: string
  cluster?: string
  join?: string
  listen?: string[]
  passphraseFile?: string
  keyFile?: string
  insecureDevPassphrase?: boolean
  maxRequestMs?: string
  maxInflight?: string
  logLevel?: string
}

function abs (p: string): string { return isAbsolute(p) ? p : resolve(process.cwd(), p) }

/**
 * Converts CLI options to a NodeConfig. Exactly one storage key source must be given.
 * Throws BadInputError naming the option.
 */
export function configFromOptions (o: NodeCliOptions, needCluster: boolean): NodeConfig {
  if (o.data === undefined || o.data === '') throw new BadInputError('--data', 'required: the node data directory')
  if (needCluster && (o.cluster === undefined || o.cluster === '')) throw new BadInputError('--cluster', 'required: the cluster file')
  const sources = [o.passphraseFile !== undefined, o.keyFile !== undefined, o.insecureDevPassphrase === true].filter(Boolean).length
  if (sources !== 1) throw new BadInputError('--passphrase-file|--key-file|--insecure-dev-passphrase', 'give exactly one storage key source')
  const storageKey: StorageKeySource = o.passphraseFile !== undefined
    ? { kind: 'passphrase-file', path: abs(o.passphraseFile) }
    : o.keyFile !== undefined ? { kind: 'key-file', path: abs(o.keyFile) } : { kind: 'insecure-dev' }
  const num = (name: string, v: string | undefined, def: number, min: number, max: number): number =>
    v === undefined ? def : aint(name, /^\d+$/.test(v) ? Number(v) : NaN, min, max)
  const level = o.logLevel ?? CONFIG_DEFAULTS.logLevel
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new BadInputError('--log-level', 'expected debug|info|warn|error')
  const cfg: NodeConfig = {
    dataDir: abs(o.data),
    listen: o.listen ?? [],
    storageKey,
    maxRequestMs: num('--max-request-ms', o.maxRequestMs, CONFIG_DEFAULTS.maxRequestMs, 100, 60_000),
    maxInflightPerPeer: num('--max-inflight', o.maxInflight, CONFIG_DEFAULTS.maxInflightPerPeer, 1, 1024),
    readTimeoutMs: CONFIG_DEFAULTS.readTimeoutMs,
    peerCallTimeoutMs: CONFIG_DEFAULTS.peerCallTimeoutMs,
    logLevel: level as LogLevel
  }
  if (o.cluster !== undefined) cfg.clusterPath = abs(o.cluster)
  if (o.join !== undefined && o.join !== '') cfg.joinPath = abs(o.join)
  return cfg
}
