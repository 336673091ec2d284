/**
 * Policy document: who may do what, where (brief §2.5; docs/PROTOCOL.md §9.1).
 *
 * A policy enrols PeerIds as identities with roles (builder, deployer, auditor, admin) and scopes
 * (app and environment glob patterns), plus cluster-wide rules (signed releases required,
 * separation of duties, per-environment approvals). It is signed by ≥ adminThreshold distinct
 * admins of the cluster file (Ed25519 over a domain-separated message: the `keymesh/v1/policy`
 * tag, one 0x00 byte, the RFC 8785 canonical JSON of the policy). Nodes accept only a strictly
 * higher `policyVersion` (rollback refused).
 *
 * `decide` is the single pure function that encodes the whole role × operation × scope matrix;
 * the node's connection gater and every RPC handler call it, and so can a client (to explain a
 * refusal before asking). Approvals (`keymesh approve`) are admin-signed statements over
 * (cluster, app, env, release, envelope id), with the `keymesh/v1/approval` tag.
 *
 * Pure: no I/O. Ed25519 via node:crypto (protocol/frost.ts ed25519Verify).
 */
import { BadInputError, UnsupportedVersionError } from './errors.ts'
import { aint, concat, fromB64u, toB64u, utf8 } from './bytes.ts'
import { Tag } from './constants.ts'
import { canonicalJson } from './manifest.ts'
import { ED25519_SIG_LEN, ed25519Verify } from './frost.ts'
import { NAME_PATTERN, validatePeerId } from './cluster.ts'
import type { ClusterFile } from './cluster.ts'
import { parseAdminSignature, verifyAdminSignatures } from './admin.ts'
import type { AdminSignature } from './admin.ts'
import { aarray, abool, aobj } from './json.ts'

/** Domain-separation tags (protocol/constants.ts Tag; re-exported under their old names). */
export const POLICY_TAG = Tag.POLICY
export const APPROVAL_TAG = Tag.APPROVAL
export const POLICY_FORMAT = 'keymesh.policy'
export const POLICY_VERSION = 1
export const APPROVAL_FORMAT = 'keymesh.approval'
/** Caps. */
export const MAX_POLICY_IDENTITIES = 4096
export const MAX_POLICY_SCOPES = 64
export const MAX_POLICY_LEN = 1024 * 1024
export const MAX_PATTERN_LEN = 128
export const MAX_APPROVAL_RULES = 64
export const MAX_APPROVAL_LEN = 2048

/** Roles an identity can hold. */
export type Role = 'builder' | 'deployer' | 'auditor' | 'admin'
export const ROLES: readonly Role[] = ['builder', 'deployer', 'auditor', 'admin']

/** An (app, env) scope; both are glob patterns (`*` any run, `?` one character). */
export interface Scope { app: string, env: string }

/** One enrolled peer. `recipientKey` is the b64u X25519 public key partials may be sealed to. */
export interface PolicyIdentity {
  name: string
  peerId: string
  recipientKey?: string
  roles: Role[]
  scopes: Scope[]
  revoked?: boolean
}

/** Cluster-wide rules. `approvals` maps env pattern → admin approvals required. */
export interface PolicyRules {
  requireSignedRelease: boolean
  allowBuilderDeployer: boolean
  approvals: Record<string, number>
}

/** A policy document (version 1). */
export interface Policy {
  format: typeof POLICY_FORMAT
  version: 1
  clusterId: string
  policyVersion: number
  identities: PolicyIdentity[]
  rules: PolicyRules
}

/** An admin signature on a policy or approval. */
export type { AdminSignature }

/** A policy with its admin signatures. */
export interface SignedPolicy { policy: Policy, signatures: AdminSignature[] }


const PATTERN_RE = /^[A-Za-z0-9._:@+/*?-]*$/
const CLUSTER_ID_RE = /^[0-9a-f]{32}$/
const HEX64_RE = /^[0-9a-f]{64}$/
const LABEL_RE = /^[A-Za-z0-9._:@+/-]*$/

/** Validates a scope pattern (app: 1..128, env: 0..128 characters). Throws BadInputError. */
export function validatePattern (field: string, v: unknown, allowEmpty: boolean): string {
  if (typeof v !== 'string' || v.length > MAX_PATTERN_LEN || (!allowEmpty && v.length === 0) || !PATTERN_RE.test(v)) {
    throw new BadInputError(field, `expected a pattern of ${allowEmpty ? 0 : 1}..${MAX_PATTERN_LEN} characters [A-Za-z0-9._:@+/-] with * and ? wildcards`)
  }
  return v
}

const patternCache = new Map<string, RegExp>()
/** True when `value` matches glob `pattern` (`*` any run incl. empty, `?` one char; whole string). Never throws. */
export function matchPattern (pattern: string, value: string): boolean {
  let re = patternCache.get(pattern)
  if (re === undefined) {
    const src = pattern.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
    re = new RegExp(`^${src}$`, 's')
    if (patternCache.size > 10_000) patternCache.clear()
    patternCache.set(pattern, re)
  }
  return re.test(value)
}

/** True when some scope covers (app, env). Never throws. */
export function inScope (scopes: readonly Scope[], app: string, env: string): boolean {
  return scopes.some(s => matchPattern(s.app, app) && matchPattern(s.env, env))
}

/**
 * Validates a decoded JSON value as a policy (structure and internal rules, not signatures):
 * unknown fields rejected; names, PeerIds and recipient keys unique; deployers have a recipient
 * key; no identity is both builder and deployer unless rules.allowBuilderDeployer.
 * Throws BadInputError naming the field, UnsupportedVersionError for another version.
 */
export function validatePolicy (v: unknown): Policy {
  const o = aobj('policy', v, ['format', 'version', 'clusterId', 'policyVersion', 'identities', 'rules'])
  if (o.format !== POLICY_FORMAT) throw new BadInputError('policy.format', `expected "${POLICY_FORMAT}"`)
  if (o.version !== POLICY_VERSION) {
    if (typeof o.version === 'number') throw new UnsupportedVersionError('policy.version', o.version, String(POLICY_VERSION))
    throw new BadInputError('policy.version', `expected ${POLICY_VERSION}`)
  }
  if (typeof o.clusterId !== 'string' || !CLUSTER_ID_RE.test(o.clusterId)) throw new BadInputError('policy.clusterId', 'expected 32 lowercase hex characters')
  const policyVersion = aint('policy.policyVersion', o.policyVersion, 1, Number.MAX_SAFE_INTEGER)
  const r = aobj('policy.rules', o.rules, ['requireSignedRelease', 'allowBuilderDeployer', 'approvals'])
  const ap = aobj('policy.rules.approvals', r.approvals, Object.keys(r.approvals ?? {}))
  if (Object.keys(ap).length > MAX_APPROVAL_RULES) throw new BadInputError('policy.rules.approvals', `at most ${MAX_APPROVAL_RULES} rules`)
  const approvals: Record<string, number> = {}
  for (const [k, n] of Object.entries(ap)) {
    validatePattern(`policy.rules.approvals[${JSON.stringify(k)}]`, k, true)
    approvals[k] = aint(`policy.rules.approvals[${JSON.stringify(k)}]`, n, 0, 64)
  }
  const rules: PolicyRules = {
    requireSignedRelease: abool('policy.rules.requireSignedRelease', r.requireSignedRelease),
    allowBuilderDeployer: abool('policy.rules.allowBuilderDeployer', r.allowBuilderDeployer),
    approvals
  }
  const names = new Set<string>()
  const peers = new Set<string>()
  const keys = new Set<string>()
  const identities = aarray('policy.identities', o.identities, 0, MAX_POLICY_IDENTITIES).map((x, i): PolicyIdentity => {
    const f = `policy.identities[${i}]`
    const e = aobj(f, x, ['name', 'peerId', 'roles', 'scopes'], ['recipientKey', 'revoked'])
    if (typeof e.name !== 'string' || !NAME_PATTERN.test(e.name)) throw new BadInputError(`${f}.name`, `expected a name matching ${NAME_PATTERN.source}`)
    if (names.has(e.name)) throw new BadInputError(`${f}.name`, 'duplicate name')
    names.add(e.name)
    const peerId = validatePeerId(`${f}.peerId`, e.peerId)
    if (peers.has(peerId)) throw new BadInputError(`${f}.peerId`, 'duplicate PeerId')
    peers.add(peerId)
    const roles = aarray(`${f}.roles`, e.roles, 1, ROLES.length).map((ro, j) => {
      if (typeof ro !== 'string' || !(ROLES as readonly string[]).includes(ro)) throw new BadInputError(`${f}.roles[${j}]`, `expected one of ${ROLES.join(', ')}`)
      return ro as Role
    })
    if (new Set(roles).size !== roles.length) throw new BadInputError(`${f}.roles`, 'duplicate role')
    const scopes = aarray(`${f}.scopes`, e.scopes, 0, MAX_POLICY_SCOPES).map((s, j): Scope => {
      const so = aobj(`${f}.scopes[${j}]`, s, ['app', 'env'])
      return { app: validatePattern(`${f}.scopes[${j}].app`, so.app, false), env: validatePattern(`${f}.scopes[${j}].env`, so.env, true) }
    })
    const id: PolicyIdentity = { name: e.name, peerId, roles, scopes }
    if (e.recipientKey !== undefined) {
      const k = fromB64u(`${f}.recipientKey`, e.recipientKey, 32)
      if (k.length !== 32) throw new BadInputError(`${f}.recipientKey`, 'expected a 32-byte X25519 public key')
      const s = toB64u(k)
      if (keys.has(s)) throw new BadInputError(`${f}.recipientKey`, 'recipient key already enrolled for another identity')
      keys.add(s)
      id.recipientKey = s
    }
    if (e.revoked !== undefined) {
      if (abool(`${f}.revoked`, e.revoked)) id.revoked = true
    }
    if (roles.includes('deployer') && id.recipientKey === undefined) throw new BadInputError(`${f}.recipientKey`, 'a deployer needs a recipient key (partials are sealed only to it)')
    if (roles.includes('builder') && roles.includes('deployer') && !rules.allowBuilderDeployer) {
      throw new BadInputError(`${f}.roles`, 'separation of duties: one identity cannot be both builder and deployer unless rules.allowBuilderDeployer is true')
    }
    return id
  })
  return { format: POLICY_FORMAT, version: POLICY_VERSION, clusterId: o.clusterId, policyVersion, identities, rules }
}

/** The bytes admins sign for a policy: tag ‖ 0x00 ‖ RFC 8785 canonical JSON. Throws BadInputError. */
export function policySigningBytes (p: Policy): Uint8Array {
  return concat(utf8(Tag.POLICY), new Uint8Array([0]), utf8(canonicalJson(validatePolicy(p))))
}

/** Canonical JSON text of a policy (RFC 8785). Throws BadInputError. */
export function canonicalPolicy (p: Policy): string { return canonicalJson(validatePolicy(p)) }

/**
 * Parses a signed policy document `{policy, signatures:[{admin, sig}]}` (structure only).
 * Throws BadInputError.
 */
export function parseSignedPolicy (v: unknown): SignedPolicy {
  if (typeof v === 'string') {
    if (v.length > MAX_POLICY_LEN) throw new BadInputError('signedPolicy', `longer than ${MAX_POLICY_LEN} characters`)
    try { v = JSON.parse(v) as unknown } catch { throw new BadInputError('signedPolicy', 'not valid JSON') }
  }
  const o = aobj('signedPolicy', v, ['policy', 'signatures'])
  const policy = validatePolicy(o.policy)
  const signatures = aarray('signedPolicy.signatures', o.signatures, 0, 64).map((s, i) => parseAdminSignature(`signedPolicy.signatures[${i}]`, s))
  return { policy, signatures }
}

/** Canonical JSON text of a signed policy (what nodes store and serve). Throws BadInputError. */
export function encodeSignedPolicy (sp: SignedPolicy): string {
  return canonicalJson({ policy: validatePolicy(sp.policy), signatures: sp.signatures })
}

/**
 * Verifies a signed policy against the cluster file: cluster id matches; every signature names a
 * distinct cluster-file admin and verifies (one bad or unknown signature rejects the document);
 * at least adminThreshold of them; no identity is a cluster node. Returns the policy.
 * Throws BadInputError (structure, unknown admin, node PeerId enrolled, duplicate signer) or
 * VerificationError (bad signature, too few signatures).
 */
export function verifySignedPolicy (sp: SignedPolicy, cluster: ClusterFile): Policy {
  const policy = validatePolicy(sp.policy)
  if (policy.clusterId !== cluster.clusterId) throw new BadInputError('policy.clusterId', `policy is for cluster ${policy.clusterId}, not ${cluster.clusterId}`)
  const nodeIds = new Set(cluster.nodes.map(n => n.peerId))
  policy.identities.forEach((id, i) => {
    if (nodeIds.has(id.peerId)) throw new BadInputError(`policy.identities[${i}].peerId`, 'is a cluster node; nodes cannot be enrolled as clients')
  })
  verifyAdminSignatures(cluster, 'policy', policySigningBytes(policy), sp.signatures)
  return policy
}

// ---------------------------------------------------------------------------------------------
// Approvals

/** An admin-signed approval to deploy one release envelope to one environment. */
export interface Approval {
  format: typeof APPROVAL_FORMAT
  cluster: string
  app: string
  env: string
  release: string
  /** envelopeId, 64 lowercase hex */
  envelope: string
  admin: string
  sig: string
}

/** The bytes an admin signs for an approval: tag ‖ 0x00 ‖ canonical JSON of the statement. Throws BadInputError. */
export function approvalSigningBytes (a: Omit<Approval, 'admin' | 'sig'> & { admin: string }): Uint8Array {
  const stmt = { format: APPROVAL_FORMAT, cluster: a.cluster, app: a.app, env: a.env, release: a.release, envelope: a.envelope, admin: a.admin }
  return concat(utf8(Tag.APPROVAL), new Uint8Array([0]), utf8(canonicalJson(stmt)))
}

/** Parses an approval (JSON text or value). Throws BadInputError. */
export function parseApproval (v: unknown): Approval {
  if (typeof v === 'string') {
    if (v.length > MAX_APPROVAL_LEN) throw new BadInputError('approval', `longer than ${MAX_APPROVAL_LEN} characters`)
    try { v = JSON.parse(v) as unknown } catch { throw new BadInputError('approval', 'not valid JSON') }
  }
  const o = aobj('approval', v, ['format', 'cluster', 'app', 'env', 'release', 'envelope', 'admin', 'sig'])
  if (o.format !== APPROVAL_FORMAT) throw new BadInputError('approval.format', `expected "${APPROVAL_FORMAT}"`)
  if (typeof o.cluster !== 'string' || !CLUSTER_ID_RE.test(o.cluster)) throw new BadInputError('approval.cluster', 'expected 32 lowercase hex')
  const lab = (k: string, min: number): string => {
    const x = o[k]
    if (typeof x !== 'string' || x.length < min || x.length > 128 || !LABEL_RE.test(x)) throw new BadInputError(`approval.${k}`, 'invalid label field')
    return x
  }
  if (typeof o.envelope !== 'string' || !HEX64_RE.test(o.envelope)) throw new BadInputError('approval.envelope', 'expected 64 lowercase hex')
  const s = parseAdminSignature('approval', { admin: o.admin, sig: o.sig })
  return { format: APPROVAL_FORMAT, cluster: o.cluster, app: lab('app', 1), env: lab('env', 0), release: lab('release', 1), envelope: o.envelope, admin: s.admin, sig: s.sig }
}

/**
 * Counts distinct cluster-file admins whose approval of exactly (cluster, app, env, release,
 * envelope) verifies. Approvals for anything else, by unknown admins or with bad signatures are
 * ignored (they are reported in `rejected`). Never throws.
 */
export function countApprovals (approvals: readonly Approval[], cluster: ClusterFile, want: { app: string, env: string, release: string, envelope: string }): { count: number, rejected: string[] } {
  const ok = new Set<string>()
  const rejected: string[] = []
  for (const a of approvals) {
    if (a.cluster !== cluster.clusterId || a.app !== want.app || a.env !== want.env || a.release !== want.release || a.envelope !== want.envelope) continue
    const admin = cluster.admins.find(x => x.name === a.admin)
    if (admin === undefined) { rejected.push(`${a.admin}: not an admin`); continue }
    try {
      if (!ed25519Verify(admin.publicKey, approvalSigningBytes(a), fromB64u('sig', a.sig, ED25519_SIG_LEN))) { rejected.push(`${a.admin}: bad signature`); continue }
    } catch { rejected.push(`${a.admin}: malformed`); continue }
    ok.add(a.admin)
  }
  return { count: ok.size, rejected }
}

/** Approvals required for `env` (the largest of all matching rules; 0 when none). Never throws. */
export function requiredApprovals (policy: Policy, env: string): number {
  let n = 0
  for (const [p, k] of Object.entries(policy.rules.approvals)) if (matchPattern(p, env) && k > n) n = k
  return n
}

// ---------------------------------------------------------------------------------------------
// Decision

/** Operations `decide` knows. `partial` covers partial and partial.batch (one call per label). */
export type PolicyOp =
  | 'connect' | 'status' | 'keyset.get' | 'policy.get' | 'policy.push' | 'audit.read'
  | 'wrap' | 'frost.commit' | 'frost.sign' | 'partial' | 'dkg' | 'lifecycle.order'

/** Facts about the request the caller of `decide` has verified. */
export interface DecisionContext {
  app?: string
  env?: string
  release?: string
  /** Recipient key (b64u) partials would be sealed to. */
  recipient?: string
  /** frost.sign: the manifest's builder PeerId. */
  manifestBuilder?: string
  /** partial: a cluster-signed manifest naming this envelope, app and env was presented and verified. */
  signedRelease?: boolean
  /** partial: number of valid distinct admin approvals presented. */
  approvals?: number
}

/** Who is asking: a cluster node or a client PeerId. */
export interface Subject { peerId: string, kind: 'node' | 'client' }

/** A decision and its reason (for the audit log and the caller's error message). */
export interface Decision { allow: boolean, reason: string, role: string }

const NODE_OPS: ReadonlySet<PolicyOp> = new Set(['connect', 'status', 'keyset.get', 'policy.get', 'policy.push', 'dkg', 'lifecycle.order'])

function deny (role: string, reason: string): Decision { return { allow: false, reason, role } }
function allow (role: string, reason: string): Decision { return { allow: true, reason, role } }

/**
 * The authorization matrix. `policy` undefined = bootstrap: cluster-file clients may do every
 * client operation (as before any policy existed), anyone else is refused. With a policy:
 *
 * | op | allowed for |
 * | --- | --- |
 * | connect, status, keyset.get, policy.get, lifecycle.order | any enrolled, non-revoked identity (a lifecycle order carries its own admin signatures) |
 * | policy.push | admin (and nodes, for anti-entropy; the document's signatures decide acceptance) |
 * | audit.read | auditor, admin |
 * | wrap, frost.commit | builder (wrap: in scope of app/env) |
 * | frost.sign | builder in scope of the manifest's app/env, naming itself as the manifest builder |
 * | partial | deployer in scope, sealing to its OWN recipient key; or builder in scope, sealing to a key enrolled for a deployer in scope (bundle); both need a signed release (rules.requireSignedRelease) and the env's approvals |
 * | dkg | nodes only |
 *
 * Revoked identities are refused everything. Nodes are allowed node operations only; never
 * partial, frost.* or audit.read. Never throws.
 */
export function decide (policy: Policy | undefined, cluster: ClusterFile, subject: Subject, op: PolicyOp, ctx: DecisionContext = {}): Decision {
  if (subject.kind === 'node') {
    return NODE_OPS.has(op) ? allow('node', `cluster node may ${op}`) : deny('node', `cluster nodes may not request ${op}`)
  }
  if (op === 'dkg') return deny('client', 'dkg operations are for cluster nodes only')
  if (policy === undefined) {
    const c = cluster.clients.find(x => x.peerId === subject.peerId)
    return c !== undefined
      ? allow('bootstrap-client', `no policy yet: cluster-file client "${c.name}" is allowed every client operation`)
      : deny('unknown', 'not a cluster-file client and no policy has been pushed')
  }
  const id = policy.identities.find(x => x.peerId === subject.peerId)
  if (id === undefined) return deny('unknown', `PeerId is not enrolled in policy v${policy.policyVersion}`)
  const role = id.roles.join('+')
  if (id.revoked === true) return deny(role, `identity "${id.name}" is revoked (policy v${policy.policyVersion})`)
  const has = (r: Role): boolean => id.roles.includes(r)
  const app = ctx.app ?? ''
  const env = ctx.env ?? ''
  const where = `app "${app}" env "${env}"`
  switch (op) {
    case 'connect': case 'status': case 'keyset.get': case 'policy.get':
    // lifecycle.order authorises itself by admin signatures (node/handlers/lifecycle.ts).
    case 'lifecycle.order':
      return allow(role, `enrolled identity "${id.name}"`)
    case 'policy.push':
      return has('admin') ? allow(role, `admin "${id.name}" may push policy`) : deny(role, `"${id.name}" is not an admin`)
    case 'audit.read':
      return has('auditor') || has('admin') ? allow(role, `"${id.name}" may read the audit log`) : deny(role, `"${id.name}" is neither auditor nor admin`)
    case 'frost.commit':
      return has('builder') ? allow(role, `builder "${id.name}"`) : deny(role, `"${id.name}" is not a builder (only builders get manifests signed)`)
    case 'wrap':
    case 'frost.sign': {
      if (!has('builder')) return deny(role, `"${id.name}" is not a builder`)
      if (!inScope(id.scopes, app, env)) return deny(role, `builder "${id.name}" is not scoped for ${where}`)
      if (op === 'frost.sign' && ctx.manifestBuilder !== subject.peerId) return deny(role, `manifest names builder ${ctx.manifestBuilder ?? '(none)'}, not the caller`)
      return allow(role, `builder "${id.name}" in scope for ${where}`)
    }
    case 'partial': {
      if (ctx.recipient === undefined) return deny(role, 'no recipient key')
      let why: string | undefined
      if (has('deployer') && inScope(id.scopes, app, env)) {
        if (ctx.recipient === id.recipientKey) why = `deployer "${id.name}" rewrap to its own key for ${where}`
        else if (!has('builder')) return deny(role, `deployer "${id.name}" may only have partials sealed to its own enrolled recipient key`)
      }
      if (why === undefined && has('builder') && inScope(id.scopes, app, env)) {
        const target = policy.identities.find(x => x.recipientKey === ctx.recipient)
        if (target === undefined) return deny(role, `recipient key is not enrolled for any identity (bundle for ${where} refused)`)
        if (target.revoked === true) return deny(role, `recipient "${target.name}" is revoked`)
        if (!target.roles.includes('deployer') || !inScope(target.scopes, app, env)) return deny(role, `recipient "${target.name}" is not a deployer for ${where}`)
        if (target.peerId === id.peerId && !policy.rules.allowBuilderDeployer) return deny(role, 'separation of duties: a builder cannot seal partials to its own key')
        why = `builder "${id.name}" bundle for deployer "${target.name}" (${where})`
      }
      if (why === undefined) {
        if (!has('deployer') && !has('builder')) return deny(role, `"${id.name}" is neither deployer nor builder`)
        return deny(role, `"${id.name}" is not scoped for ${where}`)
      }
      if (policy.rules.requireSignedRelease && ctx.signedRelease !== true) return deny(role, `a cluster-signed release manifest naming this envelope, app and env is required (${why})`)
      const need = requiredApprovals(policy, env)
      if ((ctx.approvals ?? 0) < need) return deny(role, `env "${env}" needs ${need} admin approval(s), got ${ctx.approvals ?? 0}`)
      return allow(role, why)
    }
  }
  return deny(role, `unknown operation ${String(op)}`)
}

/** Finds an identity by PeerId. Never throws. */
export function identityOf (policy: Policy, peerId: string): PolicyIdentity | undefined {
  return policy.identities.find(x => x.peerId === peerId)
}
