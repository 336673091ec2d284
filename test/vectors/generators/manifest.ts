/**
 * Known-answer vectors for the release manifest canonical bytes (RFC 8785;
 * docs/PROTOCOL.md §4.4). Valid cases give the manifest as JSON and the
 * exact canonical bytes; invalid cases are byte strings parseManifest must reject.
 */
import { toHex, utf8 } from '../../../protocol/bytes.ts'
import { canonicalManifest } from '../../../protocol/manifest.ts'
import type { Manifest } from '../../../protocol/manifest.ts'

export const VECTOR_MANIFEST: Manifest = {
  v: 1,
  type: 'keymesh.release-manifest',
  cluster: '6b65796d6573682d746573742d303031',
  epoch: 1,
  app: 'billing-api',
  release: 'v2.3.1',
  env: 'prod',
  artifact: { sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', size: 9007199254740991, name: 'billing-api ü v2.3.1.tar.gz.kmx' },
  envelope: '2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae',
  builder: '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
  createdAt: '2026-11-25T03:04:05.123Z',
  repository: 'https://git.example.com/acme/billing-api',
  commit: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3'
}

export function generate (): unknown {
  const minimal: Manifest = {
    v: 1,
    type: 'keymesh.release-manifest',
    cluster: VECTOR_MANIFEST.cluster,
    epoch: 4294967295,
    app: 'a',
    release: 'r',
    artifact: { sha256: VECTOR_MANIFEST.artifact.sha256, size: 0 },
    envelope: VECTOR_MANIFEST.envelope,
    builder: VECTOR_MANIFEST.builder,
    createdAt: '1970-01-01T00:00:00Z'
  }
  const canon = new TextDecoder().decode(canonicalManifest(VECTOR_MANIFEST))
  const cases: Array<Record<string, unknown>> = [
    { name: 'full manifest', valid: true, manifest: VECTOR_MANIFEST, canonical: toHex(canonicalManifest(VECTOR_MANIFEST)) },
    { name: 'minimal manifest', valid: true, manifest: minimal, canonical: toHex(canonicalManifest(minimal)) }
  ]
  const bad: Array<[string, string, string]> = [
    ['not canonical (insertion order)', JSON.stringify(VECTOR_MANIFEST), 'BAD_INPUT'],
    ['not canonical (whitespace)', canon.replace(',', ', '), 'BAD_INPUT'],
    ['not canonical (escaped character)', canon.replace('ü', '\\u00fc'), 'BAD_INPUT'],
    ['unknown field', canon.replace('{', '{"admin":true,'), 'BAD_INPUT'],
    ['version 2', canon.replace('"v":1', '"v":2'), 'UNSUPPORTED_VERSION'],
    ['size above 2^53-1', canon.replace('9007199254740991', '9007199254740992'), 'BAD_INPUT'],
    ['size as float', canon.replace('9007199254740991', '1.5'), 'BAD_INPUT'],
    ['uppercase hex digest', canon.replace('9f86d081', '9F86D081'), 'BAD_INPUT'],
    ['timestamp with offset', canon.replace('03:04:05.123Z', '03:04:05.123+00:00'), 'BAD_INPUT'],
    ['duplicate key', canon.replace('{"app":"billing-api"', '{"app":"x","app":"billing-api"'), 'BAD_INPUT'],
    ['not JSON', canon.slice(0, -1), 'BAD_INPUT']
  ]
  for (const [name, s, error] of bad) cases.push({ name, valid: false, bytes: toHex(utf8(s)), error })
  cases.push({ name: 'invalid UTF-8', valid: false, bytes: toHex(utf8(canon)).replace(toHex(utf8('ü')), 'c3'), error: 'BAD_INPUT' })
  return { format: 'manifest', version: 1, description: 'Release manifest v1 and its RFC 8785 canonical bytes (docs/PROTOCOL.md §4.4)', cases }
}
