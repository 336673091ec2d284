/** Known-answer vectors for the label encoding (docs/PROTOCOL.md §3.1). */
import { encodeLabel } from '../../../protocol/label.ts'
import type { Label } from '../../../protocol/label.ts'
import { toHex } from '../../../protocol/bytes.ts'

const base: Label = { clusterId: '00112233445566778899aabbccddeeff', epoch: 1, purpose: 'release-key', app: 'billing-api', env: 'prod', release: 'v1.2.3+build.7' }

export function generate (): unknown {
  const ok = (name: string, label: Label): Record<string, unknown> => ({ name, valid: true, label, encoded: toHex(encodeLabel(label)) })
  const good = encodeLabel(base)
  const mut = (f: (b: Uint8Array) => Uint8Array): string => toHex(f(good.slice()))
  return {
    format: 'label',
    version: 1,
    description: 'Label canonical encoding: u8 version=1 ‖ var16(clusterId) ‖ u32 epoch ‖ var16(purpose) ‖ var16(app) ‖ var16(env) ‖ var16(release); var16 = u16 BE length ‖ UTF-8. Invalid cases must be rejected with the error code `error` (BAD_INPUT, or UNSUPPORTED_VERSION for an unknown version byte) naming `field`.',
    cases: [
      ok('release key, prod', base),
      ok('deployment key, no environment', { ...base, purpose: 'deployment-key', env: '', epoch: 4294967295 }),
      ok('maximal field lengths', { ...base, purpose: 'p'.repeat(32), app: 'a'.repeat(128), env: 'e'.repeat(128), release: 'r'.repeat(128) }),
      { name: 'unknown version', valid: false, encoded: mut(b => { b[0] = 2; return b }), error: 'UNSUPPORTED_VERSION', field: 'label.version' },
      { name: 'epoch zero', valid: false, encoded: mut(b => { b.set([0, 0, 0, 0], 35); return b }), error: 'BAD_INPUT', field: 'label.epoch' },
      { name: 'uppercase cluster id', valid: false, encoded: toHex(encodeLabelLoose({ ...base, clusterId: '00112233445566778899AABBCCDDEEFF' })), error: 'BAD_INPUT', field: 'label.clusterId' },
      { name: 'space in app', valid: false, encoded: toHex(encodeLabelLoose({ ...base, app: 'billing api' })), error: 'BAD_INPUT', field: 'label.app' },
      { name: 'empty release', valid: false, encoded: toHex(encodeLabelLoose({ ...base, release: '' })), error: 'BAD_INPUT', field: 'label.release' },
      { name: 'truncated', valid: false, encoded: toHex(good.subarray(0, good.length - 1)), error: 'BAD_INPUT' },
      { name: 'trailing byte', valid: false, encoded: toHex(new Uint8Array([...good, 0])), error: 'BAD_INPUT', field: 'label' },
      { name: 'invalid UTF-8', valid: false, encoded: mut(b => { b[b.length - 1] = 0xff; return b }), error: 'BAD_INPUT', field: 'label.release' }
    ]
  }
}

/** The same layout without validation, to build invalid cases. */
function encodeLabelLoose (l: Label): Uint8Array {
  const te = new TextEncoder()
  const parts: number[] = [1]
  const v16 = (s: string): void => { const b = te.encode(s); parts.push(b.length >> 8, b.length & 0xff, ...b) }
  v16(l.clusterId)
  parts.push((l.epoch >>> 24) & 0xff, (l.epoch >>> 16) & 0xff, (l.epoch >>> 8) & 0xff, l.epoch & 0xff)
  v16(l.purpose); v16(l.app); v16(l.env); v16(l.release)
  return new Uint8Array(parts)
}
