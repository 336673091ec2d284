/**
 * Test-only fault injection ("the lying node").
 *
 * Handlers consult `ctx.faults` (optional). Production code never sets it: the CLI has no flag or
 * config key for it, and the only way to enable a fault is the separate entry point
 * `test/fixtures/lying-node.ts`, which starts the same service with a `Faults` object passed
 * programmatically. A node with faults still follows every protocol step; it only corrupts its own
 * answer, so that clients can prove they detect it (DLEQ check / FROST share check) and blame it.
 */

/** Faults a test may inject into one node. Every field is off when absent. */
export interface Faults {
  /** `partial` / `partial.batch`: return a well-formed partial whose D is wrong (D + B). */
  corruptPartial?: boolean
  /** `frost.sign`: return a well-formed signature share that does not verify (z + 1). */
  corruptSignShare?: boolean
}

/** True when any fault is switched on. Never throws. */
export function anyFault (f: Faults | undefined): boolean {
  return f !== undefined && (f.corruptPartial === true || f.corruptSignShare === true)
}

/**
 * The faults of a node context: the optional `faults` field that only the test entry point
 * `test/fixtures/lying-node.ts` sets. Never throws.
 */
export function faultsOf (ctx: object): Faults | undefined {
  const f = (ctx as { faults?: unknown }).faults
  return typeof f === 'object' && f !== null ? f as Faults : undefined
}
