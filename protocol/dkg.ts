/**
 * Distributed key generation: a thin, resumable, blame-assigning wrapper over noble's
 * `ed25519_FROST.DKG` (Pedersen DKG with Feldman VSS and Schnorr proofs of knowledge, the
 * frost-rs split-round API; docs/PROTOCOL.md §4.2). Round 1 (polynomial,
 * commitments, proof of knowledge) is noble's `DKG.round1`; rounds 2 and 3 are the same
 * arithmetic done here on already-validated inputs so that every failure names its sender;
 * tests cross-check both against noble's `round2`/`round3` byte for byte.
 *
 * One run produces one threshold key (the node ceremony runs it twice per epoch: wrap key, sign
 * key). Participants are identified by their 1-based node index i, which is the FROST identifier
 * `Identifier.fromNumber(i)`.
 *
 * Rounds (all functions are pure; the node daemon moves the bytes):
 *   1. `dkgStart` — random polynomial f_i of degree k−1, commitment C_i = (a_i0·B, …, a_i(k−1)·B),
 *      proof of knowledge of a_i0. The secret `DkgState` is persisted (encrypted) by the node.
 *   2. after collecting every round-1 package and checking transcript consistency (echo digests,
 *      `transcriptDigests`/`compareTranscripts`), `dkgRound2` — f_i(j) for every other j, one
 *      secret point-to-point package each. Deterministic in the state, so it can be recomputed
 *      after a crash and always yields the same bytes.
 *   3. `dkgFinish` — verify every received share against its sender's commitment (Feldman:
 *      s·B = Σ_j C_sj·i^j); the first bad dealer(s) are named in VerificationError.blame.
 *
 * Secrets: `DkgState.coefficients` (the polynomial) and every round-2 package are secret. The
 * state is owned by the node's DKG ceremony (stored encrypted at rest, erased after the ceremony);
 * round-2 packages are owned by the sender until handed to the transport and by the recipient
 * until `dkgFinish` returns (it zeroes nothing it does not own: callers zero the packages).
 * Bigints (coefficients, shares) cannot be wiped; `dkgErase` drops what it can.
 */
import { ed25519_FROST } from '@noble/curves/ed25519.js'
import { sha256, sha512 } from '@noble/hashes/sha2.js'
import { BadInputError, UnsupportedVersionError, VerificationError } from './errors.ts'
import { Reader, Writer, aint, abytes, concat, equalBytes, u32, utf8 } from './bytes.ts'
import {
  DKG_POK_LEN, DKG_ROUND1_MAGIC, DKG_ROUND2_LEN, DKG_ROUND2_MAGIC, DKG_STATE_MAGIC, DKG_VERSION, MAX_NODES, MIN_THRESHOLD,
  POINT_LEN, SCALAR_LEN, Tag
} from './constants.ts'
import { BASE, decodePoint, decodeScalar, encodePoint, encodeScalar, group, mod } from './group.ts'
import type { Point, Scalar } from './group.ts'
import { evalCommitment } from './keyset.ts'
import type { GroupPublicKey, KeyShare } from './keyset.ts'

/** Public round-1 broadcast of participant `index`. */
export interface DkgRound1Package {
  /** 1-based node index of the sender. */
  index: number
  /** k points: a_j·B for the sender's polynomial coefficients; [0] commits to its secret. */
  commitment: Point[]
  /** 64 bytes: Schnorr proof of knowledge of a_0 (R ‖ z), noble/frost-rs format. */
  proofOfKnowledge: Uint8Array
}

/**
 * Secret DKG state of one participant. Owned by the node's DKG ceremony; store only encrypted
 * (encodeDkgState) and erase (dkgErase) when the ceremony ends or is abandoned.
 */
export interface DkgState {
  index: number
  threshold: number
  n: number
  /** k secret coefficients a_0..a_(k−1), each in [1, L). */
  coefficients: Scalar[]
  /** This participant's own round-1 package (public), so it can be re-published after a restart. */
  round1: DkgRound1Package
}

/** Format versions, magics and lengths (docs/PROTOCOL.md §4.2), defined in constants.ts, re-exported here. */
export { DKG_VERSION, DKG_ROUND1_MAGIC, DKG_ROUND2_MAGIC, DKG_STATE_MAGIC, DKG_POK_LEN, DKG_ROUND2_LEN } from './constants.ts'
/** noble's DKG proof-of-knowledge challenge prefix (RFC 9591 context string + "dkg"). */
const HDKG_PREFIX = utf8('FROST-ED25519-SHA512-v1dkg')

const M1 = utf8(DKG_ROUND1_MAGIC)
const M2 = utf8(DKG_ROUND2_MAGIC)
const MS = utf8(DKG_STATE_MAGIC)

const Id = ed25519_FROST.Identifier
/** A byte source (noble's RNG shape); deterministic ones are for known-answer vectors only. */
export type Rng = (len?: number) => Uint8Array<ArrayBuffer>

function leBytesToBigint (b: Uint8Array): bigint {
  let v = 0n
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number)
  return v
}

function checkParams (index: unknown, threshold: unknown, n: unknown, what: string): void {
  const nn = aint(`${what}.n`, n, MIN_THRESHOLD, MAX_NODES)
  aint(`${what}.threshold`, threshold, MIN_THRESHOLD, nn)
  aint(`${what}.index`, index, 1, nn)
}

function checkMagic (r: Reader, magic: Uint8Array, name: string, what: string): void {
  if (!equalBytes(r.raw('magic', 4), magic)) throw new BadInputError(`${what}.magic`, `expected "${name}"`)
  const v = r.u8('version')
  if (v !== DKG_VERSION) throw new UnsupportedVersionError(`${what}.version`, v, String(DKG_VERSION))
}

// ---------------------------------------------------------------------------------------------
// Round 1

/**
 * Starts a DKG run as participant `index` of n with threshold k. Returns the secret state (to be
 * persisted encrypted by the caller) and the public round-1 package to broadcast.
 * Throws BadInputError on out-of-range parameters.
 */
export function dkgStart (index: number, threshold: number, n: number): { state: DkgState; round1: DkgRound1Package } {
  return dkgStartWithRng(index, threshold, n, undefined)
}

/** Deterministic variant for known-answer vectors only (not re-exported from index.ts). */
export function dkgStartWithRng (index: number, threshold: number, n: number, rng: Rng | undefined): { state: DkgState; round1: DkgRound1Package } {
  checkParams(index, threshold, n, 'dkg')
  const r1 = ed25519_FROST.DKG.round1(Id.fromNumber(index), { min: threshold, max: n }, undefined, rng)
  const coefficients = r1.secret.coefficients
  if (coefficients === undefined || coefficients.length !== threshold) throw new Error('dkg: noble round1 returned no coefficients')
  const round1: DkgRound1Package = {
    index,
    commitment: r1.public.commitment.map((c, j) => decodePoint(`dkg.round1.commitment[${j}]`, c)),
    proofOfKnowledge: new Uint8Array(r1.public.proofOfKnowledge)
  }
  const state: DkgState = { index, threshold, n, coefficients: [...coefficients], round1 }
  // noble's own copy of the coefficients is no longer needed.
  ed25519_FROST.DKG.clean(r1.secret)
  return { state, round1 }
}

/** The proof-of-knowledge challenge c = H_dkg(LE32(id) ‖ C_0 ‖ R) (noble/frost-rs). */
function pokChallenge (index: number, c0: Point, R: Point): Scalar {
  return mod(leBytesToBigint(sha512(concat(HDKG_PREFIX, encodeScalar(BigInt(index)), encodePoint(c0), encodePoint(R)))))
}

/**
 * Checks one round-1 package: k commitments, valid proof of knowledge of a_0 (R = z·B − c·C_0).
 * Throws VerificationError with blame [pkg.index] when it does not verify.
 */
export function verifyRound1 (pkg: DkgRound1Package, threshold: number): void {
  const blame = [pkg.index]
  if (pkg.commitment.length !== threshold) throw new VerificationError(`dkg: round-1 package of node ${pkg.index} has ${pkg.commitment.length} commitments, expected ${threshold}`, blame)
  const c0 = pkg.commitment[0] as Point
  let R: Point
  let z: Scalar
  try {
    abytes('dkg.round1.proofOfKnowledge', pkg.proofOfKnowledge, DKG_POK_LEN)
    R = decodePoint('dkg.round1.proofOfKnowledge.R', pkg.proofOfKnowledge.subarray(0, POINT_LEN))
    z = decodeScalar('dkg.round1.proofOfKnowledge.z', pkg.proofOfKnowledge.subarray(POINT_LEN), true)
  } catch (err) {
    throw new VerificationError(`dkg: malformed proof of knowledge from node ${pkg.index}`, blame, { cause: err })
  }
  const c = pokChallenge(pkg.index, c0, R)
  // All public: variable-time. z·B − c·C_0 − R must be the identity.
  const check = group().msmPublic([BASE, c0], [z, mod(-c)]).subtract(R)
  if (!check.is0()) throw new VerificationError(`dkg: invalid proof of knowledge from node ${pkg.index}`, blame)
}

/** Binary round-1 package: "KMD1" ‖ u8 version ‖ u8 index ‖ u8 k ‖ k×point ‖ 64-byte proof. Throws BadInputError. */
export function encodeDkgRound1 (pkg: DkgRound1Package): Uint8Array {
  aint('dkg.round1.index', pkg.index, 1, MAX_NODES)
  aint('dkg.round1.k', pkg.commitment.length, MIN_THRESHOLD, MAX_NODES)
  abytes('dkg.round1.proofOfKnowledge', pkg.proofOfKnowledge, DKG_POK_LEN)
  const w = new Writer().raw(M1).u8(DKG_VERSION).u8(pkg.index).u8(pkg.commitment.length)
  for (const p of pkg.commitment) w.raw(encodePoint(p))
  return w.raw(pkg.proofOfKnowledge).bytes()
}

/**
 * Strict decoding of a round-1 package (points strict; the proof is checked structurally here and
 * cryptographically by `verifyRound1`). Throws BadInputError / UnsupportedVersionError.
 */
export function decodeDkgRound1 (b: Uint8Array): DkgRound1Package {
  abytes('dkg.round1', b)
  const r = new Reader(b, 'dkg.round1')
  checkMagic(r, M1, DKG_ROUND1_MAGIC, 'dkg.round1')
  const index = aint('dkg.round1.index', r.u8('index'), 1, MAX_NODES)
  const k = aint('dkg.round1.k', r.u8('k'), MIN_THRESHOLD, MAX_NODES)
  const commitment: Point[] = []
  for (let j = 0; j < k; j++) commitment.push(decodePoint(`dkg.round1.commitment[${j}]`, r.raw('commitment', POINT_LEN)))
  const proofOfKnowledge = new Uint8Array(r.raw('proofOfKnowledge', DKG_POK_LEN))
  r.end()
  decodePoint('dkg.round1.proofOfKnowledge.R', proofOfKnowledge.subarray(0, POINT_LEN))
  decodeScalar('dkg.round1.proofOfKnowledge.z', proofOfKnowledge.subarray(POINT_LEN), true)
  return { index, commitment, proofOfKnowledge }
}

// ---------------------------------------------------------------------------------------------
// Transcript consistency (echo broadcast)

/**
 * Per-sender transcript digests for the echo check. `round1s` must hold exactly one package for
 * each index 1..m (any order); result[i−1] = SHA-256(u32(len T) ‖ T ‖ u32(len ctx) ‖ ctx ‖
 * encodeDkgRound1(pkg_i)) with T = Tag.DKG_TRANSCRIPT and ctx = `context` (empty by default; the
 * ceremony passes cluster id, epoch and key purpose so that digests of different runs never
 * compare equal). Throws BadInputError on missing/duplicate indices.
 */
export function transcriptDigests (round1s: DkgRound1Package[], context: Uint8Array = new Uint8Array(0)): Uint8Array[] {
  const sorted = sortRound1s(round1s, round1s.length)
  const t = utf8(Tag.DKG_TRANSCRIPT)
  abytes('dkg.context', context)
  return sorted.map(p => sha256(concat(u32(t.length), t, u32(context.length), context, encodeDkgRound1(p))))
}

/**
 * Compares this node's digests with the digest lists other nodes report having seen
 * (reporter index → their `transcriptDigests`). Returns the sorted sender indices whose package
 * was seen differently by anyone (empty = consistent). A difference proves that either the sender
 * equivocated or the reporter lied; either way the ceremony must abort naming them.
 * A report of the wrong length cannot be compared: throws VerificationError(blame = [reporter]).
 */
export function compareTranscripts (mine: Uint8Array[], reports: Map<number, Uint8Array[]>): number[] {
  const bad = new Set<number>()
  for (const [reporter, theirs] of reports) {
    if (!Array.isArray(theirs) || theirs.length !== mine.length) {
      throw new VerificationError(`dkg: transcript report of node ${reporter} has ${Array.isArray(theirs) ? theirs.length : 'no'} digests, expected ${mine.length}`, [reporter])
    }
    for (let i = 0; i < mine.length; i++) {
      const a = mine[i] as Uint8Array
      const b = theirs[i]
      if (!(b instanceof Uint8Array) || !equalBytes(a, b)) bad.add(i + 1)
    }
  }
  return [...bad].sort((x, y) => x - y)
}

function sortRound1s (round1s: DkgRound1Package[], n: number): DkgRound1Package[] {
  if (!Array.isArray(round1s) || round1s.length !== n) throw new BadInputError('dkg.round1s', `expected ${n} round-1 packages`)
  const byIndex: Array<DkgRound1Package | undefined> = new Array(n).fill(undefined)
  for (const p of round1s) {
    aint('dkg.round1s[].index', p.index, 1, n)
    if (byIndex[p.index - 1] !== undefined) throw new BadInputError('dkg.round1s', `duplicate package for node ${p.index}`)
    byIndex[p.index - 1] = p
  }
  return byIndex as DkgRound1Package[]
}

// ---------------------------------------------------------------------------------------------
// Round 2

/** Checks the full round-1 transcript (all n packages incl. our own, each proof). */
function checkTranscript (state: DkgState, round1s: DkgRound1Package[]): DkgRound1Package[] {
  const sorted = sortRound1s(round1s, state.n)
  const own = sorted[state.index - 1] as DkgRound1Package
  if (!equalBytes(encodeDkgRound1(own), encodeDkgRound1(state.round1))) {
    throw new BadInputError('dkg.round1s', `package for node ${state.index} (this node) differs from the one this node published`)
  }
  const blame: number[] = []
  let first: unknown
  for (const p of sorted) {
    if (p.index === state.index) continue
    try { verifyRound1(p, state.threshold) } catch (err) { blame.push(p.index); first ??= err }
  }
  if (blame.length > 0) throw new VerificationError(`dkg: invalid round-1 package from node(s) ${blame.join(', ')}`, blame, { cause: first })
  return sorted
}

/**
 * Computes the secret round-2 packages: recipient index → encoded "KMD2" package carrying
 * f_self(recipient). `round1s` is the full transcript: all n packages including this node's own,
 * each obtained from `decodeDkgRound1` (strict points) or `dkgStart`.
 * Deterministic: the same state and transcript always give the same bytes (safe to recompute
 * after a restart). Throws BadInputError (malformed transcript) or VerificationError (bad proof
 * of knowledge; blame names the senders). The returned buffers are secret: the caller owns them.
 */
export function dkgRound2 (state: DkgState, round1s: DkgRound1Package[]): Map<number, Uint8Array> {
  checkState(state)
  checkTranscript(state, round1s)
  // f_i(j) = Σ_t a_it·j^t, exactly what noble's DKG.round2 computes (cross-checked in
  // test/unit/dkg.test.ts). We evaluate it here rather than call noble's round2 because that
  // re-decodes every commitment with a subgroup check (≈2 ms each, (n−1)·k of them) which
  // decodeDkgRound1 has already done, and re-verifies the proofs checkTranscript just verified:
  // 11-of-21 took ≈0.5–1 s per node through noble and takes ≈40 ms here.
  const out = new Map<number, Uint8Array>()
  for (let j = 1; j <= state.n; j++) {
    if (j === state.index) continue
    const share = encodeScalar(evalPoly(state.coefficients, BigInt(j)))
    out.set(j, new Writer().raw(M2).u8(DKG_VERSION).u8(state.index).u8(j).raw(share).bytes())
    share.fill(0)
  }
  return out
}

/**
 * Decodes a round-2 package: "KMD2" ‖ u8 version ‖ u8 from ‖ u8 to ‖ 32-byte scalar (LE, < L,
 * non-zero). Throws BadInputError / UnsupportedVersionError. The returned scalar is secret.
 */
export function decodeDkgRound2 (b: Uint8Array): { from: number; to: number; share: Scalar } {
  abytes('dkg.round2', b, DKG_ROUND2_LEN)
  const r = new Reader(b, 'dkg.round2')
  checkMagic(r, M2, DKG_ROUND2_MAGIC, 'dkg.round2')
  const from = aint('dkg.round2.from', r.u8('from'), 1, MAX_NODES)
  const to = aint('dkg.round2.to', r.u8('to'), 1, MAX_NODES)
  const share = decodeScalar('dkg.round2.share', r.raw('share', SCALAR_LEN))
  r.end()
  return { from, to, share }
}

// ---------------------------------------------------------------------------------------------
// Round 3

/**
 * Finishes the run: verifies every received share against its sender's commitment (Feldman VSS,
 * s_ji·B = Σ_t C_jt·i^t) and returns this node's key share x_i = Σ_j f_j(i) and the group public
 * key (summed commitment; verifying shares V_m = Σ_t C_t·m^t for m = 1..n).
 * `received` maps sender index → its encoded round-2 package for this node (n−1 entries).
 * Throws BadInputError (malformed transcript or state) or VerificationError whose blame lists
 * every sender with a bad proof, a malformed or missing package, or a share that fails VSS.
 * The returned KeyShare is secret and owned by the caller (the node's store).
 */
export function dkgFinish (state: DkgState, round1s: DkgRound1Package[], received: Map<number, Uint8Array>): { share: KeyShare; publicKey: GroupPublicKey } {
  checkState(state)
  const sorted = checkTranscript(state, round1s)
  const me = state.index
  const blame: number[] = []
  let x = evalPoly(state.coefficients, BigInt(me))
  for (const p of sorted) {
    if (p.index === me) continue
    const enc = received.get(p.index)
    let share: Scalar
    try {
      if (enc === undefined) throw new BadInputError('dkg.round2', 'missing')
      const d = decodeDkgRound2(enc)
      if (d.from !== p.index || d.to !== me) throw new BadInputError('dkg.round2', 'addressed wrongly')
      share = d.share
    } catch {
      blame.push(p.index)
      continue
    }
    // share is secret: constant-time base multiplication; the right side is public.
    const lhs = group().mulBase(share)
    const rhs = evalCommitment(p.commitment, me)
    if (!lhs.equals(rhs)) { blame.push(p.index); continue }
    x = mod(x + share)
  }
  for (const j of received.keys()) {
    if (j === me || j < 1 || j > state.n) throw new BadInputError('dkg.received', `unexpected package from node ${j}`)
  }
  if (blame.length > 0) {
    throw new VerificationError(`dkg: bad or missing round-2 share from node(s) ${blame.join(', ')}`, blame.sort((a, b) => a - b))
  }
  const commitments: Point[] = []
  for (let t = 0; t < state.threshold; t++) {
    let acc = (sorted[0] as DkgRound1Package).commitment[t] as Point
    for (let j = 1; j < sorted.length; j++) acc = acc.add((sorted[j] as DkgRound1Package).commitment[t] as Point)
    commitments.push(acc)
  }
  if (commitments[0]?.is0() === true) throw new VerificationError('dkg: group key is the identity', [])
  const verifyingShares: Point[] = []
  for (let m = 1; m <= state.n; m++) verifyingShares.push(evalCommitment(commitments, m))
  if (x === 0n || !group().mulBase(x).equals(verifyingShares[me - 1] as Point)) {
    throw new VerificationError('dkg: own share does not match the group commitment', [])
  }
  return { share: { index: me, scalar: x }, publicKey: { commitments, verifyingShares } }
}

function evalPoly (coeffs: Scalar[], x: bigint): Scalar {
  let acc = 0n
  for (let j = coeffs.length - 1; j >= 0; j--) acc = mod(acc * x + (coeffs[j] as Scalar))
  return acc
}

/** Best-effort erasure of a state's secrets (bigints cannot be wiped; references are dropped). */
export function dkgErase (state: DkgState): void {
  for (let j = 0; j < state.coefficients.length; j++) state.coefficients[j] = 0n
  state.coefficients.length = 0
}

// ---------------------------------------------------------------------------------------------
// State persistence

function checkState (state: DkgState): void {
  checkParams(state.index, state.threshold, state.n, 'dkg.state')
  if (state.coefficients.length !== state.threshold) throw new BadInputError('dkg.state.coefficients', 'state was erased or is malformed')
  if (state.round1.index !== state.index || state.round1.commitment.length !== state.threshold) throw new BadInputError('dkg.state.round1', 'does not belong to this state')
}

/**
 * Secret encoding of a DKG state: "KMDS" ‖ u8 version ‖ u8 index ‖ u8 k ‖ u8 n ‖ k×32-byte
 * coefficient (LE) ‖ u32 len ‖ encodeDkgRound1(own package). The result is SECRET: the caller
 * must encrypt it before it touches disk and zero it afterwards. Throws BadInputError.
 */
export function encodeDkgState (state: DkgState): Uint8Array {
  checkState(state)
  const w = new Writer().raw(MS).u8(DKG_VERSION).u8(state.index).u8(state.threshold).u8(state.n)
  for (const a of state.coefficients) w.raw(encodeScalar(a))
  return w.var32(encodeDkgRound1(state.round1)).bytes()
}

/**
 * Decodes a state and checks it is self-consistent (commitment = coefficients·B, so a corrupted
 * state is detected instead of dealing wrong shares). Throws BadInputError / UnsupportedVersionError.
 */
export function decodeDkgState (b: Uint8Array): DkgState {
  abytes('dkg.state', b)
  const r = new Reader(b, 'dkg.state')
  checkMagic(r, MS, DKG_STATE_MAGIC, 'dkg.state')
  const index = r.u8('index')
  const threshold = r.u8('threshold')
  const n = r.u8('n')
  checkParams(index, threshold, n, 'dkg.state')
  const coefficients: Scalar[] = []
  for (let j = 0; j < threshold; j++) coefficients.push(decodeScalar(`dkg.state.coefficients[${j}]`, r.raw('coefficients', SCALAR_LEN)))
  const round1 = decodeDkgRound1(r.var32('round1', 4 + 2 + 1 + MAX_NODES * POINT_LEN + DKG_POK_LEN + 1))
  r.end()
  if (round1.index !== index || round1.commitment.length !== threshold) throw new BadInputError('dkg.state.round1', 'does not belong to this state')
  for (let j = 0; j < threshold; j++) {
    if (!group().mulBase(coefficients[j] as Scalar).equals(round1.commitment[j] as Point)) {
      throw new BadInputError(`dkg.state.coefficients[${j}]`, 'does not match the published commitment')
    }
  }
  return { index, threshold, n, coefficients, round1 }
}

