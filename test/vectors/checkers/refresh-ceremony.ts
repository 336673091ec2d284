/** Checks one refresh-ceremony known-answer case (see generators/refresh-ceremony.ts). Throws on mismatch. */
import {
  decodeRefreshProgress, encodeRefreshProgress, encodeRefreshResult, refreshEchoContext, refreshResultDigest
} from '../../../node/lifecycle/refresh-ceremony.ts'
import type { PerEpoch, RefreshPhase, RefreshProgress } from '../../../node/lifecycle/refresh-ceremony.ts'
import { dealingDigests } from '../../../protocol/reshare.ts'
import { decodeRefreshDealing } from '../../../protocol/refresh.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'

interface Entry { index: number, wrap: string[], sign: string[] }
interface Case {
  name: string, kind: 'echo' | 'result' | 'progress', valid: boolean
  clusterId?: string, session?: string, bind?: string, epochs?: number[], base?: string[], context?: string
  answers?: string[], digests?: string[], keySetIds?: string[], result?: string, digest?: string
  phase?: number, round1?: Entry[], dealt?: Entry[], round2?: Entry[], detail?: string, encoded?: string, error?: string
}

const map = (es: Entry[]): Map<number, PerEpoch> => new Map(es.map(e => [e.index, { wrap: e.wrap.map(h => fromHex('wrap', h)), sign: e.sign.map(h => fromHex('sign', h)) }]))

/** Recomputes the case. Throws on mismatch. */
export function check (c: Case): void {
  if (c.kind === 'echo') {
    const ctx = refreshEchoContext(c.clusterId as string, c.session as string, fromHex('bind', c.bind, 32), c.epochs as number[], c.base as string[])
    if (toHex(ctx) !== c.context) throw new Error(`${c.name}: context mismatch`)
    const answers = (c.answers as string[]).map(h => fromHex('answer', h))
    // The answers carry real KMFD dealings: each must decode strictly (u16 E, then per epoch u32 ‖ var16 ‖ var16).
    for (const a of answers) {
      let off = 2
      for (let x = 0; x < (c.epochs as number[]).length; x++) {
        off += 4
        for (let k = 0; k < 2; k++) { const len = ((a[off] as number) << 8) | (a[off + 1] as number); decodeRefreshDealing(a.subarray(off + 2, off + 2 + len)); off += 2 + len }
      }
      if (off !== a.length) throw new Error(`${c.name}: answer has trailing bytes`)
    }
    if (JSON.stringify(dealingDigests(answers, ctx).map(toHex)) !== JSON.stringify(c.digests)) throw new Error(`${c.name}: digests mismatch`)
    return
  }
  if (c.kind === 'result') {
    const r = encodeRefreshResult(c.epochs as number[], c.keySetIds as string[])
    if (toHex(r) !== c.result) throw new Error(`${c.name}: result record mismatch`)
    if (refreshResultDigest(r) !== c.digest) throw new Error(`${c.name}: digest mismatch`)
    return
  }
  const bytes = fromHex('encoded', c.encoded)
  if (!c.valid) {
    let code: string | undefined
    try { decodeRefreshProgress(bytes) } catch (err) { code = errorCode(err) }
    if (code === undefined) throw new Error(`${c.name}: accepted an invalid record`)
    if (code !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${code}`)
    return
  }
  const p: RefreshProgress = {
    session: c.session as string,
    phase: c.phase as RefreshPhase,
    bind: fromHex('bind', c.bind, 32),
    epochs: c.epochs as number[],
    base: c.base as string[],
    round1: map(c.round1 as Entry[]),
    dealt: map(c.dealt as Entry[]),
    round2: map(c.round2 as Entry[]),
    detail: c.detail as string
  }
  if (toHex(encodeRefreshProgress(p)) !== c.encoded) throw new Error(`${c.name}: encoding mismatch`)
  const back = decodeRefreshProgress(bytes)
  if (toHex(encodeRefreshProgress(back)) !== c.encoded || back.phase !== c.phase || back.session !== c.session) throw new Error(`${c.name}: decoding mismatch`)
}
