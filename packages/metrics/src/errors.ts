import { ErrorCode, TollgateError } from '@tollgate/core'

export function optionError(field: string, value: unknown, expectation: string): TollgateError {
  return new TollgateError(ErrorCode.InvalidOption, `${field} must be ${expectation}; got ${String(value)}`, {
    field,
    value,
  })
}
