/**
 * Labelled asserts for JSON documents (cluster file, policy, orders, RPC bodies).
 *
 * Every JSON format of keymesh is a closed schema: unknown fields are rejected, required fields
 * must be present, arrays are bounded. These helpers are the one place that says so; each throws
 * BadInputError naming the field (`a.b[3].c`).
 */
import { BadInputError } from './errors.ts'

/** A parsed JSON object. */
export type JsonObject = Record<string, unknown>

/** True for a plain object (`{}` literal or null-prototype), not an array, class instance or null. */
export function isPlainObject (v: unknown): v is JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * Asserts a plain object whose keys are all in `required ∪ optional` and include every
 * `required` key. Throws BadInputError(field or field.key).
 */
export function aobj (field: string, v: unknown, required: readonly string[], optional: readonly string[] = []): JsonObject {
  if (!isPlainObject(v)) throw new BadInputError(field, 'expected a JSON object')
  for (const k of Object.keys(v)) {
    if (!required.includes(k) && !optional.includes(k)) throw new BadInputError(`${field}.${k}`, 'unknown field')
  }
  for (const k of required) {
    if (!Object.hasOwn(v, k)) throw new BadInputError(`${field}.${k}`, 'missing')
  }
  return v
}

/** Asserts an array of `min`..`max` items. Throws BadInputError(field). */
export function aarray (field: string, v: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) throw new BadInputError(field, 'expected an array')
  if (v.length < min || v.length > max) throw new BadInputError(field, `expected ${min}..${max} items, got ${v.length}`)
  return v
}

/** Asserts a boolean. Throws BadInputError(field). */
export function abool (field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new BadInputError(field, 'expected true or false')
  return v
}

/** Asserts a string matching `re`; `what` describes it in the error. Throws BadInputError(field). */
export function astring (field: string, v: unknown, re: RegExp, what: string): string {
  if (typeof v !== 'string' || !re.test(v)) throw new BadInputError(field, `expected ${what}`)
  return v
}
