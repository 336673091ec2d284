/**
 * Recovery-kit commands (node-local; docs/LIFECYCLE.md "Offline recovery kit"). Registered by
 * `registerRecoveryCommands(program)` (to be wired into bin/keymesh.ts by the lead):
 *
 *   keymesh recovery custodian-key --out FILE                  (custodian: X25519 key pair; prints the public key)
 *   keymesh recovery export  --data D (--passphrase-file F | --key-file F | --insecure-dev-passphrase)
 *                            --custodian NAME=PUBKEY ... --threshold T --out DIR [--json]
 *   keymesh recovery open    --piece FILE --custodian-key FILE --out FILE
 *   keymesh recovery restore --data D (storage key) --cluster C --keysets DIR --opened FILE ... [--json]
 *
 * `export` and `restore` need the node STOPPED (its database is locked while it runs). Exit codes
 * as everywhere (protocol/errors.ts): 2 bad input, 4 verification failed (wrong passphrase, altered
 * or foreign pieces, a share that does not match the key set).
 */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { BadInputError } from '../../protocol/errors.ts'
import { fromB64u, toB64u } from '../../protocol/bytes.ts'
import { generateRecipientKeyPair } from '../../protocol/hpke.ts'
import { CUSTODIAN_NAME_PATTERN } from '../../protocol/recovery.ts'
import type { Custodian } from '../../protocol/recovery.ts'
import { nodeByPeerId } from '../../protocol/cluster.ts'
import { configFromOptions, dataPaths } from '../config.ts'
import { loadNodeIdentity, peerIdOf } from '../identity.ts'
import { loadClusterFile } from '../service.ts'
import { readMembership } from './membership-file.ts'
import { decodeOpenedPieces, exportRecoveryKit, openPieceText, readKeySetDir, restoreRecoveryKit, writeNew } from './recovery-kit.ts'

function collect (v: string, prev: string[] = []): string[] { return [...prev, v] }

function print (json: boolean | undefined, obj: unknown, text: string): void {
  process.stdout.write(json === true ? JSON.stringify(obj, null, 2) + '\n' : text)
}

async function readCapped (field: string, path: string, max: number): Promise<Buffer> {
  let b: Buffer
  try { b = await readFile(path) } catch (e) { throw new BadInputError(field, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`) }
  if (b.length > max) throw new BadInputError(field, `${path} is larger than ${max} bytes`)
  return b
}

/** Parses `NAME=PUBKEY` (X25519, base64url 32 bytes). Throws BadInputError. */
export function parseCustodian (spec: string): Custodian {
  const eq = spec.indexOf('=')
  if (eq <= 0) throw new BadInputError(`--custodian ${spec}`, 'expected NAME=PUBKEY (base64url X25519 public key)')
  const name = spec.slice(0, eq)
  if (!CUSTODIAN_NAME_PATTERN.test(name)) throw new BadInputError('--custodian name', `must match ${CUSTODIAN_NAME_PATTERN.source}`)
  const publicKey = fromB64u('--custodian publicKey', spec.slice(eq + 1), 32)
  if (publicKey.length !== 32) throw new BadInputError('--custodian publicKey', 'expected 32 bytes')
  return { name, publicKey }
}

interface StorageOpts { data?: string, passphraseFile?: string, keyFile?: string, insecureDevPassphrase?: boolean }

function storageOptions (c: Command): Command {
  return c.requiredOption('--data <dir>', 'node data directory (node stopped)')
    .option('--passphrase-file <file>', 'file holding the operator passphrase')
    .option('--key-file <file>', 'file holding the 32-byte storage key')
    .option('--insecure-dev-passphrase', 'INSECURE: the public built-in passphrase (tests/demos only)')
}

/** Registers `recovery custodian-key|export|open|restore` on `program`. */
export function registerRecoveryCommands (program: Command): void {
  const rec = program.commands.find(c => c.name() === 'recovery') ?? program.command('recovery').description('offline recovery kit of a node\'s key shares')

  rec.command('custodian-key')
    .description('create a custodian X25519 key pair (secret file 0600, never overwritten); prints the public key')
    .requiredOption('--out <file>', 'secret key file to create')
    .option('--json', 'machine-readable output')
    .action(async (o: { out: string, json?: boolean }) => {
      const kp = generateRecipientKeyPair()
      try {
        await writeNew(o.out, toB64u(kp.secretKey) + '\n', 0o600)
        print(o.json, { publicKey: toB64u(kp.publicKey), file: o.out }, `wrote ${o.out}\npublic key: ${toB64u(kp.publicKey)}\n`)
      } finally { kp.secretKey.fill(0) }
    })

  storageOptions(rec.command('export'))
    .description('split this node\'s shares (every non-retired epoch) into sealed pieces for offline custodians')
    .requiredOption('--custodian <spec>', 'NAME=PUBKEY (base64url X25519); repeatable', collect)
    .requiredOption('--threshold <t>', 'pieces needed to restore')
    .requiredOption('--out <dir>', 'output directory (one sub-directory per custodian)')
    .option('--json', 'machine-readable output')
    .action(async (o: StorageOpts & { custodian: string[], threshold: string, out: string, json?: boolean }) => {
      const cfg = configFromOptions(o, false)
      const t = /^\d{1,3}$/.test(o.threshold) ? Number(o.threshold) : NaN
      const s = await exportRecoveryKit(cfg.dataDir, cfg.storageKey, o.custodian.map(parseCustodian), t, o.out)
      print(o.json, s, `exported node ${s.nodeIndex}'s shares of epoch(s) ${s.epochs.join(', ')}: ${s.files} pieces under ${s.outDir} (${t} of ${o.custodian.length} needed).\nGive each custodian their directory; keep ${s.outDir}/keysets with the cluster records.\n`)
    })

  rec.command('open')
    .description('custodian: open one piece with your secret key (offline); hand the opened file to the restoring operator')
    .requiredOption('--piece <file>', 'armored piece')
    .requiredOption('--custodian-key <file>', 'your secret key file (recovery custodian-key)')
    .requiredOption('--out <file>', 'opened piece to create (SECRET, 0600)')
    .action(async (o: { piece: string, custodianKey: string, out: string }) => {
      const sk = fromB64u('--custodian-key', (await readCapped('--custodian-key', o.custodianKey, 256)).toString('utf8').trim(), 32)
      try {
        if (sk.length !== 32) throw new BadInputError('--custodian-key', 'expected a base64url 32-byte secret key')
        const opened = openPieceText((await readCapped('--piece', o.piece, 64 * 1024)).toString('utf8'), sk)
        try { await writeNew(o.out, opened, 0o600) } finally { opened.fill(0) }
        process.stdout.write(`wrote ${o.out}\n`)
      } finally { sk.fill(0) }
    })

  storageOptions(rec.command('restore'))
    .description('rebuild a node\'s shares from opened pieces into a FRESH data directory (keymesh node init, same identity file restored from backup or a new one in a new cluster file)')
    .requiredOption('--cluster <file>', 'the cluster file: the kit must belong to this directory\'s identity (identity.key) in the cluster\'s membership')
    .requiredOption('--keysets <dir>', 'directory of trusted <epoch>.keyset files')
    .requiredOption('--opened <file>', 'opened piece; repeatable (≥ t per epoch and key)', collect)
    .option('--json', 'machine-readable output')
    .action(async (o: StorageOpts & { cluster: string, keysets: string, opened: string[], json?: boolean }) => {
      const cfg = configFromOptions(o, false)
      const genesis = await loadClusterFile(o.cluster)
      const peerId = peerIdOf(await loadNodeIdentity(dataPaths(cfg.dataDir).identity))
      const self = nodeByPeerId((await readMembership(cfg.dataDir, genesis)).cluster, peerId)
      if (self === undefined) throw new BadInputError('--data', `this data directory's identity ${peerId} is not a node of cluster ${o.cluster}; restore the node's own identity.key (from its backup) after keymesh node init`)
      const keySets = await readKeySetDir(o.keysets)
      const foreign = keySets.find(ks => ks.clusterId !== genesis.clusterId)
      if (foreign !== undefined) throw new BadInputError('--keysets', `the key set of epoch ${foreign.epoch} belongs to cluster ${foreign.clusterId}, not ${genesis.clusterId}`)
      const files: Uint8Array[] = []
      let r: { nodeIndex: number, epochs: number[] }
      try {
        for (const f of o.opened) files.push(new Uint8Array(await readCapped('--opened', f, 64 * 1024)))
        r = await restoreRecoveryKit(cfg.dataDir, cfg.storageKey, keySets, decodeOpenedPieces(files), self.index)
      } finally {
        // Opened pieces are secret (t of them rebuild the share): wiped on every path.
        for (const f of files) f.fill(0)
      }
      print(o.json, r, `restored node ${r.nodeIndex}'s shares of epoch(s) ${r.epochs.join(', ')}; every share matches its key set\n`)
    })
}
