/**
 * Every error tollgate throws on purpose is a TollgateError with a stable `code`.
 * Codes are part of the public API: match on `code`, never on `message`.
 */
export const ErrorCode = {
  /** A policy field is missing, of the wrong type or out of range. `field` names it. */
  InvalidPolicy: 'ERR_TOLLGATE_INVALID_POLICY',
  /** A duration string or number could not be read (`'1s'`, `'500ms'`, `60000`). */
  InvalidDuration: 'ERR_TOLLGATE_INVALID_DURATION',
  /** cost is negative, fractional, NaN, infinite or not a number. */
  InvalidCost: 'ERR_TOLLGATE_INVALID_COST',
  /** A subject or bucket key is not a non-empty string. */
  InvalidKey: 'ERR_TOLLGATE_INVALID_KEY',
  /** The subject is neither a string nor an object of level keys. */
  InvalidSubject: 'ERR_TOLLGATE_INVALID_SUBJECT',
  /** A limiter or store option is wrong (unknown level, bad onStoreError, ...). */
  InvalidOption: 'ERR_TOLLGATE_INVALID_OPTION',
  /** A tier name that is not defined. */
  UnknownTier: 'ERR_TOLLGATE_UNKNOWN_TIER',
  /** A level name that is not one of the limiter's levels. */
  UnknownLevel: 'ERR_TOLLGATE_UNKNOWN_LEVEL',
  /** updateBucket / deleteBucket / getBucket on a bucket that was never created. */
  UnknownBucket: 'ERR_TOLLGATE_UNKNOWN_BUCKET',
  /** createBucket on a bucket that already exists. */
  BucketExists: 'ERR_TOLLGATE_BUCKET_EXISTS',
  /** A snapshot given to import() is not one export() wrote. */
  InvalidSnapshot: 'ERR_TOLLGATE_INVALID_SNAPSHOT',
  /** The store did not answer within its timeout. */
  StoreTimeout: 'ERR_TOLLGATE_STORE_TIMEOUT',
  /** The store is unavailable (down, circuit open, not ready). */
  StoreUnavailable: 'ERR_TOLLGATE_STORE_UNAVAILABLE',
  /** The store holds data in a layout this version does not read; the message says what to run. */
  StoreLayout: 'ERR_TOLLGATE_STORE_LAYOUT',
  /** A second limiter with one name on one store (they would share every bucket). `field` is `name`. */
  DuplicateName: 'ERR_TOLLGATE_DUPLICATE_NAME',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export class TollgateError extends Error {
  readonly code: ErrorCode
  /** The option or field at fault, e.g. `refill.per` or `cost`. */
  readonly field: string | undefined
  /** The offending value, as given. */
  readonly value: unknown

  constructor(
    code: ErrorCode,
    message: string,
    details: { field?: string; value?: unknown; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'TollgateError'
    this.code = code
    this.field = details.field
    this.value = details.value
  }
}

/** Renders a value for an error message without throwing on odd inputs (symbols, cycles, huge strings). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) {
    return String(value)
  }
  if (typeof value === 'symbol' || typeof value === 'function') return `a ${typeof value}`
  try {
    const json = JSON.stringify(value)
    return json === undefined ? typeof value : json.length > 80 ? `${json.slice(0, 77)}...` : json
  } catch {
    return `an ${typeof value}`
  }
}

export function invalid(code: ErrorCode, field: string, value: unknown, expectation: string): TollgateError {
  return new TollgateError(code, `${field} must be ${expectation}; got ${describeValue(value)}`, {
    field,
    value,
  })
}
