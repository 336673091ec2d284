/**
 * Policy documents on the admin's side (docs/POLICY.md): create, enrol, revoke, sign, push,
 * fetch, and admin approvals of a release for an environment.
 *
 * The working file is always a signed-policy document `{policy, signatures}` (protocol/policy.ts);
 * a draft simply has no signatures yet. Editing a document that already carries signatures drops
 * them and bumps policyVersion by one, so a pushed version is never re-used for other content
 * (nodes refuse that as equivocation).
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { BadInputError, ErrorCode, KeymeshError } from '../protocol/errors.ts'
import type { NodeFailure } from '../protocol/errors.ts'
import { equalBytes, fromB64u, toB64u } from '../protocol/bytes.ts'
import type { ClusterFile } from '../protocol/cluster.ts'
import { validatePeerId } from '../protocol/cluster.ts'
import {
  APPROVAL_FORMAT, POLICY_FORMAT, ROLES, approvalSigningBytes, encodeSignedPolicy, parseApproval, parseSignedPolicy,
  policySigningBytes, validatePattern, validatePolicy, verifySignedPolicy
} from '../protocol/policy.ts'
import type { Approval, Policy, PolicyIdentity, Role, Scope, SignedPolicy } from '../protocol/policy.ts'
import type { Manifest } from '../protocol/manifest.ts'
import type { AdminKey } from './identity.ts'
import type { KeymeshClient } from './client.ts'
import { failureOf } from './quorum.ts'

/** Options of newPolicy. */
export interface NewPolicyOptions {
  policyVersion?: number
  requireSignedRelease?: boolean
  allowBuilderDeployer?: boolean
  approvals?: Record<string, number>
}

/** A fresh, empty, unsigned policy for `cluster`. Throws BadInputError. */
export function newPolicy (cluster: ClusterFile, o: NewPolicyOptions = {}): SignedPolicy {
  const policy = validatePolicy({
    format: POLICY_FORMAT,
    version: 1,
    clusterId: cluster.clusterId,
    policyVersion: o.policyVersion ?? 1,
    identities: [],
    rules: { requireSignedRelease: o.requireSignedRelease ?? true, allowBuilderDeployer: o.allowBuilderDeployer ?? false, approvals: o.approvals ?? {} }
  })
  return { policy, signatures: [] }
}

function edited (sp: SignedPolicy, policy: Policy): SignedPolicy {
  const v = sp.signatures.length > 0 ? sp.policy.policyVersion + 1 : sp.policy.policyVersion
  return { policy: validatePolicy({ ...policy, policyVersion: v }), signatures: [] }
}

/** Parses a `--scope app=PATTERN,env=PATTERN` value. Throws BadInputError. */
export function parseScope (s: string): Scope {
  const parts = Object.fromEntries(s.split(',').map(p => { const i = p.indexOf('='); return i < 0 ? [p, undefined] : [p.slice(0, i), p.slice(i + 1)] }))
  for (const k of Object.keys(parts)) if (k !== 'app' && k !== 'env') throw new BadInputError('--scope', `unknown key "${k}" (expected app=PATTERN,env=PATTERN)`)
  return { app: validatePattern('--scope app', parts.app ?? '*', false), env: validatePattern('--scope env', parts.env ?? '*', true) }
}

/** Enrolment of one identity. */
export interface EnrollOptions { name: string, peerId: string, recipientKey?: Uint8Array, roles: Role[], scopes: Scope[] }

/**
 * Adds (or replaces, by name) an identity. Throws BadInputError (invalid values, separation of
 * duties, duplicate PeerId or recipient key under another name).
 */
export function enroll (sp: SignedPolicy, e: EnrollOptions): SignedPolicy {
  validatePeerId('peerId', e.peerId)
  for (const r of e.roles) if (!(ROLES as readonly string[]).includes(r)) throw new BadInputError('role', `expected one of ${ROLES.join(', ')}`)
  const id: PolicyIdentity = { name: e.name, peerId: e.peerId, roles: [...new Set(e.roles)], scopes: e.scopes }
  if (e.recipientKey !== undefined) id.recipientKey = toB64u(e.recipientKey)
  const identities = sp.policy.identities.filter(x => x.name !== e.name)
  identities.push(id)
  return edited(sp, { ...sp.policy, identities })
}

/** Marks an identity revoked (by name or PeerId). Throws BadInputError when there is none. */
export function revoke (sp: SignedPolicy, who: string): SignedPolicy {
  const i = sp.policy.identities.findIndex(x => x.name === who || x.peerId === who)
  if (i < 0) throw new BadInputError('revoke', `no identity named or with PeerId "${who}"`)
  const identities = sp.policy.identities.map((x, j) => j === i ? { ...x, revoked: true } : x)
  return edited(sp, { ...sp.policy, identities })
}

/** The cluster-file admin whose public key is `key`'s. Throws BadInputError. */
export function adminNameOf (cluster: ClusterFile, key: AdminKey): string {
  const a = cluster.admins.find(x => equalBytes(x.publicKey, key.publicKey))
  if (a === undefined) throw new BadInputError('--admin-key', 'this admin key is not listed in the cluster file (admins)')
  return a.name
}

/** Adds (or replaces) this admin's signature. Throws BadInputError. */
export function signPolicy (sp: SignedPolicy, cluster: ClusterFile, key: AdminKey): SignedPolicy {
  const admin = adminNameOf(cluster, key)
  if (sp.policy.clusterId !== cluster.clusterId) throw new BadInputError('policy.clusterId', 'policy is for another cluster')
  const sig = toB64u(ed25519.sign(policySigningBytes(sp.policy), key.secretKey))
  return { policy: sp.policy, signatures: [...sp.signatures.filter(s => s.admin !== admin), { admin, sig }] }
}

/** Parses a policy file's text. Throws BadInputError. */
export function readPolicyText (text: string): SignedPolicy { return parseSignedPolicy(text) }

/** Serialises for a file (pretty JSON; nodes re-canonicalise). Throws BadInputError. */
export function policyFileText (sp: SignedPolicy): string {
  return JSON.stringify(JSON.parse(encodeSignedPolicy(sp)), null, 2) + '\n'
}

/** Result of pushing to one node. */
export interface PushResult { index: number, ok: boolean, accepted?: boolean, policyVersion?: number, code?: string, detail?: string }

/**
 * Verifies locally (so a bad document gets a clear message before any network), then pushes to
 * every node (in parallel). Resolves with per-node results; throws the local verification error,
 * or KeymeshError(code of the first refusal) when no node took it.
 */
export async function pushPolicy (client: KeymeshClient, sp: SignedPolicy, timeoutMs = 5_000): Promise<PushResult[]> {
  verifySignedPolicy(sp, client.cluster)
  const text = encodeSignedPolicy(sp)
  const results = await Promise.all(client.transport.indices.map(async (index): Promise<PushResult> => {
    try {
      const r = await client.transport.call(index, 'policy.push', { policy: text }, { timeoutMs })
      return { index, ok: true, accepted: r.accepted, policyVersion: r.policyVersion }
    } catch (e) {
      const f: NodeFailure = failureOf(index, e)
      return { index, ok: false, code: f.code, detail: f.detail }
    }
  }))
  if (!results.some(r => r.ok)) {
    const first = results[0]
    throw new KeymeshError((first?.code as ErrorCode | undefined) ?? ErrorCode.UNAVAILABLE, `no node accepted the policy: ${results.map(r => `node ${r.index}: ${r.code ?? '?'} (${r.detail ?? ''})`).join('; ')}`)
  }
  return results
}

/** The policy version of every node, and the newest document. Never throws for node failures. */
export async function fetchPolicies (client: KeymeshClient, timeoutMs = 5_000): Promise<{ versions: Array<{ index: number, policyVersion?: number, code?: string }>, newest?: SignedPolicy }> {
  let newest: SignedPolicy | undefined
  const versions = await Promise.all(client.transport.indices.map(async (index) => {
    try {
      const r = await client.transport.call(index, 'policy.get', { have: 0 }, { timeoutMs })
      if (r.policy !== undefined) {
        try {
          const sp = parseSignedPolicy(r.policy)
          verifySignedPolicy(sp, client.cluster)
          if (newest === undefined || sp.policy.policyVersion > newest.policy.policyVersion) newest = sp
        } catch { /* a node serving a bad document: reported by its version only */ }
      }
      return { index, policyVersion: r.policyVersion }
    } catch (e) {
      return { index, code: failureOf(index, e).code }
    }
  }))
  return { versions, ...(newest !== undefined ? { newest } : {}) }
}

/** Creates an admin approval of one release (its manifest) for its environment. Throws BadInputError. */
export function approveRelease (cluster: ClusterFile, key: AdminKey, m: Manifest): Approval {
  if (m.cluster !== cluster.clusterId) throw new BadInputError('manifest.cluster', 'release is for another cluster')
  const admin = adminNameOf(cluster, key)
  const stmt = { format: APPROVAL_FORMAT as typeof APPROVAL_FORMAT, cluster: m.cluster, app: m.app, env: m.env ?? '', release: m.release, envelope: m.envelope, admin }
  const sig = toB64u(ed25519.sign(approvalSigningBytes(stmt), key.secretKey))
  return parseApproval({ ...stmt, sig })
}

/** Reads the recipient key given as b64u. Throws BadInputError. */
export function recipientFromB64u (v: string): Uint8Array {
  const b = fromB64u('--recipient', v, 32)
  if (b.length !== 32) throw new BadInputError('--recipient', 'expected a 32-byte X25519 public key')
  return b
}
