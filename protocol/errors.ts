/**
 * Typed errors with stable codes.
 *
 * Every failure that crosses a module boundary is a KeymeshError. `code` is stable and goes on the
 * wire (peers get only the code, never the message); `message` is for the local user and says what
 * went wrong and what to do. No message may contain secret bytes: build messages from field names,
 * lengths and public identifiers only.
 *
 * Blame is carried as data (after noble's FROST): a verification failure that can be attributed
 * lists the node indices at fault in `blame`.
 */

/** Stable error codes. Wire format: the string itself. Never renumber or rename. */
export const ErrorCode = {
  BAD_INPUT: 'BAD_INPUT',
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  VERIFICATION_FAILED: 'VERIFICATION_FAILED',
  NOT_AUTHORIZED: 'NOT_AUTHORIZED',
  QUORUM_UNAVAILABLE: 'QUORUM_UNAVAILABLE',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  TIMEOUT: 'TIMEOUT',
  BUSY: 'BUSY',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL'
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/** CLI exit codes per error class (documented in README "Exit codes"). */
export const ExitCode: Record<ErrorCode, number> = {
  INTERNAL: 1,
  BAD_INPUT: 2,
  UNSUPPORTED_VERSION: 2,
  NOT_FOUND: 2,
  CONFLICT: 2,
  NOT_AUTHORIZED: 3,
  VERIFICATION_FAILED: 4,
  QUORUM_UNAVAILABLE: 5,
  TIMEOUT: 5,
  BUSY: 5,
  UNAVAILABLE: 5
}

export class KeymeshError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** Malformed input: wrong length, bad encoding, out-of-range value. `field` names the culprit. */
export class BadInputError extends KeymeshError {
  readonly field: string
  constructor (field: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.BAD_INPUT, `${field}: ${message}`, options)
    this.field = field
  }
}

/** A version or suite this implementation does not know. */
export class UnsupportedVersionError extends KeymeshError {
  readonly field: string
  constructor (field: string, got: number | string, supported: string) {
    super(ErrorCode.UNSUPPORTED_VERSION, `${field}: unsupported version ${String(got)} (this build supports ${supported}); upgrade keymesh or re-create the object`)
    this.field = field
  }
}

/**
 * A proof, signature, MAC or AEAD tag did not verify. `blame` lists node indices (1-based) whose
 * contribution was proven wrong; empty when the failure cannot be attributed.
 */
export class VerificationError extends KeymeshError {
  readonly blame: number[]
  constructor (message: string, blame: number[] = [], options?: { cause?: unknown }) {
    super(ErrorCode.VERIFICATION_FAILED, message, options)
    this.blame = blame
  }
}

export class NotAuthorizedError extends KeymeshError {
  constructor (message: string) { super(ErrorCode.NOT_AUTHORIZED, message) }
}

/** One node's failure inside a quorum operation. */
export interface NodeFailure {
  /** 1-based node index in the cluster file. */
  index: number
  /** What happened, as an error code (or a transport condition such as TIMEOUT). */
  code: ErrorCode
  /** Human-readable detail for the local user. */
  detail: string
}

/** Fewer than k nodes answered correctly within the deadline. Lists every node that failed. */
export class QuorumUnavailableError extends KeymeshError {
  readonly failures: NodeFailure[]
  readonly needed: number
  readonly got: number
  constructor (needed: number, got: number, failures: NodeFailure[]) {
    const list = failures.map(f => `node ${f.index}: ${f.code} (${f.detail})`).join('; ')
    super(ErrorCode.QUORUM_UNAVAILABLE, `quorum unavailable: needed ${needed} correct answers, got ${got}; ${list}. Bring nodes back online or check the network, then retry`)
    this.failures = failures
    this.needed = needed
    this.got = got
  }
}

/** Returns the error code of anything thrown (INTERNAL for foreign errors). */
export function errorCode (err: unknown): ErrorCode {
  return err instanceof KeymeshError ? err.code : ErrorCode.INTERNAL
}

/** True when `code` is one of the stable codes (used when decoding a peer's error response). */
export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCode, code)
}
