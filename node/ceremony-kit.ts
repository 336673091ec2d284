/**
 * Small pieces shared by the node's pull-based ceremonies (node/dkg-ceremony.ts,
 * node/lifecycle/refresh-ceremony.ts, node/lifecycle/reshare-ceremony.ts): the failure a
 * ceremony ends with (blame carried as data: the node indices at fault) and an abortable sleep.
 * No secrets here.
 */

/** Thrown inside a ceremony to end it as failed; `blame` lists the nodes at fault (may be empty). */
export class CeremonyFailure extends Error {
  constructor (readonly detail: string, readonly blame: number[]) { super(detail) }
}

/**
 * Sleeps `ms`, resolving early when `signal` aborts (never rejects). The timer is unref'd, so a
 * pending ceremony never keeps a stopped process alive. Throws nothing.
 */
export function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    t.unref()
    const onAbort = (): void => { clearTimeout(t); resolve() }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
