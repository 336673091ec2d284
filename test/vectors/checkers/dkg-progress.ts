/** Checks one dkg-progress known-answer case (see generators/dkg-progress.ts). Throws on mismatch. */
import { decodeDkgProgress, encodeDkgProgress, transcriptContext } from '../../../node/dkg-ceremony.ts'
import type { DkgPhase, DkgProgress } from '../../../node/dkg-ceremony.ts'
import { decodeDkgRound1, transcriptDigests } from '../../../protocol/dkg.ts'
import { fromHex, toHex } from '../../../protocol/bytes.ts'
import { errorCode } from '../../../protocol/errors.ts'

interface Pair { index: number, wrap: string, sign: string }
interface Case {
  name: string
  kind: 'context' | 'progress'
  valid: boolean
  clusterId?: string
  session?: string
  purpose?: 'wrap' | 'sign'
  context?: string
  round1?: string[] | Pair[]
  digests?: string[]
  phase?: number
  wrapState?: string
  signState?: string
  round2?: Pair[]
  detail?: string
  encoded?: string
  error?: string
}

const map = (ps: Pair[]): Map<number, { wrap: Uint8Array, sign: Uint8Array }> =>
  new Map(ps.map(p => [p.index, { wrap: fromHex('wrap', p.wrap), sign: fromHex('sign', p.sign) }]))

/** Recomputes the case. Throws on mismatch. */
export function check (c: Case): void {
  if (c.kind === 'context') {
    const ctx = transcriptContext(c.clusterId as string, c.session as string, c.purpose as 'wrap' | 'sign')
    if (toHex(ctx) !== c.context) throw new Error(`${c.name}: context mismatch`)
    const r1 = (c.round1 as string[]).map(h => decodeDkgRound1(fromHex('round1', h)))
    const d = transcriptDigests(r1, ctx).map(toHex)
    if (JSON.stringify(d) !== JSON.stringify(c.digests)) throw new Error(`${c.name}: digests mismatch`)
    return
  }
  const bytes = fromHex('encoded', c.encoded)
  if (!c.valid) {
    let code: string | undefined
    try { decodeDkgProgress(bytes) } catch (err) { code = errorCode(err) }
    if (code === undefined) throw new Error(`${c.name}: accepted an invalid record`)
    if (code !== c.error) throw new Error(`${c.name}: expected ${String(c.error)}, got ${code}`)
    return
  }
  const p: DkgProgress = {
    session: c.session as string,
    phase: c.phase as DkgPhase,
    wrapState: fromHex('wrapState', c.wrapState),
    signState: fromHex('signState', c.signState),
    round1: map(c.round1 as Pair[]),
    round2: map(c.round2 as Pair[]),
    detail: c.detail as string
  }
  if (toHex(encodeDkgProgress(p)) !== c.encoded) throw new Error(`${c.name}: encoding mismatch`)
  const back = decodeDkgProgress(bytes)
  if (toHex(encodeDkgProgress(back)) !== c.encoded || back.phase !== c.phase || back.session !== c.session) throw new Error(`${c.name}: decoding mismatch`)
}
